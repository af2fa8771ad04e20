//! The Caddy config picd wants: the cell's domain (admin UI, API, peer portal) and every
//! extra route proxied to their backends, with TLS from the cell's CA (internal) or ACME.

use serde_json::{json, Value};

use super::admin::{AdminAddress, SOCKET_ORIGIN};
use super::tls_files::TlsPaths;
use crate::cell::tls::{TlsMode, TlsSettings};
use crate::config::Settings;

/// One site: a host name and the backend it is proxied to (`host:port`, or Caddy's
/// `unix//PATH` for picd's own socket).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Site {
    pub host: String,
    pub upstream: String,
}

fn route(site: &Site) -> Value {
    json!({
        "match": [{ "host": [site.host] }],
        "handle": [{
            "handler": "reverse_proxy",
            "upstreams": [{ "dial": site.upstream }],
            // picd believes X-Forwarded-For / -Proto only on its socket (listen_socket).
            "headers": { "request": { "set": { "X-Forwarded-Proto": ["{http.request.scheme}"] } } }
        }],
        "terminal": true
    })
}

/// The port of a listen address (`host:port`, `:port` or `[v6]:port`).
fn port_of(listen: &str) -> Option<u16> {
    listen.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// Plain http on `caddy_http_listen` answers with a redirect to the same host over https.
/// Built explicitly (rather than by Caddy's automatic redirects, which listen on every
/// interface) so that the http side listens exactly where the settings say.
fn https_redirect_server(settings: &Settings) -> Value {
    let port = match port_of(&settings.caddy_https_listen) {
        Some(443) | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    json!({
        "listen": [settings.caddy_http_listen],
        "routes": [{
            "handle": [{
                "handler": "static_response",
                "status_code": 308,
                "headers": { "Location": [format!("https://{{http.request.host}}{port}{{http.request.uri}}")] }
            }]
        }],
        "automatic_https": { "disable": true }
    })
}

/// The host of a listen address, empty for all interfaces (`:port`).
fn host_of(listen: &str) -> &str {
    listen
        .rsplit_once(':')
        .map_or("", |(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
}

/// Caddy's ACME issuer. The HTTP-01 and TLS-ALPN-01 challenges are answered by the servers
/// picd configures, on their addresses; a port other than 80 or 443 works when the router
/// forwards the standard port to it.
fn acme_issuer(settings: &Settings, tls: &TlsSettings) -> Value {
    let mut issuer = json!({ "module": "acme" });
    if !tls.acme_email.is_empty() {
        issuer["email"] = json!(tls.acme_email);
    }
    if !tls.acme_ca.is_empty() {
        issuer["ca"] = json!(tls.acme_ca);
    }
    let mut challenges = json!({});
    if let Some(port) = port_of(&settings.caddy_http_listen) {
        challenges["http"] = json!({ "alternate_port": port });
    }
    if let Some(port) = port_of(&settings.caddy_https_listen) {
        challenges["tls-alpn"] = json!({ "alternate_port": port });
    }
    let host = host_of(&settings.caddy_http_listen);
    if !host.is_empty() {
        challenges["bind_host"] = json!(host);
    }
    issuer["challenges"] = challenges;
    issuer
}

/// Caddy's admin API where picd reaches it. On a socket Caddy refuses every request unless
/// `origins` names the Host picd sends; the socket's permissions are the access control.
fn admin(address: &AdminAddress) -> Value {
    match address {
        AdminAddress::Tcp(_) => json!({ "listen": address.caddy_listen() }),
        AdminAddress::Socket(_) => {
            json!({ "listen": address.caddy_listen(), "origins": [SOCKET_ORIGIN] })
        }
    }
}

/// The whole config. The admin API stays where picd reaches it; in internal mode Caddy
/// reads the certificate and key from the files at `cert` (never inline: the running config
/// can be read back through the admin API).
pub fn build(
    settings: &Settings,
    admin_address: &AdminAddress,
    tls: &TlsSettings,
    sites: &[Site],
    cert: Option<&TlsPaths>,
) -> Value {
    let hosts: Vec<&str> = sites.iter().map(|s| s.host.as_str()).collect();
    let security_headers = json!({
        "handler": "headers",
        // picd sets the other security headers itself; HSTS belongs to the https front.
        "response": { "set": { "Strict-Transport-Security": ["max-age=31536000"] } }
    });
    let mut routes = vec![json!({ "handle": [security_headers] })];
    routes.extend(sites.iter().map(route));
    let server = json!({
        "listen": [settings.caddy_https_listen],
        "routes": routes,
        "logs": {}
    });
    let mut http = json!({ "servers": { "picd": server } });
    // Caddy's automatic HTTPS (ACME challenges, redirects) works on these ports.
    if let Some(port) = port_of(&settings.caddy_http_listen) {
        http["http_port"] = json!(port);
    }
    if let Some(port) = port_of(&settings.caddy_https_listen) {
        http["https_port"] = json!(port);
    }
    let mut apps = json!({ "http": http });
    let automatic_https = match (tls.mode, cert) {
        (TlsMode::Internal, Some(cert)) => {
            apps["tls"] = json!({ "certificates": { "load_files": [{
                "certificate": cert.certificate,
                "key": cert.key,
                "tags": ["picd-cell-ca"]
            }] } });
            // The cell's CA signs these; Caddy must not try to obtain others for them.
            json!({ "skip_certificates": hosts, "disable_redirects": true })
        }
        (TlsMode::Acme, _) => {
            apps["tls"] = json!({ "automation": { "policies": [{ "subjects": hosts, "issuers": [acme_issuer(settings, tls)] }] } });
            // Caddy obtains the certificates; the redirects are picd's own (below), so that
            // nothing listens beyond the configured addresses.
            json!({ "disable_redirects": true })
        }
        (TlsMode::Internal, None) => Value::Null,
    };
    if !automatic_https.is_null() {
        apps["http"]["servers"]["picd"]["automatic_https"] = automatic_https;
        if !settings.caddy_http_listen.is_empty() {
            apps["http"]["servers"]["picd_http"] = https_redirect_server(settings);
        }
    }
    json!({ "admin": admin(admin_address), "apps": apps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            caddy_https_listen: "127.0.0.1:8443".into(),
            caddy_http_listen: "127.0.0.1:8080".into(),
            ..Settings::default()
        }
    }

    fn tls(mode: TlsMode) -> TlsSettings {
        TlsSettings {
            mode,
            ..TlsSettings::default()
        }
    }

    fn sites() -> Vec<Site> {
        vec![Site {
            host: "home.example".into(),
            upstream: "127.0.0.1:3000".into(),
        }]
    }

    fn tcp_admin() -> AdminAddress {
        AdminAddress::Tcp("127.0.0.1:2019".into())
    }

    #[test]
    fn internal_mode_serves_the_cells_certificate_and_redirects_http_where_configured() {
        let cert = TlsPaths {
            certificate: "/run/picd/tls/cell-1.crt".into(),
            key: "/run/picd/tls/cell-1.key".into(),
        };
        let config = build(
            &settings(),
            &tcp_admin(),
            &tls(TlsMode::Internal),
            &sites(),
            Some(&cert),
        );
        let http = &config["apps"]["http"];
        assert_eq!(http["servers"]["picd"]["listen"][0], "127.0.0.1:8443");
        assert_eq!(http["servers"]["picd_http"]["listen"][0], "127.0.0.1:8080");
        let redirect = &http["servers"]["picd_http"]["routes"][0]["handle"][0];
        assert_eq!(redirect["status_code"], 308);
        assert_eq!(
            redirect["headers"]["Location"][0],
            "https://{http.request.host}:8443{http.request.uri}"
        );
        assert_eq!(
            (http["http_port"].clone(), http["https_port"].clone()),
            (json!(8080), json!(8443))
        );
        let loaded = &config["apps"]["tls"]["certificates"]["load_files"][0];
        assert_eq!(loaded["certificate"], "/run/picd/tls/cell-1.crt");
        assert_eq!(loaded["key"], "/run/picd/tls/cell-1.key");
        assert_eq!(config["admin"], json!({ "listen": "127.0.0.1:2019" }));
    }

    #[test]
    fn an_admin_socket_allows_the_host_picd_sends() {
        let socket = AdminAddress::Socket("/run/caddy-admin/admin.sock".into());
        let config = build(&settings(), &socket, &tls(TlsMode::Acme), &sites(), None);
        assert_eq!(
            config["admin"],
            json!({ "listen": "unix//run/caddy-admin/admin.sock", "origins": ["localhost"] })
        );
    }

    #[test]
    fn the_standard_https_port_is_left_out_of_the_redirect() {
        let mut s = settings();
        s.caddy_https_listen = ":443".into();
        let location =
            &https_redirect_server(&s)["routes"][0]["handle"][0]["headers"]["Location"][0];
        assert_eq!(location, "https://{http.request.host}{http.request.uri}");
    }

    #[test]
    fn acme_mode_lets_caddy_obtain_certificates_answering_challenges_where_configured() {
        let tls = TlsSettings {
            mode: TlsMode::Acme,
            acme_email: "ops@home.example".into(),
            acme_ca: "https://ca.home.example/acme/directory".into(),
        };
        let config = build(&settings(), &tcp_admin(), &tls, &sites(), None);
        let policy = &config["apps"]["tls"]["automation"]["policies"][0];
        assert_eq!(policy["subjects"], json!(["home.example"]));
        let issuer = &policy["issuers"][0];
        assert_eq!(issuer["ca"], "https://ca.home.example/acme/directory");
        assert_eq!(issuer["email"], "ops@home.example");
        assert_eq!(issuer["challenges"]["http"]["alternate_port"], 8080);
        assert_eq!(issuer["challenges"]["tls-alpn"]["alternate_port"], 8443);
        assert_eq!(issuer["challenges"]["bind_host"], "127.0.0.1");
        let http = &config["apps"]["http"];
        assert_eq!(http["servers"]["picd_http"]["listen"][0], "127.0.0.1:8080");
        assert_eq!(
            http["servers"]["picd"]["automatic_https"],
            json!({ "disable_redirects": true })
        );
    }

    #[test]
    fn lets_encrypt_is_caddys_default_and_all_interfaces_need_no_bind_host() {
        let s = Settings {
            caddy_https_listen: ":443".into(),
            caddy_http_listen: "[::]:80".into(),
            ..Settings::default()
        };
        let issuer = acme_issuer(&s, &tls(TlsMode::Acme));
        assert!(issuer.get("ca").is_none() && issuer.get("email").is_none());
        assert_eq!(issuer["challenges"]["bind_host"], "::");
        assert_eq!(host_of(":443"), "");
    }
}
