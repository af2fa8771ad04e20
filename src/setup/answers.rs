//! `picd setup --answers FILE`: the wizard, unattended, from a TOML file with exactly the
//! wizard's keys and validation.

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::routes::validated_step;
use super::store::{self, Draft, Step};
use crate::db::Db;
use crate::error::ApiError;

/// Runs every step from the file, then completes setup in one transaction.
/// `own_dns_listeners` are picd's `dns_listen` addresses, refused as upstreams.
pub async fn run(
    db: &Db,
    vault: &crate::vault::Vault,
    path: &Path,
    own_dns_listeners: &[std::net::SocketAddr],
) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let answers = serde_json::to_value(&table)?;
    let Some(sections) = answers.as_object() else {
        bail!("the answers file must hold tables")
    };
    for key in sections.keys() {
        if !["admin", "cell", "dns", "tls"].contains(&key.as_str()) {
            bail!(
                "{}: unknown section [{key}] (expected [admin], [cell], [dns], [tls])",
                path.display()
            );
        }
    }
    let mut draft = Draft::default();
    for step in [Step::Admin, Step::Cell, Step::Dns, Step::Tls] {
        let data = match sections.get(step.as_str()) {
            Some(data) => data.clone(),
            // [tls] may be left out: the cell's own CA, as the wizard proposes.
            None if step == Step::Tls => json!({ "mode": "internal" }),
            None => Value::Null,
        };
        if let Err(err) = validated_step(step, &data, &mut draft, own_dns_listeners).await {
            bail!("[{}] {}", step.as_str(), describe(&err));
        }
    }
    let audit = crate::audit::cli_ctx("cli");
    let vault = vault.clone();
    let user = audit
        .transact(db, move |tx, entry| {
            entry.action = "setup.complete".into();
            entry.target_type = "setup".into();
            entry.target_id = "complete".into();
            let user = store::complete(tx, &draft, &vault)?;
            entry.detail = json!({ "admin": user.username, "source": "answers file" });
            Ok(user)
        })
        .await
        .map_err(|e| anyhow::anyhow!(describe(&e)))?;
    Ok(user.username)
}

/// An error as one line for the terminal, with each field's message.
pub fn describe(err: &ApiError) -> String {
    match err {
        ApiError::Invalid { fields } => fields
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
