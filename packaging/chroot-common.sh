# Shared by packaging/test-install-in-chroot and packaging/test-upgrade-in-chroot (sourced,
# not run): a clean Debian root made with `debootstrap --variant=minbase bookworm`, torn down
# at exit, and a package installed there with its dependencies from Debian's mirror.
#
# The sourcing script sets `name` (its own name, for messages) and `mirror`; this defines
# say, die, make_root (sets `root` and the command prefix `in_root`) and install_in_root.

say() { printf '%s: %s\n' "$name" "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

# Unmount whatever is mounted below the root (debootstrap and we mount /proc), deepest
# first, and delete the tree only when nothing is mounted there any more.
cleanup_root() {
    local m
    [[ -n ${root:-} && -d $root ]] || return 0
    for m in $(findmnt -l -n -o TARGET | grep -F "$root/" | sort -r); do
        umount "$m" || umount -l "$m" || true
    done
    if findmnt -l -n -o TARGET | grep -qF "$root/"; then
        say "left $root in place: something is still mounted below it"
    else
        rm -rf --one-file-system "$root"
    fi
}

# A clean bookworm root with /proc mounted and a policy-rc.d that lets no service start.
make_root() {
    root=$(mktemp -d /var/tmp/picd-chroot.XXXXXX)
    # mktemp makes it 0700: the root directory of a system is 0755 (user picd, _apt).
    chmod 0755 "$root"
    trap cleanup_root EXIT
    in_root=(chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin
        DEBIAN_FRONTEND=noninteractive)
    say "debootstrap --variant=minbase bookworm ($mirror)"
    timeout 300 debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $root.debootstrap.log"
    rm -f "$root.debootstrap.log"
    mount -t proc proc "$root/proc"
    # No service starts inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
}

# install_in_root PACKAGE.deb: dpkg -i, then apt-get -f install for its dependencies.
install_in_root() {
    cp "$1" "$root/tmp/picd.deb"
    say "dpkg -i $(basename "$1") (its dependencies are not installed yet)"
    "${in_root[@]}" dpkg -i /tmp/picd.deb >/dev/null 2>&1 || true
    say "apt-get -f install"
    timeout 300 "${in_root[@]}" apt-get -q -o Acquire::Retries=3 update >/dev/null ||
        die "apt-get update in the chroot"
    timeout 300 "${in_root[@]}" apt-get -q -y -f --no-install-recommends install >/dev/null ||
        die "apt-get -f install in the chroot"
    local status
    status=$("${in_root[@]}" dpkg-query -W -f='${Status}' picd)
    [[ $status == "install ok installed" ]] || die "picd is '$status'"
}
