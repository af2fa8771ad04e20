//! The TLS step of the wizard (and the `tls` section of /api/config): how Caddy gets the
//! certificates it serves the cell with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::settings::domain_name;
use crate::error::ApiError;
use crate::validation::{object, string, Problems};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Certificates from the cell's own CA (devices install its root from the portal).
    #[default]
    Internal,
    /// Public certificates that Caddy obtains and renews from an ACME CA.
    Acme,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Internal => "internal",
            TlsMode::Acme => "acme",
        }
    }

    pub fn parse(text: &str) -> Option<TlsMode> {
        [TlsMode::Internal, TlsMode::Acme]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// The TLS settings as stored and as /api/config shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// Contact address of the ACME account; may stay empty.
    pub acme_email: String,
    /// The ACME CA's directory URL; empty means Let's Encrypt.
    pub acme_ca: String,
}

pub const TLS_FIELDS: &[&str] = &["mode", "acme_email", "acme_ca"];

/// The directory Caddy uses when `acme_ca` is empty.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Domains no public CA issues for (RFC 6761, RFC 8375, and names used only inside homes).
const PRIVATE_SUFFIXES: &[&str] = &[
    "example",
    "test",
    "invalid",
    "localhost",
    "local",
    "internal",
    "home.arpa",
    "lan",
    "home",
    "corp",
];

fn email(value: &str) -> Result<String, String> {
    let problem = || "must be an e-mail address such as admin@home.example, or empty".to_string();
    let (local, domain) = value.rsplit_once('@').ok_or_else(problem)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() && !"@<>()[]\\,;:\"".contains(c));
    if !local_ok || domain_name(domain).is_err() {
        return Err(problem());
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// An https URL with a host: the directory of an ACME CA.
fn directory_url(value: &str) -> Result<String, String> {
    let problem = || "must be the https URL of an ACME directory, or empty for Let's Encrypt";
    let rest = value
        .strip_prefix("https://")
        .ok_or_else(|| problem().to_string())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let ok = !host.is_empty()
        && value.len() <= 2048
        && value.chars().all(|c| c.is_ascii_graphic())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        Err(problem().to_string())
    }
}

/// Reads the TLS step. `domain` is the cell's domain when known: Let's Encrypt cannot issue
/// for a private one, which is refused here rather than failing later inside Caddy.
pub fn tls_step(
    value: &Value,
    prefix: &str,
    domain: Option<&str>,
) -> Result<TlsSettings, ApiError> {
    let mut p = Problems::default();
    let Some(map) = object(value, TLS_FIELDS, &mut p, prefix) else {
        return Err(p.into_error(prefix));
    };
    let field = |k: &str| format!("{prefix}{k}");
    let mut settings = TlsSettings::default();
    if let Some(mode) = string(map, "mode", &mut p, prefix) {
        match TlsMode::parse(&mode) {
            Some(mode) => settings.mode = mode,
            None => p.add(&field("mode"), "must be internal or acme"),
        }
    }
    // The ACME fields are optional: absent is the same as empty.
    let optional = |key: &str, p: &mut Problems| match map.get(key) {
        None => Some(String::new()),
        Some(_) => string(map, key, p, prefix),
    };
    if let Some(text) = optional("acme_email", &mut p).filter(|t| !t.is_empty()) {
        match email(&text) {
            Ok(address) => settings.acme_email = address,
            Err(m) => p.add(&field("acme_email"), m),
        }
    }
    if let Some(text) = optional("acme_ca", &mut p).filter(|t| !t.is_empty()) {
        match directory_url(&text) {
            Ok(url) => settings.acme_ca = url,
            Err(m) => p.add(&field("acme_ca"), m),
        }
    }
    if p.is_empty() {
        if let Some(domain) = domain {
            if let Err(m) = fits_domain(&settings, domain) {
                p.add(&field("mode"), m);
            }
        }
    }
    p.into_result(settings)
}

/// Let's Encrypt (the default ACME CA) issues only for public domains.
pub fn fits_domain(settings: &TlsSettings, domain: &str) -> Result<(), String> {
    let private = PRIVATE_SUFFIXES
        .iter()
        .any(|s| domain == *s || domain.ends_with(&format!(".{s}")));
    if settings.mode == TlsMode::Acme && settings.acme_ca.is_empty() && private {
        return Err(format!(
            "Let's Encrypt issues certificates only for public domains and {domain} is a private \
             one: choose the cell's own CA, or give the directory of your own ACME CA"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::tests::fields;
    use serde_json::json;

    #[test]
    fn internal_needs_nothing_else_and_acme_fields_are_normalised() {
        let tls = tls_step(&json!({"mode": "internal"}), "", Some("home.example")).unwrap();
        assert_eq!(tls, TlsSettings::default());
        let tls = tls_step(
            &json!({"mode": "acme", "acme_email": " Ops@Cell.Example.ORG ", "acme_ca": ""}),
            "tls.",
            Some("cell.example.org"),
        )
        .unwrap();
        assert_eq!(tls.acme_email, "Ops@cell.example.org");
        assert_eq!(tls.acme_ca, "");
    }

    #[test]
    fn bad_values_are_named_with_their_prefix() {
        let err = tls_step(
            &json!({"mode": "letsencrypt", "acme_email": "nobody", "acme_ca": "http://ca/dir", "x": 1}),
            "tls.",
            None,
        )
        .unwrap_err();
        let mut f = fields(err);
        f.sort();
        assert_eq!(f, ["tls.acme_ca", "tls.acme_email", "tls.mode", "tls.x"]);
        assert_eq!(
            fields(tls_step(&json!({"mode": 1, "acme_email": []}), "", None).unwrap_err()),
            ["mode", "acme_email"]
        );
    }

    #[test]
    fn lets_encrypt_is_refused_for_a_private_domain_but_an_own_ca_is_not() {
        let acme = json!({"mode": "acme"});
        assert_eq!(
            fields(tls_step(&acme, "", Some("home.example")).unwrap_err()),
            ["mode"]
        );
        assert_eq!(
            fields(tls_step(&acme, "", Some("nas.home.arpa")).unwrap_err()),
            ["mode"]
        );
        assert!(tls_step(&acme, "", Some("cell.example.org")).is_ok());
        let own = json!({"mode": "acme", "acme_ca": "https://ca.home.example:9000/acme/directory"});
        assert!(tls_step(&own, "", Some("home.example")).is_ok());
    }
}
