//! The Conclave node runtime.
//!
//! Place in the data flow: it wires **registry (file) → `MembershipView` → network service →
//! HTTP API**, and owns what a running node keeps: its key, its state store, its metrics.
//! [`RunningNode::start`] brings a node up from a validated [`ValidConfig`];
//! [`RunningNode::shutdown`] takes it down gracefully.

mod api;
pub mod config;
pub mod keys;
mod metrics;
mod readiness;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conclave_core::{Clock, PeerId, SystemClock};
use conclave_net::{NetConfig, NetError, NetworkEvent, NetworkService, TransportKind};
use conclave_registry::{FileRegistry, RegistryError, RegistrySource};
use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use config::{ConfigError, NodeConfig, ValidConfig};
pub use readiness::{default_quorum, ReadinessReport};

use crate::api::ApiState;
use crate::metrics::NodeMetrics;
use crate::readiness::Readiness;
use crate::store::{StateStore, StoreError};

/// Bound of the fan-out to WebSocket subscribers; slower subscribers skip messages (and are told).
const DELIVERY_FANOUT: usize = 4096;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("HTTP API cannot listen on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A node that is up: its network, API and background tasks.
pub struct RunningNode {
    pub peer_id: PeerId,
    /// Where the HTTP API actually listens (port 0 in the config is resolved here).
    pub http_addr: SocketAddr,
    net: NetworkService,
    net_worker: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _registry: FileRegistry,
}

impl RunningNode {
    /// Loads the key, the registry and the state store, starts the network service and the API.
    pub async fn start(cfg: ValidConfig) -> Result<Self, NodeError> {
        let (keypair, key_type) = keys::load(&cfg.key_file)?;
        let peer_id = keypair.public().to_peer_id();
        let registry = FileRegistry::spawn(&cfg.registry_file, cfg.registry_poll)?;
        let store = Arc::new(StateStore::open(&cfg.state_dir)?);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);

        let mut prom = Registry::default();
        let node_metrics = Arc::new(NodeMetrics::register(
            prom.sub_registry_with_prefix("conclave"),
        ));
        let mut net_cfg = NetConfig::new(keypair, TransportKind::Network);
        net_cfg.listen = cfg.listen.clone();
        net_cfg.seeds = cfg.seeds.clone();
        net_cfg.known_addresses = store.peer_addresses()?;
        net_cfg.topics = cfg.topics.clone();
        net_cfg.timestamp_tolerance = cfg.timestamp_tolerance;
        net_cfg.max_message_bytes = cfg.max_message_bytes;
        net_cfg.outbox_capacity = cfg.publish_queue_capacity;
        net_cfg.outbox_ttl = cfg.publish_queue_ttl;
        net_cfg.max_pending_incoming = cfg.max_pending_incoming;
        net_cfg.clock = clock.clone();
        let started = NetworkService::start(net_cfg, registry.view(), &mut prom)?;
        let net = started.service;

        let listener = tokio::net::TcpListener::bind(cfg.http_listen)
            .await
            .map_err(|source| NodeError::Http {
                addr: cfg.http_listen,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| NodeError::Http {
            addr: cfg.http_listen,
            source,
        })?;
        // Tools (the devnet, operators' scripts) find an OS-chosen port here.
        if let Err(e) = std::fs::write(cfg.state_dir.join("api.addr"), http_addr.to_string()) {
            tracing::warn!(error = %e, "cannot write api.addr");
        }
        tracing::info!(%peer_id, %key_type, api = %http_addr, "node started");

        let (shutdown, shutdown_rx) = watch::channel(false);
        let (deliveries, _) = broadcast::channel(DELIVERY_FANOUT);
        let readiness = Readiness {
            local: peer_id,
            view: registry.view(),
            peers: net.peers(),
            configured_quorum: cfg.ready_quorum,
            clock: clock.clone(),
        };
        let state = ApiState {
            net: net.clone(),
            view: registry.view(),
            registry_status: registry.status(),
            deliveries: deliveries.clone(),
            registry: Arc::new(prom),
            metrics: node_metrics.clone(),
            readiness,
            clock,
            shutdown: shutdown_rx.clone(),
        };
        let mut tasks = vec![
            tokio::spawn(dispatch_events(
                started.events,
                deliveries,
                store,
                node_metrics.clone(),
            )),
            tokio::spawn(track_registry(
                registry.view(),
                registry.status(),
                node_metrics,
            )),
        ];
        let app = api::router(state);
        let mut stop = shutdown_rx;
        tasks.push(tokio::spawn(async move {
            let graceful = async move {
                let _ = stop.changed().await;
            };
            // Deliveries are small WebSocket frames: without NODELAY, Nagle and delayed ACKs add ~40 ms.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(graceful)
                .await
            {
                tracing::error!(error = %e, "HTTP API failed");
            }
        }));
        Ok(RunningNode {
            peer_id,
            http_addr,
            net,
            net_worker: started.worker,
            shutdown,
            tasks,
            _registry: registry,
        })
    }

    /// The network service handle (for embedding applications).
    pub fn network(&self) -> &NetworkService {
        &self.net
    }

    /// Closes subscriptions and connections, stops the API and waits (bounded) for the tasks.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        let _ = self.shutdown.send(true);
        self.net.shutdown();
        let all = async {
            let _ = self.net_worker.await;
            for t in self.tasks {
                t.abort();
                let _ = t.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            tracing::warn!("shutdown took longer than 10 s; exiting anyway");
        }
    }
}

/// Routes network events to their consumers: deliveries to API subscribers, learned addresses
/// to the peer store.
async fn dispatch_events(
    mut events: tokio::sync::mpsc::Receiver<NetworkEvent>,
    deliveries: broadcast::Sender<Arc<conclave_net::Delivery>>,
    store: Arc<StateStore>,
    metrics: Arc<NodeMetrics>,
) {
    while let Some(ev) = events.recv().await {
        match ev {
            NetworkEvent::Message(d) => {
                // No subscriber is not an error: the message was still validated and relayed.
                let _ = deliveries.send(Arc::new(d));
            }
            NetworkEvent::AddressesLearned { peer, addresses } => {
                let store = store.clone();
                let metrics = metrics.clone();
                let written =
                    tokio::task::spawn_blocking(move || store.record_addresses(peer, &addresses))
                        .await;
                if let Ok(Err(e)) = written {
                    metrics.peer_store_errors.inc();
                    tracing::warn!(error = %e, "peer store write failed");
                }
            }
            _ => {}
        }
    }
}

/// Mirrors the registry's status into metrics.
async fn track_registry(
    mut view: watch::Receiver<Arc<conclave_core::MembershipView>>,
    mut status: watch::Receiver<conclave_registry::RegistryStatus>,
    metrics: Arc<NodeMetrics>,
) {
    loop {
        {
            let s = status.borrow_and_update();
            metrics.registry_revision.set(s.revision as i64);
            metrics.registry_rejected.set(s.rejected_updates as i64);
            metrics
                .registry_members
                .set(view.borrow_and_update().nodes().count() as i64);
        }
        tokio::select! {
            r = status.changed() => if r.is_err() { return },
            r = view.changed() => if r.is_err() { return },
        }
    }
}
