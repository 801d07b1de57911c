//! The broadcast scenarios: a fixed offered rate of messages, senders in turn, every delivery
//! timed from publish to the receiving application (one clock, CLOCK_MONOTONIC, whichever process
//! stamps). Latency runs one rate; the throughput search climbs a ladder of rates on the same
//! cluster until p99 exceeds its bound or deliveries go missing.

use std::time::Duration;

use serde::Serialize;

use crate::cluster::Cluster;
use crate::stats::{mono_ns, RunFigures, Samples};

/// Header of every bench payload: step (u8), sender (u16), sequence (u32), send time
/// ([`mono_ns`]). The step tells a late delivery of an earlier step from this step's. A node
/// process reports a delivery by this header alone.
pub const HEADER: usize = 1 + 2 + 4 + 8;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct BroadcastParams {
    pub nodes: usize,
    pub size: usize,
    /// Messages per second offered, all senders together.
    pub rate: u32,
    pub duration_s: f64,
}

/// Lets the mesh settle (a few heartbeats) after start; the same for every system.
pub const SETTLE: Duration = Duration::from_secs(2);
/// After the last publish a step waits until every delivery arrived, or none arrived for
/// `QUIET`, or `DRAIN_CAP` passed: "delivered" means eventually delivered, not delivered within a
/// fixed grace, so an overloaded system shows as slow, and only a lossy one as losing messages.
const QUIET: Duration = Duration::from_millis(500);
const DRAIN_CAP: Duration = Duration::from_secs(10);

/// One measurement window on a running cluster: publishes `rate × duration` messages, then
/// waits out the drain, collecting this step's deliveries.
pub async fn step(cluster: &mut Cluster, p: BroadcastParams, step: u8) -> anyhow::Result<Samples> {
    let cpu = cluster.cpu_us().await?;
    let total = (p.rate as f64 * p.duration_s).round() as u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / p.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let pad = vec![0xa5u8; p.size.saturating_sub(HEADER)];
    let mut latencies_us = Vec::with_capacity((total * p.nodes as u64) as usize);
    let mut sent = 0u64;
    let expected = total * (p.nodes as u64 - 1);
    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
    let mut drain_cap = far;
    let quiet = tokio::time::sleep_until(far);
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            _ = tick.tick(), if sent < total => {
                let sender = (sent % p.nodes as u64) as usize;
                let mut payload = Vec::with_capacity(p.size.max(HEADER));
                payload.push(step);
                payload.extend((sender as u16).to_be_bytes());
                payload.extend((sent as u32).to_be_bytes());
                payload.extend(mono_ns().to_be_bytes());
                payload.extend(&pad);
                let _ = cluster.publish[sender].send(payload).await;
                sent += 1;
                if sent == total {
                    let now = tokio::time::Instant::now();
                    drain_cap = now + DRAIN_CAP;
                    quiet.as_mut().reset(now + QUIET);
                }
            }
            d = cluster.deliveries.recv() => match d {
                Some(d) if d.payload.len() >= HEADER && d.payload[0] == step => {
                    let sent_at = u64::from_be_bytes(d.payload[7..15].try_into().expect("8 bytes"));
                    latencies_us.push(d.at_ns.saturating_sub(sent_at) / 1000);
                    if sent == total {
                        if latencies_us.len() as u64 >= expected {
                            break;
                        }
                        let next = (tokio::time::Instant::now() + QUIET).min(drain_cap);
                        quiet.as_mut().reset(next);
                    }
                }
                Some(_) => {}
                None => break,
            },
            _ = &mut quiet => break,
        }
    }
    Ok(Samples {
        latencies_us,
        expected,
        cpu_us: cluster.cpu_us().await?.saturating_sub(cpu),
    })
}

/// What a throughput search found on one cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Ladder {
    /// The highest offered rate that met the bound (0 if none did).
    pub sustained: u32,
    /// Every rung tried: (offered msg/s, its figures).
    pub rungs: Vec<(u32, RunFigures)>,
}

/// Climbs `rates` until a rung's p99 exceeds `p99_bound_ms` or its delivery ratio drops below
/// `min_delivery`.
pub async fn ladder(
    cluster: &mut Cluster,
    base: BroadcastParams,
    rates: &[u32],
    p99_bound_ms: f64,
    min_delivery: f64,
) -> anyhow::Result<Ladder> {
    let mut out = Ladder {
        sustained: 0,
        rungs: Vec::new(),
    };
    for (k, &rate) in rates.iter().enumerate() {
        let p = BroadcastParams { rate, ..base };
        let f = step(cluster, p, 100 + k as u8).await?.figures();
        out.rungs.push((rate, f));
        if f.p99_ms > p99_bound_ms || f.delivery_ratio < min_delivery {
            break;
        }
        out.sustained = rate;
    }
    Ok(out)
}
