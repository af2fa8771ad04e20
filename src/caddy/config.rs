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
    let mut server = json!({
        "listen": [settings.caddy_https_listen],
        "routes": routes,
        "logs": {}
    });
    let mut apps = json!({ "http": { "servers": { "picd": server.take() } } });
    match (settings.tls_mode, cert) {
        (TlsMode::Internal, Some(cert)) => {
            apps["tls"] = json!({ "certificates": { "load_pem": [{ "certificate": cert.cert_pem, "key": cert.key_pem, "tags": ["picd-cell-ca"] }] } });
            // The cell's CA signs these; Caddy must not try to obtain others for them.
            apps["http"]["servers"]["picd"]["automatic_https"] =
                json!({ "skip_certificates": hosts, "disable_redirects": true });
        }
        (TlsMode::Acme, _) => {
            // Caddy's automatic HTTPS answers HTTP-01 challenges and redirects http to https.
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
