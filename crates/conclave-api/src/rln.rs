//! The anonymous channel (RLN).

use serde::{Deserialize, Serialize};

/// `POST /v1/rln/publish/{topic}`: proved and handed to gossip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RlnPublishAnswer {
    Published {
        message_id: String,
        epoch: u64,
        proof_ms: u64,
    },
}

/// One message on `GET /v1/rln/subscribe/{topic}`: no sender and no time finer than the
/// epoch, by design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonymousDeliveryFrame {
    pub topic: String,
    pub epoch: u64,
    pub message_id: String,
    pub payload_base64: String,
}

impl AnonymousDeliveryFrame {
    /// The payload's bytes.
    pub fn payload(&self) -> Result<Vec<u8>, base64::DecodeError> {
        crate::decode_payload(&self.payload_base64)
    }
}

/// `GET /v1/rln/arrivals` (with `[rln] record_arrivals`): where and when anonymous messages
/// reached this node, oldest first. What a member's node sees of every message anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlnArrivalsAnswer {
    pub arrivals: Vec<RlnArrival>,
}

/// One anonymous message as it reached this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlnArrival {
    pub message_id: String,
    /// The member (PeerId) it came from: the stem predecessor or the gossip peer.
    pub from: String,
    pub via: ArrivalPath,
    /// This node's wall clock when it arrived.
    pub at_ms: u64,
}

/// The path of an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalPath {
    Stem,
    Gossip,
}

/// `GET /v1/rln/removed`: the secrets revealed by double-signalling, public once revealed, so a
/// late joiner removes the same leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlnRemovedAnswer {
    pub removed: Vec<RemovedSecret>,
}

/// A removed member's secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedSecret {
    /// Hex of the 32-byte identity secret.
    pub secret: String,
    /// The identity commitment it opens, when the secret is a valid field element.
    pub id_commitment: Option<String>,
    pub removed_at_ms: u64,
}

/// `GET /v1/rln/status`: the channel's parameters, the tree, and this node's own place in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlnStatusAnswer {
    pub identifier: String,
    pub epoch: u64,
    pub epoch_secs: u64,
    pub members: usize,
    /// The current tree root, `0x`-prefixed hex.
    pub root: String,
    /// The recent roots proofs may be made against.
    pub roots: Vec<String>,
    /// This node's RLN identity, when it has one.
    pub identity: Option<RlnIdentityAnswer>,
}

/// This node's identity commitment and, when inserted, its leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlnIdentityAnswer {
    pub id_commitment: String,
    pub leaf: Option<RlnLeaf>,
}

/// A leaf position and its message limit per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlnLeaf {
    pub index: u32,
    pub limit: u32,
}
