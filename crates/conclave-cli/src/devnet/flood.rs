//! `--scenario flood`: strangers flood one member with 1000 connections in a few seconds — half
//! run a full Noise handshake with keys no registry lists, half open TCP, send the start of a
//! handshake and stall (slowloris) — from 500 + 500 loopback addresses, while members keep up
//! their traffic and one member restarts. Every message must still arrive once, a stalled
//! handshake must be dropped within the handshake timeout, the restarted member must get back
//! in, the flooded node's memory must stay bounded, and members' p99 latency at the flooded node
//! must stay within twice what it was before the flood. The strangers run as a process of their
//! own on a CPU the nodes do not use ([`super::strangers`]); on a machine of one CPU they share
//! it, and the latency is then reported, not judged.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use conclave_api::{percentile, FaultReport};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use super::args::DevnetArgs;
use super::client;
use super::cluster::{self, await_api};
use super::common::now_ms;
use super::faults::{books, FaultNet, Measured, Registered};
use super::strangers::{StrangersReport, STALL_BOUND};
use super::traffic;

const BEFORE: Duration = Duration::from_secs(4);
const FLOOD: Duration = Duration::from_secs(8);
const STRANGERS: usize = 500;
/// How far back the restarted member's application asks to be replayed from.
const RESUBSCRIBE_MARGIN_MS: u64 = 2_000;
/// Members' p99 at the flooded node during the flood, at most this many times the p99 before.
const LATENCY_BOUND: u64 = 2;

pub async fn run(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<FaultReport> {
    let n = args.nodes;
    let (victim, restarted) = (0, n - 1);
    println!("conclave devnet flood: {n} members; node-{victim} gets {} stranger connections, node-{restarted} restarts meanwhile", 2 * STRANGERS);
    // Members on addresses of their own, so strangers' addresses are not members'.
    let tune = |cfg: &mut conclave_node::NodeConfig, i: usize| {
        let ip = format!("127.0.0.{}", i + 2);
        cfg.listen = vec![
            format!("/ip4/{ip}/tcp/0"),
            format!("/ip4/{ip}/udp/0/quic-v1"),
        ];
    };
    let mut net = FaultNet::start(dir, exe, n, None, Registered::default(), tune).await?;
    let addr: Multiaddr = client::listen_addrs(&net.http, &net.nodes[victim])
        .await?
        .iter()
        .find(|a| a.contains("/tcp/"))
        .ok_or_else(|| anyhow::anyhow!("node-{victim} does not listen on TCP"))?
        .parse()?;
    let peer = client::peer_id_of(&net.http, &net.nodes[victim]).await?;
    let socket = match (addr.iter().next(), addr.iter().nth(1)) {
        (Some(Protocol::Ip4(ip)), Some(Protocol::Tcp(port))) => SocketAddr::new(ip.into(), port),
        _ => anyhow::bail!("node-{victim} does not listen on TCP/IPv4: {addr}"),
    };
    let rss_before = cluster::usage(&net.nodes[victim]).map(|u| u.peak_rss_kib);
    let publishers = net.publish(args);
    tokio::time::sleep(BEFORE).await;

    let flood_ms = now_ms();
    let strangers = spawn_strangers(
        exe,
        args.attacker_cpu,
        addr.clone().with(Protocol::P2p(peer)),
        socket,
    )?;
    // A member restarts during the flood and must get back in. Its application resubscribes
    // from shortly before the stop: what the node delivered as it stopped may not have reached
    // the application's socket.
    let stopped_ms = now_ms();
    cluster::stop(&mut net.nodes[restarted]).await;
    let _ = std::fs::remove_file(net.nodes[restarted].state.join("api.addr"));
    let cfg = net.configs[restarted].clone();
    net.nodes[restarted] = cluster::spawn(exe, dir, &format!("node-{restarted}-restarted"), &cfg)?;
    await_api(&mut net.nodes[restarted]).await?;
    let back = Instant::now();
    let since = Some(stopped_ms.saturating_sub(RESUBSCRIBE_MARGIN_MS));
    let reader = traffic::subscribe_since(
        &net.nodes[restarted],
        Some(restarted),
        net.tally.clone(),
        since,
    )
    .await?;
    net.readers.push(reader);
    let restarted_peer = client::peer_id_of(&net.http, &net.nodes[restarted]).await?;
    let mut rejoined = None;
    while back.elapsed() < Duration::from_secs(30) {
        if client::peer_ids(&net.http, &net.nodes[victim])
            .await
            .contains(&restarted_peer.to_string())
        {
            rejoined = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = strangers.wait_with_output().await?;
    anyhow::ensure!(
        out.status.success(),
        "the strangers failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shot: StrangersReport = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow::anyhow!("the strangers' report: {e}"))?;
    let flood_end_ms = now_ms();
    tokio::time::sleep(FLOOD.saturating_sub(Duration::from_millis(flood_end_ms - flood_ms))).await;
    let rss_after = cluster::usage(&net.nodes[victim]).map(|u| u.peak_rss_kib);
    let sent = std::mem::take(&mut *publishers.sent.lock().expect("sent lock"));
    publishers.stop().await;
    net.settle(Duration::from_secs(3), Duration::from_secs(20))
        .await;
    let (all, at_risk, before_ms, during_ms) = {
        let tally = net.tally.lock().expect("tally lock");
        let during = |at: u64| (flood_ms..flood_end_ms).contains(&at);
        let to_victim = |s: &traffic::Sent, r: usize| r == victim && during(s.at_ms);
        let (all, at_risk) = books(&sent, &tally, n, to_victim, flood_end_ms);
        let lat = |w: &dyn Fn(u64) -> bool| {
            let mut v: Vec<u64> = sent
                .iter()
                .filter(|s| w(s.at_ms) && s.sender != victim)
                .filter_map(|s| tally.delivered.get(&(victim, s.sender, s.seq)).copied())
                .collect();
            v.sort_unstable();
            v
        };
        (all, at_risk, lat(&|at| at < flood_ms), lat(&during))
    };
    let (caught_up, catchup_bytes) = net.catch_up_figures().await;
    net.stop().await;

    let p99 = |v: &[u64]| percentile(v, 0.99);
    let longest = Duration::from_millis(shot.held_ms.iter().copied().max().unwrap_or_default());
    let (before_p99, during_p99) = (p99(&before_ms), p99(&during_ms));
    let mib =
        |k: Option<u64>| k.map_or("?".to_string(), |k| format!("{:.0} MiB", k as f64 / 1024.0));
    let mut checks = vec![
        ("every member message reached the flooded member".to_string(), at_risk.expected > 0 && at_risk.delivered == at_risk.expected),
        ("every message reached every member, once".to_string(), all.delivered == all.expected && all.duplicates == 0),
        (
            format!("stalled handshakes dropped within {STALL_BOUND:?} (longest {longest:?}; {} refused at once, {} never closed)", shot.refused_at_once, shot.never_closed),
            longest <= STALL_BOUND && shot.never_closed == 0 && shot.held_ms.len() == STRANGERS,
        ),
        (
            format!("the restarted member was back at the flooded one within 10 s ({rejoined:?})"),
            rejoined.is_some_and(|d| d <= Duration::from_secs(10)),
        ),
        (
            format!("the flooded node's peak memory stayed bounded ({} before, {} after)", mib(rss_before), mib(rss_after)),
            matches!((rss_before, rss_after), (Some(b), Some(a)) if a <= b + 256 * 1024),
        ),
    ];
    let latency = format!("members' p99 at the flooded member stayed within {LATENCY_BOUND}× ({before_p99} ms before, {during_p99} ms during)");
    match args.attacker_cpu {
        Some(cpu) => {
            println!("the strangers ran on CPU {cpu}, the nodes on the others");
            checks.push((latency, during_p99 <= LATENCY_BOUND * before_p99.max(1)));
        }
        None => println!("one CPU: the strangers shared it with the nodes, so the latency is only reported: {latency}"),
    }
    let measured = Measured {
        sent,
        all,
        at_risk,
        reconnected: rejoined,
        catch_up: (caught_up, catchup_bytes),
        latency_before_ms: before_ms,
    };
    Ok(measured.report("flood", n, format!(
            "{} strangers from {} addresses in {:.1} s at node-{victim}: {} of {STRANGERS} full handshakes finished (then refused by the gate), {STRANGERS} stalled; node-{restarted} restarted meanwhile",
            2 * STRANGERS,
            2 * STRANGERS,
            (flood_end_ms - flood_ms) as f64 / 1000.0,
            shot.finished,
        ), checks))
}

/// Starts the strangers (`conclave strangers`) against the flooded node, on `cpu` when given.
fn spawn_strangers(
    exe: &Path,
    cpu: Option<usize>,
    dial: Multiaddr,
    stall: SocketAddr,
) -> anyhow::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("strangers")
        .args(["--dial", &dial.to_string(), "--stall", &stall.to_string()])
        .args(["--count", &STRANGERS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cpu) = cpu {
        cmd.args(["--cpu", &cpu.to_string()]);
    }
    Ok(cmd.spawn()?)
}
