#!/bin/sh
# Builds one service's root filesystem as a tar stream on a Debian base, offline from any
# registry: debootstrap (minbase) from the machine's own Debian mirror, then the service's
# packages installed in a chroot where no service may start (policy-rc.d answers 101).
# Inputs (environment): ROOT (an empty directory), SUITE, MIRROR, PACKAGES, OUT (tar path),
# DEB_CACHE (a directory keeping the downloaded .debs between builds).
set -eu
: "${ROOT:?}" "${SUITE:?}" "${MIRROR:?}" "${PACKAGES:?}" "${OUT:?}" "${DEB_CACHE:?}"
mkdir -p "$DEB_CACHE"
debootstrap --variant=minbase --cache-dir="$DEB_CACHE" "$SUITE" "$ROOT" "$MIRROR" >&2
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
trap 'umount "$ROOT/proc" 2>/dev/null || true' EXIT
# shellcheck disable=SC2086
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends $PACKAGES >&2
chroot "$ROOT" apt-get clean
umount "$ROOT/proc"
trap - EXIT
# What a running service never reads: documentation, translations, apt's lists.
rm -rf "$ROOT/usr/share/doc" "$ROOT/usr/share/man" "$ROOT/usr/share/info" \
    "$ROOT/usr/share/locale" "$ROOT/var/lib/apt/lists" "$ROOT/var/cache/apt"
mkdir -p "$ROOT/var/lib/apt/lists" "$ROOT/var/cache/apt"
tar -C "$ROOT" --numeric-owner -cf "$OUT.partial" .
mv "$OUT.partial" "$OUT"
