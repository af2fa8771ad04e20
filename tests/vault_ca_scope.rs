//! The cell's CA may vouch only for the cell: its root carries a critical NameConstraints
//! extension (the cell's domain, its IPv4 and IPv6 subnets), read back with the real
//! `openssl`; picd refuses to issue outside it, and even a leaf signed outside it with the
//! CA's own key fails `openssl verify`. A state from an older picd (an unconstrained root,
//! and a leaf it signed) gets a new root at start, while the old root keeps signing the CRL
//! of what it issued; a change of the cell's domain re-issues the root too.

mod common;

use common::keys::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PEM: &str = "application/x-pem-file";
const VAULT_IDENTITY: &str = "vault.key";
const CA_KEY_SECRET: &str = "ca.key";
/// How openssl prints the permitted subtrees of the fixtures' subnets.
const PERMITTED_V4: &str = "IP:10.77.0.0/255.255.255.0";
const PERMITTED_V6: &str = "IP:FD77:77:0:0:0:0:0:0/FFFF:FFFF:FFFF:FFFF:0:0:0:0";
const OUTSIDE_NAME: &str = "www.google.com";
const OUTSIDE_IP: &str = "192.0.2.10";
const CELL_HOST: &str = "nas.home.example";
const CELL_IP: &str = "10.77.0.9";
/// The serial (hex) of the leaf the "old" CA signed in the upgrade fixture.
const OLD_LEAF_SERIAL: &str = "5eed0001";
const OLD_LEAF_NAME: &str = "old.home.example";
const NEW_DOMAIN: &str = "cell.example";

/// `openssl x509 -text` of a PEM file.
fn cert_text(path: &str) -> String {
    openssl(&["x509", "-noout", "-text", "-in", path])
}

/// A certificate's serial as picd writes it: lowercase hex without leading zero octets.
fn serial_of(path: &str) -> String {
    let out = openssl(&["x509", "-noout", "-serial", "-in", path]);
    let hex = out
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    let mut hex = hex.as_str();
    while hex.len() > 2 && hex.starts_with("00") {
        hex = &hex[2..];
    }
    hex.to_string()
}

/// Signs a leaf for `san` with the given CA files, as any openssl user could.
fn sign_leaf(
    files: &Scratch,
    tag: &str,
    ca: &str,
    ca_key: &str,
    san: &str,
    serial: &str,
) -> String {
    let (key, csr, ext) = (
        files.path(&format!("{tag}.key")),
        files.path(&format!("{tag}.csr")),
        files.write(&format!("{tag}.ext"), format!("subjectAltName={san}\n")),
    );
    let cert = files.path(&format!("{tag}.pem"));
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        &format!("/CN={tag}"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        ca,
        "-CAkey",
        ca_key,
        "-days",
        "30",
        "-set_serial",
        &format!("0x{serial}"),
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    cert
}

/// The CA's private key, decrypted from the vault with the real `age` and the identity.
fn ca_key_from_vault(picd: &Picd, files: &Scratch) -> String {
    let secrets = stored_secrets(&picd.db());
    let (_, ciphertext) = secrets
        .iter()
        .find(|(name, _)| name == CA_KEY_SECRET)
        .expect("the CA key is a vault secret");
    let identity = picd.state_dir().join(VAULT_IDENTITY);
    let key = age_decrypt(&identity, ciphertext).expect("age decrypts the CA key");
    files.write("ca.key", key)
}

#[tokio::test]
async fn the_ca_vouches_only_for_the_cells_domain_and_subnets() {
    require_tools(&["openssl", "age"]);
    let (picd, admin) = picd_with_admin().await;
    let files = Scratch::new();
    let ca = files.write("ca.pem", download(&admin, "/api/vault/ca.crt", PEM).await);
    let text = cert_text(&ca);
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
    let permitted = &text[text.find("Permitted:").expect("permitted subtrees")..];
    for subtree in [&format!("DNS:{CELL_DOMAIN}"), PERMITTED_V4, PERMITTED_V6] {
        assert!(permitted.contains(subtree), "{subtree} missing: {text}");
    }
    assert!(!text.contains("Excluded:"), "{text}");

    // Outside names and addresses are refused, each under its own field, and audited.
    let certs = "/api/vault/certs";
    for (body, field) in [
        (json!({ "names": [OUTSIDE_NAME] }), "names[0]"),
        (
            json!({ "names": [CELL_HOST, "home.example.evil"] }),
            "names[1]",
        ),
        (json!({ "names": ["printer"] }), "names[0]"),
        (json!({ "names": ["*.google.com"] }), "names[0]"),
        (json!({ "ips": [OUTSIDE_IP] }), "ips[0]"),
        (
            json!({ "names": [CELL_HOST], "ips": [CELL_IP, "fd00::1"] }),
            "ips[1]",
        ),
    ] {
        let resp = admin.send_json(Method::POST, certs, &body).await;
        let refused = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(field_names(&refused), [field], "{body}: {refused}");
        let audit = last_audit(&picd.db());
        assert_eq!(
            (audit.action.as_str(), audit.result.as_str()),
            ("vault.certs.issue", "failure"),
            "{body}"
        );
    }
    let stored: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM certificates", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0, "a refused request issued a certificate");

    // A leaf for the cell verifies.
    let body =
        json!({ "names": [CELL_HOST, "*.svc.home.example"], "ips": [CELL_IP, "fd77:77::9"] });
    let issued = issue_cert(&admin, &body).await;
    let leaf = files.write("leaf.pem", issued["cert_pem"].as_str().unwrap());
    let (ok, said) = openssl_verify(&ca, &leaf, None);
    assert!(ok && said.contains(": OK"), "{said}");

    // Even signed with the CA's own key, a leaf outside the constraints fails verification:
    // the extension binds verifiers, not only picd.
    let ca_key = ca_key_from_vault(&picd, &files);
    let rogue = sign_leaf(
        &files,
        "rogue",
        &ca,
        &ca_key,
        &format!("DNS:{OUTSIDE_NAME}"),
        "0badc0de",
    );
    let (ok, said) = openssl_verify(&ca, &rogue, None);
    assert!(!ok && said.contains("subtree violation"), "{said}");
    let inside = sign_leaf(
        &files,
        "inside",
        &ca,
        &ca_key,
        &format!("DNS:{CELL_HOST}"),
        "600d",
    );
    assert!(
        openssl_verify(&ca, &inside, None).0,
        "control: a leaf inside verifies"
    );
    assert_no_internal_errors(&picd);
}

/// The CA as an older picd made it (no name constraints) and a leaf it signed, written into
/// a stopped cell's store the way the old code kept them: the root in `ca`, its key age-
/// encrypted as the `ca.key` secret, the leaf in `certificates`.
fn plant_unconstrained_ca(picd: &Picd, files: &Scratch, age_recipient: &str) -> (String, String) {
    let (old_ca, old_key) = (files.path("old-ca.pem"), files.path("old-ca.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &old_key,
        "-out",
        &old_ca,
        "-days",
        "3650",
        "-subj",
        &format!("/CN={CELL_NAME} cell root CA/O=picd"),
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ]);
    assert!(!cert_text(&old_ca).contains("Name Constraints"), "fixture");
    let san = format!("DNS:{OLD_LEAF_NAME},DNS:{OUTSIDE_NAME}");
    let leaf = sign_leaf(files, "old-leaf", &old_ca, &old_key, &san, OLD_LEAF_SERIAL);
    let key_pem = std::fs::read(&old_key).unwrap();
    let ciphertext = tool_ok("age", &["-r", age_recipient], Some(&key_pem));
    let conn = picd.db();
    conn.execute(
        "UPDATE ca SET cert_pem = ?1, name_constraints = NULL, serial = NULL, crl_number = 1 WHERE id = 1",
        [std::fs::read_to_string(&old_ca).unwrap()],
    )
    .unwrap();
    conn.execute(
        "UPDATE secrets SET ciphertext = ?1 WHERE name = ?2",
        rusqlite::params![ciphertext, CA_KEY_SECRET],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO certificates (id, serial, names, ips, not_before, not_after, cert_pem, created_at)
         VALUES (?1, ?2, ?3, '[]', ?4, ?5, ?6, ?4)",
        rusqlite::params![
            uuid::Uuid::now_v7().to_string(),
            OLD_LEAF_SERIAL,
            json!([OLD_LEAF_NAME, OUTSIDE_NAME]).to_string(),
            rfc3339_in(-60),
            rfc3339_in(29 * 86_400),
            std::fs::read_to_string(&leaf).unwrap(),
        ],
    )
    .unwrap();
    (old_ca, leaf)
}

async fn cas(admin: &TestClient) -> Value {
    let (status, cas) = admin.get_json("/api/vault/cas").await;
    assert_eq!(status, StatusCode::OK, "{cas}");
    cas
}

fn reissues(picd: &Picd) -> i64 {
    picd.db()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'vault.ca.reissue'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn an_unconstrained_ca_is_reissued_at_start_and_still_signs_its_leaves_crl() {
    require_tools(&["openssl", "age"]);
    let (mut picd, admin) = picd_with_admin().await;
    let files = Scratch::new();
    let (_, recipient) = admin.get_json("/api/vault/age-public-key").await;
    picd.stop();
    let (old_ca, old_leaf) =
        plant_unconstrained_ca(&picd, &files, recipient["public_key"].as_str().unwrap());
    let old_serial = serial_of(&old_ca);
    picd.restart().await;
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;

    // A new, constrained root issues from now on; the old one is listed as retired.
    let ca = files.write(
        "new-ca.pem",
        download(&admin, "/api/vault/ca.crt", PEM).await,
    );
    let text = cert_text(&ca);
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
    assert_ne!(serial_of(&ca), old_serial, "the old root is still current");
    let listed = cas(&admin).await;
    assert_eq!(listed["current"]["serial"], serial_of(&ca), "{listed}");
    assert_eq!(listed["current"]["name_constraints"]["domain"], CELL_DOMAIN);
    let retired = listed["retired"].as_array().expect("retired");
    assert_eq!(retired.len(), 1, "{listed}");
    assert_eq!(retired[0]["serial"], old_serial, "{listed}");
    assert!(retired[0]["keep_until"].is_string(), "{listed}");
    assert!(retired[0].get("key_secret").is_none(), "{listed}");
    let (actor, detail): (String, String) = picd
        .db()
        .query_row(
            "SELECT actor, detail FROM audit_log WHERE action = 'vault.ca.reissue'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the re-issue is audited");
    assert_eq!(actor, "picd");
    assert!(detail.contains(&old_serial), "{detail}");
    assert!(
        picd.log().contains("re-issued the cell's root CA"),
        "{}",
        picd.log()
    );

    // The old leaf still verifies against the old root, not against the new one; its CRL
    // is signed by the old root and lists it once revoked (RFC 5280's name accepted).
    assert!(openssl_verify(&old_ca, &old_leaf, None).0);
    assert!(
        !openssl_verify(&ca, &old_leaf, None).0,
        "the new root vouches for the old leaf"
    );
    let old_crl_path = format!("/api/vault/crl?ca={old_serial}");
    let crl = files.write("old-crl.pem", download(&admin, &old_crl_path, PEM).await);
    let (ok, said) = openssl_verify(&old_ca, &old_leaf, Some(&crl));
    assert!(
        ok,
        "the old root's CRL refuses its leaf before revocation: {said}"
    );
    let (_, list) = admin.get_json("/api/vault/certs").await;
    let old = &list["certificates"][0];
    assert_eq!(
        (&old["serial"], &old["issuer_serial"]),
        (&json!(OLD_LEAF_SERIAL), &json!(old_serial))
    );
    let revoke = format!("/api/vault/certs/{}/revoke", old["id"].as_str().unwrap());
    let resp = admin
        .send_json(Method::POST, &revoke, &json!({ "reason": "keyCompromise" }))
        .await;
    let (status, revoked) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revocation_reason"], "key_compromise", "{revoked}");
    let crl = files.write(
        "old-crl-after.pem",
        download(&admin, &old_crl_path, PEM).await,
    );
    let crl_text = openssl(&["crl", "-noout", "-text", "-CAfile", &old_ca, "-in", &crl]);
    assert!(crl_text.contains("Key Compromise"), "{crl_text}");
    let (ok, said) = openssl_verify(&old_ca, &old_leaf, Some(&crl));
    assert!(!ok && said.contains("certificate revoked"), "{said}");
    // The new root's CRL is about its own certificates only.
    let new_crl = files.write("new-crl.pem", download(&admin, "/api/vault/crl", PEM).await);
    let new_text = openssl(&["crl", "-noout", "-text", "-CAfile", &ca, "-in", &new_crl]);
    assert!(
        !new_text.to_ascii_lowercase().contains(OLD_LEAF_SERIAL),
        "{new_text}"
    );

    // New leaves come from the new root and verify with its CRL.
    let issued = issue_cert(&admin, &json!({ "names": [CELL_HOST] })).await;
    assert_eq!(issued["issuer_serial"], serial_of(&ca), "{issued}");
    let leaf = files.write("leaf.pem", issued["cert_pem"].as_str().unwrap());
    let (ok, said) = openssl_verify(&ca, &leaf, Some(&new_crl));
    assert!(ok, "{said}");

    // Bad CA serials are JSON errors; a restart re-issues nothing more.
    for (query, status, code) in [
        ("ca=zz", StatusCode::BAD_REQUEST, "validation_failed"),
        ("ca=", StatusCode::BAD_REQUEST, "validation_failed"),
        (
            "ca=0123456789abcdef0123456789abcdef01234567ff",
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        ("ca=abcdef", StatusCode::NOT_FOUND, "not_found"),
        ("ca=1&ca=2", StatusCode::BAD_REQUEST, "invalid_query"),
    ] {
        let resp = admin.get(&format!("/api/vault/crl?{query}")).await;
        expect_error(resp, status, code).await;
    }
    picd.restart().await;
    assert_eq!(reissues(&picd), 1, "a second start re-issued the CA again");
    assert_no_internal_errors(&picd);
}

#[tokio::test]
async fn a_new_cell_domain_gets_a_new_root() {
    require_tools(&["openssl"]);
    let (picd, admin) = picd_with_admin().await;
    let files = Scratch::new();
    let before = files.write(
        "before.pem",
        download(&admin, "/api/vault/ca.crt", PEM).await,
    );
    issue_cert(&admin, &json!({ "names": [CELL_HOST] })).await;

    // Changing only the cell's name keeps the root.
    let (_, mut config) = admin.get_json("/api/config").await;
    config["cell"]["name"] = json!("house");
    let (status, body) = json_of(admin.send_json(Method::PUT, "/api/config", &config).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(reissues(&picd), 0);
    let same = files.write("same.pem", download(&admin, "/api/vault/ca.crt", PEM).await);
    assert_eq!(serial_of(&same), serial_of(&before));

    config["cell"]["domain"] = json!(NEW_DOMAIN);
    let (status, body) = json_of(admin.send_json(Method::PUT, "/api/config", &config).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let audit = last_audit(&picd.db());
    assert_eq!(audit.action, "config.update");
    let detail = &audit.detail;
    assert_eq!(detail["ca_reissued"], true, "{detail}");
    assert_eq!(detail["retired_ca_serial"], serial_of(&before), "{detail}");

    let after = files.write(
        "after.pem",
        download(&admin, "/api/vault/ca.crt", PEM).await,
    );
    let text = cert_text(&after);
    assert!(text.contains(&format!("DNS:{NEW_DOMAIN}")), "{text}");
    assert!(!text.contains(&format!("DNS:{CELL_DOMAIN}")), "{text}");
    let listed = cas(&admin).await;
    assert_eq!(
        listed["retired"][0]["serial"],
        serial_of(&before),
        "{listed}"
    );
    issue_cert(&admin, &json!({ "names": [format!("nas.{NEW_DOMAIN}")] })).await;
    let resp = admin
        .send_json(
            Method::POST,
            "/api/vault/certs",
            &json!({ "names": [CELL_HOST] }),
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_no_internal_errors(&picd);
}
