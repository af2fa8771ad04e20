//! `socks5` and `http` exits applied for real: the lab's cell, internet and provider
//! namespaces, with a SOCKS5 server (dante, username/password) and an HTTP CONNECT proxy
//! (tinyproxy, Basic auth) in the provider's namespace. alice leaves through the SOCKS5 exit
//! and bob through the HTTP one: both reach the internet from the provider's address, also by
//! name (their DNS is asked over the proxy, from the provider's address). Not one of alice's
//! packets leaves through the cell's uplink, UDP and ping included; with the proxy stopped she
//! is refused at once and still nothing leaks; picd starts its redsocks again when it dies,
//! stops it when the connection goes and when picd stops. The password is never answered,
//! logged or stored in the clear.

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

struct ProxyLab {
    lab: Lab,
    admin: TestClient,
    alice: WgClient,
    bob: WgClient,
    provider: Provider,
    proxies: Proxies,
    _resolv: Vec<EtcNetns>,
}

fn cell(lab: &Lab, line: &str) -> String {
    run(&format!("ip netns exec {} {line}", lab.cell_ns))
}

fn addr_of(client: &WgClient, v6: bool) -> String {
    let address = client
        .config
        .addresses
        .iter()
        .find(|a| a.contains(':') == v6);
    address
        .expect("an address")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

impl ProxyLab {
    async fn start() -> ProxyLab {
        require_root_and_tools(&[
            "nft",
            "curl",
            "python3",
            "ping",
            "redsocks",
            "danted",
            "tinyproxy",
            "openssl",
        ]);
        let ExitsLab {
            mut lab,
            admin,
            mut peers,
            provider,
        } = ExitsLab::start(RECONCILE_SECONDS, &["alice", "bob"]).await;
        // Each peer hard-codes an internet resolver; picd must send it over the proxy.
        let text = format!("nameserver {HARD_CODED_RESOLVER}\noptions timeout:2 attempts:1\n");
        let resolv = peers
            .iter()
            .map(|client| EtcNetns::write(&client.ns, "resolv.conf", &text, 0o644))
            .collect();
        let proxies = lab.proxies(&provider);
        let bob = peers.pop().expect("bob");
        let alice = peers.pop().expect("alice");
        ProxyLab {
            lab,
            admin,
            alice,
            bob,
            provider,
            proxies,
            _resolv: resolv,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        json_of(self.admin.send_json(method, path, &body).await).await
    }

    async fn create(&self, kind: &str, port: u16) -> Value {
        let body = json!({ "name": kind, "type": kind, "host": PROVIDER_ADDR, "port": port,
                           "username": PROXY_USER, "password": PROXY_PASSWORD,
                           "dns": [HARD_CODED_RESOLVER] });
        let (status, created) = self.send(Method::POST, CONNECTIONS, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert!(!created.to_string().contains(PROXY_PASSWORD), "{created}");
        assert_eq!(created["settings"]["has_password"], true, "{created}");
        // A redirect to redsocks, with no device of its own.
        assert_eq!(created["interface"], Value::Null, "{created}");
        created
    }

    async fn exits(&self) -> Vec<Value> {
        let (status, body) = self.admin.get_json("/api/connectivity/exits").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["exits"].as_array().cloned().unwrap_or_default()
    }

    async fn exit(&self, id: &str) -> Value {
        let exits = self.exits().await;
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
                "not {wanted}; log:\n{}",
                self.lab.picd_log()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn wait_pid(&self, id: &str, not: Option<u64>) -> u64 {
        let deadline = Instant::now() + APPLY_TIMEOUT;
        loop {
            let pid = self.exit(id).await["pid"].as_u64();
            if let Some(pid) = pid.filter(|p| Some(*p) != not && alive(*p as u32)) {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "no redsocks; log:\n{}",
                log_tail(&self.lab)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn waits_for(&self, client: &WgClient, by_name: bool, seen: &str, what: &str) {
        let mut last = None;
        let reached = eventually(APPLY_TIMEOUT, || {
            last = fetch_by(client, by_name).0;
            last.as_deref() == Some(seen)
        });
        assert!(
            reached,
            "{what}: saw {last:?}; ruleset:\n{}\n{}\npicd's log ends:\n{}",
            cell(&self.lab, "nft list ruleset"),
            self.lab.proxy_logs(),
            log_tail(&self.lab)
        );
    }

    /// Counts every packet from alice's addresses that leaves through the uplink.
    fn watch_uplink(&self) {
        let (v4, v6) = (addr_of(&self.alice, false), addr_of(&self.alice, true));
        self.lab.watch_uplink_for(&v4, &v6);
    }

    /// The leak counters, the cell's rules and exit tables (for a failure).
    fn kernel_state(&self) -> String {
        let show = |line: &str| cell(&self.lab, line);
        format!(
            "{}\nrules:\n{}{}tables:\n{}{}",
            self.lab.uplink_watch(),
            show("ip rule show"),
            show("ip -6 rule show"),
            show("ip route show table 1001") + &show("ip route show table 1002"),
            show("ip -6 route show table 1001")
        )
    }

    /// alice's UDP (QUIC's port), ping and IPv6: none of it may leave through the uplink.
    fn try_everything_else(&self) {
        let ns = &self.alice.ns;
        let quic = format!(
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
             [s.sendto(b'x' * 32, ('{INTERNET_SERVER}', p)) for p in (443, 53, 9999)]"
        );
        let _ = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &quic])
            .output();
        let ping = format!("ip netns exec {ns} ping -n -c 2 -W 1 {INTERNET_SERVER}");
        assert!(!succeeds(&ping), "alice's ping was answered");
        assert_eq!(
            fetch6(&self.alice).0,
            None,
            "alice reached the internet over IPv6"
        );
    }
}

impl Drop for ProxyLab {
    fn drop(&mut self) {
        // picd's redsocks outlive a picd killed with the lab: stop them by their PIDs.
        for pid in self.lab.redsocks_pids() {
            stop_pid(pid, "KILL");
        }
    }
}

fn log_tail(lab: &Lab) -> String {
    let log = lab.picd_log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// curl to the internet's HTTP server by address or by name.
fn fetch_by(client: &WgClient, by_name: bool) -> (Option<String>, Duration) {
    if !by_name {
        return fetch(client);
    }
    let started = Instant::now();
    let url = format!("http://{INTERNET_NAME}:{HTTP_PORT}/");
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &client.ns,
            "curl",
            "-4",
            "-s",
            "--max-time",
            "5",
            &url,
        ])
        .output()
        .expect("curl");
    let seen = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success().then_some(seen), started.elapsed())
}

fn contains(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read(path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_peers_leave_through_their_proxy_and_nowhere_else() {
    let mut x = ProxyLab::start().await;
    let socks = x.create("socks5", SOCKS_PORT).await;
    let http = x.create("http", HTTP_PROXY_PORT).await;
    let (socks_id, http_id) = (socks["id"].as_str().unwrap(), http["id"].as_str().unwrap());
    for (peer, id) in [("alice", socks_id), ("bob", http_id)] {
        let path = format!("/api/connectivity/peers/{peer}/exit");
        let (status, body) = x
            .send(Method::PUT, &path, json!({ "connection": id }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    x.waits_for(
        &x.alice,
        false,
        PROVIDER_ADDR,
        "alice through the SOCKS5 exit",
    );
    // From here on (the first fetch may have gone direct before the table had alice's
    // mark): not one packet of hers on the uplink.
    x.watch_uplink();
    x.waits_for(&x.bob, false, PROVIDER_ADDR, "bob through the HTTP exit");
    x.waits_for(&x.alice, true, PROVIDER_ADDR, "alice by name");
    x.waits_for(&x.bob, true, PROVIDER_ADDR, "bob by name");
    let asked = std::fs::read_to_string(&x.proxies.resolver_log).unwrap_or_default();
    assert!(
        asked.lines().any(|l| l == format!("tcp {PROVIDER_ADDR}")),
        "{asked}"
    );
    assert!(
        !asked.contains(CELL_UPLINK_ADDR),
        "DNS left through the uplink: {asked}"
    );
    x.try_everything_else();
    assert_eq!(
        x.lab.uplink_leaks(),
        0,
        "alice's packets on the uplink:\n{}",
        x.kernel_state()
    );
    x.wait_state(socks_id, "up").await;

    // The password: never answered, logged, or stored in the clear; redsocks' file is 0600.
    let (_, listed) = x.admin.get_json(CONNECTIONS).await;
    assert!(!listed.to_string().contains(PROXY_PASSWORD), "{listed}");
    assert!(
        !x.lab.picd_log().contains(PROXY_PASSWORD),
        "the password is in picd's log"
    );
    for file in ["picd.db", "picd.db-wal"] {
        assert!(
            !contains(&x.lab.state_dir().join(file), PROXY_PASSWORD),
            "{file}"
        );
    }
    let conf = x
        .lab
        .state_dir()
        .join(format!("connectivity/redsocks-{}.conf", socks["slot"]));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&conf)
        .expect("redsocks config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", conf.display());

    // The SOCKS5 proxy stops: alice is refused at once, her DNS goes unanswered, no leak.
    stop_pid(x.proxies.socks_pid, "TERM");
    assert!(
        eventually(APPLY_TIMEOUT, || !alive(x.proxies.socks_pid)),
        "dante still runs"
    );
    let (seen, took) = fetch(&x.alice);
    assert_eq!(seen, None, "alice reached the internet without her proxy");
    assert!(took < FAST_REFUSAL, "refused only after {took:?}");
    assert_eq!(
        fetch_by(&x.alice, true).0,
        None,
        "alice's name was resolved"
    );
    x.try_everything_else();
    x.wait_state(socks_id, "down").await;
    assert_eq!(fetch(&x.alice).0, None, "a fail-closed peer stays cut off");
    assert_eq!(
        x.lab.uplink_leaks(),
        0,
        "alice's packets on the uplink with the proxy down"
    );
    x.waits_for(&x.bob, false, PROVIDER_ADDR, "bob, on the other exit");

    // Fail-open: alice goes direct while her exit is down, and back when it returns.
    let failopen = "/api/connectivity/peers/alice/failopen";
    let (status, body) = x
        .send(Method::PUT, failopen, json!({ "fail_open": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    x.waits_for(&x.alice, false, CELL_UPLINK_ADDR, "fail-open alice, direct");
    x.proxies.socks_pid = x.lab.restart_socks(&x.provider);
    x.wait_state(socks_id, "up").await;
    x.waits_for(&x.alice, false, PROVIDER_ADDR, "alice back on her exit");

    // picd's redsocks dies: picd starts it again, and bob gets through again.
    let pid = x.wait_pid(http_id, None).await;
    stop_pid(pid as u32, "KILL");
    let again = x.wait_pid(http_id, Some(pid)).await;
    assert_ne!(again, pid);
    x.waits_for(
        &x.bob,
        false,
        PROVIDER_ADDR,
        "bob after redsocks was restarted",
    );

    // Deleting a connection stops its redsocks; stopping picd stops the others.
    let alice_exit = "/api/connectivity/peers/alice/exit";
    let (status, _) = x
        .send(Method::PUT, alice_exit, json!({ "connection": null }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let socks_pid = x.wait_pid(socks_id, None).await as u32;
    let path = format!("{CONNECTIONS}/{socks_id}");
    let resp = x.admin.send_json(Method::DELETE, &path, &json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(
        eventually(APPLY_TIMEOUT, || !alive(socks_pid)),
        "redsocks outlived its connection"
    );
    assert!(
        eventually(APPLY_TIMEOUT, || !conf.exists()),
        "its config outlived it"
    );
    let http_pid = x.wait_pid(http_id, None).await as u32;
    assert!(x.lab.stop_picd(), "picd did not stop");
    assert!(
        eventually(APPLY_TIMEOUT, || !alive(http_pid)),
        "redsocks outlived picd"
    );
}
