//! The service store: a catalog compiled into picd, images built locally from Debian
//! packages, installed services as desired state in SQLite, and the Docker driver that runs
//! them (`catalog` and its `manifests`, `images`, `store`, `driver`, `routes`), and an
//! account in each for the people of the cell (`accounts`).

pub mod accounts;
pub mod adapters;
pub mod catalog;
pub mod container;
pub mod containers;
pub mod driver;
pub mod exposure;
pub mod images;
pub mod images_routes;
pub mod install;
pub mod listen;
pub mod manifests;
pub mod ownership;
pub mod pull;
pub mod routes;
pub mod status_routes;
pub mod store;
pub mod tls;
pub mod usage;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The store's share of the application state.
#[derive(Clone)]
pub struct ServicesState {
    pub driver: Arc<driver::DockerDriver>,
    /// One install or remove at a time: port allocation and the engine's state stay simple.
    pub busy: Arc<tokio::sync::Mutex<()>>,
    /// One image build at a time.
    pub building: Arc<tokio::sync::Mutex<()>>,
    /// Where built root filesystems are cached, and the Debian mirror ("": apt's first).
    pub image_cache: PathBuf,
    pub debian_mirror: String,
    /// The services pulled by digest instead of built (the `service_images` setting).
    pub pulled: Arc<BTreeMap<String, crate::config::PinnedImage>>,
}

impl ServicesState {
    pub fn new(
        driver: Arc<driver::DockerDriver>,
        image_cache: PathBuf,
        debian_mirror: String,
        pulled: BTreeMap<String, crate::config::PinnedImage>,
    ) -> Self {
        ServicesState {
            driver,
            busy: Arc::new(tokio::sync::Mutex::new(())),
            building: Arc::new(tokio::sync::Mutex::new(())),
            image_cache,
            debian_mirror,
            pulled: Arc::new(pulled),
        }
    }
}

/// The store's routes' state: the core and the store's share.
#[derive(Clone)]
pub struct ServicesApp {
    pub core: crate::state::Core,
    pub services: ServicesState,
}
crate::reads_through_to_core!(ServicesApp);
