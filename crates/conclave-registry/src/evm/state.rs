//! The registry state rebuilt from contract events: a sans-IO fold over logs in chain order,
//! mirroring the contract's own rules, and its projection into a [`MembershipView`].

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::{Address, Bytes};
use conclave_core::{
    Expiry, Group, GroupId, MembershipView, Multiaddr, NodeAuthorization, OperatorId, PeerId,
    RlnMember, TopicName, ViewBuilder, ViewSource,
};

use super::bindings::ConclaveRegistry::ConclaveRegistryEvents as Event;

use super::OPEN_ENDED;
use crate::validators::{OneLeafPerValidator, RegistrationDomain, ValidatorLeaf};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Delegation {
    operator: Address,
    generation: u32,
    scopes: u64,
    valid_from: u64,
    valid_until: u64,
    revoked_at: Option<u64>,
    addresses: Vec<String>,
}

/// An RLN membership as registered on-chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlnRegistration {
    pub index: u64,
    pub operator: OperatorId,
    /// Big-endian bytes of the rate commitment (a BN254 field element).
    pub rate_commitment: [u8; 32],
    pub limit: u32,
    pub removed: bool,
    /// The Ethereum validator that signed this registration, checked when its event was folded.
    pub validator: Option<ValidatorLeaf>,
}

/// Everything the contract's events say, folded in chain order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainState {
    /// Active operators and their current generation.
    active: BTreeMap<Address, u32>,
    /// Generation counter per operator ever added (as the contract keeps it).
    generations: BTreeMap<Address, u32>,
    scopes: BTreeMap<u8, String>,
    delegations: BTreeMap<Bytes, Delegation>,
    groups: BTreeMap<[u8; 20], Vec<Address>>,
    rln: Vec<RlnRegistration>,
    /// RLN membership caps governance set (`RlnCapSet`); an operator without one holds one.
    rln_caps: BTreeMap<Address, u32>,
    /// The chain and contract validator registrations must have been signed for.
    domain: RegistrationDomain,
}

/// What a view could not include, and why (on-chain data cannot be refused, only skipped).
pub use crate::document::Skipped;

impl ChainState {
    /// The empty state of the registry `contract` on chain `chain_id`.
    pub fn new(chain_id: u64, contract: Address) -> Self {
        ChainState {
            domain: RegistrationDomain {
                chain_id,
                registry: contract.0 .0,
            },
            ..ChainState::default()
        }
    }

    /// The same registry's empty state (a full resync starts from it).
    pub fn emptied(&self) -> Self {
        ChainState {
            domain: self.domain,
            ..ChainState::default()
        }
    }

    /// Applies one event. Events must come in chain order (block, then log index).
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::OperatorAdded(e) => {
                let g = self.generations.entry(e.operator).or_default();
                *g += 1;
                self.active.insert(e.operator, *g);
            }
            Event::OperatorRemoved(e) => {
                self.active.remove(&e.operator);
            }
            Event::ScopeDefined(e) => {
                self.scopes.insert(e.bit, e.name.clone());
            }
            Event::NodeAuthorized(e) => {
                let generation = self.generations.get(&e.operator).copied().unwrap_or(0);
                self.delegations.insert(
                    e.peerId.clone(),
                    Delegation {
                        operator: e.operator,
                        generation,
                        scopes: e.scopes,
                        valid_from: e.validFrom,
                        valid_until: e.validUntil,
                        revoked_at: None,
                        addresses: Vec::new(),
                    },
                );
            }
            Event::NodeRevoked(e) => {
                if let Some(d) = self.delegations.get_mut(&e.peerId) {
                    d.revoked_at = Some(e.effectiveBlock);
                }
            }
            Event::NodeAddressesSet(e) => {
                if let Some(d) = self.delegations.get_mut(&e.peerId) {
                    d.addresses = e.addresses.clone();
                }
            }
            Event::GroupSet(e) => {
                self.groups.insert(e.groupId.0, e.seats.clone());
            }
            Event::GroupRemoved(e) => {
                self.groups.remove(&e.groupId.0);
            }
            Event::RlnRegistered(e) => self.rln.push(RlnRegistration {
                index: e.index.saturating_to(),
                operator: OperatorId(e.operator.0 .0),
                rate_commitment: e.rateCommitment.to_be_bytes(),
                limit: e.limit,
                removed: false,
                validator: None,
            }),
            Event::RlnValidatorRegistered(e) => self.attach_validator(e),
            Event::RlnRemoved(e) => self.remove_rln(e.index.saturating_to()),
            Event::RlnSlashed(e) => self.remove_rln(e.index.saturating_to()),
            Event::RlnCapSet(e) => {
                self.rln_caps.insert(e.operator, e.cap);
            }
            // Who signed and who submitted changes no membership: the action's own event does.
            // Admission of a validator key changes no membership until it registers.
            Event::OwnershipTransferred(_)
            | Event::SignedActionUsed(_)
            | Event::ValidatorAssigned(_) => {}
        }
    }

    /// Checks the validator's signature on leaf `e.index` once, here, so a view costs no
    /// pairing. The event follows the leaf's `RlnRegistered` in the same transaction.
    fn attach_validator(&mut self, e: &super::bindings::ConclaveRegistry::RlnValidatorRegistered) {
        let domain = self.domain;
        let Some(m) = usize::try_from(e.index.saturating_to::<u64>())
            .ok()
            .and_then(|i| self.rln.get_mut(i))
        else {
            return;
        };
        let Ok(pubkey) = <[u8; 48]>::try_from(e.pubkey.as_ref()) else {
            m.validator = Some(ValidatorLeaf::refused(
                [0; 48],
                format!("{} bytes of validator key (expected 48)", e.pubkey.len()),
            ));
            return;
        };
        m.validator = Some(
            match conclave_bls::eip2537::signature_from_g2(&e.signature) {
                Ok(sig) => ValidatorLeaf::check(pubkey, &sig, m.rate_commitment, m.limit, domain),
                Err(err) => ValidatorLeaf::refused(pubkey, err.to_string()),
            },
        );
    }

    fn remove_rln(&mut self, index: u64) {
        // Registrations are pushed in index order, so the index is the position.
        if let Some(m) = usize::try_from(index)
            .ok()
            .and_then(|i| self.rln.get_mut(i))
        {
            m.removed = true;
        }
    }

    /// RLN registrations in index order (removed ones flagged).
    pub fn rln(&self) -> &[RlnRegistration] {
        &self.rln
    }

    /// The membership view this state implies, and the entries it had to leave out.
    pub fn to_view(&self, source: ViewSource) -> (MembershipView, Skipped) {
        let mut skipped = Vec::new();
        let mut b = ViewBuilder::new(source);
        for op in self.active.keys() {
            // Distinct addresses: the builder cannot refuse them.
            let _ = b.operator(OperatorId(op.0 .0));
        }
        for (op, &cap) in &self.rln_caps {
            // The contract bounds caps as the builder does; a refused one leaves the default 1.
            if let Err(e) = b.rln_cap(OperatorId(op.0 .0), cap) {
                skipped.push(e.to_string());
            }
        }
        for (peer_bytes, d) in &self.delegations {
            if self.active.get(&d.operator) != Some(&d.generation) {
                continue;
            }
            let Ok(peer) = PeerId::from_bytes(peer_bytes) else {
                skipped.push(format!(
                    "node key 0x{} of {}: not a libp2p PeerId",
                    alloy::hex::encode(peer_bytes),
                    d.operator
                ));
                continue;
            };
            let mut scopes = BTreeSet::new();
            for bit in (0..64u8).filter(|b| d.scopes >> b & 1 == 1) {
                match self.scopes.get(&bit).map(|n| n.parse::<TopicName>()) {
                    Some(Ok(t)) => {
                        scopes.insert(t);
                    }
                    Some(Err(e)) => skipped.push(format!("scope bit {bit} of {peer}: {e}")),
                    None => skipped.push(format!("scope bit {bit} of {peer}: not defined")),
                }
            }
            let mut addresses = Vec::new();
            for a in &d.addresses {
                match a.parse::<Multiaddr>() {
                    Ok(m) => addresses.push(conclave_core::split_peer_id(m).0),
                    Err(_) => {
                        skipped.push(format!("address hint {a:?} of {peer}: not a multiaddr"))
                    }
                }
            }
            let until = d
                .revoked_at
                .into_iter()
                .chain((d.valid_until != OPEN_ENDED).then_some(d.valid_until))
                .min();
            let auth = NodeAuthorization {
                operator: OperatorId(d.operator.0 .0),
                scopes,
                valid_from_block: Some(d.valid_from),
                expiry: until.map(Expiry::Block),
                addresses,
            };
            if let Err(e) = b.node(peer, auth) {
                skipped.push(format!("node {peer}: {e}"));
            }
        }
        for (id, seats) in &self.groups {
            let group = Group {
                id: GroupId(*id),
                seats: seats.iter().map(|a| OperatorId(a.0 .0)).collect(),
            };
            if let Err(e) = b.group(group) {
                skipped.push(format!("group 0x{}: {e}", alloy::hex::encode(id)));
            }
        }
        // Removed memberships are left out: their leaves are empty in every node's tree. Leaves
        // beyond an operator's cap (after governance lowered it) are skipped, the earliest kept;
        // so are a validator's leaves whose signature fails here, and its second leaf.
        let mut validators = OneLeafPerValidator::default();
        for r in self.rln.iter().filter(|r| !r.removed) {
            let Ok(index) = u32::try_from(r.index) else {
                skipped.push(format!("RLN leaf {}: beyond the tree", r.index));
                continue;
            };
            if let Some(v) = &r.validator {
                if let Err(e) = validators.admit(index, v) {
                    skipped.push(e);
                    continue;
                }
            }
            let member = RlnMember {
                operator: r.operator,
                index,
                rate_commitment: r.rate_commitment,
                limit: r.limit,
                validator: r.validator.as_ref().map(|v| v.pubkey),
            };
            if let Err(e) = b.rln_member(member) {
                skipped.push(e.to_string());
            }
        }
        (b.build(), skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::super::bindings::ConclaveRegistry as C;
    use super::*;
    use alloy::primitives::FixedBytes;
    use conclave_core::Moment;

    fn at(block: u64) -> Moment {
        Moment {
            unix_secs: 0,
            block: Some(block),
        }
    }

    #[test]
    fn folds_events_like_the_contract() {
        let op = Address::repeat_byte(1);
        let peer = PeerId::random();
        let pb = Bytes::from(peer.to_bytes());
        let mut s = ChainState::default();
        s.apply(&Event::OperatorAdded(C::OperatorAdded { operator: op }));
        s.apply(&Event::ScopeDefined(C::ScopeDefined {
            bit: 0,
            name: "signers".into(),
        }));
        s.apply(&Event::ScopeDefined(C::ScopeDefined {
            bit: 3,
            name: "Not A Topic".into(),
        }));
        s.apply(&Event::NodeAuthorized(C::NodeAuthorized {
            operator: op,
            peerId: pb.clone(),
            scopes: 0b1001,
            validFrom: 10,
            validUntil: OPEN_ENDED,
        }));
        s.apply(&Event::NodeAddressesSet(C::NodeAddressesSet {
            operator: op,
            peerId: pb.clone(),
            addresses: vec!["/ip4/127.0.0.1/tcp/1".into(), "junk".into()],
        }));
        s.apply(&Event::GroupSet(C::GroupSet {
            groupId: FixedBytes([7; 20]),
            seats: vec![op, op],
        }));
        let (v, skipped) = s.to_view(ViewSource::Empty);
        let a = v.authorization(&peer, at(10)).unwrap();
        assert_eq!(a.scopes.len(), 1, "the malformed scope name is skipped");
        assert_eq!(a.addresses.len(), 1);
        assert_eq!(a.expiry, None);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(v.authorization(&peer, at(9)).is_err());
        assert_eq!(v.groups()[0].seats.len(), 2);

        // A revocation scheduled for block 50 is an expiry at 50.
        s.apply(&Event::NodeRevoked(C::NodeRevoked {
            operator: op,
            peerId: pb.clone(),
            effectiveBlock: 50,
        }));
        let (v, _) = s.to_view(ViewSource::Empty);
        assert!(v.authorization(&peer, at(49)).is_ok());
        assert!(v.authorization(&peer, at(50)).is_err());

        // Removing the operator voids its keys; adding it back does not revive them.
        s.apply(&Event::OperatorRemoved(C::OperatorRemoved { operator: op }));
        s.apply(&Event::OperatorAdded(C::OperatorAdded { operator: op }));
        let (v, skipped) = s.to_view(ViewSource::Empty);
        assert!(v.authorization(&peer, at(20)).is_err());
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    #[test]
    fn rln_memberships_follow_registrations_and_removals() {
        use alloy::primitives::U256;
        let (a, b, c) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        let mut s = ChainState::default();
        for operator in [a, b, c] {
            s.apply(&Event::OperatorAdded(C::OperatorAdded { operator }));
        }
        // Leaf 3 is a second membership of operator a: every node leaves it out, naming why.
        for (i, op) in [a, c, b, a].into_iter().enumerate() {
            s.apply(&Event::RlnRegistered(C::RlnRegistered {
                index: U256::from(i),
                operator: op,
                rateCommitment: U256::from(100 + i),
                limit: 2,
            }));
        }
        let leaves = |s: &ChainState| -> Vec<u32> {
            s.to_view(ViewSource::Empty)
                .0
                .rln_members()
                .map(|m| m.index)
                .collect()
        };
        assert_eq!(leaves(&s), vec![0, 1, 2]);
        let (v, skipped) = s.to_view(ViewSource::Empty);
        assert!(
            skipped
                .iter()
                .any(|r| r.contains("RLN leaf 3")
                    && r.contains("already holds leaf 0 (its cap of 1)")),
            "{skipped:?}"
        );
        let m = v.rln_members().next().unwrap();
        assert_eq!((m.operator, m.limit), (OperatorId(a.0 .0), 2));
        assert_eq!(m.rate_commitment[31], 100);

        s.apply(&Event::RlnSlashed(C::RlnSlashed {
            index: U256::from(1),
            by: b,
            idSecret: U256::from(7),
        }));
        s.apply(&Event::RlnRemoved(C::RlnRemoved {
            index: U256::from(9),
            by: b,
        }));
        assert_eq!(
            leaves(&s),
            vec![0, 2],
            "slashed leaf gone, unknown index ignored"
        );
        assert!(s.rln()[1].removed);

        // A removed operator's memberships leave the view, with the reason.
        s.apply(&Event::OperatorRemoved(C::OperatorRemoved { operator: b }));
        let (v, skipped) = s.to_view(ViewSource::Empty);
        assert_eq!(v.rln_members().count(), 1);
        assert!(
            skipped
                .iter()
                .any(|r| r.contains("RLN leaf 2 belongs to operator")),
            "{skipped:?}"
        );
    }

    #[test]
    fn rln_caps_follow_governance_and_keep_the_earliest_leaves() {
        use alloy::primitives::U256;
        let a = Address::repeat_byte(1);
        let mut s = ChainState::default();
        s.apply(&Event::OperatorAdded(C::OperatorAdded { operator: a }));
        let cap =
            |s: &mut ChainState, cap| s.apply(&Event::RlnCapSet(C::RlnCapSet { operator: a, cap }));
        cap(&mut s, 2);
        for i in 0..3u64 {
            s.apply(&Event::RlnRegistered(C::RlnRegistered {
                index: U256::from(i),
                operator: a,
                rateCommitment: U256::from(100 + i),
                limit: 1,
            }));
        }
        let view = |s: &ChainState| {
            let (v, skipped) = s.to_view(ViewSource::Empty);
            (
                v.rln_members().map(|m| m.index).collect::<Vec<_>>(),
                skipped,
            )
        };
        let (leaves, skipped) = view(&s);
        assert_eq!(leaves, [0, 1]);
        assert_eq!(
            skipped,
            [format!(
                "RLN leaf 2: operator {} already holds leaves 0, 1 (its cap of 2); another would add to its quota",
                OperatorId(a.0 .0)
            )]
        );
        // A removal frees a place for the next leaf; a lowered cap keeps the earliest live one.
        s.apply(&Event::RlnRemoved(C::RlnRemoved {
            index: U256::from(0),
            by: a,
        }));
        assert_eq!(view(&s), (vec![1, 2], vec![]));
        cap(&mut s, 1);
        assert_eq!(view(&s).0, [1]);
        // A cap the contract could not have set is skipped, leaving the default.
        cap(&mut s, 0);
        let (leaves, skipped) = view(&s);
        assert_eq!(leaves, [1]);
        assert!(
            skipped[0].contains("cap 0 must be at least 1"),
            "{skipped:?}"
        );
    }
    /// The contract checks a validator's signature; every node checks it again when it folds
    /// the event, so a leaf the contract should have refused never enters a tree.
    #[test]
    fn a_validator_leaf_enters_the_view_only_with_the_validators_signature() {
        use alloy::primitives::U256;
        use conclave_bls::{eip2537, Registration, ValidatorSecret};
        let op = Address::repeat_byte(1);
        let contract = Address::repeat_byte(0xcc);
        let mut s = ChainState::new(31337, contract);
        s.apply(&Event::OperatorAdded(C::OperatorAdded { operator: op }));
        s.apply(&Event::RlnCapSet(C::RlnCapSet {
            operator: op,
            cap: 4,
        }));
        let validator = ValidatorSecret::generate().unwrap();
        let forger = ValidatorSecret::generate().unwrap();
        let register = |s: &mut ChainState, index: u64, signer: &ValidatorSecret, chain_id| {
            let commitment = U256::from(500 + index);
            let r = Registration {
                validator_pubkey: validator.public_key(),
                rate_commitment: commitment.to_be_bytes(),
                limit: 1,
                chain_id,
                registry: contract.0 .0,
            };
            s.apply(&Event::RlnRegistered(C::RlnRegistered {
                index: U256::from(index),
                operator: op,
                rateCommitment: commitment,
                limit: 1,
            }));
            s.apply(&Event::RlnValidatorRegistered(C::RlnValidatorRegistered {
                index: U256::from(index),
                pubkey: Bytes::copy_from_slice(&validator.public_key()),
                signature: Bytes::copy_from_slice(&eip2537::g2_point(&signer.sign(&r)).unwrap()),
            }));
        };
        register(&mut s, 0, &forger, 31337);
        register(&mut s, 1, &validator, 1);
        register(&mut s, 2, &validator, 31337);
        register(&mut s, 3, &validator, 31337);
        let (v, skipped) = s.to_view(ViewSource::Empty);
        assert_eq!(v.rln_members().map(|m| m.index).collect::<Vec<_>>(), [2]);
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(skipped[0].contains("RLN leaf 0") && skipped[0].contains("not the validator's"));
        assert!(
            skipped[1].contains("RLN leaf 1"),
            "another chain id: {skipped:?}"
        );
        assert!(
            skipped[2].contains("already registered at leaf 2"),
            "{skipped:?}"
        );
        // A resync starts from the same registry's empty state.
        assert_eq!(s.emptied(), ChainState::new(31337, contract));
    }
}
