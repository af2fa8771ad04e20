//! The Docker driver: makes the engine run exactly the installed services. Containers carry
//! picd's labels, among them the cell's own id (see `ownership`), and picd lists, starts and
//! removes only containers with its labels and its cell's id, so a container someone else
//! made, or another cell's on the same engine, is never touched. Applying twice changes
//! nothing: a container is recreated only when the spec hash on its label differs from the
//! wanted one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RestartContainerOptionsBuilder, StartContainerOptions,
};
use bollard::Docker;

use super::accounts::disk::{self, Applied};
use super::accounts::store::{self as accounts, Account};
use super::catalog::{self, Manifest};
use super::listen::CellPlace;
use super::ownership::{service_of, CellMark};
use super::store::{self, BuiltImage, Desired, Installed};
use crate::db::Db;
use crate::driver::{Driver, DriverError, SubsystemStatus};

pub const LABEL_MANAGED: &str = "org.picd.managed";
pub const LABEL_SERVICE: &str = "org.picd.service";
pub const LABEL_SPEC: &str = "org.picd.spec";
const NAME: &str = "docker";

pub struct DockerDriver {
    socket: PathBuf,
    /// This cell's id and folders: which containers on the engine are its own.
    mark: CellMark,
    /// Where each service's data and config live: `<dir>/<id>/{volumes,config,archive}`.
    services_dir: PathBuf,
    /// One accounts pass at a time (a request's and the reconciler's), so two never race to
    /// archive the same folder.
    accounts_pass: std::sync::Mutex<()>,
    /// One engine pass at a time (an install's container step and the reconciler): two
    /// passes would race to create, replace or remove the same container.
    engine_pass: tokio::sync::Mutex<()>,
}

/// Seconds a restarted service has to stop before the engine kills it.
const RESTART_GRACE_SECONDS: i32 = 10;

fn unavailable(e: impl std::fmt::Display) -> DriverError {
    DriverError::Unavailable(NAME, e.to_string())
}

pub(super) fn failed(e: impl std::fmt::Display) -> DriverError {
    DriverError::Failed(NAME, e.to_string())
}

impl DockerDriver {
    pub fn new(socket: PathBuf, state_dir: &Path, cell_id: String) -> Self {
        DockerDriver {
            socket,
            mark: CellMark {
                cell_id,
                services_dir: state_dir.join("services"),
            },
            services_dir: state_dir.join("services"),
            accounts_pass: std::sync::Mutex::new(()),
            engine_pass: tokio::sync::Mutex::new(()),
        }
    }

    pub fn service_dir(&self, service_id: &str) -> PathBuf {
        self.services_dir.join(service_id)
    }

    pub fn cell_id(&self) -> &str {
        &self.mark.cell_id
    }

    /// The service's container name (see ownership::CellMark).
    pub fn container_name(&self, service_id: &str) -> String {
        self.mark.container_name(service_id)
    }

    /// A client speaking the engine's API version (Debian 12's engine speaks 1.41).
    pub async fn connect(&self) -> Result<Docker, DriverError> {
        let path = self.socket.to_string_lossy();
        let docker = Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION)
            .map_err(unavailable)?;
        let docker = docker.negotiate_version().await.map_err(unavailable)?;
        docker.ping().await.map_err(unavailable)?;
        Ok(docker)
    }

    /// This cell's containers (and only those), running or not.
    pub async fn managed_containers(
        &self,
        docker: &Docker,
    ) -> Result<Vec<ContainerSummary>, DriverError> {
        // The engine ANDs label filters, and a container without a cell label may be this
        // cell's too (CellMark::is_mine): the cell is filtered here.
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let listed = docker
            .list_containers(Some(options))
            .await
            .map_err(failed)?;
        Ok(listed
            .into_iter()
            .filter(|c| self.mark.is_mine(c))
            .collect())
    }

    /// Makes the service's account file and folders match its accounts (see accounts::disk).
    pub fn apply_accounts(
        &self,
        manifest: &Manifest,
        accounts: &[Account],
        retention_days: u32,
    ) -> std::io::Result<Applied> {
        let _one = self
            .accounts_pass
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        disk::apply(
            &self.service_dir(manifest.id),
            manifest,
            accounts,
            retention_days,
            now,
        )
    }

    /// Creates the service's data folders (kept across removes unless purged).
    pub fn create_volumes(&self, manifest: &Manifest) -> std::io::Result<()> {
        for volume in manifest.volumes {
            let path = self
                .service_dir(manifest.id)
                .join("volumes")
                .join(volume.name);
            std::fs::create_dir_all(&path)?;
            if volume.service_writes_root {
                chown_to_service_user(&path, manifest)?;
            }
        }
        Ok(())
    }

    /// Writes the service's config files (atomically) from their templates; true when a
    /// template's file changed.
    pub fn write_config(
        &self,
        manifest: &Manifest,
        installed: &Installed,
        place: Option<&CellPlace>,
    ) -> std::io::Result<bool> {
        let mut changed = false;
        let config = self.service_dir(manifest.id).join("config");
        std::fs::create_dir_all(&config)?;
        let values = super::listen::template_values(manifest, installed, place);
        for file in manifest.config {
            let path = config.join(file.name);
            // Account files are picd's to fill (see accounts); only templates are rewritten.
            if file.template.is_empty() && path.exists() {
                continue;
            }
            let text = super::listen::fill(file.template, &values);
            // Unchanged files are left alone (a server may watch its config folder).
            if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
                continue;
            }
            crate::files::write_atomically(&path, text.as_bytes(), 0o644)?;
            changed = true;
        }
        Ok(changed)
    }

    /// `apply_service` for one service on its own, in the engine's one-pass-at-a-time order.
    pub async fn apply_one(
        &self,
        docker: &Docker,
        installed: &Installed,
        image: Option<&BuiltImage>,
        place: Option<&CellPlace>,
    ) -> Result<(), DriverError> {
        let _one = self.engine_pass.lock().await;
        let containers = self.managed_containers(docker).await?;
        let existing = containers
            .iter()
            .find(|c| service_of(c) == Some(installed.service_id.as_str()));
        self.apply_service(docker, installed, image, existing, place)
            .await
    }

    /// Restarts the service's container (its stop grace, then a start), between the
    /// reconciler's passes; false when the service has no container.
    pub async fn restart_service(
        &self,
        docker: &Docker,
        service_id: &str,
    ) -> Result<bool, DriverError> {
        let _one = self.engine_pass.lock().await;
        let containers = self.managed_containers(docker).await?;
        let Some(id) = containers
            .iter()
            .find(|c| service_of(c) == Some(service_id))
            .and_then(|c| c.id.clone())
        else {
            return Ok(false);
        };
        let options = RestartContainerOptionsBuilder::new()
            .t(RESTART_GRACE_SECONDS)
            .build();
        docker
            .restart_container(&id, Some(options))
            .await
            .map_err(failed)?;
        Ok(true)
    }

    /// Makes one installed service's container exist, match its spec and run.
    async fn apply_service(
        &self,
        docker: &Docker,
        installed: &Installed,
        image: Option<&BuiltImage>,
        existing: Option<&ContainerSummary>,
        place: Option<&CellPlace>,
    ) -> Result<(), DriverError> {
        let manifest = catalog::find(&installed.service_id)
            .ok_or_else(|| failed(format!("{} is not in the catalog", installed.service_id)))?;
        // Stopped on purpose: kept so (its restart policy does not start it either).
        if installed.desired == Desired::Stopped {
            return super::container::keep_stopped(docker, existing).await;
        }
        let image = image.ok_or_else(|| {
            failed(format!(
                "{}: no image built (run `picd services build-images`)",
                manifest.id
            ))
        })?;
        super::images::verify(docker, image, &self.mark.cell_id).await?;
        self.create_volumes(manifest).map_err(failed)?;
        let config_changed = self
            .write_config(manifest, installed, place)
            .map_err(failed)?;
        // A container the engine is still removing (a remove just before) is as good as gone.
        let existing = match existing {
            Some(c) if c.state == Some(ContainerSummaryStateEnum::REMOVING) => {
                super::container::wait_removed(docker, c.id.as_deref().unwrap_or_default()).await?;
                None
            }
            other => other,
        };
        let dir = self.service_dir(manifest.id);
        // What the servers read only at their start besides the ports: where they listen and
        // the certificate they serve.
        let started_with = format!(
            "{}{}",
            super::listen::spec_part(manifest, place),
            super::tls::spec_part(&dir.join("config"))
        );
        let wanted = super::container::spec(
            &dir,
            manifest,
            installed,
            image,
            &started_with,
            &self.mark.cell_id,
        );
        let wanted_spec = wanted
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_SPEC))
            .cloned();
        if let Some(container) = existing {
            let spec = container
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_SPEC))
                .cloned();
            let id = container.id.clone().unwrap_or_default();
            if spec == wanted_spec {
                self.mark.adopt(docker, container, manifest.id).await?;
                if container.state != Some(ContainerSummaryStateEnum::RUNNING) {
                    docker
                        .start_container(&id, None::<StartContainerOptions>)
                        .await
                        .map_err(failed)?;
                } else if config_changed {
                    let name = self.container_name(manifest.id);
                    super::accounts::sessions::config_changed(docker, &name, manifest).await;
                }
                return Ok(());
            }
            super::container::remove(docker, &id).await?;
        }
        let created =
            super::container::create_named(docker, &self.container_name(manifest.id), wanted)
                .await?;
        docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
            .map_err(failed)?;
        tracing::info!(service = manifest.id, container = %created.id, "service container started");
        Ok(())
    }
}

/// The service's data runs as an unprivileged user: its data folders must be that user's.
pub fn chown_to_service_user(path: &Path, manifest: &Manifest) -> std::io::Result<()> {
    let mut ids = manifest
        .security
        .data_owner
        .split(':')
        .map(|s| s.parse::<u32>().ok());
    let (uid, gid) = (ids.next().flatten(), ids.next().flatten());
    std::os::unix::fs::chown(path, uid, gid)
}

#[async_trait]
impl Driver for DockerDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, db: &Db) -> Result<(), DriverError> {
        // Held from the read of the desired state on: a pass that read the rows before a
        // remove committed must not act on them after the remove's own pass.
        let _one = self.engine_pass.lock().await;
        let (installed, images, mut people, retention, places) = db
            .call(|conn| {
                let installed = store::installed(conn)?;
                let mut images = HashMap::new();
                let mut people = HashMap::new();
                let mut places = HashMap::new();
                for row in &installed {
                    if let Some(manifest) = catalog::find(&row.service_id) {
                        let place = super::listen::cell_place(conn, manifest)?;
                        places.insert(row.service_id.clone(), place);
                    }
                    if let Some(image) = store::image(conn, &row.service_id)? {
                        images.insert(row.service_id.clone(), image);
                    }
                    people.insert(
                        row.service_id.clone(),
                        accounts::of_service(conn, &row.service_id)?,
                    );
                }
                let retention = accounts::retention_days(conn)?;
                Ok((installed, images, people, retention, places))
            })
            .await
            .map_err(failed)?;
        // Accounts first: they are files, and hold even while the engine is down. A gone
        // account's sessions end before its folder is archived.
        let engine = self.connect().await;
        for row in &installed {
            let Some(manifest) = catalog::find(&row.service_id) else {
                continue;
            };
            let accounts = people.remove(&row.service_id).unwrap_or_default();
            if let Ok(docker) = &engine {
                let gone = disk::gone(&self.service_dir(manifest.id), manifest, &accounts);
                let name = self.container_name(manifest.id);
                super::accounts::sessions::end(docker, &name, manifest, &gone).await;
            }
            self.apply_accounts(manifest, &accounts, retention)
                .map_err(failed)?;
            if manifest.id == super::manifests::MAIL.id {
                let docker = engine.as_ref().ok();
                let container = self.container_name(manifest.id);
                let dir = self.service_dir(manifest.id);
                super::adapters::email::maps::apply(db, &dir, docker, &container)
                    .await
                    .map_err(failed)?;
            }
        }
        let docker = engine?;
        let containers = self.managed_containers(&docker).await?;
        let mut first_error = None;
        for row in &installed {
            let existing = containers
                .iter()
                .find(|c| service_of(c) == Some(row.service_id.as_str()));
            let place = places.get(&row.service_id).cloned().flatten();
            let image = images.get(&row.service_id);
            let applied = self
                .apply_service(&docker, row, image, existing, place.as_ref())
                .await;
            if let Err(e) = applied {
                tracing::warn!(service = %row.service_id, error = %e, "service not applied");
                first_error.get_or_insert(e);
            }
        }
        // picd's containers of services no longer installed (data folders are kept).
        for container in &containers {
            let wanted = installed
                .iter()
                .any(|row| service_of(container) == Some(row.service_id.as_str()));
            if !wanted {
                super::container::remove(&docker, container.id.as_deref().unwrap_or_default())
                    .await?;
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn status(&self) -> SubsystemStatus {
        match self.connect().await {
            Ok(docker) => {
                let version = docker.client_version();
                SubsystemStatus::ok(
                    NAME,
                    Some(format!(
                        "engine API {}.{}",
                        version.major_version, version.minor_version
                    )),
                )
            }
            Err(DriverError::Unavailable(_, reason) | DriverError::Failed(_, reason)) => {
                SubsystemStatus::unavailable(NAME, reason)
            }
        }
    }
}
