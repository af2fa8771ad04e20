//! The `$apr1$` hash (Apache's variant of md5-crypt): the scheme Radicale 3.1.8, as Debian 12
//! ships it, reads from an htpasswd file. MD5 is weak for a human's password; these are 192
//! random bits, which no hash-cracking shortens.

use md5::{Digest, Md5};
use rand::Rng;

const MAGIC: &[u8] = b"$apr1$";
const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub fn hash(password: &str) -> String {
    let mut rng = rand::thread_rng();
    let salt: String = (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    hash_with_salt(password.as_bytes(), salt.as_bytes())
}

fn hash_with_salt(password: &[u8], salt: &[u8]) -> String {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut context = Md5::new()
        .chain_update(password)
        .chain_update(MAGIC)
        .chain_update(salt);
    for chunk in password.chunks(16) {
        context.update(&alternate[..chunk.len()]);
    }
    let mut length = password.len();
    while length > 0 {
        if length & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        length >>= 1;
    }
    let mut digest = context.finalize();
    for round in 0..1000 {
        let mut step = Md5::new();
        if round & 1 == 1 {
            step.update(password);
        } else {
            step.update(digest);
        }
        if round % 3 != 0 {
            step.update(salt);
        }
        if round % 7 != 0 {
            step.update(password);
        }
        if round & 1 == 1 {
            step.update(digest);
        } else {
            step.update(password);
        }
        digest = step.finalize();
    }
    let mut out = String::from_utf8_lossy(MAGIC).into_owned();
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let d = digest;
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let value = (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]);
        encode(&mut out, value, 4);
    }
    encode(&mut out, u32::from(d[11]), 2);
    out
}

fn encode(out: &mut String, mut value: u32, chars: usize) {
    for _ in 0..chars {
        out.push(ALPHABET[(value & 0x3f) as usize] as char);
        value >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_what_openssl_passwd_apr1_gives() {
        // `openssl passwd -apr1 -salt <salt> <password>`
        let cases = [
            (
                "correct horse",
                "abcdefgh",
                "$apr1$abcdefgh$sIQmFnT1CuEXAsyjuXjUX/",
            ),
            (
                "0123456789abcdefghijklmnopqrstuvwxyz",
                "Zq3./x9A",
                "$apr1$Zq3./x9A$bVe9yllO6Px0yZLnm3LMJ.",
            ),
        ];
        for (password, salt, expected) in cases {
            assert_eq!(
                hash_with_salt(password.as_bytes(), salt.as_bytes()),
                expected
            );
        }
        assert!(hash("x").starts_with("$apr1$"));
    }
}
