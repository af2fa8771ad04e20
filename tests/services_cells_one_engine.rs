//! Two cells on one Docker engine: each marks its containers with its own id
//! (`org.picd.cell`), lists only its own in /api/containers, restores only its own after a
//! `docker rm -f`, and removing a service in one leaves the other's container untouched. A
//! container from before cell labels is adopted (same container, renamed) by the cell whose
//! service folders it mounts, and left alone by the other.

mod common;

use std::time::{Duration, Instant};

use common::docker::{cell_with_service, container_name, Dockerd};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CONTAINERS: &str = "/api/containers";
/// Cell A reconciles every second; cell B only at its start, so a container can be swapped
/// under it between two of its passes.
const A_RECONCILES: &str = "1";
const B_RECONCILES: &str = "3600";
const COME_BACK: Duration = Duration::from_secs(30);
/// The name a picd from before cell labels gave the files container.
const LEGACY_NAME: &str = "picd-files";

fn cell_id(picd: &Picd) -> String {
    picd.db()
        .query_row("SELECT cell_id FROM cell_identity", [], |r| r.get(0))
        .unwrap()
}

/// The Ids /api/containers lists.
async fn listed(admin: &TestClient) -> Vec<String> {
    let (status, body) = admin.get_json(CONTAINERS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids = body["containers"].as_array().expect("containers").iter();
    ids.map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

fn only(id: &str) -> Vec<String> {
    vec![id.to_string()]
}

fn inspect(dockerd: &Dockerd, name: &str) -> Option<Value> {
    let out = dockerd.docker(&["inspect", name]);
    let list: Value = serde_json::from_slice(&out.stdout).ok()?;
    list.get(0).cloned()
}

fn id_of(dockerd: &Dockerd, name: &str) -> String {
    let found = inspect(dockerd, name).unwrap_or_else(|| panic!("no container {name}"));
    found["Id"].as_str().unwrap().to_string()
}

/// Waits until `name` runs as a container other than `not_id`.
async fn running_again(dockerd: &Dockerd, name: &str, not_id: &str) -> String {
    let started = Instant::now();
    while started.elapsed() < COME_BACK {
        if let Some(c) = inspect(dockerd, name) {
            if c["State"]["Running"] == true && c["Id"] != not_id {
                return c["Id"].as_str().unwrap().to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{name} was not running again within {COME_BACK:?}");
}

/// A copy of a container as a picd from before cell labels made it: picd's labels but no
/// `org.picd.cell`, under the old name.
fn legacy_copy(dockerd: &Dockerd, of: &Value) {
    let config = &of["Config"];
    let host = &of["HostConfig"];
    let strings = |v: &Value| -> Vec<String> {
        let items = v.as_array().cloned().unwrap_or_default();
        items
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut args = vec!["create".to_string(), "--name".into(), LEGACY_NAME.into()];
    args.extend(["--network".into(), "host".into(), "--read-only".into()]);
    args.extend([
        "--user".into(),
        config["User"].as_str().unwrap().to_string(),
    ]);
    for bind in strings(&host["Binds"]) {
        args.extend(["-v".into(), bind]);
    }
    for (path, opts) in host["Tmpfs"].as_object().unwrap() {
        args.extend([
            "--tmpfs".into(),
            format!("{path}:{}", opts.as_str().unwrap()),
        ]);
    }
    for (key, value) in config["Labels"].as_object().unwrap() {
        if key != "org.picd.cell" {
            args.extend([
                "--label".into(),
                format!("{key}={}", value.as_str().unwrap()),
            ]);
        }
    }
    let entrypoint = strings(&config["Entrypoint"]);
    args.extend(["--entrypoint".into(), entrypoint[0].clone()]);
    args.push(of["Image"].as_str().unwrap().to_string());
    args.extend(entrypoint[1..].iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dockerd.docker_ok(&args);
    dockerd.docker_ok(&["start", LEGACY_NAME]);
}

#[tokio::test]
async fn two_cells_on_one_engine_each_manage_only_their_own_containers() {
    let dockerd = Dockerd::shared();
    let (a, admin_a) = cell_with_service(&dockerd, A_RECONCILES, "files").await;
    let (mut b, admin_b) = cell_with_service(&dockerd, B_RECONCILES, "files").await;
    let (cell_a, cell_b) = (cell_id(&a), cell_id(&b));
    assert_ne!(cell_a, cell_b);
    let (name_a, name_b) = (
        container_name(&a.db(), "files"),
        container_name(&b.db(), "files"),
    );
    assert_ne!(name_a, name_b);

    // Each container carries its cell's id; each cell lists its own only.
    let first_a = id_of(&dockerd, &name_a);
    let first_b = id_of(&dockerd, &name_b);
    let label = |name: &str| inspect(&dockerd, name).unwrap()["Config"]["Labels"].clone();
    assert_eq!(label(&name_a)["org.picd.cell"], cell_a.as_str());
    assert_eq!(label(&name_b)["org.picd.cell"], cell_b.as_str());
    assert_eq!(listed(&admin_a).await, only(&first_a));
    assert_eq!(listed(&admin_b).await, only(&first_b));

    // A's container removed by hand: A brings it back; B's is the same one, and B lists
    // only its own still.
    dockerd.docker_ok(&["rm", "-f", &name_a]);
    let back_a = running_again(&dockerd, &name_a, &first_a).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(id_of(&dockerd, &name_a), back_a, "A recreated it again");
    assert_eq!(
        id_of(&dockerd, &name_b),
        first_b,
        "B's container was replaced"
    );
    assert_eq!(listed(&admin_a).await, only(&back_a));
    assert_eq!(listed(&admin_b).await, only(&first_b));

    // B's container as a picd from before cell labels left it: A (passes every second)
    // leaves it alone; B adopts it at its start, the same container under B's name.
    let original_b = inspect(&dockerd, &name_b).unwrap();
    dockerd.docker_ok(&["rm", "-f", &name_b]);
    legacy_copy(&dockerd, &original_b);
    let legacy = id_of(&dockerd, LEGACY_NAME);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        id_of(&dockerd, LEGACY_NAME),
        legacy,
        "A touched B's old container"
    );
    assert_eq!(listed(&admin_a).await, only(&back_a));
    b.restart().await;
    let admin_b = b.client();
    admin_b.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let adopted = running_again(&dockerd, &name_b, "").await;
    assert_eq!(
        adopted, legacy,
        "B replaced its old container instead of adopting it"
    );
    assert!(
        inspect(&dockerd, LEGACY_NAME).is_none(),
        "the old name is still taken"
    );
    assert_eq!(listed(&admin_b).await, only(&legacy));
    let ours = dockerd.docker_ok(&["ps", "-aq", "--filter", "label=org.picd.managed=true"]);
    assert_eq!(ours.lines().count(), 2, "duplicates: {ours}");

    // Files removed in A: A's container goes, B's stays, running.
    let resp = admin_a
        .send_json(Method::POST, "/api/store/remove", &json!({ "id": "files" }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        inspect(&dockerd, &name_a).is_none(),
        "A's container outlived its remove"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = inspect(&dockerd, &name_b).expect("B's container");
    assert_eq!(still["Id"], legacy.as_str());
    assert_eq!(still["State"]["Running"], true);
    assert!(listed(&admin_a).await.is_empty());
    assert_eq!(listed(&admin_b).await, only(&legacy));
    assert_no_internal_errors(&a);
    assert_no_internal_errors(&b);
}
