//! The setup wizard: admin account, cell identity, DNS, TLS, review. Until it completes only
//! /health, /api/setup/* and the wizard's page answer, and the wizard only to the session that
//! claimed it with the setup token (`token`, `claim`, `gate`). `picd setup --answers FILE` runs the
//! same steps with the same validation from a TOML file, and /api/config edits the result.

pub mod answers;
pub mod claim;
pub mod gate;
pub mod routes;
pub mod store;
pub mod throttle;
pub mod token;
pub mod validate;
