//! What each command of `picd` does once its settings are read (the parsing and the dispatch
//! are in cli.rs).

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::{
    fix_malloc_threshold, init_logging, lock_state_dir, prepare_state_dir, runtime,
    BLOCKING_TASKS_AT_EXIT,
};
use crate::config::Settings;
use crate::db::Db;

/// `picd serve`: the daemon, until a termination signal.
pub(super) fn serve(
    mut settings: Settings,
    listen: Option<SocketAddr>,
    listen_socket: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    fix_malloc_threshold();
    if let Some(listen) = listen {
        settings.listen = listen;
    }
    if let Some(path) = listen_socket {
        settings.listen_socket = path;
        settings.validate()?;
    }
    init_logging(&settings);
    prepare_state_dir(&settings.state_dir)?;
    // One picd per state directory: a second one (or `picd vault rekey`) would fight
    // over the vault identity and the interfaces. Held until the last write is done.
    let _lock = lock_state_dir(&settings.state_dir)?;
    let runtime = runtime()?;
    let served = runtime.block_on(crate::serve::run(settings));
    // A blocking task still running (a long export, a stuck driver call) must not
    // hold the exit up: requests had their grace already, and what a task wrote is
    // either committed or rolled back.
    runtime.shutdown_timeout(BLOCKING_TASKS_AT_EXIT);
    served?;
    Ok(ExitCode::SUCCESS)
}

/// `picd setup --answers FILE`: the wizard's answers from a file, by root on the machine.
pub(super) fn setup_answers(settings: &Settings, answers: &Path) -> anyhow::Result<ExitCode> {
    prepare_state_dir(&settings.state_dir)?;
    let db = Db::open(&settings.database_path())?;
    let vault = open_vault(&db, &settings.state_dir)?;
    let admin = runtime()?.block_on(crate::setup::answers::run(
        &db,
        &vault,
        answers,
        &settings.dns_listen,
    ))?;
    // Root on the machine needs no setup code; the one picd made is spent now.
    crate::setup::token::remove(&settings.state_dir)
        .context("removing the spent setup token file")?;
    println!("setup complete; admin user: {admin}");
    Ok(ExitCode::SUCCESS)
}

/// `picd migrate`: the pending migrations, each after the pre-migration copy.
pub(super) fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    prepare_state_dir(&settings.state_dir)?;
    // Opened the way serve opens it (WAL, busy timeout): a running picd is waited for.
    let db_path = settings.database_path();
    let db = Db::open_without_migrating(&db_path)?;
    let backups = crate::db::backup::backups_dir(&db_path);
    let applied = db
        .call_blocking(|conn| Ok(crate::db::migrate_at(conn, &backups)))
        .map_err(|e| anyhow::anyhow!("{e}"))??;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for version in applied {
        println!("applied migration {version:04}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `picd services build-images`: the catalog's images from Debian packages.
pub(super) fn build_images(
    settings: &Settings,
    cache: Option<PathBuf>,
    mirror: Option<String>,
) -> anyhow::Result<ExitCode> {
    prepare_state_dir(&settings.state_dir)?;
    let db = Db::open(&settings.database_path())?;
    let cache = cache.unwrap_or_else(|| settings.services_image_cache());
    let mirror = match mirror {
        Some(m) => m,
        None if !settings.debian_mirror.is_empty() => settings.debian_mirror.clone(),
        None => crate::services::images::machine_mirror()?,
    };
    let plan = crate::services::images::Plan {
        cache,
        mirror,
        pulled: crate::services::pull::pinned_for_catalog(settings)?,
    };
    let cell_id = db
        .call_blocking(|conn| Ok(crate::cell::store::cell_id(conn)?))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    runtime()?.block_on(async {
        let driver = crate::services::driver::DockerDriver::new(
            settings.docker_socket.clone(),
            &settings.state_dir,
            cell_id,
        );
        let docker = driver.connect().await?;
        let report = std::sync::Arc::new(crate::services::images::print_progress);
        crate::services::images::build_all(&db, &docker, &plan, report).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `picd vault rekey`: a new vault identity, every secret re-encrypted to it.
pub(super) fn vault_rekey(settings: &Settings) -> anyhow::Result<ExitCode> {
    // A mistyped --state-dir must not quietly become a new cell with a new vault
    // (and a "re-encrypted 1 secret(s)" that the operator takes for success).
    let identity = settings.state_dir.join("vault.key");
    anyhow::ensure!(
        identity.exists(),
        "no vault identity at {}: is --state-dir right?",
        identity.display()
    );
    let _lock = lock_state_dir(&settings.state_dir)?;
    let mut conn = rusqlite::Connection::open(settings.database_path())?;
    crate::db::migrate_at(
        &mut conn,
        &crate::db::backup::backups_dir(&settings.database_path()),
    )?;
    let (count, public_key) = crate::vault::rekey(&settings.state_dir, &mut conn)?;
    println!("re-encrypted {count} secret(s); new vault public key: {public_key}");
    Ok(ExitCode::SUCCESS)
}

/// `picd admin reset-password USER`: a new password from standard input, every session of
/// the user ended, audited.
pub(super) fn reset_password(settings: &Settings, user: &str) -> anyhow::Result<ExitCode> {
    let db = Db::open(&settings.database_path())?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    let username = user.to_lowercase();
    crate::auth::password::check_policy("password", &password, &username)
        .map_err(|e| anyhow::anyhow!(crate::setup::answers::describe(&e)))?;
    let hash = crate::auth::password::hash_blocking(&password)
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let audit = crate::audit::cli_ctx("cli");
    let ended = db
        .call_blocking(|conn| {
            audit.transact_blocking(conn, |tx, entry| {
                entry.action = "auth.admin.reset_password".into();
                entry.target_type = "user".into();
                entry.detail = serde_json::json!({ "username": username });
                crate::auth::routes::reset_password(tx, &username, &hash, entry)
            })
        })
        .map_err(|e| anyhow::anyhow!(crate::setup::answers::describe(&e)))?;
    println!("password of {username} reset; {ended} session(s) ended");
    Ok(ExitCode::SUCCESS)
}

fn open_vault(db: &Db, state_dir: &Path) -> anyhow::Result<crate::vault::Vault> {
    db.call_blocking(|conn| Ok(crate::vault::Vault::open(state_dir, conn)))
        .map_err(|e| anyhow::anyhow!("{e}"))?
}

/// `picd setup token`: the code from the state directory's file, read as picd wrote it. The
/// database (read-only, if there is one) says whether setup is already complete.
pub(super) fn setup_token(settings: &Settings) -> anyhow::Result<ExitCode> {
    let db_path = settings.database_path();
    if db_path.exists() {
        let conn = rusqlite::Connection::open_with_flags(
            &db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {}", db_path.display()))?;
        if crate::setup::store::is_complete(&conn)? {
            eprintln!("picd: setup is already complete; there is no setup code any more (sign in at /login)");
            return Ok(ExitCode::from(1));
        }
    }
    let file = crate::setup::token::path(&settings.state_dir);
    match crate::setup::token::read(&settings.state_dir)
        .with_context(|| format!("reading {}", file.display()))?
    {
        Some(token) => {
            println!("{}", token.display());
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "picd: no setup code in {} yet: start picd (`picd serve`), which makes one while setup is pending",
                file.display()
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// Verifies the chain straight from the database file, read-only, without picd running.
pub(super) fn audit_verify(path: &Path) -> anyhow::Result<ExitCode> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?;
    let report = crate::audit::chain::verify(&conn)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `picd audit reanchor`: the owner accepts the loss; the anchor moves to the head, audited.
pub(super) fn audit_reanchor(settings: &Settings) -> anyhow::Result<ExitCode> {
    let _lock = lock_state_dir(&settings.state_dir)?;
    let db = Db::open(&settings.database_path())?;
    let previous = crate::audit::anchor::read(&settings.state_dir)?;
    let audit = crate::audit::cli_ctx("cli");
    let anchor = db
        .call_blocking(|conn| {
            audit.transact_blocking(conn, |tx, entry| {
                let (seq, _) = crate::audit::anchor::head(tx)?;
                entry.action = "audit.reanchor".into();
                entry.target_type = "audit_anchor".into();
                entry.detail = serde_json::json!({
                    "previous_seq": previous.as_ref().map(|a| a.seq),
                    "database_seq": seq,
                });
                Ok(())
            })?;
            Ok(crate::audit::anchor::current(conn)?)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::audit::anchor::write(&settings.state_dir, &anchor)?;
    crate::health::write_guard::acknowledge_in(&settings.state_dir, "picd audit reanchor")?;
    println!("audit anchor moved to entry {}", anchor.seq);
    Ok(ExitCode::SUCCESS)
}
