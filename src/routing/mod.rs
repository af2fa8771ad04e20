//! Routing: the cell's firewall rules, rate-limit rules on its ports (and templates that make
//! them), IP allow/block lists, each peer's policy (internet, peer to peer) and NAT for the
//! peers' subnets,
//! kept as desired state in SQLite and rendered into one nftables table (`inet picd`) that
//! picd owns and replaces atomically on every reconcile.

pub mod driver;
pub mod exit_metrics;
pub mod input;
pub mod metrics;
pub mod metrics_routes;
pub mod peer_policy;
pub mod peer_policy_routes;
pub mod rate_limits;
pub mod render;
pub mod routes;
pub mod store;
pub mod templates;

/// The table picd owns; nothing else of the host's ruleset is touched.
pub const TABLE: &str = "picd";

/// The routing routes' state: the core and the nftables driver.
#[derive(Clone)]
pub struct RoutingApp {
    pub core: crate::state::Core,
    pub routing: std::sync::Arc<driver::RoutingDriver>,
}
crate::reads_through_to_core!(RoutingApp);
