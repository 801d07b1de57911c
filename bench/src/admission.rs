//! Connection admission: from a dial to a Conclave node (TCP, Noise, Yamux, then the membership
//! gate) until a member is in, and until a stranger is out — beside the same dial to a libp2p node
//! with no gate — and the CPU a refusal costs. Everything runs in this process on loopback, so
//! the CPU figure covers both ends of each refused connection.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use conclave_core::{Multiaddr, OperatorId, PeerId};
use conclave_net::{NetConfig, NetworkService, TransportKind};
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, ping, tcp, yamux, Swarm, SwarmBuilder};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::watch;

use crate::stats::{own_usage, percentile, Spread};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct AdmissionParams {
    /// Dials per kind per repetition.
    pub dials: usize,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct AdmissionRun {
    pub member_p50_ms: f64,
    pub stranger_p50_ms: f64,
    pub ungated_p50_ms: f64,
    pub refusal_cpu_us: f64,
}

#[derive(Serialize)]
pub struct AdmissionRow {
    pub params: AdmissionParams,
    pub runs: Vec<AdmissionRun>,
    pub member_p50_ms: Spread,
    pub stranger_p50_ms: Spread,
    pub ungated_p50_ms: Spread,
    pub refusal_cpu_us: Spread,
}

/// A bare libp2p node on the same transport as Conclave's (ping only): the dialer, and the
/// ungated target.
fn bare(key: Keypair) -> anyhow::Result<Swarm<ping::Behaviour>> {
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| ping::Behaviour::default())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build())
}

#[derive(PartialEq)]
enum Want {
    /// The connection comes up (and stays: the gate let it in).
    Admitted,
    /// The connection is refused or closed by the target.
    Refused,
}

/// Dials `target` `n` times from `dialer`, one at a time; the time of each dial until `want`.
async fn dial_times(
    dialer: &mut Swarm<ping::Behaviour>,
    target: PeerId,
    addr: &Multiaddr,
    n: usize,
    want: Want,
) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        dialer.dial(addr.clone().with_p2p(target).expect("a plain address"))?;
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match dialer.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. }
                        if peer_id == target && want == Want::Admitted =>
                    {
                        return Ok(start.elapsed());
                    }
                    SwarmEvent::ConnectionClosed { peer_id, .. }
                        if peer_id == target && want == Want::Refused =>
                    {
                        return Ok(start.elapsed());
                    }
                    SwarmEvent::OutgoingConnectionError { .. } if want == Want::Refused => {
                        return Ok(start.elapsed());
                    }
                    SwarmEvent::ConnectionClosed { peer_id, cause, .. } if peer_id == target => {
                        return Err(anyhow::anyhow!(
                            "a member's connection was closed: {cause:?}"
                        ));
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        return Err(anyhow::anyhow!("a member's dial failed: {error}"));
                    }
                    _ => {}
                }
            }
        })
        .await
        .context("a dial got no answer within 10 s")??;
        out.push(outcome.as_secs_f64() * 1000.0);
        if want == Want::Admitted {
            let _ = dialer.disconnect_peer_id(target);
            // Wait for the close, so the next dial is a new connection.
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if let SwarmEvent::ConnectionClosed { peer_id, .. } =
                        dialer.select_next_some().await
                    {
                        if peer_id == target {
                            return;
                        }
                    }
                }
            })
            .await;
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

async fn run(p: AdmissionParams) -> anyhow::Result<AdmissionRun> {
    // The Conclave target knows itself and one other member, whose key the prober dials with.
    let target_key = Keypair::generate_ed25519();
    let member_key = Keypair::generate_ed25519();
    let target = target_key.public().to_peer_id();
    let (_view_tx, view_rx) = watch::channel(crate::conclave::view(
        &[
            (target, OperatorId([1; 20])),
            (member_key.public().to_peer_id(), OperatorId([2; 20])),
        ],
        &[],
    ));
    let mut c = NetConfig::new(target_key, TransportKind::Network);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    let started = NetworkService::start(c, view_rx, &mut Registry::default())?;
    let mut peers = started.service.peers();
    let addr = tokio::time::timeout(
        Duration::from_secs(10),
        peers.wait_for(|s| !s.listen.is_empty()),
    )
    .await
    .context("the Conclave node never listened")??
    .listen
    .iter()
    .find(|a| a.to_string().contains("/tcp/"))
    .cloned()
    .context("no TCP listen address")?;
    let _keep_events = started.events;

    let mut member = bare(member_key)?;
    let member_ms = dial_times(&mut member, target, &addr, p.dials, Want::Admitted).await?;

    let mut stranger = bare(Keypair::generate_ed25519())?;
    let cpu = own_usage().cpu_us;
    let stranger_ms = dial_times(&mut stranger, target, &addr, p.dials, Want::Refused).await?;
    let refusal_cpu_us = own_usage().cpu_us.saturating_sub(cpu) as f64 / p.dials as f64;
    if started
        .service
        .peers()
        .borrow()
        .peers
        .contains_key(&stranger.local_peer_id().to_owned())
    {
        bail!("the stranger is connected to the Conclave node");
    }

    // The same dial to a node without a gate.
    let mut open = bare(Keypair::generate_ed25519())?;
    open.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let open_addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = open.select_next_some().await {
            break address;
        }
    };
    let open_peer = *open.local_peer_id();
    let driver = tokio::spawn(async move {
        loop {
            open.select_next_some().await;
        }
    });
    let mut dialer = bare(Keypair::generate_ed25519())?;
    let ungated_ms = dial_times(&mut dialer, open_peer, &open_addr, p.dials, Want::Admitted).await;
    driver.abort();
    started.service.shutdown();
    Ok(AdmissionRun {
        member_p50_ms: percentile(&member_ms, 0.5),
        stranger_p50_ms: percentile(&stranger_ms, 0.5),
        ungated_p50_ms: percentile(&ungated_ms?, 0.5),
        refusal_cpu_us,
    })
}

pub async fn measure(p: AdmissionParams, reps: usize) -> anyhow::Result<AdmissionRow> {
    let mut runs = Vec::new();
    for r in 0..reps {
        let run = run(p).await?;
        eprintln!(
            "  admission        rep {}: member admitted p50 {:.2} ms, stranger refused p50 {:.2} ms, ungated dial p50 {:.2} ms, {:.0} µs CPU per refusal",
            r + 1,
            run.member_p50_ms,
            run.stranger_p50_ms,
            run.ungated_p50_ms,
            run.refusal_cpu_us
        );
        runs.push(run);
    }
    let spread = |g: fn(&AdmissionRun) -> f64| Spread::of(runs.iter().map(g));
    Ok(AdmissionRow {
        params: p,
        member_p50_ms: spread(|r| r.member_p50_ms),
        stranger_p50_ms: spread(|r| r.stranger_p50_ms),
        ungated_p50_ms: spread(|r| r.ungated_p50_ms),
        refusal_cpu_us: spread(|r| r.refusal_cpu_us),
        runs,
    })
}
