//! GET /api/setup/status, GET/POST /api/setup/step, POST /api/setup/complete. All but the
//! status need the session that claimed the wizard (`SetupOwner`, see `gate`).

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::Session;

use super::gate::{self, SetupOwner};
use super::store::{self, already_complete, AdminDraft, Draft, Step, STEPS};
use super::validate;
use crate::audit::AuditCtx;
use crate::auth::{password, CSRF_KEY};
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::setup::SetupApp;

/// The actor of wizard entries: nobody is signed in yet.
pub(crate) const SETUP_ACTOR: &str = "setup";

fn completed_steps(draft: &Draft) -> Vec<&'static str> {
    let mut done = Vec::new();
    if draft.admin.is_some() {
        done.push("admin");
    }
    if draft.cell.is_some() {
        done.push("cell");
    }
    if draft.dns.is_some() {
        done.push("dns");
    }
    if draft.tls.is_some() {
        done.push("tls");
    }
    done
}

/// Open to anyone, so it says how far the wizard is and never what was entered. `claimed`
/// tells the page whether this session holds the wizard (and then hands it the claim's CSRF
/// token again, as GET /api/auth/csrf-token does for a signed-in session).
pub async fn status(State(app): State<SetupApp>, session: Session) -> ApiResult<Json<Value>> {
    let state = app.db.call(|conn| store::load(conn)).await?;
    let complete = state.completed_at.is_some();
    let owner = match complete {
        true => None,
        false => gate::session_claim(&app, &session).await?,
    };
    let csrf: Option<String> = match owner {
        Some(_) => session
            .get(CSRF_KEY)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("session store: {e}")))?,
        None => None,
    };
    let mut body = json!({
        "complete": complete,
        "completed_at": state.completed_at,
        "current_step": state.current_step,
        "steps": STEPS,
        "completed_steps": completed_steps(&state.draft),
    });
    if !complete {
        body["claimed"] = json!(owner.is_some());
        if let Some(csrf) = csrf {
            body["csrf_token"] = json!(csrf);
        }
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepQuery {
    step: Option<String>,
}

/// What the wizard shows for a step: the values entered so far (never the password).
pub async fn get_step(
    State(app): State<SetupApp>,
    _owner: SetupOwner,
    Query(query): Query<StepQuery>,
) -> ApiResult<Json<Value>> {
    let state = app.db.call(|conn| store::load(conn)).await?;
    if state.completed_at.is_some() {
        return Err(already_complete());
    }
    let step = match query.step.as_deref() {
        None => state.current_step,
        Some(s) => Step::parse(s)
            .ok_or_else(|| ApiError::invalid("step", "must be admin, cell, dns, tls or review"))?,
    };
    let draft = &state.draft;
    let admin = draft
        .admin
        .as_ref()
        .map(|a| json!({ "username": a.username }));
    let data = match step {
        Step::Admin => admin.unwrap_or(Value::Null),
        Step::Cell => json!(draft.cell),
        Step::Dns => json!(draft.dns),
        Step::Tls => json!(draft.tls),
        Step::Review => {
            json!({ "admin": admin, "cell": draft.cell, "dns": draft.dns, "tls": draft.tls })
        }
    };
    Ok(Json(json!({
        "step": step,
        "current_step": state.current_step,
        "steps": STEPS,
        "completed_steps": completed_steps(draft),
        "data": data,
    })))
}

/// A step's input, validated into the draft's form. Passwords are hashed here, before
/// anything is written.
pub(crate) async fn validated_step(
    step: Step,
    data: &Value,
    draft: &mut Draft,
    own_dns_listeners: &[std::net::SocketAddr],
) -> ApiResult<Value> {
    match step {
        Step::Admin => {
            let admin = validate::admin_step(data)?;
            let password_hash = password::hash(admin.password).await?;
            let detail = json!({ "username": admin.username });
            draft.admin = Some(AdminDraft {
                username: admin.username,
                password_hash,
            });
            Ok(detail)
        }
        Step::Cell => {
            let cell = crate::cell::settings::cell_step(data, "")?;
            let detail = json!({ "name": cell.name, "domain": cell.domain });
            draft.cell = Some(cell);
            Ok(detail)
        }
        Step::Dns => {
            draft.dns = Some(crate::cell::dns_settings::dns_step(
                data,
                "",
                own_dns_listeners,
            )?);
            Ok(json!({}))
        }
        Step::Tls => {
            let domain = draft.cell.as_ref().map(|c| c.domain.as_str());
            let tls = crate::cell::tls::tls_step(data, "", domain)?;
            let detail = json!({ "mode": tls.mode });
            draft.tls = Some(tls);
            Ok(detail)
        }
        Step::Review => Err(ApiError::bad_request(
            "review_step",
            "the review step is confirmed with POST /api/setup/complete",
        )),
    }
}

pub async fn post_step(
    State(app): State<SetupApp>,
    owner: SetupOwner,
    audit: AuditCtx,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    audit.set_actor(SETUP_ACTOR);
    let state = app.db.call(|conn| store::load(conn)).await?;
    let refuse = |err: ApiError| audit.refuse(&app.db, "setup", "", json!({}), err);
    if state.completed_at.is_some() {
        return Err(refuse(already_complete()).await);
    }
    let mut problems = crate::validation::Problems::default();
    let Some(map) = crate::validation::object(&body, &["step", "data"], &mut problems, "") else {
        return Err(refuse(problems.into_error("")).await);
    };
    // An unknown key (a typo such as "date" for "data") must be refused, not ignored.
    if let Err(err) = problems.into_result(()) {
        return Err(refuse(err).await);
    }
    let step = match map.get("step") {
        None => state.current_step,
        Some(Value::String(s)) => match Step::parse(s) {
            Some(step) => step,
            None => {
                return Err(refuse(ApiError::invalid(
                    "step",
                    "must be admin, cell, dns, tls or review",
                ))
                .await)
            }
        },
        Some(_) => return Err(refuse(ApiError::invalid("step", "must be a string")).await),
    };
    if step > state.current_step {
        let err = ApiError::conflict(
            "step_out_of_order",
            format!("the wizard is on the {} step", state.current_step.as_str()),
        );
        return Err(refuse(err).await);
    }
    let data = map.get("data").cloned().unwrap_or(Value::Null);
    let mut draft = state.draft;
    let detail = match validated_step(step, &data, &mut draft, &app.settings.dns_listen).await {
        Ok(detail) => detail,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "setup", step.as_str(), json!({}), err)
                .await)
        }
    };
    // Fixing an earlier step does not send the wizard back through steps already filled in:
    // it moves on to the first step still missing (or stays where it was, if further on).
    let first_missing = STEPS
        .into_iter()
        .filter(|s| *s > step)
        .find(|s| match s {
            Step::Admin => draft.admin.is_none(),
            Step::Cell => draft.cell.is_none(),
            Step::Dns => draft.dns.is_none(),
            Step::Tls => draft.tls.is_none(),
            Step::Review => true,
        })
        .unwrap_or(Step::Review);
    let next = first_missing.min(state.current_step.max(step.next()));
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "setup".into();
            entry.target_id = step.as_str().into();
            entry.detail = detail;
            // Re-read inside the transaction: a completion that raced this request wins.
            if store::is_complete(tx)? {
                return Err(already_complete());
            }
            gate::still_claimed(tx, &owner)?;
            store::save(tx, next, &draft)
        })
        .await?;
    Ok(Json(
        json!({ "step": step, "accepted": true, "current_step": next }),
    ))
}

/// Ends the wizard: the admin, the cell, signed in as the admin (only this session: it holds
/// the claim), and the setup token spent.
pub async fn complete(
    State(app): State<SetupApp>,
    owner: SetupOwner,
    audit: AuditCtx,
    session: Session,
) -> ApiResult<Json<Value>> {
    audit.set_actor(SETUP_ACTOR);
    let vault = app.vault.clone();
    let user = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "setup".into();
            entry.target_id = "complete".into();
            let state = store::load(tx)?;
            if state.completed_at.is_none() {
                gate::still_claimed(tx, &owner)?;
            }
            if state.completed_at.is_none() && state.current_step != Step::Review {
                return Err(ApiError::conflict(
                    "setup_incomplete",
                    "every wizard step must be submitted first",
                ));
            }
            let user = store::complete(tx, &state.draft, &vault)?;
            entry.actor = Some(user.username.clone());
            entry.detail = json!({ "admin": user.username });
            Ok(user)
        })
        .await?;
    // The token is spent (its hash left the database with the completion): the file goes too.
    if let Err(e) = super::token::remove(&app.settings.state_dir) {
        tracing::warn!(error = %e, "removing the spent setup token file");
    }
    // The wizard ends signed in as the new admin.
    let csrf = crate::auth::start_session(&session, &user.id).await?;
    session
        .remove::<String>(gate::CLAIM_KEY)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("session store: {e}")))?;
    app.request_reconcile();
    Ok(Json(
        json!({ "complete": true, "user": user, "csrf_token": csrf }),
    ))
}
