//! Commands picd runs in a service's container: ending the sessions an account that is gone
//! still holds (its login is refused once its line leaves the account file, but a connection
//! made before, an IMAP client's IDLE, would stay), and the servers' re-read of a config picd
//! rewrote.

use std::time::Duration;

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::Docker;
use futures_util::StreamExt;

use crate::services::catalog::Manifest;

/// Longest one command may run; the archive does not wait longer for it.
const COMMAND_WAIT: Duration = Duration::from_secs(10);

/// Runs the manifest's command for each gone account in the service's container, to its
/// end; a failure is logged (the login is refused all the same).
pub async fn end(docker: &Docker, container: &str, manifest: &Manifest, gone: &[String]) {
    if manifest.on_account_gone.is_empty() {
        return;
    }
    for user in gone {
        let cmd: Vec<String> = manifest
            .on_account_gone
            .iter()
            .map(|arg| arg.replace("{user}", user))
            .collect();
        if let Err(e) = exec(docker, container, manifest, &cmd).await {
            tracing::warn!(service = manifest.id, user = %user, error = %e, "ending a gone account's sessions");
        }
    }
}

/// Runs the manifest's commands for a rewritten config in the running container; a failure is
/// logged (the servers read the new config at their next start all the same).
pub async fn config_changed(docker: &Docker, container: &str, manifest: &Manifest) {
    for cmd in manifest.on_config_changed {
        match exec(docker, container, manifest, cmd).await {
            Ok(()) => tracing::info!(service = manifest.id, command = ?cmd, "config re-read"),
            Err(e) => {
                tracing::warn!(service = manifest.id, command = ?cmd, error = %e, "config re-read")
            }
        }
    }
}

/// Runs one command in the service's container (by its name, driver's container_name) as the
/// service's user, to its end (or COMMAND_WAIT).
pub async fn exec(
    docker: &Docker,
    container: &str,
    manifest: &Manifest,
    cmd: &[impl AsRef<str>],
) -> Result<(), bollard::errors::Error> {
    let config = ExecConfig {
        cmd: Some(cmd.iter().map(|a| a.as_ref().to_string()).collect()),
        user: Some(manifest.security.user.into()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = docker.create_exec(container, config).await?;
    run_to_end(docker, &exec.id).await
}

/// Starts the exec attached and reads its output to the end, so the command has finished.
async fn run_to_end(docker: &Docker, exec_id: &str) -> Result<(), bollard::errors::Error> {
    let started = docker.start_exec(exec_id, None::<StartExecOptions>).await?;
    if let StartExecResults::Attached { mut output, .. } = started {
        let drain = async { while output.next().await.is_some() {} };
        let _ = tokio::time::timeout(COMMAND_WAIT, drain).await;
    }
    Ok(())
}
