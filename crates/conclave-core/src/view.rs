use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use thiserror::Error;

use crate::{GroupId, Moment, OperatorId, TopicName};

/// Where a view came from, so that every consumer can say which registry state it acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewSource {
    /// No registry has been read: nobody is authorized.
    Empty,
    /// A registry file; `revision` counts accepted reloads since start, `sha256` is the file's hash.
    File {
        path: String,
        revision: u64,
        sha256: String,
    },
    /// The on-chain registry, as of a confirmed block.
    Chain {
        chain_id: u64,
        block: u64,
        hash: String,
    },
}

impl fmt::Display for ViewSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewSource::Empty => f.write_str("empty"),
            ViewSource::File {
                path,
                revision,
                sha256,
            } => write!(
                f,
                "file {path} rev {revision} ({})",
                &sha256[..12.min(sha256.len())]
            ),
            ViewSource::Chain {
                chain_id,
                block,
                hash,
            } => write!(
                f,
                "chain {chain_id} block {block} ({})",
                &hash[..12.min(hash.len())]
            ),
        }
    }
}

/// When a delegation stops being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Valid while `unix time < t`.
    UnixSecs(u64),
    /// Valid while `block < b`. Fails closed when no block height is known.
    Block(u64),
}

impl Expiry {
    fn covers(&self, at: Moment) -> bool {
        match *self {
            Expiry::UnixSecs(t) => at.unix_secs < t,
            Expiry::Block(b) => at.block.is_some_and(|h| h < b),
        }
    }
}

/// One hot node key acting for an operator: what it may sign and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAuthorization {
    pub operator: OperatorId,
    pub scopes: BTreeSet<TopicName>,
    /// First block at which the key is valid (on-chain delegations); fails closed without a height.
    pub valid_from_block: Option<u64>,
    pub expiry: Option<Expiry>,
    /// Where the node says it can be reached (registry hints for the redial loop).
    pub addresses: Vec<Multiaddr>,
}

/// A signing group: ordered seats of operators (an operator may hold several seats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub seats: Vec<OperatorId>,
}

/// An operator's RLN membership (docs/ARCHITECTURE.md, "The anonymous channel (RLN)"): the leaf
/// at `index` of the anonymous channel's tree. The commitment hides the member's secret; only a
/// double signal reveals it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlnMember {
    pub operator: OperatorId,
    pub index: u32,
    /// Poseidon(id commitment, limit), 32 bytes big-endian, below the BN254 scalar modulus.
    pub rate_commitment: [u8; 32],
    /// Messages per epoch.
    pub limit: u32,
}

/// The BN254 scalar field modulus, big-endian: a rate commitment must be below it.
const BN254_R: [u8; 32] = [
    0x30, 0x64, 0x4e, 0x72, 0xe1, 0x31, 0xa0, 0x29, 0xb8, 0x50, 0x45, 0xb6, 0x81, 0x81, 0x58, 0x5d,
    0x28, 0x33, 0xe8, 0x48, 0x79, 0xb9, 0x70, 0x91, 0x43, 0xe1, 0xf5, 0x93, 0xf0, 0x00, 0x00, 0x01,
];

/// Largest leaf index of the depth-20 tree.
pub const RLN_MAX_INDEX: u32 = (1 << 20) - 1;

/// The most messages per epoch one RLN membership may allow: a quota is what keeps the
/// anonymous channel from being flooded, so it is bounded whatever a registry says.
pub const RLN_MAX_LIMIT: u32 = 100;

/// Why a peer may not do something. Also the label the gate and validators report in metrics.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unauthorized {
    #[error("peer is not a registered node key")]
    Unknown,
    #[error("node key's delegation expired ({0:?})")]
    Expired(Expiry),
    #[error("node key's delegation starts at block {0}")]
    NotYetValid(u64),
    #[error("node key is not authorized for topic `{0}`")]
    OutOfScope(TopicName),
}

impl Unauthorized {
    /// A short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Unauthorized::Unknown => "not_member",
            Unauthorized::Expired(_) => "expired",
            Unauthorized::NotYetValid(_) => "not_yet_valid",
            Unauthorized::OutOfScope(_) => "out_of_scope",
        }
    }
}

/// An immutable snapshot of who may be on the network and what they may say.
///
/// The registry task is its only writer; everyone else holds an `Arc<MembershipView>` read from a
/// `watch` channel, so a decision is always made against one consistent registry state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipView {
    source: ViewSource,
    nodes: HashMap<PeerId, NodeAuthorization>,
    operators: BTreeMap<OperatorId, Vec<PeerId>>,
    groups: Vec<Group>,
    rln: BTreeMap<u32, RlnMember>,
}

/// A structural error while assembling a view (the registry backends add file and entry names).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ViewError {
    #[error("operator {0} is listed twice")]
    DuplicateOperator(OperatorId),
    #[error("node {peer} is already authorized for operator {first}")]
    DuplicateNode { peer: PeerId, first: OperatorId },
    #[error("group {0} is listed twice")]
    DuplicateGroup(GroupId),
    #[error("group {group} seats operator {operator}, which is not registered")]
    UnknownSeat {
        group: GroupId,
        operator: OperatorId,
    },
    #[error("group {0} has no seats")]
    EmptyGroup(GroupId),
    #[error("RLN leaf {index} is registered twice")]
    DuplicateRlnIndex { index: u32 },
    #[error("RLN leaf {index} belongs to operator {operator}, which is not registered")]
    UnknownRlnOperator { index: u32, operator: OperatorId },
    #[error("RLN leaf {index}: {problem}")]
    InvalidRlnMember { index: u32, problem: &'static str },
    #[error("RLN leaf {index}: operator {operator} already holds leaf {first}; one membership per operator (a second would multiply its quota)")]
    SecondRlnMembership {
        index: u32,
        operator: OperatorId,
        first: u32,
    },
}

impl MembershipView {
    /// The view before any registry was read: it authorizes nobody, so the gate starts closed.
    pub fn empty() -> Self {
        MembershipView {
            source: ViewSource::Empty,
            nodes: HashMap::new(),
            operators: BTreeMap::new(),
            groups: Vec::new(),
            rln: BTreeMap::new(),
        }
    }

    pub fn source(&self) -> &ViewSource {
        &self.source
    }

    /// The node's authorization if it is valid at `at`.
    pub fn authorization(
        &self,
        peer: &PeerId,
        at: Moment,
    ) -> Result<&NodeAuthorization, Unauthorized> {
        let auth = self.nodes.get(peer).ok_or(Unauthorized::Unknown)?;
        if let Some(from) = auth.valid_from_block {
            if at.block.is_none_or(|h| h < from) {
                return Err(Unauthorized::NotYetValid(from));
            }
        }
        match auth.expiry {
            Some(e) if !e.covers(at) => Err(Unauthorized::Expired(e)),
            _ => Ok(auth),
        }
    }

    /// Whether `peer` may sign messages on `topic` at `at`.
    pub fn may_publish(
        &self,
        peer: &PeerId,
        topic: &TopicName,
        at: Moment,
    ) -> Result<&NodeAuthorization, Unauthorized> {
        let auth = self.authorization(peer, at)?;
        if auth.scopes.contains(topic) {
            Ok(auth)
        } else {
            Err(Unauthorized::OutOfScope(topic.clone()))
        }
    }

    /// Every node key valid at `at`.
    pub fn members_at(&self, at: Moment) -> impl Iterator<Item = (&PeerId, &NodeAuthorization)> {
        self.nodes
            .iter()
            .filter(move |(p, _)| self.authorization(p, at).is_ok())
    }

    /// A registered node key's authorization, valid now or not.
    pub fn node(&self, peer: &PeerId) -> Option<&NodeAuthorization> {
        self.nodes.get(peer)
    }

    /// Every registered node key, valid or not.
    pub fn nodes(&self) -> impl Iterator<Item = (&PeerId, &NodeAuthorization)> {
        self.nodes.iter()
    }

    pub fn operators(&self) -> impl Iterator<Item = (&OperatorId, &[PeerId])> {
        self.operators.iter().map(|(o, n)| (o, n.as_slice()))
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// RLN memberships by leaf index.
    pub fn rln_members(&self) -> impl Iterator<Item = &RlnMember> {
        self.rln.values()
    }
}

/// Assembles a [`MembershipView`], refusing structural contradictions.
#[derive(Debug)]
pub struct ViewBuilder {
    view: MembershipView,
    /// Each operator's RLN leaf, so a second membership is found without a scan.
    rln_of_operator: HashMap<OperatorId, u32>,
}

impl ViewBuilder {
    pub fn new(source: ViewSource) -> Self {
        ViewBuilder {
            view: MembershipView {
                source,
                ..MembershipView::empty()
            },
            rln_of_operator: HashMap::new(),
        }
    }

    pub fn operator(&mut self, id: OperatorId) -> Result<(), ViewError> {
        if self.view.operators.insert(id, Vec::new()).is_some() {
            return Err(ViewError::DuplicateOperator(id));
        }
        Ok(())
    }

    /// Adds a node key; its operator must have been added first.
    pub fn node(&mut self, peer: PeerId, auth: NodeAuthorization) -> Result<(), ViewError> {
        if let Some(first) = self.view.nodes.get(&peer) {
            return Err(ViewError::DuplicateNode {
                peer,
                first: first.operator,
            });
        }
        self.view
            .operators
            .entry(auth.operator)
            .or_default()
            .push(peer);
        self.view.nodes.insert(peer, auth);
        Ok(())
    }

    pub fn group(&mut self, group: Group) -> Result<(), ViewError> {
        if group.seats.is_empty() {
            return Err(ViewError::EmptyGroup(group.id));
        }
        if self.view.groups.iter().any(|g| g.id == group.id) {
            return Err(ViewError::DuplicateGroup(group.id));
        }
        if let Some(op) = group
            .seats
            .iter()
            .find(|o| !self.view.operators.contains_key(o))
        {
            return Err(ViewError::UnknownSeat {
                group: group.id,
                operator: *op,
            });
        }
        self.view.groups.push(group);
        Ok(())
    }

    /// Adds an RLN membership; its operator must have been added first.
    pub fn rln_member(&mut self, m: RlnMember) -> Result<(), ViewError> {
        let invalid = |problem| ViewError::InvalidRlnMember {
            index: m.index,
            problem,
        };
        if m.index > RLN_MAX_INDEX {
            return Err(invalid(
                "index is beyond the depth-20 tree (at most 1048575)",
            ));
        }
        if m.limit == 0 {
            return Err(invalid("limit must be at least 1 message per epoch"));
        }
        if m.limit > RLN_MAX_LIMIT {
            return Err(invalid(
                "limit is above the largest allowed (100 messages per epoch)",
            ));
        }
        if m.rate_commitment >= BN254_R {
            return Err(invalid(
                "rate commitment is not below the BN254 scalar field modulus",
            ));
        }
        if !self.view.operators.contains_key(&m.operator) {
            return Err(ViewError::UnknownRlnOperator {
                index: m.index,
                operator: m.operator,
            });
        }
        if self.view.rln.contains_key(&m.index) {
            return Err(ViewError::DuplicateRlnIndex { index: m.index });
        }
        if let Some(&first) = self.rln_of_operator.get(&m.operator) {
            return Err(ViewError::SecondRlnMembership {
                index: m.index,
                operator: m.operator,
                first,
            });
        }
        self.rln_of_operator.insert(m.operator, m.index);
        self.view.rln.insert(m.index, m);
        Ok(())
    }

    pub fn build(self) -> MembershipView {
        self.view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(b: u8) -> OperatorId {
        OperatorId([b; 20])
    }

    fn auth(o: OperatorId, scopes: &[&str], expiry: Option<Expiry>) -> NodeAuthorization {
        NodeAuthorization {
            operator: o,
            scopes: scopes.iter().map(|s| s.parse().unwrap()).collect(),
            valid_from_block: None,
            expiry,
            addresses: vec![],
        }
    }

    const NOW: Moment = Moment {
        unix_secs: 1000,
        block: None,
    };

    #[test]
    fn authorization_honours_expiry_and_scope() {
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut vb = ViewBuilder::new(ViewSource::Empty);
        vb.operator(op(1)).unwrap();
        vb.node(a, auth(op(1), &["signers"], None)).unwrap();
        vb.node(b, auth(op(1), &["signers"], Some(Expiry::UnixSecs(1000))))
            .unwrap();
        vb.node(c, auth(op(1), &["signers"], Some(Expiry::Block(50))))
            .unwrap();
        let v = vb.build();
        let signers: TopicName = "signers".parse().unwrap();
        let other: TopicName = "other".parse().unwrap();

        assert!(v.may_publish(&a, &signers, NOW).is_ok());
        assert_eq!(
            v.may_publish(&a, &other, NOW).unwrap_err(),
            Unauthorized::OutOfScope(other)
        );
        // Expiry is exclusive: valid strictly before the bound.
        assert!(v
            .authorization(
                &b,
                Moment {
                    unix_secs: 999,
                    block: None
                }
            )
            .is_ok());
        assert_eq!(
            v.authorization(&b, NOW).unwrap_err(),
            Unauthorized::Expired(Expiry::UnixSecs(1000))
        );
        // Block-limited keys fail closed without a known height.
        assert!(v.authorization(&c, NOW).is_err());
        assert!(v
            .authorization(
                &c,
                Moment {
                    unix_secs: 1000,
                    block: Some(49)
                }
            )
            .is_ok());
        assert_eq!(
            v.authorization(&PeerId::random(), NOW).unwrap_err(),
            Unauthorized::Unknown
        );
        assert_eq!(v.members_at(NOW).count(), 1);
    }

    #[test]
    fn a_delegation_starting_later_fails_closed_until_its_block() {
        let p = PeerId::random();
        let mut vb = ViewBuilder::new(ViewSource::Empty);
        vb.operator(op(1)).unwrap();
        let mut a = auth(op(1), &["signers"], Some(Expiry::Block(20)));
        a.valid_from_block = Some(10);
        vb.node(p, a).unwrap();
        let v = vb.build();
        let at = |block| Moment {
            unix_secs: 0,
            block,
        };
        assert_eq!(
            v.authorization(&p, at(None)).unwrap_err(),
            Unauthorized::NotYetValid(10)
        );
        assert_eq!(
            v.authorization(&p, at(Some(9))).unwrap_err(),
            Unauthorized::NotYetValid(10)
        );
        assert!(v.authorization(&p, at(Some(10))).is_ok());
        assert!(v.authorization(&p, at(Some(19))).is_ok());
        assert!(v.authorization(&p, at(Some(20))).is_err());
        assert_eq!(v.members_at(at(Some(15))).count(), 1);
        assert_eq!(v.members_at(at(Some(5))).count(), 0);
    }

    #[test]
    fn builder_refuses_contradictions() {
        let a = PeerId::random();
        let mut vb = ViewBuilder::new(ViewSource::Empty);
        vb.operator(op(1)).unwrap();
        vb.operator(op(2)).unwrap();
        assert_eq!(vb.operator(op(1)), Err(ViewError::DuplicateOperator(op(1))));
        vb.node(a, auth(op(1), &[], None)).unwrap();
        assert!(matches!(
            vb.node(a, auth(op(2), &[], None)),
            Err(ViewError::DuplicateNode { .. })
        ));
        let g = GroupId([9; 20]);
        assert_eq!(
            vb.group(Group {
                id: g,
                seats: vec![]
            }),
            Err(ViewError::EmptyGroup(g))
        );
        assert!(matches!(
            vb.group(Group {
                id: g,
                seats: vec![op(3)]
            }),
            Err(ViewError::UnknownSeat { .. })
        ));
        vb.group(Group {
            id: g,
            seats: vec![op(1), op(2), op(1)],
        })
        .unwrap();
        assert_eq!(
            vb.group(Group {
                id: g,
                seats: vec![op(1)]
            }),
            Err(ViewError::DuplicateGroup(g))
        );
    }

    #[test]
    fn rln_members_are_checked() {
        let mut vb = ViewBuilder::new(ViewSource::Empty);
        vb.operator(op(1)).unwrap();
        let m = RlnMember {
            operator: op(1),
            index: 4,
            rate_commitment: [7; 32],
            limit: 3,
        };
        vb.rln_member(m).unwrap();
        assert_eq!(
            vb.rln_member(m),
            Err(ViewError::DuplicateRlnIndex { index: 4 })
        );
        assert!(matches!(
            vb_err(RlnMember {
                operator: op(2),
                index: 5,
                ..m
            }),
            ViewError::UnknownRlnOperator { index: 5, .. }
        ));
        assert!(vb_err(RlnMember {
            index: 1 << 20,
            ..m
        })
        .to_string()
        .contains("depth-20"));
        assert!(vb_err(RlnMember { limit: 0, ..m })
            .to_string()
            .contains("at least 1"));
        assert!(vb_err(RlnMember {
            limit: RLN_MAX_LIMIT + 1,
            ..m
        })
        .to_string()
        .contains("largest allowed"));
        // A second membership of the same operator would multiply its quota.
        assert_eq!(
            vb.rln_member(RlnMember { index: 9, ..m }),
            Err(ViewError::SecondRlnMembership {
                index: 9,
                operator: op(1),
                first: 4
            })
        );
        // The modulus itself is not a field element; one below it is.
        let mut r = BN254_R;
        assert!(vb_err(RlnMember {
            rate_commitment: r,
            ..m
        })
        .to_string()
        .contains("modulus"));
        r[31] -= 1;
        let mut ok = ViewBuilder::new(ViewSource::Empty);
        ok.operator(op(1)).unwrap();
        ok.rln_member(RlnMember {
            rate_commitment: r,
            ..m
        })
        .unwrap();
        assert_eq!(ok.build().rln_members().count(), 1);
        assert_eq!(
            vb.build()
                .rln_members()
                .map(|m| m.index)
                .collect::<Vec<_>>(),
            vec![4]
        );
    }

    fn vb_err(m: RlnMember) -> ViewError {
        let mut vb = ViewBuilder::new(ViewSource::Empty);
        vb.operator(op(1)).unwrap();
        vb.rln_member(m).unwrap_err()
    }
}
