//! What a member killed with SIGKILL must still hold when it starts again: every coordination
//! window it settled (leader, proposal, faults with their evidence) and every RLN removal it
//! made. The node writes both to its state store as they happen; nothing here may live only in
//! memory.

use std::time::{Duration, Instant};

use conclave_api::{RemovedSecret, RlnRemovedAnswer, WindowsAnswer};
use conclave_coord::WindowOutcome;

use super::client;
use super::cluster::NodeProc;

/// A member's settled windows and removals at one moment.
pub struct Kept {
    windows: Vec<WindowOutcome>,
    removed: Vec<RemovedSecret>,
}

impl Kept {
    async fn read(http: &reqwest::Client, node: &NodeProc) -> anyhow::Result<Kept> {
        let (_, w) =
            client::get::<WindowsAnswer>(http, &node.url("/v1/coordination/windows")).await?;
        let (_, r) = client::get::<RlnRemovedAnswer>(http, &node.url("/v1/rln/removed")).await?;
        Ok(Kept {
            windows: w.windows,
            removed: r.removed,
        })
    }

    /// Waits (at most `within`) until `node` has settled a window with a fault and one with a
    /// proposal, and removed the identity of `secret` (hex); then what it holds.
    pub async fn wait_for(
        http: &reqwest::Client,
        node: &NodeProc,
        secret: &str,
        within: Duration,
    ) -> anyhow::Result<Kept> {
        let deadline = Instant::now() + within;
        loop {
            let k = Kept::read(http, node).await?;
            let faulted = k.windows.iter().any(|w| !w.faults.is_empty());
            let proposed = k.windows.iter().any(|w| w.proposal.is_some());
            let removed = k.removal(secret).is_some();
            if faulted && proposed && removed {
                return Ok(k);
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "after {within:?}: a window with a fault {faulted}, with a proposal \
                     {proposed}, the double signaller removed {removed}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn removal(&self, secret: &str) -> Option<&RemovedSecret> {
        self.removed.iter().find(|r| r.secret == secret)
    }

    /// What `node` holds now, against this earlier record: (what was checked, whether it held).
    pub async fn checks(
        &self,
        http: &reqwest::Client,
        node: &NodeProc,
        secret: &str,
    ) -> anyhow::Result<Vec<(String, bool)>> {
        let now = Kept::read(http, node).await?;
        let kept = self
            .windows
            .iter()
            .filter(|w| now.windows.contains(w))
            .count();
        let faulted = self.windows.iter().filter(|w| !w.faults.is_empty()).count();
        let removal = self.removal(secret).map(|r| r.removed_at_ms);
        Ok(vec![
            (
                format!(
                    "{kept} of the {} windows it settled before the kill ({faulted} with faults) \
                     are still there, unchanged",
                    self.windows.len()
                ),
                kept == self.windows.len(),
            ),
            (
                format!(
                    "it settled {} more windows after the restart",
                    now.windows.len().saturating_sub(kept)
                ),
                now.windows.len() > kept,
            ),
            (
                "its removal of the double signaller from before the kill is still there, \
                 with its time"
                    .to_string(),
                removal.is_some() && now.removal(secret).map(|r| r.removed_at_ms) == removal,
            ),
        ])
    }
}
