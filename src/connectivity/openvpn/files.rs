//! What an `openvpn` process reads, written by picd under the state dir's run folder:
//! `run/openvpn/<exit interface>/picd.conf` (0600, no secret in it) and, beside it, a 0700
//! `secrets/` folder with the provider's sanitized file and the credentials, there only while
//! the process runs. picd's own directives come after the provider's, so they win: the device
//! is picd's, routes are never added by OpenVPN (`route-noexec`, and pushed routes and
//! redirect-gateway filtered out), no script may run (`script-security 1`), and the tunnel's
//! state is read on the management socket.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::Secrets;

/// Where one exit's process keeps its files.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub dir: PathBuf,
    pub ifname: String,
}

impl Dirs {
    pub fn new(run_dir: &Path, ifname: &str) -> Dirs {
        Dirs {
            dir: run_dir.join(ifname),
            ifname: ifname.to_string(),
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("picd.conf")
    }

    pub fn secrets(&self) -> PathBuf {
        self.dir.join("secrets")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("management.sock")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }
}

/// picd's config for one exit; `auth` is the credentials file when the provider asks for one.
pub fn render(dirs: &Dirs, provider: &Path, auth: Option<&Path>) -> String {
    let mut out =
        String::from("# written by picd: the provider's file, then picd's own directives\n");
    // Reconnect soon after a provider comes back (the file may say otherwise: it comes next).
    out.push_str("connect-retry 2 10\n");
    let _ = writeln!(out, "config {}", quoted(provider));
    let _ = writeln!(
        out,
        "dev {}\ndev-type tun\ndisable-dco\npersist-tun",
        dirs.ifname
    );
    out.push_str("route-noexec\n");
    for pushed in [
        "redirect-gateway",
        "redirect-private",
        "route",
        "block-outside-dns",
    ] {
        let _ = writeln!(out, "pull-filter ignore \"{pushed}\"");
    }
    out.push_str("script-security 1\n");
    let _ = writeln!(out, "management {} unix", quoted(&dirs.socket()));
    if let Some(auth) = auth {
        let _ = writeln!(out, "auth-user-pass {}", quoted(auth));
    }
    // Level 3 prints the server's PUSH_REPLY (its DNS), with any auth-token redacted.
    out.push_str("verb 3\n");
    out
}

fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// Writes everything the process reads; answers the config's path.
pub fn write(dirs: &Dirs, secrets: &Secrets) -> std::io::Result<PathBuf> {
    if let Some(parent) = dirs.dir.parent() {
        private_dir(parent)?;
    }
    private_dir(&dirs.dir)?;
    private_dir(&dirs.secrets())?;
    let provider = dirs.secrets().join("provider.conf");
    crate::files::write_atomically(&provider, secrets.config.as_bytes(), 0o600)?;
    let auth = match &secrets.credentials {
        Some((user, pass)) => {
            let path = dirs.secrets().join("auth");
            let text = zeroize::Zeroizing::new(format!("{}\n{}\n", user.as_str(), pass.as_str()));
            crate::files::write_atomically(&path, text.as_bytes(), 0o600)?;
            Some(path)
        }
        None => None,
    };
    let config = dirs.config();
    crate::files::write_atomically(
        &config,
        render(dirs, &provider, auth.as_deref()).as_bytes(),
        0o600,
    )?;
    let _ = std::fs::remove_file(dirs.socket());
    Ok(config)
}

/// Removes the secrets and the process's runtime files (the config stays: it holds none).
pub fn clean(dirs: &Dirs) {
    let _ = std::fs::remove_dir_all(dirs.secrets());
    let _ = std::fs::remove_file(dirs.socket());
    let _ = std::fs::remove_file(dirs.pid_file());
}

/// Removes everything of an exit that is gone.
pub fn remove(dirs: &Dirs) {
    let _ = std::fs::remove_dir_all(&dirs.dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picds_directives_follow_the_providers_and_keep_routes_and_scripts_out() {
        let dirs = Dirs::new(Path::new("/var/lib/picd/run/openvpn"), "picd0e2");
        let provider = dirs.secrets().join("provider.conf");
        let text = render(&dirs, &provider, Some(&dirs.secrets().join("auth")));
        let lines: Vec<&str> = text.lines().collect();
        let at = |l: &str| lines.iter().position(|x| x.starts_with(l)).expect(l);
        assert!(at("config ") < at("dev picd0e2"), "{text}");
        for wanted in [
            "dev-type tun",
            "route-noexec",
            "pull-filter ignore \"route\"",
            "pull-filter ignore \"redirect-gateway\"",
            "script-security 1",
            "persist-tun",
            "management \"/var/lib/picd/run/openvpn/picd0e2/management.sock\" unix",
            "auth-user-pass \"/var/lib/picd/run/openvpn/picd0e2/secrets/auth\"",
        ] {
            assert!(lines.contains(&wanted), "{wanted} missing: {text}");
        }
    }

    #[test]
    fn the_files_are_private_and_the_secrets_go_when_cleaned() {
        let root = std::env::temp_dir().join(format!("picd-ovpn-{}", std::process::id()));
        let dirs = Dirs::new(&root.join("openvpn"), "x0e1");
        let secrets = Secrets {
            config: "client\n".to_string().into(),
            credentials: Some(("u".to_string().into(), "p".to_string().into())),
        };
        let config = write(&dirs, &secrets).expect("written");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&config), 0o600);
        assert_eq!(mode(&dirs.secrets()), 0o700);
        assert_eq!(mode(&dirs.secrets().join("auth")), 0o600);
        assert_eq!(
            std::fs::read_to_string(dirs.secrets().join("auth")).unwrap(),
            "u\np\n"
        );
        clean(&dirs);
        assert!(!dirs.secrets().exists() && config.exists());
        let _ = std::fs::remove_dir_all(root);
    }
}
