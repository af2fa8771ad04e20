//! The Caddy config picd wants: the cell's domain (admin UI, API, peer portal) and every
//! extra route proxied to their backends, with TLS from the cell's CA (internal) or ACME.

use serde_json::{json, Value};

use crate::config::{Settings, TlsMode};

/// One site: a host name and the backend (`host:port`) it is proxied to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Site {
    pub host: String,
    pub upstream: String,
}

/// The PEM certificate and key Caddy serves in internal mode.
pub struct LoadedCert<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

fn route(site: &Site) -> Value {
    json!({
        "match": [{ "host": [site.host] }],
        "handle": [{
            "handler": "reverse_proxy",
            "upstreams": [{ "dial": site.upstream }],
            // picd trusts X-Forwarded-For / -Proto from this proxy only (trusted_proxies).
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

/// The whole config. The admin API stays on the configured local address.
pub fn build(settings: &Settings, sites: &[Site], cert: Option<LoadedCert<'_>>) -> Value {
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
    match (settings.tls_mode, cert) {
        (TlsMode::Internal, Some(cert)) => {
            apps["tls"] = json!({ "certificates": { "load_pem": [{ "certificate": cert.cert_pem, "key": cert.key_pem, "tags": ["picd-cell-ca"] }] } });
            // The cell's CA signs these; Caddy must not try to obtain others for them.
            apps["http"]["servers"]["picd"]["automatic_https"] =
                json!({ "skip_certificates": hosts, "disable_redirects": true });
            if !settings.caddy_http_listen.is_empty() {
                apps["http"]["servers"]["picd_http"] = https_redirect_server(settings);
            }
        }
        (TlsMode::Acme, _) => {
            // Caddy's automatic HTTPS answers HTTP-01 challenges on http_port and redirects
            // http to https there.
            let mut issuer = json!({ "module": "acme" });
            if !settings.acme_email.is_empty() {
                issuer["email"] = json!(settings.acme_email);
            }
            apps["tls"] = json!({ "automation": { "policies": [{ "subjects": hosts, "issuers": [issuer] }] } });
        }
        (TlsMode::Internal, None) => {}
    }
    json!({ "admin": { "listen": settings.caddy_admin }, "apps": apps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(tls_mode: TlsMode) -> Settings {
        Settings {
            caddy_https_listen: "127.0.0.1:8443".into(),
            caddy_http_listen: "127.0.0.1:8080".into(),
            tls_mode,
            ..Settings::default()
        }
    }

    fn sites() -> Vec<Site> {
        vec![Site {
            host: "home.example".into(),
            upstream: "127.0.0.1:3000".into(),
        }]
    }

    #[test]
    fn internal_mode_serves_the_cells_certificate_and_redirects_http_where_configured() {
        let cert = LoadedCert {
            cert_pem: "CERT",
            key_pem: "KEY",
        };
        let config = build(&settings(TlsMode::Internal), &sites(), Some(cert));
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
        assert_eq!(
            config["apps"]["tls"]["certificates"]["load_pem"][0]["certificate"],
            "CERT"
        );
    }

    #[test]
    fn the_standard_https_port_is_left_out_of_the_redirect() {
        let mut s = settings(TlsMode::Internal);
        s.caddy_https_listen = ":443".into();
        let location =
            &https_redirect_server(&s)["routes"][0]["handle"][0]["headers"]["Location"][0];
        assert_eq!(location, "https://{http.request.host}{http.request.uri}");
    }

    #[test]
    fn acme_mode_leaves_certificates_and_redirects_to_caddy() {
        let config = build(&settings(TlsMode::Acme), &sites(), None);
        let policy = &config["apps"]["tls"]["automation"]["policies"][0];
        assert_eq!(policy["subjects"], json!(["home.example"]));
        assert!(config["apps"]["http"]["servers"]["picd_http"].is_null());
        assert_eq!(config["apps"]["http"]["http_port"], 8080);
    }
}
