//! `/api/containers/*` on a real, private Docker engine with the files service installed:
//! its container inspected (environment by names only), its log tail with escape sequences
//! dropped, a stop that holds across reconciles and a restart of picd (the service is
//! unreachable and shows as stopped) and a start that brings it back; the images and data
//! folders picd keeps; and a container started by hand on the same engine is 404 on every
//! route and left running as it was.

mod common;

use std::time::{Duration, Instant};

use common::docker::{cell_with_service, container_name, Dockerd};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CONTAINERS: &str = "/api/containers";
const ACTIVE: &str = "/api/services/active";
/// The reconciler's period here; a stopped container is watched for several of them.
const RECONCILE_SECONDS: &str = "1";
const SEVERAL_RECONCILES: Duration = Duration::from_secs(4);
const WAIT: Duration = Duration::from_secs(30);
/// A container someone made by hand on the same engine (host networking, `sleep`).
const BY_HAND: &str = "started-by-hand";
/// The user name of a refused login: nginx logs it, escape sequences and all, to stderr.
const MARKER: &str = "containers-test-marker";
const VOLUME_FILE_BYTES: usize = 100_000;

fn inspect(dockerd: &Dockerd, name: &str) -> Value {
    let out = dockerd.docker_ok(&["inspect", name]);
    let list: Value = serde_json::from_str(&out).expect("docker inspect JSON");
    list[0].clone()
}

fn curl_status(port: u64, user: Option<&str>) -> String {
    let mut command = std::process::Command::new("curl");
    command.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
    ]);
    if let Some(user) = user {
        command.arg("-u").arg(format!("{user}:wrong"));
    }
    let out = command
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_for_status(port: u64, wanted: &str) {
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if curl_status(port, None) == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("port {port} did not answer {wanted} within {WAIT:?}");
}

async fn post(admin: &TestClient, path: &str) -> (StatusCode, Value) {
    json_of(admin.send_json(Method::POST, path, &json!({})).await).await
}

async fn files_active(admin: &TestClient) -> Value {
    let (status, active) = admin.get_json(ACTIVE).await;
    assert_eq!(status, StatusCode::OK, "{active}");
    active["services"][0].clone()
}

/// The inspect of the files container: what the engine has, without an env value.
async fn check_inspect(admin: &TestClient, dockerd: &Dockerd, name: &str, port: u64) {
    let engine = inspect(dockerd, name);
    let id = engine["Id"].as_str().unwrap();
    for reference in [id, name, &id[..12]] {
        let (status, body) = admin.get_json(&format!("{CONTAINERS}/{reference}")).await;
        assert_eq!(status, StatusCode::OK, "{reference}: {body}");
        assert_eq!(body["id"], id, "{body}");
    }
    let (_, body) = admin.get_json(&format!("{CONTAINERS}/{name}")).await;
    assert_eq!(body["name"], name, "{body}");
    assert_eq!(body["service"], "files", "{body}");
    assert_eq!(body["state"], "running", "{body}");
    assert_eq!(body["health"], "healthy", "{body}");
    assert_eq!(body["desired_state"], "running", "{body}");
    assert_eq!(body["restart_count"], 0, "{body}");
    assert_eq!(body["started_at"], engine["State"]["StartedAt"], "{body}");
    assert_eq!(body["image_id"], engine["Image"], "{body}");
    assert_eq!(body["labels"]["org.picd.service"], "files", "{body}");
    assert_eq!(
        body["resources"]["memory_bytes"],
        64 * 1024 * 1024,
        "{body}"
    );
    assert_eq!(body["resources"]["pids_limit"], 64, "{body}");
    assert_eq!(body["security"]["read_only_root"], true, "{body}");
    assert_eq!(body["security"]["cap_drop"], json!(["ALL"]), "{body}");
    assert_eq!(
        body["security"]["security_opt"],
        json!(["no-new-privileges:true"]),
        "{body}"
    );
    assert_eq!(body["ports"]["network_mode"], "host", "{body}");
    assert_eq!(body["ports"]["endpoints"][0]["port"], port, "{body}");
    let mounts = body["mounts"].as_array().expect("mounts");
    let mount = |target: &str| mounts.iter().find(|m| m["target"] == target).cloned();
    let data = mount("/srv/dav").expect("the data mount");
    assert_eq!(data["read_only"], false, "{body}");
    assert!(data["source"]
        .as_str()
        .unwrap()
        .ends_with("files/volumes/data"));
    assert_eq!(mount("/etc/picd-files").expect("config")["read_only"], true);
    // Names only (files has none: its image sets none; the inspect's unit test holds values).
    let env: Vec<&str> = engine["Config"]["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e.as_str().unwrap())
        .collect();
    let names: Vec<&str> = env.iter().map(|e| e.split('=').next().unwrap()).collect();
    assert_eq!(body["env_names"], json!(names), "{body}");
    assert!(body.get("env").is_none(), "{body}");
}

/// A refused login writes the user name (with its escape sequences) to nginx's stderr; the
/// tail has that line, cleaned, and honours `lines`.
async fn check_logs(admin: &TestClient, dockerd: &Dockerd, name: &str, port: u64) {
    let user = format!("\u{1b}[31m{MARKER}\u{1b}[0m");
    for _ in 0..3 {
        assert_eq!(curl_status(port, Some(&user)), "401");
    }
    let raw = dockerd.docker(&["logs", name]);
    let raw = String::from_utf8_lossy(&raw.stderr).into_owned();
    assert!(raw.contains(&format!("\u{1b}[31m{MARKER}")), "{raw}");
    let (status, body) = admin.get_json(&format!("{CONTAINERS}/{name}/logs")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lines = body["lines"].as_array().expect("lines");
    let marked: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.as_str())
        .filter(|l| l.contains(MARKER))
        .collect();
    assert!(marked.len() >= 3, "{body}");
    for line in &marked {
        assert!(line.contains(&format!("\"{MARKER}\"")), "{line:?}");
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
    }
    assert_eq!(body["truncated"], false, "{body}");
    let (_, two) = admin
        .get_json(&format!("{CONTAINERS}/{name}/logs?lines=2"))
        .await;
    let two = two["lines"].as_array().expect("lines");
    assert_eq!(two.len(), 2, "{two:?}");
    assert_eq!(two[..], lines[lines.len() - 2..], "not the newest lines");
}

/// The stop holds: across reconciles and a restart of picd, unreachable, shown as stopped.
async fn check_stop(
    picd: &mut Picd,
    admin: TestClient,
    dockerd: &Dockerd,
    name: &str,
    port: u64,
) -> TestClient {
    let id = inspect(dockerd, name)["Id"].as_str().unwrap().to_string();
    let (status, body) = post(&admin, &format!("{CONTAINERS}/{id}/stop")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["desired_state"], "stopped", "{body}");
    assert_eq!(body["state"], "exited", "{body}");
    assert_eq!(curl_status(port, None), "000", "the service still answers");
    tokio::time::sleep(SEVERAL_RECONCILES).await;
    let engine = inspect(dockerd, name);
    assert_eq!(engine["Id"], id.as_str(), "recreated while stopped");
    assert_eq!(
        engine["State"]["Running"], false,
        "the reconciler started it"
    );
    let active = files_active(&admin).await;
    assert_eq!(active["desired_state"], "stopped", "{active}");
    assert_eq!(active["health"], "stopped", "{active}");
    assert_eq!(active["container"]["state"], "exited", "{active}");
    let (_, one) = admin.get_json(&format!("{CONTAINERS}/{id}")).await;
    assert_eq!(
        (&one["state"], &one["health"]),
        (&json!("exited"), &json!("stopped"))
    );
    picd.restart().await;
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    tokio::time::sleep(SEVERAL_RECONCILES).await;
    let engine = inspect(dockerd, name);
    assert_eq!(
        engine["State"]["Running"], false,
        "a restart of picd started it"
    );
    assert_eq!(
        curl_status(port, None),
        "000",
        "the service answers while stopped"
    );
    admin
}

/// Every route answers 404 for a container picd did not create, and it runs on untouched.
async fn check_by_hand_untouched(admin: &TestClient, dockerd: &Dockerd, before: &Value) {
    let id = before["Id"].as_str().unwrap();
    for reference in [id, &id[..12], BY_HAND] {
        let one = format!("{CONTAINERS}/{reference}");
        expect_error(admin.get(&one).await, StatusCode::NOT_FOUND, "not_found").await;
        let logs = admin.get(&format!("{one}/logs")).await;
        expect_error(logs, StatusCode::NOT_FOUND, "not_found").await;
        for action in ["stop", "start"] {
            let path = format!("{one}/{action}");
            let resp = admin.send_json(Method::POST, &path, &json!({})).await;
            expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    let (_, listed) = admin.get_json(CONTAINERS).await;
    assert!(!listed.to_string().contains(id), "{listed}");
    let after = inspect(dockerd, BY_HAND);
    assert_eq!(after["State"]["Running"], true, "{after}");
    assert_eq!(after["State"]["StartedAt"], before["State"]["StartedAt"]);
    assert_eq!(after["RestartCount"], before["RestartCount"]);
}

async fn check_images_and_volumes(admin: &TestClient, picd: &Picd, dockerd: &Dockerd) {
    let (status, body) = admin.get_json(&format!("{CONTAINERS}/images")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let images = body["images"].as_array().expect("images");
    let files = images
        .iter()
        .find(|i| i["service"] == "files")
        .expect("files");
    assert_eq!(files["matches"], true, "{body}");
    assert_eq!(files["installed"], true, "{body}");
    assert!(files["size_bytes"].as_i64().unwrap() > 1_000_000, "{body}");
    assert!(
        files["tag"].as_str().unwrap().starts_with("picd/files:"),
        "{body}"
    );
    assert!(images
        .iter()
        .any(|i| i["service"] == "calendar" && i["installed"] == false));

    let folder = picd.state_dir().join("services/files/volumes/data");
    std::fs::write(folder.join("sized.bin"), vec![7u8; VOLUME_FILE_BYTES]).unwrap();
    let (status, body) = admin.get_json(&format!("{CONTAINERS}/volumes")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["volumes"][0];
    assert_eq!(data["service"], "files", "{body}");
    assert_eq!(data["path"], folder.display().to_string(), "{body}");
    assert_eq!(data["mount"], "/srv/dav", "{body}");
    assert!(
        data["size_bytes"].as_u64().unwrap() >= VOLUME_FILE_BYTES as u64,
        "{body}"
    );

    // The files tag moved to another image: the recorded Id no longer matches.
    let calendar = images.iter().find(|i| i["service"] == "calendar").unwrap();
    let tag = files["tag"].as_str().unwrap();
    let files_id = files["id"].as_str().unwrap();
    dockerd.docker_ok(&["tag", calendar["id"].as_str().unwrap(), tag]);
    let (_, body) = admin.get_json(&format!("{CONTAINERS}/images")).await;
    let files = body["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["service"] == "files")
        .cloned();
    assert_eq!(files.expect("files")["matches"], false, "{body}");
    dockerd.docker_ok(&["tag", files_id, tag]);
}

/// The audit entries of the container routes: (target, result, desired state).
fn container_entries(picd: &Picd) -> Vec<(String, String, String)> {
    let db = picd.db();
    let mut stmt = db
        .prepare(
            "SELECT target_id, result, coalesce(json_extract(detail, '$.desired_state'), '')
             FROM audit_log WHERE target_type = 'container' ORDER BY seq",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

#[tokio::test]
async fn the_cells_containers_are_inspected_stopped_and_started_and_no_other_is_touched() {
    let dockerd = Dockerd::shared();
    let (mut picd, admin) = cell_with_service(&dockerd, RECONCILE_SECONDS, "files").await;
    let name = container_name(&picd.db(), "files");
    let port = files_active(&admin).await["http_port"]
        .as_u64()
        .expect("port");
    let image = inspect(&dockerd, &name)["Image"]
        .as_str()
        .unwrap()
        .to_string();
    dockerd.docker_ok(&[
        "run",
        "-d",
        "--name",
        BY_HAND,
        "--network",
        "host",
        "--entrypoint",
        "sleep",
        &image,
        "600",
    ]);
    let by_hand = inspect(&dockerd, BY_HAND);

    check_inspect(&admin, &dockerd, &name, port).await;
    check_logs(&admin, &dockerd, &name, port).await;
    let admin = check_stop(&mut picd, admin, &dockerd, &name, port).await;

    let stopped_id = inspect(&dockerd, &name)["Id"].as_str().unwrap().to_string();
    let (status, body) = post(&admin, &format!("{CONTAINERS}/{name}/start")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["desired_state"], "running", "{body}");
    assert_eq!(
        body["id"],
        stopped_id.as_str(),
        "started, not replaced: {body}"
    );
    wait_for_status(port, "401").await;
    let active = files_active(&admin).await;
    assert_eq!(active["desired_state"], "running", "{active}");
    assert_eq!(active["health"], "healthy", "{active}");

    let entries = container_entries(&picd);
    let files = |desired: &str| {
        (
            "files".to_string(),
            "success".to_string(),
            desired.to_string(),
        )
    };
    assert_eq!(
        entries[..2],
        [files("stopped"), files("running")],
        "{entries:?}"
    );

    check_by_hand_untouched(&admin, &dockerd, &by_hand).await;
    // The refused changes of the container by hand: on record, each once.
    let entries = container_entries(&picd);
    assert_eq!(entries.len(), 2 + 3 * 2, "{entries:?}");
    assert!(entries[2..]
        .iter()
        .all(|(id, result, _)| id.is_empty() && result == "failure"));
    check_images_and_volumes(&admin, &picd, &dockerd).await;
    dockerd.docker_ok(&["rm", "-f", BY_HAND]);
    assert_no_internal_errors(&picd);
}
