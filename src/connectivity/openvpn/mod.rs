//! The `openvpn` connection type: a provider's .ovpn, sanitized (`parse`), kept in the vault
//! (`store`), and run by picd as one `openvpn` child process per connection (`process`),
//! with a config picd writes (`files`), what the server pushed (`push`: its resolvers, the
//! tunnel's IPv6) and the management socket for the tunnel's state (`management`). The
//! exit's tun device carries picd's exit name, so the routes, rules and the kill switch of
//! `wireguard_ext` apply to it unchanged.

pub mod body;
mod directives;
pub mod files;
pub mod management;
pub mod parse;
pub mod process;
mod push;
mod runtime;
pub mod store;

pub use parse::{Secrets, Settings};
