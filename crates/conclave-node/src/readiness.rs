//! `/readyz`: a node is ready when its own key is authorized (a signer removed from the set
//! must not act as one), enough members are connected for its messages to reach a quorum of the
//! signer set, and its registry is current (a stale view may still admit a key revoked since). It also says which chain head the node acts on, and whether that is a
//! fallback tip from members' headers.

use std::sync::Arc;

use conclave_core::{Clock, MembershipView, PeerId, Unauthorized};
use conclave_registry::RegistryStatus;

use crate::chain_view::ChainView;
use crate::network::NodeNetwork;
use tokio::sync::watch;

/// Connected members against the quorum, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadinessReport {
    pub ready: bool,
    /// Whether the view in force authorizes this node's own key (publishing is refused when not).
    pub member: bool,
    pub connected_members: usize,
    pub quorum: usize,
    pub registry_stale: bool,
    /// The chain head the node acts on, and whether it is a fallback tip (headers members of
    /// f+1 operators agreed on) rather than the node's own chain source.
    pub chain_head: Option<u64>,
    pub on_fallback: bool,
}

/// The quorum when none is configured: two thirds of the other members, rounded up.
pub fn default_quorum(other_members: usize) -> usize {
    (other_members * 2).div_ceil(3)
}

/// Reads the view and the peer table to judge readiness.
#[derive(Clone)]
pub(crate) struct Readiness {
    pub view: watch::Receiver<Arc<MembershipView>>,
    pub registry_status: watch::Receiver<RegistryStatus>,
    pub net: NodeNetwork,
    pub configured_quorum: Option<usize>,
    pub clock: Arc<dyn Clock>,
    pub chain: Option<ChainView>,
}

impl Readiness {
    pub fn evaluate(&self) -> ReadinessReport {
        let view = self.view.borrow().clone();
        let peers = self.net.peers();
        let local = peers.local;
        let at = self.clock.moment();
        let member = view.authorization(&local, at).is_ok();
        let others: Vec<&PeerId> = view
            .members_at(at)
            .map(|(p, _)| p)
            .filter(|p| **p != local)
            .collect();
        let connected_members = others
            .iter()
            .filter(|p| peers.peers.contains_key(p))
            .count();
        let quorum = self
            .configured_quorum
            .unwrap_or_else(|| default_quorum(others.len()));
        let registry_stale = self.registry_status.borrow().stale;
        ReadinessReport {
            ready: member && connected_members >= quorum && !registry_stale,
            member,
            connected_members,
            quorum,
            registry_stale,
            chain_head: self.chain.as_ref().map(|c| c.heads().borrow().number),
            on_fallback: self
                .chain
                .as_ref()
                .is_some_and(|c| c.fallback_tip().is_some()),
        }
    }

    /// Whether the view in force authorizes this node's key now, and why not.
    pub fn own_authorization(&self) -> (PeerId, Result<(), Unauthorized>) {
        let local = self.net.current().local_peer_id();
        let view = self.view.borrow().clone();
        let verdict = view.authorization(&local, self.clock.moment()).map(|_| ());
        (local, verdict)
    }
}

impl ReadinessReport {
    /// What keeps the node from being ready, in words (empty when ready).
    pub fn reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.member {
            out.push("this node's key is not authorized by the registry's view (left the set, revoked or expired): it does not publish".to_owned());
        }
        if self.registry_stale {
            out.push(
                "the registry source cannot be read: the view in force may be out of date"
                    .to_owned(),
            );
        }
        if self.connected_members < self.quorum {
            out.push(format!(
                "{} of the {} members needed are connected",
                self.connected_members, self.quorum
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_quorum_is_two_thirds_rounded_up() {
        assert_eq!(default_quorum(0), 0);
        assert_eq!(default_quorum(1), 1);
        assert_eq!(default_quorum(3), 2);
        assert_eq!(default_quorum(6), 4);
        assert_eq!(default_quorum(14), 10);
    }
}
