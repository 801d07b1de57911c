//! The chain-view watchdog and fallback in the node (feature `altnet`;
//! docs/ARCHITECTURE.md, "Alternative paths: watchdog, drivers, header fallback").
//!
//! Place in the data flow:
//! - **the chain source's heads and every member delivery → [`Watchdog`] (sans-IO, in
//!   conclave-altnet) → a log line per raise and clear, the `conclave_watchdog_anomaly` gauge
//!   and `GET /v1/altnet/watchdog`**;
//! - **our head → a tip announcement on the signed `chain-tip` topic every `tip_every`** (only
//!   when the registry grants us that scope), whose receivers feed the `behind` and `forked`
//!   checks;
//! - **an anomaly (or being on fallback) → a header request to members over every driver that
//!   carries headers, in parallel → `accept_range` → [`ChainFollower`] → the [`ChainView`]'s
//!   head and fallback hashes**, which coordination and `/readyz` read. When the source reaches
//!   the fallback tip and agrees, the node follows it again.
//!
//! This task is the only writer of the watchdog, the follower and the view's head; the source
//! header log ([`log_source_headers`]) is the only writer of the headers we serve.
//!
//! [`ChainView`]: crate::chain_view::ChainView

use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_altnet::{
    accept_range, Anomaly, ChainFollower, Driver, DriverState, FetchReport, FollowEvent,
    HeaderResponse, MessageKind, TipAnnouncement, Watchdog, WatchdogConfig, WatchdogEvent, B256,
    TIP_TOPIC,
};
use conclave_api::{DriverFetch, FallbackTip, FetchOutcome, HeaderFetch, WatchdogAnswer};
use conclave_core::{Clock, MembershipView, SystemClock, TopicName};
use conclave_net::{Delivery, HeaderEntry, RecentHeaders, MAX_HEADERS_PER_REQUEST};
use conclave_registry::evm::EvmRegistry;
use conclave_registry::ChainHead;
use futures::future::join_all;
use tokio::sync::{broadcast, mpsc, watch};

use crate::chain_view::Fallback;
use crate::metrics::{AnomalyLabel, DriverLabel, NodeMetrics, ReasonLabel};
use crate::network::NodeNetwork;

/// How often conditions are evaluated.
const POLL: Duration = Duration::from_millis(250);
/// How far back the source header log fills in (on start, or after a gap).
const SOURCE_BACKFILL: u64 = 64;

/// When and how headers are fetched from members.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchSettings {
    /// Between two fetches while an anomaly holds or the node is on fallback.
    pub every: Duration,
    /// Per member, per driver.
    pub timeout: Duration,
}

pub(crate) struct ChainWatch {
    pub cfg: WatchdogConfig,
    pub fetch: FetchSettings,
    /// The source's heads (what the watchdog judges).
    pub heads: watch::Receiver<ChainHead>,
    /// The headers the source gave us (to check it agrees with the fallback tip).
    pub recent: watch::Receiver<Arc<RecentHeaders>>,
    /// The view's head and fallback hashes: this task writes them.
    pub view_head: watch::Sender<ChainHead>,
    pub view_fallback: watch::Sender<Arc<Fallback>>,
    pub drivers: Arc<Vec<Arc<dyn Driver>>>,
    pub deliveries: broadcast::Receiver<Arc<Delivery>>,
    pub metrics: Arc<NodeMetrics>,
    pub snapshot: watch::Sender<WatchdogAnswer>,
    pub shutdown: watch::Receiver<bool>,
    pub net: NodeNetwork,
    pub view: watch::Receiver<Arc<MembershipView>>,
    pub clock: Arc<dyn Clock>,
    /// How often we announce our tip.
    pub tip_every: Duration,
}

/// A finished fetch: where it was anchored and what each driver brought.
struct FetchDone {
    anchor: (u64, B256),
    reports: Vec<(&'static str, FetchReport)>,
}

fn tip_topic() -> TopicName {
    conclave_core::static_topic!(TIP_TOPIC)
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

fn pair(h: ChainHead) -> (u64, B256) {
    (h.number, B256::from(h.hash))
}

/// The mutable state of the loop besides the watchdog.
struct Following {
    follower: ChainFollower,
    fetching: bool,
    last_fetch: Option<Instant>,
    /// The last fetch's outcome, for the API (and to log a refusal only when it changes).
    last_outcome: Option<HeaderFetch>,
    last_refusal: Option<String>,
}

impl ChainWatch {
    pub async fn run(mut self) {
        let mut dog = Watchdog::new(self.cfg, now_ms());
        let head = *self.heads.borrow_and_update();
        dog.local_block(head.number, head.hash.into(), now_ms());
        let mut state = Following {
            follower: ChainFollower::new(pair(head)),
            fetching: false,
            last_fetch: None,
            last_outcome: None,
            last_refusal: None,
        };
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for a in Anomaly::ALL {
            self.set_gauge(a, false);
        }
        self.metrics.altnet.fallback.set(0);
        let topic = tip_topic();
        if let Err(e) = self.net.subscribe(topic.clone()).await {
            tracing::warn!(error = %e, "cannot subscribe to chain tips");
        }
        let mut announce = tokio::time::interval(self.tip_every);
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (done_tx, mut done_rx) = mpsc::channel::<FetchDone>(1);
        loop {
            tokio::select! {
                _ = announce.tick() => self.announce(&topic).await,
                changed = self.heads.changed() => {
                    if changed.is_err() { return; }
                    let head = *self.heads.borrow_and_update();
                    dog.local_block(head.number, head.hash.into(), now_ms());
                    self.source_moved(&mut state);
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
                Some(done) = done_rx.recv() => self.fetched(done, &mut state),
                _ = tick.tick() => {
                    self.evaluate(&mut dog);
                    // The source's header at the fallback tip may have arrived since its head did.
                    self.source_moved(&mut state);
                    self.maybe_fetch(&dog, &mut state, &done_tx);
                    self.publish_snapshot(&dog, &state);
                    for d in self.drivers.iter() {
                        let up = d.health().state == DriverState::Up;
                        self.metrics.altnet.driver_up.get_or_create(&DriverLabel { driver: d.name() }).set(i64::from(up));
                    }
                }
                _ = self.shutdown.changed() => return,
            }
        }
    }

    fn evaluate(&self, dog: &mut Watchdog) {
        for event in dog.poll(now_ms()) {
            match event {
                WatchdogEvent::Raised { anomaly, detail } => {
                    tracing::warn!(anomaly = anomaly.label(), %detail, "chain view anomaly raised");
                    self.metrics
                        .watchdog_raised
                        .get_or_create(&AnomalyLabel {
                            anomaly: anomaly.label(),
                        })
                        .inc();
                    self.set_gauge(anomaly, true);
                }
                WatchdogEvent::Cleared { anomaly } => {
                    tracing::info!(anomaly = anomaly.label(), "chain view anomaly cleared");
                    self.set_gauge(anomaly, false);
                }
            }
        }
    }

    /// Feeds the source's head to the follower and the view.
    fn source_moved(&self, state: &mut Following) {
        let head = *self.heads.borrow();
        let recent = self.recent.borrow().clone();
        let event = state.follower.source_head(pair(head), |n| {
            recent
                .get(n)
                .and_then(|e| <[u8; 32]>::try_from(e.hash.as_slice()).ok())
                .map(B256::from)
        });
        match event {
            Some(FollowEvent::ReturnedToSource { head }) => {
                tracing::info!(head, "chain source agrees with members again; following it");
                self.view_fallback.send_replace(Arc::default());
                self.metrics.altnet.fallback.set(0);
            }
            Some(FollowEvent::SourceDisagrees {
                height,
                source,
                members,
            }) => {
                tracing::warn!(height, %source, %members, "chain source has another hash than members of f+1 operators; staying on their headers");
            }
            Some(FollowEvent::EnteredFallback { .. }) | None => {}
        }
        self.set_view_head(&state.follower);
    }

    fn set_view_head(&self, follower: &ChainFollower) {
        let (number, hash) = follower.head();
        let head = ChainHead {
            number,
            hash: hash.0,
        };
        self.view_head.send_if_modified(|h| {
            let changed = *h != head;
            *h = head;
            changed
        });
    }

    /// Starts a fetch when an anomaly holds (or we are on fallback and must keep up), at most
    /// one at a time and one per `every`.
    fn maybe_fetch(&self, dog: &Watchdog, state: &mut Following, done: &mpsc::Sender<FetchDone>) {
        let wanted = state.follower.fallback_tip().is_some()
            || [Anomaly::Stalled, Anomaly::Behind, Anomaly::Forked]
                .into_iter()
                .any(|a| dog.is_raised(a));
        let due = state
            .last_fetch
            .is_none_or(|t| t.elapsed() >= self.fetch.every);
        if !wanted || state.fetching || !due {
            return;
        }
        state.fetching = true;
        state.last_fetch = Some(Instant::now());
        let anchor = state.follower.anchor();
        let drivers = self.drivers.clone();
        let timeout = self.fetch.timeout;
        let done = done.clone();
        tokio::spawn(async move {
            let asks = drivers
                .iter()
                .filter(|d| d.capabilities().carries(MessageKind::Headers))
                .map(|d| async move {
                    let report = d
                        .fetch_headers(anchor.0 + 1, MAX_HEADERS_PER_REQUEST, timeout)
                        .await;
                    (d.name(), report)
                });
            let reports = join_all(asks).await;
            let _ = done.send(FetchDone { anchor, reports }).await;
        });
    }

    fn fetched(&self, done: FetchDone, state: &mut Following) {
        state.fetching = false;
        let mut answers: Vec<HeaderResponse> = Vec::new();
        let mut per_driver = Vec::new();
        for (name, report) in done.reports {
            let m = &self.metrics.altnet;
            let label = DriverLabel { driver: name };
            m.driver_answers
                .get_or_create(&label)
                .inc_by(report.answers.len() as u64);
            m.driver_errors
                .get_or_create(&label)
                .inc_by(report.failures.len() as u64);
            m.driver_bytes.get_or_create(&label).inc_by(report.bytes);
            if !report.answers.is_empty() || !report.failures.is_empty() {
                m.driver_latency
                    .get_or_create(&label)
                    .observe(report.elapsed.as_secs_f64());
            }
            per_driver.push(DriverFetch {
                driver: name.to_owned(),
                answers: report.answers.len(),
                failures: report
                    .failures
                    .iter()
                    .map(|f| format!("{}: {}", f.member, f.reason))
                    .collect(),
                elapsed_ms: report.elapsed.as_millis() as u64,
            });
            answers.extend(report.answers);
        }
        let outcome = match accept_range(done.anchor, &answers, self.cfg.quorum) {
            Ok(range) => {
                self.count_fetch("accepted");
                state.last_refusal = None;
                let tip = range.headers.last().map(|h| h.number);
                let operators = range.operators.len();
                match state.follower.accept(done.anchor, &range) {
                    Some(FollowEvent::EnteredFallback { tip }) => {
                        tracing::warn!(tip, operators, "chain source looks wrong; acting on headers members of {operators} operators agree on (fallback)");
                        self.metrics.altnet.fallback.set(1);
                    }
                    _ => tracing::debug!(?tip, operators, "fallback headers extended"),
                }
                self.view_fallback.send_replace(Arc::new(Fallback {
                    hashes: state
                        .follower
                        .fallback_hashes()
                        .map(|(n, h)| (n, h.0))
                        .collect(),
                }));
                self.set_view_head(&state.follower);
                if let Some((n, _)) = state.follower.fallback_tip() {
                    self.metrics.altnet.fallback_height.set(n as i64);
                }
                FetchOutcome::Accepted {
                    accepted: range.hashes.len(),
                    operators,
                    tip,
                }
            }
            Err(refusal) => {
                self.count_fetch("refused");
                let reason = refusal.to_string();
                if state.last_refusal.as_ref() != Some(&reason) {
                    tracing::info!(anchor = done.anchor.0, %reason, "no header range accepted");
                    state.last_refusal = Some(reason.clone());
                }
                FetchOutcome::Refused { refused: reason }
            }
        };
        state.last_outcome = Some(HeaderFetch {
            anchor: done.anchor.0,
            outcome,
            drivers: per_driver,
        });
    }

    fn publish_snapshot(&self, dog: &Watchdog, state: &Following) {
        let head = *self.heads.borrow();
        let raised = Anomaly::ALL
            .into_iter()
            .filter(|a| dog.is_raised(*a))
            .map(|a| a.label().to_owned())
            .collect();
        let fallback_tip = state
            .follower
            .fallback_tip()
            .map(|(height, h)| FallbackTip {
                height,
                hash: h.to_string(),
            });
        let new = WatchdogAnswer {
            head: head.number,
            raised,
            following: if fallback_tip.is_some() {
                conclave_api::Following::Fallback
            } else {
                conclave_api::Following::Source
            },
            fallback_tip,
            last_fetch: state.last_outcome.clone(),
        };
        self.snapshot.send_if_modified(|v| {
            let changed = *v != new;
            *v = new;
            changed
        });
    }

    /// Announces our source's head, if the registry lets us publish tips now. (Never the
    /// fallback tip: members must hear what our own source says, not an echo of theirs.)
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

    fn count_fetch(&self, reason: &'static str) {
        self.metrics
            .altnet
            .header_fetches
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

/// Records the headers our EVM source gives us, for members who ask and for the fallback's
/// return check. Walks back on a reorg (a new header whose parent is not the one we hold).
pub(crate) async fn log_source_headers(
    chain: Arc<EvmRegistry>,
    mut heads: watch::Receiver<ChainHead>,
    recent: watch::Sender<Arc<RecentHeaders>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut next: Option<u64> = None;
    loop {
        let head = heads.borrow_and_update().number;
        let floor = head.saturating_sub(SOURCE_BACKFILL - 1);
        // From where we stopped; at least the head again (a reorg at the tip keeps its height).
        let mut n = next.unwrap_or(floor).max(floor).min(head);
        while n <= head {
            let header = match chain.header(n).await {
                Ok(h) => h,
                Err(e) => {
                    tracing::debug!(block = n, error = %e, "source header not logged");
                    break;
                }
            };
            let parent_known = recent
                .borrow()
                .get(n.wrapping_sub(1))
                .map(|e| e.hash.as_slice() == header.parent);
            if parent_known == Some(false) && n > floor {
                // A reorg under what we logged: go back one and fetch again.
                n -= 1;
                continue;
            }
            recent.send_modify(|r| {
                Arc::make_mut(r).insert(
                    n,
                    HeaderEntry {
                        hash: header.hash.to_vec(),
                        rlp: header.rlp,
                    },
                )
            });
            n += 1;
            next = Some(n);
        }
        tokio::select! {
            changed = heads.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}
