//! `tor` exits applied for real in the lab's namespaces, with a stand-in for tor (the real one
//! cannot bootstrap offline): tests/fixtures/tor_standin.py, which picd runs as its
//! `tor_command` and which hands `--verify-config` to the real tor. alice leaves through the
//! tor exit, bob goes direct. alice's TCP reaches the internet host through the stand-in's
//! TransPort, her DNS is answered by its DNSPort even when she asks a hard-coded resolver;
//! her UDP, ping, IPv6 and tcp/53 are refused at once and not one of her packets leaves
//! through the uplink. picd starts tor again when it dies (also an orphan of a killed picd),
//! cuts alice off while tor is not bootstrapped (or sends her direct when she is fail-open),
//! and stops tor when the connection goes and when picd stops.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::netns::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CONNECTIONS: &str = "/api/connectivity/connections";
const RECONCILE_SECONDS: u64 = 3;
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);
const STANDIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tor_standin.py");
/// How long a line of tor's takes to reach picd's log, at most.
const LOG_DELAY: Duration = Duration::from_secs(3);
/// How long a peer's WireGuard client takes to find a restarted picd (its next handshake).
const TUNNEL_BACK: Duration = Duration::from_secs(30);
/// A progress below 100: the stand-in says it is still bootstrapping.
const BOOTSTRAPPING: &str = "50";

struct TorLab {
    lab: Lab,
    admin: TestClient,
    alice: WgClient,
    bob: WgClient,
    _provider: Provider,
}

impl Drop for TorLab {
    fn drop(&mut self) {
        // The stand-ins outlive a picd killed with the lab: stop them by their PIDs.
        for pid in tor_pids(&self.lab) {
            stop_pid(pid, "KILL");
        }
    }
}

/// picd's tor PIDs, from the PID files it keeps in its run folder.
fn tor_pids(lab: &Lab) -> Vec<u32> {
    let Ok(slots) = std::fs::read_dir(lab.state_dir().join("run/tor")) else {
        return Vec::new();
    };
    slots
        .flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("tor.pid")).ok())
        .filter_map(|t| t.trim().parse().ok())
        .collect()
}

fn v4_of(client: &WgClient) -> String {
    let address = client.config.addresses.iter().find(|a| !a.contains(':'));
    address
        .expect("an address")
        .split('/')
        .next()
        .unwrap()
        .into()
}

fn in_ns(client: &WgClient, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", &client.ns])
        .args(args)
        .output()
        .expect("ip netns exec")
}

/// dig to the hard-coded resolver: the A it got (None: no answer), and how long it took.
fn dig(client: &WgClient, name: &str, tcp: bool) -> (Option<String>, Duration) {
    let started = Instant::now();
    let server = format!("@{HARD_CODED_RESOLVER}");
    let mut args = vec!["dig", &server, "+time=2", "+tries=1", "+short", name];
    if tcp {
        args.push("+tcp");
    }
    let out = in_ns(client, &args);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let answered = out.status.success() && !text.contains(";;");
    (answered.then_some(text), started.elapsed())
}

/// A UDP datagram to the internet server's QUIC port on a connected socket: "refused" when
/// an ICMP error came back at once, "timeout" when nothing did, "answered" otherwise.
/// IP_RECVERR (11): without it Linux keeps a "network unreachable" from a UDP socket (a soft
/// error), though it came back at once.
fn udp_to_internet(client: &WgClient) -> String {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.SOL_IP, 11, 1)\n\
         s.connect(('{INTERNET_SERVER}', 443)); s.settimeout(1.5)\n\
         try:\n  s.send(b'x' * 32); s.recv(100); print('answered')\n\
         except socket.timeout:\n  print('timeout')\n\
         except OSError:\n  print('refused')\n"
    );
    let out = in_ns(client, &["python3", "-c", &script]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl TorLab {
    async fn start() -> TorLab {
        require_root_and_tools(&["nft", "curl", "python3", "ping", "dig", "tor"]);
        let options = LabOptions {
            reconcile_interval_seconds: RECONCILE_SECONDS,
            env: vec![
                ("PICD_TOR_COMMAND".into(), STANDIN.into()),
                ("TOR_STANDIN_ANSWER".into(), INTERNET_SERVER.into()),
            ],
            ..LabOptions::default()
        };
        let ExitsLab {
            lab,
            admin,
            mut peers,
            provider,
        } = ExitsLab::start_with(options, &["alice", "bob"]).await;
        let bob = peers.pop().expect("bob");
        let alice = peers.pop().expect("alice");
        TorLab {
            lab,
            admin,
            alice,
            bob,
            _provider: provider,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        json_of(self.admin.send_json(method, path, &body).await).await
    }

    async fn create(&self, name: &str) -> Value {
        let body = json!({ "name": name, "type": "tor" });
        let (status, created) = self.send(Method::POST, CONNECTIONS, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["type"], "tor", "{created}");
        created
    }

    async fn exit(&self, id: &str) -> Value {
        let (status, body) = self.admin.get_json("/api/connectivity/exits").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let exits = body["exits"].as_array().cloned().unwrap_or_default();
        exits
            .into_iter()
            .find(|e| e["id"] == id)
            .unwrap_or_default()
    }

    async fn wait_state(&self, id: &str, wanted: &str) {
        let deadline = Instant::now() + APPLY_TIMEOUT;
        while self.exit(id).await["state"] != wanted {
            assert!(
                Instant::now() < deadline,
                "not {wanted}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The PID of the connection's tor once it runs (and is not `not`).
    async fn wait_pid(&self, id: &str, not: Option<u32>) -> u32 {
        let deadline = Instant::now() + APPLY_TIMEOUT;
        loop {
            let pid = self.exit(id).await["pid"].as_u64().map(|p| p as u32);
            if let Some(pid) = pid.filter(|p| Some(*p) != not && alive(*p)) {
                return pid;
            }
            assert!(Instant::now() < deadline, "no tor:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = self.lab.picd_log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// How many of alice's flows the stand-in relayed to the internet server.
    fn relayed(&self) -> usize {
        let line = format!(
            "tor: relayed {} -> {INTERNET_SERVER}:{HTTP_PORT}",
            v4_of(&self.alice)
        );
        self.lab.picd_log().matches(&line).count()
    }

    /// alice's fetch answers `seen` within the apply timeout.
    fn waits_for(&self, client: &WgClient, seen: &str, what: &str) {
        let mut last = None;
        let reached = eventually(APPLY_TIMEOUT, || {
            last = fetch(client).0;
            last.as_deref() == Some(seen)
        });
        let ruleset = run(&format!(
            "ip netns exec {} nft list ruleset",
            self.lab.cell_ns
        ));
        assert!(
            reached,
            "{what}: saw {last:?}; ruleset:\n{ruleset}\n{}",
            self.log_tail()
        );
    }

    /// alice's fetch reaches the internet server through tor within the apply timeout.
    fn waits_through_tor(&self, what: &str) {
        let through = eventually(APPLY_TIMEOUT, || {
            let before = self.relayed();
            fetch(&self.alice).0.as_deref() == Some(CELL_UPLINK_ADDR) && self.relayed_since(before)
        });
        assert!(through, "{what}: not through tor:\n{}", self.log_tail());
    }

    /// Whether the stand-in's log shows a flow of alice's relayed since `before` (its lines
    /// reach picd's log a moment after the flow).
    fn relayed_since(&self, before: usize) -> bool {
        eventually(LOG_DELAY, || self.relayed() > before)
    }

    /// Counts, from zero, alice's packets that leave through the uplink.
    fn watch_alice(&self) {
        let v6 = self.alice.config.addresses.iter().find(|a| a.contains(':'));
        let v6 = v6.expect("an IPv6 address").split('/').next().unwrap();
        self.lab.watch_uplink_for(&v4_of(&self.alice), v6);
    }

    async fn set(&self, path: &str, body: Value) {
        let (status, answer) = self.send(Method::PUT, path, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
}

/// The real tor accepts the torrc picd wrote (0600, the ports on the cell's address).
fn real_tor_accepts(lab: &Lab, slot: &Value) {
    use std::os::unix::fs::PermissionsExt;
    let torrc = lab.state_dir().join(format!("run/tor/{slot}/torrc"));
    let mode = std::fs::metadata(&torrc)
        .expect("torrc")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", torrc.display());
    let text = std::fs::read_to_string(&torrc).expect("torrc");
    for line in ["SocksPort 0", "CookieAuthentication 1", "RunAsDaemon 0"] {
        assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
    }
    assert!(!text.contains("ExitRelay"), "{text}");
    let trans = format!("TransPort {}:", lab.cell_wg_addr());
    assert!(text.contains(&trans), "{text}");
    let check = format!(
        "ip netns exec {} tor --verify-config --defaults-torrc /dev/null -f {}",
        lab.cell_ns,
        torrc.display()
    );
    assert!(run(&check).contains("Configuration was valid"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tor_peers_leave_through_tor_and_nowhere_else() {
    let mut x = TorLab::start().await;
    let tor = x.create("tor").await;
    let spare = x.create("spare").await;
    let (id, spare_id) = (tor["id"].as_str().unwrap(), spare["id"].as_str().unwrap());
    x.set(
        "/api/connectivity/peers/alice/exit",
        json!({ "connection": id }),
    )
    .await;
    x.waits_through_tor("alice");
    real_tor_accepts(&x.lab, &tor["slot"]);
    nothing_but_tcp_and_dns_leaves(&x, id).await;
    tor_is_started_again(&mut x, id).await;
    bootstrapping_cuts_off(&x, id, &tor["slot"]).await;
    delete_and_shutdown_stop_tor(&mut x, id, spare_id, &tor["slot"]).await;
}

/// alice on tor: her TCP and UDP DNS go through tor, nothing else of hers leaves, and not
/// one of her packets is on the uplink (tor's own flows are the cell's); bob goes direct.
async fn nothing_but_tcp_and_dns_leaves(x: &TorLab, id: &str) {
    x.watch_alice();
    let before = x.relayed();
    assert_eq!(fetch(&x.alice).0.as_deref(), Some(CELL_UPLINK_ADDR));
    assert!(x.relayed_since(before), "the fetch was not relayed by tor");
    let (answer, _) = dig(&x.alice, "internet.test", false);
    assert_eq!(
        answer.as_deref(),
        Some(INTERNET_SERVER),
        "DNS to a hard-coded resolver"
    );
    let asked = format!("tor: answered {} internet.test", v4_of(&x.alice));
    assert!(
        eventually(LOG_DELAY, || x.lab.picd_log().contains(&asked)),
        "not asked of tor:\n{}",
        x.log_tail()
    );
    let (tcp53, took) = dig(&x.alice, "internet.test", true);
    assert_eq!(tcp53, None, "DNS over TCP answered");
    // Refused by the cell, not taken by tor (whose DNSPort is UDP only).
    let to_resolver = format!("{} -> {HARD_CODED_RESOLVER}:53", v4_of(&x.alice));
    std::thread::sleep(LOG_DELAY);
    assert!(
        !x.lab.picd_log().contains(&to_resolver),
        "tcp/53 went to tor's TransPort"
    );
    assert!(took < FAST_REFUSAL, "tcp/53 refused only after {took:?}");
    assert_eq!(udp_to_internet(&x.alice), "refused", "UDP/443 (QUIC)");
    let (seen6, took6) = fetch6(&x.alice);
    assert_eq!(seen6, None, "alice reached the internet over IPv6");
    assert!(took6 < FAST_REFUSAL, "IPv6 refused only after {took6:?}");
    assert!(
        !x.lab.ping(&x.alice, INTERNET_SERVER),
        "alice's ping was answered"
    );
    assert_eq!(
        x.lab.uplink_leaks(),
        0,
        "alice's packets on the uplink:\n{}",
        x.lab.uplink_watch()
    );
    let bob_line = format!("tor: relayed {} ->", v4_of(&x.bob));
    assert_eq!(
        fetch(&x.bob).0.as_deref(),
        Some(CELL_UPLINK_ADDR),
        "bob, direct"
    );
    assert!(
        !x.lab.picd_log().contains(&bob_line),
        "bob went through tor"
    );
    x.wait_state(id, "up").await;
}

/// tor killed, then picd killed: a new tor each time, and alice gets through again.
async fn tor_is_started_again(x: &mut TorLab, id: &str) {
    // tor dies: picd starts it again, and alice gets through again.
    let pid = x.wait_pid(id, None).await;
    stop_pid(pid, "KILL");
    let again = x.wait_pid(id, Some(pid)).await;
    let process = x.exit(id).await["process"].clone();
    assert_eq!(
        process["restarts"], 1,
        "not restarted by its watcher: {process}"
    );
    x.waits_through_tor("alice after tor was restarted");
    // picd killed: the next picd stops the tor it left, and starts its own.
    x.lab.kill_and_restart_picd().await;
    assert!(
        eventually(APPLY_TIMEOUT, || !alive(again)),
        "the orphaned tor still runs"
    );
    x.wait_pid(id, Some(again)).await;
    // The new picd's WireGuard has no session with alice until her client's next handshake.
    assert!(
        x.lab.tunnel_works_within(&x.alice, TUNNEL_BACK),
        "alice's tunnel after the restart"
    );
    x.waits_through_tor("alice through the new picd's tor");
}

/// tor not bootstrapped: alice is cut off (fail-closed), at once, and nothing leaks; with
/// fail-open she goes direct while it is down, and back after.
async fn bootstrapping_cuts_off(x: &TorLab, id: &str, slot: &Value) {
    // tor not bootstrapped: alice is cut off (fail-closed), at once, and nothing leaks.
    let progress = x
        .lab
        .state_dir()
        .join(format!("tor/{}/standin-progress", slot));
    std::fs::write(&progress, BOOTSTRAPPING).expect("progress file");
    x.wait_state(id, "down").await;
    x.watch_alice();
    assert_cut_off(&x.lab, &x.alice, "tor bootstrapping, fail-closed");
    // Fail-open: direct while tor is down (her packets leave by the uplink), back after.
    x.set(
        "/api/connectivity/peers/alice/failopen",
        json!({ "fail_open": true }),
    )
    .await;
    x.waits_for(&x.alice, CELL_UPLINK_ADDR, "fail-open alice, direct");
    assert!(
        x.lab.uplink_leaks() > 0,
        "fail-open alice did not go direct"
    );
    std::fs::remove_file(&progress).expect("progress file");
    x.wait_state(id, "up").await;
    x.waits_through_tor("alice back on tor");
}

/// Deleting the connection stops its tor and removes its files; stopping picd the other.
async fn delete_and_shutdown_stop_tor(x: &mut TorLab, id: &str, spare_id: &str, slot: &Value) {
    // Deleting the connection stops its tor and removes its files; stopping picd the other.
    x.set(
        "/api/connectivity/peers/alice/exit",
        json!({ "connection": null }),
    )
    .await;
    let pid = x.wait_pid(id, None).await;
    let resp = x
        .admin
        .send_json(Method::DELETE, &format!("{CONNECTIONS}/{id}"), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(
        eventually(APPLY_TIMEOUT, || !alive(pid)),
        "tor outlived its connection"
    );
    let run_dir = x.lab.state_dir().join(format!("run/tor/{}", slot));
    assert!(
        eventually(APPLY_TIMEOUT, || !run_dir.exists()),
        "its files outlived it"
    );
    let spare_pid = x.wait_pid(spare_id, None).await;
    assert!(x.lab.stop_picd(), "picd did not stop");
    assert!(
        eventually(APPLY_TIMEOUT, || !alive(spare_pid)),
        "tor outlived picd"
    );
}
