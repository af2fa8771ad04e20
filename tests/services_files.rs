//! The files service end to end on a real, private Docker engine: built from Debian packages
//! (once per run, cached by recipe hash), installed through the API with its progress events
//! in order, hardened as its manifest says, brought back when removed by hand, left alone
//! when nothing changed, refused when its image Id is not the one picd recorded; and a
//! container picd did not create is never touched.

mod common;

use std::time::{Duration, Instant};

use common::docker::{build_images, container_name, http_status, Dockerd};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const INSTALL: &str = "/api/store/install";
const REMOVE: &str = "/api/store/remove";
/// The reconciler's period in these tests: a removed container is back within a few of them.
const RECONCILE_SECONDS: &str = "1";
const COME_BACK: Duration = Duration::from_secs(30);
const EXPECTED_STEPS: [&str; 8] = [
    "image",
    "volumes",
    "config",
    "container",
    "health",
    "route",
    "dns",
    "done",
];

fn events_of(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).expect("event data is JSON"))
        .collect()
}

async fn install(admin: &TestClient, id: &str) -> Vec<Value> {
    let resp = admin
        .send_json(Method::POST, INSTALL, &json!({ "id": id }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    events_of(&resp.text().await.unwrap())
}

fn inspect(dockerd: &Dockerd, name: &str) -> Option<Value> {
    let out = dockerd.docker(&["inspect", name]);
    if !out.status.success() {
        return None;
    }
    let list: Value = serde_json::from_slice(&out.stdout).expect("docker inspect JSON");
    list.get(0).cloned()
}

async fn wait_running(dockerd: &Dockerd, name: &str, not_id: &str) -> Value {
    let started = Instant::now();
    while started.elapsed() < COME_BACK {
        if let Some(c) = inspect(dockerd, name) {
            if c["State"]["Running"] == true && c["Id"] != not_id {
                return c;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{name} was not running again within {COME_BACK:?}");
}

#[tokio::test]
async fn files_service_is_built_installed_hardened_and_reconciled() {
    let dockerd = Dockerd::shared();
    let options = PicdOptions {
        env: vec![
            (
                "PICD_DOCKER_SOCKET".into(),
                dockerd.socket().display().to_string(),
            ),
            (
                "PICD_RECONCILE_INTERVAL_SECONDS".into(),
                RECONCILE_SECONDS.into(),
            ),
        ],
        ..PicdOptions::default()
    };
    let (picd, admin) = picd_with_admin_using(options).await;

    // Before any image is built, the install fails at its first step and leaves nothing.
    let events = install(&admin, "files").await;
    let last = events.last().expect("events");
    assert_eq!(last["step"], "image", "{events:?}");
    assert_eq!(last["state"], "failed", "{events:?}");
    let (_, store) = admin.get_json("/api/store").await;
    assert_eq!(store["services"][0]["installed"], false, "{store}");

    let built = build_images(&picd.state_dir(), &dockerd);
    assert!(built.contains("files: image sha256:"), "{built}");
    let (_, store) = admin.get_json("/api/store").await;
    let image_id = store["services"][0]["image_id"]
        .as_str()
        .expect("image id")
        .to_string();

    // A container someone else made from the same image: picd must never touch it.
    dockerd.docker_ok(&["create", "--name", "not-picds", &image_id, "/bin/true"]);

    let events = install(&admin, "files").await;
    let steps: Vec<&str> = events.iter().map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(steps, EXPECTED_STEPS, "{events:?}");
    assert!(events.iter().all(|e| e["state"] == "ok"), "{events:?}");

    // Its name is published for the peers, held by the service (dns::names).
    let published = |picd: &Picd| -> Option<String> {
        picd.db()
            .query_row(
                "SELECT owner FROM dns_names WHERE name = 'files' AND view = 'internal'",
                [],
                |r| r.get(0),
            )
            .ok()
    };
    assert_eq!(published(&picd).as_deref(), Some("service:files"));

    let (_, active) = admin.get_json("/api/services/active").await;
    let service = &active["services"][0];
    assert_eq!(service["health"], "healthy", "{active}");
    let port = service["http_port"].as_u64().expect("port") as u16;
    // What it uses, as the engine counts it, within its limits.
    let used = &service["resources"];
    let memory = used["memory_bytes"].as_u64().expect("memory in use");
    assert!(memory > 0 && memory < 64 * 1024 * 1024, "{active}");
    assert_eq!(used["memory_limit_bytes"], 64 * 1024 * 1024, "{active}");
    assert!(
        used["pids"].as_u64().is_some_and(|n| (1..=64).contains(&n)),
        "{active}"
    );
    // Without an account nginx asks for one.
    assert_eq!(http_status(port), "401");

    let name = container_name(&picd.db(), "files");
    let container = inspect(&dockerd, &name).expect("the files container exists");
    let host = &container["HostConfig"];
    assert_eq!(container["Image"], image_id.as_str());
    assert_eq!(container["Config"]["Labels"]["org.picd.managed"], "true");
    assert_eq!(host["NetworkMode"], "host");
    assert_eq!(host["ReadonlyRootfs"], true);
    assert_eq!(host["CapDrop"], json!(["ALL"]));
    assert_eq!(host["SecurityOpt"], json!(["no-new-privileges:true"]));
    assert_eq!(host["Memory"], 64 * 1024 * 1024);
    assert_eq!(host["PidsLimit"], 64);
    assert_eq!(container["Config"]["User"], "33:33");

    // Removed by hand: it comes back, healthy.
    let first_id = container["Id"].as_str().unwrap().to_string();
    dockerd.docker_ok(&["rm", "-f", &name]);
    let back = wait_running(&dockerd, &name, &first_id).await;
    let back_id = back["Id"].as_str().unwrap().to_string();
    let started = Instant::now();
    while http_status(port) != "401" && started.elapsed() < COME_BACK {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(http_status(port), "401", "the service came back unhealthy");

    // Applying again changes nothing: several passes later it is the same container.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let same = inspect(&dockerd, &name).expect("still there");
    assert_eq!(
        same["Id"],
        back_id.as_str(),
        "a reconcile recreated an unchanged container"
    );
    assert_eq!(same["RestartCount"], 0);
    let ours = dockerd.docker_ok(&["ps", "-aq", "--filter", "label=org.picd.managed=true"]);
    assert_eq!(ours.lines().count(), 1, "duplicates: {ours}");

    // One service's status, then a restart through the API: the same container, started
    // again, serving, and the restart on record.
    let (status, one) = admin.get_json("/api/services/catalog/files/status").await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        (&one["installed"], &one["health"], &one["container"]["id"]),
        (&json!(true), &json!("healthy"), &json!(back_id)),
        "{one}"
    );
    let (_, calendar) = admin
        .get_json("/api/services/catalog/calendar/status")
        .await;
    assert_eq!(calendar["installed"], false, "{calendar}");
    let started_at = |c: &Value| c["State"]["StartedAt"].as_str().unwrap_or("").to_string();
    let before = started_at(&same);
    let resp = admin
        .send_json(
            Method::POST,
            "/api/services/catalog/files/restart",
            &json!({}),
        )
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["health"], "healthy", "{body}");
    let restarted = inspect(&dockerd, &name).expect("still there");
    assert_eq!(restarted["Id"], back_id.as_str(), "a restart recreated it");
    assert_ne!(
        started_at(&restarted),
        before,
        "the container was not restarted"
    );
    assert_eq!(http_status(port), "401", "not serving after the restart");
    let entry = last_audit(&picd.db());
    assert_eq!(
        (
            entry.target_type.as_str(),
            entry.target_id.as_str(),
            entry.result.as_str()
        ),
        ("service", "files", "success")
    );

    // A restart of picd, then of the engine: the same container, running, no duplicate.
    let mut picd = picd;
    picd.restart().await;
    dockerd.restart();
    let after = wait_running(&dockerd, &name, "").await;
    assert_eq!(
        after["Id"],
        back_id.as_str(),
        "a restart replaced the container"
    );
    let started = Instant::now();
    while http_status(port) != "401" && started.elapsed() < COME_BACK {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(http_status(port), "401", "not serving after the restarts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ours = dockerd.docker_ok(&["ps", "-aq", "--filter", "label=org.picd.managed=true"]);
    assert_eq!(
        ours.lines().count(),
        1,
        "duplicates after the restarts: {ours}"
    );
    let same = inspect(&dockerd, &name).expect("still there");
    assert_eq!(
        same["Id"],
        back_id.as_str(),
        "a pass after the restarts recreated it"
    );

    // Removed and at once installed again: the install succeeds (bench/services.sh, which
    // does this right after a start, caught the engine still removing the old container).
    let resp = admin
        .send_json(Method::POST, REMOVE, &json!({ "id": "files" }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let events = install(&admin, "files").await;
    assert!(events.iter().all(|e| e["state"] == "ok"), "{events:?}");

    // Removed through the API: the container goes, the data folder stays, the other one too.
    let resp = admin
        .send_json(
            Method::POST,
            REMOVE,
            &json!({ "id": "files", "purge": false }),
        )
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["purged"], false, "{body}");
    assert!(
        inspect(&dockerd, &name).is_none(),
        "container left after remove"
    );
    assert_eq!(published(&picd), None, "the name outlived the service");
    assert!(picd
        .state_dir()
        .join("services/files/volumes/data")
        .is_dir());
    assert!(
        inspect(&dockerd, "not-picds").is_some(),
        "picd removed a container it did not create"
    );

    // The tag now names another image: picd refuses to create a container from it.
    let tag = dockerd.docker_ok(&[
        "images",
        "picd/files",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    let tag = tag.lines().next().expect("a picd/files tag").to_string();
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("marker"), b"not the files service").unwrap();
    let tarball = empty.path().join("other.tar");
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(empty.path())
        .args(["-cf"])
        .arg(&tarball)
        .arg("marker")
        .status()
        .unwrap();
    assert!(tar.success());
    dockerd.docker_ok(&["import", &tarball.display().to_string(), &tag]);
    let events = install(&admin, "files").await;
    let last = events.last().expect("events");
    assert_eq!(last["step"], "image", "{events:?}");
    assert_eq!(last["state"], "failed", "{events:?}");
    assert!(
        last["error"].as_str().unwrap().contains("refusing"),
        "{events:?}"
    );
    assert!(inspect(&dockerd, &name).is_none());
    dockerd.docker_ok(&["rm", "-f", "not-picds"]);
    dockerd.docker_ok(&["rmi", &tag]);
    assert_no_internal_errors(&picd);
}
