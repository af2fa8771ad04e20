//! The cell's certificate authority: a root created at setup (its key a vault secret) that
//! may vouch only for the cell's domain and subnets (see `scope`), leaf certificates for
//! names and addresses inside them (revocation lists are in `crl`). A root made for another scope
//! (an older picd's unconstrained one, or the cell's domain or subnets changed since) is
//! replaced by a new one; the old one is retired, not deleted (see `retired`).

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rusqlite::{params, Connection, OptionalExtension};
use time::{Duration, OffsetDateTime};

pub use super::crl::crl;
use super::retired;
pub use super::scope::CaScope;
use super::Vault;
use crate::error::ApiError;

/// The vault secret that holds the CA's private key (PEM).
const CA_KEY: &str = "ca.key";
const CA_VALIDITY_DAYS: i64 = 3650;
/// Issued certificates may start a little in the past, for clocks that lag.
pub(super) const BACKDATE: Duration = Duration::minutes(5);

pub(super) fn ca_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("certificate authority: {e}"))
}

/// A random positive 128-bit serial, as RFC 5280 asks (unpredictable, at most 20 octets).
fn random_serial() -> Vec<u8> {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    bytes.to_vec()
}

pub(super) fn now_whole_seconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// A certificate's serial in lowercase hex (leading zero octets dropped, as they are only
/// DER's sign padding).
pub fn serial_of(pem: &str) -> Result<String, ApiError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(ca_error)?;
    let cert = block.parse_x509().map_err(ca_error)?;
    let raw = cert.raw_serial();
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    Ok(hex::encode(&raw[start..]))
}

pub fn ca_pem(conn: &Connection) -> Result<Option<String>, ApiError> {
    Ok(conn
        .query_row("SELECT cert_pem FROM ca WHERE id = 1", [], |r| r.get(0))
        .optional()?)
}

/// The scope the current CA was issued for; None when there is no CA or it has none.
pub fn current_scope(conn: &Connection) -> Result<Option<CaScope>, ApiError> {
    let stored: Option<Option<String>> = conn
        .query_row("SELECT name_constraints FROM ca WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(stored
        .flatten()
        .and_then(|json| serde_json::from_str(&json).ok()))
}

/// The current CA's serial (hex).
pub fn current_serial(conn: &Connection) -> Result<Option<String>, ApiError> {
    let row: Option<(String, Option<String>)> = conn
        .query_row("SELECT cert_pem, serial FROM ca WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match row {
        None => Ok(None),
        Some((_, Some(serial))) => Ok(Some(serial)),
        Some((pem, None)) => serial_of(&pem).map(Some),
    }
}

/// What `ensure_ca` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaChange {
    Unchanged,
    Created,
    /// A CA for another scope was retired (its serial) and a new one took over issuing.
    Reissued {
        retired_serial: String,
    },
}

/// Whether the cell's CA is missing or was made for another scope than `scope`.
pub fn needs_change(conn: &Connection, scope: &CaScope) -> Result<bool, ApiError> {
    Ok(ca_pem(conn)?.is_none() || current_scope(conn)?.as_ref() != Some(scope))
}

/// A self-signed root for `scope`: its PEM, key PEM and serial.
fn new_root(
    cell_name: &str,
    scope: &CaScope,
) -> Result<(String, zeroize::Zeroizing<String>, String), ApiError> {
    let key = KeyPair::generate().map_err(ca_error)?;
    let now = now_whole_seconds();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{cell_name} cell root CA"));
    dn.push(DnType::OrganizationName, "picd");
    // Each root gets a subject of its own, so a device that holds an old and a new root
    // (and a verifier that looks issuers up by subject) never confuses the two.
    dn.push(
        DnType::OrganizationalUnitName,
        format!("issued {}", crate::time::format_rfc3339(now)),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Critical (rcgen marks it so): a verifier that cannot process it must refuse the chain.
    params.name_constraints = Some(scope.name_constraints());
    let serial = random_serial();
    params.serial_number = Some(SerialNumber::from(serial.clone()));
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
    let cert = params.self_signed(&key).map_err(ca_error)?;
    let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
    Ok((cert.pem(), key_pem, hex::encode(serial)))
}

/// Makes sure the cell has a CA for `scope`: creates one if there is none, replaces one made
/// for another scope (retiring it), and drops retired CAs whose certificates have all expired.
pub fn ensure_ca(
    conn: &Connection,
    vault: &Vault,
    cell_name: &str,
    scope: &CaScope,
) -> Result<CaChange, ApiError> {
    let change = if ca_pem(conn)?.is_none() {
        let (pem, key_pem, serial) = new_root(cell_name, scope)?;
        vault.put(conn, CA_KEY, key_pem.as_bytes())?;
        conn.execute(
            "INSERT INTO ca (id, cert_pem, created_at, name_constraints, serial) VALUES (1, ?1, ?2, ?3, ?4)",
            params![pem, crate::time::now_rfc3339(), scope_json(scope), serial],
        )?;
        CaChange::Created
    } else if current_scope(conn)?.as_ref() == Some(scope) {
        CaChange::Unchanged
    } else {
        let retired_serial = retired::retire_current(conn, vault, CA_KEY)?;
        let (pem, key_pem, serial) = new_root(cell_name, scope)?;
        vault.put(conn, CA_KEY, key_pem.as_bytes())?;
        conn.execute(
            "UPDATE ca SET cert_pem = ?1, created_at = ?2, name_constraints = ?3, serial = ?4, crl_number = 1 WHERE id = 1",
            params![pem, crate::time::now_rfc3339(), scope_json(scope), serial],
        )?;
        CaChange::Reissued { retired_serial }
    };
    retired::drop_expired(conn, vault)?;
    Ok(change)
}

fn scope_json(scope: &CaScope) -> String {
    serde_json::to_string(scope).unwrap_or_default()
}

/// A signing CA: its certificate, key, serial and CRL number.
pub(super) struct Signer {
    pub(super) pem: String,
    pub(super) key: KeyPair,
    pub(super) serial: String,
    pub(super) crl_number: u64,
}

fn key_from_vault(conn: &Connection, vault: &Vault, secret: &str) -> Result<KeyPair, ApiError> {
    let key_pem = vault
        .get(conn, secret)?
        .ok_or_else(|| ca_error("the CA key is missing from the vault"))?;
    let key_text = std::str::from_utf8(&key_pem).map_err(ca_error)?;
    KeyPair::from_pem(key_text).map_err(ca_error)
}

/// The current CA, or with `serial` that CA (current or retired).
pub(super) fn signer(
    conn: &Connection,
    vault: &Vault,
    serial: Option<&str>,
) -> Result<Signer, ApiError> {
    let current = current_serial(conn)?
        .ok_or_else(|| ApiError::conflict("no_ca", "the cell has no CA yet: complete setup"))?;
    if serial.is_none_or(|s| s == current) {
        let (pem, crl_number) = conn.query_row(
            "SELECT cert_pem, crl_number FROM ca WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        return Ok(Signer {
            pem,
            key: key_from_vault(conn, vault, CA_KEY)?,
            serial: current,
            crl_number,
        });
    }
    let serial = serial.unwrap_or_default();
    let ca = retired::get(conn, serial)?.ok_or_else(|| ApiError::not_found("CA"))?;
    Ok(Signer {
        key: key_from_vault(conn, vault, &ca.key_secret)?,
        pem: ca.cert_pem,
        serial: ca.serial,
        crl_number: ca.crl_number,
    })
}

/// A new leaf certificate and its private key (PEM). The key is returned to be shown once.
pub struct Issued {
    pub serial: String,
    pub issuer_serial: String,
    pub cert_pem: String,
    pub key_pem: zeroize::Zeroizing<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Refuses names and addresses the CA may not vouch for, each under its own field
/// (`names[i]`, `ips[i]`), so the client sees which ones.
fn check_scope(conn: &Connection, names: &[String], ips: &[IpAddr]) -> Result<(), ApiError> {
    let scope = current_scope(conn)?
        .ok_or_else(|| ca_error("the CA has no name constraints (restart picd to re-issue it)"))?;
    let mut fields = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if !scope.permits_name(name) {
            fields.push((
                format!("names[{i}]"),
                format!(
                    "'{name}' is outside the cell's domain: the cell's CA vouches only for {} and names under it",
                    scope.domain
                ),
            ));
        }
    }
    for (i, ip) in ips.iter().enumerate() {
        if !scope.permits_ip(*ip) {
            fields.push((
                format!("ips[{i}]"),
                format!(
                    "{ip} is outside the cell's subnets: the cell's CA vouches only for {} and {}",
                    scope.subnet_v4, scope.subnet_v6
                ),
            ));
        }
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid { fields })
    }
}

/// The names of `names` the CA may vouch for (for callers that issue for a mixed list).
pub fn names_in_scope(conn: &Connection, names: &[String]) -> Result<Vec<String>, ApiError> {
    let Some(scope) = current_scope(conn)? else {
        return Ok(Vec::new());
    };
    Ok(names
        .iter()
        .filter(|n| scope.permits_name(n))
        .cloned()
        .collect())
}

/// Whether `cert_pem` was signed by the current CA (a certificate from a retired CA must be
/// replaced: devices that re-imported only the new root no longer trust it).
pub fn issued_by_current(conn: &Connection, cert_pem: &str) -> Result<bool, ApiError> {
    let Some(ca) = ca_pem(conn)? else {
        return Ok(false);
    };
    let subject_of = |pem: &str, issuer: bool| -> Option<Vec<u8>> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
        let cert = block.parse_x509().ok()?;
        let name = if issuer {
            cert.issuer()
        } else {
            cert.subject()
        };
        Some(name.as_raw().to_vec())
    };
    Ok(subject_of(cert_pem, true).is_some_and(|i| Some(i) == subject_of(&ca, false)))
}

pub fn issue(
    conn: &Connection,
    vault: &Vault,
    names: &[String],
    ips: &[IpAddr],
    days: u32,
) -> Result<Issued, ApiError> {
    check_scope(conn, names, ips)?;
    let ca = signer(conn, vault, None)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.pem, &ca.key).map_err(ca_error)?;
    let mut params = CertificateParams::default();
    for name in names {
        let dns = name
            .clone()
            .try_into()
            .map_err(|_| ApiError::invalid("names", format!("'{name}' is not a valid DNS name")))?;
        params.subject_alt_names.push(SanType::DnsName(dns));
    }
    params
        .subject_alt_names
        .extend(ips.iter().copied().map(SanType::IpAddress));
    let common_name = names
        .first()
        .cloned()
        .or_else(|| ips.first().map(IpAddr::to_string))
        .unwrap_or_default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let serial = random_serial();
    params.serial_number = Some(SerialNumber::from(serial.clone()));
    let now = now_whole_seconds();
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(i64::from(days));
    let key = KeyPair::generate().map_err(ca_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(ca_error)?;
    Ok(Issued {
        serial: hex::encode(serial),
        issuer_serial: ca.serial,
        cert_pem: cert.pem(),
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
        not_before: params.not_before,
        not_after: params.not_after,
    })
}
