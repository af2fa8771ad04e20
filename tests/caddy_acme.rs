//! TLS in acme mode against a real ACME CA: a second Caddy, in a network namespace of the
//! test's own, runs Caddy's ACME server (`acme_server`). The cell's Caddy (driven by picd)
//! listens on the root side of the namespace's veth pair on ports 80 and 443, and the ACME
//! server resolves the cell's domain there (through the namespace's own hosts file), so the
//! HTTP-01 or TLS-ALPN-01 challenge really travels from the CA to the cell's Caddy.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::caddy::{Caddy, CaddyCell, CaddyOptions};
use common::netns::{eventually, ClientNamespace};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Obtaining a certificate: account, order, challenge, finalize; slow on a loaded machine.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(90);
const ACME_PORT: u16 = 9443;

/// `/etc/netns/NAME/hosts`, which `ip netns exec NAME` mounts over `/etc/hosts` for the
/// processes it starts; removed on drop.
struct NamespaceHosts(PathBuf);

impl NamespaceHosts {
    fn write(namespace: &str, lines: &str) -> NamespaceHosts {
        let dir = Path::new("/etc/netns").join(namespace);
        std::fs::create_dir_all(&dir).expect("/etc/netns/NAME");
        std::fs::write(dir.join("hosts"), lines).expect("namespace hosts file");
        NamespaceHosts(dir)
    }
}

impl Drop for NamespaceHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir(Path::new("/etc/netns"));
    }
}

/// Caddy's ACME server on `ip:ACME_PORT` inside the namespace, with a certificate of its own
/// local CA; returns it and the path of that CA's root.
fn acme_server(ns: &ClientNamespace) -> (Caddy, PathBuf) {
    let site = ns.addr.clone();
    let apps = json!({
        "http": { "servers": { "acme": {
            "listen": [format!(":{ACME_PORT}")],
            "routes": [{ "match": [{ "host": [site] }], "handle": [{ "handler": "acme_server" }] }]
        } } },
        "tls": { "automation": { "policies": [{ "subjects": [site], "issuers": [{ "module": "internal" }] }] } }
    });
    let caddy = Caddy::start_with(CaddyOptions {
        netns: Some(ns.name.clone()),
        admin_ip: Some(ns.addr.clone()),
        apps,
        ..CaddyOptions::default()
    });
    let root = caddy
        .data_dir()
        .join("caddy/pki/authorities/local/root.crt");
    assert!(
        eventually(Duration::from_secs(20), || root.exists()),
        "the ACME server's root CA was not created; log:\n{}",
        caddy.log()
    );
    (caddy, root)
}

#[tokio::test]
async fn switching_to_acme_gets_the_cell_a_certificate_from_the_acme_ca() {
    let ns = ClientNamespace::create();
    let _hosts = NamespaceHosts::write(
        &ns.name,
        &format!("127.0.0.1 localhost\n{} {CELL_DOMAIN}\n", ns.root_addr),
    );
    let (acme, acme_root) = acme_server(&ns);
    // The cell's Caddy trusts the ACME CA as a machine with a private CA in its trust store
    // would (Go reads SSL_CERT_FILE).
    let cell_caddy = Caddy::start_with(CaddyOptions {
        env: vec![(
            "SSL_CERT_FILE".into(),
            acme_root.to_string_lossy().into_owned(),
        )],
        ..CaddyOptions::default()
    });
    let mut cell = CaddyCell::start_with(cell_caddy, &ns.root_addr, (443, 80)).await;

    let directory = format!("https://{}:{ACME_PORT}/acme/local/directory", ns.addr);
    let (_, mut config) = cell.admin.get_json("/api/config").await;
    config["tls"] =
        json!({ "mode": "acme", "acme_email": "ops@home.example", "acme_ca": directory });
    let (status, body) = json_of(
        cell.admin
            .send_json(Method::PUT, "/api/config", &config)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // From now on the cell is served with a certificate that chains to the ACME CA's root.
    let cell_ca = std::mem::replace(&mut cell.ca_file, acme_root.clone());
    let deadline = std::time::Instant::now() + ISSUE_TIMEOUT;
    let answer = loop {
        let answer = cell.curl(CELL_DOMAIN, "/health", &[]);
        if answer.status == 200 || std::time::Instant::now() >= deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        answer.status,
        200,
        "no certificate from the ACME CA: {answer:?}\n--- cell's caddy ---\n{}\n--- ACME server ---\n{}",
        cell.caddy.log(),
        acme.log()
    );
    cell.ca_file = cell_ca;
    let old = cell.curl(CELL_DOMAIN, "/health", &[]);
    assert_eq!(
        old.status, 0,
        "the cell's own CA no longer vouches: {old:?}"
    );

    let (status, cert) = cell.admin.get_json("/api/caddy/cert-status").await;
    assert_eq!(status, StatusCode::OK, "{cert}");
    assert_eq!(
        (&cert["mode"], &cert["issued"]),
        (&json!("acme"), &json!(true)),
        "{cert}"
    );
    assert_eq!(cert["acme_ca"], directory);
    assert!(
        cert["issuer"]
            .as_str()
            .is_some_and(|i| i.contains("Caddy Local Authority")),
        "{cert}"
    );
    assert_eq!(cert["hosts"], json!([CELL_DOMAIN]), "{cert}");
    assert!(cert["days_left"].as_i64().is_some_and(|d| d >= 0), "{cert}");

    // Plain http still sends browsers to https.
    let redirect = cell.curl_http(CELL_DOMAIN, "/");
    assert_eq!(redirect.status, 308, "{redirect:?}");
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://{CELL_DOMAIN}/").as_str())
    );
}
