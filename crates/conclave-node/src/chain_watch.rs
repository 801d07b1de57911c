//! The chain-view watchdog in the node (DESIGN §7; feature `altnet`).
//!
//! Place in the data flow: **the chain source's heads and every member delivery → [`Watchdog`]
//! (sans-IO, in conclave-altnet) → a log line per raise and clear, the
//! `conclave_watchdog_anomaly` gauge and `GET /v1/altnet/watchdog`**. This task is the
//! watchdog's only writer; the API reads a snapshot. Tip announcements from members and the
//! header fetch that acts on an anomaly are not wired yet.

use std::sync::Arc;
use std::time::Duration;

use conclave_altnet::{Anomaly, Watchdog, WatchdogConfig, WatchdogEvent};
use conclave_core::{Clock, SystemClock};
use conclave_net::Delivery;
use conclave_registry::ChainHead;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use crate::metrics::{AnomalyLabel, NodeMetrics};

/// How often conditions are evaluated.
const POLL: Duration = Duration::from_millis(250);

pub(crate) struct ChainWatch {
    pub cfg: WatchdogConfig,
    pub heads: watch::Receiver<ChainHead>,
    pub deliveries: broadcast::Receiver<Arc<Delivery>>,
    pub metrics: Arc<NodeMetrics>,
    pub snapshot: watch::Sender<Value>,
    pub shutdown: watch::Receiver<bool>,
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

impl ChainWatch {
    pub async fn run(mut self) {
        let mut dog = Watchdog::new(self.cfg, now_ms());
        let head = *self.heads.borrow_and_update();
        dog.local_block(head.number, head.hash.into(), now_ms());
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for a in Anomaly::ALL {
            self.set_gauge(a, false);
        }
        loop {
            tokio::select! {
                changed = self.heads.changed() => {
                    if changed.is_err() { return; }
                    let head = *self.heads.borrow_and_update();
                    dog.local_block(head.number, head.hash.into(), now_ms());
                }
                d = self.deliveries.recv() => match d {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => dog.member_gossip(now_ms()),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    for event in dog.poll(now_ms()) {
                        match event {
                            WatchdogEvent::Raised { anomaly, detail } => {
                                tracing::warn!(anomaly = anomaly.label(), %detail, "chain view anomaly raised");
                                self.metrics
                                    .watchdog_raised
                                    .get_or_create(&AnomalyLabel { anomaly: anomaly.label() })
                                    .inc();
                                self.set_gauge(anomaly, true);
                            }
                            WatchdogEvent::Cleared { anomaly } => {
                                tracing::info!(anomaly = anomaly.label(), "chain view anomaly cleared");
                                self.set_gauge(anomaly, false);
                            }
                        }
                    }
                    let head = *self.heads.borrow();
                    let raised: Vec<&str> = Anomaly::ALL
                        .into_iter()
                        .filter(|a| dog.is_raised(*a))
                        .map(Anomaly::label)
                        .collect();
                    self.snapshot.send_if_modified(|v| {
                        let new = json!({ "head": head.number, "raised": raised });
                        let changed = *v != new;
                        *v = new;
                        changed
                    });
                }
                _ = self.shutdown.changed() => return,
            }
        }
    }

    fn set_gauge(&self, anomaly: Anomaly, raised: bool) {
        self.metrics
            .watchdog_anomaly
            .get_or_create(&AnomalyLabel {
                anomaly: anomaly.label(),
            })
            .set(i64::from(raised));
    }
}
