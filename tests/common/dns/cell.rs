//! A picd with a completed wizard and its DNS server on a port the test chose, with the API
//! calls the DNS tests repeat.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{ask_until, dig, free_dns_port, PROPAGATION, SERVER_START};
use crate::common::client::{json_of, TestClient};
use crate::common::fixtures::CELL_DOMAIN;
use crate::common::process::{Picd, PicdOptions};

/// A picd with a completed wizard whose DNS server listens on 127.0.0.1 (and, if asked, on
/// more addresses) at one high port.
pub struct DnsCell {
    pub picd: Picd,
    pub admin: TestClient,
    pub port: u16,
}

impl DnsCell {
    pub async fn start() -> DnsCell {
        DnsCell::start_on(&[]).await
    }

    /// Also listens on `extra` addresses (e.g. the root side of a namespace's veth pair).
    pub async fn start_on(extra: &[IpAddr]) -> DnsCell {
        DnsCell::start_with(extra, &[]).await
    }

    /// Listens on `extra` addresses too, with `settings` (`PICD_*` variables) set.
    pub async fn start_with(extra: &[IpAddr], settings: &[(&str, &str)]) -> DnsCell {
        let port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let listen: Vec<String> = std::iter::once(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .chain(extra.iter().copied())
            .map(|ip| SocketAddr::new(ip, port).to_string())
            .collect();
        let mut options = PicdOptions::default().with_dns_listen(&listen.join(","));
        options.env.extend(
            settings
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string())),
        );
        let picd = Picd::start_with(options).await;
        let admin = picd.client();
        admin.run_setup().await;
        let cell = DnsCell { picd, admin, port };
        let server = cell.dns();
        ask_until(
            SERVER_START,
            "picd's DNS server answering for the cell's zone",
            || dig(server, CELL_DOMAIN, "SOA", &["+norec"]),
            |r| r.status == "NOERROR",
        )
        .await;
        cell
    }

    /// The DNS server on loopback (a peer's view).
    pub fn dns(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    pub fn dns_at(&self, ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, self.port)
    }

    /// The cell zone's serial as the DNS server gives it.
    pub fn serial(&self) -> u32 {
        let reply = dig(self.dns(), CELL_DOMAIN, "SOA", &["+norec"]);
        reply
            .soa_serial()
            .unwrap_or_else(|| panic!("no SOA serial:\n{}", reply.text))
    }

    /// Waits until the server's serial for `zone` is above `old`; returns it.
    pub async fn serial_above(&self, zone: &str, old: u32) -> u32 {
        let server = self.dns();
        ask_until(
            PROPAGATION,
            &format!("{zone} serial above {old}"),
            || dig(server, zone, "SOA", &["+norec"]),
            |r| r.soa_serial().is_some_and(|s| s > old),
        )
        .await
        .soa_serial()
        .expect("serial")
    }

    pub async fn send(&self, method: Method, path: &str, body: &Value) -> (StatusCode, Value) {
        json_of(self.admin.send_json(method, path, body).await).await
    }

    /// Adds a record through the API and asserts 201; returns the stored record.
    pub async fn add_record(&self, zone: &str, record: Value) -> Value {
        let path = format!("/api/dns/zones/{zone}/records");
        let (status, body) = self.send(Method::POST, &path, &record).await;
        assert_eq!(status, StatusCode::CREATED, "adding {record}: {body}");
        body
    }

    /// Every record of a zone as the API lists them.
    pub async fn records(&self, zone: &str) -> Vec<Value> {
        let (status, body) = self
            .admin
            .get_json(&format!("/api/dns/zones/{zone}/records?limit=1000"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["records"].as_array().cloned().unwrap_or_default()
    }

    pub async fn create_zone(&self, zone: &str) {
        let (status, body) = self
            .send(Method::POST, "/api/dns/zones", &json!({ "name": zone }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating {zone}: {body}");
    }

    /// The audit entries of one action, newest first.
    pub async fn audit(&self, action: &str) -> Vec<Value> {
        let (status, body) = self
            .admin
            .get_json(&format!("/api/audit?action={action}&limit=100"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["entries"].as_array().cloned().unwrap_or_default()
    }

    pub async fn create_peer(&self, name: &str) -> Value {
        let (status, body) = self
            .send(Method::POST, "/api/peers", &json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating peer {name}: {body}");
        body
    }
}

/// `(name, type, ttl, data)` of API records, sorted: what "the same records" means.
pub fn record_set(records: &[Value]) -> Vec<(String, String, u64, String)> {
    let mut set: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["type"].as_str().unwrap_or_default().to_string(),
                r["ttl"].as_u64().unwrap_or_default(),
                r["data"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    set.sort();
    set
}
