//! The mail service end to end on a real, private Docker engine: Dovecot and Postfix built
//! from Debian packages, installed through the API (IMAP and LMTP on loopback ports picd allocated, no
//! Caddy route, its name published), an account for each of two peers, a message delivered
//! to one of them over LMTP and fetched with curl over IMAP; the other peer's login does not
//! reach it, a wrong password is refused, and a deleted peer's login ends within seconds while
//! its maildir waits in the archive.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::docker::{build_images, Dockerd};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ACCOUNTS: &str = "/api/services/catalog/mail/accounts";
const SUBJECT: &str = "Picnic on Saturday";
/// curl's CURLE_LOGIN_DENIED.
const LOGIN_DENIED: i32 = 67;
/// Dovecot sees a changed passwd-file within about a second, and answers each refused login
/// after a 2 s delay.
const GONE_WITHIN: Duration = Duration::from_secs(15);

fn events_of(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).expect("event data is JSON"))
        .collect()
}

/// curl speaking IMAP to the service's loopback port: (exit code, standard output).
fn imap(port: u16, path: &str, user: &str, password: &str, extra: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "--user"])
        .arg(format!("{user}:{password}"))
        .arg("--url")
        .arg(format!("imap://127.0.0.1:{port}/{path}"))
        .args(extra)
        .output()
        .expect("running curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

fn subject_of_first(port: u16, user: &str, password: &str) -> (i32, String) {
    imap(
        port,
        "INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)",
        user,
        password,
        &[],
    )
}

/// A small LMTP client (RFC 2033): the line that answers each step, asserting its code.
struct Lmtp {
    reader: BufReader<TcpStream>,
}

impl Lmtp {
    fn connect(port: u16) -> Lmtp {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to LMTP");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut lmtp = Lmtp {
            reader: BufReader::new(stream),
        };
        lmtp.expect("220", "greeting");
        lmtp
    }

    /// Reads a reply (continuation lines `250-...` up to the last `250 ...`).
    fn expect(&mut self, code: &str, what: &str) -> String {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("an LMTP reply");
            assert!(line.starts_with(code), "{what}: {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }

    fn send(&mut self, line: &str, code: &str) -> String {
        let stream = self.reader.get_mut();
        stream.write_all(line.as_bytes()).unwrap();
        stream.write_all(b"\r\n").unwrap();
        self.expect(code, line)
    }

    fn deliver(port: u16, from: &str, to: &str, message: &str) {
        let mut lmtp = Lmtp::connect(port);
        lmtp.send("LHLO picd-test", "250");
        lmtp.send(&format!("MAIL FROM:<{from}>"), "250");
        lmtp.send(&format!("RCPT TO:<{to}>"), "250");
        lmtp.send("DATA", "354");
        // One reply per accepted recipient after the final dot.
        lmtp.send(&format!("{message}\r\n."), "250");
        lmtp.send("QUIT", "221");
    }
}

/// A logged-in IMAP connection that stays open, as a mail client's does.
struct ImapSession {
    reader: BufReader<TcpStream>,
}

impl ImapSession {
    fn login(port: u16, user: &str, password: &str) -> ImapSession {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to IMAP");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut session = ImapSession {
            reader: BufReader::new(stream),
        };
        session.until("* OK");
        let login = format!("a LOGIN \"{user}\" \"{password}\"\r\nb SELECT INBOX\r\n");
        session
            .reader
            .get_mut()
            .write_all(login.as_bytes())
            .unwrap();
        session.until("a OK");
        session.until("b OK");
        session
    }

    fn until(&mut self, prefix: &str) {
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("an IMAP line");
            assert!(n > 0, "closed before {prefix:?}");
            assert!(!line.starts_with("a NO"), "{line:?}");
            if line.starts_with(prefix) {
                return;
            }
        }
    }

    /// Whether the server ends the session (`* BYE`, or the end of the stream) in time.
    fn wait_closed(&mut self, within: Duration) -> bool {
        let started = Instant::now();
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        while started.elapsed() < within {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) if line.starts_with("* BYE") => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

#[tokio::test]
async fn mail_is_delivered_over_lmtp_and_read_over_imap_by_its_owner_only() {
    let dockerd = Dockerd::private();
    let options = PicdOptions {
        env: vec![(
            "PICD_DOCKER_SOCKET".into(),
            dockerd.socket().display().to_string(),
        )],
        ..PicdOptions::default()
    };
    let (picd, admin) = picd_with_admin_using(options).await;
    let built = build_images(&picd.state_dir(), &dockerd);
    assert!(built.contains("mail: image sha256:"), "{built}");
    for name in ["alice", "bob"] {
        let resp = admin
            .send_json(Method::POST, "/api/peers", &json!({ "name": name }))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "adding peer {name}");
    }

    // Installed: every step, no Caddy route (no HTTP endpoint), the name published.
    let resp = admin
        .send_json(Method::POST, "/api/store/install", &json!({ "id": "mail" }))
        .await;
    let events = events_of(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap()["step"], "done", "{events:?}");
    assert!(events.iter().all(|e| e["state"] == "ok"), "{events:?}");
    let route = events.iter().find(|e| e["step"] == "route").unwrap();
    assert_eq!(route["routed"], false, "{events:?}");
    let db = picd.db();
    let routes: i64 = db
        .query_row("SELECT COUNT(*) FROM caddy_routes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(routes, 0, "the mail service got a Caddy route");
    let owner: String = db
        .query_row(
            "SELECT owner FROM dns_names WHERE name = 'mail' AND view = 'internal'",
            [],
            |r| r.get(0),
        )
        .expect("mail.<domain> published");
    assert_eq!(owner, "service:mail");

    let (_, active) = admin.get_json("/api/services/active").await;
    let service = &active["services"][0];
    assert_eq!(service["health"], "healthy", "{active}");
    assert_eq!(service["http_port"], Value::Null, "{active}");
    let imap_port = service["ports"]["imap"].as_u64().expect("imap port") as u16;
    let lmtp_port = service["ports"]["lmtp"].as_u64().expect("lmtp port") as u16;
    assert_ne!(imap_port, lmtp_port);
    let stored: Vec<(String, u16)> = db
        .prepare(
            "SELECT endpoint, port FROM service_ports WHERE service_id = 'mail' ORDER BY endpoint",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let names: Vec<&str> = stored.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["imap", "imaps", "lmtp", "submission"]);
    assert!(
        stored.contains(&("imap".to_string(), imap_port)),
        "{stored:?}"
    );
    assert!(
        stored.contains(&("lmtp".to_string(), lmtp_port)),
        "{stored:?}"
    );

    // Started as root for Postfix's master and the standard ports, with only the capabilities
    // the two masters need, read-only root.
    let name = common::docker::container_name(&db, "mail");
    let inspected = dockerd.docker_ok(&["inspect", &name]);
    let container: Value = serde_json::from_str::<Value>(&inspected).unwrap()[0].clone();
    assert_eq!(container["Config"]["User"], "0:0");
    let host = &container["HostConfig"];
    assert_eq!(host["CapDrop"], json!(["ALL"]));
    let mut added: Vec<String> = serde_json::from_value(host["CapAdd"].clone()).unwrap();
    added.sort();
    assert_eq!(
        added,
        [
            "CHOWN",
            "DAC_OVERRIDE",
            "FOWNER",
            "KILL",
            "NET_BIND_SERVICE",
            "SETGID",
            "SETUID"
        ],
        "{host}"
    );
    assert_eq!(host["ReadonlyRootfs"], true);
    let imaps_port = service["ports"]["imaps"].as_u64().expect("imaps port") as u16;

    // Two accounts, live once Dovecot accepts their login.
    let mut passwords = Vec::new();
    for peer in ["alice", "bob"] {
        let resp = admin
            .send_json(Method::POST, ACCOUNTS, &json!({ "peer": peer }))
            .await;
        let (status, answer) = json_of(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(
            answer["live"], true,
            "Dovecot never accepted {peer}: {answer}"
        );
        let (status, creds) = admin
            .get_json(&format!("{ACCOUNTS}/{peer}/credentials"))
            .await;
        assert_eq!(status, StatusCode::OK, "{creds}");
        assert_eq!(creds["protocol"], "IMAP and SMTP submission");
        assert_eq!(creds["endpoints"][0]["port"], imaps_port, "{creds}");
        assert_eq!(creds["endpoints"][0]["host"], format!("mail.{CELL_DOMAIN}"));
        assert_eq!(
            creds["url"],
            format!("imaps://mail.{CELL_DOMAIN}:{imaps_port}/"),
            "{creds}"
        );
        assert!(
            creds["setup"]
                .as_str()
                .unwrap()
                .contains(&imaps_port.to_string()),
            "{creds}"
        );
        passwords.push(creds["password"].as_str().unwrap().to_string());
    }
    let (alice_pw, bob_pw) = (&passwords[0], &passwords[1]);
    let lines = std::fs::read_to_string(picd.state_dir().join("services/mail/config/users"))
        .expect("the passwd-file");
    assert!(lines.starts_with("alice:{SHA512-CRYPT}$6$"), "{lines}");

    // A message for alice, delivered over LMTP, fetched over IMAP with her login.
    let message = format!(
        "From: bob@{CELL_DOMAIN}\r\nTo: alice@{CELL_DOMAIN}\r\nSubject: {SUBJECT}\r\n\r\nBring the blanket.\r\n"
    );
    Lmtp::deliver(lmtp_port, &format!("bob@{CELL_DOMAIN}"), "alice", &message);
    let (code, fetched) = subject_of_first(imap_port, "alice", alice_pw);
    assert_eq!(code, 0, "{fetched}");
    assert!(
        fetched.contains(&format!("Subject: {SUBJECT}")),
        "{fetched:?}"
    );

    // Bob's login sees his own, empty box; with his password alice's login is refused.
    let (code, examined) = imap(imap_port, "", "bob", bob_pw, &["-X", "EXAMINE INBOX"]);
    assert_eq!(code, 0, "{examined}");
    assert!(examined.contains("* 0 EXISTS"), "{examined:?}");
    let (_, theirs) = subject_of_first(imap_port, "bob", bob_pw);
    assert!(
        !theirs.contains(SUBJECT),
        "bob read alice's mail: {theirs:?}"
    );
    assert_eq!(subject_of_first(imap_port, "alice", bob_pw).0, LOGIN_DENIED);
    assert_eq!(
        subject_of_first(imap_port, "alice", "not-the-password").0,
        LOGIN_DENIED
    );

    // The email API counts what each mailbox holds.
    let (status, boxes) = admin.get_json("/api/email/mailboxes").await;
    assert_eq!(status, StatusCode::OK, "{boxes}");
    let inbox = |user: &str| {
        boxes["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["username"] == user)
            .map(|b| b["folders"][0].clone())
            .unwrap_or_else(|| panic!("no mailbox for {user}: {boxes}"))
    };
    assert_eq!(inbox("alice")["name"], "INBOX", "{boxes}");
    assert_eq!(inbox("alice")["messages"], 1, "{boxes}");
    assert_eq!(inbox("bob")["messages"], 0, "{boxes}");

    // A session alice opened before she is deleted, idling in her INBOX.
    let mut session = ImapSession::login(imap_port, "alice", alice_pw);

    // Alice is deleted: her login is refused within seconds, her open session is ended, her
    // maildir is in the archive.
    let resp = admin
        .send_json(Method::DELETE, "/api/peers/alice", &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let started = Instant::now();
    let mut last = subject_of_first(imap_port, "alice", alice_pw);
    while last.0 != LOGIN_DENIED && started.elapsed() < GONE_WITHIN {
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = subject_of_first(imap_port, "alice", alice_pw);
    }
    assert_eq!(last.0, LOGIN_DENIED, "alice's login outlived her: {last:?}");
    assert!(
        session.wait_closed(GONE_WITHIN),
        "alice's open IMAP session outlived her"
    );
    let archive = picd.state_dir().join("services/mail/archive");
    let archived: Vec<_> = std::fs::read_dir(&archive)
        .expect("an archive")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert!(archived[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("alice@"));
    let kept = ["new", "cur"]
        .iter()
        .filter_map(|d| std::fs::read_dir(archived[0].join("Maildir").join(d)).ok())
        .flatten()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .any(|text| text.contains(SUBJECT));
    assert!(kept, "alice's message is not in the archived maildir");
    assert!(!picd
        .state_dir()
        .join("services/mail/volumes/data/alice")
        .exists());
    // Bob's login still works.
    let (code, _) = imap(imap_port, "", "bob", bob_pw, &["-X", "EXAMINE INBOX"]);
    assert_eq!(code, 0);
    assert_no_internal_errors(&picd);
}
