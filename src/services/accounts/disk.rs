//! Makes a service's accounts real on disk: its account file (one line each, in the format
//! the manifest names, replaced by rename inside the config folder the container mounts), a
//! data folder for each account, and the folder of an account that is gone moved to the
//! service's archive, which no container mounts. Archives older than the owner's retention
//! are removed.

use std::path::{Path, PathBuf};

use super::store::Account;
use crate::services::catalog::{AccountMechanism, Manifest};

/// What one pass changed, for the log and the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub file_rewritten: bool,
    pub folders_made: Vec<String>,
    pub archived: Vec<String>,
    pub archives_removed: Vec<String>,
}

/// Where the data of removed accounts waits out its retention: `<service dir>/archive`.
pub fn archive_dir(service_dir: &Path) -> PathBuf {
    service_dir.join("archive")
}

/// The folder that holds one folder per account.
pub fn accounts_root(service_dir: &Path, manifest: &Manifest) -> PathBuf {
    let AccountMechanism::PasswdFile { folder_in, .. } = &manifest.accounts;
    service_dir.join("volumes").join(folder_in)
}

/// A folder name that can be an account's: what picd accepts as a username (a DNS label).
fn is_account_name(name: &str) -> bool {
    crate::cell::settings::dns_label(name).is_ok()
}

/// The accounts whose folder is still in the data volume but who are gone: the next pass
/// archives them. Their sessions are ended first, so no server process writes into the
/// folder while it moves.
pub fn gone(service_dir: &Path, manifest: &Manifest, accounts: &[Account]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(accounts_root(service_dir, manifest)) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| is_account_name(name) && !accounts.iter().any(|a| &a.username == name))
        .collect()
}

pub fn apply(
    service_dir: &Path,
    manifest: &Manifest,
    accounts: &[Account],
    retention_days: u32,
    now_unix: i64,
) -> std::io::Result<Applied> {
    let AccountMechanism::PasswdFile {
        file,
        line,
        hash,
        folder_in,
    } = &manifest.accounts;
    let mut applied = Applied::default();
    let config = service_dir.join("config");
    std::fs::create_dir_all(&config)?;
    let text: String = accounts
        .iter()
        .map(|a| line.line(&a.username, *hash, &a.password_hash))
        .collect();
    let path = config.join(file);
    if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
        crate::files::write_atomically(&path, text.as_bytes(), 0o644)?;
        applied.file_rewritten = true;
    }

    let volume = accounts_root(service_dir, manifest);
    if !volume.is_dir() {
        std::fs::create_dir_all(&volume)?;
        if manifest.writes_root_of(folder_in) {
            crate::services::driver::chown_to_service_user(&volume, manifest)?;
        }
    }
    for account in accounts {
        let folder = volume.join(&account.username);
        if !folder.is_dir() {
            std::fs::create_dir(&folder)?;
            crate::services::driver::chown_to_service_user(&folder, manifest)?;
            applied.folders_made.push(account.username.clone());
        }
    }
    let archive = archive_dir(service_dir);
    for entry in std::fs::read_dir(&volume)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = accounts.iter().any(|a| a.username == name);
        if wanted || !is_account_name(&name) || !entry.file_type()?.is_dir() {
            continue;
        }
        std::fs::create_dir_all(&archive)?;
        std::fs::rename(entry.path(), archive.join(format!("{name}@{now_unix}")))?;
        applied.archived.push(name);
    }
    applied.archives_removed = prune(&archive, retention_days, now_unix)?;
    Ok(applied)
}

/// Removes archived folders older than the retention (their name ends in `@<unix time>`).
fn prune(archive: &Path, retention_days: u32, now_unix: i64) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(archive) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    let oldest = now_unix - i64::from(retention_days) * 86_400;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let archived_at = name
            .rsplit_once('@')
            .and_then(|(_, t)| t.parse::<i64>().ok());
        if matches!(archived_at, Some(t) if t < oldest) {
            std::fs::remove_dir_all(entry.path())?;
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::catalog::FILES;

    fn account(name: &str) -> Account {
        Account {
            service_id: "files".into(),
            username: name.into(),
            peer_name: Some(name.into()),
            password_hash: format!("$6$rounds=1000$salt${name}"),
            created_at: String::new(),
        }
    }

    #[test]
    fn accounts_get_lines_and_folders_and_a_gone_one_is_archived_then_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (account("alice"), account("bob"));
        let first = apply(dir.path(), &FILES, &[alice.clone(), bob.clone()], 30, 1_000).unwrap();
        assert!(first.file_rewritten);
        assert_eq!(first.folders_made, ["alice", "bob"]);
        let users = std::fs::read_to_string(dir.path().join("config/users")).unwrap();
        assert_eq!(
            users,
            "alice:$6$rounds=1000$salt$alice\nbob:$6$rounds=1000$salt$bob\n"
        );
        std::fs::write(dir.path().join("volumes/data/bob/note.txt"), "kept").unwrap();

        // Twice: nothing changes.
        let again = apply(dir.path(), &FILES, &[alice.clone(), bob], 30, 1_000).unwrap();
        assert_eq!(again, Applied::default());

        // Bob is gone: his line goes and his folder moves to the archive, whole.
        let later = apply(dir.path(), &FILES, std::slice::from_ref(&alice), 30, 2_000).unwrap();
        assert_eq!(later.archived, ["bob"]);
        let kept = dir.path().join("archive/bob@2000/note.txt");
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "kept");
        assert!(!dir.path().join("volumes/data/bob").exists());

        // Past the retention, the archive goes; not before.
        let day = 86_400;
        let early = apply(
            dir.path(),
            &FILES,
            std::slice::from_ref(&alice),
            30,
            2_000 + 29 * day,
        )
        .unwrap();
        assert!(early.archives_removed.is_empty());
        let late = apply(dir.path(), &FILES, &[alice], 30, 2_001 + 30 * day).unwrap();
        assert_eq!(late.archives_removed, ["bob@2000"]);
    }
}
