//! The DNS engine's fuzz targets (fuzz/, cargo fuzz with libFuzzer and AddressSanitizer) run
//! for a bounded time each: the zone-file import on arbitrary text, and query handling on
//! arbitrary bytes. A crash fails the test and keeps the input that caused it.
//!
//! libFuzzer's instrumentation needs flags stable rustc accepts only with RUSTC_BOOTSTRAP=1;
//! the build uses its own target directory (`<target>/fuzz`), so it never disturbs the
//! ordinary build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long each target runs (override with PICD_FUZZ_SECONDS, e.g. for a longer session).
const DEFAULT_SECONDS: u64 = 60;
/// The instrumented build of the fuzz crate, cold, on two cores.
const BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Fewer executions than this means the fuzzer did not really run.
const MIN_RUNS: u64 = 1_000;
const INSTALL_STEP: &str = "packaging/install-test-deps";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    command
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", target.join("fuzz"))
        .env("RUSTC_BOOTSTRAP", "1")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to completion within `limit`, output into `log`; returns success.
fn run_logged(mut command: Command, log: &Path, limit: Duration) -> bool {
    let file = std::fs::File::create(log).expect("log file");
    let mut child = command
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} ran past {limit:?}; log: {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with('"')).collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

fn fuzz(target: &str) {
    let available = cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        available,
        "cargo-fuzz is missing: run {INSTALL_STEP} (cargo install cargo-fuzz; a C++ compiler)"
    );
    let seconds: u64 = std::env::var("PICD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECONDS);
    let work = tempfile::Builder::new()
        .prefix(&format!("picd-fuzz-{target}-"))
        .tempdir()
        .expect("temporary directory");
    let corpus = work.path().join("corpus");
    std::fs::create_dir(&corpus).expect("corpus dir");

    let build_log = work.path().join("build.log");
    let mut build = cargo();
    build.args(["fuzz", "build", "--fuzz-dir", "fuzz", target]);
    if !run_logged(build, &build_log, BUILD_LIMIT) {
        panic!(
            "building fuzz target {target} failed:\n{}",
            tail(&build_log, 40)
        );
    }

    // New inputs go to the temporary corpus; the seeds in the repository are only read.
    let run_log = work.path().join("run.log");
    let mut run = cargo();
    run.args(["fuzz", "run", "--fuzz-dir", "fuzz", target])
        .arg(&corpus)
        .arg(repo().join("fuzz/seeds").join(target))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", work.path().display()))
        .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"]);
    let limit = Duration::from_secs(seconds + 300);
    if !run_logged(run, &run_log, limit) {
        let kept = work.keep();
        panic!(
            "fuzz target {target} crashed; the input and the log are in {}:\n{}",
            kept.display(),
            tail(&kept.join("run.log"), 60)
        );
    }
    let log = std::fs::read_to_string(&run_log).unwrap_or_default();
    let runs: u64 = log
        .lines()
        .find_map(|l| {
            l.strip_prefix("Done ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(
        runs >= MIN_RUNS,
        "{target} ran only {runs} inputs in {seconds} s:\n{}",
        tail(&run_log, 30)
    );
    eprintln!("fuzz target {target}: {runs} inputs in {seconds} s, no crash");
}

#[test]
fn zone_file_import_survives_fuzzing() {
    fuzz("zone_file");
}

#[test]
fn query_handling_survives_fuzzing() {
    fuzz("dns_message");
}
