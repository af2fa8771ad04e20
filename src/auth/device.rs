//! Device cookies (OWASP, "Slow down online guessing attacks with device cookies"): a browser
//! that signed in successfully gets a cookie naming a random nonce, signed with a key only
//! picd holds (HMAC-SHA256 over the username and the nonce). At login, failures are counted
//! per device cookie for a request carrying one valid for that username, and per username for
//! the rest; so guesses from anywhere else can lock the username out of new devices, but not
//! the owner's own browser. A device that guesses is itself locked out like a username.
//!
//! The cookie grants nothing by itself (the password is still needed), so logout keeps it.
//! The MAC also covers the user's stored password hash, so a new password (a reset, or the
//! owner's own change) ends every device cookie issued before it: a device that knew the old
//! password is a stranger again.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use crate::auth::AuthApp;
use crate::error::ApiError;

pub const DEVICE_COOKIE: &str = "picd_device";
/// The vault secret holding the signing key (32 random bytes).
const KEY_SECRET: &str = "auth.device-cookie-key";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 16;
/// A year: the point is to recognise a device the owner keeps using.
const LIFETIME_SECS: u64 = 365 * 24 * 3600;
/// Longer cookie values are not ours and are not even decoded.
const MAX_COOKIE_CHARS: usize = 128;
/// Domain separation: this key signs nothing else, but a MAC should say what it is for.
const CONTEXT: &[u8] = b"picd device cookie v2\0";

type HmacSha256 = Hmac<Sha256>;

/// The signing key, read from (or first written to) the vault on the first login.
#[derive(Default)]
pub struct DeviceCookies {
    key: OnceCell<Zeroizing<Vec<u8>>>,
}

impl DeviceCookies {
    pub fn new() -> Self {
        Self::default()
    }

    async fn key(&self, app: &AuthApp) -> Result<&[u8], ApiError> {
        let key = self
            .key
            .get_or_try_init(|| async {
                let vault = app.vault.clone();
                app.db
                    .write(move |tx| {
                        if let Some(key) = vault.get(tx, KEY_SECRET)? {
                            if key.len() == KEY_BYTES {
                                return Ok(key);
                            }
                        }
                        let key: [u8; KEY_BYTES] = rand::random();
                        vault.put(tx, KEY_SECRET, &key)?;
                        Ok(Zeroizing::new(key.to_vec()))
                    })
                    .await
            })
            .await?;
        Ok(key.as_slice())
    }

    /// The nonce of the request's device cookie when it is valid for `username`.
    /// `credential` is the user's stored password hash (empty for an unknown user).
    pub async fn recognise(
        &self,
        app: &AuthApp,
        headers: &HeaderMap,
        username: &str,
        credential: &str,
    ) -> Result<Option<String>, ApiError> {
        let Some(value) = cookie_value(headers) else {
            return Ok(None);
        };
        let Some((nonce, mac)) = value.split_once('.') else {
            return Ok(None);
        };
        let Ok(mac) = URL_SAFE_NO_PAD.decode(mac) else {
            return Ok(None);
        };
        let key = self.key(app).await?;
        // verify_slice compares in constant time.
        let valid = signer(key, username, credential, nonce)?
            .verify_slice(&mac)
            .is_ok();
        Ok(valid.then(|| nonce.to_string()))
    }

    /// A new device cookie for `username`, as a Set-Cookie value.
    pub async fn issue(
        &self,
        app: &AuthApp,
        username: &str,
        credential: &str,
    ) -> Result<HeaderValue, ApiError> {
        let key = self.key(app).await?;
        let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; NONCE_BYTES]>());
        let mac = signer(key, username, credential, &nonce)?.finalize();
        let mac = URL_SAFE_NO_PAD.encode(mac.into_bytes());
        // Sent to the login route only; Secure is added with the session cookie's (app.rs).
        let cookie = format!(
            "{DEVICE_COOKIE}={nonce}.{mac}; Path=/api/auth; Max-Age={LIFETIME_SECS}; HttpOnly; SameSite=Strict"
        );
        HeaderValue::from_str(&cookie)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("device cookie: {e}")))
    }
}

fn signer(
    key: &[u8],
    username: &str,
    credential: &str,
    nonce: &str,
) -> Result<HmacSha256, ApiError> {
    // HMAC takes a key of any length, so this cannot fail; no panic in a handler all the same.
    let mut mac = HmacSha256::new_from_slice(key)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("device cookie key: {e}")))?;
    mac.update(CONTEXT);
    for part in [username, credential] {
        mac.update(part.as_bytes());
        mac.update(b"\0");
    }
    mac.update(nonce.as_bytes());
    Ok(mac)
}

/// The device cookie's value, if the request carries a plausible one.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .find_map(|c| c.strip_prefix(DEVICE_COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_binds_the_username_the_password_hash_and_the_nonce() {
        let key = [7u8; KEY_BYTES];
        let sign = |key: &[u8], user: &str, hash: &str, nonce: &str| {
            signer(key, user, hash, nonce).unwrap()
        };
        let mac = sign(&key, "admin", "$argon2id$h1", "n1")
            .finalize()
            .into_bytes();
        assert!(sign(&key, "admin", "$argon2id$h1", "n1")
            .verify_slice(&mac)
            .is_ok());
        for (user, hash, nonce) in [
            ("admim", "$argon2id$h1", "n1"),
            ("admin", "$argon2id$h2", "n1"),
            ("admin", "$argon2id$h1", "n2"),
            // The separators keep the parts apart.
            ("admin$argon2id$h1", "", "n1"),
        ] {
            assert!(sign(&key, user, hash, nonce).verify_slice(&mac).is_err());
        }
        assert!(sign(&[8u8; KEY_BYTES], "admin", "$argon2id$h1", "n1")
            .verify_slice(&mac)
            .is_err());
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "picd_session=abc; picd_device=n.m; picd_devicex=no"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie_value(&headers), Some("n.m"));
        headers.insert(header::COOKIE, "picd_devicex=no".parse().unwrap());
        assert_eq!(cookie_value(&headers), None);
    }
}
