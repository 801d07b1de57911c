//! `--scenario link-cuts`: every member on a host of its own (a network namespace), and a fixed
//! share of member pairs (`--cut-pairs`) unable to reach each other for the whole run — their
//! packets to each other vanish, so their dials time out — while the network stays connected.
//! Under traffic from every member, every message must still reach every member exactly once,
//! through the others; the report gives delivery and latency, overall and between the pairs cut
//! apart, beside a run with no cut (`--cut-pairs 0`).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use conclave_api::LinkCutsReport;

use super::args::DevnetArgs;
use super::client;
use super::faults::{self, books, FaultNet, Registered};

/// How long every member has to connect to every member it can reach.
const MESH: Duration = Duration::from_secs(60);

/// Which pairs to cut: `round(fraction × pairs)` of the `n` members' pairs, taken in a fixed
/// pseudo-random order (the same cuts on every run of the same size), skipping any cut that
/// would leave a member with fewer than two links or split the network.
pub fn choose_cuts(n: usize, fraction: f64) -> anyhow::Result<Vec<(usize, usize)>> {
    if !(0.0..=0.5).contains(&fraction) {
        bail!("--cut-pairs must be between 0 and 0.5 (got {fraction})");
    }
    let mut pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .collect();
    let want = (fraction * pairs.len() as f64).round() as usize;
    // A fixed xorshift shuffle: reproducible, and no two runs compare different cuts.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for k in (1..pairs.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        pairs.swap(k, (state % (k as u64 + 1)) as usize);
    }
    let mut linked: Vec<HashSet<usize>> = (0..n)
        .map(|i| (0..n).filter(|&j| j != i).collect())
        .collect();
    let mut cut = Vec::new();
    for (i, j) in pairs {
        if cut.len() == want {
            break;
        }
        if linked[i].len() <= 2 || linked[j].len() <= 2 {
            continue;
        }
        linked[i].remove(&j);
        linked[j].remove(&i);
        if connected(&linked) {
            cut.push((i, j));
        } else {
            linked[i].insert(j);
            linked[j].insert(i);
        }
    }
    if cut.len() < want {
        bail!(
            "cannot cut {want} of {n} members' pairs and keep every member with two links in one network (cut {})",
            cut.len()
        );
    }
    cut.sort_unstable();
    Ok(cut)
}

fn connected(linked: &[HashSet<usize>]) -> bool {
    let mut seen = vec![false; linked.len()];
    let mut stack = vec![0];
    seen[0] = true;
    while let Some(i) = stack.pop() {
        for &j in &linked[i] {
            if !seen[j] {
                seen[j] = true;
                stack.push(j);
            }
        }
    }
    seen.iter().all(|s| *s)
}

pub async fn run(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<LinkCutsReport> {
    let n = args.nodes;
    let cut = choose_cuts(n, args.cut_pairs)?;
    let apart = |a: usize, b: usize| cut.contains(&(a.min(b), a.max(b)));
    let reachable = |i: usize| (0..n).filter(|&j| j != i && !apart(i, j)).count();
    let mut hosts = faults::hosts(n)?;
    println!(
        "conclave devnet link-cuts: {n} members on their own hosts, {} of {} pairs cut",
        cut.len(),
        n * (n - 1) / 2
    );
    hosts.cut_links(&cut)?;
    // A member is ready once connected to every member it can reach.
    let mut net = FaultNet::start(dir, exe, n, Some(&hosts), Registered::default(), |c, i| {
        c.ready_quorum = Some(reachable(i));
    })
    .await?;
    let meshed = meshed(&net, &reachable).await;
    println!(
        "ready {:.1} s after start; every member connected to all it can reach: {}",
        net.started.elapsed().as_secs_f64(),
        meshed.map_or("no".into(), |d| format!("after {:.1} s", d.as_secs_f64()))
    );
    let publishers = net.publish(args);
    tokio::time::sleep(args.duration / 2).await;
    let mut across = connected_across(&net, &apart).await;
    tokio::time::sleep(args.duration - args.duration / 2).await;
    let sent = std::mem::take(&mut *publishers.sent.lock().expect("sent lock"));
    publishers.stop().await;
    net.settle(Duration::from_secs(3), Duration::from_secs(30))
        .await;
    across.extend(connected_across(&net, &apart).await);
    across.sort_unstable();
    across.dedup();
    let (all, relayed) = {
        let tally = net.tally.lock().expect("tally lock");
        books(&sent, &tally, n, |s, r| apart(s.sender, r), 0)
    };
    let relayed_latency_ms = {
        let tally = net.tally.lock().expect("tally lock");
        let mut l: Vec<u64> = tally
            .delivered
            .iter()
            .filter(|((r, from, _), _)| apart(*r, *from))
            .map(|(_, l)| *l)
            .collect();
        l.sort_unstable();
        l
    };
    net.stop().await;
    let checks = vec![
        (
            "every member connected to every member it can reach".to_string(),
            meshed.is_some(),
        ),
        (
            "no pair cut apart was ever connected".to_string(),
            across.is_empty(),
        ),
        (
            "every message reached every member".to_string(),
            all.delivered == all.expected && all.expected > 0,
        ),
        (
            "no member received a message twice".to_string(),
            all.duplicates == 0,
        ),
    ];
    let report = LinkCutsReport {
        ok: checks.iter().all(|(_, held)| *held),
        members: n,
        fraction: args.cut_pairs,
        cut,
        rate: args.rate,
        published: sent.len() as u64,
        expected: all.expected,
        delivered: all.delivered,
        duplicates: all.duplicates,
        missing: all.missing,
        relayed_expected: relayed.expected,
        relayed_delivered: relayed.delivered,
        latency_ms: all.latency_ms,
        relayed_latency_ms,
        connected_across_cuts: across,
        checks,
    };
    println!();
    print!("{report}");
    Ok(report)
}

/// Waits until every member is connected to as many members as it can reach; how long it took.
async fn meshed(net: &FaultNet, reachable: &impl Fn(usize) -> usize) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < MESH {
        let mut all = true;
        for (i, node) in net.nodes.iter().enumerate() {
            if client::peer_ids(&net.http, node).await.len() < reachable(i) {
                all = false;
                break;
            }
        }
        if all {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The pairs cut apart that are connected now (there must be none).
async fn connected_across(
    net: &FaultNet,
    apart: &impl Fn(usize, usize) -> bool,
) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for (i, node) in net.nodes.iter().enumerate() {
        let peers = client::peer_ids(&net.http, node).await;
        for (j, peer) in net.peers.iter().enumerate() {
            if i < j && apart(i, j) && peers.contains(peer) {
                found.push((i, j));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_the_asked_share_reproducible_and_keep_the_network_whole() {
        let cut = choose_cuts(15, 0.3).unwrap();
        assert_eq!(cut.len(), 32, "30 % of 105 pairs, rounded");
        assert_eq!(
            cut,
            choose_cuts(15, 0.3).unwrap(),
            "the same cuts every run"
        );
        let mut linked: Vec<HashSet<usize>> = (0..15)
            .map(|i| (0..15).filter(|&j| j != i).collect())
            .collect();
        for &(i, j) in &cut {
            assert!(i < j);
            linked[i].remove(&j);
            linked[j].remove(&i);
        }
        assert!(connected(&linked));
        assert!(linked.iter().all(|l| l.len() >= 2));
        assert!(choose_cuts(15, 0.0).unwrap().is_empty());
        assert!(choose_cuts(15, 0.6).is_err());
        // Four members have six pairs: two disjoint cuts leave each with two links; a third
        // would leave one with a single link, so half the pairs cannot be cut.
        assert_eq!(choose_cuts(4, 0.3).unwrap().len(), 2);
        assert!(choose_cuts(4, 0.5).is_err());
    }
}
