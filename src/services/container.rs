//! The container a service should have (its spec, hashed onto a label so an unchanged one is
//! left alone), and the engine calls around creating and removing one.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, HostConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use sha2::{Digest, Sha256};

use super::catalog::Manifest;
use super::driver::{failed, LABEL_MANAGED, LABEL_SERVICE, LABEL_SPEC};
use super::ownership::LABEL_CELL;
use super::store::{BuiltImage, Installed};
use crate::driver::DriverError;

/// The container the service should have; its hash goes on a label, and the cell's id on
/// another (not hashed: a container from before cell labels is kept, see ownership).
pub fn spec(
    dir: &Path,
    manifest: &Manifest,
    installed: &Installed,
    image: &BuiltImage,
    started_with: &str,
    cell_id: &str,
) -> ContainerCreateBody {
    let mut body = ContainerCreateBody {
        image: Some(image.image_id.clone()),
        entrypoint: Some(manifest.entrypoint.iter().map(|s| s.to_string()).collect()),
        cmd: Some(vec![]),
        user: Some(manifest.security.user.into()),
        env: Some(
            manifest
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        host_config: Some(host_config(dir, manifest)),
        ..Default::default()
    };
    let hash = spec_hash(&body, manifest, installed, started_with);
    body.labels = Some(HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_SERVICE.to_string(), manifest.id.to_string()),
        (LABEL_SPEC.to_string(), hash),
        (LABEL_CELL.to_string(), cell_id.to_string()),
    ]));
    body
}

/// Mounts, limits and hardening.
fn host_config(dir: &Path, manifest: &Manifest) -> HostConfig {
    let mut binds: Vec<String> = manifest
        .volumes
        .iter()
        .map(|v| format!("{}:{}", dir.join("volumes").join(v.name).display(), v.mount))
        .collect();
    binds.push(format!(
        "{}:{}:ro",
        dir.join("config").display(),
        manifest.config_mount
    ));
    let tmpfs = manifest
        .security
        .tmpfs
        .iter()
        .map(|p| (p.to_string(), "rw,nosuid,nodev,size=16m".to_string()))
        .collect();
    let capabilities = manifest.security.capabilities.iter();
    HostConfig {
        // Host networking, bound to the loopback port picd allocated: Docker's bridge
        // network is never used, and only Caddy (on this machine) reaches the service.
        network_mode: Some("host".into()),
        binds: Some(binds),
        tmpfs: Some(tmpfs),
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(capabilities.map(|c| c.to_string()).collect()),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        memory: Some(manifest.resources.memory_bytes),
        pids_limit: Some(manifest.resources.pids),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        ..Default::default()
    }
}

/// The spec's hash. The ports are in it too, and `started_with` (listen addresses and
/// certificate): the service reads them from its config only at start. A HashMap (tmpfs)
/// serializes in a random order: it is hashed sorted, apart.
fn spec_hash(
    body: &ContainerCreateBody,
    manifest: &Manifest,
    installed: &Installed,
    started_with: &str,
) -> String {
    let mut hashed = body.clone();
    let mut tmpfs: Vec<String> = manifest
        .security
        .tmpfs
        .iter()
        .map(|p| p.to_string())
        .collect();
    tmpfs.sort();
    if let Some(host) = hashed.host_config.as_mut() {
        host.tmpfs = None;
    }
    let mut spec = serde_json::to_vec(&hashed).unwrap_or_default();
    spec.extend_from_slice(tmpfs.join("\n").as_bytes());
    // Ports alone, in endpoint order: a one-endpoint service hashes as it did before
    // endpoints had names, so an upgrade of picd does not recreate its container.
    for port in installed.ports.values() {
        spec.extend_from_slice(&port.to_be_bytes());
    }
    // Empty for a loopback-only service without TLS, which hashes as it did before.
    spec.extend_from_slice(started_with.as_bytes());
    hex::encode(&Sha256::digest(&spec)[..8])
}

/// Creates the container under its name. The engine gives a removed container's name back
/// a moment after the container is gone (its inspect already says 404): a name still taken
/// by a container that is not listed any more is waited for, briefly.
pub async fn create_named(
    docker: &Docker,
    name: &str,
    wanted: ContainerCreateBody,
) -> Result<bollard::models::ContainerCreateResponse, DriverError> {
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    let mut tries = 0;
    loop {
        match docker
            .create_container(Some(options.clone()), wanted.clone())
            .await
        {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) if tries < 50 && message.contains("already in use") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other.map_err(failed),
        }
    }
}

/// Waits (up to 30 s) until the engine has finished removing a container.
pub async fn wait_removed(docker: &Docker, id: &str) -> Result<(), DriverError> {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        match docker.inspect_container(id, None).await {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            Err(e) => return Err(failed(e)),
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    Err(failed(format!(
        "container {id} is still being removed after 30 s"
    )))
}

pub async fn remove(docker: &Docker, id: &str) -> Result<(), DriverError> {
    let options = RemoveContainerOptionsBuilder::new().force(true).build();
    docker
        .remove_container(id, Some(options))
        .await
        .map_err(failed)
}

/// How long a stopped service's servers get to end on their own before they are killed.
const STOP_GRACE_SECONDS: i32 = 10;

/// A service the owner stopped: its container, if it has one, is stopped and left so; none is
/// created for it (a start makes one). A stop by the engine's API also tells the restart policy
/// (`unless-stopped`) to leave it stopped when the engine restarts.
pub async fn keep_stopped(
    docker: &Docker,
    existing: Option<&ContainerSummary>,
) -> Result<(), DriverError> {
    use ContainerSummaryStateEnum::{PAUSED, RESTARTING, RUNNING};
    let Some(container) = existing else {
        return Ok(());
    };
    if !matches!(container.state, Some(RUNNING | RESTARTING | PAUSED)) {
        return Ok(());
    }
    let id = container.id.as_deref().unwrap_or_default();
    let options = StopContainerOptionsBuilder::new()
        .t(STOP_GRACE_SECONDS)
        .build();
    docker
        .stop_container(id, Some(options))
        .await
        .map_err(failed)?;
    tracing::info!(container = %id, "service container stopped on purpose");
    Ok(())
}
