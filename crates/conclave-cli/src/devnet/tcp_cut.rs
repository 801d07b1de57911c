//! `conclave devnet --scenario tcp-cut` (docs/ARCHITECTURE.md, "Alternative paths: watchdog,
//! drivers, header fallback"): one member takes its TCP driver out (listener and connections);
//! the members reach it over QUIC and messages keep flowing both ways; then TCP comes back.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use conclave_api::{DriverChanged, DriversAnswer, PeersAnswer};

use super::args::DevnetArgs;
use super::client::{self, expect, http_client, wait_ready};
use super::cluster::{self, await_api, member_keys, stop, NodeProc};
use super::common::{now_ms, DRAIN, TOPIC};
use super::config;
use super::registry::{self, Entry};
use super::traffic::{self, Probe, Tally};

/// Runs the scenario; whether every expectation held.
pub async fn run(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<bool> {
    let n = args.nodes;
    println!(
        "conclave devnet --scenario tcp-cut: {n} members (TCP and QUIC); node-0 will take TCP out"
    );
    let peers = member_keys(dir, n)?;
    let registry_file = dir.join("registry.toml");
    let bare: Vec<Entry> = (0..n).map(|i| Entry::bare(i, &peers[i])).collect();
    registry::write(&registry_file, &bare, &[], &[])?;
    // The clock chain gives the nodes a chain, so the watchdog and its drivers run.
    let genesis_ms = now_ms();
    let mut nodes = Vec::new();
    for i in 0..n {
        let name = format!("node-{i}");
        let mut cfg = config::node(&name);
        // One-second blocks: the scenario needs a chain, not its pace.
        config::clock_chain(&mut cfg, genesis_ms, 1000);
        let mut node = cluster::spawn(exe, dir, &name, &cfg)?;
        await_api(&mut node).await?;
        nodes.push(node);
    }
    let result = drive(&registry_file, &nodes, &peers).await;
    for node in nodes.iter_mut() {
        stop(node).await;
    }
    result
}

/// Publishes `count` probes from each node, waits for them, returns (sender, receiver) pairs
/// that missed any.
async fn exchange(
    http: &reqwest::Client,
    nodes: &[NodeProc],
    tally: &Arc<Mutex<Tally>>,
    first_seq: u64,
    count: u64,
) -> anyhow::Result<Vec<(usize, usize)>> {
    for seq in first_seq..first_seq + count {
        for (i, node) in nodes.iter().enumerate() {
            let probe = Probe {
                n: i,
                s: seq,
                t: now_ms(),
                p: String::new(),
            };
            if let Err(why) = traffic::publish(http, &traffic::publish_url(node), &probe).await {
                bail!("node-{i} refused a publish: {why}");
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + DRAIN * 3;
    loop {
        let missing: Vec<(usize, usize)> = {
            let t = tally.lock().expect("tally lock");
            (0..nodes.len())
                .flat_map(|s| {
                    (0..nodes.len())
                        .filter(move |r| *r != s)
                        .map(move |r| (s, r))
                })
                .filter(|(s, r)| {
                    (first_seq..first_seq + count).any(|q| !t.delivered.contains_key(&(*r, *s, q)))
                })
                .collect()
        };
        if missing.is_empty() || Instant::now() > deadline {
            return Ok(missing);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The transports of multiaddrs, by name.
fn transports(addrs: &[String]) -> HashSet<&'static str> {
    addrs
        .iter()
        .map(|a| {
            if a.contains("/quic-v1") {
                "quic"
            } else if a.contains("/p2p-circuit") {
                "relay"
            } else if a.contains("/ws") {
                "ws"
            } else {
                "tcp"
            }
        })
        .collect()
}

/// Asks `node`'s TCP driver to `stop` or `start`: the status and the driver's state, or why not.
async fn tcp_driver(
    http: &reqwest::Client,
    node: &NodeProc,
    action: &str,
) -> anyhow::Result<(u16, Result<DriverChanged, String>)> {
    let url = node.url(&format!("/v1/altnet/drivers/tcp/{action}"));
    let (status, answer) = client::post::<DriverChanged>(http, &url, Vec::new()).await?;
    Ok((status, answer.map_err(|e| e.error)))
}

async fn drive(registry_file: &Path, nodes: &[NodeProc], peers: &[String]) -> anyhow::Result<bool> {
    let client = http_client()?;
    let http = &client;
    let n = nodes.len();
    let entries = client::entries(http, nodes, peers).await?;
    registry::write(registry_file, &entries, &[], &[])?;
    wait_ready(http, nodes).await?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut readers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        readers.push(traffic::subscribe(node, Some(i), tally.clone()).await?);
    }
    let per_phase = 20;
    let before = exchange(http, nodes, &tally, 0, per_phase).await?;
    println!(
        "all {n} members ready; before the cut: {} of {} sender→receiver pairs complete",
        n * (n - 1) - before.len(),
        n * (n - 1)
    );

    let cut = Instant::now();
    if let (status, Err(why)) = tcp_driver(http, &nodes[0], "stop").await? {
        bail!("stopping node-0's TCP driver: {status} {why}");
    }
    let over = expect(
        "node-0 reconnected to every member without TCP",
        || async move {
            let (_, answer) = client::get::<PeersAnswer>(http, &nodes[0].url("/v1/peers")).await?;
            let kinds: HashSet<&str> = answer
                .peers
                .iter()
                .flat_map(|p| transports(&p.addresses))
                .collect();
            let all_subscribed = answer
                .peers
                .iter()
                .all(|p| p.topics.iter().any(|t| t == TOPIC));
            Ok(
                (answer.peers.len() == n - 1 && !kinds.contains("tcp") && all_subscribed)
                    .then_some(kinds),
            )
        },
    )
    .await?;
    println!(
        "  node-0 took TCP out; reconnected to all {} members over {} in {} ms",
        n - 1,
        over.into_iter().collect::<Vec<_>>().join(", "),
        cut.elapsed().as_millis()
    );
    let after = exchange(http, nodes, &tally, per_phase, per_phase).await?;
    let with_zero: Vec<&(usize, usize)> =
        after.iter().filter(|(s, r)| *s == 0 || *r == 0).collect();
    println!(
        "  after the cut: {} of {} pairs complete ({per_phase} messages each way); to/from node-0 missing: {}",
        n * (n - 1) - after.len(),
        n * (n - 1),
        with_zero.len()
    );
    let (_, drivers) =
        client::get::<DriversAnswer>(http, &nodes[0].url("/v1/altnet/drivers")).await?;
    for driver in &drivers.drivers {
        println!(
            "    driver {:5} {:8} peers {}",
            driver.name, driver.health.state, driver.health.peers
        );
    }
    let (status, _) = tcp_driver(http, &nodes[0], "start").await?;
    let (_, peers) = client::get::<PeersAnswer>(http, &nodes[0].url("/v1/peers")).await?;
    println!(
        "  TCP back ({status}): node-0 listens on {}",
        serde_json::to_string(&peers.listen)?
    );
    for r in readers {
        r.abort();
    }
    let ok = before.is_empty() && after.is_empty();
    println!("result            {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}
