//! The machine side of the network labs: running commands, checking that the test runs as
//! root with its tools installed, bounded polling, and leasing an address block.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{require_tools, INSTALL_STEP};

/// How often `eventually` checks again.
const POLL: Duration = Duration::from_millis(200);

/// Fails the test, naming the install step, unless it runs as root with every tool present.
pub fn require_root_and_tools(tools: &[&str]) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0");
    assert!(
        root,
        "this test creates network namespaces and must run as root (CI does); \
         run {INSTALL_STEP} as root, then the tests as root"
    );
    require_tools(tools);
}

/// Runs a command line (words split on whitespace) to completion; panics with its output
/// when it fails.
pub fn run(line: &str) -> String {
    let args: Vec<&str> = line.split_whitespace().collect();
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`{line}` failed ({}): {text}{err}",
        out.status
    );
    text
}

/// Whether a command line succeeds (its output discarded).
pub fn succeeds(line: &str) -> bool {
    let args: Vec<&str> = line.split_whitespace().collect();
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// A /24 of 10.213.0.0/16 held by this test process: a file created exclusively under the
/// temporary directory names the owner's pid; a lease whose owner is gone is taken over.
pub struct Lease {
    pub octet: u8,
    file: PathBuf,
}

impl Lease {
    pub fn take(start: u32) -> Lease {
        let dir = std::env::temp_dir().join("picd-netlab");
        std::fs::create_dir_all(&dir).expect("lease directory");
        let in_use = run("ip -4 -o addr show");
        for i in 0..256 {
            let octet = ((start + i) % 256) as u8;
            if in_use.contains(&format!(" 10.213.{octet}.")) {
                continue;
            }
            let file = dir.join(format!("{octet}.lease"));
            for _ in 0..2 {
                match OpenOptions::new().write(true).create_new(true).open(&file) {
                    Ok(mut f) => {
                        use std::io::Write;
                        let _ = write!(f, "{}", std::process::id());
                        return Lease { octet, file };
                    }
                    Err(_) => {
                        let owner = std::fs::read_to_string(&file).unwrap_or_default();
                        let alive =
                            !owner.is_empty() && Path::new("/proc").join(owner.trim()).exists();
                        if alive {
                            break;
                        }
                        let _ = std::fs::remove_file(&file);
                    }
                }
            }
        }
        panic!("no free 10.213.X.0/24 for a network lab");
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}
