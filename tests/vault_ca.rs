//! The cell's certificate authority checked with the real `openssl`: an issued certificate
//! verifies against the downloaded root, carries the asked names and addresses, matches the
//! key handed out once, and fails `openssl verify -crl_check` after revocation, with the CRL
//! in PEM and in DER. Bad requests get the API's JSON errors.

mod common;

use common::keys::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NAMES: [&str; 2] = ["nas.home.example", "*.svc.home.example"];
const IPS: [&str; 2] = ["10.77.0.5", "fd77:77::5"];
/// How openssl prints the IPv6 address above.
const IPV6_AS_OPENSSL_PRINTS: &str = "FD77:77:0:0:0:0:0:5";
const DAYS: u32 = 30;
const DAY_SECS: u32 = 86_400;
const PEM: &str = "application/x-pem-file";
const INVALID: (u16, &str) = (400, "validation_failed");
const WRONG_SHAPE: (u16, &str) = (422, "invalid_body");

/// Whether `cert` is still valid `secs` from now (`openssl x509 -checkend`).
fn valid_for(cert: &str, secs: u32) -> bool {
    let secs = secs.to_string();
    let args = ["x509", "-noout", "-checkend", &secs, "-in", cert];
    run_tool("openssl", &args, None).status.success()
}

#[tokio::test]
async fn issued_certificate_verifies_until_revoked() {
    require_tools(&["openssl"]);
    let (_picd, admin) = picd_with_admin().await;
    let files = Scratch::new();
    let ca = files.write("ca.pem", download(&admin, "/api/vault/ca.crt", PEM).await);
    let ca_text = openssl(&["x509", "-noout", "-text", "-in", &ca]);
    assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
    assert!(
        ca_text.contains(&format!("{CELL_NAME} cell root CA")),
        "{ca_text}"
    );

    let issued = issue_cert(&admin, &json!({ "names": NAMES, "ips": IPS, "days": DAYS })).await;
    let id = issued["id"].as_str().expect("id").to_string();
    let cert = files.write("cert.pem", issued["cert_pem"].as_str().expect("cert_pem"));
    let key = files.write("key.pem", issued["key_pem"].as_str().expect("key_pem"));
    assert_eq!(
        (&issued["names"], &issued["ips"]),
        (&json!(NAMES), &json!(IPS))
    );

    let (ok, said) = openssl_verify(&ca, &cert, None);
    assert!(
        ok && said.contains(": OK"),
        "a fresh certificate does not verify: {said}"
    );
    // Against a root that is not the cell's it fails: the verification means something.
    let stranger = files.path("stranger.pem");
    let stranger_key = files.path("stranger.key");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &stranger_key,
        "-out",
        &stranger,
        "-subj",
        "/CN=stranger",
        "-days",
        "1",
    ]);
    assert!(
        !openssl_verify(&stranger, &cert, None).0,
        "verified by a stranger's root"
    );

    // The names and addresses, the serial and the validity are what was asked.
    let san = openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in", &cert]);
    for name in NAMES {
        assert!(
            san.contains(&format!("DNS:{name}")),
            "{name} missing: {san}"
        );
    }
    assert!(san.contains(&format!("IP Address:{}", IPS[0])), "{san}");
    assert!(
        san.contains(&format!("IP Address:{IPV6_AS_OPENSSL_PRINTS}")),
        "{san}"
    );
    let serial = openssl(&["x509", "-noout", "-serial", "-in", &cert]);
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    assert_eq!(
        serial.to_lowercase(),
        issued["serial"].as_str().unwrap(),
        "serial"
    );
    assert!(
        valid_for(&cert, (DAYS - 1) * DAY_SECS),
        "expires before {DAYS} days"
    );
    assert!(
        !valid_for(&cert, (DAYS + 1) * DAY_SECS),
        "valid beyond {DAYS} days"
    );

    // The key handed out is the certificate's key.
    let cert_pub = openssl(&["x509", "-noout", "-pubkey", "-in", &cert]);
    let key_pub = openssl(&["pkey", "-pubout", "-in", &key]);
    assert!(cert_pub.contains("BEGIN PUBLIC KEY"), "{cert_pub}");
    assert_eq!(cert_pub, key_pub, "key_pem does not belong to cert_pem");

    // Before revocation the CRL, signed by the CA, lets the certificate through.
    let crl = files.write("crl.pem", download(&admin, "/api/vault/crl", PEM).await);
    let crl_text = openssl(&["crl", "-noout", "-text", "-CAfile", &ca, "-in", &crl]);
    assert!(!crl_text.contains(&serial), "{crl_text}");
    let (ok, said) = openssl_verify(&ca, &cert, Some(&crl));
    assert!(
        ok,
        "the certificate fails the CRL check before revocation: {said}"
    );

    let revoke = format!("/api/vault/certs/{id}/revoke");
    let resp = admin
        .send_json(
            Method::POST,
            &revoke,
            &json!({ "reason": "key_compromise" }),
        )
        .await;
    let (status, revoked) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revocation_reason"], "key_compromise");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert!(revoked.get("key_pem").is_none(), "{revoked}");

    let crl_after = files.write(
        "crl-after.pem",
        download(&admin, "/api/vault/crl", PEM).await,
    );
    let (ok, said) = openssl_verify(&ca, &cert, Some(&crl_after));
    assert!(!ok, "a revoked certificate passes the CRL check: {said}");
    assert!(said.contains("certificate revoked"), "{said}");
    // Without the CRL it still verifies: the CRL is what refuses it.
    assert!(openssl_verify(&ca, &cert, None).0);
    let crl_number = |crl: &str| openssl(&["crl", "-noout", "-crlnumber", "-in", crl]);
    assert_ne!(crl_number(&crl), crl_number(&crl_after), "CRL number");

    // The DER form, checked against the CA, lists the serial and the reason, and converted
    // to PEM it refuses the certificate too.
    let der_bytes = download(&admin, "/api/vault/crl?format=der", "application/pkix-crl").await;
    let der = files.write("crl.der", der_bytes);
    let der_text = openssl(&[
        "crl", "-inform", "DER", "-noout", "-text", "-CAfile", &ca, "-in", &der,
    ]);
    assert!(
        der_text.contains(&format!("Serial Number: {serial}")),
        "{der_text}"
    );
    assert!(der_text.contains("Key Compromise"), "{der_text}");
    let from_der = files.path("crl-from-der.pem");
    openssl(&["crl", "-inform", "DER", "-in", &der, "-out", &from_der]);
    let (ok, said) = openssl_verify(&ca, &cert, Some(&from_der));
    assert!(!ok && said.contains("certificate revoked"), "{said}");
}

#[tokio::test]
async fn private_key_is_shown_only_once() {
    let (picd, admin) = picd_with_admin().await;
    let issued = issue_cert(&admin, &json!({ "names": ["printer.home.example"] })).await;
    let key_pem = issued["key_pem"].as_str().expect("key_pem");
    assert!(key_pem.contains("PRIVATE KEY"), "{key_pem}");
    let key_lines = pem_body_lines(key_pem);
    assert!(!key_lines.is_empty());

    let listing = admin.get("/api/vault/certs").await.text().await.unwrap();
    let list: Value = serde_json::from_str(&listing).expect("JSON listing");
    let certs = list["certificates"].as_array().expect("certificates");
    assert_eq!(certs.len(), 1, "{list}");
    assert_eq!(certs[0]["id"], issued["id"]);
    assert_eq!(certs[0]["cert_pem"], issued["cert_pem"]);
    assert_eq!(certs[0]["revoked_at"], Value::Null);
    assert!(certs[0].get("key_pem").is_none(), "{list}");
    assert!(!listing.contains("PRIVATE KEY"), "{listing}");
    // No single-certificate GET hands it out either.
    let one = format!("/api/vault/certs/{}", issued["id"].as_str().unwrap());
    let single = admin.get(&one).await.text().await.unwrap();

    // picd does not keep the key: not in the database, its WAL, the log or the audit export.
    let export = admin.get("/api/audit/export").await.text().await.unwrap();
    for line in &key_lines {
        assert_absent_from_state(&picd, line.as_bytes(), "the certificate's key");
        for (what, text) in [
            ("listing", &listing),
            ("single GET", &single),
            ("export", &export),
        ] {
            assert!(!text.contains(line.as_str()), "the key is in the {what}");
        }
    }
    // Control: the same search finds the certificate, which is kept.
    let kept = pem_body_lines(issued["cert_pem"].as_str().unwrap());
    assert!(
        kept.iter().any(|l| stored_in_state(&picd, l.as_bytes())),
        "control"
    );
}

#[tokio::test]
async fn bad_certificate_requests_are_refused() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let too_many: Vec<String> = (0..101).map(|i| format!("h{i}.home.example")).collect();
    let certs = "/api/vault/certs";
    let ok_body = || Body::Json(json!({ "names": ["ok.home.example"] }));
    let issue =
        |body: Value, expect| refused(Who::Admin, Method::POST, certs, Body::Json(body), expect);
    let get = |who, path: &str, expect| refused(who, Method::GET, path, Body::Empty, expect);
    let days = |days: Value| json!({ "names": ["ok.home.example"], "days": days });
    clients
        .check_all(&[
            issue(json!({}), INVALID),
            issue(json!({ "names": [], "ips": [] }), INVALID),
            issue(json!({ "names": ["bad name!"] }), INVALID),
            issue(json!({ "names": ["-leading.example"] }), INVALID),
            issue(json!({ "names": ["*.com"] }), INVALID),
            issue(json!({ "names": ["a..example"] }), INVALID),
            issue(json!({ "names": [""] }), INVALID),
            issue(json!({ "names": too_many }), INVALID),
            issue(json!({ "ips": ["10.0.0.300"] }), INVALID),
            issue(json!({ "ips": ["not-an-ip"] }), INVALID),
            issue(json!({ "ips": ["10.0.0.0/24"] }), INVALID),
            issue(days(json!(0)), INVALID),
            issue(days(json!(10000)), INVALID),
            issue(days(json!(-1)), WRONG_SHAPE),
            issue(days(json!("30")), WRONG_SHAPE),
            issue(json!({ "names": "ok.home.example" }), WRONG_SHAPE),
            issue(
                json!({ "names": ["ok.home.example"], "key": "mine" }),
                WRONG_SHAPE,
            ),
            refused(
                Who::Admin,
                Method::POST,
                certs,
                raw(JSON, "{\"names\": ["),
                (400, "malformed_json"),
            ),
            refused(
                Who::AdminNoCsrf,
                Method::POST,
                certs,
                ok_body(),
                (403, "csrf_invalid"),
            ),
            refused(
                Who::Peer,
                Method::POST,
                certs,
                ok_body(),
                (403, "admin_only"),
            ),
            get(Who::Peer, "/api/vault/ca.crt", (403, "admin_only")),
            get(Who::Anonymous, "/api/vault/crl", (401, "unauthorized")),
            get(Who::Admin, "/api/vault/crl?format=xml", INVALID),
        ])
        .await;
    // Every wrong field is named, and only those.
    let body =
        json!({ "names": ["ok.home.example", "bad name!"], "ips": ["10.77.0.4", "x"], "days": 0 });
    let resp = clients.admin.send_json(Method::POST, certs, &body).await;
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    let mut named: Vec<&String> = body["fields"].as_object().expect("fields").keys().collect();
    named.sort();
    assert_eq!(named, ["days", "ips[1]", "names[1]"], "{body}");
    let stored: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM certificates", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0, "a refused request issued a certificate");
    assert_no_internal_errors(&picd);
}

#[tokio::test]
async fn revocation_errors() {
    let (picd, admin) = picd_with_admin().await;
    let issued = issue_cert(&admin, &json!({ "ips": ["10.77.0.7"] })).await;
    let revoke = format!("/api/vault/certs/{}/revoke", issued["id"].as_str().unwrap());

    let resp = admin
        .send_json(Method::POST, &revoke, &json!({ "reason": "bored" }))
        .await;
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    // The message lists what is accepted, in both spellings.
    let listed = body["fields"]["reason"].as_str().unwrap_or_default();
    for name in [
        "key_compromise",
        "keyCompromise",
        "cACompromise",
        "superseded",
    ] {
        assert!(listed.contains(name), "{name} not listed: {body}");
    }
    let resp = admin
        .send_json(Method::POST, &revoke, &json!({ "why": "superseded" }))
        .await;
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let (_, list) = admin.get_json("/api/vault/certs").await;
    assert_eq!(list["certificates"][0]["revoked_at"], Value::Null, "{list}");

    // No body at all means "unspecified".
    let token = admin.csrf_token().await;
    let request = admin
        .http
        .post(admin.url(&revoke))
        .header("x-csrf-token", &token);
    let (status, body) = json_of(request.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revocation_reason"], "unspecified");

    // Twice is a conflict, and the first reason stays.
    let resp = admin
        .send_json(Method::POST, &revoke, &json!({ "reason": "superseded" }))
        .await;
    expect_error(resp, StatusCode::CONFLICT, "already_revoked").await;
    let (_, list) = admin.get_json("/api/vault/certs").await;
    assert_eq!(
        list["certificates"][0]["revocation_reason"], "unspecified",
        "{list}"
    );

    let unknown = format!("/api/vault/certs/{}/revoke", uuid::Uuid::now_v7());
    let resp = admin.send_json(Method::POST, &unknown, &json!({})).await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.actor.as_str(), audit.result.as_str()),
        (ADMIN_USER, "failure")
    );
    assert_no_internal_errors(&picd);
}
