//! Routing: the cell's firewall rules, IP allow/block lists and NAT for the peers' subnets,
//! kept as desired state in SQLite and rendered into one nftables table (`inet picd`) that
//! picd owns and replaces atomically on every reconcile.

pub mod driver;
pub mod input;
pub mod render;
pub mod routes;
pub mod store;

/// The table picd owns; nothing else of the host's ruleset is touched.
pub const TABLE: &str = "picd";
