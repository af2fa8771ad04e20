//! The external tools the tests run: found on PATH (and in the sbin directories, where
//! Debian puts some), or the test fails naming the install step. Never a silent pass.

use std::path::PathBuf;

pub const INSTALL_STEP: &str = "packaging/install-test-deps";

/// The full path of a tool.
pub fn require_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{tool} is missing: run `{INSTALL_STEP}` (as root) to install the test tools")
        })
}

pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        require_tool(tool);
    }
}
