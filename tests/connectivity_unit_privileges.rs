//! A `wireguard_ext` exit with picd under the packaged unit's privileges (a uid of no account,
//! no new privileges, only the capabilities systemd/picd.service grants; see
//! `LabOptions::unit_privileges`), not as root as in the other exit tests. The children picd
//! starts must work there too: the health probe (`ping -I <exit>`) answers, so the exit comes
//! up and the exit peer reaches the internet from the provider's address; moved to direct, its
//! old flows are flushed (`conntrack -D`). A `socks5` exit's redsocks runs and carries the
//! exit peer's TCP to the provider's SOCKS5 server. An `openvpn` exit's client runs (as picd's
//! uid) and its tunnel carries the exit peer to the provider. A `tor` exit (the tor netns
//! test's stand-in, which hands `--verify-config` to the real tor) relays the exit peer's TCP.

mod common;

use std::time::{Duration, Instant};

use common::netns::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const RECONCILE_SECONDS: u64 = 3;
/// OpenVPN's handshake on a loaded machine included.
const UP_TIMEOUT: Duration = Duration::from_secs(40);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
const TOR_STANDIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tor_standin.py");
/// How long a line of tor's takes to reach picd's log, at most.
const LOG_DELAY: Duration = Duration::from_secs(3);

async fn put(admin: &TestClient, path: &str, body: Value) {
    let resp = admin.send_json(Method::PUT, path, &body).await;
    let (status, answer) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "PUT {path} {body}: {answer}");
}

async fn exit_state(admin: &TestClient) -> String {
    let (status, body) = admin.get_json("/api/connectivity/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["connections"][0]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Creates a connection; answers its id.
async fn create(admin: &TestClient, body: Value) -> String {
    let resp = admin
        .send_json(Method::POST, "/api/connectivity/connections", &body)
        .await;
    let (status, created) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().expect("id").to_string()
}

/// What of /proc/<pid>/status shows the privileges: uid, capability sets, NoNewPrivs.
fn privileges(status: &str) -> String {
    let keys = ["Uid:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:"];
    let lines = status
        .lines()
        .filter(|l| keys.iter().any(|k| l.starts_with(k)));
    lines.collect::<Vec<_>>().join("; ")
}

/// The exits' lab. The lab itself kills picd, which leaves its openvpn and redsocks children
/// behind: picd is stopped first (SIGTERM: it stops them), then any left are killed.
struct UnitLab(ExitsLab);

impl Drop for UnitLab {
    fn drop(&mut self) {
        self.0.lab.stop_picd();
        self.0.lab.kill_picd_openvpn();
        for pid in self.0.lab.redsocks_pids() {
            stop_pid(pid, "KILL");
        }
    }
}

/// The exits' lab with alice, picd under the unit's privileges (checked in /proc).
async fn unit_lab() -> UnitLab {
    unit_lab_with(Vec::new()).await
}

/// `unit_lab` with more settings for picd.
async fn unit_lab_with(env: Vec<(String, String)>) -> UnitLab {
    let options = LabOptions {
        reconcile_interval_seconds: RECONCILE_SECONDS,
        unit_privileges: true,
        env,
        ..LabOptions::default()
    };
    let start = ExitsLab::start_with(options, &["alice"]).await;
    let shown = privileges(&start.lab.picd_status());
    eprintln!("picd runs with {shown}");
    assert!(
        shown.contains(&format!("Uid:\t{UNIT_UID}\t")) && shown.contains("NoNewPrivs:\t1"),
        "picd is not under the unit's privileges: {shown}"
    );
    UnitLab(start)
}

/// Puts alice on the exit and waits until the exit is up.
async fn alice_on_exit_up(lab: &Lab, admin: &TestClient, exit_id: &str) {
    put(
        admin,
        "/api/connectivity/peers/alice/exit",
        json!({ "connection": exit_id }),
    )
    .await;
    let deadline = Instant::now() + UP_TIMEOUT;
    loop {
        let state = exit_state(admin).await;
        if state == "up" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the exit is {state:?}, not up, after {UP_TIMEOUT:?}; log:\n{}",
            lab.picd_log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wireguard_exit_works_under_the_units_privileges() {
    require_root_and_tools(&["setpriv", "nft", "curl", "python3", "ping", "conntrack"]);
    let mut x = unit_lab().await;
    let (exit_id, _) = x.0.add_wireguard_exit().await;
    let (lab, admin, alice) = (&x.0.lab, &x.0.admin, &x.0.peers[0]);
    alice_on_exit_up(lab, admin, &exit_id).await;
    let (status, probed) = admin
        .get_json(&format!("/api/connectivity/connections/{exit_id}/health"))
        .await;
    assert_eq!(status, StatusCode::OK, "{probed}");
    assert_eq!(probed["answered"], json!(true), "the probe: {probed}");
    let through = eventually(UP_TIMEOUT, || {
        fetch(alice).0.as_deref() == Some(PROVIDER_ADDR)
    });
    assert!(through, "alice through the exit: saw {:?}", fetch(alice));

    // Each fetch left a flow masqueraded to the exit's tunnel address; the move flushes them.
    let v4 = alice.config.addresses[0]
        .split('/')
        .next()
        .expect("address");
    let flows = || {
        run(&format!(
            "ip netns exec {} conntrack -L -s {v4}",
            lab.cell_ns
        ))
    };
    assert!(
        flows().contains(CELL_TUNNEL_ADDR),
        "no flow to flush:\n{}",
        flows()
    );
    put(
        admin,
        "/api/connectivity/peers/alice/exit",
        json!({ "connection": null }),
    )
    .await;
    let direct = eventually(UP_TIMEOUT, || {
        fetch(alice).0.as_deref() == Some(CELL_UPLINK_ADDR)
    });
    assert!(direct, "alice direct: saw {:?}", fetch(alice));
    let flushed = eventually(FLUSH_TIMEOUT, || !flows().contains(CELL_TUNNEL_ADDR));
    assert!(flushed, "old flows kept after the move:\n{}", flows());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socks5_exit_works_under_the_units_privileges() {
    let tools = [
        "setpriv", "nft", "curl", "python3", "redsocks", "danted", "openssl",
    ];
    require_root_and_tools(&tools);
    let mut x = unit_lab().await;
    let _proxies = x.0.lab.proxies(&x.0.provider);
    let (lab, admin, alice) = (&x.0.lab, &x.0.admin, &x.0.peers[0]);
    let body = json!({ "name": "socks5", "type": "socks5", "host": PROVIDER_ADDR,
                       "port": SOCKS_PORT, "username": PROXY_USER, "password": PROXY_PASSWORD,
                       "dns": [HARD_CODED_RESOLVER] });
    let exit_id = create(admin, body).await;
    alice_on_exit_up(lab, admin, &exit_id).await;
    let through = eventually(UP_TIMEOUT, || {
        fetch(alice).0.as_deref() == Some(PROVIDER_ADDR)
    });
    assert!(
        through,
        "alice through the SOCKS5 exit: saw {:?}; {}\npicd's log:\n{}",
        fetch(alice),
        lab.proxy_logs(),
        lab.picd_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openvpn_exit_works_under_the_units_privileges() {
    let tools = [
        "setpriv", "nft", "curl", "python3", "ping", "openvpn", "openssl",
    ];
    require_root_and_tools(&tools);
    let mut x = unit_lab().await;
    let server = x.0.lab.openvpn_server(&x.0.provider);
    let (lab, admin, alice) = (&x.0.lab, &x.0.admin, &x.0.peers[0]);
    let body = json!({ "name": "provider", "type": "openvpn",
                       "config": server.customer_config });
    let exit_id = create(admin, body).await;
    alice_on_exit_up(lab, admin, &exit_id).await;
    let through = eventually(UP_TIMEOUT, || {
        fetch(alice).0.as_deref() == Some(PROVIDER_ADDR)
    });
    assert!(
        through,
        "alice through the OpenVPN exit: saw {:?}; picd's log:\n{}",
        fetch(alice),
        lab.picd_log()
    );
    let pids = lab.picd_openvpn_pids();
    assert_eq!(pids.len(), 1, "picd's openvpn: {pids:?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", pids[0]));
    let shown = privileges(&status.unwrap_or_default());
    assert!(
        shown.contains(&format!("Uid:\t{UNIT_UID}\t")),
        "openvpn runs with {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tor_exit_works_under_the_units_privileges() {
    require_root_and_tools(&["setpriv", "nft", "curl", "python3", "tor"]);
    let x = unit_lab_with(vec![
        ("PICD_TOR_COMMAND".into(), TOR_STANDIN.into()),
        ("TOR_STANDIN_ANSWER".into(), INTERNET_SERVER.into()),
    ])
    .await;
    let (lab, admin, alice) = (&x.0.lab, &x.0.admin, &x.0.peers[0]);
    let exit_id = create(admin, json!({ "name": "tor", "type": "tor" })).await;
    alice_on_exit_up(lab, admin, &exit_id).await;
    let v4 = alice.config.addresses[0]
        .split('/')
        .next()
        .expect("address");
    let line = format!("tor: relayed {v4} -> {INTERNET_SERVER}:{HTTP_PORT}");
    let relayed = || lab.picd_log().matches(&line).count();
    let through = eventually(UP_TIMEOUT, || {
        let before = relayed();
        fetch(alice).0.as_deref() == Some(CELL_UPLINK_ADDR)
            && eventually(LOG_DELAY, || relayed() > before)
    });
    assert!(through, "alice not through tor; log:\n{}", lab.picd_log());
}
