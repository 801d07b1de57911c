//! `--scenario flood`: strangers flood one member with 1000 connections in a few seconds — half
//! run a full Noise handshake with keys no registry lists, half open TCP, send the start of a
//! handshake and stall (slowloris) — from 500 + 500 loopback addresses, while members keep up
//! their traffic and one member restarts. Every message must still arrive once, a stalled
//! handshake must be dropped within the handshake timeout, the restarted member must get back
//! in and the flooded node's memory must stay bounded; members' latency at the flooded node is
//! reported beside them (the strangers run on the same machine and take CPU from the nodes, so
//! it is a figure, not a verdict).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_api::{percentile, FaultReport};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{dummy, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::args::DevnetArgs;
use super::client;
use super::cluster::{self, await_api};
use super::common::now_ms;
use super::faults::{books, FaultNet, Measured, Registered};
use super::traffic;

const BEFORE: Duration = Duration::from_secs(4);
const FLOOD: Duration = Duration::from_secs(8);
const STRANGERS: usize = 500;
/// A stalled handshake is dropped by the node's handshake timeout (5 s) or refused at once.
const STALL_BOUND: Duration = Duration::from_secs(7);

/// The strangers' source addresses: 127.1.x.y, one per connection.
fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1 + (i / 250) as u8, 0, 1 + (i % 250) as u8)
}

/// Opens TCP from `from`, sends the first bytes of a handshake and waits for the node to close;
/// how long it held on (`None`: not even connected, or still open after `STALL_BOUND` × 2).
async fn stall(from: Ipv4Addr, to: SocketAddr) -> Option<Duration> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(from.into(), 0)).ok()?;
    let mut stream = socket.connect(to).await.ok()?;
    let start = Instant::now();
    let _ = stream.write_all(b"\x13/multistream/1.0.0\n").await;
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(STALL_BOUND * 2, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.ok().map(|_| start.elapsed())
}

/// A stranger with a fresh key that dials from `from` and runs the whole handshake; whether
/// it finished one (the gate then closes the connection).
async fn handshake(from: Ipv4Addr, to: Multiaddr) -> bool {
    let Ok(builder) = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
    else {
        return false;
    };
    let Ok(b) = builder.with_behaviour(|_| dummy::Behaviour);
    let mut swarm = b
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(5)))
        .build();
    let listen: Multiaddr = format!("/ip4/{from}/tcp/0").parse().expect("an address");
    if swarm.listen_on(listen).is_err() || swarm.dial(to).is_err() {
        return false;
    }
    let mut established = false;
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => established = true,
                SwarmEvent::ConnectionClosed { .. }
                | SwarmEvent::OutgoingConnectionError { .. } => return,
                _ => {}
            }
        }
    })
    .await;
    established
}

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
    let refused_at_once = Arc::new(AtomicU64::new(0));
    let mut stalls = Vec::new();
    let mut shakes = Vec::new();
    let dial = addr.clone().with(Protocol::P2p(peer));
    for i in 0..STRANGERS {
        stalls.push(tokio::spawn(stall(source(i), socket)));
        shakes.push(tokio::spawn(handshake(source(STRANGERS + i), dial.clone())));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // A member restarts during the flood and must get back in.
    cluster::stop(&mut net.nodes[restarted]).await;
    let _ = std::fs::remove_file(net.nodes[restarted].state.join("api.addr"));
    let cfg = net.configs[restarted].clone();
    net.nodes[restarted] = cluster::spawn(exe, dir, &format!("node-{restarted}-restarted"), &cfg)?;
    await_api(&mut net.nodes[restarted]).await?;
    let back = Instant::now();
    let reader =
        traffic::subscribe(&net.nodes[restarted], Some(restarted), net.tally.clone()).await?;
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
    let mut held = Vec::new();
    let mut never_connected = 0;
    for s in stalls {
        match s.await.ok().flatten() {
            Some(d) if d < Duration::from_millis(200) => {
                refused_at_once.fetch_add(1, Ordering::Relaxed);
                held.push(d);
            }
            Some(d) => held.push(d),
            None => never_connected += 1,
        }
    }
    let mut finished = 0;
    for h in shakes {
        finished += usize::from(h.await.unwrap_or(false));
    }
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

    held.sort_unstable();
    let longest = held.last().copied().unwrap_or_default();
    let p99 = |v: &[u64]| percentile(v, 0.99);
    let mib =
        |k: Option<u64>| k.map_or("?".to_string(), |k| format!("{:.0} MiB", k as f64 / 1024.0));
    let checks = vec![
        ("every member message reached the flooded member".to_string(), at_risk.expected > 0 && at_risk.delivered == at_risk.expected),
        ("every message reached every member, once".to_string(), all.delivered == all.expected && all.duplicates == 0),
        (
            format!("stalled handshakes dropped within {STALL_BOUND:?} (longest {longest:?}; {} refused at once, {never_connected} never connected)", refused_at_once.load(Ordering::Relaxed)),
            longest <= STALL_BOUND && held.len() + never_connected == STRANGERS,
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
    // Reported, not judged: on one machine the strangers' own handshakes take CPU from the
    // nodes, so the ratio measures the machine as much as the node.
    println!(
        "members' latency at the flooded member: p99 {} ms before, {} ms during the flood",
        p99(&before_ms),
        p99(&during_ms)
    );
    let measured = Measured {
        sent,
        all,
        at_risk,
        reconnected: rejoined,
        catch_up: (caught_up, catchup_bytes),
        latency_before_ms: before_ms,
    };
    Ok(measured.report("flood", n, format!(
            "{} strangers from {} addresses in {:.1} s at node-{victim}: {finished} of {STRANGERS} full handshakes finished (then refused by the gate), {STRANGERS} stalled; node-{restarted} restarted meanwhile",
            2 * STRANGERS,
            2 * STRANGERS,
            (flood_end_ms - flood_ms) as f64 / 1000.0,
        ), checks))
}
