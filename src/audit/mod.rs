//! The tamper-evident audit log. Every mutating request leaves exactly one entry: handlers
//! write theirs in the same transaction as their change (`AuditCtx::transact`), and the
//! `record_unaudited` layer writes one for every mutating request that ended without one
//! (refused by auth, CSRF, the throttle, a bad body, an unknown route).

pub mod anchor;
pub mod chain;
mod csv;
pub mod routes;
pub mod store;

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rusqlite::{Transaction, TransactionBehavior};
use serde_json::{json, Value};

use crate::client::ClientInfo;
use crate::db::Db;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::Core;

/// Per-request audit state shared between the layer, the auth layer and the handler.
#[derive(Clone)]
pub struct AuditSlot(Arc<Mutex<SlotState>>);

struct SlotState {
    actor: String,
    recorded: bool,
    /// Set when the request must leave an entry even if it is a read, with what to add to it.
    required: Option<Value>,
}

impl AuditSlot {
    fn new() -> Self {
        AuditSlot(Arc::new(Mutex::new(SlotState {
            actor: "anonymous".into(),
            recorded: false,
            required: None,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Names who is acting (set once the session or the API key is known).
    pub fn set_actor(&self, actor: impl Into<String>) {
        self.lock().actor = actor.into();
    }

    pub fn actor(&self) -> String {
        self.lock().actor.clone()
    }

    fn mark_recorded(&self) {
        self.lock().recorded = true;
    }

    /// This refused request leaves an entry even if it is a read, with `detail` added: the
    /// first bad token of an address in a throttle window.
    pub fn require_entry(&self, detail: Value) {
        self.lock().required = Some(detail);
    }

    /// This refused request is covered by an entry written earlier (a bad token in a window
    /// already audited): a flood must not grow the log at its own rate.
    pub fn covered_by_earlier_entry(&self) {
        self.mark_recorded();
    }

    fn is_recorded(&self) -> bool {
        self.lock().recorded
    }
}

/// The entry a handler fills in; action and target default from the matched route.
#[derive(Debug, Clone)]
pub struct Entry {
    pub actor: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub detail: Value,
}

/// The request's audit context, for handlers that change state.
#[derive(Clone)]
pub struct AuditCtx {
    slot: AuditSlot,
    client_addr: String,
    defaults: RouteAction,
}

/// Who or what an offline change (the CLI) is attributed to.
pub fn cli_ctx(actor: &str) -> AuditCtx {
    let slot = AuditSlot::new();
    slot.set_actor(actor);
    AuditCtx {
        slot,
        client_addr: "local".into(),
        defaults: RouteAction {
            action: "cli".into(),
            target_type: "cell".into(),
            target_id: String::new(),
        },
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let slot = parts
            .extensions
            .get::<AuditSlot>()
            .cloned()
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("audit layer missing on a mutating route"))
            })?;
        Ok(AuditCtx {
            slot,
            client_addr: client_addr(parts.extensions.get::<ClientInfo>()),
            defaults: route_action(
                &parts.method,
                parts
                    .extensions
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str),
                parts.uri.path(),
            ),
        })
    }
}

impl AuditCtx {
    pub fn set_actor(&self, actor: impl Into<String>) {
        self.slot.set_actor(actor);
    }

    /// Leaves this request without an entry, on purpose: for the refusals of a throttled burst
    /// after the first one of its window was recorded, so that a flood of guesses cannot flood
    /// the log.
    pub fn waive(&self) {
        self.slot.mark_recorded();
    }

    /// See `AuditSlot::covered_by_earlier_entry`.
    pub fn covered_by_earlier_entry(&self) {
        self.slot.covered_by_earlier_entry();
    }

    /// Runs `f` in one write transaction and appends its audit entry to the same transaction.
    /// When `f` fails the change is rolled back and a failure entry (with the same action and
    /// target, and the error code) is written instead. Either way: exactly one entry.
    pub async fn transact<T, F>(&self, db: &Db, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &mut Entry) -> ApiResult<T> + Send + 'static,
    {
        let ctx = self.clone();
        // The outer result says whether the entry was written (the write is kept), the inner
        // one is the handler's.
        let result = db.write(move |tx| ctx.change_and_entry(tx, f)).await?;
        self.slot.mark_recorded();
        result
    }

    /// `transact` for the CLI, which has the store to itself and no writer thread to share.
    pub fn transact_blocking<T, F>(&self, conn: &mut rusqlite::Connection, f: F) -> ApiResult<T>
    where
        F: FnOnce(&Transaction<'_>, &mut Entry) -> ApiResult<T>,
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = self.change_and_entry(&tx, f)?;
        tx.commit()?;
        self.slot.mark_recorded();
        result
    }

    /// Runs `f` in a savepoint of `tx` and appends the entry: a success entry beside its
    /// change, or, when `f` failed, a failure entry alone (the savepoint rolled the change
    /// back). Errs only when the entry itself could not be written.
    fn change_and_entry<T, F>(&self, tx: &Transaction<'_>, f: F) -> Result<ApiResult<T>, ApiError>
    where
        F: FnOnce(&Transaction<'_>, &mut Entry) -> ApiResult<T>,
    {
        let mut entry = Entry {
            actor: None,
            action: self.defaults.action.clone(),
            target_type: self.defaults.target_type.clone(),
            target_id: self.defaults.target_id.clone(),
            detail: json!({}),
        };
        match crate::db::in_savepoint(tx, |tx| f(tx, &mut entry))? {
            Ok(value) => {
                self.append(tx, &entry, "success")?;
                Ok(Ok(value))
            }
            Err(err) => {
                if let Value::Object(map) = &mut entry.detail {
                    map.insert("error".into(), json!(err.code()));
                }
                self.append(tx, &entry, result_for(err.status()))?;
                Ok(Err(err))
            }
        }
    }

    /// Records a refused request (the entry carries the error's code) and hands the error
    /// back for the handler to return.
    pub async fn refuse(
        &self,
        db: &Db,
        target_type: &str,
        target_id: &str,
        detail: Value,
        err: ApiError,
    ) -> ApiError {
        let mut detail = detail;
        if let Value::Object(map) = &mut detail {
            map.insert("error".into(), json!(err.code()));
        }
        let entry = Entry {
            actor: None,
            action: self.defaults.action.clone(),
            target_type: target_type.to_string(),
            target_id: target_id.to_string(),
            detail,
        };
        self.record(db, entry, result_for(err.status())).await;
        err
    }

    /// Writes `entry` alone, for a request that changed nothing.
    async fn record(&self, db: &Db, entry: Entry, result: &'static str) {
        let ctx = self.clone();
        match db
            .write(move |tx| Ok(ctx.append(tx, &entry, result)?))
            .await
        {
            Ok(_) => self.slot.mark_recorded(),
            Err(e) => {
                tracing::error!(error = %e, "could not write the audit entry of a refused request")
            }
        }
    }

    fn append(&self, tx: &Transaction<'_>, entry: &Entry, result: &str) -> rusqlite::Result<i64> {
        let actor = entry.actor.clone().unwrap_or_else(|| self.slot.actor());
        let detail = entry.detail.to_string();
        chain::append(
            tx,
            &chain::NewEntry {
                time: &crate::time::now_rfc3339(),
                actor: &actor,
                action: &entry.action,
                target_type: &entry.target_type,
                target_id: &entry.target_id,
                result,
                client_addr: &self.client_addr,
                detail: &detail,
            },
        )
    }
}

fn result_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=399 => "success",
        401 | 403 | 429 => "denied",
        _ => "failure",
    }
}

fn client_addr(info: Option<&ClientInfo>) -> String {
    info.map(|c| c.addr.to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn is_mutating(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The layer that guarantees one entry per mutating request: it hands the request an
/// `AuditSlot`, and if nothing recorded an entry by the time the response is ready, it records
/// one from the response's status and error code. Refused reads by signed-in users are
/// recorded too.
pub async fn record_unaudited(State(app): State<Core>, mut req: Request, next: Next) -> Response {
    let mutating = is_mutating(req.method());
    let slot = AuditSlot::new();
    req.extensions_mut().insert(slot.clone());
    let ctx = AuditCtx {
        slot: slot.clone(),
        client_addr: client_addr(req.extensions().get::<ClientInfo>()),
        defaults: route_action(
            req.method(),
            req.extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str),
            req.uri().path(),
        ),
    };
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    // Reads are not audited, except a signed-in user reaching for what is not theirs (a peer
    // on an admin route, a key outside its scopes): that attempt is worth a record.
    let denied_read = !mutating && status == StatusCode::FORBIDDEN && slot.actor() != "anonymous";
    let required = slot.lock().required.take();
    if slot.is_recorded() || !(mutating || denied_read || required.is_some()) {
        return response;
    }
    let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
    if status.is_success() {
        tracing::warn!(%method, %path, "a mutating handler returned without an audit entry");
    }
    let mut detail =
        json!({ "method": method, "path": path, "status": status.as_u16(), "error": code });
    if let (Value::Object(detail), Some(Value::Object(extra))) = (&mut detail, required) {
        detail.extend(extra);
    }
    let entry = Entry {
        actor: None,
        action: ctx.defaults.action.clone(),
        target_type: ctx.defaults.target_type.clone(),
        target_id: ctx.defaults.target_id.clone(),
        detail,
    };
    ctx.record(&app.db, entry, result_for(status)).await;
    response
}

/// The action and target an entry gets when the handler does not name them: from the matched
/// route, `/api/auth/login` → `auth.login`, `DELETE /api/peers/{name}` → `peers.delete`
/// with target `peers`/`<name>`.
#[derive(Debug, Clone, PartialEq)]
struct RouteAction {
    action: String,
    target_type: String,
    target_id: String,
}

fn route_action(method: &Method, matched: Option<&str>, path: &str) -> RouteAction {
    let Some(matched) = matched else {
        return RouteAction {
            action: "unknown_route".into(),
            target_type: "route".into(),
            target_id: path.chars().take(200).collect(),
        };
    };
    let pattern: Vec<&str> = matched.trim_start_matches('/').split('/').collect();
    let actual: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let skip = usize::from(pattern.first() == Some(&"api"));
    let mut words = Vec::new();
    let mut target_id = String::new();
    let mut last_is_param = false;
    for (i, segment) in pattern.iter().enumerate().skip(skip) {
        if segment.starts_with('{') {
            target_id = actual.get(i).copied().unwrap_or_default().to_string();
            last_is_param = true;
        } else if !segment.is_empty() {
            words.push(segment.replace('-', "_"));
            last_is_param = false;
        }
    }
    let target_type = words.first().cloned().unwrap_or_else(|| "cell".into());
    let verb = match *method {
        Method::POST if !last_is_param && words.len() >= 2 => None,
        Method::POST => Some("create"),
        Method::PUT | Method::PATCH => Some("update"),
        Method::DELETE => Some("delete"),
        Method::GET | Method::HEAD => Some("read"),
        _ => None,
    };
    let mut action = words.join(".");
    if let Some(verb) = verb {
        action = if action.is_empty() {
            verb.into()
        } else {
            format!("{action}.{verb}")
        };
    }
    RouteAction {
        action,
        target_type,
        target_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(method: Method, pattern: &str, path: &str) -> (String, String, String) {
        let a = route_action(&method, Some(pattern), path);
        (a.action, a.target_type, a.target_id)
    }

    #[test]
    fn actions_are_named_after_the_route() {
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            action(Method::POST, "/api/auth/login", "/api/auth/login"),
            s("auth.login", "auth", "")
        );
        assert_eq!(
            action(Method::PUT, "/api/config", "/api/config"),
            s("config.update", "config", "")
        );
        assert_eq!(
            action(Method::POST, "/api/peers", "/api/peers"),
            s("peers.create", "peers", "")
        );
        assert_eq!(
            action(Method::DELETE, "/api/peers/{name}", "/api/peers/alice"),
            s("peers.delete", "peers", "alice")
        );
        assert_eq!(
            action(
                Method::POST,
                "/api/auth/admin/reset-password",
                "/api/auth/admin/reset-password"
            ),
            s("auth.admin.reset_password", "auth", "")
        );
    }
}
