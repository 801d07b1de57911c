//! On-chain removal of slashed RLN members (EVM registry only).
//!
//! Place in the data flow: **evidence verified by this node → local removal ([`crate::rln`]) →
//! here: `slashRln(leaf, secret)` on the registry contract → every node's EVM view drops the
//! leaf**. The contract checks the revealed secret itself, so any node may submit; to send one
//! transaction rather than one per node, nodes take turns: each waits `stagger` × its rank
//! among the registry's node keys (ordered by SHA-256(peer id ‖ leaf), a different order for
//! every leaf, spreading the gas), then submits only if the membership is still on-chain.

use std::sync::Arc;
use std::time::Duration;

use conclave_core::{MembershipView, PeerId};
use conclave_registry::evm::{RegistryAdmin, SlashOutcome};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::metrics::{NodeMetrics, ReasonLabel};
use crate::network::NodeNetwork;

/// Attempts per removal before giving up (each after a `stagger` pause).
const ATTEMPTS: u32 = 3;

/// Submits removals of slashed members to the registry contract.
pub(crate) struct ChainRemoval {
    pub admin: RegistryAdmin,
    pub stagger: Duration,
    pub view: watch::Receiver<Arc<MembershipView>>,
    pub net: NodeNetwork,
    pub metrics: Arc<NodeMetrics>,
}

/// How many node keys submit before `me` for `leaf`: the count of keys whose
/// SHA-256(peer id ‖ leaf) sorts below ours.
fn submit_rank<'a>(me: &PeerId, nodes: impl Iterator<Item = &'a PeerId>, leaf: u32) -> usize {
    let key = |p: &PeerId| {
        let mut h = Sha256::new();
        h.update(p.to_bytes());
        h.update(leaf.to_be_bytes());
        h.finalize()
    };
    let mine = key(me);
    nodes.filter(|p| *p != me && key(p) < mine).count()
}

impl ChainRemoval {
    /// Waits for this node's turn, then removes `leaf` on-chain unless someone already did.
    pub async fn remove(&self, leaf: u32, secret: [u8; 32]) {
        let me = self.net.current().local_peer_id();
        let rank = submit_rank(&me, self.view.borrow().nodes().map(|(p, _)| p), leaf);
        tokio::time::sleep(self.stagger * rank as u32).await;
        let outcome = self.attempt(leaf, secret).await;
        self.metrics
            .rln
            .onchain_removals
            .get_or_create(&ReasonLabel { reason: outcome })
            .inc();
    }

    async fn attempt(&self, leaf: u32, secret: [u8; 32]) -> &'static str {
        for attempt in 1..=ATTEMPTS {
            match self.admin.slash_rln(u64::from(leaf), secret).await {
                Ok(SlashOutcome::Removed(tx)) => {
                    tracing::warn!(leaf, tx = %tx.tx_hash, block = tx.block, "slashed RLN member removed on-chain");
                    return "submitted";
                }
                Ok(SlashOutcome::AlreadyRemoved) => {
                    tracing::info!(leaf, "slashed RLN member already removed on-chain");
                    return "already_removed";
                }
                Err(e) => {
                    tracing::warn!(leaf, attempt, error = %e, "on-chain RLN removal failed");
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(self.stagger).await;
                    }
                }
            }
        }
        "failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_a_permutation_that_changes_with_the_leaf() {
        let peers: Vec<PeerId> = (0..12).map(|_| PeerId::random()).collect();
        let ranks = |leaf| -> Vec<usize> {
            peers
                .iter()
                .map(|p| submit_rank(p, peers.iter(), leaf))
                .collect()
        };
        for leaf in [0, 1, 7] {
            let mut r = ranks(leaf);
            r.sort_unstable();
            assert_eq!(r, (0..12).collect::<Vec<_>>(), "one node per turn");
        }
        assert!(
            (1..40).any(|leaf| ranks(leaf)[0] != ranks(0)[0]),
            "the first submitter is not the same node for every leaf"
        );
    }
}
