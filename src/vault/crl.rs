//! The certificate revocation lists: one per CA, the current one's and each retired one's,
//! listing the certificates that CA signed and that were revoked, signed afresh on request.

use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, RevokedCertParams, SerialNumber,
};
use rusqlite::{params, Connection};
use time::Duration;

use super::ca::{ca_error, current_serial, now_whole_seconds, signer, BACKDATE};
use super::Vault;
use crate::error::ApiError;

/// How long a CRL is valid; clients fetch a new one before this.
const CRL_VALIDITY_DAYS: i64 = 7;

/// The CRL's authority key identifier must be the CA's own subject key identifier, or
/// verifiers do not match the CRL to the CA (an older root's was computed differently).
fn key_id_method(ca_pem: &str) -> KeyIdMethod {
    let ski = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes())
        .ok()
        .and_then(|(_, block)| {
            let cert = block.parse_x509().ok()?;
            let ski = cert
                .iter_extensions()
                .find_map(|ext| match ext.parsed_extension() {
                    x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                        Some(id.0.to_vec())
                    }
                    _ => None,
                });
            ski
        });
    ski.map_or(KeyIdMethod::Sha256, KeyIdMethod::PreSpecified)
}

/// The CRL of the current CA (or, with `ca_serial`, of a retired one), freshly signed,
/// listing every certificate that CA issued and that was revoked.
pub fn crl(
    conn: &Connection,
    vault: &Vault,
    ca_serial: Option<&str>,
) -> Result<rcgen::CertificateRevocationList, ApiError> {
    let ca = signer(conn, vault, ca_serial)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.pem, &ca.key).map_err(ca_error)?;
    let current = current_serial(conn)?.unwrap_or_default();
    let mut revoked = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT serial, revoked_at, revocation_reason FROM certificates
         WHERE revoked_at IS NOT NULL AND COALESCE(issuer_serial, ?1) = ?2 ORDER BY revoked_at",
    )?;
    let rows = stmt.query_map(params![current, ca.serial], |r| {
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
        revoked.push(RevokedCertParams {
            serial_number: SerialNumber::from(serial),
            revocation_time: time.replace_nanosecond(0).unwrap_or(time),
            reason_code: reason.as_deref().and_then(super::reasons::code),
            invalidity_date: None,
        });
    }
    let now = now_whole_seconds();
    let params = CertificateRevocationListParams {
        this_update: now - BACKDATE,
        next_update: now + Duration::days(CRL_VALIDITY_DAYS),
        crl_number: SerialNumber::from(ca.crl_number),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: key_id_method(&ca.pem),
    };
    params.signed_by(&issuer).map_err(ca_error)
}
