//! A `wireguard_ext` exit with picd under the packaged unit's privileges (a uid of no account,
//! no new privileges, only the capabilities systemd/picd.service grants; see
//! `LabOptions::unit_privileges`), not as root as in the other exit tests. The children picd
//! starts must work there too: the health probe (`ping -I <exit>`) answers, so the exit comes
//! up and the exit peer reaches the internet from the provider's address; moved to direct, its
//! old flows are flushed (`conntrack -D`).

mod common;

use std::time::{Duration, Instant};

use common::netns::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const RECONCILE_SECONDS: u64 = 3;
const UP_TIMEOUT: Duration = Duration::from_secs(30);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

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

/// What of /proc/<pid>/status shows the privileges: uid, capability sets, NoNewPrivs.
fn privileges(status: &str) -> String {
    let keys = ["Uid:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:"];
    let lines = status
        .lines()
        .filter(|l| keys.iter().any(|k| l.starts_with(k)));
    lines.collect::<Vec<_>>().join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wireguard_exit_works_under_the_units_privileges() {
    require_root_and_tools(&["setpriv", "nft", "curl", "python3", "ping", "conntrack"]);
    let options = LabOptions {
        reconcile_interval_seconds: RECONCILE_SECONDS,
        unit_privileges: true,
        ..LabOptions::default()
    };
    let mut start = ExitsLab::start_with(options, &["alice"]).await;
    let (exit_id, _) = start.add_wireguard_exit().await;
    let (lab, admin, alice) = (&start.lab, &start.admin, &start.peers[0]);
    let shown = privileges(&lab.picd_status());
    eprintln!("picd runs with {shown}");
    assert!(
        shown.contains(&format!("Uid:\t{UNIT_UID}\t")) && shown.contains("NoNewPrivs:\t1"),
        "picd is not under the unit's privileges: {shown}"
    );

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
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the exit is {state:?}, not up, after {UP_TIMEOUT:?}; log:\n{}",
            lab.picd_log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
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
