//! Password hashing (argon2id, the crate's recommended parameters) and the password policy.
//! Hashing is deliberately slow, so it always runs on a blocking thread.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::ApiError;

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks the policy; the message names the rule, never the password.
pub fn check_policy(field: &str, password: &str, username: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(ApiError::invalid(field, "must differ from the username"));
    }
    Ok(())
}

pub fn hash_blocking(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing a password: {e}")))
}

pub async fn hash(password: String) -> Result<String, ApiError> {
    on_own_thread(move || hash_blocking(&password)).await?
}

/// Runs an argon2 computation on a thread of its own that ends with it: the 19 MiB the hash
/// borrows goes back to the system with the thread, instead of staying with a pooled thread.
async fn on_own_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("argon2".into())
        .spawn(move || {
            let _ = done.send(work());
        })
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("starting a hash thread: {e}")))?;
    result
        .await
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("hash thread ended early")))
}

/// Verifies against `stored`, or against a fixed dummy hash when the user does not exist, so
/// that the answer takes as long for an unknown username as for a wrong password.
pub fn verify_blocking(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_blocking("picd-dummy-password").unwrap_or_default());
    let exists = stored.is_some();
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(dummy)) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && exists
}

pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    on_own_thread(move || verify_blocking(&password, stored.as_deref())).await
}
