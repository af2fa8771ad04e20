//! The vault: secrets age-encrypted to an identity kept in the state directory (mode 0600,
//! refused if others can read it), the cell's certificate authority, and the public keys of
//! trusted cells. Every domain keeps its private keys, passwords and provider configs through
//! `Vault::put/get/delete`; plaintext never reaches a response, a log line or an audit entry.

pub mod ca;
mod crl;
mod identity;
pub mod reasons;
pub mod retired;
pub mod routes;
mod scope;
pub mod store;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use zeroize::Zeroizing;

use crate::error::ApiError;

/// A secret whose only purpose is to tell which identity the stored secrets are encrypted to
/// (used to finish an interrupted rekey).
const CANARY: &str = "vault.canary";

#[derive(Clone)]
pub struct Vault {
    inner: Arc<VaultInner>,
}

struct VaultInner {
    identity: age::x25519::Identity,
    recipient: age::x25519::Recipient,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the identity.
        write!(f, "Vault({})", self.inner.recipient)
    }
}

/// Below this many secrets `get_many` decrypts on the calling thread: spawning costs more.
const PARALLEL_FROM: usize = 32;

fn vault_error(what: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("vault: {what}"))
}

impl Vault {
    /// Opens the identity in `state_dir` (creating it on first start) and makes sure the
    /// stored secrets are encrypted to it, finishing a rekey that was interrupted.
    pub fn open(state_dir: &Path, conn: &mut Connection) -> anyhow::Result<Vault> {
        let path = identity::path(state_dir);
        identity::finish_interrupted_rekey(state_dir, conn)?;
        let identity = if path.exists() {
            identity::read(&path)?
        } else {
            let identity = age::x25519::Identity::generate();
            identity::write(&path, &identity)?;
            identity
        };
        let vault = Vault::from_identity(identity);
        if vault
            .get(conn, CANARY)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .is_none()
        {
            vault
                .put(conn, CANARY, b"picd")
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(vault)
    }

    fn from_identity(identity: age::x25519::Identity) -> Vault {
        let recipient = identity.to_public();
        Vault {
            inner: Arc::new(VaultInner {
                identity,
                recipient,
            }),
        }
    }

    /// The public half of the vault's identity (`age1...`), safe to show.
    pub fn public_key(&self) -> String {
        self.inner.recipient.to_string()
    }

    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, ApiError> {
        age::encrypt(&self.inner.recipient, plaintext).map_err(vault_error)
    }

    fn decrypt(&self, name: &str, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        age::decrypt(&self.inner.identity, ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| {
                vault_error(format!(
                    "secret '{name}' cannot be decrypted with this identity"
                ))
            })
    }

    /// Stores (or replaces) a secret, inside the caller's transaction if it has one.
    pub fn put(&self, conn: &Connection, name: &str, plaintext: &[u8]) -> Result<(), ApiError> {
        let ciphertext = self.encrypt(plaintext)?;
        let now = crate::time::now_rfc3339();
        conn.execute(
            "INSERT INTO secrets (name, ciphertext, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT(name) DO UPDATE SET ciphertext = ?2, updated_at = ?3",
            params![name, ciphertext, now],
        )?;
        Ok(())
    }

    /// A secret's plaintext, wiped from memory when dropped.
    pub fn get(
        &self,
        conn: &Connection,
        name: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, ApiError> {
        let ciphertext: Option<Vec<u8>> = conn
            .query_row(
                "SELECT ciphertext FROM secrets WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        ciphertext.map(|c| self.decrypt(name, &c)).transpose()
    }

    /// Several secrets at once, in the order of `names` (None where one is missing). Each
    /// decryption is an X25519 agreement, which dominates a reconcile of many peers, so a
    /// long list is decrypted on every core.
    pub fn get_many(
        &self,
        conn: &Connection,
        names: &[String],
    ) -> Result<Vec<Option<Zeroizing<Vec<u8>>>>, ApiError> {
        let mut statement =
            conn.prepare_cached("SELECT ciphertext FROM secrets WHERE name = ?1")?;
        let ciphertexts = names
            .iter()
            .map(|name| statement.query_row([name], |r| r.get(0)).optional())
            .collect::<Result<Vec<Option<Vec<u8>>>, _>>()?;
        let decrypt = |names: &[String], ciphertexts: &[Option<Vec<u8>>]| {
            names
                .iter()
                .zip(ciphertexts)
                .map(|(name, c)| c.as_ref().map(|c| self.decrypt(name, c)).transpose())
                .collect::<Result<Vec<_>, ApiError>>()
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if names.len() < PARALLEL_FROM || threads == 1 {
            return decrypt(names, &ciphertexts);
        }
        let chunk = names.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = names
                .chunks(chunk)
                .zip(ciphertexts.chunks(chunk))
                .map(|(n, c)| scope.spawn(move || decrypt(n, c)))
                .collect();
            let mut plaintexts = Vec::with_capacity(names.len());
            for worker in workers {
                let part = worker
                    .join()
                    .map_err(|_| vault_error("a decrypting thread panicked"))??;
                plaintexts.extend(part);
            }
            Ok(plaintexts)
        })
    }

    pub fn delete(&self, conn: &Connection, name: &str) -> Result<bool, ApiError> {
        Ok(conn.execute("DELETE FROM secrets WHERE name = ?1", [name])? > 0)
    }
}

/// `picd vault rekey`: a new identity, every secret re-encrypted to it in one transaction.
/// The new identity is written beside the old one first and swapped in only after the commit;
/// `Vault::open` finishes the swap if picd stopped in between.
pub fn rekey(state_dir: &Path, conn: &mut Connection) -> anyhow::Result<(usize, String)> {
    let old = Vault::open(state_dir, conn)?;
    let new = Vault::from_identity(age::x25519::Identity::generate());
    let pending = identity::pending_path(state_dir);
    identity::write(&pending, &new.inner.identity)?;
    let audit = crate::audit::cli_ctx("cli");
    let count = audit
        .transact_blocking(conn, |tx, entry| {
            entry.action = "vault.rekey".into();
            entry.target_type = "vault".into();
            let names: Vec<String> = tx
                .prepare("SELECT name FROM secrets ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for name in &names {
                let plaintext = old
                    .get(tx, name)?
                    .ok_or_else(|| vault_error("secret vanished"))?;
                new.put(tx, name, &plaintext)?;
            }
            entry.detail =
                serde_json::json!({ "secrets": names.len(), "public_key": new.public_key() });
            Ok(names.len())
        })
        .map_err(|e| anyhow::anyhow!("rekey failed, nothing changed: {e}"))?;
    identity::install_pending(state_dir).context("installing the new identity")?;
    Ok((count, new.public_key()))
}

/// Reads a whole small file (used for identity files).
fn read_small(path: &Path) -> std::io::Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn get_many_keeps_the_order_on_one_thread_and_on_several() {
        let conn = store();
        let vault = Vault::from_identity(age::x25519::Identity::generate());
        for count in [3, PARALLEL_FROM * 3 + 1] {
            let names: Vec<String> = (0..count).map(|i| format!("test.{count}.{i}")).collect();
            for (i, name) in names.iter().enumerate().filter(|(i, _)| i % 5 != 0) {
                vault
                    .put(&conn, name, format!("secret {i}").as_bytes())
                    .unwrap();
            }
            let plaintexts = vault.get_many(&conn, &names).unwrap();
            assert_eq!(plaintexts.len(), count);
            for (i, plaintext) in plaintexts.iter().enumerate() {
                let expected = (i % 5 != 0).then(|| format!("secret {i}").into_bytes());
                assert_eq!(
                    plaintext.as_ref().map(|p| p.to_vec()),
                    expected,
                    "{count}: {i}"
                );
            }
        }
    }

    #[test]
    fn get_many_fails_on_a_secret_of_another_identity() {
        let conn = store();
        let names: Vec<String> = (0..PARALLEL_FROM * 2).map(|i| format!("s.{i}")).collect();
        let vault = Vault::from_identity(age::x25519::Identity::generate());
        for name in &names {
            vault.put(&conn, name, b"x").unwrap();
        }
        let other = Vault::from_identity(age::x25519::Identity::generate());
        other.put(&conn, &names[40], b"y").unwrap();
        assert!(vault.get_many(&conn, &names).is_err());
    }
}
