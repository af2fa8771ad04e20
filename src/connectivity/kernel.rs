//! The exits' routes and rules, driven with iproute2 (`ip`): per exit a table with a real
//! default through the exit's interface while the exit is up and an `unreachable` default at
//! the worst metric always (IPv4 and IPv6), so a missing interface or route ends in
//! "unreachable" and never falls through to `main`; one `fwmark` rule per exit, and ahead of
//! them a rule that keeps traffic to the peers in `main`. Only forwarded peer traffic carries a
//! mark, so the cell's own traffic (the tunnels' own UDP included) keeps using `main`.
//!
//! Every pass reads the rules back and adds what is missing, so a rule someone deleted comes
//! back; the routes are `replace`d, which leaves an unchanged table as it was.

use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::Value;

use super::{rule_pref, table_id, MARK_MASK, PEERS_RULE_PREF};

const IP_TIMEOUT: Duration = Duration::from_secs(10);
/// The worst metric: the `unreachable` default loses to any real route.
const LAST_METRIC: &str = "4294967295";
/// The preferences picd's rules may have: the peers' rule and one per slot.
const OUR_PREFS: std::ops::RangeInclusive<u64> = 10000..=10354;

/// One exit as the kernel should hold it.
pub struct KernelExit {
    pub slot: u8,
    pub interface: String,
    /// Whether the real default goes in (the interface exists and the exit is not down).
    pub route: bool,
    pub v6: bool,
}

pub async fn ip(args: &[&str]) -> Result<Vec<u8>, String> {
    let run = tokio::process::Command::new("ip")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(IP_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => Ok(out.stdout),
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().next().unwrap_or("no message").to_string();
            Err(format!("ip {}: {first}", args.join(" ")))
        }
        Ok(Err(e)) => Err(format!("ip could not run: {e}")),
        Err(_) => Err("ip timed out".into()),
    }
}

/// Makes the routes and rules match `exits`; Err lists what could not be applied.
pub async fn apply(
    exits: &[KernelExit],
    subnets: Option<(Ipv4Net, Ipv6Net)>,
) -> Result<(), String> {
    let mut problems = Vec::new();
    for exit in exits {
        if let Err(e) = routes(exit).await {
            problems.push(e);
        }
    }
    for family in ["-4", "-6"] {
        let subnet = subnets.map(|(v4, v6)| match family {
            "-4" => v4.to_string(),
            _ => v6.to_string(),
        });
        if let Err(e) = rules(family, exits, subnet).await {
            problems.push(e);
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("; ")),
    }
}

async fn routes(exit: &KernelExit) -> Result<(), String> {
    let table = table_id(exit.slot).to_string();
    let dev = exit.interface.as_str();
    for family in ["-4", "-6"] {
        ip(&[
            family,
            "route",
            "replace",
            "unreachable",
            "default",
            "metric",
            LAST_METRIC,
            "table",
            &table,
        ])
        .await?;
        let real = exit.route && (family == "-4" || exit.v6);
        if real {
            // Linux drops the route when the link goes down; it comes back at the next pass.
            ip(&[
                family, "route", "replace", "default", "dev", dev, "metric", "0", "table", &table,
            ])
            .await?;
        } else {
            // Absent already is as good.
            let _ = ip(&[
                family, "route", "del", "default", "dev", dev, "table", &table,
            ])
            .await;
        }
    }
    // Replies from the internet arrive on the exit with sources `main` routes via the uplink:
    // strict reverse-path filtering would drop them, loose keeps the spoofing check.
    let path = format!("/proc/sys/net/ipv4/conf/{dev}/rp_filter");
    if std::path::Path::new(&path).exists() {
        std::fs::write(&path, "2").map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// A rule as wanted: preference, what `ip rule add` needs after `pref N`, and its table.
struct WantedRule {
    pref: u64,
    args: Vec<String>,
    table: String,
}

fn wanted_rules(exits: &[KernelExit], subnet: Option<String>) -> Vec<WantedRule> {
    let mut wanted = Vec::new();
    if let (Some(subnet), false) = (subnet, exits.is_empty()) {
        wanted.push(WantedRule {
            pref: u64::from(PEERS_RULE_PREF),
            args: vec!["to".into(), subnet, "lookup".into(), "main".into()],
            table: "main".into(),
        });
    }
    for exit in exits {
        let table = table_id(exit.slot).to_string();
        let fwmark = format!("{:#x}/{MARK_MASK:#x}", super::mark(exit.slot));
        wanted.push(WantedRule {
            pref: u64::from(rule_pref(exit.slot)),
            args: vec!["fwmark".into(), fwmark, "lookup".into(), table.clone()],
            table,
        });
    }
    wanted
}

async fn rules(family: &str, exits: &[KernelExit], subnet: Option<String>) -> Result<(), String> {
    let listed = ip(&["-j", family, "rule", "show"]).await?;
    let listed: Vec<Value> = serde_json::from_slice(&listed).unwrap_or_default();
    let present: Vec<(u64, String)> = listed
        .iter()
        .filter_map(|r| {
            let pref = r["priority"].as_u64()?;
            let table = r["table"].as_str().unwrap_or_default().to_string();
            OUR_PREFS.contains(&pref).then_some((pref, table))
        })
        .collect();
    let wanted = wanted_rules(exits, subnet);
    for (pref, table) in &present {
        if !wanted.iter().any(|w| w.pref == *pref && &w.table == table) {
            let pref = pref.to_string();
            ip(&[family, "rule", "del", "pref", &pref]).await?;
        }
    }
    for rule in &wanted {
        if present
            .iter()
            .any(|(p, t)| *p == rule.pref && *t == rule.table)
        {
            continue;
        }
        let pref = rule.pref.to_string();
        let mut args = vec![family, "rule", "add", "pref", pref.as_str()];
        args.extend(rule.args.iter().map(String::as_str));
        ip(&args).await?;
    }
    Ok(())
}
