//! The cell's certificate authority: a root created at setup (its key a vault secret), leaf
//! certificates for names and addresses, revocation and the CRL.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rusqlite::{params, Connection, OptionalExtension};
use time::{Duration, OffsetDateTime};

use super::Vault;
use crate::error::ApiError;

/// The vault secret that holds the CA's private key (PEM).
const CA_KEY: &str = "ca.key";
const CA_VALIDITY_DAYS: i64 = 3650;
/// How long a CRL is valid; clients fetch a new one before this.
const CRL_VALIDITY_DAYS: i64 = 7;
/// Issued certificates may start a little in the past, for clocks that lag.
const BACKDATE: Duration = Duration::minutes(5);

fn ca_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("certificate authority: {e}"))
}

/// A random positive 128-bit serial, as RFC 5280 asks (unpredictable, at most 20 octets).
fn random_serial() -> Vec<u8> {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    bytes.to_vec()
}

pub fn ca_pem(conn: &Connection) -> Result<Option<String>, ApiError> {
    Ok(conn
        .query_row("SELECT cert_pem FROM ca WHERE id = 1", [], |r| r.get(0))
        .optional()?)
}

/// Creates the root CA if the cell has none yet; returns whether it did.
pub fn ensure_ca(conn: &Connection, vault: &Vault, cell_name: &str) -> Result<bool, ApiError> {
    if ca_pem(conn)?.is_some() {
        return Ok(false);
    }
    let key = KeyPair::generate().map_err(ca_error)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{cell_name} cell root CA"));
    dn.push(DnType::OrganizationName, "picd");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from(random_serial()));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
    let cert = params.self_signed(&key).map_err(ca_error)?;
    let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
    vault.put(conn, CA_KEY, key_pem.as_bytes())?;
    conn.execute(
        "INSERT INTO ca (id, cert_pem, created_at) VALUES (1, ?1, ?2)",
        params![cert.pem(), crate::time::now_rfc3339()],
    )?;
    Ok(true)
}

fn issuer_key(conn: &Connection, vault: &Vault) -> Result<(String, KeyPair), ApiError> {
    let pem = ca_pem(conn)?
        .ok_or_else(|| ApiError::conflict("no_ca", "the cell has no CA yet: complete setup"))?;
    let key_pem = vault
        .get(conn, CA_KEY)?
        .ok_or_else(|| ca_error("the CA key is missing from the vault"))?;
    let key_text = std::str::from_utf8(&key_pem).map_err(ca_error)?;
    let key = KeyPair::from_pem(key_text).map_err(ca_error)?;
    Ok((pem, key))
}

/// A new leaf certificate and its private key (PEM). The key is returned to be shown once.
pub struct Issued {
    pub serial: String,
    pub cert_pem: String,
    pub key_pem: zeroize::Zeroizing<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

pub fn issue(
    conn: &Connection,
    vault: &Vault,
    names: &[String],
    ips: &[IpAddr],
    days: u32,
) -> Result<Issued, ApiError> {
    let (ca_pem, ca_key) = issuer_key(conn, vault)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(ca_error)?;
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
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(i64::from(days));
    let key = KeyPair::generate().map_err(ca_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(ca_error)?;
    Ok(Issued {
        serial: hex::encode(serial),
        cert_pem: cert.pem(),
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
        not_before: params.not_before,
        not_after: params.not_after,
    })
}

/// Revocation reasons by their API names.
pub const REASONS: &[(&str, RevocationReason)] = &[
    ("unspecified", RevocationReason::Unspecified),
    ("key_compromise", RevocationReason::KeyCompromise),
    ("ca_compromise", RevocationReason::CaCompromise),
    ("affiliation_changed", RevocationReason::AffiliationChanged),
    ("superseded", RevocationReason::Superseded),
    (
        "cessation_of_operation",
        RevocationReason::CessationOfOperation,
    ),
    ("certificate_hold", RevocationReason::CertificateHold),
    ("privilege_withdrawn", RevocationReason::PrivilegeWithdrawn),
];

/// The CRL, freshly signed, listing every revoked certificate.
pub fn crl(conn: &Connection, vault: &Vault) -> Result<rcgen::CertificateRevocationList, ApiError> {
    let (ca_pem, ca_key) = issuer_key(conn, vault)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(ca_error)?;
    let crl_number: u64 =
        conn.query_row("SELECT crl_number FROM ca WHERE id = 1", [], |r| r.get(0))?;
    let mut revoked = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    for row in rows {
        let (serial, revoked_at, reason) = row?;
        let serial = hex::decode(&serial).map_err(ca_error)?;
        let time = crate::time::parse_rfc3339(&revoked_at)
            .ok_or_else(|| ca_error("bad revocation time"))?;
        let reason = REASONS
            .iter()
            .find(|(n, _)| Some(*n) == reason.as_deref())
            .map(|(_, r)| *r);
        revoked.push(RevokedCertParams {
            serial_number: SerialNumber::from(serial),
            revocation_time: time.replace_nanosecond(0).unwrap_or(time),
            reason_code: reason,
            invalidity_date: None,
        });
    }
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    let params = CertificateRevocationListParams {
        this_update: now - BACKDATE,
        next_update: now + Duration::days(CRL_VALIDITY_DAYS),
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(&issuer).map_err(ca_error)
}
