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
    /// A Stacks registry contract's signer set, read from a Stacks node at `tip_height`;
    /// `revision` counts accepted sets since start, `sha256` hashes the values read.
    Stacks {
        contract: String,
        tip_height: u64,
        revision: u64,
        sha256: String,
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
            ViewSource::Stacks {
                contract,
                tip_height,
                revision,
                sha256,
            } => write!(
                f,
                "stacks {contract} rev {revision} at tip {tip_height} ({})",
                &sha256[..12.min(sha256.len())]
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
    /// The Ethereum validator key (48 bytes, compressed G1) whose signature over this
    /// membership the registry source checked; `None` for an operator's own registration.
    pub validator: Option<[u8; 48]>,
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

/// The most RLN memberships governance may allow one operator. Each membership adds its limit to
/// the operator's quota, so the cap is bounded too: one operator holds at most
/// 16 × [`RLN_MAX_LIMIT`] messages per epoch, whatever a registry says. Without a cap set, 1.
pub const RLN_MAX_MEMBERSHIPS: u32 = 16;

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
    #[error("RLN leaf {index}: operator {operator} already holds {} (its cap of {cap}); another would add to its quota", leaves(.held))]
    RlnCapReached {
        index: u32,
        operator: OperatorId,
        cap: u32,
        /// The operator's leaves already in the view, in the order they were added.
        held: Vec<u32>,
    },
    #[error("operator {operator}: RLN membership cap {cap} {problem}")]
    InvalidRlnCap {
        operator: OperatorId,
        cap: u32,
        problem: &'static str,
    },
}

fn leaves(held: &[u32]) -> String {
    let list: Vec<String> = held.iter().map(u32::to_string).collect();
    match list.len() {
        1 => format!("leaf {}", list[0]),
        _ => format!("leaves {}", list.join(", ")),
    }
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
    /// Each operator's RLN leaves, so a membership beyond its cap is found without a scan.
    rln_of_operator: HashMap<OperatorId, Vec<u32>>,
    /// Caps set by governance; an operator without one may hold one membership.
    rln_caps: HashMap<OperatorId, u32>,
}

impl ViewBuilder {
    pub fn new(source: ViewSource) -> Self {
        ViewBuilder {
            view: MembershipView {
                source,
                ..MembershipView::empty()
            },
            rln_of_operator: HashMap::new(),
            rln_caps: HashMap::new(),
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

    /// Sets how many RLN memberships `operator` may hold (default 1), before any of them is
    /// added: a cap set later would not be checked against the leaves already in.
    pub fn rln_cap(&mut self, operator: OperatorId, cap: u32) -> Result<(), ViewError> {
        let invalid = |problem| ViewError::InvalidRlnCap {
            operator,
            cap,
            problem,
        };
        if cap == 0 {
            return Err(invalid("must be at least 1"));
        }
        if cap > RLN_MAX_MEMBERSHIPS {
            return Err(invalid("is above the largest allowed (16)"));
        }
        if self.rln_of_operator.contains_key(&operator) {
            return Err(invalid("comes after the operator's first membership"));
        }
        self.rln_caps.insert(operator, cap);
        Ok(())
    }

    /// Adds an RLN membership; its operator must have been added first, and may hold no more
    /// than its cap (each membership adds its limit to the operator's quota).
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
        let cap = self.rln_caps.get(&m.operator).copied().unwrap_or(1);
        let held = self.rln_of_operator.entry(m.operator).or_default();
        if held.len() >= cap as usize {
            return Err(ViewError::RlnCapReached {
                index: m.index,
                operator: m.operator,
                cap,
                held: held.clone(),
            });
        }
        held.push(m.index);
        self.view.rln.insert(m.index, m);
        Ok(())
    }

    pub fn build(self) -> MembershipView {
        self.view
    }
}

#[cfg(test)]
mod tests;
