//! The node's network across key rotations: a factory that starts network services with the
//! node's settings for any key, the handle the API uses (always the current service), and the
//! event dispatch shared by every service the node has run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::{Clock, MembershipView, Multiaddr, PeerId, TopicName};
use conclave_net::{
    Acceptance, AnonymousMessage, Delivery, NetConfig, NetError, NetworkEvent, NetworkService,
    PeerSnapshot, PublishError, PublishOutcome, StartedNetwork, TransportKind,
};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::delivery_filter::DeliveryFilter;
use crate::metrics::NodeMetrics;
use crate::persist::RetainedBatch;
use crate::rotation::{load_candidates, rotation_target};
use crate::store::StateStore;
use crate::{NodeError, ValidConfig};

/// How long the old service keeps running after the hand-over, so what it already handed to
/// gossipsub reaches its peers before its connections close.
const HANDOVER_GRACE: Duration = Duration::from_secs(1);
/// How long a new service may take to reach the old one's peers before it carries traffic anyway.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often held keys are checked against the view between view changes (blocks advance).
const ROTATION_CHECK: Duration = Duration::from_secs(1);

/// The API's handle on the network: always the current service, across key rotations.
#[derive(Clone)]
pub struct NodeNetwork {
    current: watch::Receiver<NetworkService>,
}

impl NodeNetwork {
    /// The service publishes go to now.
    pub fn current(&self) -> NetworkService {
        self.current.borrow().clone()
    }

    /// Publishes through the current service; a publish that meets a service just handed over
    /// goes to its successor (at most a few times: rotations are rare).
    pub async fn publish(
        &self,
        topic: TopicName,
        payload: Vec<u8>,
    ) -> Result<PublishOutcome, PublishError> {
        for _ in 0..3 {
            match self.current().publish(topic.clone(), payload.clone()).await {
                Err(PublishError::HandedOver) => continue,
                other => return other,
            }
        }
        Err(PublishError::Stopped)
    }

    /// Subscribes the current service (a successor inherits its topics).
    pub async fn subscribe(&self, topic: TopicName) -> Result<(), NetError> {
        self.current().subscribe(topic).await
    }

    /// The current service's connection table.
    pub fn peers(&self) -> Arc<PeerSnapshot> {
        self.current().peers().borrow().clone()
    }
}

/// Routes network events to their consumers: deliveries to API subscribers (once each), learned
/// addresses to the peer store. One dispatcher task runs per network service.
#[derive(Clone)]
pub(crate) struct Dispatch {
    pub deliveries: broadcast::Sender<Arc<Delivery>>,
    pub store: Arc<StateStore>,
    pub metrics: Arc<NodeMetrics>,
    filter: Arc<Mutex<DeliveryFilter>>,
    /// Retained messages on their way to the store.
    retained: Arc<RetainedBatch>,
    clock: Arc<dyn Clock>,
    /// The RLN validator's inbox, with the service each message is held by (its verdict goes
    /// back there); `None` when the anonymous channel is off.
    anonymous: Option<mpsc::Sender<(NetworkService, AnonymousMessage)>>,
}

impl Dispatch {
    pub fn new(
        deliveries: broadcast::Sender<Arc<Delivery>>,
        store: Arc<StateStore>,
        metrics: Arc<NodeMetrics>,
        filter: DeliveryFilter,
        retained: RetainedBatch,
        clock: Arc<dyn Clock>,
        anonymous: Option<mpsc::Sender<(NetworkService, AnonymousMessage)>>,
    ) -> Self {
        Dispatch {
            deliveries,
            store,
            metrics,
            filter: Arc::new(Mutex::new(filter)),
            retained: Arc::new(retained),
            clock,
            anonymous,
        }
    }

    /// Writes what this dispatcher delivers and the network retains to the store, until
    /// shutdown.
    pub fn persist(&self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(crate::persist::persist(
            self.filter.clone(),
            self.retained.clone(),
            self.store.clone(),
            self.metrics.clone(),
            self.clock.clone(),
            shutdown,
        ))
    }

    /// Dispatches the events and anonymous messages of `service`.
    pub fn spawn(
        &self,
        service: &NetworkService,
        events: mpsc::Receiver<NetworkEvent>,
        anonymous: mpsc::Receiver<AnonymousMessage>,
    ) -> JoinHandle<()> {
        crate::lock(&self.filter).add_own_key(service.local_peer_id());
        let forward = Self::forward_anonymous(service.clone(), anonymous, self.anonymous.clone());
        // One task for both, so aborting it stops both.
        let events = self.clone().run(events);
        tokio::spawn(async move {
            tokio::join!(forward, events);
        })
    }

    /// Hands anonymous messages to the RLN validator, waiting when it is busy (the service's own
    /// bounded queue then overflows into counted ignores); without a validator they are ignored.
    async fn forward_anonymous(
        service: NetworkService,
        mut anonymous: mpsc::Receiver<AnonymousMessage>,
        inbox: Option<mpsc::Sender<(NetworkService, AnonymousMessage)>>,
    ) {
        while let Some(m) = anonymous.recv().await {
            match &inbox {
                Some(inbox) => {
                    if inbox.send((service.clone(), m)).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = service.report_anonymous(m.id, Acceptance::Ignore).await;
                }
            }
        }
    }

    async fn run(self, mut events: mpsc::Receiver<NetworkEvent>) {
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::Message(d) => {
                    let admitted = crate::lock(&self.filter).admit(&d);
                    // No subscriber is not an error: the message was still validated and relayed.
                    if admitted {
                        let _ = self.deliveries.send(Arc::new(d));
                    }
                }
                NetworkEvent::Retained(m) if !self.retained.push(&m) => {
                    self.metrics.retained_unsaved.inc();
                }
                NetworkEvent::AddressesLearned { peer, addresses } => {
                    let store = self.store.clone();
                    let written = tokio::task::spawn_blocking(move || {
                        store.record_addresses(peer, &addresses)
                    })
                    .await;
                    if let Ok(Err(e)) = written {
                        self.metrics.peer_store_errors.inc();
                        tracing::warn!(error = %e, "peer store write failed");
                    }
                }
                _ => {}
            }
        }
    }
}

/// Starts network services with the node's settings, for whichever key the node runs under.
pub(crate) struct NetFactory {
    pub cfg: ValidConfig,
    pub store: Arc<StateStore>,
    pub clock: Arc<dyn Clock>,
    pub view: watch::Receiver<Arc<MembershipView>>,
    pub metrics: Arc<NodeMetrics>,
    /// The chain headers this node serves to members (empty without an EVM chain source).
    pub headers: watch::Receiver<Arc<conclave_net::RecentHeaders>>,
}

impl NetFactory {
    /// A service for `keypair` listening on `listen`, and the metrics registry it reports into
    /// (with the node's own metrics in it too).
    pub fn start(
        &self,
        keypair: Keypair,
        listen: Vec<Multiaddr>,
        topics: Vec<TopicName>,
    ) -> Result<(StartedNetwork, Registry), NodeError> {
        let cfg = &self.cfg;
        let mut prom = Registry::default();
        self.metrics
            .register(prom.sub_registry_with_prefix("conclave"));
        let mut net_cfg = NetConfig::new(keypair, TransportKind::Network);
        net_cfg.listen = listen;
        net_cfg.seeds = cfg.seeds.clone();
        net_cfg.known_addresses = self.store.peer_addresses()?;
        net_cfg.topics = topics;
        if let Some(rln) = &cfg.rln {
            net_cfg.anonymous_topics = rln.topics.clone();
            net_cfg.stem = rln.stem;
            net_cfg.anonymous_capacity = rln.queue;
        }
        net_cfg.timestamp_tolerance = cfg.timestamp_tolerance;
        net_cfg.max_message_bytes = cfg.max_message_bytes;
        net_cfg.outbox_capacity = cfg.publish_queue_capacity;
        net_cfg.outbox_ttl = cfg.publish_queue_ttl;
        net_cfg.max_pending_incoming = cfg.max_pending_incoming;
        net_cfg.max_pending_per_ip = cfg.max_pending_per_ip;
        net_cfg.clock = self.clock.clone();
        net_cfg.headers = self.headers.clone();
        net_cfg.relay_server = cfg.relay_server;
        net_cfg.catch_up = cfg.catch_up;
        net_cfg.retained = crate::persist::load_retained(
            &self.store,
            &cfg.catch_up,
            self.clock.now_ms(),
            &self.metrics,
        )?;
        let started = NetworkService::start(net_cfg, self.view.clone(), &mut prom)?;
        Ok((started, prom))
    }
}

/// The same addresses with OS-chosen ports: a new service listens there while the old one
/// still holds the configured ports.
fn ephemeral(addrs: &[Multiaddr]) -> Vec<Multiaddr> {
    addrs
        .iter()
        .map(|a| {
            a.iter()
                .map(|p| match p {
                    Protocol::Tcp(_) => Protocol::Tcp(0),
                    Protocol::Udp(_) => Protocol::Udp(0),
                    other => other,
                })
                .collect()
        })
        .collect()
}

/// The node's running network services: the current one and any being retired.
pub(crate) struct Services {
    pub current: watch::Sender<NetworkService>,
    pub metrics_registry: watch::Sender<Arc<Registry>>,
    /// Worker tasks by the key they run under.
    pub workers: Mutex<Vec<(PeerId, JoinHandle<()>)>>,
}

impl Services {
    pub fn handle(&self) -> NodeNetwork {
        NodeNetwork {
            current: self.current.subscribe(),
        }
    }

    fn take_worker(&self, peer: PeerId) -> Option<JoinHandle<()>> {
        let mut workers = crate::lock(&self.workers);
        let i = workers.iter().position(|(p, _)| *p == peer)?;
        Some(workers.remove(i).1)
    }

    /// Stops the current service and waits (bounded) for every worker.
    pub async fn shutdown(&self) {
        self.current.borrow().shutdown();
        let workers: Vec<_> = crate::lock(&self.workers).drain(..).collect();
        for (_, w) in workers {
            let _ = w.await;
        }
    }
}

/// Follows the registry and moves the node to a newly delegated key it holds.
pub(crate) struct Rotation {
    pub key_dir: std::path::PathBuf,
    pub factory: Arc<NetFactory>,
    pub services: Arc<Services>,
    pub dispatch: Dispatch,
    pub shutdown: watch::Receiver<bool>,
}

impl Rotation {
    pub async fn run(mut self) {
        let mut view = self.factory.view.clone();
        let mut warned = Vec::new();
        let mut held = load_candidates(&self.key_dir, &mut warned);
        let mut tick = tokio::time::interval(ROTATION_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = view.changed() => {
                    if changed.is_err() { return; }
                    // A new delegation may name a key just dropped into the directory.
                    held = load_candidates(&self.key_dir, &mut warned);
                }
                _ = tick.tick() => {}
                _ = self.shutdown.changed() => return,
            }
            let current = self.services.current.borrow().local_peer_id();
            let target = rotation_target(
                &view.borrow(),
                self.factory.clock.moment(),
                &current,
                held.keys().copied(),
            );
            let Some(target) = target else { continue };
            tracing::info!(from = %current, to = %target, "registry delegates to a held key; rotating");
            match self.swap(held[&target].clone()).await {
                Ok(()) => {
                    self.dispatch.metrics.key_rotations.inc();
                    tracing::info!(from = %current, to = %target, "rotation complete");
                }
                Err(e) => {
                    self.dispatch.metrics.key_rotation_failures.inc();
                    tracing::error!(error = %e, to = %target, "rotation failed; staying on the current key");
                }
            }
        }
    }

    async fn swap(&self, keypair: Keypair) -> Result<(), NodeError> {
        let new_peer = keypair.public().to_peer_id();
        let old = self.services.current.borrow().clone();
        let configured = self.factory.cfg.listen.clone();
        let (started, registry) =
            self.factory
                .start(keypair, ephemeral(&configured), old.topics().await?)?;
        let new = started.service.clone();
        crate::lock(&self.services.workers).push((new_peer, started.worker));
        self.dispatch.spawn(&new, started.events, started.anonymous);

        // Let the new key reach every member the old one reaches before it carries the node's
        // traffic: a member accepting the new key's connection has the delegation in its view,
        // so it will not reject the new key's messages as a stranger's.
        let old_peer = old.local_peer_id();
        let reach: Vec<PeerId> = old
            .peers()
            .borrow()
            .peers
            .keys()
            .filter(|p| **p != new_peer)
            .copied()
            .collect();
        let mut peers = new.peers();
        let joined = tokio::time::timeout(
            JOIN_TIMEOUT,
            peers.wait_for(|s| {
                reach
                    .iter()
                    .all(|p| s.peers.get(p).is_some_and(|i| !i.topics.is_empty()))
            }),
        )
        .await
        .map(|_| ());
        if joined.is_err() {
            tracing::warn!(after = ?JOIN_TIMEOUT, "new key does not reach every member yet; switching anyway (its publishes wait for peers)");
        }

        // Switch: new publishes go to the new service, queued ones move over in order.
        self.services
            .metrics_registry
            .send_replace(Arc::new(registry));
        self.services.current.send_replace(new.clone());
        let late_topics = old.topics().await.unwrap_or_default();
        for (topic, payload) in old.hand_over().await.unwrap_or_default() {
            if let Err(e) = new.publish(topic.clone(), payload).await {
                self.dispatch.metrics.handover_republish_failures.inc();
                tracing::error!(%topic, error = %e, "queued publish lost in the hand-over");
            }
        }
        for topic in late_topics {
            new.subscribe(topic).await?;
        }

        tokio::time::sleep(HANDOVER_GRACE).await;
        old.shutdown();
        if let Some(worker) = self.services.take_worker(old_peer) {
            let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
        }
        // Take over the configured ports the old service freed.
        for addr in configured {
            let mut attempt = 0;
            while let Err(e) = new.listen_on(addr.clone()).await {
                attempt += 1;
                if attempt == 5 {
                    tracing::warn!(%addr, error = %e, "cannot take over the configured listen address");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_keeps_the_ip_and_frees_the_port() {
        let a: Multiaddr = "/ip4/127.0.0.1/tcp/9000".parse().unwrap();
        let q: Multiaddr = "/ip4/0.0.0.0/udp/9000/quic-v1".parse().unwrap();
        let e = ephemeral(&[a, q]);
        assert_eq!(e[0].to_string(), "/ip4/127.0.0.1/tcp/0");
        assert_eq!(e[1].to_string(), "/ip4/0.0.0.0/udp/0/quic-v1");
    }
}
