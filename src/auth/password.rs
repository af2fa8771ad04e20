//! Password hashing (argon2id, the crate's recommended parameters) and the password policy.
//! Hashing is deliberately slow and memory-hungry, so it runs on tokio's blocking pool under
//! a permit of a small pool: a burst gets 503 `busy`, not a thread and 19 MiB per request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

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
    on_hash_pool(move || hash_blocking(&password)).await?
}

/// Hashes running at once, at most: one per core (up to four). Each borrows 19 MiB, and a
/// burst of logins must cost a bounded amount of memory and threads, not one of each per
/// request (60 simultaneous logins once took picd from 14 MB to 654 MB with 57 threads).
fn hash_permits() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Requests that may wait for a permit, per permit; beyond this they are refused at once. A
/// full queue drains within MAX_WAIT (2 permits hash ~50 logins a second).
const WAITING_PER_PERMIT: usize = 32;
/// How long a request waits for a permit before it is answered 503 `busy`. A hash takes
/// 20-60 ms, so a legitimate login waits for a handful of others, never for this long.
const MAX_WAIT: Duration = Duration::from_secs(2);

struct HashPool {
    permits: Arc<Semaphore>,
    size: usize,
    waiting: AtomicUsize,
}

/// The pool is the process's: every caller that hashes or verifies a password shares it.
fn hash_pool() -> &'static HashPool {
    static POOL: OnceLock<HashPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let size = hash_permits();
        HashPool {
            permits: Arc::new(Semaphore::new(size)),
            size,
            waiting: AtomicUsize::new(0),
        }
    })
}

fn busy() -> ApiError {
    ApiError::Busy { retry_after: 1 }
}

/// Runs an argon2 computation on tokio's blocking pool under a permit of the hash pool. The
/// permit moves into the blocking task, so a client that hangs up mid-hash does not free a
/// permit while its hash still runs. The 19 MiB go back to the system when the hash ends
/// (malloc's mmap threshold is fixed at start-up, see cli.rs).
async fn on_hash_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let pool = hash_pool();
    let permit = match pool.permits.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            if pool.waiting.fetch_add(1, Ordering::AcqRel) >= pool.size * WAITING_PER_PERMIT {
                pool.waiting.fetch_sub(1, Ordering::AcqRel);
                return Err(busy());
            }
            let waited = tokio::time::timeout(MAX_WAIT, pool.permits.clone().acquire_owned()).await;
            pool.waiting.fetch_sub(1, Ordering::AcqRel);
            match waited {
                Ok(Ok(permit)) => permit,
                _ => return Err(busy()),
            }
        }
    };
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("hash task failed: {e}")))
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
    on_hash_pool(move || verify_blocking(&password, stored.as_deref())).await
}
