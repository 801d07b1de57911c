//! The flood scenario's attacker, a process of its own (`conclave strangers`, hidden): `count`
//! strangers run a full Noise handshake with keys no registry lists, and `count` open TCP, send
//! the start of a handshake and stall (slowloris), each from its own loopback address. It
//! prints a [`StrangersReport`] as JSON on stdout.
//!
//! On a machine of several CPUs it runs on the last one and the devnet (so every node it starts)
//! on the others: an attacker's handshakes cost the attacker's CPU, not the members', and the
//! members' latency under the flood then measures what the flood costs the flooded node.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use libp2p::swarm::{dummy, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A stalled handshake is dropped by the node's handshake timeout (5 s) or refused at once.
pub const STALL_BOUND: Duration = Duration::from_secs(7);
/// A stall the node answered this fast was refused before any handshake.
const AT_ONCE: Duration = Duration::from_millis(200);

/// `conclave strangers`: what to flood.
#[derive(Debug, Clone, Args)]
pub struct StrangersArgs {
    /// The flooded node's TCP address with its `/p2p/` PeerId (full handshakes).
    #[arg(long)]
    pub dial: Multiaddr,
    /// The same node's TCP socket (stalled handshakes).
    #[arg(long)]
    pub stall: SocketAddr,
    /// Strangers of each kind.
    #[arg(long, default_value_t = 500)]
    pub count: usize,
    /// Run on this CPU only.
    #[arg(long)]
    pub cpu: Option<usize>,
}

/// What the strangers saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StrangersReport {
    /// How long the node held each stalled connection open, ms (connected ones only).
    pub held_ms: Vec<u64>,
    /// Stalled connections the node closed within 200 ms (refused before any handshake).
    pub refused_at_once: usize,
    /// Stalls that never connected, or that the node kept open past twice the bound.
    pub never_closed: usize,
    /// Full handshakes that finished (the gate then closes them).
    pub finished: usize,
    /// From the first connection to the last one's end, ms.
    pub took_ms: u64,
}

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

/// Floods: `count` of each kind, 100 connections every 200 ms.
pub async fn run(args: StrangersArgs) -> StrangersReport {
    let start = Instant::now();
    let (mut stalls, mut shakes) = (Vec::new(), Vec::new());
    for i in 0..args.count {
        stalls.push(tokio::spawn(stall(source(i), args.stall)));
        let from = source(args.count + i);
        shakes.push(tokio::spawn(handshake(from, args.dial.clone())));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut report = StrangersReport::default();
    for s in stalls {
        match s.await.ok().flatten() {
            Some(d) => {
                report.refused_at_once += usize::from(d < AT_ONCE);
                report.held_ms.push(d.as_millis() as u64);
            }
            None => report.never_closed += 1,
        }
    }
    for h in shakes {
        report.finished += usize::from(h.await.unwrap_or(false));
    }
    report.took_ms = start.elapsed().as_millis() as u64;
    report
}

/// The CPUs of this machine's CPU set, when it has more than one: (all but the last, the last).
fn split_cpus() -> anyhow::Result<Option<(Vec<usize>, usize)>> {
    let set = nix::sched::sched_getaffinity(Pid::from_raw(0))?;
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap_or(false))
        .collect();
    Ok(match cpus.split_last() {
        Some((last, rest)) if !rest.is_empty() => Some((rest.to_vec(), *last)),
        _ => None,
    })
}

fn pin(cpus: &[usize]) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    for c in cpus {
        set.set(*c)?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(())
}

/// Before any thread starts: the devnet of the flood scenario, and every node it starts,
/// leave the last CPU to the strangers. Returns that CPU (none: one CPU, nothing pinned).
pub fn leave_last_cpu() -> anyhow::Result<Option<usize>> {
    let Some((rest, last)) = split_cpus()? else {
        return Ok(None);
    };
    pin(&rest)?;
    Ok(Some(last))
}

/// Before any thread starts: the strangers move to `cpu` (the one the devnet left free).
pub fn take_cpu(cpu: usize) -> anyhow::Result<()> {
    pin(&[cpu])
}
