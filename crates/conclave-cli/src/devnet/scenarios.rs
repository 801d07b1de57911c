//! `conclave devnet --scenario …`: the alternative-path scenarios, as separate node processes on
//! loopback (docs/ARCHITECTURE.md, "Alternative paths: watchdog, drivers, header fallback").
//!
//! - `stale-chain` (on anvil): one member's chain source freezes (its RPC path is cut) while the
//!   chain moves on. Its watchdog raises the anomaly, it fetches the headers members agree on,
//!   follows that fallback tip and keeps settling coordination windows; when its source is back
//!   it follows it again. Reports the time from the freeze to its fallback tip matching the
//!   members' tip.
//! - `tcp-cut`: one member takes its TCP driver out (listener and connections); the members
//!   reach it over QUIC and messages keep flowing both ways; then TCP comes back.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use conclave_core::GroupId;
use serde_json::{json, Value};

use super::{
    await_api, chain, coord, file_registry, get_json, http_client, listen_addrs, member_keys,
    now_ms, registry_doc, spawn_node, stop, subscribe, wait_ready, write_atomic, DevnetArgs,
    NodeProc, Probe, Tally, DRAIN, TOPIC,
};

/// How long a scenario waits for each thing it expects before calling the run failed.
const EXPECT: Duration = Duration::from_secs(60);

/// Polls `f` every 20 ms until it yields a value, for at most [`EXPECT`].
async fn expect<T, F>(what: &str, mut f: impl FnMut() -> F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + EXPECT;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {EXPECT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The watchdog settings of the stale-chain nodes, scaled to the chain's block time.
fn watchdog_config(block: Duration) -> String {
    let ms = block.as_millis();
    format!(
        "watchdog_block_ms = {ms}\nwatchdog_variance_ms = {}\nwatchdog_tip_secs = 1\n\
         watchdog_ahead_blocks = 3\nwatchdog_raise_after_ms = 300\nwatchdog_clear_after_ms = 1000\n\
         watchdog_fetch_ms = 300\nwatchdog_silence_secs = 600\n",
        ms * 2
    )
}

/// Windows `node` settled whose coordination block is above `above`, with a proposal.
async fn windows_above(
    http: &reqwest::Client,
    node: &NodeProc,
    above: u64,
) -> anyhow::Result<Vec<Value>> {
    let (_, v) = get_json(http, &node.url("/v1/coordination/windows")).await?;
    Ok(v["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["coordination_block"].as_u64() > Some(above) && !w["proposal"].is_null())
        .cloned()
        .collect())
}

/// `stale-chain`: see the module doc. Returns whether every expectation held.
pub async fn stale_chain(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<bool> {
    let n = args.nodes;
    let frozen = n - 1;
    println!(
        "conclave devnet --scenario stale-chain: {n} members on anvil ({:?} blocks); node-{frozen}'s chain source will freeze",
        args.block_time
    );
    let peers = member_keys(dir, n)?;
    let group = GroupId([0xc1; 20]);
    let groups = vec![(group, (0..n).collect::<Vec<_>>())];
    let mut net =
        chain::ChainNet::start(dir, &peers, frozen, &groups, &[], args.block_time).await?;
    let http = http_client()?;
    let extra = format!(
        "{}{}altnet_http_listen = \"127.0.0.1:0\"\n",
        coord::node_config(true, 0),
        watchdog_config(args.block_time)
    );
    let mut nodes = Vec::new();
    for i in 0..frozen {
        let cfg = format!("{}{extra}", net.node_config(i));
        let mut node = spawn_node(exe, dir, &format!("node-{i}"), &cfg, &[])?;
        await_api(&mut node).await?;
        nodes.push(node);
    }
    // The frozen node also polls the others' read-only header listeners (the HTTP driver).
    let mut urls = Vec::new();
    for node in &nodes {
        let addr = std::fs::read_to_string(node.state.join("altnet.addr"))
            .with_context(|| format!("{} wrote no altnet.addr", node.name))?;
        urls.push(format!("\"http://{}\"", addr.trim()));
    }
    let cfg = format!(
        "{}{extra}altnet_http_peers = [{}]\n",
        net.node_config(frozen),
        urls.join(", ")
    );
    let mut node = spawn_node(exe, dir, &format!("node-{frozen}"), &cfg, &[])?;
    await_api(&mut node).await?;
    nodes.push(node);
    let result = stale_chain_drive(args, &mut net, &nodes, &peers, &http).await;
    for node in nodes.iter_mut() {
        stop(node).await;
    }
    result
}

async fn stale_chain_drive(
    args: &DevnetArgs,
    net: &mut chain::ChainNet,
    nodes: &[NodeProc],
    peers: &[String],
    http: &reqwest::Client,
) -> anyhow::Result<bool> {
    let n = nodes.len();
    let frozen = &nodes[n - 1];
    let member = &nodes[0];
    let mut entries = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        entries.push((i, peers[i].as_str(), listen_addrs(http, node).await?));
    }
    net.set_addresses(&entries).await?;
    net.start_mining();
    wait_ready(http, nodes).await?;
    expect("the frozen-to-be node hears members' tips", || async move {
        let text = http
            .get(frozen.url("/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .contains("conclave_watchdog_tips_total{reason=\"accepted\"}")
            .then_some(()))
    })
    .await?;
    let (_, w) = get_json(http, &frozen.url("/v1/altnet/watchdog")).await?;
    let frozen_head = w["head"].as_u64().context("watchdog head")?;
    println!(
        "all {n} members ready; freezing node-{}'s chain source at block {frozen_head}",
        n - 1
    );

    net.freeze_victim();
    let t0 = Instant::now();
    let mut raised: Option<(Duration, Vec<Value>)> = None;
    let mut entered: Option<Duration> = None;
    let deadline = t0 + EXPECT;
    let (matched, tip, tip_hash) = loop {
        let (_, w) = get_json(http, &frozen.url("/v1/altnet/watchdog")).await?;
        let (_, m) = get_json(http, &member.url("/v1/altnet/watchdog")).await?;
        let anomalies = w["raised"].as_array().cloned().unwrap_or_default();
        if raised.is_none() && !anomalies.is_empty() {
            raised = Some((t0.elapsed(), anomalies));
        }
        if entered.is_none() && w["following"] == "fallback" {
            entered = Some(t0.elapsed());
        }
        if let (Some(t), Some(h)) = (w["fallback_tip"]["height"].as_u64(), m["head"].as_u64()) {
            if t >= h {
                let hash = w["fallback_tip"]["hash"].as_str().unwrap_or_default();
                break (t0.elapsed(), t, hash.to_owned());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "node-{} never matched the members' tip within {EXPECT:?}: {w}",
                n - 1
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (raise_after, anomalies) = raised.context("a fallback without an anomaly")?;
    let real = net.block_hash(tip).await?;
    let hash_ok = real.eq_ignore_ascii_case(&tip_hash);
    println!(
        "  watchdog raised {} after {} ms; following members' headers after {} ms",
        anomalies
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        raise_after.as_millis(),
        entered.unwrap_or(matched).as_millis()
    );
    println!(
        "  fallback tip {tip} matched the members' tip {} ms after the freeze; its hash {} the chain's",
        matched.as_millis(),
        if hash_ok { "is" } else { "is NOT" }
    );
    let (_, ready) = get_json(http, &frozen.url("/readyz")).await?;
    println!("  /readyz chain: {}", ready["chain"]);

    let windows = expect(
        "a coordination window settled on the fallback tip",
        || async move {
            let w = windows_above(http, frozen, frozen_head + 3).await?;
            Ok((!w.is_empty()).then_some(w))
        },
    )
    .await?;
    println!(
        "  node-{} kept coordinating: {} window(s) settled past its frozen head (blocks {})",
        n - 1,
        windows.len(),
        windows
            .iter()
            .filter_map(|w| w["coordination_block"].as_u64())
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Keep it frozen a little longer, as an outage would last.
    tokio::time::sleep(args.duration.min(Duration::from_secs(10)) / 2).await;

    net.restore_victim();
    let t1 = Instant::now();
    expect("node back on its own chain source", || async move {
        let (_, w) = get_json(http, &frozen.url("/v1/altnet/watchdog")).await?;
        Ok((w["following"] == "source").then_some(()))
    })
    .await?;
    let back = t1.elapsed();
    let (_, w) = get_json(http, &frozen.url("/v1/altnet/watchdog")).await?;
    println!(
        "  source restored: following it again after {} ms (head {})",
        back.as_millis(),
        w["head"]
    );
    let ok = hash_ok && !windows.is_empty();
    println!("result            {}", if ok { "PASS" } else { "FAIL" });
    if let Some(path) = &args.report {
        let report = json!({
            "scenario": "stale-chain",
            "nodes": n,
            "block_ms": args.block_time.as_millis() as u64,
            "freeze_to_raise_ms": raise_after.as_millis() as u64,
            "freeze_to_fallback_ms": entered.unwrap_or(matched).as_millis() as u64,
            "freeze_to_match_ms": matched.as_millis() as u64,
            "windows_on_fallback": windows.len(),
            "restore_to_source_ms": back.as_millis() as u64,
            "ok": ok,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(ok)
}

/// `tcp-cut`: see the module doc. Returns whether every expectation held.
pub async fn tcp_cut(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<bool> {
    let n = args.nodes;
    println!(
        "conclave devnet --scenario tcp-cut: {n} members (TCP and QUIC); node-0 will take TCP out"
    );
    let peers = member_keys(dir, n)?;
    let bare: Vec<(usize, &str, Vec<String>)> =
        (0..n).map(|i| (i, peers[i].as_str(), vec![])).collect();
    write_atomic(&dir.join("registry.toml"), &registry_doc(&bare, &[], &[]))?;
    // The clock chain gives the nodes a chain, so the watchdog and its drivers run.
    let cfg = format!(
        "{}clock_chain_genesis_ms = {}\nclock_chain_block_ms = 1000\n",
        file_registry("registry.toml"),
        now_ms()
    );
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut node = spawn_node(exe, dir, &format!("node-{i}"), &cfg, &[])?;
        await_api(&mut node).await?;
        nodes.push(node);
    }
    let result = tcp_cut_drive(dir, &nodes, &peers).await;
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
            let r = http
                .post(node.url(&format!("/v1/publish/{TOPIC}")))
                .body(serde_json::to_vec(&probe)?)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("node-{i} refused a publish: {}", r.status());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + DRAIN * 3;
    loop {
        let missing: Vec<(usize, usize)> = {
            let t = tally.lock().unwrap();
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

fn transports(addrs: &Value) -> HashSet<&'static str> {
    addrs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
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

async fn tcp_cut_drive(dir: &Path, nodes: &[NodeProc], peers: &[String]) -> anyhow::Result<bool> {
    let client = http_client()?;
    let http = &client;
    let n = nodes.len();
    let mut entries = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        entries.push((i, peers[i].as_str(), listen_addrs(http, node).await?));
    }
    write_atomic(
        &dir.join("registry.toml"),
        &registry_doc(&entries, &[], &[]),
    )?;
    wait_ready(http, nodes).await?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut readers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        readers.push(subscribe(node, Some(i), tally.clone()).await?);
    }
    let per_phase = 20;
    let before = exchange(http, nodes, &tally, 0, per_phase).await?;
    println!(
        "all {n} members ready; before the cut: {} of {} sender→receiver pairs complete",
        n * (n - 1) - before.len(),
        n * (n - 1)
    );

    let cut = Instant::now();
    let r = http
        .post(nodes[0].url("/v1/altnet/drivers/tcp/stop"))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "stopping node-0's TCP driver: {} {}",
            r.status(),
            r.text().await?
        );
    }
    let over = expect(
        "node-0 reconnected to every member without TCP",
        || async move {
            let (_, v) = get_json(http, &nodes[0].url("/v1/peers")).await?;
            let peers = v["peers"].as_array().cloned().unwrap_or_default();
            let kinds: HashSet<&str> = peers
                .iter()
                .flat_map(|p| transports(&p["addresses"]))
                .collect();
            let all_subscribed = peers.iter().all(|p| {
                p["topics"]
                    .as_array()
                    .is_some_and(|t| t.contains(&TOPIC.into()))
            });
            Ok((peers.len() == n - 1 && !kinds.contains("tcp") && all_subscribed).then_some(kinds))
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
    let (_, d) = get_json(http, &nodes[0].url("/v1/altnet/drivers")).await?;
    for driver in d["drivers"].as_array().into_iter().flatten() {
        println!(
            "    driver {:5} {:8} peers {}",
            driver["name"].as_str().unwrap_or("?"),
            driver["health"]["state"].as_str().unwrap_or("?"),
            driver["health"]["peers"]
        );
    }
    let r = http
        .post(nodes[0].url("/v1/altnet/drivers/tcp/start"))
        .send()
        .await?;
    let (_, v) = get_json(http, &nodes[0].url("/v1/peers")).await?;
    println!(
        "  TCP back ({}): node-0 listens on {}",
        r.status(),
        v["listen"]
    );
    for r in readers {
        r.abort();
    }
    let ok = before.is_empty() && after.is_empty();
    println!("result            {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}
