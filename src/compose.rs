//! The composition: every domain's state, built once from the core and the drivers, and the
//! `FromRef` that hands each handler its own domain's state. Adding a domain is one field
//! here, one line in `sub_states!`, and its routes in `app.rs`.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::state::Core;
use crate::{auth, caddy, connectivity, dns, health, peers, routing, services, setup, wireguard};

/// What the router holds: the core and each domain's state.
#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub auth: auth::AuthApp,
    pub setup: setup::SetupApp,
    pub health: health::HealthApp,
    pub peers: peers::PeersApp,
    pub wireguard: wireguard::WireGuardApp,
    pub dns: dns::DnsApp,
    pub caddy: caddy::CaddyApp,
    pub routing: routing::RoutingApp,
    pub connectivity: connectivity::ConnectivityApp,
    pub services: services::ServicesApp,
}

/// The drivers the domains' states hold (the same ones the core's driver list runs).
pub struct DomainDrivers {
    pub wireguard: Arc<wireguard::driver::WireGuardDriver>,
    pub dns: Arc<dns::driver::DnsDriver>,
    pub caddy: Arc<caddy::driver::CaddyDriver>,
    pub routing: Arc<routing::driver::RoutingDriver>,
    pub connectivity: Arc<connectivity::driver::ConnectivityDriver>,
    pub services: services::ServicesState,
    pub storage: Arc<health::write_guard::WriteGuard>,
}

impl AppState {
    pub fn new(core: Core, drivers: DomainDrivers) -> Self {
        let setup_state = setup::SetupState::default();
        let auth = auth::AuthApp::new(core.clone(), setup_state.clone());
        AppState {
            setup: setup::SetupApp {
                core: core.clone(),
                setup: setup_state.clone(),
            },
            health: health::HealthApp {
                core: core.clone(),
                setup: setup_state,
                storage: drivers.storage,
            },
            peers: peers::PeersApp {
                core: core.clone(),
                wireguard: drivers.wireguard.clone(),
                dns: drivers.dns.clone(),
                token_throttle: auth.token_throttle.clone(),
            },
            wireguard: wireguard::WireGuardApp {
                core: core.clone(),
                wireguard: drivers.wireguard,
            },
            dns: dns::DnsApp {
                core: core.clone(),
                dns: drivers.dns,
            },
            caddy: caddy::CaddyApp {
                core: core.clone(),
                caddy: drivers.caddy,
            },
            routing: routing::RoutingApp {
                core: core.clone(),
                routing: drivers.routing.clone(),
            },
            connectivity: connectivity::ConnectivityApp {
                core: core.clone(),
                connectivity: drivers.connectivity,
                routing: drivers.routing,
            },
            services: services::ServicesApp {
                core: core.clone(),
                services: drivers.services,
            },
            auth,
            core,
        }
    }
}

crate::reads_through_to_core!(AppState);

macro_rules! sub_states {
    ($($field:ident: $state:ty),* $(,)?) => {
        $(impl FromRef<AppState> for $state {
            fn from_ref(app: &AppState) -> $state {
                app.$field.clone()
            }
        })*
    };
}

sub_states!(
    core: Core,
    auth: auth::AuthApp,
    setup: setup::SetupApp,
    health: health::HealthApp,
    peers: peers::PeersApp,
    wireguard: wireguard::WireGuardApp,
    dns: dns::DnsApp,
    caddy: caddy::CaddyApp,
    routing: routing::RoutingApp,
    connectivity: connectivity::ConnectivityApp,
    services: services::ServicesApp,
);
