//! The mail service's Postfix queue on a real, private Docker engine: it is on a volume of the
//! service (owned as Postfix wants it, `postfix check` clean, read-only root still), so a
//! message accepted while delivery waits outlives a restart of the container and arrives
//! once released.

mod common;

use std::time::Duration;

use common::docker::{container_name, Dockerd};
use common::mail::{first_subject, settles, submit};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const ACCOUNTS: &str = "/api/services/catalog/mail/accounts";
const ALICE: &str = "alice@home.example";
const BOB: &str = "bob@home.example";
const SUBJECT: &str = "The minutes of Tuesday";
/// The queue's files as Postfix makes them (post-install's create-missing).
const QUEUE_DIRS: &[(&str, &str)] = &[
    ("maildrop", "postfix:postdrop 730"),
    ("public", "postfix:postdrop 710"),
    ("incoming", "postfix:root 700"),
    ("hold", "postfix:root 700"),
];
/// Submission to the INBOX (Postfix's queue, then LMTP), and the container back after a
/// restart with both servers.
const SETTLES_WITHIN: Duration = Duration::from_secs(30);
const POSTFIX: &str = "/etc/picd-mail";

/// Sends `signal` to Postfix's queue manager in the mail container: stopped, it takes no
/// message from the incoming queue, so a submitted message waits there.
fn signal_qmgr(dockerd: &Dockerd, container: &str, signal: &str) {
    let script = format!(
        "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = qmgr ] && \
         kill -{signal} ${{p#/proc/}}; done; true"
    );
    dockerd.docker_ok(&["exec", container, "/bin/bash", "-c", &script]);
}

#[tokio::test]
async fn a_queued_message_outlives_a_restart_of_the_mail_container() {
    require_root();
    require_tool("curl");
    let dockerd = Dockerd::private();
    let (picd, admin) = common::mail::cell_with_mail(&dockerd).await;
    let (_, active) = admin.get_json("/api/services/active").await;
    let service = &active["services"][0];
    let port = |name: &str| service["ports"][name].as_u64().expect(name) as u16;
    let (imap_port, submission) = (port("imap"), port("submission"));
    let mut logins = Vec::new();
    for peer in ["alice", "bob"] {
        let resp = admin
            .send_json(Method::POST, ACCOUNTS, &json!({ "peer": peer }))
            .await;
        let (status, answer) = json_of(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let (_, creds) = admin
            .get_json(&format!("{ACCOUNTS}/{peer}/credentials"))
            .await;
        logins.push(format!("{peer}:{}", creds["password"].as_str().unwrap()));
    }
    let (alice, bob) = (&logins[0], &logins[1]);
    let ca_file = picd.root().join("cell-ca.pem");
    let resp = admin.get("/api/vault/ca.crt").await;
    std::fs::write(&ca_file, resp.text().await.unwrap()).unwrap();
    let ca = ca_file.to_string_lossy().into_owned();
    let container = container_name(&picd.db(), "mail");
    let exec = |args: &[&str]| dockerd.docker_ok(&[&["exec", container.as_str()], args].concat());

    // The queue is the service's volume, read-only root still, owned as Postfix wants it.
    let inspected: serde_json::Value =
        serde_json::from_str(&dockerd.docker_ok(&["inspect", &container])).unwrap();
    let host = &inspected[0]["HostConfig"];
    assert_eq!(host["ReadonlyRootfs"], true, "{host}");
    assert!(host["Tmpfs"].get("/var/spool/postfix").is_none(), "{host}");
    let queue_volume = picd.state_dir().join("services/mail/volumes/queue");
    let bind = format!("{}:/var/spool/postfix", queue_volume.display());
    assert!(
        host["Binds"].as_array().unwrap().contains(&json!(bind)),
        "{host}"
    );
    for (dir, owner) in QUEUE_DIRS {
        let path = format!("/var/spool/postfix/{dir}");
        assert_eq!(exec(&["stat", "-c", "%U:%G %a", &path]), *owner, "{dir}");
    }
    let check = dockerd.docker(&[
        "exec",
        &container,
        "/usr/sbin/postfix",
        "-c",
        POSTFIX,
        "check",
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        check.status.success() && said.trim().is_empty(),
        "postfix check: {said}"
    );

    // Delivery paused (the queue manager stopped): a message submitted waits in the queue,
    // put on hold there.
    signal_qmgr(&dockerd, &container, "STOP");
    let message = picd.root().join("minutes.eml");
    let text = format!("From: {ALICE}\r\nTo: {BOB}\r\nSubject: {SUBJECT}\r\n\r\nAll agreed.\r\n");
    std::fs::write(&message, text).unwrap();
    let (code, log) = submit(submission, &ca, alice, ALICE, BOB, &message);
    assert_eq!(code, 0, "the submission: {log}");
    exec(&["/usr/sbin/postsuper", "-c", POSTFIX, "-h", "ALL"]);
    signal_qmgr(&dockerd, &container, "CONT");
    let queue = exec(&["/usr/sbin/postqueue", "-c", POSTFIX, "-p"]);
    assert!(
        queue.contains("! ") && queue.contains(BOB),
        "not held: {queue}"
    );

    // The container restarted: the message is still queued, and not delivered yet.
    dockerd.docker_ok(&["restart", &container]);
    let mut queue = String::new();
    let kept = settles(SETTLES_WITHIN, || {
        let list = [
            "exec",
            &container,
            "/usr/sbin/postqueue",
            "-c",
            POSTFIX,
            "-p",
        ];
        queue = String::from_utf8_lossy(&dockerd.docker(&list).stdout).into_owned();
        queue.contains(BOB)
    })
    .await;
    assert!(kept, "the queued message was lost in the restart: {queue}");
    assert!(!first_subject(imap_port, bob).contains(SUBJECT));

    // Released: it arrives in bob's INBOX, and the queue is empty.
    // postsuper says so on standard error, then may fail to open its log file (/dev/stdout,
    // which its unprivileged self may not open outside the engine's own log stream).
    let release = [
        "exec",
        &container,
        "/usr/sbin/postsuper",
        "-c",
        POSTFIX,
        "-H",
        "ALL",
    ];
    let released = dockerd.docker(&release);
    let said = String::from_utf8_lossy(&released.stderr);
    assert!(said.contains("Released from hold: 1 message"), "{said}");
    let _ = dockerd.docker(&[
        "exec",
        &container,
        "/usr/sbin/postqueue",
        "-c",
        POSTFIX,
        "-f",
    ]);
    let arrived = settles(SETTLES_WITHIN, || {
        first_subject(imap_port, bob).contains(SUBJECT)
    })
    .await;
    assert!(
        arrived,
        "not in bob's INBOX: {}",
        first_subject(imap_port, bob)
    );
    let queue = exec(&["/usr/sbin/postqueue", "-c", POSTFIX, "-p"]);
    assert!(queue.contains("Mail queue is empty"), "{queue}");
    assert_no_internal_errors(&picd);
}
