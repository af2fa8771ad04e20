//! /api/vault/*: the age public key, the CA certificate, issuing and revoking certificates,
//! the CRL, and trusted cells' keys. Admin only (sessions or admin-scoped API keys).

use std::net::IpAddr;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ca, store};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::cell::{dns_label, domain_name};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::Core;

const MAX_SANS: usize = 100;
/// The longest validity browsers accept for a server certificate, in days.
const MAX_DAYS: u32 = 825;
const DEFAULT_DAYS: u32 = 365;

pub async fn age_public_key(_admin: AdminUser, State(app): State<Core>) -> Json<Value> {
    Json(json!({ "public_key": app.vault.public_key() }))
}

pub async fn ca_certificate(_admin: AdminUser, State(app): State<Core>) -> ApiResult<Response> {
    ca_download(&app).await
}

/// The same download for peers: their devices install it to trust the cell's services.
pub async fn peer_ca_certificate(
    _peer: crate::auth::PeerUser,
    State(app): State<Core>,
) -> ApiResult<Response> {
    ca_download(&app).await
}

async fn ca_download(app: &Core) -> ApiResult<Response> {
    let pem = app
        .db
        .call(|conn| ca::ca_pem(conn))
        .await?
        .ok_or_else(|| ApiError::not_found("CA certificate"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"picd-cell-ca.crt\"",
            ),
        ],
        pem,
    )
        .into_response())
}

pub async fn list_certs(_admin: AdminUser, State(app): State<Core>) -> ApiResult<Json<Value>> {
    let certs = app.db.call(|conn| Ok(store::list_certs(conn)?)).await?;
    Ok(Json(json!({ "certificates": certs })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    ips: Vec<String>,
    days: Option<u32>,
}

/// A certificate name: a host name (one label or more) or a wildcard `*.domain`.
fn certificate_name(name: &str) -> Result<String, String> {
    let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let rest = lower.strip_prefix("*.").unwrap_or(&lower);
    let ok = if rest.contains('.') {
        domain_name(rest).is_ok()
    } else {
        dns_label(rest).is_ok()
    };
    // A wildcard needs a domain under it: `*.example.com`, never `*.com`.
    let bare_wildcard = lower.starts_with("*.") && !rest.contains('.');
    if ok && !bare_wildcard {
        Ok(lower)
    } else {
        Err(format!("'{name}' is not a host name (or *.domain)"))
    }
}

fn validate_issue(body: IssueRequest) -> Result<(Vec<String>, Vec<IpAddr>, u32), ApiError> {
    let mut fields = Vec::new();
    let mut names = Vec::new();
    for (i, name) in body.names.iter().enumerate() {
        match certificate_name(name) {
            Ok(n) => names.push(n),
            Err(m) => fields.push((format!("names[{i}]"), m)),
        }
    }
    let mut ips = Vec::new();
    for (i, ip) in body.ips.iter().enumerate() {
        match ip.trim().parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => fields.push((format!("ips[{i}]"), format!("'{ip}' is not an IP address"))),
        }
    }
    let total = body.names.len() + body.ips.len();
    if total == 0 {
        fields.push((
            "names".into(),
            "give at least one name or IP address".into(),
        ));
    } else if total > MAX_SANS {
        fields.push((
            "names".into(),
            format!("at most {MAX_SANS} names and addresses together"),
        ));
    }
    let days = body.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        fields.push(("days".into(), format!("must be from 1 to {MAX_DAYS}")));
    }
    if fields.is_empty() {
        Ok((names, ips, days))
    } else {
        Err(ApiError::Invalid { fields })
    }
}

pub async fn issue_cert(
    _admin: AdminUser,
    State(app): State<Core>,
    audit: AuditCtx,
    Json(body): Json<IssueRequest>,
) -> ApiResult<Json<Value>> {
    let (names, ips, days) = match validate_issue(body) {
        Ok(v) => v,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "certificate", "", json!({}), err)
                .await)
        }
    };
    let vault = app.vault.clone();
    let (record, key_pem) = audit
        .transact(&app.db, move |tx, entry| {
            entry.action = "vault.certs.issue".into();
            let issued = ca::issue(tx, &vault, &names, &ips, days)?;
            let record = store::CertRecord {
                id: uuid::Uuid::now_v7().to_string(),
                serial: issued.serial,
                names,
                ips: ips.iter().map(IpAddr::to_string).collect(),
                not_before: crate::time::format_rfc3339(issued.not_before),
                not_after: crate::time::format_rfc3339(issued.not_after),
                cert_pem: issued.cert_pem,
                created_at: crate::time::now_rfc3339(),
                revoked_at: None,
                revocation_reason: None,
                issuer_serial: Some(issued.issuer_serial),
            };
            store::insert_cert(tx, &record)?;
            entry.target_type = "certificate".into();
            entry.target_id = record.id.clone();
            entry.detail = json!({ "serial": record.serial, "names": record.names, "ips": record.ips, "days": days });
            Ok((record, issued.key_pem))
        })
        .await?;
    // The private key is in this response and nowhere else: picd does not keep it.
    let mut body = json!(record);
    body["key_pem"] = json!(key_pem.as_str());
    Ok(Json(body))
}

/// A JSON body that may be absent (no body, or an empty one, means the defaults).
fn optional_json<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", "malformed JSON")
        } else {
            ApiError::Unprocessable {
                message: "unexpected fields or types; expected {\"reason\": \"...\"}".into(),
            }
        }
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    reason: Option<String>,
}

pub async fn revoke_cert(
    _admin: AdminUser,
    State(app): State<Core>,
    audit: AuditCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let request: RevokeRequest = match optional_json(&body) {
        Ok(r) => r,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "certificate", &id, json!({}), err)
                .await)
        }
    };
    let given = request.reason.unwrap_or_else(|| "unspecified".into());
    let Some(reason) = super::reasons::parse(&given) else {
        let err = ApiError::invalid(
            "reason",
            format!("must be one of {}", super::reasons::accepted()),
        );
        return Err(audit
            .refuse(&app.db, "certificate", &id, json!({}), err)
            .await);
    };
    let cert = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "certificate".into();
            entry.target_id = id.clone();
            entry.detail = json!({ "reason": reason });
            store::revoke_cert(tx, &id, reason)
        })
        .await?;
    Ok(Json(json!(cert)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlQuery {
    format: Option<String>,
    /// The serial (hex) of a retired CA, for the CRL of the certificates it signed.
    ca: Option<String>,
}

/// A CA serial as the API shows them: lowercase hex, at most 20 octets (RFC 5280).
fn ca_serial(given: &str) -> Result<String, ApiError> {
    let serial = given.trim().to_ascii_lowercase();
    if serial.is_empty() || serial.len() > 40 || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(
            "ca",
            "must be a CA serial in hex, as GET /api/vault/cas lists them",
        ));
    }
    Ok(serial)
}

pub async fn crl(
    _admin: AdminUser,
    State(app): State<Core>,
    Query(query): Query<CrlQuery>,
) -> ApiResult<Response> {
    let der = match query.format.as_deref() {
        None | Some("pem") => false,
        Some("der") => true,
        Some(_) => return Err(ApiError::invalid("format", "must be pem or der")),
    };
    let serial = query.ca.as_deref().map(ca_serial).transpose()?;
    let vault = app.vault.clone();
    let crl = app
        .db
        .call(move |conn| ca::crl(conn, &vault, serial.as_deref()))
        .await?;
    if der {
        Ok((
            [(header::CONTENT_TYPE, "application/pkix-crl")],
            crl.der().to_vec(),
        )
            .into_response())
    } else {
        let pem = crl
            .pem()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("CRL: {e}")))?;
        Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
    }
}

/// The current CA (its serial and scope) and the retired ones still kept, each with the date
/// until which it is kept (the last expiry among the certificates it signed).
pub async fn list_cas(_admin: AdminUser, State(app): State<Core>) -> ApiResult<Json<Value>> {
    let body = app
        .db
        .call(|conn| {
            let current = json!({
                "serial": ca::current_serial(conn)?,
                "cert_pem": ca::ca_pem(conn)?,
                "name_constraints": ca::current_scope(conn)?,
            });
            let mut retired = Vec::new();
            for old in super::retired::list(conn)? {
                let mut entry = json!(old);
                entry["keep_until"] = json!(super::retired::keep_until(conn, &old.serial)?);
                retired.push(entry);
            }
            Ok(json!({ "current": current, "retired": retired }))
        })
        .await?;
    Ok(Json(body))
}

pub async fn list_trust_keys(_admin: AdminUser, State(app): State<Core>) -> ApiResult<Json<Value>> {
    let keys = app
        .db
        .call(|conn| Ok(store::list_trust_keys(conn)?))
        .await?;
    Ok(Json(json!({ "trust_keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustKeyRequest {
    name: String,
    kind: String,
    public_key: String,
}

fn validate_trust_key(body: &TrustKeyRequest) -> Result<String, ApiError> {
    let mut fields = Vec::new();
    let name = body.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        fields.push((
            "name".to_string(),
            "must be 1 to 64 printable characters".to_string(),
        ));
    }
    let key = body.public_key.trim().to_string();
    match body.kind.as_str() {
        "age" => {
            if age::x25519::Recipient::from_str(&key).is_err() {
                fields.push((
                    "public_key".into(),
                    "is not an age public key (age1...)".into(),
                ));
            }
        }
        "wireguard" => {
            let decoded = base64::engine::general_purpose::STANDARD.decode(&key);
            if !decoded.is_ok_and(|k| k.len() == 32) {
                fields.push((
                    "public_key".into(),
                    "is not a WireGuard public key (32 bytes, base64)".into(),
                ));
            }
        }
        _ => fields.push(("kind".into(), "must be age or wireguard".into())),
    }
    if fields.is_empty() {
        Ok(key)
    } else {
        Err(ApiError::Invalid { fields })
    }
}

pub async fn add_trust_key(
    _admin: AdminUser,
    State(app): State<Core>,
    audit: AuditCtx,
    Json(body): Json<TrustKeyRequest>,
) -> ApiResult<Json<Value>> {
    let public_key = match validate_trust_key(&body) {
        Ok(k) => k,
        Err(err) => return Err(audit.refuse(&app.db, "trust_key", "", json!({}), err).await),
    };
    let key = audit
        .transact(&app.db, move |tx, entry| {
            let key = store::insert_trust_key(tx, body.name.trim(), &body.kind, &public_key)?;
            entry.target_type = "trust_key".into();
            entry.target_id = key.id.clone();
            entry.detail =
                json!({ "name": key.name, "kind": key.kind, "public_key": key.public_key });
            Ok(key)
        })
        .await?;
    Ok(Json(json!(key)))
}

pub async fn delete_trust_key(
    _admin: AdminUser,
    State(app): State<Core>,
    audit: AuditCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "trust_key".into();
            entry.target_id = id.clone();
            store::delete_trust_key(tx, &id)
        })
        .await?;
    Ok(Json(json!({ "deleted": true })))
}
