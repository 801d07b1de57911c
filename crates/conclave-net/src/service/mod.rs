//! The network service: a cloneable [`NetworkService`] handle talking over bounded channels
//! to one worker task that owns the swarm (the only writer of connection state), in the style
//! of `sc-network`.
//!
//! - `handle`: the handle; every method is one documented `Command` (`command`) and its answer.
//! - `types`: what the application hands in and gets back ([`NetworkEvent`], [`Delivery`], …).
//! - `worker`: routes commands, swarm events, view changes and ticks to the parts below.
//! - `publisher` (sans-IO): authorization and size checks, signing, nonces, the wait queue
//!   (`outbox`) and the hand-over to a new key.
//! - `inbound`: validation of signed messages, hand-off of anonymous ones.
//! - `peer_table`: connections and listeners, published as [`PeerSnapshot`]s.
//! - `connectivity`: the address book, redials, the PeerId tie-break, closed transports.
//! - `header_client`: the header protocol, both sides.
//! - `catch_up`: the retained log and view history, reconciliations with members, fetches of
//!   what this node missed, and both requests served.
//! - `stem_relay`: the anonymous channel's stem: own frames out, members' frames verified by
//!   the application and sent on, fail-safe fluffs, penalties for invalid frames.

mod catch_up;
mod churn;
mod command;
mod connectivity;
mod handle;
mod header_client;
mod inbound;
mod outbox;
mod peer_table;
mod publisher;
mod stem_relay;
mod types;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use conclave_core::{split_peer_id, MembershipView, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use handle::NetworkService;
pub use types::{
    Acceptance, AnonymousMessage, AnonymousMessageId, Arrival, Delivery, Direction, NetworkEvent,
    PeerInfo, PeerSnapshot, PublishError, PublishOutcome,
};

use crate::admission::NotAdmitted;
use crate::behaviour::{anonymous_topic, gossip_topic, join_topic, Behaviour, BehaviourParams};
use crate::catchup::history::ViewHistory;
use crate::gate::Denied;
use crate::metrics::NetMetrics;
use crate::redial::{AddressBook, RedialSchedule};
use crate::transport::build_swarm;
use crate::validation::ValidationLimits;
use crate::{NetConfig, NetError};
use catch_up::CatchUp;
use connectivity::Connectivity;
use header_client::HeaderClient;
use inbound::Inbound;
use peer_table::PeerTable;
use publisher::{Publisher, PublisherLimits};
use stem_relay::StemRelay;
use worker::{RegistryFeed, Worker};

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
                // Members' listed IPs are always admitted; these bound everyone else.
                max_pending_incoming: config.max_pending_incoming,
                max_pending_per_ip: config.max_pending_per_ip,
                relay_server: config.relay_server,
                metrics: metrics.sub_registry_with_prefix("libp2p"),
            },
        )?;
        let libp2p_metrics =
            libp2p::metrics::Metrics::new(metrics.sub_registry_with_prefix("libp2p"));
        let net_metrics = NetMetrics::register(metrics.sub_registry_with_prefix("conclave"));
        let publisher = Publisher::new(
            config.keypair.clone(),
            rand::random(),
            PublisherLimits {
                max_message_bytes: config.max_message_bytes,
                outbox_capacity: config.outbox_capacity,
                outbox_ttl: config.outbox_ttl,
                min_publish_peers: config.min_publish_peers,
            },
            net_metrics.clone(),
        )?;
        let max_payload = publisher.max_payload();
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
        for topic in &config.topics {
            let gossipsub = &mut swarm.behaviour_mut().gossipsub;
            join_topic(gossipsub, gossip_topic(topic), topic, "signed");
        }
        for topic in &config.anonymous_topics {
            let anonymous = &mut swarm.behaviour_mut().anonymous;
            join_topic(anonymous, anonymous_topic(topic), topic, "anonymous");
        }

        let limits = ValidationLimits {
            max_message_bytes: config.max_message_bytes,
            timestamp_tolerance_ms: config.timestamp_tolerance.as_millis() as u64,
        };
        let now_ms = config.clock.now_ms();
        let history = ViewHistory::new(
            view.borrow().clone(),
            now_ms,
            config.clock.moment().block,
            config.catch_up.retention.as_millis() as u64,
        );
        let mut catch_up = CatchUp::new(config.catch_up, history, limits, net_metrics.clone());
        for m in config.retained {
            catch_up.retain(m, now_ms);
        }

        let (cmd_tx, cmd_rx) = mpsc::channel(config.command_capacity);
        let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity);
        let (anon_tx, anon_rx) = mpsc::channel(config.anonymous_capacity);
        let (table, peers_rx) = PeerTable::new(local, listeners, net_metrics.clone());
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let worker = Worker {
            swarm,
            commands: cmd_rx,
            registry: RegistryFeed {
                views: view,
                open: true,
                swept_at: None,
            },
            events: ev_tx,
            publisher,
            stem: StemRelay::new(config.stem, anon_tx.clone(), net_metrics.clone()),
            churn: Default::default(),
            catch_up,
            inbound: Inbound {
                limits,
                retention_ms: config.catch_up.retention.as_millis() as u64,
                anonymous: anon_tx,
                metrics: net_metrics.clone(),
            },
            table,
            connectivity: Connectivity::new(local, book, RedialSchedule::new(config.redial)),
            header_client: HeaderClient::new(config.headers.clone(), net_metrics.clone()),
            clock: config.clock.clone(),
            metrics: net_metrics,
            libp2p_metrics,
            shutdown: shutdown.clone(),
        };
        let handle = tokio::spawn(worker.run());
        Ok(StartedNetwork {
            service: NetworkService {
                local_peer_id: local,
                key: config.keypair.clone(),
                commands: cmd_tx,
                peers: peers_rx,
                shutdown,
                max_payload,
            },
            events: ev_rx,
            anonymous: anon_rx,
            worker: handle,
        })
    }
}

/// The peer and reason label of a refused connection.
pub(crate) fn denial(
    cause: &libp2p::swarm::ConnectionDenied,
    peer: Option<PeerId>,
) -> (Option<PeerId>, &'static str) {
    if let Some(d) = cause.downcast_ref::<Denied>() {
        (Some(d.peer), d.reason.label())
    } else if let Some(n) = cause.downcast_ref::<NotAdmitted>() {
        (peer, n.label())
    } else {
        (peer, "other")
    }
}
