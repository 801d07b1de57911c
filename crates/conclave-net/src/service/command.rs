//! What a [`NetworkService`](super::NetworkService) handle asks of the worker. Every request
//! carries its own reply channel, so answers are correlated with requests by construction; the
//! command channel is bounded (`NetConfig::command_capacity`), so a flood of requests waits
//! rather than grows.

use conclave_core::{Multiaddr, PeerId, TopicName};
use tokio::sync::oneshot;

use super::types::{Acceptance, AnonymousMessageId, Delivery, PublishError, PublishOutcome};
use crate::headers::{HeaderEntry, HeaderRequest};
use crate::NetError;

/// One request to the worker, and where its answer goes.
pub(crate) enum Command {
    /// Sign and publish on the signed channel, or queue until peers subscribe.
    Publish {
        topic: TopicName,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<PublishOutcome, PublishError>>,
    },
    /// Join a signed-channel topic (idempotent).
    Subscribe {
        topic: TopicName,
        reply: oneshot::Sender<()>,
    },
    /// Dial an address now; the gate judges the peer before or after the handshake.
    Dial {
        address: Multiaddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Listen on one more address (and dial that transport again if it was taken out).
    Listen {
        address: Multiaddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// The signed-channel topics this node is subscribed to.
    Topics {
        reply: oneshot::Sender<Vec<TopicName>>,
    },
    /// The gossipsub mesh of one topic.
    MeshPeers {
        topic: TopicName,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Key rotation: give up what waits to the successor and refuse later publishes.
    HandOver {
        reply: oneshot::Sender<Vec<(TopicName, Vec<u8>)>>,
    },
    /// Join an anonymous-channel topic.
    SubscribeAnonymous {
        topic: TopicName,
        reply: oneshot::Sender<()>,
    },
    /// Publish a frame on the anonymous channel (it already carries its proof).
    PublishAnonymous {
        topic: TopicName,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<String, PublishError>>,
    },
    /// Each anonymous-channel peer's gossipsub score (stem penalties included).
    AnonymousScores {
        reply: oneshot::Sender<Vec<(PeerId, f64)>>,
    },
    /// The application's verdict on a held anonymous message (no answer).
    ReportAnonymous {
        id: AnonymousMessageId,
        acceptance: Acceptance,
    },
    /// Ask a connected member for a range of chain headers.
    FetchHeaders {
        peer: PeerId,
        request: HeaderRequest,
        reply: HeaderReplySender,
    },
    /// Other members' retained messages of a topic stamped at or after `since_ms`, oldest
    /// first (what a subscriber that was away asks to be replayed).
    Retained {
        topic: TopicName,
        since_ms: u64,
        reply: oneshot::Sender<Vec<Delivery>>,
    },
    /// Take one transport out: close its listeners and connections, dial it no more.
    CloseTransport {
        matches: AddressFilter,
        reply: oneshot::Sender<(usize, usize)>,
    },
}

/// Where the answer to a header request goes.
pub(crate) type HeaderReplySender = oneshot::Sender<Result<Vec<HeaderEntry>, NetError>>;

/// Selects the addresses of one transport (see
/// [`NetworkService::close_listeners`](super::NetworkService::close_listeners)).
pub(crate) type AddressFilter = Box<dyn Fn(&Multiaddr) -> bool + Send>;
