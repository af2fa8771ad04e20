//! What a running service's container uses, as the engine reports it: memory (less the page
//! cache the kernel can drop, as `docker stats` shows it) against its limit, and processes.

use std::time::Duration;

use bollard::query_parameters::StatsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Longest one container's figures may take; the page shows none rather than wait.
const WAIT: Duration = Duration::from_secs(3);

pub async fn of_container(docker: &Docker, id: &str) -> Option<Value> {
    let options = StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(true)
        .build();
    let mut stats = docker.stats(id, Some(options));
    let first = tokio::time::timeout(WAIT, stats.next()).await.ok()??.ok()?;
    let memory = first.memory_stats?;
    let cache = memory.stats.as_ref().and_then(|s| {
        s.get("inactive_file")
            .or_else(|| s.get("total_inactive_file"))
            .copied()
    });
    let used = memory.usage.map(|u| u.saturating_sub(cache.unwrap_or(0)));
    Some(json!({
        "memory_bytes": used,
        "memory_limit_bytes": memory.limit,
        "pids": first.pids_stats.and_then(|p| p.current),
    }))
}
