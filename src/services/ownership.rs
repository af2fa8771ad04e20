//! Which engine containers are this cell's: several cells may share one Docker engine, so
//! every container picd creates carries the cell's own id (`org.picd.cell`, from
//! cell::store::cell_id) on a label and in its name, and a cell lists, restores and removes
//! only its own. A container from a picd that had no cell labels is adopted by the cell
//! whose service folders it mounts.

use std::path::{Path, PathBuf};

use bollard::models::ContainerSummary;
use bollard::query_parameters::RenameContainerOptionsBuilder;
use bollard::Docker;

use super::driver::failed;
use crate::driver::DriverError;

/// The id of the cell that created the container.
pub const LABEL_CELL: &str = "org.picd.cell";
/// How much of the cell's id names its containers (the id is random: 48 bits tell cells apart).
const CELL_IN_NAME: usize = 12;

/// This cell's mark on the engine: its id, and where its services' folders are.
pub struct CellMark {
    pub cell_id: String,
    pub services_dir: PathBuf,
}

impl CellMark {
    /// The service's container name, the cell's own: container names are one namespace per
    /// engine, shared by every cell on it.
    pub fn container_name(&self, service_id: &str) -> String {
        let cell = self.cell_id.get(..CELL_IN_NAME).unwrap_or(&self.cell_id);
        format!("picd-{cell}-{service_id}")
    }

    /// Whether a container with picd's labels is this cell's: its cell label says so, or it
    /// has none (made by a picd from before cell labels, one cell per engine) and mounts this
    /// cell's service folders. Such a container is adopted (renamed, kept), so an upgrade
    /// neither loses nor duplicates it, and another cell never takes it: it mounts this
    /// cell's state directory, not the other's.
    pub fn is_mine(&self, container: &ContainerSummary) -> bool {
        let labels = container.labels.as_ref();
        match labels.and_then(|l| l.get(LABEL_CELL)) {
            Some(cell) => *cell == self.cell_id,
            None => container.mounts.iter().flatten().any(|mount| {
                mount
                    .source
                    .as_deref()
                    .is_some_and(|source| Path::new(source).starts_with(&self.services_dir))
            }),
        }
    }

    /// A kept container under another name (one from before cell labels: `picd-<service>`)
    /// takes the cell's own, so commands run in it by name and the old name is free.
    pub async fn adopt(
        &self,
        docker: &Docker,
        container: &ContainerSummary,
        service_id: &str,
    ) -> Result<(), DriverError> {
        let wanted = self.container_name(service_id);
        let mut names = container.names.iter().flatten();
        if names.any(|n| n.trim_start_matches('/') == wanted) {
            return Ok(());
        }
        let id = container.id.as_deref().unwrap_or_default();
        let options = RenameContainerOptionsBuilder::new().name(&wanted).build();
        docker.rename_container(id, options).await.map_err(failed)?;
        tracing::info!(service = service_id, container = %id, name = %wanted, "container adopted");
        Ok(())
    }
}

/// The service a container of picd's runs (its `org.picd.service` label).
pub fn service_of(container: &ContainerSummary) -> Option<&str> {
    container
        .labels
        .as_ref()?
        .get(super::driver::LABEL_SERVICE)
        .map(String::as_str)
}
