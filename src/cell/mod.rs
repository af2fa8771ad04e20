//! The cell's own settings, a domain of their own: its identity (`settings`), its DNS
//! settings (`dns_settings`), its TLS settings (`tls`), reading and writing them (`store`)
//! and the /api/config routes (`routes`). The setup wizard writes them once; every other
//! domain reads them from here.

pub mod dns_settings;
pub mod labels;
pub mod routes;
pub mod settings;
pub mod store;
pub mod tls;

pub use dns_settings::DnsSettings;
pub use settings::{dns_label, domain_name, CellSettings};
pub use store::{ca_scope, read_cell_config, write_cell_config};
pub use tls::TlsSettings;
