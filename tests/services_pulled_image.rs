//! A service image pulled by digest, the owner's choice (`service_images`), from a registry
//! stand-in on loopback (tests/fixtures/registry_standin.py, serving the OCI layout `docker
//! save` writes of picd's built files image, whose own tag is then removed from the engine):
//! build-images pulls it, checks its digest, tags it as picd's and records its Id, and the
//! install runs it. A digest the registry does not have, or a registry that does not answer,
//! is an error naming the reference with nothing recorded, and the install refuses it at its
//! image step; a tag alone, or a service the catalog does not have, keeps picd from starting.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::docker::{build_images, build_images_with, http_status, image_cache_dir, Dockerd};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const STANDIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/registry_standin.py"
);
const REPOSITORY: &str = "picd/files";
/// A well-formed digest the stand-in does not have.
const UNKNOWN_DIGEST: &str =
    "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
const STANDIN_START: Duration = Duration::from_secs(10);
const SETTING: &str = "PICD_SERVICE_IMAGES";

/// The registry stand-in, stopped by its PID when dropped.
struct Registry {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Registry {
    fn start(layout: &Path, log: std::path::PathBuf) -> Registry {
        require_tool("python3");
        let port = free_port();
        let out = std::fs::File::create(&log).expect("stand-in log");
        let child = Command::new("python3")
            .arg(STANDIN)
            .arg(layout)
            .arg(port.to_string())
            .arg(REPOSITORY)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("starting the registry stand-in");
        let registry = Registry { child, port, log };
        let started = Instant::now();
        while started.elapsed() < STANDIN_START {
            let answered = Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "--max-time", "2"])
                .arg(format!("http://127.0.0.1:{port}/v2/"))
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return registry;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the registry stand-in did not answer:\n{}", registry.log());
    }

    fn reference(&self, digest: &str) -> String {
        format!("127.0.0.1:{}/{REPOSITORY}@{digest}", self.port)
    }

    /// The digest of the manifest it serves, as it printed it.
    fn manifest_digest(&self) -> String {
        let log = self.log();
        let line = log.lines().find_map(|l| l.strip_prefix("manifest "));
        line.expect("the stand-in's manifest digest")
            .trim()
            .to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn events_of(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).expect("event data is JSON"))
        .collect()
}

async fn install(admin: &TestClient, id: &str) -> Vec<Value> {
    let resp = admin
        .send_json(Method::POST, "/api/store/install", &json!({ "id": id }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    events_of(&resp.text().await.unwrap())
}

/// The service_images row of a service: (recipe hash, image Id, built at).
fn recorded(db: &rusqlite::Connection, service: &str) -> Option<(String, String, String)> {
    db.query_row(
        "SELECT recipe_hash, image_id, built_at FROM service_images WHERE service_id = ?1",
        [service],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .ok()
}

/// picd's built files image, saved and unpacked into `dir/saved` and its tag removed from
/// the engine (the image with it): the image's Id.
fn save_built_files_image(dockerd: &Dockerd, dir: &Path) -> String {
    let source = dir.join("source-state");
    build_images(&source, dockerd);
    let tags = dockerd.docker_ok(&["images", REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}"]);
    let tag = tags.lines().next().expect("picd's files image").to_string();
    let image_id = dockerd.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &tag]);
    let tar = dir.join("files.tar");
    dockerd.docker_ok(&["save", "-o", &tar.display().to_string(), &tag]);
    let layout = dir.join("saved");
    std::fs::create_dir_all(&layout).unwrap();
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&layout)
        .status()
        .expect("tar");
    assert!(untar.success());
    dockerd.docker_ok(&["rmi", &tag]);
    assert!(
        !dockerd
            .docker(&["image", "inspect", &image_id])
            .status
            .success(),
        "the built image is still in the engine"
    );
    image_id
}

#[tokio::test]
async fn a_pinned_image_is_pulled_checked_recorded_and_installed() {
    let dockerd = Dockerd::shared();
    let work = tempfile::tempdir().unwrap();
    let source_id = save_built_files_image(&dockerd, work.path());
    let registry = Registry::start(&work.path().join("saved"), work.path().join("registry.log"));
    let digest = registry.manifest_digest();
    let pinned = registry.reference(&digest);
    let setting = format!("files={pinned}");
    let options = PicdOptions {
        env: vec![
            (
                "PICD_DOCKER_SOCKET".into(),
                dockerd.socket().display().to_string(),
            ),
            (
                "PICD_SERVICES_IMAGE_CACHE".into(),
                image_cache_dir().display().to_string(),
            ),
            (SETTING.into(), setting.clone()),
        ],
        ..PicdOptions::default()
    };
    let (mut picd, admin) = picd_with_admin_using(options).await;
    pulled_and_installed(&dockerd, &picd, &admin, &registry, &source_id).await;
    let before = recorded(&picd.db(), "files");
    an_unknown_digest_records_nothing(&mut picd, &admin, &registry, &before).await;
    a_closed_registry_records_nothing(&dockerd, &picd, &digest, &before);
    picd.stop();
}

/// The engine holds the pulled image with exactly the pinned name@digest, and the cell's own
/// tag on it (the recipe hash's and the cell's, as picd tags the images it builds).
fn assert_in_engine_as_pulled(
    dockerd: &Dockerd,
    db: &rusqlite::Connection,
    recipe: &str,
    image_id: &str,
    pinned: &str,
) {
    let inspected: Value =
        serde_json::from_str(&dockerd.docker_ok(&["image", "inspect", image_id]))
            .expect("docker image inspect JSON");
    let digests = &inspected[0]["RepoDigests"];
    assert_eq!(digests, &json!([pinned]), "{inspected}");
    let cell: String = db
        .query_row("SELECT cell_id FROM cell_identity", [], |r| r.get(0))
        .unwrap();
    let own_tag = format!("{REPOSITORY}:{}-{}", &recipe[..16], &cell[..12]);
    assert!(
        inspected[0]["RepoTags"]
            .as_array()
            .unwrap()
            .contains(&json!(own_tag)),
        "{inspected}"
    );
}

/// build-images pulls files by its digest from the stand-in (the others are built), and the
/// install runs it.
async fn pulled_and_installed(
    dockerd: &Dockerd,
    picd: &Picd,
    admin: &TestClient,
    registry: &Registry,
    source_id: &str,
) {
    let pinned = registry.reference(&registry.manifest_digest());
    let setting = format!("files={pinned}");
    let out = build_images_with(&picd.state_dir(), dockerd, &[(SETTING, &setting)]);
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("files: pulling {pinned}")),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("files: image {source_id}")),
        "{stdout}"
    );
    assert!(
        registry
            .log()
            .contains(&format!("served /v2/{REPOSITORY}/blobs/sha256:")),
        "no layer came from the stand-in:\n{}",
        registry.log()
    );
    let db = picd.db();
    let (recipe, image_id, _) = recorded(&db, "files").expect("files recorded");
    assert_eq!(image_id, source_id);
    assert_in_engine_as_pulled(dockerd, &db, &recipe, &image_id, &pinned);

    let (_, store) = admin.get_json("/api/store").await;
    let files = &store["services"][0];
    assert_eq!(
        files["image"],
        json!({ "kind": "pulled", "reference": pinned }),
        "{store}"
    );
    assert_eq!(files["image_id"], json!(source_id), "{store}");
    assert_eq!(
        store["services"][1]["image"]["kind"], "debian_packages",
        "{store}"
    );

    // The install runs it unchanged, verified as any built image, and the service answers.
    let events = install(admin, "files").await;
    assert_eq!(events.last().unwrap()["step"], "done", "{events:?}");
    assert_eq!(events[0]["image_id"], json!(source_id), "{events:?}");
    let port: u16 = db
        .query_row(
            "SELECT port FROM service_ports WHERE service_id = 'files' AND endpoint = 'http'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(http_status(port), "401");
}

/// A digest the registry does not have: the build fails naming it, nothing is recorded, and
/// the install refuses the recorded image at its image step (the setting names another now).
async fn an_unknown_digest_records_nothing(
    picd: &mut Picd,
    admin: &TestClient,
    registry: &Registry,
    before: &Option<(String, String, String)>,
) {
    let db = picd.db();
    let wrong = registry.reference(UNKNOWN_DIGEST);
    picd.set_env(SETTING, &format!("files={wrong}"));
    picd.restart().await;
    let resp = admin
        .send_json(Method::POST, "/api/store/build-images", &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let events = events_of(&resp.text().await.unwrap());
    let last = events.last().expect("events");
    assert_eq!(last["step"], "failed", "{events:?}");
    let pull = &events[0];
    assert_eq!(
        (&pull["service"], &pull["step"]),
        (&json!("files"), &json!("pull")),
        "{events:?}"
    );
    assert_eq!(pull["reference"], json!(wrong), "{events:?}");
    assert!(last["error"].as_str().unwrap().contains(&wrong), "{last}");
    assert_eq!(&recorded(&db, "files"), before);
    let audited: String = db
        .query_row(
            "SELECT detail FROM audit_log WHERE target_type = 'service_images'
             ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let audited: Value = serde_json::from_str(&audited).unwrap();
    assert_eq!(audited["pulled"]["files"], json!(wrong), "{audited}");

    let resp = admin
        .send_json(Method::POST, "/api/store/remove", &json!({ "id": "files" }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let events = install(admin, "files").await;
    let last = events.last().expect("events");
    assert_eq!(
        (&last["step"], &last["state"]),
        (&json!("image"), &json!("failed")),
        "{events:?}"
    );
    assert!(last["error"].as_str().unwrap().contains(&wrong), "{last}");
}

/// A registry that does not answer: the same, naming the reference.
fn a_closed_registry_records_nothing(
    dockerd: &Dockerd,
    picd: &Picd,
    digest: &str,
    before: &Option<(String, String, String)>,
) {
    let closed = format!("127.0.0.1:1/{REPOSITORY}@{digest}");
    let out = build_images_with(
        &picd.state_dir(),
        dockerd,
        &[(SETTING, &format!("files={closed}"))],
    );
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains(&closed), "{}", stderr_of(&out));
    assert_eq!(&recorded(&picd.db(), "files"), before);
}

#[test]
fn a_tag_alone_or_an_unknown_service_keeps_picd_from_starting() {
    let pinned = format!("127.0.0.1:5000/{REPOSITORY}@{UNKNOWN_DIGEST}");
    for (setting, expected) in [
        (
            format!("files=127.0.0.1:5000/{REPOSITORY}:latest"),
            "service_images.files",
        ),
        (
            format!("files=127.0.0.1:5000/Picd/files@{UNKNOWN_DIGEST}"),
            "service_images.files",
        ),
        (format!("filez={pinned}"), "service_images.filez"),
    ] {
        let out = serve_expecting_failure("", &[(SETTING, &setting)]);
        assert!(
            stderr_of(&out).contains(expected),
            "{setting}: {}",
            stderr_of(&out)
        );
    }
    let out = serve_expecting_failure(
        &format!("service_images = {{ calendar = \"127.0.0.1:5000/{REPOSITORY}:1.0\" }}\n"),
        &[],
    );
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("service_images.calendar") && stderr.contains("not pinned"),
        "{stderr}"
    );
}
