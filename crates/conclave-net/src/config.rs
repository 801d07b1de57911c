use std::sync::Arc;
use std::time::Duration;

use conclave_core::{Clock, Multiaddr, SystemClock, TopicName};
use libp2p::identity::Keypair;
use tokio::sync::watch;

use crate::behaviour::RelayLimits;
use crate::catchup::log::RetainedMessage;
use crate::catchup::CatchUpConfig;
use crate::headers::RecentHeaders;
use crate::redial::Backoff;
use crate::stem::StemConfig;

/// Which transports the swarm runs. Both go through the same builder code; only the transport
/// layer differs, so tests exercise the production behaviour, gate and handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// TCP + Noise + Yamux, QUIC, WebSocket over TCP, and circuit relay v2.
    Network,
    /// The in-process memory transport + Noise + Yamux, for tests with many nodes.
    Memory,
}

/// Everything the network service needs besides the membership view.
#[derive(Clone)]
pub struct NetConfig {
    /// The node key: its PeerId is the node's identity and it signs every gossip message.
    pub keypair: Keypair,
    pub transport: TransportKind,
    pub listen: Vec<Multiaddr>,
    /// Dial targets from configuration; each must end in `/p2p/<peer id>`.
    pub seeds: Vec<Multiaddr>,
    /// Addresses remembered from earlier runs (the node's peer store).
    pub known_addresses: Vec<(conclave_core::PeerId, Multiaddr)>,
    /// Topics subscribed at start.
    pub topics: Vec<TopicName>,
    /// Anonymous-channel topics subscribed at start.
    pub anonymous_topics: Vec<TopicName>,
    pub timestamp_tolerance: Duration,
    pub max_message_bytes: usize,
    /// Publishes held back while too few peers are subscribed: at most this many...
    pub outbox_capacity: usize,
    /// ...for at most this long.
    pub outbox_ttl: Duration,
    /// Subscribed peers a topic needs before a publish is handed to gossipsub.
    pub min_publish_peers: usize,
    /// Cap on inbound connections still in their handshake from addresses no member lists in
    /// the registry (members' listed IPs are always admitted), so strangers cannot starve members.
    pub max_pending_incoming: u32,
    /// Cap on handshakes in progress from any one unlisted IP.
    pub max_pending_per_ip: u32,
    pub redial: Backoff,
    pub idle_connection_timeout: Duration,
    /// Bound of the application's command channel.
    pub command_capacity: usize,
    /// Bound of the event channel; events beyond it are dropped and counted.
    pub event_capacity: usize,
    /// Anonymous-channel messages waiting for validation; beyond it they are ignored and counted.
    pub anonymous_capacity: usize,
    pub clock: Arc<dyn Clock>,
    /// The headers this node serves to members who ask (`/conclave/headers/1`); its chain
    /// task writes them. Without a chain, an empty snapshot: requests get empty answers.
    pub headers: watch::Receiver<Arc<RecentHeaders>>,
    /// Run a circuit relay v2 server for members, with these bounds.
    pub relay_server: Option<RelayLimits>,
    /// The anonymous channel's stem (on by default: own anonymous messages never go straight
    /// to gossip).
    pub stem: StemConfig,
    /// Retention and reconciliation of signed messages.
    pub catch_up: CatchUpConfig,
    /// Messages retained before this start (the node's state store), newest last.
    pub retained: Vec<RetainedMessage>,
}

impl NetConfig {
    /// Defaults suited to a signer network: 30 s timestamp tolerance, 64 KiB messages, a
    /// 1024-message outbox held for up to 2 minutes, redials between 500 ms and 1 s (a member
    /// set is small and registered: a dial attempt every few seconds at one that is down costs
    /// two SYNs, and a healed path is found within seconds).
    pub fn new(keypair: Keypair, transport: TransportKind) -> Self {
        NetConfig {
            keypair,
            transport,
            listen: Vec::new(),
            seeds: Vec::new(),
            known_addresses: Vec::new(),
            topics: Vec::new(),
            anonymous_topics: Vec::new(),
            timestamp_tolerance: Duration::from_secs(30),
            max_message_bytes: 64 * 1024,
            outbox_capacity: 1024,
            outbox_ttl: Duration::from_secs(120),
            min_publish_peers: 1,
            max_pending_incoming: 64,
            max_pending_per_ip: 8,
            redial: Backoff {
                min: Duration::from_millis(500),
                max: Duration::from_secs(1),
            },
            idle_connection_timeout: Duration::from_secs(60),
            command_capacity: 1024,
            event_capacity: 8192,
            anonymous_capacity: 256,
            clock: Arc::new(SystemClock),
            headers: watch::channel(Arc::new(RecentHeaders::default())).1,
            relay_server: None,
            stem: StemConfig::default(),
            catch_up: CatchUpConfig::default(),
            retained: Vec::new(),
        }
    }
}
