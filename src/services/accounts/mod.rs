//! Accounts in the installed services: one per person (a peer, or the owner) and service,
//! with a random password kept in the vault. Desired state is the `service_accounts` rows;
//! the Docker driver makes each service's account file and folders match them (`disk`), and
//! the data of an account that is gone is archived, not destroyed (`store`, `disk`, `routes`,
//! `credentials`).

mod apr1;
pub mod credentials;
pub mod disk;
pub mod probe;
pub mod routes;
pub mod sessions;
pub mod store;

use rand::RngCore;

use super::catalog::{AccountMechanism, HashScheme, Manifest};
use zeroize::Zeroizing;

/// sha512-crypt's fewest rounds: the passwords are 192 random bits, so more rounds add no
/// safety and cost every request the service verifies.
const HASH_ROUNDS: usize = 1000;

/// The vault secret holding an account's password.
pub fn secret_name(service_id: &str, username: &str) -> String {
    format!("service-account/{service_id}/{username}")
}

/// A new random password: 24 bytes, base64url (32 characters, no padding).
pub fn new_password() -> Zeroizing<String> {
    use base64::Engine;
    let mut bytes = Zeroizing::new([0u8; 24]);
    rand::thread_rng().fill_bytes(bytes.as_mut());
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// The hash of a password in the scheme the service's account file holds.
pub fn hash(manifest: &Manifest, password: &str) -> anyhow::Result<String> {
    let AccountMechanism::PasswdFile { hash, .. } = &manifest.accounts;
    match hash {
        HashScheme::Sha512Crypt => sha512_crypt(password),
        HashScheme::Apr1 => Ok(apr1::hash(password)),
    }
}

/// The `$6$` sha512-crypt hash.
fn sha512_crypt(password: &str) -> anyhow::Result<String> {
    let params = sha_crypt::Sha512Params::new(HASH_ROUNDS)
        .map_err(|e| anyhow::anyhow!("sha512-crypt parameters: {e:?}"))?;
    sha_crypt::sha512_simple(password, &params).map_err(|e| anyhow::anyhow!("sha512-crypt: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_random_and_its_hash_verifies() {
        let (a, b) = (new_password(), new_password());
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 32);
        let hashed = hash(&crate::services::catalog::FILES, &a).unwrap();
        assert!(hashed.starts_with("$6$rounds=1000$"), "{hashed}");
        assert!(sha_crypt::sha512_check(&a, &hashed).is_ok());
        assert!(sha_crypt::sha512_check(&b, &hashed).is_err());
    }
}
