//! The vault's secrets with the real `age`: the CA key is real age ciphertext that
//! `age -d -i vault.key` opens, and its plaintext is nowhere else (database, WAL, log, API
//! responses, audit export); the identity file is private and refused when it is not;
//! `picd vault rekey` keeps every secret readable and makes the old identity useless. Also the
//! trust keys of other cells, made with `age-keygen` and `wg`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::keys::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The vault secret holding the CA's private key (src/vault/ca.rs).
const CA_KEY_SECRET: &str = "ca.key";
/// Secrets shorter than this (the vault's canary) are too common to search for.
const SEARCHABLE_LEN: usize = 16;
const PEER_NAME: &str = "laptop";
const PEM: &str = "application/x-pem-file";

fn identity_path(picd: &Picd) -> std::path::PathBuf {
    picd.state_dir().join("vault.key")
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What a leak of a secret's plaintext would contain: a PEM's base64 lines, or the whole text.
fn needles(plaintext: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(plaintext);
    if text.contains("-----BEGIN") {
        pem_body_lines(&text)
            .into_iter()
            .map(String::into_bytes)
            .collect()
    } else {
        vec![text.trim().as_bytes().to_vec()]
    }
}

fn age_public_key_of(identity: &Path) -> String {
    tool_text("age-keygen", &["-y", identity.to_str().unwrap()], None)
        .trim()
        .to_string()
}

#[tokio::test]
async fn ca_key_is_real_age_ciphertext_and_its_plaintext_is_nowhere_else() {
    require_tools(&["age", "age-keygen", "openssl"]);
    let options = PicdOptions {
        // The most talkative log, so that a leak into it would show.
        env: vec![("PICD_LOG_LEVEL".into(), "debug".into())],
        ..PicdOptions::default()
    };
    let (picd, admin) = picd_with_admin_using(options).await;
    let mut seen = Transcript::default();
    let identity = identity_path(&picd);

    // Exercise what touches the CA key and the vault, keeping every answer.
    let key = seen
        .json_ok(admin.get("/api/vault/age-public-key").await)
        .await;
    assert_eq!(key["public_key"], age_public_key_of(&identity));
    let (status, ca_pem) = seen.record(admin.get("/api/vault/ca.crt").await).await;
    assert_eq!(status, StatusCode::OK);
    let certs = "/api/vault/certs";
    let nas = admin
        .send_json(
            Method::POST,
            certs,
            &json!({ "names": ["nas.home.example"] }),
        )
        .await;
    let issued = seen.json_ok(nas).await;
    let revoke = format!("/api/vault/certs/{}/revoke", issued["id"].as_str().unwrap());
    seen.json_ok(admin.send_json(Method::POST, &revoke, &json!({})).await)
        .await;
    let bad = admin
        .send_json(Method::POST, certs, &json!({ "names": ["bad name!"] }))
        .await;
    assert_eq!(seen.record(bad).await.0, StatusCode::BAD_REQUEST);
    for path in [
        "/api/vault/certs",
        "/api/vault/crl",
        "/api/vault/crl?format=der",
        "/api/vault/trust-keys",
        "/api/status",
        "/api/config",
        "/api/audit?limit=500",
        "/api/audit/verify",
        "/api/auth/me",
    ] {
        let (status, _) = seen.record(admin.get(path).await).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, export) = seen.record(admin.get("/api/audit/export").await).await;
    assert_eq!(status, StatusCode::OK);

    // The stored CA key opens with the age tool and the vault's identity, and is the CA's key.
    let conn = picd.db();
    let secrets = stored_secrets(&conn);
    let ca_key = secrets.iter().find(|(name, _)| name == CA_KEY_SECRET);
    let ciphertext = &ca_key.expect("the CA key is a vault secret").1;
    assert!(
        ciphertext.starts_with(b"age-encryption.org/v1\n"),
        "not age"
    );
    let plaintext = age_decrypt(&identity, ciphertext).expect("age -d with vault.key");
    let plaintext_pem = String::from_utf8(plaintext.clone()).expect("a PEM");
    assert!(
        plaintext_pem.contains("-----BEGIN PRIVATE KEY-----"),
        "no key"
    );
    let scratch = Scratch::new();
    let ca_file = scratch.write("ca.pem", &ca_pem);
    let key_file = scratch.write("ca.key", &plaintext);
    let ca_pub = openssl(&["x509", "-noout", "-pubkey", "-in", &ca_file]);
    let key_pub = openssl(&["pkey", "-pubout", "-in", &key_file]);
    assert_eq!(ca_pub, key_pub, "the vault's ca.key is not the CA's key");
    // Another identity cannot open it.
    let stranger = scratch.path("stranger.key");
    tool_ok("age-keygen", &["-o", &stranger], None);
    assert!(age_decrypt(Path::new(&stranger), ciphertext).is_err());

    // The plaintext of the CA key, and of every other secret, is nowhere else.
    assert!(
        picd.log().contains("DEBUG"),
        "the log is not at debug level"
    );
    let mut searched = 0;
    for (name, ciphertext) in &secrets {
        let plaintext = age_decrypt(&identity, ciphertext).expect("every secret opens");
        if plaintext.len() < SEARCHABLE_LEN {
            continue;
        }
        for needle in needles(&plaintext) {
            let what = format!("secret '{name}'");
            assert_absent_from_state(&picd, &needle, &what);
            assert!(
                !contains_bytes(&export, &needle),
                "{what} is in the audit export"
            );
            seen.assert_absent(&needle, &what);
            searched += 1;
        }
    }
    assert!(
        searched >= pem_body_lines(&plaintext_pem).len(),
        "too little searched"
    );
    // Control: the same search finds what is stored in plain text (the CA certificate).
    let ca_lines = pem_body_lines(&String::from_utf8(ca_pem).unwrap());
    assert!(
        ca_lines
            .iter()
            .any(|l| stored_in_state(&picd, l.as_bytes())),
        "control"
    );
    assert!(seen.len() > 10, "too few responses collected");
}

#[tokio::test]
async fn identity_file_is_private_and_refused_when_readable() {
    let (mut picd, _admin) = picd_with_admin().await;
    let identity = identity_path(&picd);
    assert_eq!(mode_of(&identity), 0o600, "vault.key mode");
    picd.stop();

    for mode in [0o644, 0o640] {
        chmod(&identity, mode);
        let out = serve_state_dir_expecting_failure(&picd.state_dir());
        let stderr = stderr_of(&out);
        assert!(stderr.contains("chmod 600"), "mode {mode:o}: {stderr}");
        assert!(stderr.contains("vault.key"), "mode {mode:o}: {stderr}");
        assert_eq!(mode_of(&identity), mode, "picd changed the mode itself");
    }

    // Private again, it starts and its CA still signs.
    chmod(&identity, 0o600);
    picd.restart().await;
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    issue_cert(&admin, &json!({ "names": ["nas.home.example"] })).await;
}

/// Every stored secret: (name, ciphertext, plaintext opened with `identity`).
fn open_all(picd: &Picd, identity: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    stored_secrets(&picd.db())
        .into_iter()
        .map(|(name, c)| {
            let p = age_decrypt(identity, &c).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, c, p)
        })
        .collect()
}

/// `picd SUBCOMMAND... --state-dir STATE`.
fn cli(picd: &Picd, args: &[&str]) -> std::process::Output {
    let state = picd.state_dir();
    let mut all = args.to_vec();
    all.extend(["--state-dir", state.to_str().unwrap()]);
    picd_cli(&all, None)
}

#[tokio::test]
async fn rekey_keeps_every_secret_and_retires_the_old_identity() {
    require_tools(&["age", "age-keygen", "openssl"]);
    let (mut picd, admin) = picd_with_admin().await;
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": PEER_NAME }))
        .await;
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let ca_before = download(&admin, "/api/vault/ca.crt", PEM).await;
    let identity = identity_path(&picd);
    let before = open_all(&picd, &identity);
    let names: Vec<&str> = before.iter().map(|(n, _, _)| n.as_str()).collect();
    assert!(names.contains(&CA_KEY_SECRET), "{names:?}");
    assert!(names.iter().any(|n| n.contains(PEER_NAME)), "{names:?}");
    let old_identity_bytes = std::fs::read(&identity).unwrap();

    // While picd runs, rekey is refused (the state directory's lock) and changes nothing.
    let out = cli(&picd, &["vault", "rekey"]);
    assert!(!out.status.success(), "rekey ran beside a running picd");
    let said = stderr_of(&out);
    assert!(
        said.contains("running picd") && said.contains("stop it first"),
        "{said}"
    );
    assert_eq!(std::fs::read(&identity).unwrap(), old_identity_bytes);
    assert_eq!(open_all(&picd, &identity), before, "secrets changed");

    // A state directory with no vault (a typo) is refused, not made into a new cell.
    let scratch = Scratch::new();
    let missing = scratch.path("no-such-state");
    let out = picd_cli(&["vault", "rekey", "--state-dir", &missing], None);
    assert!(
        !out.status.success(),
        "rekey of a missing state directory succeeded"
    );
    assert!(
        stderr_of(&out).contains("no vault identity"),
        "{}",
        stderr_of(&out)
    );
    assert!(!Path::new(&missing).exists(), "rekey created {missing}");

    let old_identity = scratch.write("old-vault.key", &old_identity_bytes);
    let old_identity = Path::new(&old_identity);
    picd.stop();
    let out = cli(&picd, &["vault", "rekey"]);
    assert!(out.status.success(), "rekey failed: {}", stderr_of(&out));
    let said = stdout_of(&out);
    let count = format!("re-encrypted {} secret(s)", before.len());
    assert!(said.contains(&count), "{said}");
    let new_public = age_public_key_of(&identity);
    assert!(said.contains(&new_public), "{said}");
    assert_ne!(new_public, age_public_key_of(old_identity));
    assert_eq!(mode_of(&identity), 0o600, "new vault.key mode");
    assert!(!picd.state_dir().join("vault.key.new").exists());

    // Every secret: new ciphertext, same plaintext with the new identity, none with the old.
    let after = open_all(&picd, &identity);
    assert_eq!(after.len(), before.len());
    for ((name, old_c, old_p), (new_name, new_c, new_p)) in before.iter().zip(&after) {
        assert_eq!(name, new_name);
        assert_ne!(old_c, new_c, "{name} was not re-encrypted");
        assert_eq!(old_p, new_p, "{name} changed its plaintext");
        let opened = age_decrypt(old_identity, new_c);
        assert!(opened.is_err(), "the old identity still opens {name}");
    }
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.action.as_str(), audit.actor.as_str()),
        ("vault.rekey", "cli")
    );
    let verified = cli(&picd, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", stdout_of(&verified));

    // picd starts with the new identity, and the same CA key still signs.
    picd.restart().await;
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let (_, key) = admin.get_json("/api/vault/age-public-key").await;
    assert_eq!(key["public_key"], new_public);
    let ca_after = download(&admin, "/api/vault/ca.crt", PEM).await;
    assert_eq!(ca_after, ca_before, "the CA changed");
    let issued = issue_cert(&admin, &json!({ "names": ["after-rekey.home.example"] })).await;
    let ca = scratch.write("ca.pem", &ca_after);
    let cert = scratch.write("cert.pem", issued["cert_pem"].as_str().unwrap());
    let (ok, said) = openssl_verify(&ca, &cert, None);
    assert!(ok, "{said}");
    // The peer's private key still reaches its config.
    let resp = admin.get(&format!("/api/peers/{PEER_NAME}/config")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let config = resp.text().await.unwrap();
    let private = after
        .iter()
        .find(|(n, _, _)| n.contains(PEER_NAME) && n.contains("private"))
        .map(|(_, _, p)| String::from_utf8(p.clone()).unwrap())
        .expect("the peer's private key secret");
    assert!(config.contains(private.trim()), "{config}");
}

#[tokio::test]
async fn trust_keys_of_other_cells() {
    require_tools(&["age-keygen", "wg"]);
    let (picd, admin) = picd_with_admin().await;
    let scratch = Scratch::new();
    let age_identity = scratch.path("north.key");
    tool_ok("age-keygen", &["-o", &age_identity], None);
    let age_public = age_public_key_of(Path::new(&age_identity));
    let age_secret_line = std::fs::read_to_string(&age_identity)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let wg_private = tool_ok("wg", &["genkey"], None);
    let wg_public = tool_text("wg", &["pubkey"], Some(&wg_private))
        .trim()
        .to_string();

    let admin = &admin;
    let add = |body: Value| async move {
        admin
            .send_json(Method::POST, "/api/vault/trust-keys", &body)
            .await
    };
    let (status, age_key) =
        json_of(add(json!({ "name": "north", "kind": "age", "public_key": age_public })).await)
            .await;
    assert_eq!(status, StatusCode::OK, "{age_key}");
    assert_eq!(age_key["public_key"], age_public);
    let (status, wg_key) = json_of(
        add(json!({ "name": "north wg", "kind": "wireguard", "public_key": wg_public })).await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{wg_key}");
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.actor.as_str(), audit.result.as_str()),
        (ADMIN_USER, "success")
    );
    assert_eq!(
        (audit.target_type.as_str(), &json!(audit.target_id)),
        ("trust_key", &wg_key["id"])
    );

    let (_, list) = admin.get_json("/api/vault/trust-keys").await;
    let listed: Vec<[&Value; 2]> = list["trust_keys"]
        .as_array()
        .expect("trust_keys")
        .iter()
        .map(|k| [&k["kind"], &k["public_key"]])
        .collect();
    let (age, wg) = (json!(["age", age_public]), json!(["wireguard", wg_public]));
    assert_eq!(json!(listed), json!([age, wg]), "{list}");

    // Duplicates and bad keys are refused; a secret key sent by mistake is not echoed back.
    let again = add(json!({ "name": "again", "kind": "wireguard", "public_key": wg_public })).await;
    expect_error(again, StatusCode::CONFLICT, "already_exists").await;
    let mut broken_age = age_public.clone();
    broken_age.pop();
    broken_age.push(if age_public.ends_with('q') { 'p' } else { 'q' });
    let short_wg = &wg_public[..wg_public.len() - 4];
    for (kind, key) in [
        ("age", broken_age.as_str()),
        ("age", age_secret_line.as_str()),
        ("age", wg_public.as_str()),
        ("wireguard", short_wg),
        ("wireguard", "not base64 at all!"),
        ("wireguard", age_public.as_str()),
        ("ssh", wg_public.as_str()),
    ] {
        let resp = add(json!({ "name": "bad", "kind": kind, "public_key": key })).await;
        let body = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert!(!body.to_string().contains(&age_secret_line), "{body}");
    }
    let resp = add(json!({ "name": "x", "kind": "age" })).await;
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let resp = add(json!({ "name": "", "kind": "age", "public_key": broken_age })).await;
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(body["fields"]["name"].is_string() && body["fields"]["public_key"].is_string());

    // Remove one: gone from the list; removing it again is 404.
    let path = format!("/api/vault/trust-keys/{}", age_key["id"].as_str().unwrap());
    let resp = admin.send_json(Method::DELETE, &path, &json!(null)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, list) = admin.get_json("/api/vault/trust-keys").await;
    let keys = list["trust_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{list}");
    assert_eq!(keys[0]["id"], wg_key["id"]);
    let resp = admin.send_json(Method::DELETE, &path, &json!(null)).await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert_no_internal_errors(&picd);
}
