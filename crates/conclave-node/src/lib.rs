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
mod delivery_filter;
#[cfg(feature = "altnet")]
mod drivers;
#[cfg(feature = "altnet")]
pub mod header_answers;
pub mod keys;
pub mod keystore;
mod metrics;
mod network;
mod persist;
mod readiness;
mod rln;
mod rln_arrivals;
mod rln_chain;
mod rotation;
mod startup;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conclave_coord::{AcceptAll, DefaultGenerator, ProposalGenerator, ProposalValidator};
use conclave_core::PeerId;
use conclave_net::{NetError, NetworkService};
use conclave_registry::evm::EvmError;
use conclave_registry::{RegistryError, RegistrySource};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api::describe_view;
pub use config::{ConfigError, CoordConfig, NodeConfig, RegistryChoice, ValidConfig};
pub use coordination::COORD_TOPIC;
pub use network::NodeNetwork;
pub use readiness::{default_quorum, ReadinessReport};
pub use rln::{AnonymousDelivery, SlashingNotice, SLASH_TOPIC};

use crate::chain_view::NodeChain;
use crate::metrics::NodeMetrics;
use crate::network::Services;
use crate::store::{StateStore, StoreError};

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
    #[error("Stacks registry: {0}")]
    Stacks(#[from] conclave_registry::stacks::StacksError),
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
    /// Where the read-only header listener listens, when `[altnet] http_listen` is set.
    pub altnet_http_addr: Option<SocketAddr>,
    services: Arc<Services>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Writes delivered message ids to the store; its last write is awaited at shutdown.
    persist_delivered: JoinHandle<()>,
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
        startup::start(cfg, hooks).await
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
        // Its last batch, so a clean stop forgets no delivered id (bounded: a redb write).
        let _ = tokio::time::timeout(Duration::from_secs(2), self.persist_delivered).await;
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

/// Mirrors the registry's status into metrics, and says when the view stops (or starts)
/// authorizing this node's own key: a signer removed from the set must know it is out.
async fn track_registry(readiness: readiness::Readiness, metrics: Arc<NodeMetrics>) {
    let mut view = readiness.view.clone();
    let mut status = readiness.registry_status.clone();
    // Delegations also lapse with time and blocks, without a new view.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_member = None;
    loop {
        {
            let s = status.borrow_and_update();
            metrics.registry_revision.set(s.revision as i64);
            metrics.registry_rejected.set(s.rejected_updates as i64);
            metrics.registry_stale.set(i64::from(s.stale));
            metrics.registry_skipped.set(s.skipped.len() as i64);
            if let Some(b) = s.synced_block {
                metrics.registry_synced_block.set(b as i64);
            }
            metrics
                .registry_members
                .set(view.borrow_and_update().nodes().count() as i64);
        }
        let (local, verdict) = readiness.own_authorization();
        let member = verdict.is_ok();
        metrics.self_member.set(i64::from(member));
        if was_member != Some(member) {
            match verdict {
                Ok(()) => tracing::info!(peer = %local, "the registry authorizes this node's key"),
                Err(reason) => tracing::warn!(
                    peer = %local,
                    %reason,
                    "the registry does not authorize this node's key: not ready, and publishing is refused"
                ),
            }
            was_member = Some(member);
        }
        tokio::select! {
            r = status.changed() => if r.is_err() { return },
            r = view.changed() => if r.is_err() { return },
            _ = tick.tick() => {}
        }
    }
}
