//! GET /api/audit, /api/audit/export and /api/audit/verify (admin only).

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::store::{self, AuditFilter, DEFAULT_LIMIT};
use super::{chain, csv};
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::state::Core;

/// Rows are sent to the client in chunks of about this many bytes.
const EXPORT_CHUNK: usize = 64 * 1024;

pub async fn list(
    _admin: AdminUser,
    State(app): State<Core>,
    Query(filter): Query<AuditFilter>,
) -> ApiResult<Json<Value>> {
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT);
    let offset = filter.offset.unwrap_or(0);
    let (entries, total) = app.db.call(move |conn| store::query(conn, &filter)).await?;
    Ok(Json(
        json!({ "entries": entries, "total": total, "limit": limit, "offset": offset }),
    ))
}

pub async fn verify(
    _admin: AdminUser,
    State(app): State<Core>,
) -> ApiResult<Json<chain::VerifyReport>> {
    let report = app.db.call(|conn| Ok(chain::verify(conn)?)).await?;
    Ok(Json(report))
}

/// Streams the export: a blocking task walks the rows and hands chunks to the response body,
/// so a log of any size is exported in constant memory.
pub async fn export(
    _admin: AdminUser,
    State(app): State<Core>,
    Query(filter): Query<AuditFilter>,
) -> ApiResult<Response> {
    match filter.format.as_deref() {
        None | Some("csv") => {}
        Some(_) => return Err(ApiError::invalid("format", "the supported format is csv")),
    }
    filter.validate()?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut chunk = String::from(csv::HEADER);
        let result = db.call_blocking(|conn| {
            store::for_each(conn, &filter, |entry| {
                csv::write_row(&mut chunk, &entry);
                if chunk.len() >= EXPORT_CHUNK {
                    let full = std::mem::take(&mut chunk);
                    // The client went away: stop reading.
                    return sender.blocking_send(Ok(full)).is_ok();
                }
                true
            })
        });
        match result {
            Ok(()) => {
                let _ = sender.blocking_send(Ok(chunk));
            }
            Err(e) => {
                tracing::error!(error = %e, "audit export failed");
                let _ = sender.blocking_send(Err(std::io::Error::other("export failed")));
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let filename = format!("picd-audit-{}.csv", crate::time::now().date());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
