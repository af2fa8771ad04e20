//! The command line: `picd serve`, `picd setup --answers FILE`, `picd setup token`,
//! `picd migrate`, `picd audit verify`, `picd admin reset-password USER`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Settings, DEV_STATE_DIR};

mod commands;

#[derive(Parser, Debug)]
#[command(
    name = "picd",
    version,
    about = "The daemon of a personal internet cell"
)]
pub struct Args {
    /// Settings file [default: /etc/picd/picd.toml, read if present]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The package's defaults, under the settings file: each key the settings file leaves
    /// out is taken from here (the Debian package's is /usr/share/picd/package.toml)
    #[arg(long, global = true, value_name = "FILE")]
    defaults: Option<PathBuf>,
    /// Where the database and vault live; wins over --dev's folder and the settings file
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Development mode: state in ./picd-state, no root needed
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon
    Serve {
        /// Address to listen on [default: 127.0.0.1:3000]
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<SocketAddr>,
        /// Also serve on this unix socket, for Caddy (forwarded headers count only there)
        #[arg(long, value_name = "PATH")]
        listen_socket: Option<PathBuf>,
    },
    /// Complete the setup wizard unattended from a TOML answers file (`--answers FILE`), or
    /// print the setup code the wizard asks for (`token`)
    #[command(args_conflicts_with_subcommands = true)]
    Setup {
        #[arg(long, value_name = "FILE", required = true)]
        answers: Option<PathBuf>,
        #[command(subcommand)]
        command: Option<SetupCommand>,
    },
    /// Apply pending database migrations and exit
    Migrate,
    /// The audit log
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The DNS server
    Dns {
        #[command(subcommand)]
        command: DnsCommand,
    },
    /// The vault
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
    /// The service store
    Services {
        #[command(subcommand)]
        command: ServicesCommand,
    },
    /// Administration
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SetupCommand {
    /// Print the setup code the wizard's first screen asks for; exits 1 once setup is complete
    /// or before picd has made one
    Token,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify the hash chain of the audit log, offline; exits 1 when it does not hold
    Verify,
    /// Accept the database as it is after a loss that picd reported at start (stop picd
    /// first): the audit anchor is moved to the chain's current head
    Reanchor,
}

#[derive(Subcommand, Debug)]
enum DnsCommand {
    /// Serve one BIND zone file authoritatively (no database, no setup): to check a zone
    /// before importing it, and for benchmarks
    Serve {
        #[arg(long, value_name = "FILE")]
        zone_file: PathBuf,
        #[arg(long, value_name = "NAME")]
        origin: String,
        #[arg(long, value_name = "ADDR:PORT")]
        listen: SocketAddr,
    },
}

#[derive(Subcommand, Debug)]
enum VaultCommand {
    /// Replace the vault identity and re-encrypt every secret (stop picd first)
    Rekey,
}

#[derive(Subcommand, Debug)]
enum ServicesCommand {
    /// Build every service's image from Debian packages and import it into the Docker engine
    /// (or pull it by digest, for a service `service_images` names), and record its Id
    BuildImages {
        /// Where built root filesystems are kept, keyed by recipe hash [default: STATE/image-cache]
        #[arg(long, value_name = "DIR", env = "PICD_SERVICES_IMAGE_CACHE")]
        cache: Option<PathBuf>,
        /// Debian mirror [default: the first one in apt's sources]
        #[arg(long, value_name = "URL", env = "PICD_DEBIAN_MIRROR")]
        mirror: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Set a new password for USER (read from the first line of standard input) and end
    /// their sessions
    ResetPassword { user: String },
}

fn settings(args: &Args) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(args.defaults.as_deref(), args.config.as_deref())?;
    if args.dev {
        settings.state_dir = PathBuf::from(DEV_STATE_DIR);
    }
    if let Some(dir) = &args.state_dir {
        settings.state_dir = dir.clone();
    }
    Ok(settings)
}

/// Creates the state directory, private to picd's user.
fn prepare_state_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", dir.display()))?;
    }
    Ok(())
}

fn init_logging(settings: &Settings) {
    crate::logs::init(settings);
}

/// glibc's malloc settings for picd (glibc tunables, read only at process start):
/// - `mmap_threshold`: glibc raises it after the first large free, so the 19 MiB an argon2id
///   hash borrows at every login would then stay in the heap for good, doubling picd's idle
///   footprint; fixed, such blocks go back to the system at once.
/// - `arena_max`: glibc gives each new thread an arena of its own, up to eight per core, and
///   each keeps what was freed in it. A burst of requests spreads over many blocking threads
///   and left a dozen arenas holding 2-7 MB each (60 MB with 1,000 peers); two suffice here.
const MALLOC_TUNABLES: [(&str, &str); 2] = [
    ("glibc.malloc.mmap_threshold", "131072"),
    ("glibc.malloc.arena_max", "2"),
];

/// systemd/picd.service sets them in GLIBC_TUNABLES; otherwise `serve` re-executes itself
/// once with those missing from it (a value already set there is kept).
fn fix_malloc_threshold() {
    // Set on the re-executed picd: glibc may drop GLIBC_TUNABLES from the environment of a
    // binary with file capabilities (secure mode), and picd must not re-execute for ever.
    const REEXECUTED: &str = "_PICD_MALLOC_REEXECUTED";
    if !cfg!(target_env = "gnu") || std::env::var_os(REEXECUTED).is_some() {
        return;
    }
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let missing: Vec<String> = MALLOC_TUNABLES
        .iter()
        .filter(|(name, _)| !current.contains(name))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let tunables = std::iter::once(current)
        .filter(|c| !c.is_empty())
        .chain(missing)
        .collect::<Vec<_>>()
        .join(":");
    use std::os::unix::process::CommandExt;
    // exec only returns when it failed; picd then simply runs with glibc's defaults.
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", tunables)
        .env(REEXECUTED, "1")
        .exec();
    eprintln!("picd: running with glibc's default malloc settings ({error})");
}

/// How long `serve` waits at exit for blocking tasks still running.
const BLOCKING_TASKS_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(1);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = settings(&args)?;
    match args.command {
        Command::Serve {
            listen,
            listen_socket,
        } => commands::serve(settings, listen, listen_socket),
        Command::Setup {
            command: Some(SetupCommand::Token),
            ..
        } => commands::setup_token(&settings),
        // clap requires --answers unless a subcommand is given.
        Command::Setup { answers, .. } => {
            commands::setup_answers(&settings, &answers.context("--answers FILE is required")?)
        }
        Command::Migrate => commands::migrate(&settings),
        Command::Audit {
            command: AuditCommand::Verify,
        } => commands::audit_verify(&settings.database_path()),
        Command::Audit {
            command: AuditCommand::Reanchor,
        } => commands::audit_reanchor(&settings),
        Command::Dns {
            command:
                DnsCommand::Serve {
                    zone_file,
                    origin,
                    listen,
                },
        } => {
            init_logging(&settings);
            runtime()?.block_on(crate::dns::standalone::serve(&zone_file, &origin, listen))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Services {
            command: ServicesCommand::BuildImages { cache, mirror },
        } => commands::build_images(&settings, cache, mirror),
        Command::Vault {
            command: VaultCommand::Rekey,
        } => commands::vault_rekey(&settings),
        Command::Admin {
            command: AdminCommand::ResetPassword { user },
        } => commands::reset_password(&settings, &user),
    }
}

/// Takes the state directory's lock for as long as the returned file lives; refuses when a
/// running picd holds it.
pub fn lock_state_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    prepare_state_dir(dir)?;
    let path = dir.join("picd.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            anyhow::bail!(
                "{} is in use by a running picd; stop it first",
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}
