//! The one error type of the HTTP API. Every failure a client can see is an `ApiError`,
//! answered as `{"error": "...", "code": "snake_case"}` with the matching status.
//! Internal causes (database, I/O) are logged and answered with a generic message so that
//! nothing about the machine, and no secret, leaks into a response.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// The error code of a response, kept in its extensions so the audit layer can record why a
/// refused request was refused without parsing the body.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One or more fields of the input are wrong; each gets its own message.
    #[error("invalid input")]
    Invalid { fields: Vec<(String, String)> },
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("the session has expired, log in again")]
    SessionExpired,
    /// The wizard answers only the session that claimed it with the setup code.
    #[error("claim the setup wizard with the setup code first (POST /api/setup/claim)")]
    SetupTokenRequired,
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// A per-service route (`/api/files/*`, ...) while its service is not installed.
    #[error("the {service} service is not installed")]
    NotInstalled { service: &'static str },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    Unprocessable { message: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A configured cap was reached (`limit` names the setting, `max` its value): 413 when
    /// the request itself is too large, 422 when it would take a stored set past the cap.
    #[error("over the limit {limit} of {max}")]
    LimitExceeded {
        limit: &'static str,
        max: usize,
        too_large: bool,
    },
    #[error("too many requests, retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// picd is at a bound it keeps on expensive work (password hashing); nothing was done.
    #[error("picd is busy, retry in {retry_after} s")]
    Busy { retry_after: u64 },
    #[error("{subsystem} is unavailable: {reason}")]
    /// A subsystem the request needs cannot act (its driver reports why in /api/status).
    #[allow(dead_code)]
    Unavailable {
        subsystem: &'static str,
        reason: String,
    },
    /// picd found its storage degraded at start (src/health/write_guard.rs) and refuses
    /// changes until the owner restores a snapshot or acknowledges the loss; reads still work.
    #[error(
        "picd's storage is degraded (see the storage subsystem of /api/status): changes are \
         refused until the owner restores the newest snapshot from backups/ or acknowledges \
         the loss with POST /api/status/storage/acknowledge (or `picd audit reanchor`, picd \
         stopped)"
    )]
    StorageDegraded,
    #[error("database error")]
    Db(#[from] rusqlite::Error),
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            fields: vec![(field.into(), message.into())],
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::NotFound { what: what.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized
            | ApiError::SessionExpired
            | ApiError::InvalidCredentials
            | ApiError::SetupTokenRequired => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } | ApiError::NotInstalled { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::LimitExceeded {
                too_large: true, ..
            } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::LimitExceeded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } | ApiError::Busy { .. } | ApiError::StorageDegraded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Db(_) | ApiError::Io(_) | ApiError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid { .. } => "validation_failed",
            ApiError::BadRequest { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::SessionExpired => "session_expired",
            ApiError::SetupTokenRequired => "setup_token_required",
            ApiError::NotFound { .. } => "not_found",
            ApiError::NotInstalled { .. } => "not_installed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::Unprocessable { .. } => "invalid_body",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::LimitExceeded { .. } => "limit_exceeded",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Busy { .. } => "busy",
            ApiError::StorageDegraded => "storage_degraded",
            ApiError::Db(_) | ApiError::Io(_) | ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = ?self, "internal error while handling a request");
        }
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.to_string()));
        body.insert("code".into(), Value::String(code.into()));
        match &self {
            ApiError::Invalid { fields } => {
                let fields: Map<String, Value> = fields
                    .iter()
                    .map(|(f, m)| (f.clone(), Value::String(m.clone())))
                    .collect();
                body.insert("fields".into(), Value::Object(fields));
            }
            ApiError::Unavailable { subsystem, .. } => {
                body.insert("subsystem".into(), json!(subsystem));
            }
            ApiError::LimitExceeded { limit, max, .. } => {
                body.insert("limit".into(), json!(limit));
                body.insert("max".into(), json!(max));
            }
            ApiError::RateLimited { retry_after } | ApiError::Busy { retry_after } => {
                body.insert("retry_after".into(), json!(retry_after));
            }
            _ => {}
        }
        let mut response = (status, axum::Json(Value::Object(body))).into_response();
        if let ApiError::RateLimited { retry_after } | ApiError::Busy { retry_after } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response.extensions_mut().insert(ErrorCode(code));
        response
    }
}

/// serde's messages quote the offending value ("invalid type: string \"hunter2\"..."); a
/// password sent with the wrong type would then come back in the error. Keep the field path
/// and what was expected, drop the value.
fn without_values(message: &str) -> String {
    let message = message
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(message);
    for marker in ["invalid type: ", "invalid value: "] {
        if let Some(start) = message.find(marker) {
            let (path, rest) = message.split_at(start);
            let expected = rest
                .find(", expected ")
                .map(|i| rest[i + 2..].to_string())
                .unwrap_or_default();
            let expected = expected.split(" at line ").next().unwrap_or("").to_string();
            return format!("{path}wrong type or value; {expected}")
                .trim()
                .to_string();
        }
    }
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_string()
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType {
                message: "expected a body with Content-Type: application/json".into(),
            },
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
                "malformed_json",
                format!("malformed JSON: {}", without_values(&e.body_text())),
            ),
            JsonRejection::JsonDataError(e) => ApiError::Unprocessable {
                message: without_values(&e.body_text()),
            },
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::bad_request("bad_body", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", without_values(&rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", without_values(&rejection.body_text()))
    }
}

/// `axum::Json` whose rejection is an `ApiError`, so bad JSON gets the API's error shape.
/// Every body of the API is a JSON object: serde would also fill a struct from an array
/// (`["name"]` as `{"name": ...}`), so anything else is refused before it is decoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        // Content type, size limit and syntax as axum checks them, then T, then the shape.
        let axum::Json(raw) =
            axum::Json::<Box<serde_json::value::RawValue>>::from_request(req, state).await?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(raw.get().as_bytes())?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        }
        Ok(Json(value))
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with the API's error shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` with the API's error shape.
#[derive(Debug, Clone, Copy, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn serde_messages_lose_the_offending_value() {
        let m = "Failed to deserialize the JSON body into the target type: password: invalid type: integer `12345`, expected a string at line 1 column 20";
        let cleaned = without_values(m);
        assert!(!cleaned.contains("12345"), "{cleaned}");
        assert!(cleaned.contains("password"), "{cleaned}");
        assert!(cleaned.contains("expected a string"), "{cleaned}");
    }
}
