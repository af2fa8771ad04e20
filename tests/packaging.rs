//! The appliance: the base Caddyfile is valid, keeps Caddy's admin API on the socket picd's
//! settings name and proxies to picd's socket; the package's settings, units and Caddyfile
//! agree on those sockets; `packaging/build-deb` builds a Debian package with the binary, the
//! settings (a conffile), the Caddyfile, the unit, Caddy's drop-in and the maintainer scripts
//! that create and remove the system user and make picd and Caddy members of each other's
//! group; the units pass `systemd-analyze verify` and picd's is rated 3.0 or better by
//! `systemd-analyze security`; the package installs in a clean Debian root made by
//! debootstrap; and it upgrades the 0.1.0 release's package in place there
//! (packaging/test-upgrade-in-chroot): the service restarted, the state dir, its modes and
//! the edited settings kept, the old state migrated and served by today's binary, picd
//! reachable through Caddy though the kept settings name none of the sockets (the package's
//! defaults file does), and the state kept by `apt-get remove`.
//!
//! The package is built from this test run's own (debug) picd binary through build-deb's
//! `PICD_BINARY`, not from a second, release build of the whole dependency tree, which would
//! take minutes on CI; build-deb without it does the release build.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::netns::{require_root_and_tools, require_tools};
use common::{picd_cli, stderr_of, PICD};

/// The worst exposure `systemd-analyze security` may give the unit (0 is best, 10 worst).
const MAX_EXPOSURE: f64 = 3.0;
/// The package's files that matter, as `dpkg-deb -c` and `dpkg -L` name them.
const PACKAGE_FILES: [&str; 6] = [
    "/usr/bin/picd",
    "/etc/picd/picd.toml",
    "/usr/share/picd/package.toml",
    "/usr/share/picd/Caddyfile",
    "/lib/systemd/system/picd.service",
    "/lib/systemd/system/caddy.service.d/picd.conf",
];
const UNIT: &str = "picd.service";
/// The package's sockets: picd's for Caddy, and Caddy's admin API (Caddy's spelling).
const PICD_SOCKET: &str = "/run/picd/http.sock";
const CADDY_ADMIN_SOCKET: &str = "unix//run/caddy-admin/admin.sock";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn output(command: &mut Command) -> Output {
    let what = format!("{command:?}");
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8_lossy(&output(command).stdout).into_owned()
}

/// The package, built once per test run, and its contents extracted beside it.
struct Package {
    deb: PathBuf,
    root: PathBuf,
}

fn package() -> &'static Package {
    static PACKAGE: OnceLock<Package> = OnceLock::new();
    PACKAGE.get_or_init(|| {
        require_tools(&["dpkg-deb", "strip"]);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debian");
        let _ = std::fs::remove_dir_all(&dir);
        let built = stdout(
            Command::new(repo().join("packaging/build-deb"))
                .env("PICD_BINARY", PICD)
                .env("PICD_DEB_DIR", &dir)
                .env("PICD_DEB_COMPRESSION", "gzip"),
        );
        let deb = PathBuf::from(built.lines().last().expect("the package's path").trim());
        let root = dir.join("root");
        output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
        Package { deb, root }
    })
}

#[test]
fn the_base_caddyfile_is_valid_and_keeps_the_admin_api_local() {
    require_tools(&["caddy"]);
    // Caddy's local CA writes its files under XDG_DATA_HOME: a temporary one, and
    // `skip_install_trust` in the Caddyfile keeps it out of the machine's trust store.
    let xdg = tempfile::tempdir().expect("temporary directory");
    let caddy = |args: &[&str]| {
        let mut command = Command::new("caddy");
        command
            .args(args)
            .current_dir(repo())
            .env("XDG_DATA_HOME", xdg.path().join("data"))
            .env("XDG_CONFIG_HOME", xdg.path().join("config"))
            .env("HOME", xdg.path());
        command
    };
    output(&mut caddy(&[
        "validate",
        "--config",
        "Caddyfile",
        "--adapter",
        "caddyfile",
    ]));
    let formatted = stdout(&mut caddy(&["fmt", "Caddyfile"]));
    let file = std::fs::read_to_string(repo().join("Caddyfile")).expect("Caddyfile");
    assert_eq!(
        formatted.trim_end(),
        file.trim_end(),
        "run `caddy fmt --overwrite Caddyfile`"
    );

    let adapted = stdout(&mut caddy(&["adapt", "--config", "Caddyfile"]));
    let json: serde_json::Value = serde_json::from_str(&adapted).expect("adapted JSON");
    // On a socket Caddy refuses every request whose Host is not in `origins`.
    assert_eq!(
        json["admin"],
        serde_json::json!({ "listen": CADDY_ADMIN_SOCKET, "origins": ["localhost"] }),
        "{json}"
    );
    let dial = format!(r#""dial":"unix/{PICD_SOCKET}""#);
    assert!(adapted.contains(&dial), "{adapted}");
    assert!(!adapted.contains("127.0.0.1:3000"), "{adapted}");
    assert!(adapted.contains("Strict-Transport-Security"), "{adapted}");
}

#[test]
fn the_packages_settings_units_and_caddyfile_agree_on_the_sockets() {
    let read = |path: &str| std::fs::read_to_string(repo().join(path)).expect(path);
    // The package's keys are in its defaults file, not in the owner's conffile: an owner who
    // edited an older conffile keeps it on upgrade, and still gets these.
    let defaults = read("packaging/package.toml");
    let settings = read("packaging/picd.toml");
    for (key, value) in [
        ("listen_socket", PICD_SOCKET),
        ("caddy_admin", CADDY_ADMIN_SOCKET),
        ("caddy_tls_dir", "/run/picd/tls"),
    ] {
        let line = format!("{key} = \"{value}\"");
        assert!(
            defaults.lines().any(|l| l == line),
            "no `{line}` in packaging/package.toml"
        );
        assert!(
            !settings.lines().any(|l| l.starts_with(&format!("{key} "))),
            "packaging/picd.toml sets {key}: leave it to packaging/package.toml"
        );
    }
    // picd reads both files as they are shipped, as the unit passes them.
    let picd_unit = read("systemd/picd.service");
    assert!(
        picd_unit.contains(
            "\nExecStart=/usr/bin/picd serve --defaults /usr/share/picd/package.toml \
             --config /etc/picd/picd.toml\n"
        ),
        "{picd_unit}"
    );
    let state = tempfile::tempdir().expect("temporary directory");
    let config = repo().join("packaging/picd.toml");
    let package_defaults = repo().join("packaging/package.toml");
    let out = picd_cli(
        &[
            "--defaults",
            package_defaults.to_str().expect("path"),
            "--config",
            config.to_str().expect("path"),
            "--state-dir",
            state.path().to_str().expect("path"),
            "migrate",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "picd refuses packaging/picd.toml: {}",
        stderr_of(&out)
    );
    // Each socket's directory is made by the unit of the daemon that listens there.
    assert!(
        picd_unit.contains("\nRuntimeDirectory=picd\n"),
        "{picd_unit}"
    );
    assert!(
        picd_unit.contains("\nRuntimeDirectoryMode=0750\n"),
        "{picd_unit}"
    );
    let drop_in = read("packaging/caddy-picd.conf");
    for line in [
        "RuntimeDirectory=caddy-admin",
        "RuntimeDirectoryMode=0750",
        "UMask=0007",
    ] {
        assert!(drop_in.lines().any(|l| l == line), "no {line} in {drop_in}");
    }
    let caddyfile = read("Caddyfile");
    assert!(
        caddyfile.contains(&format!("admin {CADDY_ADMIN_SOCKET} {{")),
        "{caddyfile}"
    );
    assert!(
        caddyfile.contains(&format!("reverse_proxy unix/{PICD_SOCKET}\n")),
        "{caddyfile}"
    );
}

#[test]
fn the_package_holds_the_files_the_metadata_and_the_user_scripts() {
    let package = package();
    let listing = stdout(Command::new("dpkg-deb").arg("-c").arg(&package.deb));
    for file in PACKAGE_FILES {
        assert!(
            listing.contains(&format!(".{file}\n")),
            "{file} not in:\n{listing}"
        );
    }
    assert!(
        !listing.contains("./etc/caddy/Caddyfile\n"),
        "the package must not take over the caddy package's Caddyfile:\n{listing}"
    );
    let field = |name: &str| {
        stdout(
            Command::new("dpkg-deb")
                .arg("-f")
                .arg(&package.deb)
                .arg(name),
        )
        .trim()
        .to_string()
    };
    assert_eq!(field("Package"), "picd");
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    let depends = field("Depends");
    for dependency in [
        "caddy",
        "wireguard-tools",
        "nftables",
        "adduser",
        "libc6",
        "iproute2",
        "iputils-ping",
        "conntrack",
    ] {
        assert!(depends.contains(dependency), "Depends: {depends}");
    }
    let info = stdout(Command::new("dpkg").arg("-I").arg(&package.deb));
    for script in ["conffiles", "postinst", "postrm", "prerm"] {
        assert!(info.contains(script), "no {script} in:\n{info}");
    }

    let control = package.root.join("DEBIAN");
    output(
        Command::new("dpkg-deb")
            .arg("-e")
            .arg(&package.deb)
            .arg(&control),
    );
    let read = |name: &str| std::fs::read_to_string(control.join(name)).expect(name);
    assert_eq!(read("conffiles").trim(), "/etc/picd/picd.toml");
    let postinst = read("postinst");
    for step in [
        "adduser --quiet --system --group --home /var/lib/picd",
        "adduser --quiet caddy picd",
        "adduser --quiet picd caddy",
    ] {
        assert!(postinst.contains(step), "no `{step}` in {postinst}");
    }
    let postrm = read("postrm");
    assert!(
        postrm.contains("purge)") && postrm.contains("deluser --quiet caddy picd"),
        "{postrm}"
    );
    for script in ["postinst", "postrm", "prerm"] {
        output(Command::new("sh").arg("-n").arg(control.join(script)));
    }
    let version = stdout(Command::new(package.root.join("usr/bin/picd")).arg("--version"));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
}

/// A root for systemd-analyze: the package's files plus the machine's target units, which
/// the unit's dependencies (multi-user.target, network-online.target, sysinit.target) name.
fn unit_root() -> &'static Path {
    static TARGETS_COPIED: OnceLock<()> = OnceLock::new();
    require_tools(&["systemd-analyze"]);
    let package = package();
    TARGETS_COPIED.get_or_init(|| {
        let units = package.root.join("lib/systemd/system");
        for entry in std::fs::read_dir("/lib/systemd/system").expect("/lib/systemd/system") {
            let path = entry.expect("entry").path();
            // The caddy package's unit, which the package's drop-in extends.
            let caddy_unit = path.file_name().is_some_and(|n| n == CADDY_UNIT);
            if path.extension().is_some_and(|e| e == "target") || caddy_unit {
                let target = units.join(path.file_name().expect("name"));
                std::fs::copy(&path, target).expect("copying a unit");
            }
        }
        // The caddy unit's command, which verify checks is there.
        let caddy = Path::new("/usr/bin/caddy");
        if caddy.exists() {
            std::fs::copy(caddy, package.root.join("usr/bin/caddy")).expect("copying caddy");
        }
    });
    &package.root
}

/// The caddy package's unit (the drop-in needs it to be verified).
const CADDY_UNIT: &str = "caddy.service";

#[test]
fn the_installed_units_pass_systemd_analyze_verify() {
    require_tools(&["caddy"]);
    let root = unit_root();
    assert!(
        root.join("lib/systemd/system").join(CADDY_UNIT).exists(),
        "no {CADDY_UNIT} on this machine: run packaging/install-test-deps"
    );
    for unit in [UNIT, CADDY_UNIT] {
        let out = output(
            Command::new("systemd-analyze")
                .arg("verify")
                .arg(format!("--root={}", root.display()))
                .arg(unit),
        );
        // Unknown keys and other mistakes are warnings on standard error, not failures.
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            warnings.trim().is_empty(),
            "systemd-analyze verify {unit}:\n{warnings}"
        );
    }
    // The drop-in is really read: caddy.service's files (its admin socket) are no longer
    // world-accessible, as systemd-analyze rates its UMask (the caddy package's alone: 0022).
    let report = stdout(
        Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("--root={}", root.display()))
            .arg(CADDY_UNIT),
    );
    let umask = report
        .lines()
        .find(|l| l.contains("UMask="))
        .unwrap_or_else(|| panic!("no UMask= rating in:\n{report}"));
    assert!(
        !umask.contains("world"),
        "the drop-in's UMask=0007 is not applied: {umask}"
    );
}

#[test]
fn systemd_analyze_security_rates_the_unit_3_or_better() {
    let root = unit_root();
    let report = stdout(
        Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("--root={}", root.display()))
            .arg(UNIT),
    );
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall rating in:\n{report}"));
    let figure: f64 = overall
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure in {overall:?}"));
    eprintln!("systemd-analyze security: {}", overall.trim());
    assert!(figure <= MAX_EXPOSURE, "{overall}\n{report}");
}

#[test]
fn the_package_installs_in_a_clean_debian_root() {
    require_root_and_tools(&["debootstrap", "chroot", "findmnt", "timeout"]);
    let package = package();
    // The script bounds each step; this bounds the whole (debootstrap, apt, purge).
    let out = Command::new("timeout")
        .arg("600")
        .arg(repo().join("packaging/test-install-in-chroot"))
        .arg(&package.deb)
        .stdin(Stdio::null())
        .output()
        .expect("packaging/test-install-in-chroot");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "install in a clean root failed:\n{log}"
    );
    for file in PACKAGE_FILES {
        assert!(
            log.contains(&format!("    {file}\n")),
            "dpkg -L lacks {file}:\n{log}"
        );
    }
    assert!(log.contains("test-install-in-chroot: OK"), "{log}");
}

/// The release whose package today's upgrades in place (0.1.0).
const RELEASE_COMMIT: &str = "a5857f3";

#[test]
fn the_package_upgrades_the_release_in_place_and_keeps_the_cell() {
    require_root_and_tools(&[
        "debootstrap",
        "chroot",
        "findmnt",
        "timeout",
        "git",
        "cargo",
        "curl",
        "jq",
    ]);
    // The script builds the release's debug binary once (its target dir is kept under
    // target/), both packages, the root, and bounds each step; this bounds the whole.
    let started = std::time::Instant::now();
    let out = Command::new("timeout")
        .arg("1500")
        .arg(repo().join("packaging/test-upgrade-in-chroot"))
        .env("PICD_BINARY", PICD)
        .env("PICD_OLD_COMMIT", RELEASE_COMMIT)
        .stdin(Stdio::null())
        .output()
        .expect("packaging/test-upgrade-in-chroot");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "upgrade in place failed:\n{log}");
    for step in [
        "cell set up and peer bob added by 0.1.0-1",
        "migrated and served the old state",
        "picd reachable through Caddy after the upgrade",
        "try-restart picd.service",
        "remove kept /var/lib/picd",
        "test-upgrade-in-chroot: OK",
    ] {
        assert!(log.contains(step), "no `{step}` in:\n{log}");
    }
    eprintln!("{log}upgrade in place: {:?}", started.elapsed());
}
