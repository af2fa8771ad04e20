//! The mail service's driver for its own maps: from the accounts, aliases and quotas in
//! SQLite, picd writes three files into the service's config folder, each replaced by rename
//! and each left alone when unchanged:
//! - `mailboxes` (Postfix texthash: `<account>@<domain> OK`), the addresses Postfix accepts
//!   at RCPT TO besides the aliases;
//! - `aliases` (Postfix texthash: `<alias>@<domain> <account>@<domain>`);
//! - `quota` (a Dovecot userdb passwd-file: each account's quota rule), which Dovecot re-reads
//!   by itself when it changes.
//!
//! Postfix reads texthash maps only at start, so a change of the first two is followed by a
//! `postfix reload` in the running container.

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use rusqlite::Connection;

use super::store::{self, Alias};
use crate::error::ApiError;
use crate::services::accounts::store as accounts;
use crate::services::manifests::MAIL;

/// What the maps are made of, read in one go.
#[derive(Debug, Default)]
pub struct MailMaps {
    /// The cell's domain; `invalid` (RFC 6761) before the wizard set it, as in the templates.
    pub domain: String,
    pub mailboxes: Vec<String>,
    pub aliases: Vec<Alias>,
    pub overrides: HashMap<String, u64>,
    pub default_quota: u64,
}

impl MailMaps {
    pub fn read(conn: &Connection) -> Result<MailMaps, ApiError> {
        let place = crate::services::listen::cell_place(conn, &MAIL)?;
        Ok(MailMaps {
            domain: place.map_or_else(|| "invalid".to_string(), |p| p.domain),
            mailboxes: accounts::of_service(conn, MAIL.id)?
                .into_iter()
                .map(|a| a.username)
                .collect(),
            aliases: store::aliases(conn)?,
            overrides: store::quota_overrides(conn)?,
            default_quota: store::default_quota(conn)?,
        })
    }

    /// One mailbox's quota in bytes and whether it is an override.
    pub fn quota_of(&self, username: &str) -> (u64, bool) {
        match self.overrides.get(username) {
            Some(limit) => (*limit, true),
            None => (self.default_quota, false),
        }
    }

    fn mailboxes_text(&self) -> String {
        self.mailboxes
            .iter()
            .map(|user| format!("{user}@{} OK\n", self.domain))
            .collect()
    }

    /// An alias named like a mailbox is left out: the API refuses one, but a peer named like
    /// an existing alias may get an account later, and its own mail must reach it.
    fn aliases_text(&self) -> String {
        self.aliases
            .iter()
            .filter(|a| !self.mailboxes.contains(&a.alias))
            .map(|a| format!("{}@{d} {}@{d}\n", a.alias, a.target, d = self.domain))
            .collect()
    }

    /// `bytes=` is the limit in bytes; the uid, gid and home come from the userdb's
    /// default_fields.
    fn quota_text(&self) -> String {
        self.mailboxes
            .iter()
            .map(|user| {
                let (limit, _) = self.quota_of(user);
                format!("{user}:::::::userdb_quota_rule=*:bytes={limit}\n")
            })
            .collect()
    }
}

/// Writes the three files into `config` (the service's config folder); true when one that
/// Postfix reads changed (so Postfix must reload).
pub fn write(config: &Path, maps: &MailMaps) -> std::io::Result<bool> {
    std::fs::create_dir_all(config)?;
    let mut postfix_changed = false;
    for (name, text, postfix) in [
        ("mailboxes", maps.mailboxes_text(), true),
        ("aliases", maps.aliases_text(), true),
        ("quota", maps.quota_text(), false),
    ] {
        let path = config.join(name);
        if std::fs::read(&path).ok().as_deref() == Some(text.as_bytes()) {
            continue;
        }
        crate::files::write_atomically(&path, text.as_bytes(), 0o644)?;
        postfix_changed |= postfix;
    }
    Ok(postfix_changed)
}

/// `postfix reload` in the mail container: the running Postfix re-reads its texthash maps.
/// A container that is not running reads them when it starts, so a failure is only logged.
pub async fn reload_postfix(docker: &Docker, container: &str) {
    let reload = ["/usr/sbin/postfix", "-c", "/etc/picd-mail", "reload"];
    let done = crate::services::accounts::sessions::exec(docker, container, &MAIL, &reload).await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "postfix reload in the mail container");
    }
}

/// Reads the maps, writes them into the service's config folder, and reloads Postfix when
/// they changed (the accounts pass and the reconcile call this for the mail service).
pub async fn apply(
    db: &crate::db::Db,
    service_dir: &Path,
    docker: Option<&Docker>,
    container: &str,
) -> Result<(), ApiError> {
    let maps = db.call(|conn| MailMaps::read(conn)).await?;
    let config = service_dir.join("config");
    let changed = tokio::task::spawn_blocking(move || write(&config, &maps))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("mail maps: {e}")))?
        .map_err(ApiError::Io)?;
    if let (true, Some(docker)) = (changed, docker) {
        reload_postfix(docker, container).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps() -> MailMaps {
        MailMaps {
            domain: "home.example".into(),
            mailboxes: vec!["alice".into(), "bob".into()],
            aliases: vec![
                Alias {
                    alias: "info".into(),
                    target: "alice".into(),
                    created_at: String::new(),
                },
                Alias {
                    alias: "bob".into(),
                    target: "alice".into(),
                    created_at: String::new(),
                },
            ],
            overrides: HashMap::from([("bob".to_string(), 2048)]),
            default_quota: 1 << 30,
        }
    }

    #[test]
    fn maps_list_every_mailbox_its_quota_and_the_aliases_a_mailbox_does_not_shadow() {
        let maps = maps();
        assert_eq!(
            maps.mailboxes_text(),
            "alice@home.example OK\nbob@home.example OK\n"
        );
        assert_eq!(
            maps.aliases_text(),
            "info@home.example alice@home.example\n"
        );
        assert_eq!(
            maps.quota_text(),
            "alice:::::::userdb_quota_rule=*:bytes=1073741824\n\
             bob:::::::userdb_quota_rule=*:bytes=2048\n"
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(write(dir.path(), &maps).unwrap(), "a first write");
        assert!(!write(dir.path(), &maps).unwrap(), "an unchanged write");
        let mut fewer = maps;
        fewer.overrides.clear();
        assert!(
            !write(dir.path(), &fewer).unwrap(),
            "only the quota changed"
        );
    }
}
