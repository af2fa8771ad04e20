//! A service image the owner has picd pull instead of build (the `service_images` setting):
//! a reference in the registries' grammar (distribution's `reference` package), pinned by
//! a sha256 digest. A tag alone is refused: a tag can be moved to another image by whoever
//! controls the registry, a digest names the bytes.

use std::fmt;

/// The longest repository name a registry accepts.
const MAX_NAME: usize = 255;
const DIGEST_PREFIX: &str = "sha256:";

/// `[domain/]path[:tag]@sha256:<64 hex>`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedImage {
    /// `[domain/]path`, as written.
    name: String,
    /// A tag written beside the digest: a label only, the digest decides what is pulled.
    tag: Option<String>,
    /// `sha256:<64 lowercase hex>`.
    digest: String,
}

impl PinnedImage {
    pub fn parse(text: &str) -> Result<PinnedImage, String> {
        let Some((named, digest)) = text.rsplit_once('@') else {
            return Err(format!(
                "`{text}` is not pinned: name the image by digest, `NAME@sha256:<64 hex \
                 digits>` (a tag can be moved to another image)"
            ));
        };
        let hex = digest
            .strip_prefix(DIGEST_PREFIX)
            .ok_or_else(|| format!("`{text}`: the digest must be `sha256:<64 hex digits>`"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "`{text}`: the digest must be `sha256:` and 64 lowercase hex digits"
            ));
        }
        // A ':' after the last '/' starts a tag; one before it is the registry's port.
        let slash = named.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match named[slash..].rfind(':') {
            Some(colon) => {
                let (name, tag) = named.split_at(slash + colon);
                (name, Some(&tag[1..]))
            }
            None => (named, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|e| format!("`{text}`: {e}"))?;
        }
        check_name(name).map_err(|e| format!("`{text}`: {e}"))?;
        Ok(PinnedImage {
            name: name.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.to_string(),
        })
    }

    /// What the engine is asked to pull: `name@digest`.
    pub fn pull_reference(&self) -> String {
        format!("{}@{}", self.name, self.digest)
    }

    /// Whether `repo_digest` (an entry of an image's RepoDigests) is this name and digest;
    /// the engine's short forms (`debian` for `docker.io/library/debian`) count as written
    /// in full.
    pub fn is_repo_digest(&self, repo_digest: &str) -> bool {
        repo_digest.rsplit_once('@').is_some_and(|(name, digest)| {
            digest == self.digest && full_name(name) == full_name(&self.name)
        })
    }
}

impl fmt::Display for PinnedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tag {
            Some(tag) => write!(f, "{}:{tag}@{}", self.name, self.digest),
            None => write!(f, "{}@{}", self.name, self.digest),
        }
    }
}

/// The name with the registry's defaults spelled out, as the engine resolves it.
fn full_name(name: &str) -> String {
    let (domain, path) = split_domain(name);
    match domain {
        None | Some("docker.io" | "index.docker.io") if !path.contains('/') => {
            format!("docker.io/library/{path}")
        }
        None | Some("docker.io" | "index.docker.io") => format!("docker.io/{path}"),
        Some(domain) => format!("{domain}/{path}"),
    }
}

/// The first component is a registry when more follow and it looks like a host (a dot, a
/// port, `localhost`, or capitals, which a path may not have), as the engine decides it.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok
        || tag.len() > 128
        || !bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(format!("`{tag}` is not a valid tag"));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("the name must be 1 to {MAX_NAME} characters"));
    }
    let (domain, path) = split_domain(name);
    if let Some(domain) = domain {
        check_domain(domain)?;
    }
    for component in path.split('/') {
        if !path_component_ok(component) {
            return Err(format!(
                "`{component}` is not a valid path component (lowercase letters and digits, \
                 joined by `.`, `_`, `__` or dashes)"
            ));
        }
    }
    Ok(())
}

/// `host[:port]`: DNS labels or an IPv4 address, or `[IPv6]`.
fn check_domain(domain: &str) -> Result<(), String> {
    let bad = || Err(format!("`{domain}` is not a valid registry host"));
    let (host, port) = match domain.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, after)) = rest.split_once(']') else {
                return bad();
            };
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return bad();
            }
            match after {
                "" => (None, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (None, Some(port)),
                    None => return bad(),
                },
            }
        }
        None => match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        },
    };
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return bad();
        }
    }
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || port.parse::<u16>().is_err() {
            return bad();
        }
    }
    Ok(())
}

/// `[a-z0-9]+` runs joined by one separator each: `.`, `_`, `__`, or dashes.
fn path_component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Each run of separators between two alphanumerics must be one of the allowed ones.
    let mut run = String::new();
    for &b in bytes {
        if alnum(b) {
            if !matches!(run.as_str(), "" | "." | "_" | "__") && !run.bytes().all(|c| c == b'-') {
                return false;
            }
            run.clear();
        } else if b"._-".contains(&b) {
            run.push(b as char);
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::PinnedImage;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(name: &str) -> Result<PinnedImage, String> {
        PinnedImage::parse(&format!("{name}@{DIGEST}"))
    }

    #[test]
    fn pinned_references_in_the_registries_grammar_are_taken() {
        for name in [
            "registry.example:5000/picd/files",
            "127.0.0.1:5000/picd/files",
            "localhost/files",
            "[::1]:5000/picd/files",
            "debian",
            "library/debian:12.5",
            "ghcr.io/some-org/my_app__x.y",
        ] {
            assert!(parse(name).is_ok(), "{name}: {:?}", parse(name));
        }
        let pinned = parse("127.0.0.1:5000/picd/files:1.0").unwrap();
        assert_eq!(
            pinned.pull_reference(),
            format!("127.0.0.1:5000/picd/files@{DIGEST}")
        );
        assert_eq!(
            pinned.to_string(),
            format!("127.0.0.1:5000/picd/files:1.0@{DIGEST}")
        );
    }

    #[test]
    fn tags_alone_and_malformed_references_are_refused() {
        let refused = |text: &str| PinnedImage::parse(text).unwrap_err();
        assert!(refused("registry.example:5000/picd/files:latest").contains("not pinned"));
        assert!(refused("picd/files").contains("not pinned"));
        assert!(refused("picd/files@sha512:abcd").contains("sha256"));
        assert!(refused(&format!("picd/files@{}", &DIGEST[..70])).contains("64"));
        assert!(refused(&DIGEST.to_uppercase().replace("SHA256", "picd/x@sha256")).contains("64"));
        for name in [
            "picd/Files",
            "picd//files",
            "picd/-files",
            "picd/files-",
            "picd/fi...les",
            "registry.example:99999/files",
            "registry.example:/files",
            "-bad.example/files",
            "[::1/files",
            "picd/files:-tag",
            "",
        ] {
            assert!(parse(name).is_err(), "{name} was taken");
        }
        assert!(parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn repo_digests_match_in_the_engines_short_forms() {
        let official = parse("docker.io/library/debian").unwrap();
        assert!(official.is_repo_digest(&format!("debian@{DIGEST}")));
        let local = parse("127.0.0.1:5000/picd/files").unwrap();
        assert!(local.is_repo_digest(&format!("127.0.0.1:5000/picd/files@{DIGEST}")));
        assert!(!local.is_repo_digest(&format!("127.0.0.1:5001/picd/files@{DIGEST}")));
        assert!(!local.is_repo_digest(&format!(
            "127.0.0.1:5000/picd/files@{}",
            DIGEST.replace('0', "1")
        )));
        assert!(!local.is_repo_digest("127.0.0.1:5000/picd/files"));
    }
}
