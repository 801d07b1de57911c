//! The service's domain types: what the application hands in and what it gets back.

use std::collections::{BTreeMap, BTreeSet};

use conclave_core::{Multiaddr, OperatorId, PeerId, TopicName, Unauthorized};
use libp2p::gossipsub;

use crate::catchup::log::RetainedMessage;
use crate::validation::{Rejection, Validated};

/// A message delivered to the application: it passed every check of the signed channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: TopicName,
    /// The node key that signed it.
    pub source: PeerId,
    /// The operator that authorized that key.
    pub operator: OperatorId,
    pub timestamp_ms: u64,
    pub payload: Vec<u8>,
    /// Hex of the gossipsub message id.
    pub message_id: String,
    /// Fetched by catch-up from a member (it was published while this node could not receive
    /// it), not received in gossip.
    pub caught_up: bool,
    /// The envelope's nonce and the node key's signature: with the fields above they are the
    /// signed message itself, evidence anyone can check ([`crate::verify_envelope`]).
    pub nonce: u64,
    pub signature: Vec<u8>,
}

impl Delivery {
    /// The delivery of a retained message that passed validation.
    pub(crate) fn of(m: &RetainedMessage, v: Validated, caught_up: bool) -> Self {
        Delivery {
            topic: m.topic.clone(),
            source: v.source,
            operator: v.operator,
            timestamp_ms: v.envelope.timestamp_ms,
            payload: v.envelope.payload,
            message_id: m.hex_id(),
            caught_up,
            nonce: v.envelope.nonce,
            signature: v.envelope.signature,
        }
    }
}

/// A message of the anonymous channel waiting for the application's verdict: gossipsub holds it
/// (neither delivered nor forwarded) until [`crate::NetworkService::report_anonymous`] is called.
#[derive(Debug, Clone)]
pub struct AnonymousMessage {
    pub topic: TopicName,
    pub data: Vec<u8>,
    pub id: AnonymousMessageId,
}

/// Which held message a verdict is for, and how it reached this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymousMessageId {
    pub(crate) message_id: gossipsub::MessageId,
    pub(crate) route: Route,
}

/// How an anonymous message reached this node (the verdict goes back the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// In gossip, first from this peer.
    Gossip { source: PeerId },
    /// On the stem from this predecessor; `ticket` finds its pending answer.
    Stem { from: PeerId, ticket: u64 },
    /// Gossiped by this node itself (a stem fluff): judged and delivered here like a gossip
    /// copy, with no verdict to send anywhere.
    Local,
}

/// The path an anonymous message took to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Gossip,
    Stem,
    /// This node gossiped it (it was on the stem here first).
    Local,
}

impl AnonymousMessageId {
    /// Hex of the gossipsub message id (SHA-256 of the data).
    pub fn hex(&self) -> String {
        hex_id(&self.message_id)
    }

    /// The member it came from: the gossip peer or the stem predecessor (`None`: this node
    /// gossiped it). Every node knows this of every message it receives; it is what a curious
    /// member has to guess the author from.
    pub fn from(&self) -> Option<PeerId> {
        match self.route {
            Route::Gossip { source } => Some(source),
            Route::Stem { from, .. } => Some(from),
            Route::Local => None,
        }
    }

    pub fn arrival(&self) -> Arrival {
        match self.route {
            Route::Gossip { .. } => Arrival::Gossip,
            Route::Stem { .. } => Arrival::Stem,
            Route::Local => Arrival::Local,
        }
    }
}

/// The application's verdict on an anonymous message (gossipsub's acceptance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: deliver and forward.
    Accept,
    /// Drop without penalty (duplicate, overload).
    Ignore,
    /// Drop and penalize the peer that forwarded it.
    Reject,
    /// Drop, penalize, and disconnect the member it came from for a cool-down: no honest node
    /// forwards such a message (an invalid proof — every node verifies before it forwards), so
    /// it proves the forwarder hostile.
    Forged,
}

/// Direction of a refused connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Everything the network reports to the application, as one domain enum.
#[derive(Debug, Clone)]
pub enum NetworkEvent {
    Message(Delivery),
    /// A signed message this node now retains for catch-up (accepted, caught up or published
    /// here): the node keeps a copy in its state store so a restart keeps it.
    Retained(std::sync::Arc<RetainedMessage>),
    PeerConnected {
        peer: PeerId,
        operator: OperatorId,
    },
    PeerDisconnected {
        peer: PeerId,
    },
    /// A connection refused by the gate (`reason` is its label) or by the connection limits.
    ConnectionDenied {
        peer: Option<PeerId>,
        direction: Direction,
        reason: &'static str,
    },
    /// A connected peer lost its authorization and was disconnected.
    PeerEvicted {
        peer: PeerId,
        reason: Unauthorized,
    },
    /// A member's peer score fell below the graylist: disconnected and kept out this long.
    PeerGraylisted {
        peer: PeerId,
        cool_down: std::time::Duration,
    },
    MessageRejected {
        source: Option<PeerId>,
        reason: Rejection,
    },
    /// Identify reported where a member listens (for the persisted peer store).
    AddressesLearned {
        peer: PeerId,
        addresses: Vec<Multiaddr>,
    },
    /// A queued publish was given up (`reason`: expired or failed).
    PublishDropped {
        topic: TopicName,
        reason: &'static str,
    },
}

/// What happened to a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Handed to gossipsub; the hex message id.
    Published { message_id: String },
    /// Waiting for subscribed peers, at this position in the queue.
    Queued { position: usize },
}

/// Why a publish was refused. Nothing is queued when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("this node may not publish on `{topic}`: {reason}")]
    NotAuthorized {
        topic: TopicName,
        reason: Unauthorized,
    },
    #[error("{size} bytes is over the largest deliverable size, {max} bytes")]
    TooLarge { size: usize, max: usize },
    /// Gossipsub could not send it (e.g. no peer subscribed to the anonymous topic yet).
    #[error("not sent: {0}")]
    NotSent(String),
    #[error("publish queue is full ({capacity} messages waiting for peers)")]
    QueueFull { capacity: usize },
    #[error("the network service has stopped")]
    Stopped,
    /// The node moved to a new key ([`crate::NetworkService::hand_over`]); publish on its new service.
    #[error("this network service handed over to a new node key")]
    HandedOver,
}

/// A connected peer as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub operator: Option<OperatorId>,
    pub addresses: Vec<Multiaddr>,
    pub connections: usize,
    pub topics: BTreeSet<TopicName>,
}

/// A consistent picture of the node's connections, published after every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSnapshot {
    pub local: PeerId,
    pub listen: Vec<Multiaddr>,
    pub peers: BTreeMap<PeerId, PeerInfo>,
}

/// Hex of a gossipsub message id (the form the API and logs use).
pub(crate) fn hex_id(id: &gossipsub::MessageId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}
