//! The mail service's aliases, quotas, recipients and health on a real, private Docker
//! engine: mail submitted (curl smtp://, STARTTLS, a peer's login) to an alias arrives in the
//! target's mailbox (curl imap://); an unknown recipient is refused at RCPT TO with a 5xx
//! instead of bounced later; a message over a mailbox's quota is refused at delivery (LMTP
//! 552), and when submitted on 587 comes back to its sender as a bounce naming the quota,
//! leaving nothing in the queue; a deleted alias is refused again; a Postfix that does not answer makes the service
//! unhealthy while Dovecot still does; and a template an older picd wrote is rewritten and
//! re-read by the running servers after a restart of picd.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::docker::{container_name, Dockerd};
use common::mail::{first_subject, inbox_text, settles, submit};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const ACCOUNTS: &str = "/api/services/catalog/mail/accounts";
const ALIASES: &str = "/api/email/aliases";
const ALIAS: &str = "picnic";
const BOB: &str = "bob@home.example";
const ALICE: &str = "alice@home.example";
const PHOTOS: &str = "Photos of the picnic";
const SUBJECT: &str = "Blankets for the picnic";
/// Bob's quota: room for a short message, not for a long one.
const SMALL_QUOTA: u64 = 4096;
const LONG_BODY: usize = 16 * 1024;
const NEW_DEFAULT: u64 = 2 * 1024 * 1024;
/// How long a message takes from submission to the INBOX (Postfix's queue, then LMTP), and a
/// rewritten map to be in force (a `postfix reload`).
const SETTLES_WITHIN: Duration = Duration::from_secs(20);
const QUOTA_IN_FORCE_WITHIN: Duration = Duration::from_secs(5);

/// One LMTP transaction (RFC 2033) up to the reply to the message's final dot, which is
/// returned (or the reply that refused an earlier step).
fn lmtp_deliver(port: u16, to: &str, message: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to LMTP");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let reply = |reader: &mut BufReader<TcpStream>, line: Option<&str>| {
        if let Some(line) = line {
            let stream = reader.get_mut();
            stream.write_all(line.as_bytes()).unwrap();
            stream.write_all(b"\r\n").unwrap();
        }
        loop {
            let mut got = String::new();
            reader.read_line(&mut got).expect("an LMTP reply");
            if got.as_bytes().get(3) != Some(&b'-') {
                return got;
            }
        }
    };
    assert!(reply(&mut reader, None).starts_with("220"));
    for line in [
        "LHLO picd-test".to_string(),
        "MAIL FROM:<alice@home.example>".to_string(),
        format!("RCPT TO:<{to}>"),
        "DATA".to_string(),
    ] {
        let got = reply(&mut reader, Some(&line));
        if !got.starts_with('2') && !got.starts_with('3') {
            return got;
        }
    }
    reply(&mut reader, Some(&format!("{message}\r\n.")))
}

/// Sends SIGSTOP or SIGCONT to Postfix's processes in the mail container (master and its
/// smtpd), so its submission port takes connections but never greets.
fn signal_postfix(dockerd: &Dockerd, container: &str, signal: &str) {
    let script = format!(
        "for p in /proc/[0-9]*; do case $(cat $p/comm 2>/dev/null) in \
         master|smtpd) kill -{signal} ${{p#/proc/}};; esac; done"
    );
    dockerd.docker_ok(&["exec", container, "/bin/bash", "-c", &script]);
}

fn audited(db: &rusqlite::Connection, target_type: &str) -> Vec<(String, String)> {
    let mut stmt = db
        .prepare("SELECT target_id, result FROM audit_log WHERE target_type = ?1 ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([target_type], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

#[tokio::test]
async fn aliases_deliver_unknown_recipients_are_refused_at_rcpt_and_quotas_hold() {
    require_root();
    require_tool("curl");
    let dockerd = Dockerd::private();
    let (mut picd, admin) = common::mail::cell_with_mail(&dockerd).await;

    // Healthy means both servers greet: the install waited for Postfix too.
    let (_, active) = admin.get_json("/api/services/active").await;
    let service = &active["services"][0];
    assert_eq!(service["health"], "healthy", "{active}");
    let port = |name: &str| service["ports"][name].as_u64().expect(name) as u16;
    let container = container_name(&picd.db(), "mail");
    let (imap_port, lmtp_port, submission) = (port("imap"), port("lmtp"), port("submission"));
    let mut logins = Vec::new();
    for peer in ["alice", "bob"] {
        let resp = admin
            .send_json(Method::POST, ACCOUNTS, &json!({ "peer": peer }))
            .await;
        let (status, answer) = json_of(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["live"], true, "{answer}");
        let (_, creds) = admin
            .get_json(&format!("{ACCOUNTS}/{peer}/credentials"))
            .await;
        logins.push(format!("{peer}:{}", creds["password"].as_str().unwrap()));
    }
    let (alice, bob) = (&logins[0], &logins[1]);
    let resp = admin.get("/api/vault/ca.crt").await;
    let ca_file = picd.root().join("cell-ca.pem");
    std::fs::write(&ca_file, resp.text().await.unwrap()).unwrap();
    let ca = ca_file.to_string_lossy().into_owned();
    let message = picd.root().join("message.eml");
    std::fs::write(
        &message,
        format!("From: bob@home.example\r\nTo: {ALIAS}@home.example\r\nSubject: {SUBJECT}\r\n\r\nTwo will do.\r\n"),
    )
    .unwrap();

    // Before the alias: an address of the cell no one has is refused at RCPT, with a 5xx.
    let to_alias = format!("{ALIAS}@home.example");
    let (code, log) = submit(submission, &ca, bob, BOB, &to_alias, &message);
    assert_ne!(code, 0, "mail to an unknown address was accepted: {log}");
    assert!(
        log.contains("< 550 5.1.1") && log.contains("User unknown"),
        "not refused at RCPT: {log}"
    );

    // The alias: 201, on record, and conflicts with a mailbox or another alias.
    let body = json!({ "alias": ALIAS, "target": "alice" });
    let (status, created) = json_of(admin.send_json(Method::POST, ALIASES, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["target"], "alice", "{created}");
    for (body, code) in [
        (json!({ "alias": ALIAS, "target": "bob" }), "alias_exists"),
        (
            json!({ "alias": "bob", "target": "alice" }),
            "mailbox_exists",
        ),
    ] {
        let resp = admin.send_json(Method::POST, ALIASES, &body).await;
        expect_error(resp, StatusCode::CONFLICT, code).await;
    }
    let resp = admin
        .send_json(
            Method::POST,
            ALIASES,
            &json!({ "alias": "x", "target": "carol" }),
        )
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let (_, listed) = admin.get_json(ALIASES).await;
    assert_eq!(listed["aliases"][0]["address"], to_alias, "{listed}");

    // Mail to the alias arrives in alice's mailbox.
    let mut last = (0, String::new());
    let accepted = settles(SETTLES_WITHIN, || {
        last = submit(submission, &ca, bob, BOB, &to_alias, &message);
        last.0 == 0
    })
    .await;
    assert!(accepted, "mail to the alias was refused: {last:?}");
    let arrived = settles(SETTLES_WITHIN, || {
        first_subject(imap_port, alice).contains(SUBJECT)
    })
    .await;
    assert!(
        arrived,
        "not in alice's INBOX: {}",
        first_subject(imap_port, alice)
    );
    assert!(!first_subject(imap_port, bob).contains(SUBJECT));

    // Bob's quota: a short message fits, a long one is refused at delivery (552) and not
    // stored; the mailboxes show the limit and the use.
    let path = "/api/email/mailboxes/bob/quota";
    let (status, quota) = json_of(
        admin
            .send_json(Method::PUT, path, &json!({ "limit_bytes": SMALL_QUOTA }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{quota}");
    // Dovecot re-reads the quota file at most once a second: in force once its own lookup
    // (`doveadm user`, through the same auth service LMTP asks) returns the rule.
    let rule = format!("quota_rule\t*:bytes={SMALL_QUOTA}");
    let mut seen = String::new();
    let in_force = settles(QUOTA_IN_FORCE_WITHIN, || {
        let out = dockerd.docker(&[
            "exec",
            &container,
            "/usr/bin/doveadm",
            "-c",
            "/etc/picd-mail/dovecot.conf",
            "user",
            "bob",
        ]);
        seen = String::from_utf8_lossy(&out.stdout).into_owned();
        seen.contains(&rule)
    })
    .await;
    assert!(in_force, "Dovecot never saw bob's quota: {seen}");
    let short = "Subject: short\r\n\r\nhi\r\n";
    let reply = lmtp_deliver(lmtp_port, "bob", short);
    assert!(reply.starts_with("250"), "the short message: {reply}");
    let long = format!("Subject: long\r\n\r\n{}\r\n", "x".repeat(LONG_BODY));
    let reply = lmtp_deliver(lmtp_port, "bob", &long);
    assert!(
        reply.starts_with("552") && reply.contains("Quota exceeded"),
        "the message over quota: {reply}"
    );
    // The same over submission: the sender's server took it, so the sender hears of it in
    // a bounce (a DSN naming the quota) in their own INBOX, and nothing waits in the queue.
    let photos = picd.root().join("photos.eml");
    let text = format!(
        "From: {ALICE}\r\nTo: {BOB}\r\nSubject: {PHOTOS}\r\n\r\n{}\r\n",
        "x".repeat(LONG_BODY)
    );
    std::fs::write(&photos, text).unwrap();
    let (code, log) = submit(submission, &ca, alice, ALICE, BOB, &photos);
    assert_eq!(code, 0, "the submission over bob's quota: {log}");
    let mut inbox = String::new();
    let bounced = settles(SETTLES_WITHIN, || {
        inbox = inbox_text(imap_port, alice, 3);
        inbox.contains("Undelivered Mail Returned to Sender")
    })
    .await;
    assert!(bounced, "no bounce in alice's INBOX: {inbox}");
    assert!(
        inbox.contains("Content-Type: message/delivery-status")
            && inbox.contains("Status: 5.2.2")
            && inbox.contains("Quota exceeded")
            && inbox.contains(PHOTOS),
        "the bounce does not name the quota: {inbox}"
    );
    let mut queue = String::new();
    let empty = settles(SETTLES_WITHIN, || {
        let list = [
            "exec",
            &container,
            "/usr/sbin/postqueue",
            "-c",
            "/etc/picd-mail",
            "-p",
        ];
        queue = dockerd.docker_ok(&list);
        queue.contains("Mail queue is empty")
    })
    .await;
    assert!(empty, "left in the queue: {queue}");
    let (_, boxes) = admin.get_json("/api/email/mailboxes").await;
    let quota_of = |user: &str| {
        boxes["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["username"] == user)
            .map(|b| b["quota"].clone())
            .unwrap_or_else(|| panic!("no mailbox for {user}: {boxes}"))
    };
    assert_eq!(quota_of("bob")["limit_bytes"], SMALL_QUOTA, "{boxes}");
    assert_eq!(quota_of("bob")["default"], false, "{boxes}");
    let used = quota_of("bob")["used_bytes"].as_u64().unwrap();
    assert!(used > 0 && used < SMALL_QUOTA, "{boxes}");
    assert_eq!(quota_of("alice")["limit_bytes"], 1u64 << 30, "{boxes}");
    assert_eq!(quota_of("alice")["default"], true, "{boxes}");

    // A new default for every mailbox without its own; bob's own quota cleared (null) falls
    // back to it.
    let resp = admin
        .send_json(
            Method::PUT,
            "/api/email/quota",
            &json!({ "default_bytes": NEW_DEFAULT }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = admin
        .send_json(Method::PUT, path, &json!({ "limit_bytes": null }))
        .await;
    let (status, quota) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{quota}");
    assert_eq!(quota["limit_bytes"], NEW_DEFAULT, "{quota}");
    let (_, boxes) = admin.get_json("/api/email/mailboxes").await;
    for user in ["alice", "bob"] {
        let quota = boxes["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["username"] == user)
            .map(|b| b["quota"].clone())
            .unwrap();
        assert_eq!(quota["limit_bytes"], NEW_DEFAULT, "{user}: {boxes}");
        assert_eq!(quota["default"], true, "{user}: {boxes}");
    }
    let file = std::fs::read_to_string(picd.state_dir().join("services/mail/config/quota"));
    assert!(
        file.unwrap().contains(&format!(
            "bob:::::::userdb_quota_rule=*:bytes={NEW_DEFAULT}\n"
        )),
        "the quota file"
    );

    // The alias deleted: refused at RCPT again.
    let resp = admin
        .send_json(Method::DELETE, &format!("{ALIASES}/{ALIAS}"), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refused = settles(SETTLES_WITHIN, || {
        last = submit(submission, &ca, bob, BOB, &to_alias, &message);
        last.0 != 0 && last.1.contains("< 550 5.1.1")
    })
    .await;
    assert!(refused, "the deleted alias still takes mail: {last:?}");

    // Each change is one audit entry, refusals included.
    let db = picd.db();
    let aliases = audited(&db, "mail_alias");
    let results: Vec<&str> = aliases.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        results,
        ["success", "failure", "failure", "failure", "success"],
        "{aliases:?}"
    );
    let quotas = audited(&db, "mail_quota");
    let expected: Vec<(String, String)> = [("bob", "success"), ("", "success"), ("bob", "success")]
        .iter()
        .map(|(t, r)| (t.to_string(), r.to_string()))
        .collect();
    assert_eq!(quotas, expected);

    // A Postfix that takes connections but never greets: unhealthy, though Dovecot answers.
    signal_postfix(&dockerd, &container, "STOP");
    let (_, active) = admin.get_json("/api/services/active").await;
    signal_postfix(&dockerd, &container, "CONT");
    assert_eq!(active["services"][0]["health"], "unhealthy", "{active}");
    let (_, active) = admin.get_json("/api/services/active").await;
    assert_eq!(active["services"][0]["health"], "healthy", "{active}");

    // An upgrade of picd that changed a template: main.cf as an older picd wrote it (every
    // address of the domain taken), in force in the running Postfix. The restarted picd
    // rewrites it and has the servers re-read their config, in the same container.
    let main_cf = picd.state_dir().join("services/mail/config/main.cf");
    let current = std::fs::read_to_string(&main_cf).unwrap();
    let older = current
        .replace(
            "virtual_mailbox_maps = texthash:/etc/picd-mail/mailboxes",
            "virtual_mailbox_maps = static:ok",
        )
        .replace("reject_unlisted_recipient, ", "");
    assert_ne!(older, current);
    std::fs::write(&main_cf, older).unwrap();
    let reload = ["/usr/sbin/postfix", "-c", "/etc/picd-mail", "reload"];
    dockerd.docker_ok(&[&["exec", container.as_str()][..], &reload].concat());
    let nobody = "nobody@home.example";
    let accepted = settles(SETTLES_WITHIN, || {
        last = submit(submission, &ca, bob, BOB, nobody, &message);
        last.0 == 0
    })
    .await;
    assert!(accepted, "the older main.cf is not in force: {last:?}");
    let inspect = ["inspect", "-f", "{{.Id}}", container.as_str()];
    let container_id = dockerd.docker_ok(&inspect);
    picd.restart().await;
    let refused = settles(SETTLES_WITHIN, || {
        last = submit(submission, &ca, bob, BOB, nobody, &message);
        last.0 != 0 && last.1.contains("< 550 5.1.1")
    })
    .await;
    assert!(refused, "the rewritten main.cf is not in force: {last:?}");
    assert_eq!(std::fs::read_to_string(&main_cf).unwrap(), current);
    assert_eq!(dockerd.docker_ok(&inspect), container_id, "a new container");
    assert_no_internal_errors(&picd);
}
