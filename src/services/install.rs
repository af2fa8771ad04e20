//! The steps of an install after its desired state was committed, each reported as it
//! happens: image, volumes, certificate (a service that speaks TLS itself), config,
//! container, health, route, dns, then `done`, or the step
//! that failed. A failed install removes what it created (container, rows, route); the data
//! folders stay, as they do on remove.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::catalog::{HealthCheck, Manifest};
use super::store::{self, Installed};
use crate::driver::DriverError;
use crate::services::ServicesApp;

/// Longest the health step waits for the service's first answer.
const HEALTH_WAIT: Duration = Duration::from_secs(30);

pub type Progress = mpsc::Sender<Value>;

struct Failed {
    step: &'static str,
    error: String,
}

fn at(step: &'static str) -> impl Fn(DriverError) -> Failed {
    move |e| Failed {
        step,
        error: e.to_string(),
    }
}

async fn report(progress: &Progress, step: &str, detail: Value) {
    let mut event = json!({ "step": step, "state": "ok" });
    if let (Some(map), Value::Object(extra)) = (event.as_object_mut(), detail) {
        map.extend(extra);
    }
    // A client that went away does not stop the install.
    let _ = progress.send(event).await;
}

/// Runs the install's steps and ends with the final event.
pub async fn run(
    app: ServicesApp,
    manifest: &'static Manifest,
    row: Installed,
    host: Option<String>,
    progress: Progress,
) {
    match steps(&app, manifest, &row, host.as_deref(), &progress).await {
        Ok(true) => report(&progress, "done", json!({ "applied": true })).await,
        Ok(false) => report(&progress, "done", json!({ "applied": false })).await,
        Err(failed) => {
            tracing::warn!(service = manifest.id, step = failed.step, error = %failed.error, "install failed");
            roll_back(&app, manifest, host.as_deref()).await;
            let _ = progress
                .send(json!({ "step": failed.step, "state": "failed", "error": failed.error }))
                .await;
        }
    }
}

/// Ok(false): the engine is not answering; the install is recorded and the reconciler
/// applies it once the engine answers.
async fn steps(
    app: &ServicesApp,
    manifest: &'static Manifest,
    row: &Installed,
    host: Option<&str>,
    progress: &Progress,
) -> Result<bool, Failed> {
    let driver = app.services.driver.clone();
    let docker = match driver.connect().await {
        Ok(docker) => docker,
        Err(e) => {
            report(
                progress,
                "image",
                json!({ "state": "waiting", "reason": e.to_string() }),
            )
            .await;
            return Ok(false);
        }
    };
    let id = manifest.id;
    let image = app
        .db
        .call(move |conn| Ok(store::image(conn, id)?))
        .await
        .map_err(|e| Failed {
            step: "image",
            error: e.to_string(),
        })?
        .ok_or(Failed {
            step: "image",
            error: "no image built for this service: run `picd services build-images`".into(),
        })?;
    // The owner named another image since this one was recorded: until build-images has
    // pulled it, installing would run an image the setting no longer names.
    if let Some(pinned) = app.services.pulled.get(manifest.id) {
        if image.recipe_hash != super::pull::recipe_hash(manifest, pinned) {
            return Err(Failed {
                step: "image",
                error: format!(
                    "the recorded image is not service_images' {pinned}: run `picd services \
                     build-images`"
                ),
            });
        }
    }
    super::images::verify(&docker, &image, driver.cell_id())
        .await
        .map_err(at("image"))?;
    report(progress, "image", json!({ "image_id": image.image_id })).await;

    let io = |step| {
        move |e: std::io::Error| Failed {
            step,
            error: e.to_string(),
        }
    };
    driver.create_volumes(manifest).map_err(io("volumes"))?;
    report(progress, "volumes", json!({})).await;
    if manifest.needs_certificate() {
        let renewed = super::tls::refresh(app, manifest)
            .await
            .map_err(|e| Failed {
                step: "certificate",
                error: e.to_string(),
            })?;
        report(progress, "certificate", json!({ "written": renewed })).await;
    }
    let place = app
        .db
        .call(move |conn| super::listen::cell_place(conn, manifest))
        .await
        .map_err(|e| Failed {
            step: "config",
            error: e.to_string(),
        })?;
    driver
        .write_config(manifest, row, place.as_ref())
        .map_err(io("config"))?;
    report(progress, "config", json!({})).await;

    driver
        .apply_one(&docker, row, Some(&image), place.as_ref())
        .await
        .map_err(at("container"))?;
    report(
        progress,
        "container",
        json!({ "name": driver.container_name(id) }),
    )
    .await;

    let waited = wait_healthy(manifest, row).await.map_err(|error| Failed {
        step: "health",
        error,
    })?;
    report(
        progress,
        "health",
        json!({ "seconds": waited.as_secs_f64() }),
    )
    .await;

    app.request_reconcile();
    // A service without an HTTP endpoint (mail) has no route; its name is still published.
    let routed = manifest.routed_endpoint().is_some();
    report(progress, "route", json!({ "host": host, "routed": routed })).await;
    report(
        progress,
        "dns",
        json!({ "name": host, "published": host.is_some() }),
    )
    .await;
    Ok(true)
}

/// Polls the service's health check until it passes.
pub async fn wait_healthy(manifest: &Manifest, row: &Installed) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last = String::from("no answer");
    while started.elapsed() < HEALTH_WAIT {
        match check_health(manifest, row).await {
            Ok(()) => return Ok(started.elapsed()),
            Err(e) => last = e,
        }
        // A service usually answers within a second of its start: ask often at first.
        let pause = if started.elapsed() < Duration::from_secs(2) {
            20
        } else {
            200
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Err(format!(
        "not healthy after {} s: {last}",
        HEALTH_WAIT.as_secs()
    ))
}

/// One pass of the manifest's health checks on the service's loopback ports: the first that
/// fails says why.
pub async fn check_health(manifest: &Manifest, row: &Installed) -> Result<(), String> {
    for check in manifest.health {
        check_one(check, row).await?;
    }
    Ok(())
}

async fn check_one(check: &HealthCheck, row: &Installed) -> Result<(), String> {
    let port_of = |endpoint: &str| {
        row.port(endpoint)
            .ok_or_else(|| format!("no port for the {endpoint} endpoint"))
    };
    match *check {
        HealthCheck::HttpStatus { endpoint, status } => {
            match http_status(port_of(endpoint)?).await {
                Ok(got) if got == status => Ok(()),
                Ok(got) => Err(format!("{endpoint} answered {got}, expected {status}")),
                Err(e) => Err(format!("{endpoint}: {e}")),
            }
        }
        HealthCheck::Greeting {
            endpoint,
            starts_with,
        } => match greeting(port_of(endpoint)?).await {
            Ok(line) if line.starts_with(starts_with) => Ok(()),
            Ok(line) => Err(format!(
                "{endpoint} greeted {:?}, expected {starts_with:?}",
                line.trim_end()
            )),
            Err(e) => Err(format!("{endpoint}: {e}")),
        },
    }
}

/// The first line a line-based server (IMAP, LMTP) sends on a loopback port.
pub async fn greeting(port: u16) -> std::io::Result<String> {
    let ask = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let mut reader = tokio::io::BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        Ok(line)
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .map_err(|_| std::io::Error::other("timed out"))?
}

/// The status of `GET /` on a loopback port (HTTP/1.0, so the server closes the connection).
pub async fn http_status(port: u16) -> std::io::Result<u16> {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).await?;
        let line = String::from_utf8_lossy(&head[..n]);
        line.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .map_err(|_| std::io::Error::other("timed out"))?
}

async fn roll_back(app: &ServicesApp, manifest: &'static Manifest, host: Option<&str>) {
    let (id, host) = (manifest.id, host.map(str::to_string));
    let removed = app
        .db
        .write(move |tx| {
            store::delete_installed(tx, id)?;
            if let Some(host) = &host {
                super::exposure::withdraw_route(tx, host)?;
                super::exposure::withdraw_name(tx, manifest)?;
            }
            Ok(())
        })
        .await;
    if let Err(e) = removed {
        tracing::error!(service = id, error = %e, "rolling back a failed install");
    }
    // The reconciler removes the container of a service no longer installed.
    app.request_reconcile();
}
