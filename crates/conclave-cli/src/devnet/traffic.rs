//! Signed-channel traffic: publishers at a steady rate, a subscriber per node tallying what
//! arrives, and the books that turn both into delivery figures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use conclave_api::{DeliveryFrame, DeliveryReport, PublishAnswer, StreamFrame};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client;
use super::cluster::NodeProc;
use super::common::{now_ms, TOPIC};

/// What every devnet payload carries, so receivers can account for it.
#[derive(Serialize, Deserialize)]
pub struct Probe {
    /// Sender index.
    pub n: usize,
    /// Sequence number per sender.
    pub s: u64,
    /// Send time, ms since the Unix epoch.
    pub t: u64,
    /// Padding up to the requested size.
    pub p: String,
}

/// The sender index the intruder's probes carry.
const INTRUDER: usize = usize::MAX;

/// Everything the subscribers saw.
#[derive(Default)]
pub struct Tally {
    /// (receiver, sender, seq) → latency in ms.
    pub delivered: HashMap<(usize, usize, u64), u64>,
    pub duplicates: u64,
    /// Deliveries beyond the first, per (receiver, sender, seq).
    pub repeats: HashMap<(usize, usize, u64), u64>,
    /// Replayed messages the subscriber already had (it asked from a time it had seen).
    pub replayed_known: u64,
    pub intruder_received: u64,
    pub lagged: u64,
}

impl Tally {
    /// The intruder's messages that members delivered.
    pub fn intruder_delivered(&self) -> u64 {
        self.delivered
            .keys()
            .filter(|(_, s, _)| *s == INTRUDER)
            .count() as u64
    }
}

/// Subscribes to the devnet topic at `node` and tallies what arrives as `receiver`'s (the
/// intruder's, with none).
pub async fn subscribe(
    node: &NodeProc,
    receiver: Option<usize>,
    tally: Arc<Mutex<Tally>>,
) -> anyhow::Result<JoinHandle<()>> {
    subscribe_since(node, receiver, tally, None).await
}

/// [`subscribe`], first asking for what the node retains from `since_ms` on (a subscriber
/// coming back). A replayed message it already has is not a duplicate: it asked for it.
pub async fn subscribe_since(
    node: &NodeProc,
    receiver: Option<usize>,
    tally: Arc<Mutex<Tally>>,
    since_ms: Option<u64>,
) -> anyhow::Result<JoinHandle<()>> {
    let query = since_ms
        .map(|t| format!("?since_ms={t}"))
        .unwrap_or_default();
    let url = format!("ws://{}/v1/subscribe/{TOPIC}{query}", node.api());
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .with_context(|| format!("subscribing at {url}"))?;
    Ok(tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let Ok(text) = msg.to_text() else { continue };
            let Ok(frame) = serde_json::from_str::<StreamFrame<DeliveryFrame>>(text) else {
                continue;
            };
            let mut t = tally.lock().expect("tally lock");
            let frame = match frame {
                StreamFrame::Lagged(l) => {
                    t.lagged += l.lagged;
                    continue;
                }
                StreamFrame::Item(frame) => frame,
            };
            let Some(receiver) = receiver else {
                t.intruder_received += 1;
                continue;
            };
            let probe = frame
                .payload()
                .ok()
                .and_then(|b| serde_json::from_slice::<Probe>(&b).ok());
            if let Some(p) = probe {
                let latency = now_ms().saturating_sub(p.t);
                let key = (receiver, p.n, p.s);
                let known = t.delivered.contains_key(&key);
                match (known, frame.replayed) {
                    (true, true) => t.replayed_known += 1,
                    (true, false) => {
                        t.duplicates += 1;
                        *t.repeats.entry(key).or_default() += 1;
                    }
                    (false, _) => {
                        t.delivered.insert(key, latency);
                    }
                }
            }
        }
    }))
}

/// Where `node` takes publishes on the devnet topic.
pub fn publish_url(node: &NodeProc) -> String {
    node.url(&format!("/v1/publish/{TOPIC}"))
}

/// Publishes `probe` at `url` (a [`publish_url`]): the answer when the node took it (sent, or
/// queued for a peer), otherwise the status and why not.
pub async fn publish(
    http: &reqwest::Client,
    url: &str,
    probe: &Probe,
) -> Result<PublishAnswer, String> {
    let body = serde_json::to_vec(probe).expect("a probe serializes");
    match client::post::<PublishAnswer>(http, url, body).await {
        Ok((_, Ok(answer))) => Ok(answer),
        Ok((status, Err(refusal))) => Err(format!("{status} {}", refusal.error)),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// How the member that will be removed publishes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum VictimMode {
    Normal,
    /// Silent, so nothing of its own is in flight when it is removed.
    Quiet,
    /// Publishing after its removal: must reach nobody.
    Rogue,
}

/// One message a member published.
pub struct Sent {
    pub sender: usize,
    pub seq: u64,
    pub at_ms: u64,
    /// Sent by the removed member after its removal.
    pub rogue: bool,
}

/// Every publisher of the run: one per member at the configured rate, and the intruder's.
pub struct Publishers {
    tasks: Vec<JoinHandle<()>>,
    pub sent: Arc<Mutex<Vec<Sent>>>,
    pub intruder_attempts: Arc<Mutex<u64>>,
    victim_mode: watch::Sender<VictimMode>,
    stop: watch::Sender<bool>,
}

impl Publishers {
    /// Starts publishing `size`-byte probes `rate` times a second on each member, and the
    /// intruder's probes five times a second (when there is one).
    pub fn start(
        http: &reqwest::Client,
        members: &[NodeProc],
        victim: usize,
        intruder: Option<&NodeProc>,
        rate: u32,
        size: usize,
    ) -> Publishers {
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let intruder_attempts = Arc::new(Mutex::new(0u64));
        let (victim_mode, mode_rx) = watch::channel(VictimMode::Normal);
        let (stop, stop_rx) = watch::channel(false);
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
        let mut tasks = Vec::new();
        for (i, node) in members.iter().enumerate() {
            let (http, url, sent, mode, mut stop) = (
                http.clone(),
                publish_url(node),
                sent.clone(),
                mode_rx.clone(),
                stop_rx.clone(),
            );
            let pad = "x".repeat(size.saturating_sub(60));
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                let mut seq = 0u64;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.changed() => return,
                    }
                    let rogue = match (i == victim, *mode.borrow()) {
                        (true, VictimMode::Quiet) => continue,
                        (true, VictimMode::Rogue) => true,
                        _ => false,
                    };
                    let at_ms = now_ms();
                    let probe = Probe {
                        n: i,
                        s: seq,
                        t: at_ms,
                        p: pad.clone(),
                    };
                    if publish(&http, &url, &probe).await.is_ok() {
                        sent.lock().expect("sent lock").push(Sent {
                            sender: i,
                            seq,
                            at_ms,
                            rogue,
                        });
                    }
                    seq += 1;
                }
            }));
        }
        if let Some(intruder) = intruder {
            tasks.push(Self::intruder(http, intruder, &intruder_attempts, stop_rx));
        }
        Publishers {
            tasks,
            sent,
            intruder_attempts,
            victim_mode,
            stop,
        }
    }

    fn intruder(
        http: &reqwest::Client,
        intruder: &NodeProc,
        attempts: &Arc<Mutex<u64>>,
        mut stop_intruder: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let (http, url, attempts) = (http.clone(), publish_url(intruder), attempts.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_intruder.changed() => return,
                }
                let probe = Probe {
                    n: INTRUDER,
                    s: 0,
                    t: now_ms(),
                    p: String::new(),
                };
                let _ = publish(&http, &url, &probe).await;
                *attempts.lock().expect("attempts lock") += 1;
            }
        })
    }

    pub fn set_victim_mode(&self, mode: VictimMode) {
        self.victim_mode.send_replace(mode);
    }

    /// Stops every publisher and waits until they are done.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The books of a run: the members' delivery, and the removed member's later messages.
pub struct Books {
    pub delivery: DeliveryReport,
    /// The removed member's messages after its removal that members delivered, of those sent.
    pub later_delivered: u64,
    pub later_sent: u64,
}

/// Accounts for every (message, receiver) pair of `n` members. The removed member (`victim`)
/// stops being a receiver once quiesced at `quiet_at_ms`.
pub fn books(sent: &[Sent], tally: &Tally, n: usize, victim: usize, quiet_at_ms: u64) -> Books {
    let mut delivery = DeliveryReport {
        expected: 0,
        delivered: 0,
        duplicates: tally.duplicates,
        lagged: tally.lagged,
        latency_ms: Vec::new(),
        missing: Vec::new(),
    };
    let (mut later_delivered, mut later_sent) = (0, 0);
    for s in sent {
        for r in (0..n).filter(|r| *r != s.sender) {
            let got = tally.delivered.get(&(r, s.sender, s.seq));
            if s.rogue {
                later_delivered += u64::from(got.is_some() && r != victim);
                continue;
            }
            if r == victim && s.at_ms >= quiet_at_ms {
                continue;
            }
            delivery.expected += 1;
            if let Some(l) = got {
                delivery.delivered += 1;
                delivery.latency_ms.push(*l);
            } else if delivery.missing.len() < 10 {
                delivery.missing.push(format!(
                    "node-{}#{} (sent {} ms before the end) at node-{r}",
                    s.sender,
                    s.seq,
                    now_ms().saturating_sub(s.at_ms)
                ));
            }
        }
        later_sent += u64::from(s.rogue);
    }
    delivery.latency_ms.sort_unstable();
    Books {
        delivery,
        later_delivered,
        later_sent,
    }
}
