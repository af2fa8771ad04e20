//! Where the wizard stands, its draft, and the cell's settings once it has completed.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::auth::store::{self as users, Role, User};
use crate::cell::{ca_scope, write_cell_config, TlsSettings};
use crate::cell::{CellSettings, DnsSettings};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Admin,
    Cell,
    Dns,
    Tls,
    Review,
}

pub const STEPS: [Step; 5] = [Step::Admin, Step::Cell, Step::Dns, Step::Tls, Step::Review];

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Admin => "admin",
            Step::Cell => "cell",
            Step::Dns => "dns",
            Step::Tls => "tls",
            Step::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        STEPS.into_iter().find(|step| step.as_str() == s)
    }

    pub fn next(self) -> Step {
        match self {
            Step::Admin => Step::Cell,
            Step::Cell => Step::Dns,
            Step::Dns => Step::Tls,
            Step::Tls | Step::Review => Step::Review,
        }
    }
}

/// The admin account as the draft keeps it: the password is already hashed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminDraft {
    pub username: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Draft {
    pub admin: Option<AdminDraft>,
    pub cell: Option<CellSettings>,
    pub dns: Option<DnsSettings>,
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

pub struct SetupState {
    pub current_step: Step,
    pub draft: Draft,
    pub completed_at: Option<String>,
}

pub fn load(conn: &Connection) -> Result<SetupState, ApiError> {
    let (step, draft, completed_at): (String, String, Option<String>) = conn
        .prepare_cached("SELECT current_step, draft, completed_at FROM setup_state WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(SetupState {
        current_step: Step::parse(&step).unwrap_or(Step::Admin),
        draft: serde_json::from_str(&draft).unwrap_or_default(),
        completed_at,
    })
}

pub fn save(conn: &Connection, step: Step, draft: &Draft) -> Result<(), ApiError> {
    let draft = serde_json::to_string(draft).map_err(|e| ApiError::Internal(e.into()))?;
    conn.execute(
        "UPDATE setup_state SET current_step = ?1, draft = ?2 WHERE id = 1",
        params![step.as_str(), draft],
    )?;
    Ok(())
}

pub fn is_complete(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT completed_at IS NOT NULL FROM setup_state WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

pub fn already_complete() -> ApiError {
    ApiError::conflict("setup_complete", "setup has already been completed")
}

/// The hashes of the setup token and of the claiming session's secret, while setup is pending.
pub struct ClaimState {
    pub complete: bool,
    pub token_hash: Option<String>,
    pub claim_hash: Option<String>,
}

pub fn claim_state(conn: &Connection) -> rusqlite::Result<ClaimState> {
    conn.prepare_cached(
        "SELECT completed_at IS NOT NULL, token_hash, claim_hash FROM setup_state WHERE id = 1",
    )?
    .query_row([], |r| {
        Ok(ClaimState {
            complete: r.get(0)?,
            token_hash: r.get(1)?,
            claim_hash: r.get(2)?,
        })
    })
}

/// Records the token picd made at start. A new token (the file was lost) also ends any claim
/// made with the old one.
pub fn set_token_hash(conn: &Connection, token_hash: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE setup_state SET claim_hash = CASE WHEN token_hash IS ?1 THEN claim_hash END,
             token_hash = ?1
         WHERE id = 1 AND completed_at IS NULL",
        [token_hash],
    )?;
    Ok(())
}

/// Binds the wizard to the session holding the secret of `claim_hash`; returns whether it
/// took the wizard from another session.
pub fn set_claim_hash(conn: &Connection, claim_hash: &str) -> rusqlite::Result<bool> {
    let previous: Option<String> = conn
        .prepare_cached("SELECT claim_hash FROM setup_state WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    conn.execute(
        "UPDATE setup_state SET claim_hash = ?1 WHERE id = 1",
        [claim_hash],
    )?;
    Ok(previous.is_some())
}

/// Finishes the wizard inside the caller's transaction: the admin user, the cell's settings,
/// the cell's root CA and the completion mark, all or nothing.
pub fn complete(
    conn: &Connection,
    draft: &Draft,
    vault: &crate::vault::Vault,
) -> Result<User, ApiError> {
    if is_complete(conn)? {
        return Err(already_complete());
    }
    let (Some(admin), Some(cell), Some(dns)) = (&draft.admin, &draft.cell, &draft.dns) else {
        return Err(ApiError::conflict(
            "setup_incomplete",
            "every wizard step must be submitted first",
        ));
    };
    // A TLS step from before the domain was changed is checked against the final domain.
    let tls = draft.tls.clone().unwrap_or_default();
    crate::cell::tls::fits_domain(&tls, &cell.domain)
        .map_err(|m| ApiError::invalid("tls.mode", m))?;
    let user = users::create(conn, &admin.username, Role::Admin, &admin.password_hash)?;
    write_cell_config(conn, cell, dns, &tls)?;
    crate::vault::ca::ensure_ca(conn, vault, &cell.name, &ca_scope(cell))?;
    crate::wireguard::ensure_server_key(conn, vault)?;
    // The draft held the admin's password hash; it is in the users table now. The setup
    // token and the claim are spent: nothing can claim or drive the wizard any more.
    conn.execute(
        "UPDATE setup_state SET current_step = 'review', draft = '{}', completed_at = ?1,
             token_hash = NULL, claim_hash = NULL
         WHERE id = 1",
        [crate::time::now_rfc3339()],
    )?;
    Ok(user)
}
