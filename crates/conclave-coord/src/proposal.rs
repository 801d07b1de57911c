//! The default proposal generator for devnets: a Heartbeat when the checklist has one, otherwise
//! a Noop. Real deployments plug in generators that look at deposits, redemptions and wallets.

use conclave_core::GroupId;
use sha2::{Digest, Sha256};

use crate::wire::{ActionType, HexBytes, Proposal};

/// The heartbeat message keep-core signs: 0xff ×8 ‖ the first 8 bytes of
/// SHA-256(group PKH ‖ coordination block as 8-byte big-endian).
pub fn heartbeat_message(group: &GroupId, coordination_block: u64) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(group.0);
    h.update(coordination_block.to_be_bytes());
    let digest = h.finalize();
    let mut m = [0xff; 16];
    m[8..].copy_from_slice(&digest[..8]);
    m
}

/// Heartbeat if the window's checklist has it, else Noop.
pub fn default_proposal(
    group: &GroupId,
    coordination_block: u64,
    checklist: &[ActionType],
) -> Proposal {
    if checklist.contains(&ActionType::Heartbeat) {
        Proposal::Heartbeat {
            message: HexBytes(heartbeat_message(group, coordination_block).to_vec()),
        }
    } else {
        Proposal::Noop
    }
}

/// Produces the leader's proposal for a window (devnets: [`DefaultGenerator`]; deployments plug
/// in one that looks at deposits, redemptions and wallets). `None` sends nothing.
pub trait ProposalGenerator: Send + Sync + 'static {
    fn generate(
        &self,
        group: &GroupId,
        coordination_block: u64,
        checklist: &[ActionType],
    ) -> Option<Proposal>;
}

/// Checks an accepted proposal before it is handed on (e.g. that a sweep's deposits exist).
pub trait ProposalValidator: Send + Sync + 'static {
    fn validate(
        &self,
        group: &GroupId,
        coordination_block: u64,
        proposal: &Proposal,
    ) -> Result<(), String>;
}

/// Heartbeat when on the checklist, else Noop.
pub struct DefaultGenerator;

impl ProposalGenerator for DefaultGenerator {
    fn generate(
        &self,
        group: &GroupId,
        coordination_block: u64,
        checklist: &[ActionType],
    ) -> Option<Proposal> {
        Some(default_proposal(group, coordination_block, checklist))
    }
}

/// Accepts every proposal that passed the follower checks (devnets).
pub struct AcceptAll;

impl ProposalValidator for AcceptAll {
    fn validate(&self, _: &GroupId, _: u64, _: &Proposal) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_only_when_on_the_checklist() {
        let g = GroupId([4; 20]);
        let m = heartbeat_message(&g, 1800);
        assert_eq!(&m[..8], &[0xff; 8]);
        let mut pre = vec![4u8; 20];
        pre.extend(1800u64.to_be_bytes());
        assert_eq!(&m[8..], &Sha256::digest(&pre)[..8]);
        assert_eq!(
            default_proposal(&g, 1800, &[ActionType::Redemption]),
            Proposal::Noop
        );
        assert_eq!(
            default_proposal(&g, 1800, &[ActionType::Redemption, ActionType::Heartbeat]).action(),
            ActionType::Heartbeat
        );
    }
}
