//! The chain-view watchdog in the node (DESIGN §7; feature `altnet`).
//!
//! Place in the data flow: **the chain source's heads and every member delivery → [`Watchdog`]
//! (sans-IO, in conclave-altnet) → a log line per raise and clear, the
//! `conclave_watchdog_anomaly` gauge and `GET /v1/altnet/watchdog`**, and **our head → a tip
//! announcement on the signed `chain-tip` topic every `tip_every`** (only when the registry grants
//! us that scope), whose receivers feed the `behind` and `forked` checks. This task is the
//! watchdog's only writer; the API reads a snapshot. The header fetch that acts on an anomaly is
//! not wired yet.

use std::sync::Arc;
use std::time::Duration;

use conclave_altnet::{
    Anomaly, TipAnnouncement, Watchdog, WatchdogConfig, WatchdogEvent, TIP_TOPIC,
};
use conclave_core::{Clock, MembershipView, SystemClock, TopicName};
use conclave_net::Delivery;
use conclave_registry::ChainHead;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use crate::metrics::{AnomalyLabel, NodeMetrics, ReasonLabel};
use crate::network::NodeNetwork;

/// How often conditions are evaluated.
const POLL: Duration = Duration::from_millis(250);

pub(crate) struct ChainWatch {
    pub cfg: WatchdogConfig,
    pub heads: watch::Receiver<ChainHead>,
    pub deliveries: broadcast::Receiver<Arc<Delivery>>,
    pub metrics: Arc<NodeMetrics>,
    pub snapshot: watch::Sender<Value>,
    pub shutdown: watch::Receiver<bool>,
    pub net: NodeNetwork,
    pub view: watch::Receiver<Arc<MembershipView>>,
    pub clock: Arc<dyn Clock>,
    /// How often we announce our tip.
    pub tip_every: Duration,
}

fn tip_topic() -> TopicName {
    TIP_TOPIC.parse().expect("a valid topic name")
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
        let topic = tip_topic();
        if let Err(e) = self.net.subscribe(topic.clone()).await {
            tracing::warn!(error = %e, "cannot subscribe to chain tips");
        }
        let mut announce = tokio::time::interval(self.tip_every);
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = announce.tick() => self.announce(&topic).await,
                changed = self.heads.changed() => {
                    if changed.is_err() { return; }
                    let head = *self.heads.borrow_and_update();
                    dog.local_block(head.number, head.hash.into(), now_ms());
                }
                d = self.deliveries.recv() => match d {
                    Ok(d) => {
                        let now = now_ms();
                        dog.member_gossip(now);
                        if d.topic == topic {
                            match TipAnnouncement::parse(&d.payload) {
                                Ok((height, hash)) => {
                                    dog.member_tip(d.operator, height, hash, now);
                                    self.count_tip("accepted");
                                }
                                Err(e) => {
                                    tracing::debug!(source = %d.source, error = %e, "bad tip announcement");
                                    self.count_tip("malformed");
                                }
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => dog.member_gossip(now_ms()),
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

    /// Announces our head, if the registry lets us publish tips now.
    async fn announce(&self, topic: &TopicName) {
        let me = self.net.current().local_peer_id();
        let allowed = self
            .view
            .borrow()
            .may_publish(&me, topic, self.clock.moment())
            .is_ok();
        if !allowed {
            return;
        }
        let head = *self.heads.borrow();
        let tip = TipAnnouncement::new(head.number, head.hash.into());
        let payload = prost::Message::encode_to_vec(&tip);
        if let Err(e) = self.net.publish(topic.clone(), payload).await {
            tracing::debug!(error = %e, "tip announcement not sent");
        }
    }

    fn count_tip(&self, reason: &'static str) {
        self.metrics
            .watchdog_tips
            .get_or_create(&ReasonLabel { reason })
            .inc();
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
