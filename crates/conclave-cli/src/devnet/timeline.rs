//! The course of the traffic in the main job: node-0's key rotation at a quarter of the run (on a
//! chain), the victim's removal at half-time and its eviction, a status line every second.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use conclave_api::{percentile, PeersAnswer, RotationReport};
use conclave_core::{GroupId, PeerId};
use conclave_registry::RlnEntry;

use super::chain::ChainNet;
use super::client::{self, peer_ids};
use super::cluster::NodeProc;
use super::common::now_ms;
use super::registry::{self, Entry};
use super::traffic::{Publishers, Tally, VictimMode};

/// How long members have to evict the removed member.
const EVICTION: Duration = Duration::from_secs(10);

/// Where the removal happens.
pub enum Registry<'a> {
    /// Rewriting the members' registry file without the victim.
    File {
        path: &'a Path,
        entries: &'a [Entry],
        groups: &'a [(GroupId, Vec<usize>)],
        rln: &'a [RlnEntry],
    },
    /// Revoking the victim's key on-chain (node-0 rotates its key there too).
    Chain(&'a ChainNet),
}

/// What the traffic runs on.
pub struct Course<'a> {
    pub http: &'a reqwest::Client,
    pub nodes: &'a [NodeProc],
    pub intruder: &'a NodeProc,
    pub peers: &'a [String],
    pub registry: Registry<'a>,
    pub publishers: &'a Publishers,
    pub tally: &'a Mutex<Tally>,
    pub duration: Duration,
}

/// Where the removal stands.
#[derive(Clone, Copy)]
enum Phase {
    /// Before half-time: the victim is a member like any other.
    Member,
    /// Removed at `since`; waiting until no member is connected to it.
    Evicting { since: Instant },
    /// Evicted after `eviction`, or not within [`EVICTION`] (none).
    Over { eviction: Option<Duration> },
}

/// A key rotation in progress or done.
struct Rotation {
    to: PeerId,
    at: Instant,
    done: Option<Duration>,
}

/// What happened during the traffic.
pub struct Outcome {
    /// From the removal's cause to every member having evicted the victim.
    pub eviction: Option<Duration>,
    pub rotation: Option<RotationReport>,
    /// When the victim went quiet (unix ms); it receives nothing that counts from then on.
    pub quiet_at_ms: u64,
}

impl Course<'_> {
    fn victim(&self) -> usize {
        self.nodes.len() - 1
    }

    /// Runs the traffic for its duration.
    pub async fn run(&self) -> anyhow::Result<Outcome> {
        let start = Instant::now();
        let mut quiet_at_ms = u64::MAX;
        let mut phase = Phase::Member;
        let mut rotation = None;
        let mut next_status = start + Duration::from_secs(1);
        while start.elapsed() < self.duration {
            let t = start.elapsed();
            if let Registry::Chain(chain) = self.registry {
                self.rotate(chain, &mut rotation, t).await?;
            }
            if matches!(phase, Phase::Member) && t >= self.duration / 2 {
                // Quiesce the victim so nothing of its own is in flight, then remove it.
                self.publishers.set_victim_mode(VictimMode::Quiet);
                quiet_at_ms = now_ms();
                tokio::time::sleep(Duration::from_secs(1)).await;
                phase = Phase::Evicting {
                    since: self.remove().await?,
                };
            }
            if let Phase::Evicting { since } = phase {
                phase = self.check_eviction(since).await;
            }
            if Instant::now() >= next_status {
                next_status += Duration::from_secs(1);
                self.print_status(t).await;
            }
            let pause = match phase {
                Phase::Evicting { .. } => 10,
                _ => 50,
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Ok(Outcome {
            eviction: match phase {
                Phase::Over { eviction } => eviction,
                _ => None,
            },
            rotation: rotation.map(|r: Rotation| RotationReport {
                to: r.to.to_string(),
                after_ms: r.done.map(|d| d.as_millis() as u64),
            }),
            quiet_at_ms,
        })
    }

    /// At a quarter of the run node-0's operator rotates its key; then waits for node-0 to run
    /// under the new one.
    async fn rotate(
        &self,
        chain: &ChainNet,
        rotation: &mut Option<Rotation>,
        t: Duration,
    ) -> anyhow::Result<()> {
        if rotation.is_none() && t >= self.duration / 4 {
            // A grace of 10 blocks: node-0 moves to its new key before the old one stops.
            let to = chain.rotate_node0(&self.peers[0], 10).await?;
            *rotation = Some(Rotation {
                to,
                at: Instant::now(),
                done: None,
            });
        }
        if let Some(r) = rotation.as_mut().filter(|r| r.done.is_none()) {
            let url = self.nodes[0].url("/v1/peers");
            if let Ok((_, peers)) = client::get::<PeersAnswer>(self.http, &url).await {
                if peers.local == r.to.to_string() {
                    r.done = Some(r.at.elapsed());
                    println!(
                        "node-0 now runs under {} ({} ms after the rotation was mined)",
                        r.to,
                        r.at.elapsed().as_millis()
                    );
                }
            }
        }
        Ok(())
    }

    /// Removes the victim; returns when the removal took effect (the file written, or the
    /// block that makes the revocation final seen).
    async fn remove(&self) -> anyhow::Result<Instant> {
        let victim = self.victim();
        match &self.registry {
            Registry::Chain(chain) => {
                let (block, seen) = chain.revoke_victim(&self.peers[victim]).await?;
                println!("block {block} makes the revocation final");
                Ok(seen)
            }
            Registry::File {
                path,
                entries,
                groups,
                rln,
            } => {
                let remaining: Vec<Entry> = entries
                    .iter()
                    .filter(|e| e.index != victim)
                    .cloned()
                    .collect();
                registry::write(path, &remaining, groups, rln)?;
                println!(
                    "removed node-{victim} ({}) from the registry",
                    self.peers[victim]
                );
                Ok(Instant::now())
            }
        }
    }

    /// Whether every member has evicted the victim; after [`EVICTION`] the wait is over anyway.
    async fn check_eviction(&self, since: Instant) -> Phase {
        let victim = self.victim();
        let mut still = 0;
        for node in &self.nodes[..victim] {
            if peer_ids(self.http, node)
                .await
                .contains(&self.peers[victim])
            {
                still += 1;
            }
        }
        if still == 0 {
            let took = since.elapsed();
            let cause = match self.registry {
                Registry::Chain(_) => "the block that made the revocation final",
                Registry::File { .. } => "the registry edit",
            };
            println!(
                "node-{victim} evicted by every member {} ms after {cause}",
                took.as_millis()
            );
            self.publishers.set_victim_mode(VictimMode::Rogue);
            Phase::Over {
                eviction: Some(took),
            }
        } else if since.elapsed() > EVICTION {
            println!("node-{victim} still connected to {still} members 10 s after removal");
            Phase::Over { eviction: None }
        } else {
            Phase::Evicting { since }
        }
    }

    async fn print_status(&self, t: Duration) {
        let mut counts = Vec::new();
        for node in self.nodes {
            counts.push(peer_ids(self.http, node).await.len().to_string());
        }
        let intruder_peers = peer_ids(self.http, self.intruder).await.len();
        let (delivered, mut lat) = {
            let t = self.tally.lock().expect("tally lock");
            (
                t.delivered.len(),
                t.delivered.values().copied().collect::<Vec<_>>(),
            )
        };
        lat.sort_unstable();
        let published = self.publishers.sent.lock().expect("sent lock").len();
        println!(
            "t={:>3}s peers=[{}] published {published} deliveries {delivered} p50 {} ms p99 {} ms intruder peers {intruder_peers}",
            t.as_secs(),
            counts.join(","),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
        );
    }
}
