//! The Conclave node runtime.
//!
//! Place in the data flow: it wires **registry (file or chain) → `MembershipView` → network
//! service → HTTP API**, and owns what a running node keeps: its key (and the keys it may rotate
//! to), its state store, its metrics. [`RunningNode::start`] brings a node up from a validated
//! [`ValidConfig`]; [`RunningNode::shutdown`] takes it down gracefully.

mod api;
mod chain_view;
#[cfg(feature = "altnet")]
mod chain_watch;
pub mod config;
mod coordination;
#[cfg(feature = "altnet")]
mod drivers;
pub mod keys;
mod metrics;
mod network;
mod readiness;
mod rln;
mod rln_chain;
mod rotation;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conclave_coord::{AcceptAll, DefaultGenerator, ProposalGenerator, ProposalValidator};
use conclave_core::{Clock, PeerId, SystemClock};
use conclave_net::{NetError, NetworkService};
use conclave_registry::clock_chain::ClockChain;
use conclave_registry::evm::{EvmError, EvmRegistry, RegistryAdmin};
use conclave_registry::{ChainClock, FileRegistry, RegistryError, RegistrySource};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use api::describe_view;
pub use config::{ConfigError, CoordConfig, NodeConfig, RegistryChoice, ValidConfig};
pub use coordination::COORD_TOPIC;
pub use network::NodeNetwork;
pub use readiness::{default_quorum, ReadinessReport};
pub use rln::{AnonymousDelivery, SlashingNotice, SLASH_TOPIC};

use crate::api::ApiState;
use crate::chain_view::ChainView;
use crate::chain_view::NodeChain;
use crate::coordination::Coordinator;
use crate::metrics::NodeMetrics;
use crate::network::{Dispatch, NetFactory, Rotation, Services};
use crate::readiness::Readiness;
use crate::store::{StateStore, StoreError};

/// Bound of the fan-out to WebSocket subscribers; slower subscribers skip messages (and are told).
const DELIVERY_FANOUT: usize = 4096;
/// Recent chain headers a node keeps to serve members (about 50 minutes of 12 s blocks).
#[cfg(feature = "altnet")]
const RECENT_HEADERS: usize = 256;

/// Locks `mutex`, also after a panic elsewhere poisoned it: the node's mutexes guard caches and
/// snapshots that stay usable, and one failed task must not take every later caller down too.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("EVM registry: {0}")]
    Chain(#[from] EvmError),
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
    /// Where the HTTP API actually listens (port 0 in the config is resolved here).
    pub http_addr: SocketAddr,
    /// Where the read-only header listener listens, when `altnet_http_listen` is set.
    pub altnet_http_addr: Option<SocketAddr>,
    services: Arc<Services>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Kept alive for its background task; consumers hold its watch receivers.
    _registry: Box<dyn RegistrySource>,
    _chain: Option<NodeChain>,
    /// Held to know when every task has let go of it (shutdown waits for that).
    store: Arc<StateStore>,
}

/// What an embedding signer plugs into the node: how its leader builds proposals, how its
/// followers check accepted ones before acting on them, and which build it is.
#[derive(Clone)]
pub struct NodeHooks {
    pub generator: Arc<dyn ProposalGenerator>,
    pub validator: Arc<dyn ProposalValidator>,
    pub build: BuildInfo,
}

impl Default for NodeHooks {
    /// Devnet behaviour: heartbeat-or-noop proposals, every checked proposal accepted.
    fn default() -> Self {
        NodeHooks {
            generator: Arc::new(DefaultGenerator),
            validator: Arc::new(AcceptAll),
            build: BuildInfo::default(),
        }
    }
}

/// Which build runs: logged at start and exported as `conclave_build_info`, so an operator's
/// bug report and a dashboard name the exact sources. The binary stamps it from git; an
/// embedding program passes its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: &'static str,
    /// The git commit the sources were at, or "unknown" outside a checkout.
    pub commit: &'static str,
    /// Whether the sources had uncommitted changes.
    pub dirty: bool,
}

impl Default for BuildInfo {
    /// This crate's version; the commit is not known to a library.
    fn default() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            commit: "unknown",
            dirty: false,
        }
    }
}

impl std::fmt::Display for BuildInfo {
    /// `0.1.0 (commit e02f74b…, dirty)`: the form `conclave --version` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (commit {}", self.version, self.commit)?;
        if self.dirty {
            write!(f, ", dirty")?;
        }
        write!(f, ")")
    }
}

impl RunningNode {
    /// Loads the key, the registry and the state store, starts the network service and the API.
    pub async fn start(cfg: ValidConfig) -> Result<Self, NodeError> {
        Self::start_with(cfg, NodeHooks::default()).await
    }

    /// [`RunningNode::start`] with the signer's own coordination hooks.
    pub async fn start_with(cfg: ValidConfig, hooks: NodeHooks) -> Result<Self, NodeError> {
        let (keypair, key_type) = keys::load(&cfg.key_file)?;
        let peer_id = keypair.public().to_peer_id();
        let (registry, chain): (Box<dyn RegistrySource>, Option<NodeChain>) = match &cfg.registry {
            RegistryChoice::File { path, poll } => (
                Box::new(FileRegistry::spawn(path, *poll)?),
                cfg.clock_chain
                    .map(|(g, i)| NodeChain::Clock(Arc::new(ClockChain::spawn(g, i)))),
            ),
            RegistryChoice::Evm(evm) => {
                let chain = Arc::new(EvmRegistry::spawn(evm.clone()).await?);
                (Box::new(chain.clone()), Some(NodeChain::Evm(chain)))
            }
        };
        // The chain as the node acts on it: with the watchdog, its task chooses between the
        // source and a fallback tip members agree on; without, the view is the source.
        #[cfg(feature = "altnet")]
        let (chain_view, view_writer) = match (&chain, cfg.watchdog.is_some()) {
            (Some(c), true) => {
                let (v, w) = ChainView::with_writer(c.clone(), RECENT_HEADERS);
                (Some(v), Some(w))
            }
            (c, _) => (c.clone().map(ChainView::of_source), None),
        };
        #[cfg(not(feature = "altnet"))]
        let chain_view = chain.clone().map(ChainView::of_source);
        // Delegations may be bounded by blocks: judge them against the chain head when there is one.
        let clock: Arc<dyn Clock> = match &chain_view {
            Some(c) => Arc::new(ChainClock::new(c.heads())),
            None => Arc::new(SystemClock),
        };
        let store = Arc::new(StateStore::open(&cfg.state_dir)?);
        let node_metrics = Arc::new(NodeMetrics::default());
        node_metrics.record_build(&hooks.build);
        let factory = Arc::new(NetFactory {
            cfg: cfg.clone(),
            store: store.clone(),
            clock: clock.clone(),
            view: registry.view(),
            metrics: node_metrics.clone(),
            headers: match &chain_view {
                Some(v) => v.recent(),
                None => watch::channel(Arc::default()).1,
            },
        });
        let (started, prom) = factory.start(keypair, cfg.listen.clone(), cfg.topics.clone())?;
        let first = started.service.clone();
        let services = Arc::new(Services {
            current: watch::Sender::new(started.service),
            metrics_registry: watch::Sender::new(Arc::new(prom)),
            workers: std::sync::Mutex::new(vec![(peer_id, started.worker)]),
        });
        let net = services.handle();

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
        // The read-only header listener for members' polled drivers, when configured.
        let altnet_listener = match cfg.altnet_http_listen {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| NodeError::Http { addr, source })?;
                let local = l
                    .local_addr()
                    .map_err(|source| NodeError::Http { addr, source })?;
                if let Err(e) = std::fs::write(cfg.state_dir.join("altnet.addr"), local.to_string())
                {
                    tracing::warn!(error = %e, "cannot write altnet.addr");
                }
                Some((l, local))
            }
            None => None,
        };
        let altnet_http_addr = altnet_listener.as_ref().map(|(_, a)| *a);
        // Tools (the devnet, operators' scripts) find an OS-chosen port here (written last:
        // when it exists, so does altnet.addr if configured).
        if let Err(e) = std::fs::write(cfg.state_dir.join("api.addr"), http_addr.to_string()) {
            tracing::warn!(error = %e, "cannot write api.addr");
        }
        tracing::info!(
            %peer_id,
            %key_type,
            api = %http_addr,
            version = %hooks.build.version,
            commit = %hooks.build.commit,
            dirty = hooks.build.dirty,
            "node started"
        );

        let (shutdown, shutdown_rx) = watch::channel(false);
        let (deliveries, _) = broadcast::channel(DELIVERY_FANOUT);
        let (rln_inbox, rln) = match &cfg.rln {
            Some(rcfg) => {
                let (tx, rx) = tokio::sync::mpsc::channel(rcfg.queue);
                let (anon_deliveries, _) = broadcast::channel(DELIVERY_FANOUT);
                let chain_removal = match (&rcfg.chain_key, &cfg.registry) {
                    (Some(key), RegistryChoice::Evm(evm)) => Some(rln_chain::ChainRemoval {
                        admin: RegistryAdmin::connect(
                            &evm.rpc_url,
                            evm.contract,
                            keys::load_eth(key)?,
                        )
                        .map_err(|e| {
                            NodeError::Chain(EvmError::Url(evm.rpc_url.clone(), e.to_string()))
                        })?,
                        stagger: rcfg.chain_stagger,
                        view: registry.view(),
                        net: net.clone(),
                        metrics: node_metrics.clone(),
                    }),
                    _ => None,
                };
                let node = rln::RlnNode::new(
                    rcfg.clone(),
                    chain_removal,
                    store.clone(),
                    node_metrics.clone(),
                    net.clone(),
                    anon_deliveries,
                )?;
                (Some(tx), Some((node, rx)))
            }
            None => (None, None),
        };
        let dispatch = Dispatch::new(
            deliveries.clone(),
            store.clone(),
            node_metrics.clone(),
            rln_inbox,
        );
        let readiness = Readiness {
            view: registry.view(),
            registry_status: registry.status(),
            net: net.clone(),
            configured_quorum: cfg.ready_quorum,
            clock: clock.clone(),
            chain: chain_view.clone(),
        };
        let coordinator = match (cfg.coordination, &chain_view) {
            (Some(coord), Some(chain)) => Some(Coordinator {
                cfg: coord,
                chain: chain.clone(),
                view: registry.view(),
                net: net.clone(),
                deliveries: deliveries.subscribe(),
                store: store.clone(),
                metrics: node_metrics.clone(),
                generator: hooks.generator.clone(),
                validator: hooks.validator.clone(),
                shutdown: shutdown_rx.clone(),
            }),
            _ => None,
        };
        let (watchdog_tx, watchdog_rx) = watch::channel(conclave_api::WatchdogAnswer::default());
        #[cfg(not(feature = "altnet"))]
        drop(watchdog_tx);
        #[cfg(feature = "altnet")]
        let drivers = cfg.watchdog.as_ref().map(|w| {
            let mut drivers: Vec<Arc<dyn conclave_altnet::Driver>> = drivers::TransportKind::ALL
                .into_iter()
                .map(|kind| {
                    let listen = cfg
                        .listen
                        .iter()
                        .filter(|a| drivers::TransportKind::of(a) == Some(kind))
                        .cloned()
                        .collect();
                    Arc::new(drivers::TransportDriver::new(kind, net.clone(), listen)) as _
                })
                .collect();
            drivers.push(Arc::new(drivers::HttpDriver::new(
                w.http_peers.clone(),
                registry.view(),
            )));
            Arc::new(drivers)
        });
        let watchdog_running =
            cfg!(feature = "altnet") && cfg.watchdog.is_some() && chain.is_some();
        let state = ApiState {
            watchdog: watchdog_running.then_some(watchdog_rx),
            #[cfg(feature = "altnet")]
            chain: chain_view.clone(),
            #[cfg(feature = "altnet")]
            drivers: drivers.clone(),
            #[cfg(feature = "altnet")]
            header_permits: Arc::new(tokio::sync::Semaphore::new(16)),
            rln: rln.as_ref().map(|(node, _)| node.clone()),
            net,
            store: store.clone(),
            view: registry.view(),
            registry_status: registry.status(),
            deliveries,
            registry: services.metrics_registry.subscribe(),
            metrics: node_metrics.clone(),
            readiness,
            clock,
            shutdown: shutdown_rx.clone(),
        };
        let mut tasks = vec![
            dispatch.spawn(&first, started.events, started.anonymous),
            tokio::spawn(track_registry(
                registry.view(),
                registry.status(),
                node_metrics,
            )),
        ];
        if let Some(c) = coordinator {
            tasks.push(tokio::spawn(c.run()));
        }
        #[cfg(feature = "altnet")]
        if let (Some(settings), Some(chain), Some(writer), Some(drivers)) =
            (cfg.watchdog.clone(), &chain, view_writer, drivers)
        {
            for d in drivers.iter() {
                if let Err(e) = d.start().await {
                    tracing::warn!(driver = d.name(), error = %e, "driver did not start");
                }
            }
            let quorum = match settings.quorum {
                0 => {
                    let n = registry.view().borrow().operators().count();
                    n.saturating_sub(1) / 3 + 1
                }
                q => q,
            };
            if let NodeChain::Evm(evm) = chain {
                tasks.push(tokio::spawn(chain_watch::log_source_headers(
                    evm.clone(),
                    chain.heads(),
                    writer.recent,
                    shutdown_rx.clone(),
                )));
            }
            let watch = chain_watch::ChainWatch {
                cfg: conclave_altnet::WatchdogConfig {
                    block_interval_ms: settings.block_ms,
                    block_variance_ms: settings.variance_ms,
                    ahead_blocks: settings.ahead_blocks,
                    quorum,
                    silence_ms: settings.silence_ms,
                    raise_after_ms: settings.raise_after_ms,
                    clear_after_ms: settings.clear_after_ms,
                    tip_ttl_ms: 60_000,
                },
                fetch: chain_watch::FetchSettings {
                    every: settings.fetch_every,
                    timeout: settings.fetch_timeout,
                },
                heads: chain.heads(),
                recent: chain_view
                    .as_ref()
                    .map(ChainView::recent)
                    .expect("a view with a writer"),
                view_head: writer.head,
                view_fallback: writer.fallback,
                drivers,
                deliveries: state.deliveries.subscribe(),
                metrics: state.metrics.clone(),
                snapshot: watchdog_tx,
                shutdown: shutdown_rx.clone(),
                net: state.net.clone(),
                view: registry.view(),
                clock: state.clock.clone(),
                tip_every: settings.tip_every,
            };
            tasks.push(tokio::spawn(watch.run()));
        }
        if let Some((node, inbox)) = rln {
            tasks.push(tokio::spawn(node.run(
                registry.view(),
                inbox,
                state.deliveries.subscribe(),
                shutdown_rx.clone(),
            )));
        }
        if let Some(key_dir) = &cfg.key_dir {
            let rotation = Rotation {
                key_dir: key_dir.clone(),
                factory,
                services: services.clone(),
                dispatch,
                shutdown: shutdown_rx.clone(),
            };
            tasks.push(tokio::spawn(rotation.run()));
        }
        if let Some((listener, _)) = altnet_listener {
            #[cfg(feature = "altnet")]
            tasks.push(tokio::spawn(api::serve_headers(
                listener,
                state.clone(),
                shutdown_rx.clone(),
            )));
            #[cfg(not(feature = "altnet"))]
            {
                drop(listener);
                tracing::warn!("altnet_http_listen is set but this build has no altnet feature");
            }
        }
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
            http_addr,
            altnet_http_addr,
            services,
            shutdown,
            tasks,
            _registry: registry,
            _chain: chain,
            store,
        })
    }

    /// The node's current network service (it changes when the node rotates to a new key).
    pub fn network(&self) -> NetworkService {
        self.services.current.borrow().clone()
    }

    /// The key the node runs under now.
    pub fn peer_id(&self) -> PeerId {
        self.network().local_peer_id()
    }

    /// Closes subscriptions and connections, stops the API and waits (bounded) for the tasks.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        let _ = self.shutdown.send(true);
        let services = self.services.clone();
        let all = async {
            services.shutdown().await;
            for t in self.tasks {
                t.abort();
                let _ = t.await;
            }
        };
        // The store closes when its last holder goes (an API connection finishing, an aborted
        // task being dropped): wait for that, so a node restarted in-process can reopen it.
        let store = self.store;
        let released = async {
            while Arc::strong_count(&store) > 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), async {
            all.await;
            released.await;
        })
        .await
        .is_err()
        {
            tracing::warn!("shutdown took longer than 10 s; exiting anyway");
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
            metrics.registry_stale.set(i64::from(s.stale));
            if let Some(b) = s.synced_block {
                metrics.registry_synced_block.set(b as i64);
            }
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
