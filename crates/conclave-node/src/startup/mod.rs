//! How a node is put together: each subsystem is built by its own function from the
//! [`Wiring`] every subsystem shares, then spawned; [`start`] only orders the steps.
//!
//! Order matters where one subsystem feeds another: membership and the chain first (the
//! network gate needs the view, delegations need the chain's clock), then the network, the
//! listeners (so the addresses are known before anything is announced), the anonymous channel
//! (its inbox is handed to the dispatcher), and last the tasks that consume all of it.

mod anonymous;
mod listeners;
mod membership;
#[cfg(feature = "altnet")]
mod watchdog;

use std::sync::Arc;

use conclave_core::{Clock, MembershipView};
use conclave_net::Delivery;
use tokio::sync::{broadcast, watch};

use self::listeners::Listeners;
use self::membership::{ActingChain, Membership};
use crate::api::ApiState;
use crate::coordination::Coordinator;
use crate::delivery_filter::DeliveryFilter;
use crate::metrics::NodeMetrics;
use crate::network::{Dispatch, NetFactory, NodeNetwork, Rotation, Services};
use crate::persist::RetainedBatch;
use crate::readiness::Readiness;
use crate::store::StateStore;
use crate::{api, keys, track_registry, NodeError, NodeHooks, RunningNode, ValidConfig};

/// Bound of the fan-out to WebSocket subscribers; slower subscribers skip messages (and are told).
const DELIVERY_FANOUT: usize = 4096;
/// Recent chain headers a node keeps to serve members (about 50 minutes of 12 s blocks).
#[cfg(feature = "altnet")]
const RECENT_HEADERS: usize = 256;

/// What every subsystem is built from: the configuration and the handles and snapshots the
/// node's single writers publish.
pub(crate) struct Wiring {
    pub cfg: ValidConfig,
    pub view: watch::Receiver<Arc<MembershipView>>,
    pub net: NodeNetwork,
    pub store: Arc<StateStore>,
    pub metrics: Arc<NodeMetrics>,
    pub clock: Arc<dyn Clock>,
    pub deliveries: broadcast::Sender<Arc<Delivery>>,
    pub shutdown: watch::Receiver<bool>,
}

/// Brings a node up: see the module doc for the order.
pub(crate) async fn start(cfg: ValidConfig, hooks: NodeHooks) -> Result<RunningNode, NodeError> {
    let (keypair, key_type) = keys::load(&cfg.key_file)?;
    let peer_id = keypair.public().to_peer_id();
    let membership = Membership::start(&cfg).await?;
    let acting = ActingChain::new(&membership.chain, &cfg);
    let store = Arc::new(StateStore::open(&cfg.state_dir)?);
    let metrics = Arc::new(NodeMetrics::default());
    metrics.record_build(&hooks.build);

    let factory = Arc::new(NetFactory {
        cfg: cfg.clone(),
        store: store.clone(),
        clock: acting.clock.clone(),
        view: membership.registry.view(),
        metrics: metrics.clone(),
        headers: match &acting.view {
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

    let listeners = Listeners::bind(&cfg).await?;
    tracing::info!(
        %peer_id,
        %key_type,
        api = %listeners.api_addr,
        version = %hooks.build.version,
        commit = %hooks.build.commit,
        dirty = hooks.build.dirty,
        "node started"
    );

    let (shutdown, shutdown_rx) = watch::channel(false);
    let w = Wiring {
        view: membership.registry.view(),
        net: services.handle(),
        store: store.clone(),
        metrics: metrics.clone(),
        clock: acting.clock.clone(),
        deliveries: broadcast::channel(DELIVERY_FANOUT).0,
        shutdown: shutdown_rx,
        cfg,
    };
    let anonymous = anonymous::build(&w)?;
    // Caught-up messages can be as old as the retention window: remember deliveries as long.
    let window = w.cfg.timestamp_tolerance.max(w.cfg.catch_up.retention);
    let since = w.clock.now_ms().saturating_sub(window.as_millis() as u64);
    let delivered = store.delivered_since(since)?;
    let dispatch = Dispatch::new(
        w.deliveries.clone(),
        store.clone(),
        metrics.clone(),
        DeliveryFilter::new(window, delivered, w.clock.clone()),
        RetainedBatch::new(w.cfg.catch_up),
        w.clock.clone(),
        anonymous.as_ref().map(|a| a.inbox.clone()),
    );
    let coordinator = match (w.cfg.coordination, &acting.view) {
        (Some(coord), Some(chain)) => Some(Coordinator {
            cfg: coord,
            chain: chain.clone(),
            view: w.view.clone(),
            net: w.net.clone(),
            deliveries: w.deliveries.subscribe(),
            store: store.clone(),
            metrics: metrics.clone(),
            generator: hooks.generator.clone(),
            validator: hooks.validator.clone(),
            shutdown: w.shutdown.clone(),
        }),
        _ => None,
    };
    #[cfg(feature = "altnet")]
    let drivers = watchdog::drivers(&w);
    let (watchdog_tx, watchdog_rx) = watch::channel(conclave_api::WatchdogAnswer::default());
    let watchdog_running =
        cfg!(feature = "altnet") && w.cfg.watchdog.is_some() && membership.chain.is_some();
    let readiness = Readiness {
        view: w.view.clone(),
        registry_status: membership.registry.status(),
        net: w.net.clone(),
        configured_quorum: w.cfg.ready_quorum,
        clock: w.clock.clone(),
        chain: acting.view.clone(),
    };
    let state = ApiState {
        watchdog: watchdog_running.then_some(watchdog_rx),
        #[cfg(feature = "altnet")]
        chain: acting.view.clone(),
        #[cfg(feature = "altnet")]
        drivers: drivers.clone(),
        #[cfg(feature = "altnet")]
        header_permits: Arc::new(tokio::sync::Semaphore::new(16)),
        rln: anonymous.as_ref().map(|a| a.node.clone()),
        net: w.net.clone(),
        store: store.clone(),
        view: w.view.clone(),
        registry_status: membership.registry.status(),
        deliveries: w.deliveries.clone(),
        registry: services.metrics_registry.subscribe(),
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        clock: w.clock.clone(),
        shutdown: w.shutdown.clone(),
    };

    let persist_delivered = dispatch.persist(w.shutdown.clone());
    let mut tasks = vec![
        dispatch.spawn(&first, started.events, started.anonymous),
        tokio::spawn(track_registry(readiness, metrics)),
    ];
    if let Some(c) = coordinator {
        tasks.push(tokio::spawn(c.run()));
    }
    #[cfg(feature = "altnet")]
    if let (Some(chain), Some(view), Some(writer), Some(drivers)) =
        (&membership.chain, &acting.view, acting.writer, drivers)
    {
        let parts = watchdog::WatchParts {
            chain: chain.clone(),
            view: view.clone(),
            writer,
            drivers,
            snapshot: watchdog_tx,
        };
        watchdog::spawn(&w, parts, &mut tasks).await;
    }
    #[cfg(not(feature = "altnet"))]
    drop(watchdog_tx);
    if let Some(a) = anonymous {
        tasks.push(tokio::spawn(a.node.run(
            w.view.clone(),
            a.inbox_rx,
            w.deliveries.subscribe(),
            w.shutdown.clone(),
        )));
    }
    if let Some(key_dir) = &w.cfg.key_dir {
        let rotation = Rotation {
            key_dir: key_dir.clone(),
            factory,
            services: services.clone(),
            dispatch,
            shutdown: w.shutdown.clone(),
        };
        tasks.push(tokio::spawn(rotation.run()));
    }
    let altnet_http_addr = listeners.headers.as_ref().map(|(_, a)| *a);
    if let Some((listener, _)) = listeners.headers {
        #[cfg(feature = "altnet")]
        tasks.push(tokio::spawn(api::serve_headers(
            listener,
            state.clone(),
            w.shutdown.clone(),
        )));
        #[cfg(not(feature = "altnet"))]
        {
            drop(listener);
            tracing::warn!("[altnet] http_listen is set but this build has no altnet feature");
        }
    }
    tasks.push(tokio::spawn(listeners::serve_api(
        listeners.api,
        api::router(state),
        w.shutdown.clone(),
    )));
    Ok(RunningNode {
        persist_delivered,
        http_addr: listeners.api_addr,
        altnet_http_addr,
        services,
        shutdown,
        tasks,
        _registry: membership.registry,
        _chain: membership.chain,
        store,
    })
}
