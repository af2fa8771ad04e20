//! `picd serve`: open the store, start the drivers and background loops, answer HTTP. Every
//! long-running task is joined in one `select!`: if one ends, picd ends, and systemd restarts it.

mod socket;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::compose::{AppState, DomainDrivers};
use crate::config::{CookieSecure, Settings};
use crate::db::Db;

/// How often expired sessions are swept from the store.
const SESSION_SWEEP: Duration = Duration::from_secs(600);
/// The least time between the end of one reconcile pass and the start of the next.
const RECONCILE_SPACING: Duration = Duration::from_millis(50);
/// After SIGTERM, how long requests in flight get to finish before picd stops anyway: a
/// stalled upload or a client that never reads must not keep it running (systemd would
/// otherwise wait out its own stop timeout and kill it).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the operator is told when `cookie_secure = "never"` while Caddy serves the cell.
const PLAIN_COOKIES_WARNING: &str = "cookie_secure = \"never\" while listen_socket is set: \
    over https the session cookie is then plain `picd_session`, which a sibling subdomain can \
    plant; set cookie_secure to \"auto\"";

/// Security: behind Caddy (`listen_socket`), browsers arrive over https, where the session
/// cookie should be `__Host-picd_session` (Secure, host-only): a site on a sibling subdomain
/// cannot set a cookie of that name. `never` gives that up, and silently would be worse.
fn warn_about_plain_cookies_behind_caddy(settings: &Settings) {
    if settings.listen_socket().is_some() && settings.cookie_secure == CookieSecure::Never {
        tracing::warn!("{PLAIN_COOKIES_WARNING}");
    }
}

/// Runs the daemon until SIGTERM or Ctrl-C. The caller holds the state directory's lock.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let db = Db::open(&settings.database_path())?;
    // Before anything writes: what a damaged disk took must be found on the database as it is.
    let storage = crate::health::storage::check_at_start(&db, &settings.state_dir).await?;
    let vault = db
        .call_blocking(|conn| Ok(crate::vault::Vault::open(&settings.state_dir, conn)))
        .map_err(|e| anyhow::anyhow!("{e}"))??;
    ensure_ca(&db, &vault).await?;
    publish_cell_name(&db).await?;
    crate::setup::token::prepare_at_start(&db, &settings.state_dir).await?;
    let wireguard = Arc::new(crate::wireguard::driver::WireGuardDriver::new(
        &settings,
        db.clone(),
        vault.clone(),
    ));
    let dns = Arc::new(crate::dns::driver::DnsDriver::new(
        settings.dns_listen.clone(),
        crate::dns::limits::DnsLimits::from_settings(&settings),
        &settings.wireguard_interface,
        vault.clone(),
    ));
    let caddy = Arc::new(crate::caddy::driver::CaddyDriver::new(
        Arc::new(settings.clone()),
        vault.clone(),
    )?);
    let routing = Arc::new(crate::routing::driver::RoutingDriver::new(&settings));
    // The firewall goes up before the first pass brings WireGuard's peers in; a failure shows
    // in /api/status and is retried by every pass.
    let _ = crate::driver::Driver::reconcile(routing.as_ref(), &db).await;
    let connectivity = Arc::new(crate::connectivity::driver::ConnectivityDriver::new(
        &settings,
        vault.clone(),
    ));
    // One Docker driver: the reconciler's passes and the store's routes share its lock.
    let cell_id = db
        .call_blocking(|conn| Ok(crate::cell::store::cell_id(conn)?))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let docker = Arc::new(crate::services::driver::DockerDriver::new(
        settings.docker_socket.clone(),
        &settings.state_dir,
        cell_id,
    ));
    let drivers = crate::health::probes::default_drivers(
        wireguard.clone(),
        dns.clone(),
        caddy.clone(),
        routing.clone(),
        docker.clone(),
    )
    .with(connectivity.clone())
    .with(Arc::new(crate::health::storage::StorageStatus(
        storage.clone(),
    )));
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    // Held until `run` returns: dropping it removes the socket file.
    let (socket, _socket_file) = match settings.listen_socket() {
        Some(path) => {
            let (listener, file) = socket::bind(path)?;
            (Some(listener), Some(file))
        }
        None => (None, None),
    };
    warn_about_plain_cookies_behind_caddy(&settings);
    let guard = crate::health::write_guard::WriteGuard::at_start(&storage, &settings.state_dir)?;
    let services = crate::services::ServicesState::new(
        docker,
        settings.services_image_cache(),
        settings.debian_mirror.clone(),
        crate::services::pull::pinned_for_catalog(&settings)?,
    );
    let core = crate::state::Core::new(db, vault, Arc::new(settings), drivers);
    let app = AppState::new(
        core,
        DomainDrivers {
            wireguard,
            dns,
            caddy,
            routing,
            connectivity,
            services,
            storage: Arc::new(guard),
        },
    );
    tracing::info!(
        listen = %listener.local_addr()?,
        listen_socket = %app.settings.listen_socket.display(),
        state_dir = %app.settings.state_dir.display(),
        "picd is listening"
    );
    // A restart re-applies every driver's desired state.
    app.request_reconcile();

    // Each loop in a task of its own, so one loop's blocking work (a reconcile pass reading a
    // stopped device) never holds up another, nor the signal that stops picd. The first to
    // end ends picd; the others are cancelled before the shutdown below.
    let mut loops = tokio::task::JoinSet::new();
    let a = app.clone();
    loops.spawn(async move {
        serve_until_stopped(listener, socket, a)
            .await
            .context("HTTP server")
    });
    let health = app.health.clone();
    loops.spawn(async move {
        crate::health::run_health_checks(health)
            .await
            .context("health checks ended")
    });
    let services = app.services.clone();
    loops.spawn(async move {
        crate::services::tls::run_certificate_keeper(services)
            .await
            .context("service certificate keeper ended")
    });
    let core = app.core.clone();
    loops.spawn(async move {
        run_session_sweeper(core)
            .await
            .context("session sweeper ended")
    });
    let core = app.core.clone();
    loops.spawn(async move { run_reconciler(core).await.context("reconciler ended") });
    let exits = app.connectivity.clone();
    loops.spawn(async move {
        crate::connectivity::passes::run_exit_health(exits)
            .await
            .context("exit health checks ended")
    });
    let wireguard = app.wireguard.wireguard.clone();
    loops.spawn(async move { wireguard.run_device_watchdog().await.context("WireGuard") });
    let (core, degraded) = (app.core.clone(), storage.degraded());
    loops.spawn(async move {
        run_storage_keepers(core, degraded)
            .await
            .context("storage keepers ended")
    });
    let first = loops.join_next().await.context("no loop ran")?;
    loops.shutdown().await;
    first.context("a loop panicked")??;
    // The exits' processes (openvpn, redsocks, tor) are picd's children: they stop with it, and
    // their peers stay closed.
    let exits = &app.connectivity.connectivity;
    let stopping = std::time::Instant::now();
    exits.stop_proxies().await;
    exits.stop_exits().await;
    exits.stop_tor().await;
    tracing::info!(
        ms = stopping.elapsed().as_millis() as u64,
        "the exits' processes stopped"
    );
    if !storage.degraded() {
        crate::audit::anchor::anchor_at_shutdown(&app.db, &app.settings.state_dir).await;
    }
    tracing::info!("picd stopped");
    Ok(())
}

/// A cell set up before its names were published publishes its own name at start-up
/// (the migration that made the names table published the peers' names).
async fn publish_cell_name(db: &Db) -> anyhow::Result<()> {
    db.write(|tx| match crate::cell::read_cell_config(tx)? {
        Some(config) => crate::cell::store::publish_own_name(tx, &config.cell),
        None => Ok(()),
    })
    .await
    .map_err(|e| anyhow::anyhow!("publishing the cell's name: {e}"))
}

/// A cell set up before it had a CA or a WireGuard key gets them at start-up (the readers
/// that need them do not write). A CA made for another scope than the cell's domain and
/// subnets (an older picd's, with no name constraints) is re-issued here, audited.
async fn ensure_ca(db: &Db, vault: &crate::vault::Vault) -> anyhow::Result<()> {
    use crate::vault::ca::{self, CaChange};
    let config = db
        .call(|conn| crate::cell::read_cell_config(conn))
        .await
        .map_err(|e| anyhow::anyhow!("reading the cell's settings: {e}"))?;
    let Some(config) = config else {
        return Ok(());
    };
    let scope = crate::cell::ca_scope(&config.cell);
    let needed = {
        let scope = scope.clone();
        db.call(move |conn| ca::needs_change(conn, &scope))
            .await
            .map_err(|e| anyhow::anyhow!("reading the cell's CA: {e}"))?
    };
    let vault = vault.clone();
    let name = config.cell.name.clone();
    let change = if needed {
        crate::audit::cli_ctx("picd")
            .transact(db, move |tx, entry| {
                let change = ca::ensure_ca(tx, &vault, &name, &scope)?;
                entry.action = "vault.ca.reissue".into();
                entry.target_type = "ca".into();
                entry.target_id = ca::current_serial(tx)?.unwrap_or_default();
                entry.detail = match &change {
                    CaChange::Reissued { retired_serial } => json!({
                        "reason": "the CA's name constraints did not match the cell's domain and subnets",
                        "retired_serial": retired_serial,
                        "name_constraints": scope,
                    }),
                    _ => json!({ "created": true, "name_constraints": scope }),
                };
                crate::wireguard::ensure_server_key(tx, &vault)?;
                Ok(change)
            })
            .await
    } else {
        db.write(move |tx| {
            let change = ca::ensure_ca(tx, &vault, &name, &scope)?;
            crate::wireguard::ensure_server_key(tx, &vault)?;
            Ok(change)
        })
        .await
    }
    .map_err(|e| anyhow::anyhow!("creating the cell's CA: {e}"))?;
    match change {
        CaChange::Created => tracing::info!("created the cell's root CA"),
        CaChange::Reissued { retired_serial } => tracing::warn!(
            %retired_serial,
            "re-issued the cell's root CA with name constraints; devices must import the new CA certificate"
        ),
        CaChange::Unchanged => {}
    }
    Ok(())
}

/// Keeps the audit anchor at the chain's head and takes the periodic snapshots; neither runs
/// while storage is degraded (the old anchor and the good snapshots are what the owner needs).
async fn run_storage_keepers(app: crate::state::Core, degraded: bool) -> anyhow::Result<()> {
    if degraded {
        return std::future::pending().await;
    }
    let state_dir = app.settings.state_dir.clone();
    let anchor = crate::audit::anchor::run_anchor_keeper(app.db.clone(), state_dir.clone());
    let hours = app.settings.snapshot_interval_hours;
    let snapshots = async {
        if hours == 0 {
            return std::future::pending().await;
        }
        let interval = Duration::from_secs(hours.saturating_mul(3600));
        crate::health::storage::run_snapshots(app.db.clone(), state_dir.clone(), interval).await
    };
    tokio::select! {
        ended = anchor => ended.context("audit anchor"),
        ended = snapshots => ended.context("snapshots"),
    }
}

/// Re-applies every driver's desired state periodically (retiring expired peers and
/// repairing whatever was changed behind picd's back) and whenever a change asks for it.
async fn run_reconciler(app: crate::state::Core) -> anyhow::Result<()> {
    let period = Duration::from_secs(app.settings.reconcile_interval_seconds.max(1));
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        // A request that arrives while a pass runs is kept (Notify stores one permit), so
        // changes made during a pass get a pass of their own, and a burst gets just one.
        tokio::select! {
            _ = interval.tick() => {}
            _ = app.reconcile_requested() => {}
        }
        app.drivers.reconcile_all(&app.db).await;
        // A burst of changes (a script, a bulk import) is applied by a pass every
        // RECONCILE_SPACING rather than one pass per change; a lone change is applied at once.
        tokio::time::sleep(RECONCILE_SPACING).await;
    }
}

async fn run_session_sweeper(app: crate::state::Core) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(SESSION_SWEEP);
    loop {
        interval.tick().await;
        match app
            .db
            .write(|tx| Ok(crate::auth::session_store::delete_expired(tx)?))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired sessions"),
        }
    }
}

/// Serves HTTP (on TCP and the socket) until SIGTERM or Ctrl-C, then lets requests in flight
/// on either finish for at most SHUTDOWN_GRACE.
async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    socket: Option<tokio::net::UnixListener>,
    app: AppState,
) -> std::io::Result<()> {
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown_signal().await;
        tracing::info!("stopping: no new connections");
        let _ = stopping.send(());
    };
    let grace_over = async move {
        if stopped.await.is_err() {
            // The server ended on its own (an error): nothing to time.
            return std::future::pending().await;
        }
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = crate::app::serve(listener, socket, app, signal) => served,
        () = grace_over => {
            tracing::warn!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "requests still in flight after the grace period; stopping without them"
            );
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
