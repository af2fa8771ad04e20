//! The setup token: a one-time code that proves whoever runs the wizard can read picd's state
//! directory or its log, that is, owns the machine. Until setup completes, the base Caddyfile
//! puts the wizard on the internet; without this code the first visitor would become the admin.
//!
//! The code lives in `setup-token` in the state directory (mode 0600), written atomically at
//! start and reused across restarts while setup is pending, so the file and the log line always
//! agree. The database keeps only its SHA-256, which is what a claim is checked against.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TOKEN_FILE: &str = "setup-token";
/// Crockford's base32: no I, L, O or U, so a code read off a screen is typed back right.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// 28 characters of 5 bits: 140 random bits, beyond any guessing even unthrottled.
const TOKEN_CHARS: usize = 28;
/// Shown in groups of four (`k7m2-9xqa-...`), which is easier to read out and to type.
const GROUP: usize = 4;
/// Longer input cannot be a code (even with separators), and is not worth normalising.
pub const MAX_INPUT_CHARS: usize = 128;

/// A well-formed setup code in its canonical form: 28 lowercase base32 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct SetupToken(String);

impl std::fmt::Debug for SetupToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupToken(..)")
    }
}

impl SetupToken {
    pub fn generate() -> SetupToken {
        use rand::Rng;
        let mut rng = rand::rngs::OsRng;
        let code = (0..TOKEN_CHARS)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        SetupToken(code)
    }

    /// Reads a code as a person may type it: any case, with or without dashes and spaces,
    /// and Crockford's look-alikes (`o` for 0, `i`/`l` for 1). None when it cannot be a code.
    pub fn parse(input: &str) -> Option<SetupToken> {
        if input.chars().count() > MAX_INPUT_CHARS {
            return None;
        }
        let mut code = String::with_capacity(TOKEN_CHARS);
        for c in input.chars() {
            let c = match c.to_ascii_lowercase() {
                '-' | ' ' | '\t' => continue,
                'o' => '0',
                'i' | 'l' => '1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return None,
            };
            code.push(c);
        }
        (code.len() == TOKEN_CHARS).then_some(SetupToken(code))
    }

    /// The code as shown to the owner: groups of four joined by dashes.
    pub fn display(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        chars
            .chunks(GROUP)
            .map(|g| g.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// What the database keeps: the SHA-256 of the canonical code, in hex. (The code has 140
    /// random bits, so a fast hash is enough: there is no dictionary to try.)
    pub fn hash(&self) -> String {
        hash_hex(&self.0)
    }

    /// Whether this code is the one whose hash is stored, compared in constant time.
    pub fn matches(&self, stored_hash: &str) -> bool {
        bool::from(self.hash().as_bytes().ct_eq(stored_hash.as_bytes()))
    }
}

/// SHA-256 in hex, for the token and for the claim secret a session holds.
pub fn hash_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(TOKEN_FILE)
}

/// The code in the state directory's file, if there is a well-formed one.
pub fn read(state_dir: &Path) -> std::io::Result<Option<SetupToken>> {
    match std::fs::read_to_string(path(state_dir)) {
        Ok(text) => Ok(text.lines().find_map(|l| SetupToken::parse(l.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the file atomically (a private temporary file, fsync, rename), mode 0600: it is a
/// credential for the admin account until setup completes.
pub fn write(state_dir: &Path, token: &SetupToken) -> anyhow::Result<()> {
    let target = path(state_dir);
    let tmp = state_dir.join(format!("{TOKEN_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(format!("{}\n", token.display()).as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &target).with_context(|| format!("writing {}", target.display()))?;
    std::fs::File::open(state_dir)?.sync_all()?;
    Ok(())
}

/// Removes the file once setup is complete (nothing to do when it is already gone).
pub fn remove(state_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path(state_dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The code to use while setup is pending: the file's, when it holds a well-formed one (so a
/// restart keeps the code the owner may already have read), else a new one written to it.
pub fn load_or_create(state_dir: &Path) -> anyhow::Result<SetupToken> {
    if let Some(token) = read(state_dir)? {
        // An older file, or one restored from a backup, may have looser permissions.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path(state_dir), std::fs::Permissions::from_mode(0o600))?;
        return Ok(token);
    }
    let token = SetupToken::generate();
    write(state_dir, &token)?;
    Ok(token)
}

/// At start: while setup is pending, makes sure there is a code (file and hash agree) and logs
/// it; once setup is complete, removes a file left behind.
pub async fn prepare_at_start(db: &crate::db::Db, state_dir: &Path) -> anyhow::Result<()> {
    let complete = db
        .call(|conn| Ok(super::store::is_complete(conn)?))
        .await
        .map_err(|e| anyhow::anyhow!("reading the setup state: {e}"))?;
    if complete {
        return remove(state_dir)
            .with_context(|| format!("removing {}", path(state_dir).display()));
    }
    let token = load_or_create(state_dir)?;
    let hash = token.hash();
    db.write(move |tx| Ok(super::store::set_token_hash(tx, &hash)?))
        .await
        .map_err(|e| anyhow::anyhow!("recording the setup token: {e}"))?;
    // The one secret picd ever logs, on purpose (as Jenkins logs its initialAdminPassword):
    // whoever reads picd's log is root or picd on this machine, which is exactly who may
    // claim the wizard, and the log is where an owner looks first. It is spent, and useless,
    // once setup completes.
    tracing::info!(
        setup_code = %token.display(),
        file = %path(state_dir).display(),
        "setup is pending: open the wizard and enter this setup code (`picd setup token` prints it again)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_read_back_however_it_is_typed() {
        let token = SetupToken::generate();
        let shown = token.display();
        assert_eq!(shown.len(), TOKEN_CHARS + TOKEN_CHARS / GROUP - 1);
        assert_eq!(SetupToken::parse(&shown), Some(token.clone()));
        assert_eq!(
            SetupToken::parse(&shown.to_uppercase()),
            Some(token.clone())
        );
        assert_eq!(
            SetupToken::parse(&shown.replace('-', " ")),
            Some(token.clone())
        );
        assert!(token.matches(&token.hash()));
        assert!(!SetupToken::generate().matches(&token.hash()));
    }

    #[test]
    fn look_alikes_are_read_as_digits_and_anything_else_is_refused() {
        let code = "o".repeat(TOKEN_CHARS);
        assert_eq!(SetupToken::parse(&code).unwrap().0, "0".repeat(TOKEN_CHARS));
        assert!(SetupToken::parse(&"u".repeat(TOKEN_CHARS)).is_none());
        assert!(SetupToken::parse(&"a".repeat(TOKEN_CHARS - 1)).is_none());
        assert!(SetupToken::parse(&"a".repeat(TOKEN_CHARS + 1)).is_none());
        assert!(SetupToken::parse(&"é".repeat(TOKEN_CHARS)).is_none());
        assert!(SetupToken::parse(&"-".repeat(MAX_INPUT_CHARS + 1)).is_none());
    }

    #[test]
    fn the_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        std::fs::write(path(dir.path()), "garbage\n").unwrap();
        let second = load_or_create(dir.path()).unwrap();
        assert_ne!(second, first);
        remove(dir.path()).unwrap();
        remove(dir.path()).unwrap();
        assert!(read(dir.path()).unwrap().is_none());
    }
}
