//! Caddy's admin API and the TLS key out of other users' reach, with a real `caddy run`
//! arranged as the package arranges it: the admin API on a unix socket in a 0750 directory,
//! which `nobody` cannot reach while picd drives Caddy through it (a route picd adds is
//! served); no private key in Caddy's running config (Caddy loads the key from a file of
//! mode 0640, the certificate's pair only), and `nobody` cannot read that file nor list its
//! directory; and a `caddy_admin` off loopback (or not a
//! path) refused at start.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;

use common::caddy::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A host name under the cell's domain for the test backend.
const BACKEND_HOST: &str = "files.home.example";

async fn add_route(admin: &TestClient, host: &str, upstream: &str) -> (StatusCode, Value) {
    let body = json!({ "host": host, "upstream": upstream });
    json_of(
        admin
            .send_json(Method::POST, "/api/caddy/routes", &body)
            .await,
    )
    .await
}

/// The mode bits of `path` (permissions only).
fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// `setpriv` as `nobody`, with no supplementary group: another local user.
const AS_NOBODY: [&str; 5] = [
    "setpriv",
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
    "--",
];

#[tokio::test]
async fn caddys_admin_api_and_the_tls_key_are_out_of_other_users_reach() {
    require_tools(&["setpriv"]);
    // The TLS files where the package puts them, in a directory of their own under one that
    // anyone may enter (as /run): what keeps other users from the key is its own protection.
    let run = tempfile::tempdir().expect("temporary directory");
    std::fs::set_permissions(run.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let tls_dir = run.path().join("tls");
    let tls_env = [("PICD_CADDY_TLS_DIR", tls_dir.to_string_lossy().into_owned())];
    let cell = CaddyCell::start_with_env(&tls_env).await;
    // picd drives Caddy through the socket: a route it adds is served.
    let backend = Backend::start();
    let (status, body) = add_route(&cell.admin, BACKEND_HOST, &backend.upstream).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let page = cell.expect_served(BACKEND_HOST, "/", 200);
    assert_eq!(page.body, BACKEND_PAGE, "{page:?}");

    let socket = cell.caddy.admin_socket.clone().expect("an admin socket");
    let admin_dir = socket.parent().expect("its directory");
    assert_eq!(mode_of(admin_dir), ADMIN_DIR_MODE);
    let meta = std::fs::metadata(&socket).expect("the admin socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o007,
        0,
        "{:o}",
        meta.permissions().mode()
    );
    // Another user gets as far as the directory above, and no further.
    let above = admin_dir.parent().expect("above");
    let walk = Command::new(AS_NOBODY[0])
        .args(&AS_NOBODY[1..])
        .args(["ls", "-d"])
        .arg(above)
        .output()
        .expect("setpriv ls");
    assert!(
        walk.status.success(),
        "nobody cannot even reach {}: {walk:?}",
        above.display()
    );
    let as_nobody = cell
        .caddy
        .admin_curl(&AS_NOBODY, "/config/")
        .output()
        .expect("curl as nobody");
    assert!(
        !as_nobody.status.success(),
        "nobody reached Caddy's admin API: {as_nobody:?}"
    );
    assert!(
        as_nobody.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&as_nobody.stdout)
    );
    let stderr = String::from_utf8_lossy(&as_nobody.stderr);
    assert!(
        stderr.contains("Permission denied") || stderr.contains("connect"),
        "{stderr}"
    );

    // Root reads the config, and there is no private key in it: Caddy loads the files.
    let config = cell.caddy.config().expect("Caddy's config as root");
    let text = config.to_string();
    assert!(
        !text.contains("PRIVATE KEY"),
        "a key in Caddy's config: {text}"
    );
    assert!(text.contains(BACKEND_HOST), "{text}");
    assert!(
        config["apps"]["tls"]["certificates"]
            .get("load_pem")
            .is_none(),
        "{text}"
    );
    let loaded = &config["apps"]["tls"]["certificates"]["load_files"][0];
    let key = PathBuf::from(loaded["key"].as_str().expect("a key file"));
    let certificate = PathBuf::from(loaded["certificate"].as_str().expect("a certificate file"));
    assert_eq!(key.parent(), Some(tls_dir.as_path()), "{text}");
    // Another user reaches the directory above, and reads neither the key nor the listing.
    let as_nobody = |args: &[&str], path: &std::path::Path| {
        Command::new(AS_NOBODY[0])
            .args(&AS_NOBODY[1..])
            .args(args)
            .arg(path)
            .output()
            .expect("setpriv")
    };
    let walk = as_nobody(&["ls", "-d"], run.path());
    assert!(walk.status.success(), "{walk:?}");
    for (args, path) in [(&["cat"][..], &key), (&["ls"][..], &tls_dir)] {
        let read = as_nobody(args, path);
        let stderr = String::from_utf8_lossy(&read.stderr);
        assert!(
            !read.status.success() && read.stdout.is_empty(),
            "nobody ran {args:?} on {}: {read:?}",
            path.display()
        );
        assert!(stderr.contains("Permission denied"), "{stderr}");
    }
    assert_eq!(mode_of(&tls_dir), 0o750);
    assert_eq!(mode_of(&key), 0o640, "{}", key.display());
    assert_eq!(mode_of(&certificate), 0o644, "{}", certificate.display());
    let pem = std::fs::read_to_string(&key).expect("the key file");
    assert!(pem.contains("PRIVATE KEY"), "not a key: {}", key.display());
    // One pair only: the one before the route's host was added is gone.
    let files = std::fs::read_dir(&tls_dir).expect("tls dir").count();
    assert_eq!(files, 2, "{}", tls_dir.display());
    assert_no_internal_errors(&cell.picd);
}

#[test]
fn a_caddy_admin_off_loopback_is_refused_at_start() {
    // (Test picds get PICD_CADDY_ADMIN from the launcher, which wins over the settings file.)
    for admin in ["192.0.2.1:2019", "0.0.0.0:2019", "[::]:2019", ":2019"] {
        let stderr = stderr_of(&serve_expecting_failure("", &[("PICD_CADDY_ADMIN", admin)]));
        assert!(
            stderr.contains("caddy_admin") && stderr.contains("not on loopback"),
            "{admin}: {stderr}"
        );
    }
    let relative = [("PICD_CADDY_ADMIN", "unix/relative.sock")];
    let stderr = stderr_of(&serve_expecting_failure("", &relative));
    assert!(stderr.contains("caddy_admin"), "{stderr}");
}
