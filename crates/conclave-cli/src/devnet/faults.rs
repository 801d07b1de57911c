//! What the fault scenarios share: a traffic-carrying cluster (on loopback, or one member per
//! network namespace), and the books that say which deliveries a fault put at risk and how
//! they turned out.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use conclave_api::{AtRisk, DeliveryReport, FaultReport};
use conclave_core::GroupId;
use conclave_node::NodeConfig;
use conclave_registry::RlnEntry;
use tokio::task::JoinHandle;

use super::args::DevnetArgs;
use super::client::{self, http_client, metric_sum, wait_ready};
use super::cluster::{self, await_api, member_keys, NodeProc};
use super::config;
use super::netns::Hosts;
use super::registry::{self, Entry};
use super::traffic::{self, Publishers, Sent, Tally};

pub const REGISTRY: &str = "registry.toml";

/// What the registry holds besides the running members' node keys.
#[derive(Default, Clone, Copy)]
pub struct Registered<'a> {
    pub rln: &'a [RlnEntry],
    pub groups: &'a [(GroupId, Vec<usize>)],
    /// Members registered by PeerId that never run, numbered after the running ones.
    pub absent: &'a [String],
}

impl Registered<'_> {
    /// Writes the registry with the running members' `entries` and the absent ones.
    fn write(&self, dir: &Path, mut entries: Vec<Entry>) -> anyhow::Result<()> {
        let n = entries.len();
        entries.extend(
            self.absent
                .iter()
                .enumerate()
                .map(|(k, p)| Entry::bare(n + k, p)),
        );
        registry::write(&dir.join(REGISTRY), &entries, self.groups, self.rln)
    }
}

/// A running cluster with a subscriber on every member.
pub struct FaultNet {
    pub nodes: Vec<NodeProc>,
    /// Member i's PeerId.
    pub peers: Vec<String>,
    pub configs: Vec<NodeConfig>,
    pub http: reqwest::Client,
    pub tally: Arc<Mutex<Tally>>,
    pub readers: Vec<JoinHandle<()>>,
    pub started: Instant,
}

impl FaultNet {
    /// Starts `n` members (inside `hosts`' namespaces when given), tells them where the others
    /// listen, waits until all are ready and subscribes to each.
    pub async fn start(
        dir: &Path,
        exe: &Path,
        n: usize,
        hosts: Option<&Hosts>,
        registered: Registered<'_>,
        tune: impl Fn(&mut NodeConfig, usize),
    ) -> anyhow::Result<FaultNet> {
        let started = Instant::now();
        let http = http_client()?;
        let peers = member_keys(dir, n)?;
        let bare: Vec<Entry> = (0..n).map(|i| Entry::bare(i, &peers[i])).collect();
        registered.write(dir, bare)?;
        let mut nodes = Vec::with_capacity(n);
        let mut configs = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("node-{i}");
            let mut cfg = config::node(&name);
            if let Some(h) = hosts {
                let ip = h.addr(i);
                cfg.listen = vec![
                    format!("/ip4/{ip}/tcp/0"),
                    format!("/ip4/{ip}/udp/0/quic-v1"),
                ];
                cfg.http_listen = format!("{ip}:0");
            }
            tune(&mut cfg, i);
            let node = match hosts {
                Some(h) => cluster::spawn_with(h.command(i, exe), dir, &name, &cfg)?,
                None => cluster::spawn(exe, dir, &name, &cfg)?,
            };
            nodes.push(node);
            configs.push(cfg);
        }
        for node in nodes.iter_mut() {
            await_api(node).await?;
        }
        let entries = client::entries(&http, &nodes, &peers).await?;
        registered.write(dir, entries)?;
        wait_ready(&http, &nodes).await?;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut readers = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            readers.push(traffic::subscribe(node, Some(i), tally.clone()).await?);
        }
        Ok(FaultNet {
            nodes,
            peers,
            configs,
            http,
            tally,
            readers,
            started,
        })
    }

    /// Waits (at most `within`) until every member is connected to every other; how long it took.
    pub async fn all_connected(&self, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        let n = self.nodes.len();
        while start.elapsed() < within {
            let mut full = true;
            for node in &self.nodes {
                if client::peer_ids(&self.http, node).await.len() < n - 1 {
                    full = false;
                    break;
                }
            }
            if full {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Waits (at most `within`) until no delivery arrived for `quiet`.
    pub async fn settle(&self, quiet: Duration, within: Duration) {
        let start = Instant::now();
        let count = || self.tally.lock().map(|t| t.delivered.len()).unwrap_or(0);
        let (mut last, mut since) = (count(), Instant::now());
        while start.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = count();
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= quiet {
                return;
            }
        }
    }

    /// (messages caught up, catch-up bytes) summed over the members' metrics.
    pub async fn catch_up_figures(&self) -> (u64, u64) {
        let (mut caught, mut bytes) = (0.0, 0.0);
        for node in &self.nodes {
            let text = client::metrics(&self.http, node).await;
            caught += metric_sum(
                &text,
                "conclave_catchup_messages_total",
                &["reason=\"accepted\""],
            );
            bytes += metric_sum(&text, "conclave_catchup_bytes_total", &[]);
        }
        (caught as u64, bytes as u64)
    }

    /// Every member publishing `args.size`-byte probes `args.rate` times a second.
    pub fn publish(&self, args: &DevnetArgs) -> Publishers {
        Publishers::start(
            &self.http,
            &self.nodes,
            usize::MAX,
            None,
            args.rate,
            args.size,
        )
    }

    pub async fn stop(&mut self) {
        for node in self.nodes.iter_mut() {
            cluster::stop(node).await;
        }
        for r in &self.readers {
            r.abort();
        }
    }
}

/// The books of a fault run: every (message, receiver) pair, and separately those `cut`
/// selects (the fault put them at risk), with when the last of them arrived after `ended_ms`.
pub fn books(
    sent: &[Sent],
    tally: &Tally,
    n: usize,
    cut: impl Fn(&Sent, usize) -> bool,
    ended_ms: u64,
) -> (DeliveryReport, AtRisk) {
    let mut all = DeliveryReport {
        expected: 0,
        delivered: 0,
        duplicates: tally.duplicates,
        lagged: tally.lagged,
        latency_ms: Vec::new(),
        missing: Vec::new(),
    };
    let mut risk = AtRisk {
        expected: 0,
        delivered: 0,
        duplicates: 0,
        last_after_ms: None,
        missing: Vec::new(),
    };
    for s in sent {
        for r in (0..n).filter(|r| *r != s.sender) {
            let got = tally.delivered.get(&(r, s.sender, s.seq));
            all.expected += 1;
            if let Some(l) = got {
                all.delivered += 1;
                all.latency_ms.push(*l);
            } else if all.missing.len() < 10 {
                all.missing
                    .push(format!("node-{}#{} at node-{r}", s.sender, s.seq));
            }
            if !cut(s, r) {
                continue;
            }
            risk.expected += 1;
            match got {
                Some(l) => {
                    risk.delivered += 1;
                    let after = (s.at_ms + l).saturating_sub(ended_ms);
                    risk.last_after_ms = Some(risk.last_after_ms.unwrap_or(0).max(after));
                }
                None if risk.missing.len() < 10 => {
                    risk.missing
                        .push(format!("node-{}#{} at node-{r}", s.sender, s.seq));
                }
                None => {}
            }
            risk.duplicates += tally
                .repeats
                .get(&(r, s.sender, s.seq))
                .copied()
                .unwrap_or(0);
        }
    }
    all.latency_ms.sort_unstable();
    (all, risk)
}

/// Latencies of the deliveries completed before `before_ms` (the baseline), sorted.
pub fn latency_before(sent: &[Sent], tally: &Tally, before_ms: u64) -> Vec<u64> {
    let at: std::collections::HashMap<(usize, u64), u64> =
        sent.iter().map(|s| ((s.sender, s.seq), s.at_ms)).collect();
    let mut out: Vec<u64> = tally
        .delivered
        .iter()
        .filter_map(|((_, from, seq), l)| {
            let sent_at = at.get(&(*from, *seq))?;
            (sent_at + l < before_ms).then_some(*l)
        })
        .collect();
    out.sort_unstable();
    out
}

/// Refuses to run a namespace scenario where namespaces cannot be made, saying why.
pub fn hosts(n: usize) -> anyhow::Result<Hosts> {
    if let Some(reason) = Hosts::unavailable() {
        bail!("this scenario runs each member in its own network namespace: {reason}");
    }
    Hosts::create(n)
}

/// What a fault run measured, for [`Measured::report`].
pub struct Measured {
    pub sent: Vec<Sent>,
    pub all: DeliveryReport,
    pub at_risk: AtRisk,
    pub reconnected: Option<Duration>,
    /// (messages caught up, catch-up bytes).
    pub catch_up: (u64, u64),
    pub latency_before_ms: Vec<u64>,
}

impl Measured {
    /// The scenario's report (printed too): `ok` when every check held.
    pub fn report(
        self,
        kind: &str,
        members: usize,
        fault: String,
        checks: Vec<(String, bool)>,
    ) -> FaultReport {
        let report = FaultReport {
            ok: checks.iter().all(|(_, held)| *held),
            kind: kind.into(),
            members,
            fault,
            published: self.sent.len() as u64,
            expected: self.all.expected,
            delivered: self.all.delivered,
            duplicates: self.all.duplicates,
            missing: self.all.missing,
            at_risk: self.at_risk,
            reconnected_after_ms: self.reconnected.map(|d| d.as_millis() as u64),
            caught_up: self.catch_up.0,
            catchup_bytes: self.catch_up.1,
            latency_before_ms: self.latency_before_ms,
            checks,
        };
        println!();
        print!("{report}");
        report
    }
}
