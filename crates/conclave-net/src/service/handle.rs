//! The application's handle on the network service: cheap to clone, every method one
//! [`Command`] to the worker and (except for verdicts) one answer back.

use std::sync::Arc;

use conclave_core::{Multiaddr, PeerId, TopicName};
use libp2p::identity::Keypair;
use tokio::sync::{mpsc, oneshot, watch};

use super::command::Command;
use super::types::{
    Acceptance, AnonymousMessageId, Delivery, PeerSnapshot, PublishError, PublishOutcome,
};
use crate::headers::{HeaderEntry, HeaderRequest, MAX_HEADERS_PER_REQUEST};
use crate::NetError;

/// Handle to the network service. Cheap to clone; the worker stops when every handle is dropped
/// or [`NetworkService::shutdown`] is called.
#[derive(Clone)]
pub struct NetworkService {
    pub(super) local_peer_id: PeerId,
    /// The node key, for signing what the node serves outside libp2p (the HTTP header driver).
    pub(super) key: Keypair,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) peers: watch::Receiver<Arc<PeerSnapshot>>,
    pub(super) shutdown: Arc<tokio::sync::Notify>,
    /// The largest payload [`NetworkService::publish`] accepts.
    pub(super) max_payload: usize,
}

impl NetworkService {
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Signs `message` with the node key; receivers check it against the node's PeerId.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key
            .sign(message)
            .expect("ed25519 and secp256k1 signing cannot fail")
    }

    /// The node's public key (its PeerId is derived from it).
    pub fn public_key(&self) -> libp2p::identity::PublicKey {
        self.key.public()
    }

    /// The largest payload every member accepts on the signed channel: `max_message_bytes`
    /// bounds the whole signed envelope (timestamp, nonce and signature included).
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload
    }

    /// Sends `command` with a fresh reply channel and waits for the answer.
    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Asks a connected member for `count` headers from height `from` over
    /// `/conclave/headers/1`. Ends with its answer (possibly empty), or an error on failure or
    /// after the request timeout.
    pub async fn fetch_headers(
        &self,
        peer: PeerId,
        from: u64,
        count: u32,
    ) -> Result<Vec<HeaderEntry>, NetError> {
        let request = HeaderRequest {
            from,
            count: count.min(MAX_HEADERS_PER_REQUEST),
        };
        self.request(|reply| Command::FetchHeaders {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Signs and publishes `payload` on `topic`, or queues it until peers subscribe.
    pub async fn publish(
        &self,
        topic: TopicName,
        payload: Vec<u8>,
    ) -> Result<PublishOutcome, PublishError> {
        self.request(|reply| Command::Publish {
            topic,
            payload,
            reply,
        })
        .await
        .map_err(|_| PublishError::Stopped)?
    }

    /// Subscribes to `topic` (idempotent). Returns once gossipsub has been told.
    pub async fn subscribe(&self, topic: TopicName) -> Result<(), NetError> {
        self.request(|reply| Command::Subscribe { topic, reply })
            .await
    }

    /// The messages of `topic` other members sent that this node retains, stamped at or after
    /// `since_ms`, oldest first: a subscriber that was away (or a node that restarted) asks for
    /// these to be replayed. Each is as it was accepted: signed, authorized when sent.
    pub async fn retained(
        &self,
        topic: TopicName,
        since_ms: u64,
    ) -> Result<Vec<Delivery>, NetError> {
        self.request(|reply| Command::Retained {
            topic,
            since_ms,
            reply,
        })
        .await
    }

    /// Joins an anonymous-channel topic; its messages arrive on
    /// [`StartedNetwork::anonymous`](super::StartedNetwork::anonymous).
    pub async fn subscribe_anonymous(&self, topic: TopicName) -> Result<(), NetError> {
        self.request(|reply| Command::SubscribeAnonymous { topic, reply })
            .await
    }

    /// Publishes an anonymous-channel frame (already carrying its proof); the hex message id.
    pub async fn publish_anonymous(
        &self,
        topic: TopicName,
        data: Vec<u8>,
    ) -> Result<String, PublishError> {
        self.request(|reply| Command::PublishAnonymous { topic, data, reply })
            .await
            .map_err(|_| PublishError::Stopped)?
    }

    /// Each anonymous-channel peer's score: gossipsub's, with the penalties for invalid stem
    /// frames; below −400 a peer is graylisted.
    pub async fn anonymous_scores(&self) -> Result<Vec<(PeerId, f64)>, NetError> {
        self.request(|reply| Command::AnonymousScores { reply })
            .await
    }

    /// The verdict on a held anonymous message: gossip forwards it only on `Accept`; on the
    /// stem, `Accept` sends it on and `Reject` penalizes the member it came from.
    pub async fn report_anonymous(
        &self,
        id: AnonymousMessageId,
        acceptance: Acceptance,
    ) -> Result<(), NetError> {
        self.commands
            .send(Command::ReportAnonymous { id, acceptance })
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Dials an address now, with or without a `/p2p/` suffix. With one, the gate refuses a
    /// non-member before dialing; without, it judges the peer once the handshake authenticates it.
    pub async fn dial(&self, address: Multiaddr) -> Result<(), NetError> {
        self.request(|reply| Command::Dial { address, reply })
            .await?
            .map_err(NetError::Dial)
    }

    /// Adds a listen address (e.g. the configured port, once a previous service freed it).
    pub async fn listen_on(&self, address: Multiaddr) -> Result<(), NetError> {
        let requested = address.clone();
        self.request(|reply| Command::Listen { address, reply })
            .await?
            .map_err(|e| NetError::Listen(requested, e))
    }

    /// Takes one transport out (an operator's firewall change, a test of the other paths):
    /// stops listening on every address `matches` selects, closes the connections whose remote
    /// address it selects, and dials no such address until one is listened on again. Returns
    /// (listeners, connections) closed.
    pub async fn close_listeners(
        &self,
        matches: impl Fn(&Multiaddr) -> bool + Send + 'static,
    ) -> Result<(usize, usize), NetError> {
        self.request(|reply| Command::CloseTransport {
            matches: Box::new(matches),
            reply,
        })
        .await
    }

    /// The topics this service is subscribed to (a successor subscribes to the same).
    pub async fn topics(&self) -> Result<Vec<TopicName>, NetError> {
        self.request(|reply| Command::Topics { reply }).await
    }

    /// The peers in this node's gossipsub mesh for `topic` (they get every message first-hand).
    pub async fn mesh_peers(&self, topic: TopicName) -> Result<Vec<PeerId>, NetError> {
        self.request(|reply| Command::MeshPeers { topic, reply })
            .await
    }

    /// Key rotation: returns the publishes still waiting for peers, in order, and refuses later
    /// ones with [`PublishError::HandedOver`], so each application message goes out through
    /// exactly one key. Messages already handed to gossipsub keep flowing until shutdown.
    pub async fn hand_over(&self) -> Result<Vec<(TopicName, Vec<u8>)>, NetError> {
        self.request(|reply| Command::HandOver { reply }).await
    }

    /// The live connection table (updated by the worker on every change).
    pub fn peers(&self) -> watch::Receiver<Arc<PeerSnapshot>> {
        self.peers.clone()
    }

    /// Asks the worker to close every connection and stop.
    pub fn shutdown(&self) {
        self.shutdown.notify_one();
    }
}
