//! The composed libp2p behaviour and its gossipsub configuration.

use std::sync::Arc;
use std::time::Duration;

use conclave_core::{Clock, MembershipView, TopicName};
use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds,
    TopicScoreParams, ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, ping, relay, request_response};
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

use crate::admission::InboundAdmission;
use crate::catchup::{catch_up_codec, CatchUpCodec, CATCHUP_PROTOCOL, CATCHUP_REQUEST_TIMEOUT};
use crate::gate::MembershipGate;
use crate::headers::{header_codec, HeaderCodec, HEADERS_PROTOCOL};
use crate::mesh::MeshParams;
use crate::stem::{stem_codec, StemCodec, STEM_PROTOCOL};
use crate::NetError;

/// Protocol id prefix of the signed channel; keeps Conclave meshes apart from other gossipsub
/// networks on the same hosts.
const SIGNED_PROTOCOL_PREFIX: &str = "/conclave/signed/2";
/// Protocol id prefix of the anonymous (RLN) channel: a second gossipsub with its own meshes.
const ANONYMOUS_PROTOCOL_PREFIX: &str = "/conclave/anon";
const IDENTIFY_PROTOCOL: &str = "/conclave/id/1.0.0";
const TOPIC_PREFIX: &str = "conclave/1/";
const ANONYMOUS_TOPIC_PREFIX: &str = "conclave/anon/1/";

/// Room allowed beyond the payload limit for gossipsub's framing (signature, key, seqno, topic)
/// and for the RLN frame's proof and field elements.
pub(crate) const FRAME_OVERHEAD: usize = 4096;

/// Slack in gossipsub's receive limit for bytes of the *next* frame. libp2p-gossipsub 0.50.1
/// checks the limit against its whole read buffer, not the frame being decoded; the buffer is
/// filled in 8 KiB reads, so it can hold a complete frame plus up to 8 KiB of the following one.
/// Without this slack two large messages sent back to back closed the stream and were lost
/// (seen at 65,444-byte payloads); frames themselves stay bounded by what senders may send.
const READ_AHEAD: usize = 8 * 1024;

/// The gossipsub topic of a Conclave topic name.
pub fn gossip_topic(name: &TopicName) -> IdentTopic {
    IdentTopic::new(format!("{TOPIC_PREFIX}{name}"))
}

/// The gossipsub topic of an anonymous-channel topic name.
pub fn anonymous_topic(name: &TopicName) -> IdentTopic {
    IdentTopic::new(format!("{ANONYMOUS_TOPIC_PREFIX}{name}"))
}

/// The topic name of an anonymous-channel topic hash, if it is one of ours.
pub(crate) fn anonymous_topic_name(hash: &gossipsub::TopicHash) -> Option<TopicName> {
    hash.as_str()
        .strip_prefix(ANONYMOUS_TOPIC_PREFIX)?
        .parse()
        .ok()
}

/// The Conclave topic name of a gossipsub topic hash, if it is one of ours.
pub fn topic_name(hash: &gossipsub::TopicHash) -> Option<TopicName> {
    hash.as_str().strip_prefix(TOPIC_PREFIX)?.parse().ok()
}

/// The node's libp2p behaviour.
///
/// Gates first: `#[derive(NetworkBehaviour)]` consults the fields in declaration order, so the
/// inbound admission (before any handshake) and the membership gate (after it) refuse a stranger
/// before gossipsub, identify or ping allocate anything for its connection.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub admission: InboundAdmission,
    pub gate: MembershipGate,
    /// Circuit relay v2 server, when this node relays for others. Members only by construction:
    /// a reservation or circuit is asked for on a connection, and only members get one past
    /// the gate above; both ends of a circuit are members with reservations or connections
    /// here. Bounded by the configured duration and bytes per circuit.
    pub relay: Toggle<relay::Behaviour>,
    /// Circuit relay v2 client: listening through, and dialing via, a member relay. Relayed
    /// connections pass the same gate at both ends as direct ones.
    pub relay_client: Toggle<relay::client::Behaviour>,
    pub gossipsub: gossipsub::Behaviour,
    /// The anonymous channel: no source, no signature, no sequence number; the application
    /// validates every message (an RLN proof) before it is forwarded.
    pub anonymous: gossipsub::Behaviour,
    /// Header ranges on request, for a member whose chain source looks wrong
    /// (docs/ARCHITECTURE.md, "Alternative paths: watchdog, drivers, header fallback").
    pub headers: request_response::Behaviour<HeaderCodec>,
    /// The anonymous channel's stem: single hops among members before gossip
    /// (docs/ARCHITECTURE.md, "The stem").
    pub stem: request_response::Behaviour<StemCodec>,
    /// What members missed, reconciled and fetched (docs/ARCHITECTURE.md, "Catch-up").
    pub catch_up: request_response::Behaviour<CatchUpCodec>,
    pub identify: identify::Behaviour,
    /// Also keeps data in flight on quiet connections, so a path that stopped carrying packets
    /// is found by the TCP user timeout (`transport.rs`) even when no message is sent.
    pub ping: ping::Behaviour,
}

/// How often each connection is pinged, and how long an answer may take.
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(2);
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a header request may take before the asking node counts the member as silent.
pub(crate) const HEADER_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stem hop may take (the next hop answers once it verified the proof); after it
/// the sender fluffs the frame itself.
const STEM_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Below this score gossipsub ignores a peer, and the stem refuses its frames unread.
pub(crate) const GRAYLIST_THRESHOLD: f64 = -400.0;

/// Message id = SHA-256(source ‖ data): the data is the signed envelope (timestamp, nonce,
/// signature), so the id is unique per publish, equal for every copy of it, and different for
/// any altered copy — a forgery cannot take the real message's place in the duplicate cache.
/// Gossipsub's sequence number is left out: re-wrapping a valid envelope under a new one is the
/// same message, not a new one.
fn message_id(m: &gossipsub::Message) -> MessageId {
    let mut h = Sha256::new();
    if let Some(src) = &m.source {
        h.update(src.to_bytes());
    }
    h.update(&m.data);
    MessageId::from(h.finalize().to_vec())
}

/// Anonymous message id = SHA-256(data): there is no source or sequence number, and a re-sent
/// message with a fresh proof is a different message (the nullifier log sees it as a duplicate).
fn anonymous_id_of(m: &gossipsub::Message) -> MessageId {
    anonymous_message_id(&m.data)
}

/// The anonymous message id of a frame (also what the stem names frames by).
pub(crate) fn anonymous_message_id(data: &[u8]) -> MessageId {
    MessageId::from(Sha256::digest(data).to_vec())
}

/// Scoring for a signed topic. Invalid messages weigh heavily (a member forwarding forgeries or
/// stale replays is soon graylisted); mesh-delivery penalties are off because signer topics are
/// quiet for long stretches and silence is not misbehaviour there.
pub(crate) fn topic_score_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 3600.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.5,
        first_message_deliveries_cap: 100.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.5,
        ..TopicScoreParams::default()
    }
}

/// Subscribes `gs` to `gt` with the topic scoring; `channel` names the gossipsub in logs.
pub(crate) fn join_topic(
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

fn peer_score() -> (PeerScoreParams, PeerScoreThresholds) {
    let params = PeerScoreParams {
        // Members are registered and gated: many on one IP (a devnet, an operator's rack) is
        // legitimate, so IP colocation is not penalized.
        ip_colocation_factor_weight: 0.0,
        ..PeerScoreParams::default()
    };
    let thresholds = PeerScoreThresholds {
        gossip_threshold: -100.0,
        publish_threshold: -200.0,
        graylist_threshold: GRAYLIST_THRESHOLD,
        accept_px_threshold: 100.0,
        opportunistic_graft_threshold: 5.0,
    };
    (params, thresholds)
}

/// What sets the signed and the anonymous gossipsub apart; everything else they share.
struct Channel {
    prefix: &'static str,
    mode: ValidationMode,
    id: fn(&gossipsub::Message) -> MessageId,
    authenticity: MessageAuthenticity,
    /// Whether an own message goes to every subscribed peer at once. Off on the anonymous
    /// channel: when the author pushes to everyone first, the first forwarder of nearly every
    /// copy *is* the author.
    flood_publish: bool,
}

impl Channel {
    /// A gossipsub with the shared mesh, scoring and manual validation.
    fn build(
        self,
        mesh: &MeshParams,
        max_transmit: usize,
        metrics: &mut Registry,
    ) -> Result<gossipsub::Behaviour, NetError> {
        let mut builder = gossipsub::ConfigBuilder::default();
        let config = mesh
            .configure(&mut builder)
            .protocol_id_prefix(self.prefix)
            .validation_mode(self.mode)
            .validate_messages()
            .message_id_fn(self.id)
            .max_transmit_size(max_transmit)
            .flood_publish(self.flood_publish)
            .build()
            .map_err(|e| NetError::Gossipsub(e.to_string()))?;
        let mut gossipsub = gossipsub::Behaviour::new(self.authenticity, config)
            .map_err(|e| NetError::Gossipsub(e.to_string()))?
            .with_metrics(metrics, Default::default());
        let (params, thresholds) = peer_score();
        gossipsub
            .with_peer_score(params, thresholds)
            .map_err(NetError::Gossipsub)?;
        Ok(gossipsub)
    }
}

/// Bounds of the relay server mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLimits {
    pub max_reservations: usize,
    pub max_circuits: usize,
    pub max_circuit_duration: Duration,
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    /// Enough for a signer set of a few hundred nodes; a circuit is a fallback path, so it is
    /// short-lived and small (members redial directly when they can).
    fn default() -> Self {
        RelayLimits {
            max_reservations: 256,
            max_circuits: 64,
            max_circuit_duration: Duration::from_secs(600),
            max_circuit_bytes: 64 * 1024 * 1024,
        }
    }
}

pub(crate) struct BehaviourParams<'a> {
    pub relay_server: Option<RelayLimits>,
    pub view: Arc<MembershipView>,
    pub clock: Arc<dyn Clock>,
    pub max_message_bytes: usize,
    pub max_pending_incoming: u32,
    pub max_pending_per_ip: u32,
    pub metrics: &'a mut Registry,
}

impl Behaviour {
    pub(crate) fn new(key: &Keypair, p: BehaviourParams<'_>) -> Result<Self, NetError> {
        let mesh = MeshParams::for_members(p.view.nodes().count());
        mesh.validate()?;
        let max_transmit = p.max_message_bytes + FRAME_OVERHEAD + READ_AHEAD;
        // The envelope carries the signature (see `Envelope`): gossipsub names the author and
        // verifies nothing, so a message is verified once, not once per copy received.
        let gossipsub = Channel {
            prefix: SIGNED_PROTOCOL_PREFIX,
            mode: ValidationMode::Permissive,
            id: message_id,
            authenticity: MessageAuthenticity::Author(key.public().to_peer_id()),
            flood_publish: true,
        }
        .build(&mesh, max_transmit, p.metrics)?;
        let anonymous = Channel {
            prefix: ANONYMOUS_PROTOCOL_PREFIX,
            mode: ValidationMode::Anonymous,
            id: anonymous_id_of,
            authenticity: MessageAuthenticity::Anonymous,
            flood_publish: false,
        }
        .build(
            &mesh,
            max_transmit,
            p.metrics.sub_registry_with_prefix("anonymous"),
        )?;

        let local = key.public().to_peer_id();
        let relay = p.relay_server.map(|l| {
            let mut server = relay::Behaviour::new(
                local,
                relay::Config {
                    max_reservations: l.max_reservations,
                    max_reservations_per_peer: 4,
                    max_circuits: l.max_circuits,
                    max_circuits_per_peer: 8,
                    max_circuit_duration: l.max_circuit_duration,
                    max_circuit_bytes: l.max_circuit_bytes,
                    ..relay::Config::default()
                },
            );
            // Serve whether or not an external address was confirmed: members reach us on the
            // addresses the registry lists.
            server.set_status(Some(relay::Status::Enable));
            server
        });
        let admission =
            InboundAdmission::new(&p.view, p.max_pending_per_ip, p.max_pending_incoming);
        Ok(Behaviour {
            gate: MembershipGate::new(p.view, p.clock),
            relay: relay.into(),
            relay_client: None.into(),
            admission,
            gossipsub,
            anonymous,
            stem: request_response::Behaviour::with_codec(
                stem_codec((max_transmit + 1024) as u64),
                [(STEM_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(STEM_REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(64),
            ),
            headers: request_response::Behaviour::with_codec(
                header_codec(),
                [(HEADERS_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(HEADER_REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(16),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(format!("conclave/{}", env!("CARGO_PKG_VERSION")))
                    .with_push_listen_addr_updates(true),
            ),
            catch_up: request_response::Behaviour::with_codec(
                catch_up_codec(p.max_message_bytes),
                [(CATCHUP_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(CATCHUP_REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(32),
            ),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_INTERVAL)
                    .with_timeout(PING_TIMEOUT),
            ),
        })
    }
}
