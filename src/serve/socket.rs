//! The unix socket picd serves Caddy on (`listen_socket`). Whoever can open it can speak for
//! any client (forwarded headers are believed there), so it is mode 0660: picd's user and
//! group (the package puts Caddy in picd's group), and root.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tokio::net::UnixListener;

const SOCKET_MODE: u32 = 0o660;

/// The socket file picd bound; removed when dropped (at shutdown), unless something else
/// has replaced it at that path since.
pub struct SocketFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == self.identity);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "removing the socket");
            }
        }
    }
}

/// Binds `path`, replacing a socket a previous picd left behind. Anything else at the path
/// (a file, a directory, a symlink, a socket someone still listens on) is left alone and
/// picd refuses to start: removing it could destroy data or steal another daemon's socket.
pub fn bind(path: &Path) -> anyhow::Result<(UnixListener, SocketFile)> {
    remove_stale(path)?;
    let listener =
        UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    // The socket was created under picd's umask (0077 in the unit: no wider than 0600);
    // widening it to the group only now leaves no moment where others could connect.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    let meta = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        identity: (meta.dev(), meta.ino()),
    };
    Ok((listener, file))
}

fn remove_stale(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; remove it or choose another listen_socket",
            path.display()
        );
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => bail!(
            "{} is in use: another process listens on it",
            path.display()
        ),
        // Nobody listens: the socket of a picd that did not stop cleanly.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale socket");
            std::fs::remove_file(path)
                .with_context(|| format!("removing the stale socket {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("checking the socket {}", path.display())),
    }
}
