//! The certificate and key Caddy serves in internal mode, handed over as files (Caddy's
//! `load_files`) rather than inline in its config: the running config can be read back
//! through the admin API, and a private key has no business there.
//!
//! The directory (`caddy_tls_dir`) is made mode 0750 and the key 0640: picd's user and group,
//! where the package puts Caddy and nobody else. The names carry a fingerprint of the
//! certificate, so a renewed certificate is a changed config (Caddy loads it) and a Caddy
//! that reloads meanwhile still finds the pair it was given. Written atomically: temp file,
//! fsync, rename.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const DIR_MODE: u32 = 0o750;
const CERT_MODE: u32 = 0o644;
const KEY_MODE: u32 = 0o640;
/// Every file picd writes there starts so; others are left alone.
const PREFIX: &str = "cell-";

/// Where Caddy finds the pair.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsPaths {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// The paths of the pair for `cert_pem` (nothing is written).
pub fn paths(dir: &Path, cert_pem: &str) -> TlsPaths {
    let fingerprint = hex::encode(&Sha256::digest(cert_pem.as_bytes())[..8]);
    TlsPaths {
        certificate: dir.join(format!("{PREFIX}{fingerprint}.crt")),
        key: dir.join(format!("{PREFIX}{fingerprint}.key")),
    }
}

/// Makes sure the pair is on disk with its modes (rewritten when missing or different:
/// /run is emptied at boot, and a restart of picd recreates its runtime directory).
pub fn write(paths: &TlsPaths, cert_pem: &str, key_pem: &str) -> std::io::Result<()> {
    if let Some(dir) = paths.certificate.parent() {
        ensure_dir(dir)?;
    }
    write_if_changed(&paths.certificate, cert_pem.as_bytes(), CERT_MODE)?;
    write_if_changed(&paths.key, key_pem.as_bytes(), KEY_MODE)
}

/// Removes the pairs picd wrote before, but `keep` (None: every pair, in acme mode).
pub fn remove_others(dir: &Path, keep: Option<&TlsPaths>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with(PREFIX);
        let kept = keep.is_some_and(|k| path == k.certificate || path == k.key);
        if ours && !kept {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "removing an old TLS file");
            }
        }
    }
}

fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
    }
    // The mode asked at creation is narrowed by the umask, and a directory made by someone
    // else may be wider: set it outright.
    if std::fs::metadata(dir)?.permissions().mode() & 0o7777 != DIR_MODE {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

fn write_if_changed(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let same_mode = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
    if same_mode && std::fs::read(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    // Created private and widened only once the content is complete and synced.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(content)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_is_written_with_its_modes_and_old_pairs_are_removed() {
        let root = std::env::temp_dir().join(format!("picd-tls-files-{}", std::process::id()));
        let dir = root.join("tls");
        let old = paths(&dir, "OLD CERT");
        write(&old, "OLD CERT", "OLD KEY").unwrap();
        let new = paths(&dir, "NEW CERT");
        assert_ne!(old, new);
        write(&new, "NEW CERT", "NEW KEY").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dir), DIR_MODE);
        assert_eq!(
            (mode(&new.certificate), mode(&new.key)),
            (CERT_MODE, KEY_MODE)
        );
        assert_eq!(std::fs::read_to_string(&new.key).unwrap(), "NEW KEY");
        std::fs::write(dir.join("other.txt"), "not ours").unwrap();
        remove_others(&dir, Some(&new));
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        left.sort();
        let mut wanted = vec![
            new.certificate.clone(),
            new.key.clone(),
            dir.join("other.txt"),
        ];
        wanted.sort();
        assert_eq!(left, wanted);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
