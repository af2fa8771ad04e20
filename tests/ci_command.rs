//! CI runs exactly the test command the README opens with, and that command lints too.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn ci_runs_the_readme_test_command_with_the_lints() {
    let readme = read("README.md");
    let command = readme
        .lines()
        .find(|l| l.contains("cargo test --locked") && !l.starts_with('`'))
        .expect("a test command in the README");
    assert!(command.contains("packaging/lint"), "{command}");
    let ci = read(".ci/run");
    let last = ci.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert_eq!(
        last.trim(),
        command.trim(),
        ".ci/run must run the README's command"
    );
    let lint = read("packaging/lint");
    assert!(lint.contains("cargo fmt --all -- --check"));
    assert!(lint.contains("cargo clippy --all-targets --locked -- -D warnings"));
}
