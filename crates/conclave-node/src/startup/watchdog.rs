//! The chain-view watchdog and its transport drivers (feature `altnet`).

use std::sync::Arc;

use conclave_altnet::Driver;
use conclave_api::WatchdogAnswer;
use tokio::sync::watch;

use super::Wiring;
use crate::chain_view::{ChainView, ChainViewWriter, NodeChain};
use crate::{chain_watch, drivers};

/// Every transport the node listens on as a driver, plus the polled HTTP driver.
pub(super) fn drivers(w: &Wiring) -> Option<Arc<Vec<Arc<dyn Driver>>>> {
    let settings = w.cfg.watchdog.as_ref()?;
    let mut drivers: Vec<Arc<dyn Driver>> = drivers::TransportKind::ALL
        .into_iter()
        .map(|kind| {
            let listen = w
                .cfg
                .listen
                .iter()
                .filter(|a| drivers::TransportKind::of(a) == Some(kind))
                .cloned()
                .collect();
            Arc::new(drivers::TransportDriver::new(kind, w.net.clone(), listen)) as _
        })
        .collect();
    drivers.push(Arc::new(drivers::HttpDriver::new(
        settings.http_peers.clone(),
        w.view.clone(),
        w.clock.clone(),
    )));
    Some(Arc::new(drivers))
}

/// What the watch task needs besides the wiring.
pub(super) struct WatchParts {
    pub chain: NodeChain,
    pub view: ChainView,
    pub writer: ChainViewWriter,
    pub drivers: Arc<Vec<Arc<dyn Driver>>>,
    pub snapshot: watch::Sender<WatchdogAnswer>,
}

/// Starts the drivers and spawns the chain watch (and, on an EVM chain, the source-header
/// log), pushing the tasks to `tasks`.
pub(super) async fn spawn(
    w: &Wiring,
    parts: WatchParts,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) {
    let Some(settings) = w.cfg.watchdog.clone() else {
        return;
    };
    for d in parts.drivers.iter() {
        if let Err(e) = d.start().await {
            tracing::warn!(driver = d.name(), error = %e, "driver did not start");
        }
    }
    let quorum = match settings.quorum {
        0 => {
            let n = w.view.borrow().operators().count();
            n.saturating_sub(1) / 3 + 1
        }
        q => q,
    };
    let chain = parts.chain;
    if let NodeChain::Evm(evm) = &chain {
        tasks.push(tokio::spawn(chain_watch::log_source_headers(
            evm.clone(),
            chain.heads(),
            parts.writer.recent,
            w.shutdown.clone(),
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
        recent: parts.view.recent(),
        view_head: parts.writer.head,
        view_fallback: parts.writer.fallback,
        drivers: parts.drivers,
        deliveries: w.deliveries.subscribe(),
        metrics: w.metrics.clone(),
        snapshot: parts.snapshot,
        shutdown: w.shutdown.clone(),
        net: w.net.clone(),
        view: w.view.clone(),
        clock: w.clock.clone(),
        tip_every: settings.tip_every,
    };
    tasks.push(tokio::spawn(watch.run()));
}
