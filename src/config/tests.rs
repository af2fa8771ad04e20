use super::*;

#[test]
fn environment_overrides_every_kind_of_key() {
    let mut table = toml::Table::try_from(Settings::default()).unwrap();
    apply_env(&mut table, |k| match k {
        "PICD_LISTEN" => Some("127.0.0.1:4000".into()),
        "PICD_SESSION_IDLE_MINUTES" => Some("5".into()),
        "PICD_TRUSTED_PROXIES" => Some("10.0.0.1, ::1".into()),
        "PICD_COOKIE_SECURE" => Some("always".into()),
        _ => None,
    })
    .unwrap();
    let s: Settings = table.try_into().unwrap();
    assert_eq!(s.listen.port(), 4000);
    assert_eq!(s.session_idle_minutes, 5);
    assert_eq!(s.trusted_proxies.len(), 2);
    assert_eq!(s.cookie_secure, CookieSecure::Always);
}

/// The package's keys as packaging/package.toml sets them, and an owner's file of 0.1.0
/// (which set none of them) with one edit of its own.
const PACKAGE_TOML: &str = include_str!("../../packaging/package.toml");
const OWNERS_OLD_TOML: &str = "session_absolute_hours = 8\nlog_level = \"debug\"\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_package_defaults_fill_what_the_owners_file_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = write(dir.path(), "package.toml", PACKAGE_TOML);
    let owners = write(dir.path(), "picd.toml", OWNERS_OLD_TOML);
    let s = Settings::load(Some(&defaults), Some(&owners)).unwrap();
    assert_eq!(s.listen_socket, PathBuf::from("/run/picd/http.sock"));
    assert_eq!(s.caddy_admin, "unix//run/caddy-admin/admin.sock");
    assert_eq!(s.caddy_tls_dir, PathBuf::from("/run/picd/tls"));
    assert_eq!(s.session_absolute_hours, 8);
    assert_eq!(s.log_level, "debug");
    // Neither file sets it: the built-in default.
    assert_eq!(
        s.session_idle_minutes,
        Settings::default().session_idle_minutes
    );
}

#[test]
fn the_owners_file_wins_over_the_package_defaults_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = write(dir.path(), "package.toml", PACKAGE_TOML);
    let owners = write(
        dir.path(),
        "picd.toml",
        "caddy_admin = \"127.0.0.1:2019\"\nlisten_socket = \"\"\n",
    );
    let s = Settings::load(Some(&defaults), Some(&owners)).unwrap();
    assert_eq!(s.caddy_admin, "127.0.0.1:2019");
    assert_eq!(s.listen_socket(), None);
    assert_eq!(s.caddy_tls_dir, PathBuf::from("/run/picd/tls"));
    // Without the package's file, only the owner's and the built-in defaults count.
    let s = Settings::load(None, Some(&owners)).unwrap();
    assert_eq!(s.caddy_tls_dir, PathBuf::new());
}

#[test]
fn a_defaults_file_asked_for_must_exist_and_know_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let owners = write(dir.path(), "picd.toml", "");
    let absent = dir.path().join("absent.toml");
    let err = Settings::load(Some(&absent), Some(&owners)).unwrap_err();
    assert!(format!("{err:#}").contains("absent.toml"), "{err:#}");
    let typo = write(dir.path(), "package.toml", "listen_sockett = \"/run/x\"\n");
    let err = Settings::load(Some(&typo), Some(&owners)).unwrap_err();
    assert!(
        format!("{err:#}").contains("package.toml: unknown key `listen_sockett`"),
        "{err:#}"
    );
}

#[test]
fn the_dns_tcp_lifetime_is_bounded() {
    assert_eq!(Settings::default().dns_tcp_lifetime_seconds, 120);
    for bad in [0, 3601] {
        let settings = Settings {
            dns_tcp_lifetime_seconds: bad,
            ..Settings::default()
        };
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("dns_tcp_lifetime_seconds"), "{bad}: {err}");
    }
}

#[test]
fn a_bad_number_names_the_variable() {
    let mut table = toml::Table::try_from(Settings::default()).unwrap();
    let err = apply_env(&mut table, |k| {
        (k == "PICD_BODY_LIMIT_BYTES").then(|| "lots".into())
    })
    .unwrap_err();
    assert!(err.to_string().contains("PICD_BODY_LIMIT_BYTES"));
}

#[test]
fn service_images_come_from_the_file_or_the_environment_pinned_only() {
    const PINNED: &str =
        "registry.example:5000/picd/files@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut table = toml::Table::try_from(Settings::default()).unwrap();
    let from_env = format!("files={PINNED}, mail = {PINNED}");
    apply_env(&mut table, |k| {
        (k == "PICD_SERVICE_IMAGES").then(|| from_env.clone())
    })
    .unwrap();
    let s: Settings = table.try_into().unwrap();
    s.validate().unwrap();
    let pinned = s.pinned_images().unwrap();
    assert_eq!(pinned.len(), 2);
    assert_eq!(pinned["mail"].to_string(), PINNED);

    let dir = tempfile::tempdir().unwrap();
    let tag_only = write(
        dir.path(),
        "picd.toml",
        "service_images = { files = \"registry.example:5000/picd/files:latest\" }\n",
    );
    let err = Settings::load(None, Some(&tag_only))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("service_images.files") && err.contains("not pinned"),
        "{err}"
    );

    let mut table = toml::Table::try_from(Settings::default()).unwrap();
    let err = apply_env(&mut table, |k| {
        (k == "PICD_SERVICE_IMAGES").then(|| "files".to_string())
    })
    .unwrap_err();
    assert!(err.to_string().contains("PICD_SERVICE_IMAGES"), "{err}");
}
