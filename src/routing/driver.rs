//! The nftables driver: renders the desired state, checks it with `nft -c`, replaces picd's
//! table in one `nft -f` transaction and reads it back with `nft -j` (to verify it and to keep
//! the rules' counters). Every pass replaces the table, so a table someone flushed or
//! deleted comes back at the next reconcile.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::render::{self, Counter, Desired};
use super::{exit_metrics, metrics, store, TABLE};
use crate::db::Db;
use crate::driver::{Driver, DriverError, DriverState, SubsystemStatus};

const NAME: &str = "nftables";
const NFT_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound of what is read back from `nft -j` (rules only: the sets' elements are left out).
const READBACK_MAX_BYTES: usize = 32 * 1024 * 1024;

/// What the last pass did, for /api/status and the rules' counters.
#[derive(Default)]
struct Applied {
    error: Option<String>,
    rules: usize,
    counters: HashMap<String, Counter>,
    /// Whether `counters` were read by this picd (the metrics count growth from them).
    sampled: bool,
}

pub struct RoutingDriver {
    enabled: bool,
    wireguard_interface: String,
    /// Where the last ruleset is written (atomically) before nft reads it.
    ruleset_path: PathBuf,
    applied: Mutex<Applied>,
    /// One pass at a time: the reconciler's and those a change asks for share the file.
    pass: tokio::sync::Mutex<()>,
}

impl RoutingDriver {
    pub fn new(settings: &crate::config::Settings) -> Self {
        RoutingDriver {
            enabled: settings.routing_mode == crate::config::RoutingMode::Apply,
            wireguard_interface: settings.wireguard_interface.clone(),
            ruleset_path: settings.state_dir.join("nftables").join("picd.nft"),
            applied: Mutex::default(),
            pass: tokio::sync::Mutex::new(()),
        }
    }

    /// Rebuilds the table in the background after a change was committed.
    pub fn reconcile_soon(self: &std::sync::Arc<Self>, db: &Db) {
        let (driver, db) = (std::sync::Arc::clone(self), db.clone());
        tokio::spawn(async move {
            if let Err(e) = driver.reconcile(&db).await {
                tracing::debug!(error = %e, "routing rebuild after a change");
            }
        });
    }

    /// The counters of each rule as last read from the kernel.
    pub fn counters(&self) -> HashMap<String, Counter> {
        self.lock().counters.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn apply(&self, db: &Db) -> Result<usize, String> {
        let counters = match read_table().await {
            Ok(Some(table)) => counters_of(&table),
            _ => HashMap::new(),
        };
        let interface = self.wireguard_interface.clone();
        let (desired, removed) = db
            .call(move |conn| {
                let now = crate::time::now();
                let config = crate::cell::store::read_cell_config(conn)?;
                let (entries, removed) =
                    store::ip_entries_to_apply(conn, &crate::time::format_rfc3339(now))?;
                let desired = Desired {
                    rules: store::list_rules(conn)?,
                    entries,
                    rate_limits: super::rate_limits::list(conn)?,
                    peer_subnets: config.map(|c| (c.cell.subnet_v4, c.cell.subnet_v6)),
                    peer_policies: super::peer_policy::list(conn)?,
                    exits: crate::connectivity::exit_table(conn, &interface)?,
                    peers_only_ports: crate::services::exposure::peers_only_ports(conn)?,
                    wireguard_interface: interface,
                    counters,
                    now,
                };
                Ok((desired, removed))
            })
            .await
            .map_err(|e| format!("reading the routing state: {e}"))?;
        let text = render::ruleset(&desired);
        if let Some(dir) = self.ruleset_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        crate::files::write_atomically(&self.ruleset_path, text.as_bytes(), 0o644)
            .map_err(|e| format!("writing the ruleset: {e}"))?;
        let path = self.ruleset_path.to_string_lossy().to_string();
        nft(&["-c", "-f", &path])
            .await
            .map_err(|e| format!("nft -c refused the ruleset: {e}"))?;
        nft(&["-f", &path])
            .await
            .map_err(|e| format!("nft -f failed: {e}"))?;
        let table = read_table()
            .await?
            .ok_or_else(|| format!("table inet {TABLE} is missing after it was applied"))?;
        let read_back = counters_of(&table);
        let missing = desired
            .rules
            .iter()
            .filter(|r| !read_back.contains_key(&r.id))
            .count();
        if missing > 0 {
            return Err(format!(
                "{missing} rules are missing from the table read back"
            ));
        }
        let ids: Vec<String> = desired.entries.iter().map(|e| e.id.clone()).collect();
        let growth = {
            let applied = self.lock();
            let kinds = metrics::classify(&desired);
            applied.sampled.then(|| {
                let by_exit = exit_metrics::growth(&desired.exits, &applied.counters, &read_back);
                (
                    metrics::growth(&kinds, &applied.counters, &read_back),
                    by_exit,
                )
            })
        };
        db.write(move |tx| {
            let now = crate::time::now();
            store::note_applied(tx, &ids, &removed, &crate::time::format_rfc3339(now))?;
            if let Some((growth, by_exit)) = growth {
                metrics::record(tx, &growth, now)?;
                exit_metrics::record(tx, &by_exit, now)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| format!("recording the applied entries and metrics: {e}"))?;
        let rules = desired.rules.len();
        let mut applied = self.lock();
        applied.counters = read_back;
        applied.sampled = true;
        Ok(rules)
    }
}

#[async_trait]
impl Driver for RoutingDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, db: &Db) -> Result<(), DriverError> {
        if !self.enabled {
            return Ok(());
        }
        if !crate::health::probes::has_net_admin() {
            let reason = "picd lacks CAP_NET_ADMIN; the desired state is recorded, not applied";
            self.lock().error = Some(reason.into());
            return Err(DriverError::Unavailable(NAME, reason.into()));
        }
        let _pass = self.pass.lock().await;
        let result = self.apply(db).await;
        let mut applied = self.lock();
        match result {
            Ok(rules) => {
                applied.error = None;
                applied.rules = rules;
                Ok(())
            }
            Err(e) => {
                applied.error = Some(e.clone());
                Err(DriverError::Failed(NAME, e))
            }
        }
    }

    async fn status(&self) -> SubsystemStatus {
        if !self.enabled {
            return SubsystemStatus::unavailable(NAME, "routing_mode is off: nothing is applied");
        }
        if !crate::health::probes::has_net_admin() {
            return SubsystemStatus::unavailable(
                NAME,
                "picd lacks CAP_NET_ADMIN; the desired state is recorded, not applied",
            );
        }
        let applied = self.lock();
        match &applied.error {
            Some(e) => SubsystemStatus {
                name: NAME,
                state: DriverState::Degraded,
                reason: Some(e.clone()),
            },
            None => SubsystemStatus::ok(
                NAME,
                Some(format!("table inet {TABLE} holds {} rules", applied.rules)),
            ),
        }
    }
}

/// Runs nft; Err with the first line of its complaint.
async fn nft(args: &[&str]) -> Result<Vec<u8>, String> {
    let run = tokio::process::Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(NFT_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => Ok(out.stdout),
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            Err(first.chars().take(300).collect())
        }
        Ok(Err(e)) => Err(format!("nft could not run: {e}")),
        Err(_) => Err("nft timed out".into()),
    }
}

/// The table's chains and rules as `nft -j` lists them, without the sets' elements (`-t`):
/// only the rules and their counters are read back, and 10,000 list entries would make every
/// read as slow as an apply. None when the table does not exist.
async fn read_table() -> Result<Option<Value>, String> {
    match nft(&["-t", "-j", "list", "table", "inet", TABLE]).await {
        Ok(out) if out.len() <= READBACK_MAX_BYTES => serde_json::from_slice(&out)
            .map(Some)
            .map_err(|e| format!("nft -j printed no JSON: {e}")),
        Ok(_) => Err("nft -j printed too much".into()),
        Err(e) if e.contains("No such file") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Each commented line's counter: a firewall rule's by the id in its comment, any other by the
/// comment.
fn counters_of(table: &Value) -> HashMap<String, Counter> {
    let mut counters = HashMap::new();
    let items = table["nftables"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for item in items {
        let rule = &item["rule"];
        // A firewall rule's counter by its id; any other line's by its whole comment.
        let Some(comment) = rule["comment"].as_str() else {
            continue;
        };
        let key = comment.strip_prefix("rule:").unwrap_or(comment);
        let counter = rule["expr"]
            .as_array()
            .and_then(|e| e.iter().find_map(|x| x.get("counter")))
            .map(|c| Counter {
                packets: c["packets"].as_u64().unwrap_or(0),
                bytes: c["bytes"].as_u64().unwrap_or(0),
            })
            .unwrap_or_default();
        counters.insert(key.to_string(), counter);
    }
    counters
}
