//! `--scenario partition`: every member on a host of its own (a network namespace), traffic
//! from all of them, then the network splits — about half on each side, packets between the
//! sides silently dropped — for `--duration`, and heals. Every message published on either side
//! during the split must reach every member on the other side exactly once, within seconds of
//! the heal (docs/ARCHITECTURE.md, "Catch-up").

use std::path::Path;
use std::time::Duration;

use conclave_api::FaultReport;

use super::args::DevnetArgs;
use super::common::now_ms;
use super::faults::{self, books, latency_before, FaultNet, Measured, Registered};
use super::traffic::Sent;

/// Traffic before the split (the latency baseline) and after the heal.
const BEFORE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(5);
/// The bound the scenario holds the last caught-up delivery to.
const HEAL_BOUND_MS: u64 = 5_000;

pub async fn run(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<FaultReport> {
    let n = args.nodes;
    let mut hosts = faults::hosts(n)?;
    let cut_at = n.div_ceil(2);
    let side = |i: usize| i < cut_at;
    println!(
        "conclave devnet partition: {n} members on their own hosts, split {cut_at}/{} for {:?}",
        n - cut_at,
        args.duration
    );
    let mut net =
        FaultNet::start(dir, exe, n, Some(&hosts), Registered::default(), |_, _| {}).await?;
    println!(
        "ready {:.1} s after start",
        net.started.elapsed().as_secs_f64()
    );
    let publishers = net.publish(args);
    tokio::time::sleep(BEFORE).await;

    let a: Vec<usize> = (0..cut_at).collect();
    let b: Vec<usize> = (cut_at..n).collect();
    hosts.partition(&[&a, &b])?;
    let split_ms = now_ms();
    println!("split");
    tokio::time::sleep(args.duration).await;
    hosts.heal()?;
    let healed_ms = now_ms();
    println!("healed");
    let reconnected = net.all_connected(Duration::from_secs(60)).await;
    tokio::time::sleep(AFTER.saturating_sub(reconnected.unwrap_or_default())).await;
    let sent = std::mem::take(&mut *publishers.sent.lock().expect("sent lock"));
    publishers.stop().await;
    net.settle(Duration::from_secs(3), Duration::from_secs(30))
        .await;
    let (caught_up, catchup_bytes) = net.catch_up_figures().await;
    let during = |at: u64| (split_ms..healed_ms).contains(&at);
    let (all, at_risk, latency_before_ms) = {
        let tally = net.tally.lock().expect("tally lock");
        let cut = |s: &Sent, r: usize| during(s.at_ms) && side(s.sender) != side(r);
        let (all, at_risk) = books(&sent, &tally, n, cut, healed_ms);
        (all, at_risk, latency_before(&sent, &tally, split_ms))
    };
    net.stop().await;

    let checks = vec![
        (
            "the split cut messages off".to_string(),
            at_risk.expected > 0,
        ),
        (
            "every message reached every member".to_string(),
            all.delivered == all.expected,
        ),
        (
            "no member received a message twice".to_string(),
            all.duplicates == 0,
        ),
        (
            format!("the last message of the split arrived within {HEAL_BOUND_MS} ms of the heal"),
            at_risk.last_after_ms.is_some_and(|ms| ms <= HEAL_BOUND_MS),
        ),
        (
            "every member reconnected to every other".to_string(),
            reconnected.is_some(),
        ),
    ];
    let fault = format!(
        "split {cut_at}/{} for {:.0} s (packets between the sides dropped silently), {} msg/s per member",
        n - cut_at,
        args.duration.as_secs_f64(),
        args.rate
    );
    let measured = Measured {
        sent,
        all,
        at_risk,
        reconnected,
        catch_up: (caught_up, catchup_bytes),
        latency_before_ms,
    };
    Ok(measured.report("partition", n, fault, checks))
}
