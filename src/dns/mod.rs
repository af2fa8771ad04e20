//! The embedded DNS server: authoritative for the cell's zones, split horizon (peers see
//! internal names, the world sees public ones), recursive for peers through the configured
//! upstream resolvers. Zones and records live in SQLite; the server answers from an in-memory
//! snapshot that is rebuilt and swapped atomically after every change.

pub mod acme_routes;
pub mod answer;
pub mod cache;
pub mod driver;
pub mod forward;
mod import;
mod index;
mod input;
pub mod limits;
mod marker;
pub mod names;
pub mod routes;
mod rrl;
pub mod secondary_routes;
pub mod server;
pub mod snapshot;
pub mod standalone;
pub mod stats;
pub mod store;
pub mod tools;
pub mod transfer;
pub mod tsig;
mod tsig_answer;
pub mod tsig_routes;
mod udp;
mod upstream;
mod view;
pub mod zone;
pub mod zonefile;

/// The DNS routes' state: the core and the DNS driver.
#[derive(Clone)]
pub struct DnsApp {
    pub core: crate::state::Core,
    pub dns: std::sync::Arc<driver::DnsDriver>,
}
crate::reads_through_to_core!(DnsApp);
