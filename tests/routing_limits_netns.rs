//! picd's rate-limit rules, templates and metrics applied for real in a cell namespace the
//! test made: a flood from one source is dropped while a trickle from another passes; a blocked
//! port is closed and an allow-only port open to the whitelist only; templates make ordinary
//! rules; the metrics show what reached a port and what the rules dropped.

mod common;

use std::time::Duration;

use common::netns::*;
use common::routing_lab::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const RATE_LIMITS: &str = "/api/routing/rate-limits";

/// Counts UDP datagrams per "source:port" in the cell namespace for `seconds`, on `ports`.
const LISTENER: &str = r#"
import json, select, socket, sys, time
ports = [int(p) for p in sys.argv[1].split(",")]
end = time.time() + float(sys.argv[2])
socks = []
for port in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.setblocking(False)
    socks.append(s)
print("ready", flush=True)
counts = {}
while time.time() < end:
    ready, _, _ = select.select(socks, [], [], 0.05)
    for s in ready:
        while True:
            try:
                _, (addr, _) = s.recvfrom(2048)
            except BlockingIOError:
                break
            key = f"{addr}:{s.getsockname()[1]}"
            counts[key] = counts.get(key, 0) + 1
print(json.dumps(counts), flush=True)
"#;

struct UdpCounter {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl UdpCounter {
    fn start(lab: &Lab, ports: &[u16], seconds: f32) -> UdpCounter {
        use std::io::BufRead;
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &lab.cell_ns, "python3", "-c", LISTENER])
            .arg(ports.join(","))
            .arg(seconds.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 in the cell namespace (apt-get install python3)");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the listener's first line");
        assert_eq!(line.trim(), "ready", "the listener did not start");
        UdpCounter { child, stdout }
    }

    /// Waits for the listener's end: datagrams by "source:port".
    fn counts(mut self) -> std::collections::HashMap<String, u64> {
        use std::io::BufRead;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the listener's counts");
        let _ = self.child.wait();
        serde_json::from_str(&line).expect("counts as JSON")
    }
}

/// Sends `count` datagrams from `source` to the cell's `port`, `gap` apart.
fn send_udp(lab: &Lab, source: &str, port: u16, count: usize, gap: Duration) {
    let socket = std::net::UdpSocket::bind((source, 0)).expect("bind the source address");
    let target = format!("{}:{port}", lab.cell_addr());
    for _ in 0..count {
        let _ = socket.send_to(b"picd-test", &target);
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    }
}

async fn create(admin: &TestClient, path: &str, body: Value) -> Value {
    let (status, created) = json_of(admin.send_json(Method::POST, path, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

#[tokio::test]
async fn a_rate_limit_drops_a_flood_from_one_source_and_not_a_trickle_from_another() {
    let (lab, admin) = lab_with_routing().await;
    let (flooder, other) = (test_side_addr(&lab), lab.second_test_side_addr());
    let body = json!({ "name": "Game port", "protocol": "udp", "port_start": 27015,
                       "rule_type": "rate_limit", "max_pps": 50 });
    let rule = create(&admin, RATE_LIMITS, body).await;
    let id = rule["id"].as_str().unwrap().to_string();
    assert_eq!(rule["status"], "pending_load", "{rule}");
    let comment = format!("ratelimit:{id}:source4");
    assert!(eventually(APPLY_TIMEOUT, || has_comment(&lab, &comment)));

    let counter = UdpCounter::start(&lab, &[27015], 3.0);
    let trickle = {
        let lab_other = other.clone();
        let target = lab.cell_addr();
        std::thread::spawn(move || {
            let socket = std::net::UdpSocket::bind((lab_other.as_str(), 0)).expect("bind");
            for _ in 0..10 {
                let _ = socket.send_to(b"picd-test", format!("{target}:27015"));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // The flood lasts longer than the trickle (3,000 datagrams about half a millisecond apart),
    // so a limit shared by all sources would drop most of the trickle too.
    send_udp(&lab, &flooder, 27015, 3000, Duration::from_micros(500));
    trickle.join().expect("the trickle");
    let counts = counter.counts();
    let flood = counts
        .get(&format!("{flooder}:27015"))
        .copied()
        .unwrap_or(0);
    let trickled = counts.get(&format!("{other}:27015")).copied().unwrap_or(0);
    eprintln!("flood of 3000: {flood} arrived; trickle of 10: {trickled} arrived");
    assert!(
        flood > 0,
        "the flooding source was cut off entirely: {counts:?}"
    );
    assert!(flood < 500, "{flood} of 3000 flooding datagrams arrived");
    assert_eq!(trickled, 10, "the other source was limited too: {counts:?}");

    // The drops show in the API after the next rebuild read the counters back.
    let deadline = std::time::Instant::now() + APPLY_TIMEOUT;
    loop {
        let (_, shown) = admin.get_json(RATE_LIMITS).await;
        let rule = &shown["rules"][0];
        if rule["status"] == "loaded" && rule["packets_dropped"].as_u64().unwrap_or(0) > 2000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the drops are not counted: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_blocked_port_is_closed_to_all_and_an_allow_only_port_to_all_but_the_whitelist() {
    let (lab, admin) = lab_with_routing().await;
    let (test_side, listed) = (test_side_addr(&lab), lab.second_test_side_addr());
    let block = create(
        &admin,
        RATE_LIMITS,
        json!({ "name": "Closed", "protocol": "udp", "port_start": 5001, "rule_type": "block" }),
    )
    .await;
    let only = create(
        &admin,
        RATE_LIMITS,
        json!({ "name": "Listed only", "protocol": "udp", "port_start": 5002,
                "rule_type": "allow_only" }),
    )
    .await;
    create(
        &admin,
        IP_LIST,
        json!({ "list_type": "whitelist", "ip_address": listed }),
    )
    .await;
    for rule in [&block, &only] {
        let comment = format!("ratelimit:{}:block", rule["id"].as_str().unwrap());
        assert!(eventually(APPLY_TIMEOUT, || has_comment(&lab, &comment)));
    }
    let counter = UdpCounter::start(&lab, &[5001, 5002, 5003], 2.0);
    for source in [&test_side, &listed] {
        for port in [5001, 5002, 5003] {
            send_udp(&lab, source, port, 5, Duration::from_millis(20));
        }
    }
    let counts = counter.counts();
    let got = |source: &str, port: u16| counts.get(&format!("{source}:{port}")).copied();
    // 5003 has no rule: both sources reach it, so the listener and the paths work.
    assert_eq!(got(&test_side, 5003), Some(5), "{counts:?}");
    assert_eq!(got(&listed, 5003), Some(5), "{counts:?}");
    assert_eq!(
        got(&test_side, 5001),
        None,
        "the blocked port let through: {counts:?}"
    );
    assert_eq!(
        got(&listed, 5001),
        None,
        "a whitelisted source passed a block: {counts:?}"
    );
    assert_eq!(
        got(&test_side, 5002),
        None,
        "an unlisted source passed: {counts:?}"
    );
    assert_eq!(
        got(&listed, 5002),
        Some(5),
        "the listed source was refused: {counts:?}"
    );
}

#[tokio::test]
async fn templates_make_ordinary_rules_in_one_call() {
    let (lab, admin) = lab_with_routing().await;
    let (status, listed) = admin.get_json("/api/routing/templates").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = listed["templates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    for id in [
        "ssh-brute-force",
        "block-database-port",
        "allow-only-listed",
        "udp-flood",
    ] {
        assert!(ids.contains(&id), "{id} missing: {listed}");
    }
    let (_, gaming) = admin
        .get_json("/api/routing/templates?category=Gaming")
        .await;
    assert_eq!(gaming["templates"].as_array().unwrap().len(), 1, "{gaming}");

    let apply = |id: &str| format!("/api/routing/templates/{id}/apply");
    let ssh = create(&admin, &apply("ssh-brute-force"), json!({})).await;
    assert_eq!(ssh["action"], "limit", "{ssh}");
    assert_eq!(ssh["port_start"], 22, "{ssh}");
    assert_eq!(ssh["conntrack"], "new", "{ssh}");
    let (status, again) = json_of(
        admin
            .send_json(Method::POST, &apply("ssh-brute-force"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (status, no_port) = json_of(
        admin
            .send_json(Method::POST, &apply("udp-flood"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(status.as_u16(), 400, "{no_port}");
    assert!(no_port.to_string().contains("port"), "{no_port}");
    let flood = create(&admin, &apply("udp-flood"), json!({ "port": 30120 })).await;
    assert_eq!(flood["max_pps"], 500, "{flood}");
    for comment in [
        format!("rule:{}", ssh["id"].as_str().unwrap()),
        format!("ratelimit:{}:source4", flood["id"].as_str().unwrap()),
        format!("ratelimit:{}:port", flood["id"].as_str().unwrap()),
    ] {
        assert!(
            eventually(APPLY_TIMEOUT, || has_comment(&lab, &comment)),
            "{comment} not in the table"
        );
    }
    // A template's rule is an ordinary one: deleted like any other.
    let path = format!("{RATE_LIMITS}/{}", flood["id"].as_str().unwrap());
    let resp = admin.send_json(Method::DELETE, &path, &json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let gone = format!("ratelimit:{}:port", flood["id"].as_str().unwrap());
    assert!(eventually(APPLY_TIMEOUT, || !has_comment(&lab, &gone)));
}

/// Polls `path` until `done` holds for its JSON, or fails with the last answer.
async fn poll_json(admin: &TestClient, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + APPLY_TIMEOUT;
    loop {
        let (status, body) = admin.get_json(path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        assert!(std::time::Instant::now() < deadline, "{path}: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn the_metrics_show_what_reached_a_port_and_what_the_rules_dropped() {
    let (lab, admin) = lab_with_routing().await;
    let source = test_side_addr(&lab);
    let dropped = create(
        &admin,
        FIREWALL,
        json!({ "name": "Closed", "protocol": "udp", "port_start": 6000, "action": "drop" }),
    )
    .await;
    let accepted = create(
        &admin,
        FIREWALL,
        json!({ "name": "Open", "protocol": "udp", "port_start": 6001, "action": "accept" }),
    )
    .await;
    for rule in [&dropped, &accepted] {
        let comment = format!("rule:{}", rule["id"].as_str().unwrap());
        assert!(eventually(APPLY_TIMEOUT, || has_comment(&lab, &comment)));
    }
    let counter = UdpCounter::start(&lab, &[6000, 6001], 1.5);
    send_udp(&lab, &source, 6000, 40, Duration::from_millis(5));
    send_udp(&lab, &source, 6001, 25, Duration::from_millis(5));
    let counts = counter.counts();
    assert_eq!(
        counts.get(&format!("{source}:6001")),
        Some(&25),
        "{counts:?}"
    );
    assert_eq!(counts.get(&format!("{source}:6000")), None, "{counts:?}");

    let port = |body: &Value, port: u64| -> Value {
        body["top_ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["port"] == port).cloned())
            .unwrap_or(Value::Null)
    };
    let summary = poll_json(&admin, "/api/routing/metrics/summary?window=10m", |b| {
        port(b, 6000)["packets_dropped"].as_u64() >= Some(40)
            && port(b, 6001)["packets_passed"].as_u64() >= Some(25)
    })
    .await;
    assert_eq!(port(&summary, 6000)["packets_passed"], 0, "{summary}");
    assert_eq!(port(&summary, 6001)["packets_dropped"], 0, "{summary}");
    assert!(summary["total_dropped"].as_u64() >= Some(40), "{summary}");
    assert!(summary["total_passed"].as_u64() >= Some(25), "{summary}");
    assert!(
        summary["total_bytes_dropped"].as_u64() >= Some(40 * 28),
        "{summary}"
    );

    let history = poll_json(&admin, "/api/routing/metrics?interval=1m&port=6000", |b| {
        let sum: u64 = b["buckets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["packets_dropped"].as_u64())
            .sum();
        sum >= 40
    })
    .await;
    for bucket in history["buckets"].as_array().unwrap() {
        // A minute's start: "YYYY-MM-DDTHH:MM:00...".
        let at = bucket["bucket"].as_str().unwrap();
        assert_eq!(at.get(16..19), Some(":00"), "{bucket}");
        assert_eq!(bucket["port"], 6000, "{bucket}");
    }
}
