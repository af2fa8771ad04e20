//! `picd services build-images`: each service's image built from Debian packages on this
//! machine (no registry is needed), imported into the engine, and its Id recorded. The driver
//! creates containers from the recorded Id only, so an image changed behind picd's back is
//! never run.
//!
//! A service the owner names in `service_images` is pulled by digest instead (`pull`), and
//! recorded the same way.
//!
//! A built root filesystem is cached as a tar keyed by the recipe's hash: a second build of
//! the same recipe (another cell on the machine, a CI run's next test) only imports it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::catalog::{ImageSource, Manifest, CATALOG};
use super::store::{self, BuiltImage};
use crate::config::PinnedImage;
use crate::db::Db;

/// The build recipe's script: its text is part of every recipe's hash.
const BUILD_SCRIPT: &str = include_str!("build_rootfs.sh");

/// The hash naming a recipe's cached root filesystem and its image tag.
pub fn recipe_hash(manifest: &Manifest) -> String {
    let ImageSource::DebianPackages { suite, packages } = &manifest.image;
    let mut hash = Sha256::new();
    for part in [manifest.id, manifest.version, suite, BUILD_SCRIPT] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    for package in *packages {
        hash.update(package.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// The Debian mirror this machine installs its own packages from (the first `deb` source of
/// apt's configuration), so an image build needs nothing the machine does not already use.
pub fn machine_mirror() -> anyhow::Result<String> {
    let deb822 =
        std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    for line in deb822.lines() {
        if let Some(uris) = line.strip_prefix("URIs:") {
            if let Some(first) = uris.split_whitespace().next() {
                return Ok(first.to_string());
            }
        }
    }
    let classic = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for line in classic.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("deb") {
            if let Some(url) = words.find(|w| !w.starts_with('[')) {
                return Ok(url.to_string());
            }
        }
    }
    anyhow::bail!("no Debian mirror in apt's sources; pass --mirror URL")
}

/// Builds (or takes from the cache) one service's root filesystem tar.
///
/// Builds share the cache's downloaded packages, which two debootstraps cannot fill at once, so
/// one build runs at a time per cache, under `build.lock`; a builder that waited finds the tar
/// the other one made. The build's shell inherits the lock (as its standard input): a picd
/// stopped mid-build leaves a build that still holds it, and the next builder waits for that
/// one instead of building into the same directory.
fn rootfs_tar(
    manifest: &Manifest,
    cache: &Path,
    mirror: &str,
    report: &Report,
) -> anyhow::Result<PathBuf> {
    let ImageSource::DebianPackages { suite, packages } = &manifest.image;
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let key = format!("{}-{}", manifest.id, &recipe_hash(manifest)[..16]);
    let tar = cache.join(format!("{key}.tar"));
    let cached = || {
        report(json!({ "service": manifest.id, "step": "rootfs", "cached": true }));
        Ok(tar.clone())
    };
    // The tar appears by a rename once complete: present means whole.
    if tar.exists() {
        return cached();
    }
    // Read and write: as the shell's standard input it reads as empty.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(cache.join("build.lock"))?;
    lock.lock().context("locking the image cache")?;
    if tar.exists() {
        return cached();
    }
    let root = cache.join(format!("{key}.root"));
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    report(json!({
        "service": manifest.id, "step": "rootfs", "cached": false,
        "suite": suite, "packages": packages,
    }));
    // The build's own output (debootstrap, apt) goes to a log beside the tar.
    let log = std::fs::File::create(cache.join(format!("{key}.log")))?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(BUILD_SCRIPT)
        .env("ROOT", &root)
        .env("SUITE", suite)
        .env("MIRROR", mirror)
        .env("PACKAGES", packages.join(" "))
        .env("OUT", &tar)
        .env("DEB_CACHE", cache.join("debs"))
        .stdin(lock)
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("running the image build (sh)")?;
    let _ = std::fs::remove_dir_all(&root);
    anyhow::ensure!(
        status.success(),
        "{}: the image build failed ({status}); its output is in {}",
        manifest.id,
        cache.join(format!("{key}.log")).display()
    );
    Ok(tar)
}

/// The image's tag in the engine, the cell's own: a tag is one namespace per engine, and
/// another cell's build must not move the tag this cell verifies its image by.
pub(super) fn cell_tag(recipe_hash: &str, cell_id: &str) -> String {
    let cell = cell_id.get(..12).unwrap_or(cell_id);
    format!("{}-{cell}", &recipe_hash[..16])
}

/// Imports a root filesystem tar and returns the engine's Id for it.
async fn import(
    docker: &Docker,
    manifest: &Manifest,
    tar: &Path,
    cell_id: &str,
) -> anyhow::Result<String> {
    let tag = cell_tag(&recipe_hash(manifest), cell_id);
    let repo = format!("picd/{}", manifest.id);
    // Streamed from the file: a root filesystem is over 100 MB, never held in memory.
    let file = tokio::fs::File::open(tar).await?;
    let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut chunk = vec![0u8; 256 * 1024];
        let n = file.read(&mut chunk).await?;
        chunk.truncate(n);
        Ok::<_, std::io::Error>((n > 0).then(|| (axum::body::Bytes::from(chunk), file)))
    });
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(&repo)
        .tag(&tag)
        .build();
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_try_stream(chunks)), None);
    while let Some(step) = progress.next().await {
        step.context("docker import")?;
    }
    let inspected = docker.inspect_image(&format!("{repo}:{tag}")).await?;
    inspected
        .id
        .context("the engine gave the imported image no Id")
}

/// Where a build's progress goes: one JSON event per step (`rootfs` or `pull`, `image`).
pub type Report = Arc<dyn Fn(Value) + Send + Sync>;

/// How the images come to the engine: built from Debian packages with this cache and mirror,
/// except the services pulled by digest.
pub struct Plan {
    pub cache: PathBuf,
    pub mirror: String,
    pub pulled: BTreeMap<String, PinnedImage>,
}

/// Builds (or pulls) every catalog service's image and records its Id, reporting each step.
pub async fn build_all(
    db: &Db,
    docker: &Docker,
    plan: &Plan,
    report: Report,
) -> anyhow::Result<()> {
    let cell_id = db
        .call(|conn| Ok(crate::cell::store::cell_id(conn)?))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for manifest in CATALOG {
        let started = Instant::now();
        let (recipe, image_id) = match plan.pulled.get(manifest.id) {
            Some(pinned) => (
                super::pull::recipe_hash(manifest, pinned),
                super::pull::pull(docker, manifest, pinned, &cell_id, &report).await?,
            ),
            None => {
                let (m, c, mi, r) = (
                    *manifest,
                    plan.cache.clone(),
                    plan.mirror.clone(),
                    report.clone(),
                );
                let tar = tokio::task::spawn_blocking(move || rootfs_tar(m, &c, &mi, &r)).await??;
                let image_id = import(docker, manifest, &tar, &cell_id).await?;
                (recipe_hash(manifest), image_id)
            }
        };
        let built = BuiltImage {
            service_id: manifest.id.to_string(),
            recipe_hash: recipe,
            image_id: image_id.clone(),
            built_at: crate::time::now_rfc3339(),
        };
        db.write(move |tx| Ok(store::record_image(tx, &built)?))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        report(json!({
            "service": manifest.id, "step": "image", "image_id": image_id,
            "pulled": plan.pulled.contains_key(manifest.id),
            "seconds": started.elapsed().as_secs_f64(),
        }));
    }
    Ok(())
}

/// The command line's report: `<id>: image <Id> (<s> s)` on standard output for each image
/// (scripts read it), the root filesystem steps on standard error.
pub fn print_progress(event: Value) {
    let service = event["service"].as_str().unwrap_or_default();
    match event["step"].as_str() {
        Some("image") => println!(
            "{service}: image {} ({:.1} s)",
            event["image_id"].as_str().unwrap_or_default(),
            event["seconds"].as_f64().unwrap_or_default()
        ),
        Some("rootfs") if event["cached"] == true => {
            eprintln!("{service}: root filesystem from the cache")
        }
        Some("pull") => match event["status"].as_str() {
            Some(status) => eprintln!(
                "{service}: {} {status}",
                event["layer"].as_str().unwrap_or_default()
            ),
            None => eprintln!(
                "{service}: pulling {}",
                event["reference"].as_str().unwrap_or_default()
            ),
        },
        Some("rootfs") => eprintln!(
            "{service}: debootstrap {} and the service's packages (minutes)",
            event["suite"].as_str().unwrap_or_default()
        ),
        _ => {}
    }
}

/// The engine's image for a recorded build: under the cell's own tag, or the tag a picd from
/// before cell tags gave it (its images stay in force after an upgrade). The error says which
/// tag is missing.
pub async fn tagged(
    docker: &Docker,
    image: &BuiltImage,
    cell_id: &str,
) -> Result<(String, bollard::models::ImageInspect), String> {
    let repo = format!("picd/{}", image.service_id);
    let own = format!("{repo}:{}", cell_tag(&image.recipe_hash, cell_id));
    let legacy = format!("{repo}:{}", &image.recipe_hash[..16]);
    match docker.inspect_image(&own).await {
        Ok(found) => Ok((own, found)),
        Err(_) => match docker.inspect_image(&legacy).await {
            Ok(found) => Ok((legacy, found)),
            Err(e) => Err(format!("image {own} is not in the engine ({e})")),
        },
    }
}

/// Refuses an image whose Id in the engine is not the one recorded when picd built it: a
/// retagged or rebuilt image is not what the owner installed.
pub async fn verify(
    docker: &Docker,
    image: &BuiltImage,
    cell_id: &str,
) -> Result<(), crate::driver::DriverError> {
    let (tag, found) = tagged(docker, image, cell_id).await.map_err(|missing| {
        crate::driver::DriverError::Failed(
            "docker",
            format!(
                "{}: {missing}; run `picd services build-images`",
                image.service_id
            ),
        )
    })?;
    if found.id.as_deref() != Some(image.image_id.as_str()) {
        return Err(crate::driver::DriverError::Failed(
            "docker",
            format!(
                "{}: image {tag} has Id {} but picd built {}; refusing to run it",
                image.service_id,
                found.id.unwrap_or_default(),
                image.image_id
            ),
        ));
    }
    Ok(())
}
