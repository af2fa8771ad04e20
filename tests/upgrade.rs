//! Every release's state opens with today's picd: tests/fixtures/state-<version>/ holds a
//! state dir made by that release's own code (packaging/make-state-fixture) and a manifest of
//! what it made. Today's binary migrates it (after a backup) and every item still works
//! through the API: the peers' configs keep their keys and addresses, the portal login and
//! the API key authenticate, the records answer over DNS, the old leaf verifies against the
//! CA it was issued by (retired by migration 0008's re-issue) and its CRL, the audit chain
//! verifies offline and online and after new writes, and a new peer gets a free address.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::keys::KeyClient;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Every release with a fixture: each `tests/fixtures/state-<version>/` folder, so a release's
/// fixture is tested as soon as it is added.
fn versions() -> Vec<String> {
    let mut versions: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
            .expect("tests/fixtures")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().to_string_lossy().into_owned();
                name.strip_prefix("state-").map(str::to_string)
            })
            .collect();
    versions.sort();
    assert!(
        versions.iter().any(|v| v == "0.1.0"),
        "the 0.1.0 fixture is gone: {versions:?}"
    );
    versions
}

fn fixture_dir(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("state-{version}"))
}

/// Unpacks the fixture's state dir under `root`; returns it with the manifest.
fn unpack(version: &str, root: &Path) -> (PathBuf, Value) {
    let dir = fixture_dir(version);
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(dir.join("state.tar.gz"))
        .arg("-C")
        .arg(root)
        .status()
        .expect("running tar");
    assert!(status.success());
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    (root.join("state"), serde_json::from_str(&manifest).unwrap())
}

/// The lines of a WireGuard config that carry keys and addresses.
fn keys_and_addresses(config: &str) -> BTreeSet<String> {
    config
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["PrivateKey", "PublicKey", "Address", "AllowedIPs"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(str::to_string)
        .collect()
}

fn addresses(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Address"))
        .flat_map(|rest| rest.trim_start_matches([' ', '=']).split(','))
        .map(|a| a.trim().to_string())
        .collect()
}

async fn text(client: &TestClient, path: &str) -> String {
    let resp = client.get(path).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

fn openssl_verify(root: &Path, ca: &str, leaf: &str, crl: Option<&str>) -> (bool, String) {
    std::fs::write(root.join("ca.pem"), ca).unwrap();
    std::fs::write(root.join("leaf.pem"), leaf).unwrap();
    let mut command = Command::new("openssl");
    command.args(["verify", "-CAfile"]).arg(root.join("ca.pem"));
    if let Some(crl) = crl {
        std::fs::write(root.join("crl.pem"), crl).unwrap();
        command
            .arg("-crl_check")
            .arg("-CRLfile")
            .arg(root.join("crl.pem"));
    }
    let out = command.arg(root.join("leaf.pem")).output().unwrap();
    (
        out.status.success(),
        format!("{}{}", stdout_of(&out), stderr_of(&out)),
    )
}

/// The chain verifies online and offline, and holds at least `at_least` entries (a chain cut
/// short at its end would verify too).
async fn audit_holds(admin: &TestClient, state: &Path, at_least: u64) {
    let (status, body) = admin.get_json("/api/audit/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["valid"], true, "online: {body}");
    let checked = body["checked"].as_u64().unwrap_or(0);
    assert!(
        checked >= at_least,
        "the chain holds {checked} entries, the release made {at_least}: {body}"
    );
    let out = picd_cli(
        &["audit", "verify", "--state-dir", state.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "offline: {}", stdout_of(&out));
}

#[tokio::test]
async fn every_release_state_opens_migrates_and_works() {
    for version in versions() {
        upgrade_from(&version).await;
    }
}

async fn upgrade_from(version: &str) {
    let root = tempfile::tempdir().unwrap();
    let (state, manifest) = unpack(version, root.path());
    let dns_port = free_dns_port(IpAddr::from([127, 0, 0, 1]));
    let dns = SocketAddr::from(([127, 0, 0, 1], dns_port));
    let picd = Picd::start_with(
        PicdOptions {
            state_dir: Some(state.clone()),
            ..PicdOptions::default()
        }
        .with_dns_listen(&dns.to_string()),
    )
    .await;
    let pre = std::fs::read_dir(state.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pre-migrate-"))
        .count();
    assert_eq!(pre, 1, "{version}: no pre-migration backup");

    let admin = picd.client();
    admin
        .login_ok(
            manifest["admin"]["username"].as_str().unwrap(),
            manifest["admin"]["password"].as_str().unwrap(),
        )
        .await;
    let made = manifest["audit"]["checked"]
        .as_u64()
        .expect("the manifest's audit count");
    audit_holds(&admin, &state, made).await;

    // The release's Caddy routes are kept.
    let (_, routes) = admin.get_json("/api/caddy/routes").await;
    for route in manifest["caddy_routes"]["routes"].as_array().unwrap() {
        let kept = routes["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["host"] == route["host"] && r["upstream"] == route["upstream"]);
        assert!(kept, "{version}: the route {route} is gone: {routes}");
    }

    // Peers keep their keys and addresses.
    let mut taken = Vec::new();
    for peer in manifest["peers"].as_array().unwrap() {
        let name = peer["name"].as_str().unwrap();
        let old = peer["config"].as_str().unwrap();
        let now = text(&admin, &format!("/api/peers/{name}/config")).await;
        assert_eq!(
            keys_and_addresses(&now),
            keys_and_addresses(old),
            "{version}: {name}'s config"
        );
        taken.extend(addresses(old));
    }

    // The portal login and the API key still authenticate.
    let portal = picd.client();
    let body = portal
        .login_ok(
            manifest["portal"]["username"].as_str().unwrap(),
            manifest["portal"]["password"].as_str().unwrap(),
        )
        .await;
    assert_eq!(body["user"]["role"], "peer", "{body}");
    let (status, _) = portal.get_json("/api/peer/me").await;
    assert_eq!(status, StatusCode::OK);
    let key = KeyClient::new(&picd, manifest["api_key"]["token"].as_str().unwrap());
    let resp = key.send(Method::GET, "/api/dns/zones", None).await;
    assert_eq!(resp.status(), StatusCode::OK, "{version}: the API key");

    // Records answer over DNS: loopback asks the internal view, which also has the public.
    let zone = manifest["zone"].as_str().unwrap();
    let www = format!("www.{zone}");
    ask_until(
        Duration::from_secs(10),
        "the old zone's internal A record",
        || kdig(dns, &www, "A", &[]),
        |r| {
            let mut found = r.data("A");
            found.sort();
            found == ["10.77.0.10", "192.0.2.10"]
        },
    )
    .await;
    let mx = kdig(dns, &format!("mail.{zone}"), "MX", &[]);
    assert_eq!(mx.data("MX"), [format!("10 {www}.")], "{}", mx.text);

    // The peers' names (published by the migration that made the names table) and the
    // cell's own name (published at start-up) answer in the internal view.
    let (_, config) = admin.get_json("/api/config").await;
    let domain = config["cell"]["domain"].as_str().unwrap();
    let setting = |config: &str, key: &str| {
        config
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split(['/', ',']).next())
            .unwrap()
            .trim()
            .to_string()
    };
    for peer in manifest["peers"].as_array().unwrap() {
        let name = format!("{}.{domain}", peer["name"].as_str().unwrap());
        let address = setting(peer["config"].as_str().unwrap(), "Address = ");
        let answer = kdig(dns, &name, "A", &[]);
        assert_eq!(
            answer.data("A"),
            [address],
            "{version}: {name}: {}",
            answer.text
        );
    }
    let cell_v4 = setting(manifest["peers"][0]["config"].as_str().unwrap(), "DNS = ");
    let apex = kdig(dns, domain, "A", &[]);
    assert_eq!(
        apex.data("A"),
        [cell_v4],
        "{version}: {domain}: {}",
        apex.text
    );

    // The old leaf verifies against the CA that issued it, now retired, and its CRL; the
    // revoked one is refused by that CRL.
    let (_, cas) = admin.get_json("/api/vault/cas").await;
    let certs = &manifest["certificates"];
    let kept = certs["kept"]["cert_pem"].as_str().unwrap();
    let revoked = certs["revoked"]["cert_pem"].as_str().unwrap();
    let retired = cas["retired"].as_array().expect("retired CAs");
    let issuer = retired
        .iter()
        .find(|ca| openssl_verify(root.path(), ca["cert_pem"].as_str().unwrap(), kept, None).0)
        .unwrap_or_else(|| panic!("{version}: no retired CA issued the old leaf: {cas}"));
    let serial = issuer["serial"].as_str().unwrap();
    let crl = text(&admin, &format!("/api/vault/crl?ca={serial}")).await;
    let ca_pem = issuer["cert_pem"].as_str().unwrap();
    let (ok, why) = openssl_verify(root.path(), ca_pem, kept, Some(&crl));
    assert!(ok, "{version}: the kept leaf with the CRL: {why}");
    let (ok, why) = openssl_verify(root.path(), ca_pem, revoked, Some(&crl));
    assert!(
        !ok && why.contains("revoked"),
        "{version}: the revoked leaf: {why}"
    );

    // New writes keep the chain verifying; a new peer gets an address nobody has.
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "carol" }))
        .await;
    assert!(resp.status().is_success(), "{version}: new peer");
    let carol = text(&admin, "/api/peers/carol/config").await;
    for address in addresses(&carol) {
        assert!(!taken.contains(&address), "{version}: {address} is taken");
    }
    audit_holds(&admin, &state, made + 1).await;
    drop(picd);
}
