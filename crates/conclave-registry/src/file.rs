//! The file backend: one TOML file, polled for changes.
//!
//! Polling (rather than inotify) is deliberate: editors and deploy tools replace files by rename,
//! truncate-then-write, or through symlinks, and a content hash compared every interval catches all
//! of them the same way. The file is small, so the cost is a read and a SHA-256 per interval.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use conclave_core::{MembershipView, ViewSource};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::document::Skipped;
use crate::{RegistryDocument, RegistryError, RegistrySource, RegistryStatus};

/// A registry read from a TOML file and reloaded whenever its content changes.
///
/// A changed file that fails validation is refused: the previous view stays in force and the
/// error is logged and exposed in [`RegistryStatus`]. A bad edit never opens the gate.
pub struct FileRegistry {
    view: watch::Receiver<Arc<MembershipView>>,
    status: watch::Receiver<RegistryStatus>,
    task: JoinHandle<()>,
}

impl FileRegistry {
    /// Reads and validates `path` once, then watches it every `poll` interval. Fails if the
    /// initial content is invalid: a node must not start on a registry it cannot read.
    pub fn spawn(path: impl Into<PathBuf>, poll: Duration) -> Result<Self, RegistryError> {
        let path = path.into();
        let (bytes, digest) = read(&path)?;
        let (view, skipped) = build(&path, &bytes, &digest, 1)?;
        report_skipped(&skipped);
        let (view_tx, view_rx) = watch::channel(Arc::new(view));
        let (status_tx, status_rx) = watch::channel(RegistryStatus {
            revision: 1,
            skipped,
            ..Default::default()
        });
        let watcher = Watcher {
            path,
            seen_digest: digest,
            revision: 1,
            view_tx,
            status_tx,
        };
        let task = tokio::spawn(watcher.run(poll));
        Ok(FileRegistry {
            view: view_rx,
            status: status_rx,
            task,
        })
    }

    /// Reads and validates a registry file once, without watching it (for tools and checks):
    /// the view and the entries it skipped.
    pub fn load(path: &Path) -> Result<(MembershipView, Skipped), RegistryError> {
        let (bytes, digest) = read(path)?;
        build(path, &bytes, &digest, 1)
    }
}

impl RegistrySource for FileRegistry {
    fn view(&self) -> watch::Receiver<Arc<MembershipView>> {
        self.view.clone()
    }

    fn status(&self) -> watch::Receiver<RegistryStatus> {
        self.status.clone()
    }
}

impl Drop for FileRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Watcher {
    path: PathBuf,
    /// Hash of the newest content looked at, accepted or refused, so a refused file is reported
    /// once rather than every interval.
    seen_digest: String,
    revision: u64,
    view_tx: watch::Sender<Arc<MembershipView>>,
    status_tx: watch::Sender<RegistryStatus>,
}

impl Watcher {
    async fn run(mut self, poll: Duration) {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.view_tx.is_closed() {
                return;
            }
            self.check().await;
        }
    }

    async fn check(&mut self) {
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || read(&path))
            .await
            .unwrap_or_else(|e| {
                Err(RegistryError::Read {
                    file: self.path.display().to_string(),
                    source: std::io::Error::other(e),
                })
            });
        let outcome = read.and_then(|(bytes, digest)| {
            if digest == self.seen_digest {
                return Ok(None);
            }
            self.seen_digest = digest.clone();
            build(&self.path, &bytes, &digest, self.revision + 1).map(Some)
        });
        match outcome {
            Ok(None) => {}
            Ok(Some((view, skipped))) => {
                self.revision += 1;
                report_skipped(&skipped);
                tracing::info!(source = %view.source(), members = view.nodes().count(), "registry reloaded");
                self.view_tx.send_replace(Arc::new(view));
                self.status_tx.send_modify(|s| {
                    s.revision = self.revision;
                    s.last_error = None;
                    s.skipped = skipped;
                });
            }
            Err(e) => {
                // A missing file (mid-rename) is reported every interval until it returns, so
                // forget the digest: the same content coming back must be reloaded.
                if matches!(e, RegistryError::Read { .. }) {
                    self.seen_digest.clear();
                }
                tracing::error!(error = %e, "registry update refused; previous view stays in force");
                self.status_tx.send_modify(|s| {
                    s.last_error = Some(e.to_string());
                    s.rejected_updates += 1;
                });
            }
        }
    }
}

fn read(path: &Path) -> Result<(Vec<u8>, String), RegistryError> {
    let bytes = std::fs::read(path).map_err(|source| RegistryError::Read {
        file: path.display().to_string(),
        source,
    })?;
    let digest = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, digest))
}

fn report_skipped(skipped: &Skipped) {
    for s in skipped {
        tracing::warn!(entry = %s, "registry entry left out of the view");
    }
}

fn build(
    path: &Path,
    bytes: &[u8],
    digest: &str,
    revision: u64,
) -> Result<(MembershipView, Skipped), RegistryError> {
    let file = path.display().to_string();
    let text = std::str::from_utf8(bytes).map_err(|e| RegistryError::Syntax {
        file: file.clone(),
        message: format!("not UTF-8 text ({e})"),
    })?;
    let source = ViewSource::File {
        path: file.clone(),
        revision,
        sha256: digest.to_owned(),
    };
    RegistryDocument::parse(&file, text)?.into_view(&file, source)
}
