//! Mail the peers use, end to end: the cell (picd with its userspace WireGuard) in a network
//! namespace with its own Docker engine started inside that namespace, so the mail
//! container's host networking is the cell's; two peers in namespaces of their own over
//! WireGuard. Alice sends to bob with curl over submission (587, STARTTLS, her login, the
//! cell's CA), bob reads it with curl over IMAPS (993). A login without TLS is refused off
//! loopback, so is mail to another domain (no open relay) and a wrong password; the ports are
//! dropped for a packet that reaches the cell's WireGuard address off the tunnel.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::docker::{build_images, Dockerd};
use common::netns::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const ACCOUNTS: &str = "/api/services/catalog/mail/accounts";
const SUBJECT: &str = "Dinner at eight";
const HOST: &str = "mail.home.example";
/// curl's exit codes: CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR
/// (an SMTP command refused), CURLE_LOGIN_DENIED.
const COULDNT_CONNECT: i32 = 7;
const TIMED_OUT: i32 = 28;
const LOGIN_DENIED: i32 = 67;
/// How long the mail takes from submission to bob's INBOX (Postfix's queue, then LMTP).
const DELIVERED_WITHIN: Duration = Duration::from_secs(20);

/// curl in a peer's namespace with `mail.<domain>` resolved to `cell` (the address the cell's
/// DNS gave the peer): (exit code, stdout, stderr).
fn curl_in(ns: &str, cell: &str, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns, "curl", "-s", "-S", "--max-time", "15"]);
    for port in [587, 993, 143] {
        command
            .arg("--resolve")
            .arg(format!("{HOST}:{port}:{cell}"));
    }
    let out = command.args(args).output().expect("running curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first IPv4 address the cell's DNS (at `dns`) answers a peer for `mail.<domain>`.
fn address_in_the_cells_dns(ns: &str, dns: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "dig", "+short", "+time=2", "+tries=3"])
        .arg(format!("@{dns}"))
        .args([HOST, "A"])
        .output()
        .expect("running dig (apt-get install bind9-dnsutils)");
    let answer = String::from_utf8_lossy(&out.stdout);
    answer.lines().next().unwrap_or_default().trim().to_string()
}

/// Alice's submission of `message` to `rcpt`, with `extra` arguments (TLS or not).
fn submit(
    ns: &str,
    cell: &str,
    login: &str,
    rcpt: &str,
    message: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec![
        "-v",
        "--url",
        "smtp://mail.home.example:587",
        "--user",
        login,
        "--mail-from",
        "alice@home.example",
        "--mail-rcpt",
        rcpt,
        "-T",
    ];
    let path = message.to_string_lossy().into_owned();
    args.push(&path);
    args.extend_from_slice(extra);
    let (code, out, log) = curl_in(ns, cell, &args);
    (code, out, without_credentials(&log))
}

/// curl's trace without the line that answers `334` (the base64 login and password).
fn without_credentials(log: &str) -> String {
    let mut kept = Vec::new();
    let mut hide_next = false;
    for line in log.lines() {
        if hide_next && line.starts_with("> ") {
            kept.push("> (credentials hidden)");
            hide_next = false;
            continue;
        }
        hide_next |= line.starts_with("< 334");
        kept.push(line);
    }
    kept.join("\n")
}

#[tokio::test]
async fn a_peer_sends_over_submission_and_another_reads_over_imaps_both_with_tls() {
    require_root_and_tools(&["curl", "dig"]);
    let engine_dir = Dockerd::new_dir();
    let socket = Dockerd::socket_in(&engine_dir).display().to_string();
    let options = LabOptions {
        reconcile_interval_seconds: 2,
        env: vec![("PICD_DOCKER_SOCKET".into(), socket)],
        ..LabOptions::default()
    };
    let mut lab = Lab::start(options).await;
    let dockerd = Dockerd::private_in_netns(&lab.cell_ns, engine_dir);
    let built = build_images(&lab.state_dir(), &dockerd);
    assert!(built.contains("mail: image sha256:"), "{built}");
    let admin = lab.admin().await;
    let mut clients = Vec::new();
    for name in ["alice", "bob"] {
        create_peer(&admin, json!({ "name": name })).await;
        let config = config_text(&admin, &format!("/api/peers/{name}/config")).await;
        let client = lab.connect(&config);
        assert!(
            lab.tunnel_works_within(&client, Duration::from_secs(10)),
            "{name}'s tunnel"
        );
        clients.push(client);
    }
    let (alice_ns, bob_ns) = (clients[0].ns.clone(), clients[1].ns.clone());

    let resp = admin
        .send_json(Method::POST, "/api/store/install", &json!({ "id": "mail" }))
        .await;
    let body = resp.text().await.unwrap();
    assert!(body.contains("\"step\":\"done\""), "{body}");
    assert!(!body.contains("\"failed\""), "{body}");
    let (_, active) = admin.get_json("/api/services/active").await;
    let ports = &active["services"][0]["ports"];
    // The standard ports: nothing else holds them in the cell's namespace.
    assert_eq!(ports["imaps"], 993, "{active}");
    assert_eq!(ports["submission"], 587, "{active}");
    let imap_port = ports["imap"].as_u64().expect("the loopback imap port");
    // The peers find the mail server by name, through the cell's DNS.
    let cell = address_in_the_cells_dns(&alice_ns, &lab.cell_wg_addr());
    assert_eq!(cell, lab.cell_wg_addr(), "{HOST} in the cell's DNS");

    // The certificate for mail.<domain>, from the cell's CA; its key readable by root only.
    let config_dir = lab.state_dir().join("services/mail/config");
    let key_mode = std::fs::metadata(config_dir.join("tls-key.pem"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(key_mode.ok(), Some(0o600));
    let resp = admin.get("/api/vault/ca.crt").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ca_file = lab.state_dir().join("../cell-ca.pem");
    std::fs::write(&ca_file, resp.text().await.unwrap()).unwrap();
    let ca = ca_file.to_string_lossy().into_owned();

    let mut passwords = Vec::new();
    for peer in ["alice", "bob"] {
        let resp = admin
            .send_json(Method::POST, ACCOUNTS, &json!({ "peer": peer }))
            .await;
        let (status, answer) = json_of(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let (_, creds) = admin
            .get_json(&format!("{ACCOUNTS}/{peer}/credentials"))
            .await;
        let endpoints = creds["endpoints"].as_array().expect("endpoints").clone();
        let named = |n: &str| endpoints.iter().find(|e| e["name"] == n).cloned().unwrap();
        assert_eq!(named("imaps")["port"], 993, "{creds}");
        assert_eq!(named("imaps")["tls"], "implicit", "{creds}");
        assert_eq!(named("submission")["port"], 587, "{creds}");
        assert_eq!(named("submission")["tls"], "starttls", "{creds}");
        assert_eq!(named("submission")["host"], HOST, "{creds}");
        assert_eq!(creds["url"], format!("imaps://{HOST}:993/"), "{creds}");
        assert_eq!(creds["address"], format!("{peer}@home.example"), "{creds}");
        let setup = creds["setup"].as_str().unwrap();
        assert!(
            setup.contains("port 993") && setup.contains("port 587"),
            "{setup}"
        );
        passwords.push(creds["password"].as_str().unwrap().to_string());
    }
    let alice_login = format!("alice:{}", passwords[0]);
    let bob_login = format!("bob:{}", passwords[1]);

    let message = lab.state_dir().join("../message.eml");
    std::fs::write(
        &message,
        format!("From: alice@home.example\r\nTo: bob@home.example\r\nSubject: {SUBJECT}\r\n\r\nSee you there.\r\n"),
    )
    .unwrap();
    let tls = ["--ssl-reqd", "--cacert", ca.as_str()];

    // The container listens on the cell's WireGuard address once a pass saw the interface.
    let reachable = eventually(Duration::from_secs(30), || {
        let args = [
            "--url",
            "imaps://mail.home.example:993/",
            "--cacert",
            ca.as_str(),
            "--user",
            &bob_login,
        ];
        curl_in(&bob_ns, &cell, &args).0 == 0
    });
    assert!(reachable, "IMAPS on {cell}:993 never answered bob");
    // Postfix starts beside Dovecot, a moment later: its greeting (curl's HELP is refused).
    let greeted = eventually(Duration::from_secs(30), || {
        let args = [
            "--url",
            "smtp://mail.home.example:587/",
            "--connect-timeout",
            "2",
        ];
        let (code, _, log) = curl_in(&alice_ns, &cell, &args);
        code != COULDNT_CONNECT && code != TIMED_OUT && !log.contains("Couldn't connect")
    });
    assert!(greeted, "submission on {cell}:587 never answered alice");

    // Alice sends to bob: STARTTLS with the cell's CA, her own login.
    let (code, _, log) = submit(
        &alice_ns,
        &cell,
        &alice_login,
        "bob@home.example",
        &message,
        &tls,
    );
    assert_eq!(code, 0, "{log}");

    // Bob reads it over IMAPS.
    let fetch = format!("imaps://{HOST}:993/INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)");
    let mut last = (0, String::new(), String::new());
    let delivered = eventually(DELIVERED_WITHIN, || {
        last = curl_in(
            &bob_ns,
            &cell,
            &["--url", &fetch, "--cacert", &ca, "--user", &bob_login],
        );
        last.1.contains(SUBJECT)
    });
    assert!(delivered, "bob never got alice's mail: {last:?}");

    // Without TLS, off loopback: no login on submission, no plain IMAP port at all.
    let (code, _, log) = submit(
        &alice_ns,
        &cell,
        &alice_login,
        "bob@home.example",
        &message,
        &[],
    );
    assert_ne!(code, 0, "a plaintext submission was accepted: {log}");
    assert!(
        log.contains("530 5.7.0 Must issue a STARTTLS command first"),
        "{log}"
    );
    assert!(
        !log.contains("AUTH PLAIN"),
        "the password went out in clear: {log}"
    );
    let plain = format!("imap://{cell}:{imap_port}/");
    let (code, _, log) = curl_in(&alice_ns, &cell, &["--url", &plain, "--user", &alice_login]);
    assert_eq!(
        code, COULDNT_CONNECT,
        "the plain IMAP port is reachable off loopback: {log}"
    );

    // No open relay: mail to another domain is refused at RCPT, with the reason.
    let (code, _, log) = submit(
        &alice_ns,
        &cell,
        &alice_login,
        "carol@example.org",
        &message,
        &tls,
    );
    assert_ne!(code, 0, "mail to another domain was accepted: {log}");
    assert!(
        log.contains("554 5.7.1") && log.contains("delivers only to its own addresses"),
        "{log}"
    );
    // A wrong password, on either.
    let wrong = format!("alice:{}x", passwords[0]);
    let (code, _, log) = submit(&alice_ns, &cell, &wrong, "bob@home.example", &message, &tls);
    assert_eq!(code, LOGIN_DENIED, "a wrong password on submission: {log}");
    let (code, _, log) = curl_in(
        &bob_ns,
        &cell,
        &[
            "--url",
            &fetch,
            "--cacert",
            &ca,
            "--user",
            &format!("bob:{}x", passwords[1]),
        ],
    );
    assert_eq!(code, LOGIN_DENIED, "a wrong password on IMAPS: {log}");

    // A packet for the cell's WireGuard address that arrives off the tunnel (alice's veth to
    // the cell, routed there) is dropped by the firewall: the ports are the peers' only.
    let via = Command::new("ip")
        .args([
            "-n",
            &alice_ns,
            "-4",
            "route",
            "show",
            "match",
            &lab.cell_addr(),
        ])
        .output()
        .unwrap();
    let via = String::from_utf8_lossy(&via.stdout);
    let gateway = via
        .split_whitespace()
        .skip_while(|w| *w != "via")
        .nth(1)
        .unwrap_or_else(|| panic!("no route to the cell's endpoint: {via}"))
        .to_string();
    let detour = format!("ip -n {alice_ns} route add {cell}/32 via {gateway} dev eth0");
    run(&detour);
    let args = [
        "--connect-timeout",
        "3",
        "--url",
        "imaps://mail.home.example:993/",
        "--cacert",
        &ca,
        "--user",
        &alice_login,
    ];
    let (off_tunnel, _, log) = curl_in(&alice_ns, &cell, &args);
    run(&format!(
        "ip -n {alice_ns} route del {cell}/32 via {gateway} dev eth0"
    ));
    assert_eq!(
        off_tunnel, TIMED_OUT,
        "IMAPS answered off the tunnel: {log}"
    );
    let (code, _, log) = curl_in(&alice_ns, &cell, &args);
    assert_eq!(code, 0, "IMAPS over the tunnel again: {log}");

    drop(clients);
    assert!(lab.stop_picd(), "picd did not stop on SIGTERM");
    drop(dockerd);
}
