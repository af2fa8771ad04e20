//! A service image pulled from a registry, the owner's choice (`service_images`), instead of
//! built here: pulled by its digest, checked to be that digest, and given the tag picd gives
//! the images it builds, so `images::verify` and the install path treat it as any other.
//! The catalog still says how it runs (entrypoint, config, mounts, hardening): the image
//! must be one made for it.

use std::collections::BTreeMap;

use anyhow::Context;
use bollard::query_parameters::{CreateImageOptionsBuilder, TagImageOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::catalog::{self, Manifest};
use super::images::Report;
use crate::config::PinnedImage;

/// The recipe hash of a pulled image: from the reference alone, so another reference in the
/// setting is another image (another tag), never the old one under a new name.
pub fn recipe_hash(manifest: &Manifest, pinned: &PinnedImage) -> String {
    let mut hash = Sha256::new();
    for part in ["pulled", manifest.id, &pinned.pull_reference()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// The setting's services, each checked to be in the catalog: a typo would otherwise be a
/// service quietly built instead of pulled.
pub fn pinned_for_catalog(
    settings: &crate::config::Settings,
) -> anyhow::Result<BTreeMap<String, PinnedImage>> {
    let pinned = settings.pinned_images()?;
    if let Some(unknown) = pinned.keys().find(|id| catalog::find(id).is_none()) {
        anyhow::bail!("service_images.{unknown}: no catalog service has that id");
    }
    Ok(pinned)
}

/// Pull progress worth a line: not the byte counts of each layer's download and extraction.
fn worth_reporting(status: &str) -> bool {
    !matches!(status, "Downloading" | "Extracting" | "Waiting")
}

/// Pulls the pinned image, checks that the engine has it as that name and digest, tags it
/// as the cell's own, and returns its Id. Nothing is recorded here: on an error the caller
/// records nothing either.
pub async fn pull(
    docker: &Docker,
    manifest: &Manifest,
    pinned: &PinnedImage,
    cell_id: &str,
    report: &Report,
) -> anyhow::Result<String> {
    let reference = pinned.pull_reference();
    let service = manifest.id;
    report(json!({ "service": service, "step": "pull", "reference": pinned.to_string() }));
    let options = CreateImageOptionsBuilder::new()
        .from_image(&reference)
        .build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(step) = progress.next().await {
        let info = step.map_err(|e| anyhow::anyhow!("{service}: pulling {pinned}: {e}"))?;
        if let Some(status) = info.status.filter(|s| worth_reporting(s)) {
            report(json!({
                "service": service, "step": "pull", "layer": info.id, "status": status,
            }));
        }
    }
    let image = docker.inspect_image(&reference).await.with_context(|| {
        format!("{service}: the engine has no image {reference} after its pull")
    })?;
    let repo_digests = image.repo_digests.unwrap_or_default();
    // The engine resolved the reference; what it holds must say it came from that name at
    // that digest, or it is not the image the owner pinned.
    anyhow::ensure!(
        repo_digests.iter().any(|d| pinned.is_repo_digest(d)),
        "{service}: the image pulled for {pinned} does not carry that digest \
         (RepoDigests {repo_digests:?}); refusing it"
    );
    let image_id = image
        .id
        .with_context(|| format!("{service}: the engine gave {reference} no Id"))?;
    let repo = format!("picd/{service}");
    let tag = super::images::cell_tag(&recipe_hash(manifest, pinned), cell_id);
    // Tagged by its Id: the tag names the image just checked, whatever the name does since.
    let options = TagImageOptionsBuilder::new().repo(&repo).tag(&tag).build();
    docker
        .tag_image(&image_id, Some(options))
        .await
        .with_context(|| format!("{service}: tagging {reference} as {repo}:{tag}"))?;
    Ok(image_id)
}
