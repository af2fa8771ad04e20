//! Bounded reads of the services' data folders: what one request may make picd walk is
//! capped, symbolic links are never followed, and a requested path can only name something
//! inside the folder it was asked about.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// Most entries one usage count visits; past it the figure says it is a lower bound.
pub const USAGE_MAX_ENTRIES: usize = 100_000;
/// Most entries one listing returns.
pub const LISTING_MAX: usize = 1_000;
/// Longest relative path a listing accepts.
pub const PATH_MAX: usize = 1_024;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
    pub folders: u64,
    /// The walk stopped at USAGE_MAX_ENTRIES: the figures are a lower bound.
    pub truncated: bool,
}

/// The bytes and files under `root` (nothing when it does not exist).
pub fn usage(root: &Path) -> std::io::Result<Usage> {
    let mut usage = Usage::default();
    let mut pending = vec![root.to_path_buf()];
    let mut seen = 0usize;
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            seen += 1;
            if seen > USAGE_MAX_ENTRIES {
                usage.truncated = true;
                return Ok(usage);
            }
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                usage.folders += 1;
                pending.push(entry.path());
            } else if meta.is_file() {
                usage.files += 1;
                usage.bytes += meta.len();
            }
        }
    }
    Ok(usage)
}

/// A relative path from a request, checked: only plain components (no `..`, no root, no
/// prefix), so joining it to a folder stays inside that folder.
pub fn relative(raw: &str) -> Result<PathBuf, &'static str> {
    if raw.len() > PATH_MAX {
        return Err("is too long");
    }
    if raw.chars().any(char::is_control) {
        return Err("must not hold control characters");
    }
    let mut path = PathBuf::new();
    for component in Path::new(raw.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return Err("must be a path inside the folder, without .."),
        }
    }
    Ok(path)
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub name: String,
    pub kind: &'static str,
    pub bytes: u64,
    pub modified: Option<String>,
}

/// The entries of `root/rel` (sorted by name, at most LISTING_MAX), and whether more exist.
/// None when it is not a folder; a symbolic link on the way is never followed.
pub fn listing(root: &Path, rel: &Path) -> std::io::Result<Option<(Vec<Entry>, bool)>> {
    let mut dir = root.to_path_buf();
    for part in rel.components() {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut entries = Vec::new();
    let mut more = false;
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        if entries.len() == LISTING_MAX {
            more = true;
            break;
        }
        let meta = entry.metadata()?;
        let kind = if meta.is_dir() {
            "folder"
        } else if meta.is_file() {
            "file"
        } else {
            "other"
        };
        let modified = meta
            .modified()
            .ok()
            .map(|t| crate::time::format_rfc3339(time::OffsetDateTime::from(t)));
        entries.push(Entry {
            name: entry.file_name().to_string_lossy().into_owned(),
            kind,
            bytes: if meta.is_file() { meta.len() } else { 0 },
            modified,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some((entries, more)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_path_stays_inside_its_folder() {
        assert_eq!(
            relative("/notes/2026").unwrap(),
            PathBuf::from("notes/2026")
        );
        assert_eq!(relative("").unwrap(), PathBuf::new());
        assert_eq!(relative("./a/./b").unwrap(), PathBuf::from("a/b"));
        for bad in ["../bob", "a/../../x", "a\nb", &"x".repeat(2000)] {
            assert!(relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usage_counts_files_and_a_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/one"), b"12345").unwrap();
        std::fs::write(dir.path().join("a/b/two"), b"123").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("a/etc")).unwrap();
        let counted = usage(dir.path()).unwrap();
        assert_eq!((counted.bytes, counted.files, counted.folders), (8, 2, 2));
        assert!(listing(dir.path(), Path::new("a/etc")).unwrap().is_none());
        let (entries, more) = listing(dir.path(), Path::new("a")).unwrap().unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["b", "etc", "one"]);
        assert!(!more);
    }
}
