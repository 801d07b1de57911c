//! The registry's view as the node acts on it.

use serde::{Deserialize, Serialize};

/// A membership view for operators (`GET /v1/membership` embeds it; `conclave registry show`
/// prints it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewAnswer {
    /// Where the view came from (a file path or a chain and contract).
    pub source: String,
    pub operators: Vec<OperatorAnswer>,
    pub groups: Vec<GroupAnswer>,
    pub rln: Vec<RlnLeafAnswer>,
}

/// An operator and its node keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorAnswer {
    pub address: String,
    pub nodes: Vec<NodeAnswer>,
}

/// One node key of an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAnswer {
    pub peer_id: String,
    pub scopes: Vec<String>,
    pub valid_from_block: Option<u64>,
    /// The expiry as the registry states it (`Block(n)` or `UnixSecs(t)`), none when open-ended.
    pub expiry: Option<String>,
    /// Whether the key may act at the moment the answer was made.
    pub authorized_now: bool,
    /// Whether this node is connected to it; none where the asker cannot know.
    pub connected: Option<bool>,
    pub addresses: Vec<String>,
}

/// A coordination group and its seats, in seat order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupAnswer {
    pub id: String,
    pub seats: Vec<String>,
}

/// A leaf of the anonymous channel's membership tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlnLeafAnswer {
    pub index: u32,
    pub operator: String,
    /// `0x`-prefixed hex of the 32-byte rate commitment.
    pub rate_commitment: String,
    pub limit: u32,
    /// `0x`-prefixed hex of the Ethereum validator key that registered it (checked), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<String>,
}

/// `GET /v1/membership`: the view and the registry source's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipAnswer {
    #[serde(flatten)]
    pub view: ViewAnswer,
    /// How many views the source has produced.
    pub revision: u64,
    pub last_error: Option<String>,
    pub rejected_updates: u64,
    pub stale: bool,
    pub synced_block: Option<u64>,
    /// Registry entries skipped as invalid, each with the reason.
    pub skipped: Vec<String>,
    /// What operators should know about the accepted view (an empty signer set admits no one).
    pub warnings: Vec<String>,
}

impl ViewAnswer {
    /// The node key with this peer id, under any operator.
    pub fn node(&self, peer_id: &str) -> Option<&NodeAnswer> {
        self.operators
            .iter()
            .flat_map(|o| &o.nodes)
            .find(|n| n.peer_id == peer_id)
    }

    /// Every node key of every operator.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeAnswer> {
        self.operators.iter().flat_map(|o| &o.nodes)
    }
}
