//! The vault's age identity file: created 0600, written atomically (temp file, fsync,
//! rename), in the same format as age-keygen so the `age` tool can read it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use anyhow::{bail, Context};
use rusqlite::Connection;

use super::{read_small, CANARY};

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("vault.key")
}

pub fn pending_path(state_dir: &Path) -> PathBuf {
    state_dir.join("vault.key.new")
}

/// Reads the identity, refusing a file that others may read: the key decrypts every secret.
pub fn read(path: &Path) -> anyhow::Result<age::x25519::Identity> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "the vault identity {} is readable by others (mode {:o}); run `chmod 600 {}` and start again",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = read_small(path).with_context(|| format!("reading {}", path.display()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .with_context(|| format!("{} holds no age identity", path.display()))?;
    age::x25519::Identity::from_str(line).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Writes the identity atomically with mode 0600.
pub fn write(path: &Path, identity: &age::x25519::Identity) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let body = format!(
        "# picd vault identity, created {}\n# public key: {}\n{}\n",
        crate::time::now_rfc3339(),
        identity.to_public(),
        identity.to_string().expose_secret()
    );
    file.write_all(body.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path)?;
    Ok(())
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Moves a pending identity (from `rekey`) into place.
pub fn install_pending(state_dir: &Path) -> anyhow::Result<()> {
    std::fs::rename(pending_path(state_dir), path(state_dir))?;
    sync_dir(&path(state_dir))?;
    Ok(())
}

/// A rekey that stopped between its commit and the identity swap leaves `vault.key.new`:
/// if the secrets already decrypt with it, install it; otherwise the commit never happened
/// and it is discarded.
pub fn finish_interrupted_rekey(state_dir: &Path, conn: &Connection) -> anyhow::Result<()> {
    let pending = pending_path(state_dir);
    if !pending.exists() {
        return Ok(());
    }
    let identity = read(&pending)?;
    let canary: Option<Vec<u8>> = conn
        .query_row(
            "SELECT ciphertext FROM secrets WHERE name = ?1",
            [CANARY],
            |r| r.get(0),
        )
        .ok();
    let committed = canary.is_some_and(|c| age::decrypt(&identity, &c).is_ok());
    if committed {
        tracing::warn!("finishing an interrupted vault rekey");
        install_pending(state_dir)
    } else {
        std::fs::remove_file(&pending).context("discarding an unfinished rekey")
    }
}
