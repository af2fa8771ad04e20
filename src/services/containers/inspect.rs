//! `GET /api/containers/{id}`: one of the cell's containers as the engine has it: its state,
//! health, times, image, mounts, ports, labels, limits and hardening. The environment is
//! listed by names only: a value may hold a secret, and an inspect is not a secret read.

use axum::extract::State;
use bollard::models::{ContainerInspectResponse, HostConfig};
use serde_json::{json, Value};

use super::{resolve, unavailable};
use crate::auth::AdminUser;
use crate::error::{ApiResult, Json, Path};
use crate::services::driver::failed;
use crate::services::store::{self, Desired, Installed};
use crate::services::{catalog, install, ServicesApp};

pub async fn inspect(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    Path(reference): Path<String>,
) -> ApiResult<Json<Value>> {
    let (docker, found) = resolve(&app, &reference).await?;
    let id = found.id.clone().unwrap_or_default();
    let inspected = docker
        .inspect_container(&id, None)
        .await
        .map_err(|e| unavailable(failed(e)))?;
    let service = crate::services::ownership::service_of(&found).map(str::to_string);
    let row = match service.clone() {
        Some(service) => {
            app.db
                .call(move |conn| Ok(store::installed_one(conn, &service)?))
                .await?
        }
        None => None,
    };
    let running = inspected.state.as_ref().and_then(|s| s.running) == Some(true);
    let health = health(&inspected, row.as_ref(), running).await;
    let mut described = describe(&inspected, row.as_ref());
    described["service"] = json!(service);
    described["health"] = json!(health);
    Ok(Json(described))
}

/// The engine's health check when the container has one, else picd's own (the manifest's
/// checks on the service's loopback ports) while it runs.
async fn health(
    inspected: &ContainerInspectResponse,
    row: Option<&Installed>,
    running: bool,
) -> Value {
    let state = inspected.state.as_ref();
    if let Some(engine) = state.and_then(|s| s.health.as_ref()).and_then(|h| h.status) {
        return json!(engine);
    }
    if !running {
        return json!("stopped");
    }
    let Some((row, manifest)) = row.and_then(|r| Some((r, catalog::find(&r.service_id)?))) else {
        return json!("unknown");
    };
    match install::check_health(manifest, row).await {
        Ok(()) => json!("healthy"),
        Err(_) => json!("unhealthy"),
    }
}

fn describe(c: &ContainerInspectResponse, row: Option<&Installed>) -> Value {
    let state = c.state.clone().unwrap_or_default();
    let config = c.config.clone().unwrap_or_default();
    let host = c.host_config.clone().unwrap_or_default();
    let mounts: Vec<Value> = c
        .mounts
        .iter()
        .flatten()
        .map(|m| {
            json!({
                "type": m.typ,
                "source": m.source,
                "target": m.destination,
                "read_only": m.rw.map(|rw| !rw),
            })
        })
        .collect();
    // Security: only what precedes the first `=` of each entry leaves picd.
    let env_names: Vec<&str> = config
        .env
        .iter()
        .flatten()
        .map(|e| e.split('=').next().unwrap_or_default())
        .collect();
    json!({
        "id": c.id,
        "name": c.name.as_deref().map(|n| n.trim_start_matches('/')),
        "created": c.created,
        "image_id": c.image,
        "state": state.status,
        "running": state.running,
        "exit_code": state.exit_code,
        "oom_killed": state.oom_killed,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "restart_count": c.restart_count,
        "desired_state": row.map(|r| r.desired.as_str()).unwrap_or(Desired::Running.as_str()),
        "mounts": mounts,
        "ports": ports(c, &host, row),
        "labels": config.labels,
        "user": config.user,
        "entrypoint": config.entrypoint,
        "env_names": env_names,
        "resources": {
            "memory_bytes": host.memory,
            "pids_limit": host.pids_limit,
            "nano_cpus": host.nano_cpus,
        },
        "security": security(&host),
    })
}

/// The service listens on the host's loopback ports picd gave its endpoints (host
/// networking); published ports are listed too, should a container have any.
fn ports(c: &ContainerInspectResponse, host: &HostConfig, row: Option<&Installed>) -> Value {
    let endpoints: Vec<Value> = row
        .map(|r| &r.ports)
        .into_iter()
        .flatten()
        .map(|(endpoint, port)| json!({ "endpoint": endpoint, "port": port, "protocol": "tcp" }))
        .collect();
    let published = c.network_settings.as_ref().and_then(|n| n.ports.clone());
    json!({
        "network_mode": host.network_mode,
        "endpoints": endpoints,
        "published": published,
    })
}

fn security(host: &HostConfig) -> Value {
    let mut tmpfs: Vec<&String> = host.tmpfs.iter().flat_map(|t| t.keys()).collect();
    tmpfs.sort();
    json!({
        "read_only_root": host.readonly_rootfs,
        "privileged": host.privileged,
        "cap_drop": host.cap_drop,
        "cap_add": host.cap_add,
        "security_opt": host.security_opt,
        "tmpfs": tmpfs,
        "restart_policy": host.restart_policy.as_ref().and_then(|p| p.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ContainerConfig;

    #[test]
    fn the_environment_is_described_by_names_only() {
        let inspected = ContainerInspectResponse {
            config: Some(ContainerConfig {
                env: Some(vec![
                    "DB_PASSWORD=hunter2=still-secret".into(),
                    "EMPTY=".into(),
                    "BARE".into(),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let described = describe(&inspected, None);
        assert_eq!(
            described["env_names"],
            json!(["DB_PASSWORD", "EMPTY", "BARE"])
        );
        let text = described.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("still-secret"),
            "{text}"
        );
    }
}
