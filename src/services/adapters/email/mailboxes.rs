//! `GET /api/email/mailboxes`: the mail service's mailboxes (one per account) with the
//! messages and bytes each holds, read from the maildirs (`<account>/Maildir`, its folders
//! `cur` and `new` and the subfolders `.<name>` Dovecot makes), and each one's quota.

use axum::extract::State;
use serde_json::{json, Value};

use super::maps::MailMaps;
use crate::auth::AdminUser;
use crate::error::{ApiResult, Json};
use crate::services::adapters::walk;
use crate::services::manifests::MAIL;
use crate::services::ServicesApp;

/// Most folders of one mailbox read.
const FOLDERS_MAX: usize = 200;

pub async fn status(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    Ok(Json(crate::services::adapters::status(&app, &MAIL).await?))
}

/// Messages in one maildir folder: the files of `cur` and `new` (`new` also counted apart),
/// and their bytes (what the quota counts, near enough: Dovecot counts the same messages).
fn folder(dir: &std::path::Path, name: &str) -> std::io::Result<Value> {
    let mut messages = 0u64;
    let mut unseen = 0u64;
    let mut bytes = 0u64;
    for sub in ["cur", "new"] {
        let entries = match std::fs::read_dir(dir.join(sub)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries.take(walk::USAGE_MAX_ENTRIES) {
            let metadata = entry?.metadata()?;
            if metadata.is_file() {
                messages += 1;
                bytes += metadata.len();
                unseen += u64::from(sub == "new");
            }
        }
    }
    Ok(json!({ "name": name, "messages": messages, "new": unseen, "bytes": bytes }))
}

fn mailbox(home: &std::path::Path) -> std::io::Result<Value> {
    let maildir = home.join("Maildir");
    let mut folders = vec![folder(&maildir, "INBOX")?];
    if let Ok(entries) = std::fs::read_dir(&maildir) {
        for entry in entries.take(FOLDERS_MAX) {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(sub) = name.strip_prefix('.') {
                if !sub.is_empty() && entry.metadata()?.is_dir() {
                    folders.push(folder(&entry.path(), sub)?);
                }
            }
        }
    }
    folders[1..].sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let message_bytes: u64 = folders.iter().filter_map(|f| f["bytes"].as_u64()).sum();
    Ok(json!({
        "folders": folders,
        "usage": walk::usage(&maildir)?,
        "message_bytes": message_bytes,
    }))
}

pub async fn mailboxes(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
) -> ApiResult<Json<Value>> {
    let accounts = crate::services::adapters::accounts_with_folders(&app, &MAIL).await?;
    let maps = app.db.call(|conn| MailMaps::read(conn)).await?;
    let boxes = crate::services::adapters::blocking(move || {
        accounts
            .into_iter()
            .map(|(account, home)| {
                let mut value = mailbox(&home)?;
                value["username"] = json!(account.username);
                value["peer"] = json!(account.peer_name);
                let (limit, overridden) = maps.quota_of(&account.username);
                value["quota"] = json!({
                    "limit_bytes": limit,
                    "used_bytes": value["message_bytes"],
                    "default": !overridden,
                });
                Ok(value)
            })
            .collect::<std::io::Result<Vec<Value>>>()
    })
    .await?;
    Ok(Json(json!({ "mailboxes": boxes })))
}
