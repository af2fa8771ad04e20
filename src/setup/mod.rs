//! The setup wizard: admin account, cell identity, DNS, TLS, review. Until it completes only
//! /health, /api/setup/* and the wizard's page answer. `picd setup --answers FILE` runs the
//! same steps with the same validation from a TOML file, and /api/config edits the result.

pub mod answers;
pub mod config_routes;
pub mod routes;
pub mod store;
pub mod tls;
pub mod validate;
