//! The broadcast-latency scenario: a fixed offered rate of messages, senders in turn, every
//! delivery timed from publish to the receiving application (one clock: the same process).

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::cluster::Cluster;
use crate::stats::Samples;

/// Header of every bench payload: sender (u16), sequence (u32), send time since the run's start (ns).
const HEADER: usize = 2 + 4 + 8;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct BroadcastParams {
    pub nodes: usize,
    pub size: usize,
    /// Messages per second offered, all senders together.
    pub rate: u32,
    pub duration_s: u64,
}

/// Lets the mesh settle (a few heartbeats) before measuring; the same for every system.
const SETTLE: Duration = Duration::from_secs(2);
/// Time for in-flight messages after the last publish.
const DRAIN: Duration = Duration::from_secs(2);

pub async fn run(mut cluster: Cluster, p: BroadcastParams) -> Samples {
    tokio::time::sleep(SETTLE).await;
    let base = Instant::now();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let mut deliveries =
        std::mem::replace(&mut cluster.deliveries, tokio::sync::mpsc::channel(1).1);
    let collector = tokio::spawn(async move {
        let mut latencies = Vec::new();
        loop {
            tokio::select! {
                d = deliveries.recv() => match d {
                    Some((_, payload)) if payload.len() >= HEADER => {
                        let sent = u64::from_be_bytes(payload[6..14].try_into().expect("8 bytes"));
                        let now = base.elapsed().as_nanos() as u64;
                        latencies.push(now.saturating_sub(sent) / 1000);
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = &mut stop_rx => break,
            }
        }
        latencies
    });
    let total = p.rate as u64 * p.duration_s;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / p.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let pad = vec![0xa5u8; p.size.saturating_sub(HEADER)];
    for k in 0..total {
        tick.tick().await;
        let sender = (k % p.nodes as u64) as usize;
        let mut payload = Vec::with_capacity(p.size.max(HEADER));
        payload.extend((sender as u16).to_be_bytes());
        payload.extend((k as u32).to_be_bytes());
        payload.extend((base.elapsed().as_nanos() as u64).to_be_bytes());
        payload.extend(&pad);
        let _ = cluster.publish[sender].send(payload).await;
    }
    tokio::time::sleep(DRAIN).await;
    let _ = stop_tx.send(());
    let latencies_us = collector.await.unwrap_or_default();
    Samples {
        latencies_us,
        expected: total * (p.nodes as u64 - 1),
    }
}
