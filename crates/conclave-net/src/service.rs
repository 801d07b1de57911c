//! The network service: a cloneable handle talking over bounded channels to one worker task
//! that owns the swarm (the only writer of connection state), in the style of `sc-network`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_core::{
    split_peer_id, Clock, Envelope, MembershipView, Moment, Multiaddr, OperatorId, PeerId,
    TopicName, Unauthorized,
};
use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError as GossipPublishError};
use libp2p::identity::Keypair;
use libp2p::metrics::Recorder;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, ListenError, SwarmEvent};
use libp2p::{connection_limits, identify, Swarm};
use prometheus_client::registry::Registry;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::behaviour::{
    anonymous_topic, anonymous_topic_name, gossip_topic, topic_name, topic_score_params, Behaviour,
    BehaviourEvent, BehaviourParams, FRAME_OVERHEAD,
};
use crate::gate::Denied;
use crate::headers::{
    HeaderEntry, HeaderReply, HeaderRequest, RecentHeaders, MAX_HEADERS_PER_REQUEST,
};
use crate::metrics::{DeniedLabels, MessageLabels, NetMetrics, PublishLabels, ReasonLabels};
use crate::outbox::{Outbox, Pending};
use crate::redial::{AddressBook, RedialSchedule};
use crate::transport::build_swarm;
use crate::validation::{validate_signed, Rejection, ValidationLimits};
use crate::{NetConfig, NetError};

/// How often the worker re-checks expiries, redials and the outbox while there is such work: a
/// member to reach or a message waiting for peers.
const TICK: Duration = Duration::from_millis(100);
/// The tick while every member is connected and nothing waits: only the time-driven
/// authorization sweep is left, and authorizations are judged per second. Each tick wakes the
/// whole swarm: at 100 ms that was most of an idle node's CPU (measured with 4 node processes:
/// 1.9 ms of CPU per second per node, 0.7 with this).
const QUIET_TICK: Duration = Duration::from_secs(1);
/// How long a node whose address members know waits for a lower-PeerId member to dial it before
/// dialling itself. Without the tie-break every pair of members would dial each other at once
/// and pay two Noise handshakes for the connection it keeps — at start-up, all of them.
const INBOUND_GRACE: Duration = Duration::from_secs(1);
/// Extra grace per member: at start-up every member handshakes with all the others at once,
/// and on a small machine the lower PeerId's dials take longer the more there are; dialing
/// back meanwhile doubles the handshakes and slows everyone further.
const INBOUND_GRACE_PER_MEMBER: Duration = Duration::from_millis(40);

fn inbound_grace(members: usize) -> Duration {
    INBOUND_GRACE + INBOUND_GRACE_PER_MEMBER * members as u32
}

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
}

/// A message of the anonymous channel waiting for the application's verdict: gossipsub holds it
/// (neither delivered nor forwarded) until [`NetworkService::report_anonymous`] is called.
#[derive(Debug, Clone)]
pub struct AnonymousMessage {
    pub topic: TopicName,
    pub data: Vec<u8>,
    pub id: AnonymousMessageId,
}

/// Which held message a verdict is for: the gossipsub id and the peer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymousMessageId {
    message_id: gossipsub::MessageId,
    propagation_source: PeerId,
}

impl AnonymousMessageId {
    /// Hex of the gossipsub message id (SHA-256 of the data).
    pub fn hex(&self) -> String {
        hex_id(&self.message_id)
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
}

/// Direction of a refused connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    fn label(self) -> &'static str {
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
    #[error("message of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    /// Gossipsub could not send it (e.g. no peer subscribed to the anonymous topic yet).
    #[error("not sent: {0}")]
    NotSent(String),
    #[error("publish queue is full ({capacity} messages waiting for peers)")]
    QueueFull { capacity: usize },
    #[error("the network service has stopped")]
    Stopped,
    /// The node moved to a new key ([`NetworkService::hand_over`]); publish on its new service.
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

enum Command {
    Publish {
        topic: TopicName,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<PublishOutcome, PublishError>>,
    },
    Subscribe {
        topic: TopicName,
        reply: oneshot::Sender<()>,
    },
    Dial {
        address: Multiaddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Listen {
        address: Multiaddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Topics {
        reply: oneshot::Sender<Vec<TopicName>>,
    },
    MeshPeers {
        topic: TopicName,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    HandOver {
        reply: oneshot::Sender<Vec<(TopicName, Vec<u8>)>>,
    },
    SubscribeAnonymous {
        topic: TopicName,
        reply: oneshot::Sender<()>,
    },
    PublishAnonymous {
        topic: TopicName,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<String, PublishError>>,
    },
    ReportAnonymous {
        id: AnonymousMessageId,
        acceptance: Acceptance,
    },
    FetchHeaders {
        peer: PeerId,
        request: HeaderRequest,
        reply: HeaderReplySender,
    },
    CloseTransport {
        matches: AddressFilter,
        reply: oneshot::Sender<(usize, usize)>,
    },
}

type HeaderReplySender = oneshot::Sender<Result<Vec<HeaderEntry>, NetError>>;

/// Selects the addresses of one transport (see [`NetworkService::close_listeners`]).
type AddressFilter = Box<dyn Fn(&Multiaddr) -> bool + Send>;

/// Header requests in flight at once; beyond it a request is refused at once (each ends in an
/// answer or the request timeout, so the table drains).
const MAX_HEADER_REQUESTS: usize = 256;

/// Handle to the network service. Cheap to clone; the worker stops when every handle is dropped
/// or [`NetworkService::shutdown`] is called.
#[derive(Clone)]
pub struct NetworkService {
    local_peer_id: PeerId,
    /// The node key, for signing what the node serves outside libp2p (the HTTP header driver).
    key: Keypair,
    commands: mpsc::Sender<Command>,
    peers: watch::Receiver<Arc<PeerSnapshot>>,
    shutdown: Arc<tokio::sync::Notify>,
}

/// A started network: the handle, the event stream and the worker's task.
pub struct StartedNetwork {
    pub service: NetworkService,
    pub events: mpsc::Receiver<NetworkEvent>,
    /// Anonymous-channel messages awaiting validation (bounded; beyond it they are ignored).
    pub anonymous: mpsc::Receiver<AnonymousMessage>,
    pub worker: JoinHandle<()>,
}

impl NetworkService {
    /// Builds the swarm, starts listening and spawns the worker. `view` is the registry's
    /// snapshot channel; metrics are registered in `metrics`.
    pub fn start(
        config: NetConfig,
        view: watch::Receiver<Arc<MembershipView>>,
        metrics: &mut Registry,
    ) -> Result<StartedNetwork, NetError> {
        let local = config.keypair.public().to_peer_id();
        let initial_view = view.borrow().clone();
        let members = u32::try_from(initial_view.nodes().count()).unwrap_or(u32::MAX);
        let mut book = AddressBook::default();
        for seed in &config.seeds {
            match split_peer_id(seed.clone()) {
                (addr, Some(peer)) => {
                    book.add(peer, addr);
                }
                (_, None) => return Err(NetError::SeedWithoutPeerId(seed.clone())),
            }
        }
        for (peer, addr) in &config.known_addresses {
            book.add(*peer, addr.clone());
        }

        let behaviour = Behaviour::new(
            &config.keypair,
            BehaviourParams {
                view: initial_view,
                clock: config.clock.clone(),
                max_message_bytes: config.max_message_bytes,
                // Never fewer than the members: a network starting at once must not be refused
                // by itself (strangers are still bounded, and refused after the handshake).
                max_pending_incoming: config.max_pending_incoming.max(members),
                relay_server: config.relay_server,
                metrics: metrics.sub_registry_with_prefix("libp2p"),
            },
        )?;
        let libp2p_metrics =
            libp2p::metrics::Metrics::new(metrics.sub_registry_with_prefix("libp2p"));
        let net_metrics = NetMetrics::register(metrics.sub_registry_with_prefix("conclave"));
        let mut swarm = build_swarm(
            config.keypair.clone(),
            config.transport,
            config.idle_connection_timeout,
            behaviour,
            metrics,
        )?;
        let mut listeners = HashMap::new();
        for addr in &config.listen {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen(addr.clone(), e.to_string()))?;
            listeners.insert(id, addr.clone());
        }

        let (cmd_tx, cmd_rx) = mpsc::channel(config.command_capacity);
        let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity);
        let (anon_tx, anon_rx) = mpsc::channel(config.anonymous_capacity);
        let snapshot = PeerSnapshot {
            local,
            listen: Vec::new(),
            peers: BTreeMap::new(),
        };
        let (peers_tx, peers_rx) = watch::channel(Arc::new(snapshot.clone()));
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let mut worker = Worker {
            swarm,
            local,
            commands: cmd_rx,
            view,
            view_open: true,
            events: ev_tx,
            anonymous: anon_tx,
            peers_tx,
            snapshot,
            outbox: Outbox::new(config.outbox_capacity, config.outbox_ttl),
            outbox_capacity: config.outbox_capacity,
            redial: RedialSchedule::new(config.redial),
            swept_at: None,
            all_connected: false,
            book,
            metrics: net_metrics,
            libp2p_metrics,
            clock: config.clock.clone(),
            key: config.keypair.clone(),
            nonce: rand::random(),
            limits: ValidationLimits {
                max_message_bytes: config.max_message_bytes,
                timestamp_tolerance_ms: config.timestamp_tolerance.as_millis() as u64,
            },
            min_publish_peers: config.min_publish_peers,
            shutdown: shutdown.clone(),
            handed_over: false,
            headers: config.headers.clone(),
            header_requests: HashMap::new(),
            listeners,
            connections: HashMap::new(),
            closed_transports: Vec::new(),
        };
        for topic in &config.topics {
            worker.subscribe(topic);
        }
        for topic in &config.anonymous_topics {
            worker.subscribe_anonymous(topic);
        }
        let handle = tokio::spawn(worker.run());
        Ok(StartedNetwork {
            service: NetworkService {
                local_peer_id: local,
                key: config.keypair.clone(),
                commands: cmd_tx,
                peers: peers_rx,
                shutdown,
            },
            events: ev_rx,
            anonymous: anon_rx,
            worker: handle,
        })
    }

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
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Publish {
                topic,
                payload,
                reply,
            })
            .await
            .map_err(|_| PublishError::Stopped)?;
        rx.await.map_err(|_| PublishError::Stopped)?
    }

    /// Subscribes to `topic` (idempotent). Returns once gossipsub has been told.
    pub async fn subscribe(&self, topic: TopicName) -> Result<(), NetError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Subscribe { topic, reply })
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

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

    /// Joins an anonymous-channel topic; its messages arrive on [`StartedNetwork::anonymous`].
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

    /// The verdict on a held anonymous message: gossipsub forwards it only on `Accept`.
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
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Dial { address, reply })
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await
            .map_err(|_| NetError::Stopped)?
            .map_err(NetError::Dial)
    }

    /// Adds a listen address (e.g. the configured port, once a previous service freed it).
    pub async fn listen_on(&self, address: Multiaddr) -> Result<(), NetError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Listen {
                address: address.clone(),
                reply,
            })
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await
            .map_err(|_| NetError::Stopped)?
            .map_err(|e| NetError::Listen(address, e))
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
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Topics { reply })
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// The peers in this node's gossipsub mesh for `topic` (they get every message first-hand).
    pub async fn mesh_peers(&self, topic: TopicName) -> Result<Vec<PeerId>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::MeshPeers { topic, reply })
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Key rotation: returns the publishes still waiting for peers, in order, and refuses later
    /// ones with [`PublishError::HandedOver`], so each application message goes out through
    /// exactly one key. Messages already handed to gossipsub keep flowing until shutdown.
    pub async fn hand_over(&self) -> Result<Vec<(TopicName, Vec<u8>)>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::HandOver { reply })
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
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

struct Worker {
    swarm: Swarm<Behaviour>,
    local: PeerId,
    /// Signs every envelope this node publishes.
    key: Keypair,
    /// The next envelope's nonce (random start, so a restart does not reuse nonces).
    nonce: u64,
    commands: mpsc::Receiver<Command>,
    view: watch::Receiver<Arc<MembershipView>>,
    view_open: bool,
    events: mpsc::Sender<NetworkEvent>,
    anonymous: mpsc::Sender<AnonymousMessage>,
    peers_tx: watch::Sender<Arc<PeerSnapshot>>,
    snapshot: PeerSnapshot,
    outbox: Outbox,
    outbox_capacity: usize,
    redial: RedialSchedule,
    /// The moment of the last time-driven authorization sweep (see `on_tick`).
    swept_at: Option<Moment>,
    /// Every member was connected at the last redial pass; cleared when one disconnects or the
    /// view changes. With an empty outbox it lets the worker tick at [`QUIET_TICK`].
    all_connected: bool,
    book: AddressBook,
    metrics: NetMetrics,
    libp2p_metrics: libp2p::metrics::Metrics,
    clock: Arc<dyn Clock>,
    limits: ValidationLimits,
    min_publish_peers: usize,
    shutdown: Arc<tokio::sync::Notify>,
    /// Set by [`NetworkService::hand_over`]: publishes now belong to the successor.
    handed_over: bool,
    /// What we serve to header requests (written by the node's chain task).
    headers: watch::Receiver<Arc<RecentHeaders>>,
    /// Our header requests in flight, by request id.
    header_requests: HashMap<OutboundRequestId, HeaderReplySender>,
    /// Our listeners and the address each was asked to listen on.
    listeners: HashMap<ListenerId, Multiaddr>,
    /// Open connections and their remote address, so one transport's can be closed.
    connections: HashMap<ConnectionId, Multiaddr>,
    /// Transports taken out ([`NetworkService::close_listeners`]): not dialed until listened
    /// on again.
    closed_transports: Vec<AddressFilter>,
}

impl Worker {
    async fn run(mut self) {
        let tick = tokio::time::sleep(TICK);
        tokio::pin!(tick);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                changed = self.view.changed(), if self.view_open => match changed {
                    Ok(()) => {
                        let view = self.view.borrow_and_update().clone();
                        self.all_connected = false;
                        self.apply_view(view);
                    }
                    Err(_) => self.view_open = false,
                },
                _ = &mut tick => {
                    self.on_tick();
                    let next = tokio::time::Instant::now() + self.tick_period();
                    tick.as_mut().reset(next);
                }
                _ = self.shutdown.notified() => break,
            }
            // Work appeared while ticking slowly (a member dropped, a message waits): tick soon.
            let soon = tokio::time::Instant::now() + TICK;
            if self.tick_period() == TICK && tick.deadline() > soon {
                tick.as_mut().reset(soon);
            }
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for p in peers {
            let _ = self.swarm.disconnect_peer_id(p);
        }
        tracing::info!("network service stopped");
    }

    fn emit(&self, event: NetworkEvent) {
        if self.events.try_send(event).is_err() {
            self.metrics.events_dropped.inc();
        }
    }

    fn view(&self) -> Arc<MembershipView> {
        self.swarm.behaviour().gate.view().clone()
    }

    fn apply_view(&mut self, view: Arc<MembershipView>) {
        // Members whose address hints changed are dialled at once, whatever their backoff (an
        // operator publishing its node's new address should not wait out failures at the old).
        let old = self.view();
        let new_hints: Vec<PeerId> = if Arc::ptr_eq(&old, &view) {
            Vec::new()
        } else {
            view.nodes()
                .filter(|(p, a)| old.node(p).map(|o| &o.addresses) != Some(&a.addresses))
                .map(|(p, _)| *p)
                .collect()
        };
        for peer in &new_hints {
            self.redial.reset(peer);
        }
        let evicted = self.swarm.behaviour_mut().gate.apply_view(view);
        for (peer, reason) in evicted {
            tracing::warn!(%peer, %reason, "evicting peer no longer authorized");
            self.metrics
                .evictions
                .get_or_create(&ReasonLabels {
                    reason: reason.label(),
                })
                .inc();
            self.emit(NetworkEvent::PeerEvicted { peer, reason });
        }
        let view = self.view();
        let at = self.clock.moment();
        self.book.retain(|p| view.authorization(p, at).is_ok());
        self.redial.retain(|p| view.authorization(p, at).is_ok());
    }

    fn on_tick(&mut self) {
        // Delegations expire with time, not only with registry edits. An authorization is
        // judged at a moment (second, block), so one sweep per moment is enough: not one per
        // tick, ten a second over every member (measured at 100 members: ≈7 % of an idle node's
        // CPU).
        let at = self.clock.moment();
        if self.swept_at != Some(at) {
            self.swept_at = Some(at);
            self.apply_view(self.view());
        }
        self.redial_members();
        let now = Instant::now();
        for p in self.outbox.expire(now) {
            self.drop_pending(p, "expired");
        }
        self.flush_outbox();
    }

    fn tick_period(&self) -> Duration {
        if self.all_connected && self.outbox.is_empty() {
            QUIET_TICK
        } else {
            TICK
        }
    }

    fn redial_members(&mut self) {
        let view = self.view();
        let at = self.clock.moment();
        let disconnected: BTreeSet<PeerId> = view
            .members_at(at)
            .map(|(p, _)| *p)
            .filter(|p| *p != self.local && !self.swarm.is_connected(p))
            .collect();
        self.all_connected = disconnected.is_empty();
        let now = Instant::now();
        // The lower PeerId of a pair dials; the higher one waits a little for it — but only if
        // members can dial us at all (our address hints are in the registry).
        if view
            .node(&self.local)
            .is_some_and(|a| !a.addresses.is_empty())
        {
            for peer in disconnected.iter().filter(|p| **p < self.local) {
                self.redial
                    .defer_first(*peer, now, inbound_grace(view.nodes().count()));
            }
        }
        for peer in self.redial.due(&disconnected, now) {
            let hints = view
                .authorization(&peer, at)
                .map(|a| a.addresses.clone())
                .unwrap_or_default();
            let addrs: Vec<Multiaddr> = self
                .book
                .dial_addresses(&peer, &hints)
                .into_iter()
                .filter(|a| !self.closed_transports.iter().any(|closed| closed(a)))
                .collect();
            if addrs.is_empty() {
                // Nowhere to dial yet: count it as a failure so the schedule backs off.
                self.redial
                    .on_failure(peer, Instant::now(), &mut rand::thread_rng());
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "dial not started");
                self.redial
                    .on_failure(peer, Instant::now(), &mut rand::thread_rng());
            }
        }
    }

    fn subscribe_anonymous(&mut self, topic: &TopicName) {
        let gs = &mut self.swarm.behaviour_mut().anonymous;
        join_topic(gs, anonymous_topic(topic), topic, "anonymous");
    }

    fn subscribe(&mut self, topic: &TopicName) {
        let gs = &mut self.swarm.behaviour_mut().gossipsub;
        join_topic(gs, gossip_topic(topic), topic, "signed");
    }

    fn subscribed_peers(&self, topic: &TopicName) -> usize {
        let hash = gossip_topic(topic).hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .count()
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish {
                topic,
                payload,
                reply,
            } => {
                let result = self.publish(topic.clone(), payload);
                let outcome = match &result {
                    Ok(PublishOutcome::Published { .. }) => "published",
                    Ok(PublishOutcome::Queued { .. }) => "queued",
                    Err(_) => "refused",
                };
                self.metrics
                    .publishes
                    .get_or_create(&PublishLabels {
                        topic: topic.to_string(),
                        outcome,
                    })
                    .inc();
                let _ = reply.send(result);
            }
            Command::Subscribe { topic, reply } => {
                self.subscribe(&topic);
                let _ = reply.send(());
            }
            Command::Dial { address, reply } => {
                let result = self.swarm.dial(address).map_err(|e| match &e {
                    DialError::Denied { cause } => match cause.downcast_ref::<Denied>() {
                        Some(d) => d.to_string(),
                        None => format!("refused: {cause}"),
                    },
                    _ => e.to_string(),
                });
                let _ = reply.send(result);
            }
            Command::Listen { address, reply } => {
                self.closed_transports.retain(|closed| !closed(&address));
                let result = self
                    .swarm
                    .listen_on(address.clone())
                    .map(|id| {
                        self.listeners.insert(id, address);
                    })
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            Command::CloseTransport { matches, reply } => {
                let listeners: Vec<ListenerId> = self
                    .listeners
                    .iter()
                    .filter(|(_, a)| matches(a))
                    .map(|(id, _)| *id)
                    .collect();
                for id in &listeners {
                    self.swarm.remove_listener(*id);
                    self.listeners.remove(id);
                }
                let connections: Vec<ConnectionId> = self
                    .connections
                    .iter()
                    .filter(|(_, a)| matches(a))
                    .map(|(id, _)| *id)
                    .collect();
                for id in &connections {
                    self.swarm.close_connection(*id);
                }
                self.closed_transports.push(matches);
                let _ = reply.send((listeners.len(), connections.len()));
            }
            Command::Topics { reply } => {
                let topics = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .topics()
                    .filter_map(topic_name)
                    .collect();
                let _ = reply.send(topics);
            }
            Command::MeshPeers { topic, reply } => {
                let hash = gossip_topic(&topic).hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .mesh_peers(&hash)
                    .copied()
                    .collect();
                let _ = reply.send(peers);
            }
            Command::SubscribeAnonymous { topic, reply } => {
                self.subscribe_anonymous(&topic);
                let _ = reply.send(());
            }
            Command::PublishAnonymous { topic, data, reply } => {
                let max = self.limits.max_message_bytes + FRAME_OVERHEAD;
                let r = if data.len() > max {
                    Err(PublishError::TooLarge {
                        size: data.len(),
                        max,
                    })
                } else {
                    self.swarm
                        .behaviour_mut()
                        .anonymous
                        .publish(anonymous_topic(&topic), data)
                        .map(|id| hex_id(&id))
                        .map_err(|e| PublishError::NotSent(e.to_string()))
                };
                let _ = reply.send(r);
            }
            Command::ReportAnonymous { id, acceptance } => self.report_anonymous(&id, acceptance),
            Command::FetchHeaders {
                peer,
                request,
                reply,
            } => {
                if self.header_requests.len() >= MAX_HEADER_REQUESTS {
                    let _ = reply.send(Err(NetError::HeaderRequest {
                        peer,
                        reason: format!("{MAX_HEADER_REQUESTS} header requests already in flight"),
                    }));
                } else if !self.swarm.is_connected(&peer) {
                    // Header requests go to members we are connected to; dialing a stranger
                    // for one would bypass the redial schedule.
                    let _ = reply.send(Err(NetError::HeaderRequest {
                        peer,
                        reason: "not connected".into(),
                    }));
                } else {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .headers
                        .send_request(&peer, request);
                    self.header_requests.insert(id, reply);
                }
            }
            Command::HandOver { reply } => {
                self.handed_over = true;
                let queued = self
                    .outbox
                    .take_ready(|_| true)
                    .into_iter()
                    .map(|p| (p.topic, p.payload))
                    .collect();
                self.metrics.outbox_len.set(0);
                let _ = reply.send(queued);
            }
        }
    }

    fn publish(
        &mut self,
        topic: TopicName,
        payload: Vec<u8>,
    ) -> Result<PublishOutcome, PublishError> {
        if self.handed_over {
            return Err(PublishError::HandedOver);
        }
        let view = self.view();
        if let Err(reason) = view.may_publish(&self.local, &topic, self.clock.moment()) {
            return Err(PublishError::NotAuthorized { topic, reason });
        }
        // The envelope adds a timestamp and two tags: at most 16 bytes.
        let size = payload.len() + 16;
        if size > self.limits.max_message_bytes {
            return Err(PublishError::TooLarge {
                size,
                max: self.limits.max_message_bytes,
            });
        }
        let ready = !self.outbox.has_pending(&topic)
            && self.subscribed_peers(&topic) >= self.min_publish_peers;
        if ready {
            match self.send_now(&topic, &payload) {
                Ok(id) => return Ok(PublishOutcome::Published { message_id: id }),
                Err(e) => tracing::debug!(%topic, error = %e, "publish deferred"),
            }
        }
        let pending = Pending {
            topic,
            payload,
            queued_at: Instant::now(),
        };
        match self.outbox.push(pending) {
            Ok(()) => {
                self.metrics.outbox_len.set(self.outbox.len() as i64);
                Ok(PublishOutcome::Queued {
                    position: self.outbox.len(),
                })
            }
            Err(_) => {
                self.metrics
                    .outbox_dropped
                    .get_or_create(&ReasonLabels { reason: "full" })
                    .inc();
                Err(PublishError::QueueFull {
                    capacity: self.outbox_capacity,
                })
            }
        }
    }

    /// Stamps and publishes; the timestamp is taken now so queued messages are not stale.
    fn send_now(
        &mut self,
        topic: &TopicName,
        payload: &[u8],
    ) -> Result<String, GossipPublishError> {
        let mut envelope = Envelope {
            timestamp_ms: self.clock.now_ms(),
            payload: payload.to_vec(),
            nonce: self.nonce,
            signature: Vec::new(),
        };
        self.nonce = self.nonce.wrapping_add(1);
        envelope.signature = self.key.sign(&envelope.signing_bytes(topic.as_str()))?;
        let data = envelope.encode_to_vec();
        let id = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(gossip_topic(topic), data)?;
        Ok(hex_id(&id))
    }

    fn flush_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let mut subscribed: BTreeMap<TopicName, usize> = BTreeMap::new();
        let gossipsub = &self.swarm.behaviour().gossipsub;
        for (_, topics) in gossipsub.all_peers() {
            for name in topics.into_iter().filter_map(topic_name) {
                *subscribed.entry(name).or_default() += 1;
            }
        }
        let min = self.min_publish_peers;
        let ready = self
            .outbox
            .take_ready(|t| subscribed.get(t).copied().unwrap_or(0) >= min);
        let mut retry = Vec::new();
        let mut blocked: BTreeSet<TopicName> = BTreeSet::new();
        for p in ready {
            if blocked.contains(&p.topic) {
                retry.push(p);
                continue;
            }
            match self.send_now(&p.topic, &p.payload) {
                Ok(_) => {}
                Err(GossipPublishError::NoPeersSubscribedToTopic)
                | Err(GossipPublishError::AllQueuesFull(_)) => {
                    blocked.insert(p.topic.clone());
                    retry.push(p);
                }
                Err(e) => {
                    tracing::warn!(topic = %p.topic, error = %e, "queued publish failed");
                    self.drop_pending(p, "failed");
                }
            }
        }
        self.outbox.requeue_front(retry);
        self.metrics.outbox_len.set(self.outbox.len() as i64);
    }

    fn drop_pending(&mut self, p: Pending, reason: &'static str) {
        self.metrics
            .outbox_dropped
            .get_or_create(&ReasonLabels { reason })
            .inc();
        self.emit(NetworkEvent::PublishDropped {
            topic: p.topic,
            reason,
        });
        self.metrics.outbox_len.set(self.outbox.len() as i64);
    }

    fn publish_snapshot(&mut self) {
        self.metrics.peers.set(self.snapshot.peers.len() as i64);
        self.peers_tx.send_replace(Arc::new(self.snapshot.clone()));
    }

    fn count_denied(&mut self, peer: Option<PeerId>, direction: Direction, reason: &'static str) {
        self.metrics
            .connections_denied
            .get_or_create(&DeniedLabels {
                direction: direction.label(),
                reason,
            })
            .inc();
        self.emit(NetworkEvent::ConnectionDenied {
            peer,
            direction,
            reason,
        });
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.libp2p_metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(ev)) => {
                self.libp2p_metrics.record(&ev);
                self.on_gossipsub(ev);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Anonymous(ev)) => {
                self.libp2p_metrics.record(&ev);
                self.on_anonymous(ev);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(ev)) => {
                self.libp2p_metrics.record(&ev);
                if let identify::Event::Received { peer_id, info, .. } = ev {
                    let new: Vec<Multiaddr> = info
                        .listen_addrs
                        .into_iter()
                        .filter(|a| self.book.add(peer_id, a.clone()))
                        .collect();
                    if !new.is_empty() {
                        self.emit(NetworkEvent::AddressesLearned {
                            peer: peer_id,
                            addresses: new,
                        });
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ev)) => self.libp2p_metrics.record(&ev),
            SwarmEvent::Behaviour(BehaviourEvent::Headers(ev)) => self.on_headers(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(ev)) => self.on_relay(ev),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(ev)) => {
                tracing::debug!(?ev, "relay client");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gate(never))
            | SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                self.connections
                    .insert(connection_id, connection_address(&endpoint));
                self.redial.on_connected(peer_id, Instant::now());
                let operator = self
                    .view()
                    .authorization(&peer_id, self.clock.moment())
                    .ok()
                    .map(|a| a.operator);
                let info = self.snapshot.peers.entry(peer_id).or_insert(PeerInfo {
                    operator,
                    addresses: Vec::new(),
                    connections: 0,
                    topics: BTreeSet::new(),
                });
                info.connections += 1;
                let addr = connection_address(&endpoint);
                if !info.addresses.contains(&addr) {
                    info.addresses.push(addr);
                }
                if info.connections == 1 {
                    if let Some(operator) = operator {
                        tracing::info!(peer = %peer_id, %operator, "member connected");
                        self.emit(NetworkEvent::PeerConnected {
                            peer: peer_id,
                            operator,
                        });
                    }
                }
                self.publish_snapshot();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                endpoint,
                connection_id,
                ..
            } => {
                self.connections.remove(&connection_id);
                if num_established == 0 {
                    self.all_connected = false;
                    self.redial
                        .on_disconnected(peer_id, Instant::now(), &mut rand::thread_rng());
                    self.snapshot.peers.remove(&peer_id);
                    tracing::info!(peer = %peer_id, "peer disconnected");
                    self.emit(NetworkEvent::PeerDisconnected { peer: peer_id });
                } else if let Some(info) = self.snapshot.peers.get_mut(&peer_id) {
                    info.connections = num_established as usize;
                    info.addresses
                        .retain(|a| *a != connection_address(&endpoint));
                }
                self.publish_snapshot();
            }
            SwarmEvent::IncomingConnectionError {
                error: ListenError::Denied { cause },
                peer_id,
                ..
            } => {
                let (peer, reason) = denial(&cause, peer_id);
                tracing::info!(?peer, reason, "inbound connection refused");
                self.count_denied(peer, Direction::Inbound, reason);
            }
            SwarmEvent::OutgoingConnectionError { error, peer_id, .. } => {
                if let DialError::Denied { cause } = &error {
                    let (peer, reason) = denial(cause, peer_id);
                    tracing::info!(?peer, reason, "outbound connection refused");
                    self.count_denied(peer, Direction::Outbound, reason);
                }
                if let Some(peer) = peer_id {
                    tracing::debug!(%peer, error = %error, "dial failed");
                    self.redial
                        .on_failure(peer, Instant::now(), &mut rand::thread_rng());
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                // A relay tells the members it serves where to be reached: its own listen
                // addresses (not circuits through other relays).
                let circuit = address
                    .iter()
                    .any(|p| p == libp2p::multiaddr::Protocol::P2pCircuit);
                if self.swarm.behaviour().relay.is_enabled() && !circuit {
                    self.swarm.add_external_address(address.clone());
                }
                self.snapshot.listen.push(address);
                self.publish_snapshot();
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.snapshot.listen.retain(|a| *a != address);
                self.publish_snapshot();
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                ..
            } => {
                self.listeners.remove(&listener_id);
                self.snapshot.listen.retain(|a| !addresses.contains(a));
                self.publish_snapshot();
            }
            _ => {}
        }
    }

    /// Reports `Reject` to gossipsub (which lowers the forwarder's score and stops the message
    /// here), counts it and tells the application.
    fn reject(
        &mut self,
        message_id: &gossipsub::MessageId,
        propagation_source: &PeerId,
        source: Option<PeerId>,
        topic: String,
        reason: Rejection,
    ) {
        tracing::debug!(?source, forwarder = %propagation_source, %reason, "message rejected");
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(
                message_id,
                propagation_source,
                MessageAcceptance::Reject,
            );
        self.metrics
            .messages
            .get_or_create(&MessageLabels {
                topic,
                outcome: "rejected",
                reason: reason.label(),
            })
            .inc();
        self.emit(NetworkEvent::MessageRejected { source, reason });
    }

    fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(topic) = topic_name(&message.topic) else {
                    let reason = Rejection::ForeignTopic(message.topic.to_string());
                    self.reject(
                        &message_id,
                        &propagation_source,
                        message.source,
                        String::new(),
                        reason,
                    );
                    return;
                };
                let verdict = validate_signed(
                    &self.view(),
                    self.clock.moment(),
                    self.clock.now_ms(),
                    self.limits,
                    message.source,
                    &topic,
                    &message.data,
                );
                let v = match verdict {
                    Ok(v) => v,
                    Err(reason) => {
                        self.reject(
                            &message_id,
                            &propagation_source,
                            message.source,
                            topic.to_string(),
                            reason,
                        );
                        return;
                    }
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Accept,
                    );
                self.metrics
                    .messages
                    .get_or_create(&MessageLabels {
                        topic: topic.to_string(),
                        outcome: "accepted",
                        reason: "ok",
                    })
                    .inc();
                self.emit(NetworkEvent::Message(Delivery {
                    topic,
                    source: v.source,
                    operator: v.operator,
                    timestamp_ms: v.envelope.timestamp_ms,
                    payload: v.envelope.payload,
                    message_id: hex_id(&message_id),
                }));
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                if let (Some(info), Some(name)) =
                    (self.snapshot.peers.get_mut(&peer_id), topic_name(&topic))
                {
                    info.topics.insert(name);
                    self.publish_snapshot();
                }
                self.flush_outbox();
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let (Some(info), Some(name)) =
                    (self.snapshot.peers.get_mut(&peer_id), topic_name(&topic))
                {
                    info.topics.remove(&name);
                    self.publish_snapshot();
                }
            }
            _ => {}
        }
    }
}

impl Worker {
    /// Counts what the relay server did. Every peer here passed the gate; a request that
    /// somehow came from a non-member would be a gate bug, so it is logged loudly.
    fn on_relay(&mut self, event: libp2p::relay::Event) {
        use libp2p::relay::Event as E;
        let (what, peer) = match &event {
            E::ReservationReqAccepted { src_peer_id, .. } => ("reservation_accepted", *src_peer_id),
            E::ReservationReqDenied { src_peer_id, .. } => ("reservation_denied", *src_peer_id),
            E::CircuitReqAccepted { src_peer_id, .. } => ("circuit_accepted", *src_peer_id),
            E::CircuitReqDenied { src_peer_id, .. } => ("circuit_denied", *src_peer_id),
            E::CircuitClosed { src_peer_id, .. } => ("circuit_closed", *src_peer_id),
            _ => {
                tracing::debug!(?event, "relay");
                return;
            }
        };
        let member = self
            .view()
            .authorization(&peer, self.clock.moment())
            .is_ok();
        if !member {
            tracing::error!(%peer, what, "relay event for a non-member; closing its connections");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        tracing::debug!(%peer, what, "relay");
        self.metrics
            .relay
            .get_or_create(&ReasonLabels { reason: what })
            .inc();
    }

    /// Serves header requests from the chain task's snapshot; completes our own requests.
    fn on_headers(&mut self, event: request_response::Event<HeaderRequest, HeaderReply>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let headers = self.headers.borrow().range(request.from, request.count);
                tracing::debug!(%peer, from = request.from, served = headers.len(), "header request");
                self.metrics.headers_served.inc_by(headers.len() as u64);
                // An error only means the asker went away.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .headers
                    .send_response(channel, HeaderReply { headers });
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.header_requests.remove(&request_id) {
                    let _ = reply.send(Ok(response.headers));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.header_requests.remove(&request_id) {
                    let _ = reply.send(Err(NetError::HeaderRequest {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "header request not answered");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn report_anonymous(&mut self, id: &AnonymousMessageId, acceptance: Acceptance) {
        let acceptance = match acceptance {
            Acceptance::Accept => MessageAcceptance::Accept,
            Acceptance::Ignore => MessageAcceptance::Ignore,
            Acceptance::Reject => MessageAcceptance::Reject,
        };
        self.swarm
            .behaviour_mut()
            .anonymous
            .report_message_validation_result(&id.message_id, &id.propagation_source, acceptance);
    }

    /// Hands anonymous messages to the application's validator; when its queue is full the
    /// message is ignored (not forwarded, nobody penalized) and counted.
    fn on_anonymous(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let id = AnonymousMessageId {
            message_id,
            propagation_source,
        };
        let Some(topic) = anonymous_topic_name(&message.topic) else {
            self.report_anonymous(&id, Acceptance::Reject);
            return;
        };
        let held = AnonymousMessage {
            topic,
            data: message.data,
            id,
        };
        if let Err(e) = self.anonymous.try_send(held) {
            let id = match e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m.id,
            };
            self.metrics.anonymous_dropped.inc();
            self.report_anonymous(&id, Acceptance::Ignore);
        }
    }
}

/// Subscribes `gs` to `gt` with the topic scoring; `channel` names the gossipsub in logs.
fn join_topic(
    gs: &mut gossipsub::Behaviour,
    gt: gossipsub::IdentTopic,
    topic: &TopicName,
    channel: &'static str,
) {
    match gs.subscribe(&gt) {
        Ok(true) => {
            let _ = gs.set_topic_params(gt, topic_score_params());
            tracing::info!(%topic, channel, "subscribed");
        }
        Ok(false) => {}
        Err(e) => tracing::error!(%topic, channel, error = %e, "subscribe failed"),
    }
}

/// The peer and reason label of a refused connection.
fn denial(
    cause: &libp2p::swarm::ConnectionDenied,
    peer: Option<PeerId>,
) -> (Option<PeerId>, &'static str) {
    if let Some(d) = cause.downcast_ref::<Denied>() {
        (Some(d.peer), d.reason.label())
    } else if cause
        .downcast_ref::<connection_limits::Exceeded>()
        .is_some()
    {
        (peer, "connection_limit")
    } else {
        (peer, "other")
    }
}

/// The address a connection is known by: the remote's, except for a circuit accepted through a
/// relay, whose remote address is a bare `/p2p/<peer>` — there the circuit it came in on says
/// which path (driver) carries it.
fn connection_address(endpoint: &libp2p::core::ConnectedPoint) -> Multiaddr {
    match endpoint {
        libp2p::core::ConnectedPoint::Listener { local_addr, .. } if endpoint.is_relayed() => {
            local_addr.clone()
        }
        _ => endpoint.get_remote_address().clone(),
    }
}

fn hex_id(id: &gossipsub::MessageId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}
