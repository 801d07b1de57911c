//! Writes what must survive a restart, every [`PERSIST_EVERY`] and once more at shutdown: the
//! ids of delivered messages (`delivery_filter`) and the signed messages the network retains for
//! catch-up. Both go to the state store off the async threads; the store forgets what fell out
//! of their windows in the same transactions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::Clock;
use conclave_net::{CatchUpConfig, RetainedMessage};
use tokio::sync::watch;

use crate::delivery_filter::DeliveryFilter;
use crate::metrics::NodeMetrics;
use crate::store::StateStore;

/// How often new ids and messages are written: a crash (not a clean stop) can lose at most this
/// much — a few messages that could be delivered again, or caught up again from members.
pub(crate) const PERSIST_EVERY: Duration = Duration::from_millis(250);
/// Retained messages waiting for the next write at most; beyond it they are dropped (and
/// counted): the network still holds them, only a restart would not.
const MAX_PENDING: usize = 65_536;

/// Retained messages on their way to the store.
pub(crate) struct RetainedBatch {
    pending: Mutex<Vec<Arc<RetainedMessage>>>,
    config: CatchUpConfig,
}

impl RetainedBatch {
    pub fn new(config: CatchUpConfig) -> Self {
        RetainedBatch {
            pending: Mutex::new(Vec::new()),
            config,
        }
    }

    /// Queues a message for the next write; false (and nothing queued) when the queue is full.
    pub fn push(&self, m: &Arc<RetainedMessage>) -> bool {
        let mut pending = crate::lock(&self.pending);
        if pending.len() >= MAX_PENDING {
            return false;
        }
        pending.push(m.clone());
        true
    }

    fn take(&self) -> Vec<Arc<RetainedMessage>> {
        std::mem::take(&mut *crate::lock(&self.pending))
    }
}

/// What a network service starts with: the messages retained before, within the window. Rows
/// that no longer decode are skipped and counted.
pub(crate) fn load_retained(
    store: &StateStore,
    config: &CatchUpConfig,
    now_ms: u64,
    metrics: &NodeMetrics,
) -> Result<Vec<RetainedMessage>, crate::store::StoreError> {
    let since = now_ms.saturating_sub(config.retention.as_millis() as u64);
    let (messages, damaged) = store.retained_since(since)?;
    if damaged > 0 {
        metrics.peer_store_errors.inc_by(damaged as u64);
        tracing::warn!(
            damaged,
            "retained messages in the state store do not decode; skipped"
        );
    }
    Ok(messages)
}

/// The persisting task, until shutdown (then one last write).
pub(crate) async fn persist(
    filter: Arc<Mutex<DeliveryFilter>>,
    retained: Arc<RetainedBatch>,
    store: Arc<StateStore>,
    metrics: Arc<NodeMetrics>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut stored_bytes = {
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.retained_bytes()).await {
            Ok(Ok(n)) => n,
            _ => 0,
        }
    };
    let mut every = tokio::time::interval(PERSIST_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            _ = every.tick() => false,
            _ = shutdown.changed() => true,
        };
        let (ids, forget_before) = {
            let mut f = crate::lock(&filter);
            (f.take_unsaved(), f.forget_before())
        };
        let messages = retained.take();
        let config = retained.config;
        let now_ms = clock.now_ms();
        let store = store.clone();
        let written = tokio::task::spawn_blocking(move || {
            store.record_delivered(&ids, forget_before)?;
            let cutoff = now_ms.saturating_sub(config.retention.as_millis() as u64);
            store.record_retained(&messages, cutoff, config.max_bytes, &mut stored_bytes)?;
            Ok::<usize, crate::store::StoreError>(stored_bytes)
        })
        .await;
        match written {
            Ok(Ok(n)) => stored_bytes = n,
            Ok(Err(e)) => {
                metrics.peer_store_errors.inc();
                tracing::warn!(error = %e, "delivered ids or retained messages not persisted");
            }
            Err(_) => {}
        }
        if stop {
            return;
        }
    }
}
