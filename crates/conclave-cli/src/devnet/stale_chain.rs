//! `conclave devnet --scenario stale-chain` (on anvil; docs/ARCHITECTURE.md, "Alternative
//! paths: watchdog, drivers, header fallback"): one member's chain source freezes (its RPC path
//! is cut) while the chain moves on. Its watchdog raises the anomaly, it fetches the headers
//! members agree on, follows that fallback tip and keeps settling coordination windows; when its
//! source is back it follows it again. Reports the time from the freeze to its fallback tip
//! matching the members' tip.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use conclave_api::{Following, ReadyAnswer, StaleChainReport, WatchdogAnswer, WindowsAnswer};
use conclave_coord::WindowOutcome;
use conclave_core::GroupId;
use conclave_node::NodeConfig;

use super::args::DevnetArgs;
use super::chain::{ChainNet, ChainPlan};
use super::client::{self, expect, http_client, wait_ready};
use super::cluster::{self, await_api, member_keys, stop, NodeProc};
use super::common::{CHAIN_WINDOWS, EXPECT};
use super::config;

/// Windows `node` settled whose coordination block is above `above`, with a proposal.
async fn windows_above(
    http: &reqwest::Client,
    node: &NodeProc,
    above: u64,
) -> anyhow::Result<Vec<WindowOutcome>> {
    let (_, answer) =
        client::get::<WindowsAnswer>(http, &node.url("/v1/coordination/windows")).await?;
    Ok(answer
        .windows
        .into_iter()
        .filter(|w| w.coordination_block > above && w.proposal.is_some())
        .collect())
}

async fn watchdog(http: &reqwest::Client, node: &NodeProc) -> anyhow::Result<WatchdogAnswer> {
    Ok(client::get(http, &node.url("/v1/altnet/watchdog")).await?.1)
}

/// Runs the scenario; its report says whether every expectation held.
pub async fn run(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<StaleChainReport> {
    let n = args.nodes;
    let frozen = n - 1;
    println!(
        "conclave devnet --scenario stale-chain: {n} members on anvil ({:?} blocks); node-{frozen}'s chain source will freeze",
        args.block_time
    );
    let peers = member_keys(dir, n)?;
    let group = GroupId([0xc1; 20]);
    let groups = vec![(group, (0..n).collect::<Vec<_>>())];
    let mut net = ChainNet::start(
        dir,
        &peers,
        frozen,
        &groups,
        &[],
        ChainPlan {
            block_time: args.block_time,
            cold: args.cold_keys,
            validator_keys: None,
        },
    )
    .await?;
    let http = http_client()?;
    let member_config = |i: usize| -> NodeConfig {
        let mut cfg = config::node(&format!("node-{i}"));
        net.configure(&mut cfg, i);
        config::coordination(&mut cfg, CHAIN_WINDOWS, None);
        config::watchdog(&mut cfg, args.block_time);
        cfg.altnet.http_listen = Some("127.0.0.1:0".into());
        cfg
    };
    let mut nodes = Vec::new();
    for i in 0..frozen {
        let mut node = cluster::spawn(exe, dir, &format!("node-{i}"), &member_config(i))?;
        await_api(&mut node).await?;
        nodes.push(node);
    }
    // The frozen node also polls the others' read-only header listeners (the HTTP driver).
    let mut cfg = member_config(frozen);
    for node in &nodes {
        let addr = std::fs::read_to_string(node.state.join("altnet.addr"))
            .with_context(|| format!("{} wrote no altnet.addr", node.name))?;
        cfg.altnet
            .http_peers
            .push(format!("http://{}", addr.trim()));
    }
    let mut node = cluster::spawn(exe, dir, &format!("node-{frozen}"), &cfg)?;
    await_api(&mut node).await?;
    nodes.push(node);
    let result = drive(args, &mut net, &nodes, &peers, &http).await;
    for node in nodes.iter_mut() {
        stop(node).await;
    }
    result
}

async fn drive(
    args: &DevnetArgs,
    net: &mut ChainNet,
    nodes: &[NodeProc],
    peers: &[String],
    http: &reqwest::Client,
) -> anyhow::Result<StaleChainReport> {
    let n = nodes.len();
    let frozen = &nodes[n - 1];
    let member = &nodes[0];
    let entries = client::entries(http, nodes, peers).await?;
    net.set_addresses(&entries).await?;
    net.start_mining();
    wait_ready(http, nodes).await?;
    expect("the frozen-to-be node hears members' tips", || async move {
        let text = client::metrics(http, frozen).await;
        Ok(text
            .contains("conclave_watchdog_tips_total{reason=\"accepted\"}")
            .then_some(()))
    })
    .await?;
    let frozen_head = watchdog(http, frozen).await?.head;
    println!(
        "all {n} members ready; freezing node-{}'s chain source at block {frozen_head}",
        n - 1
    );

    net.freeze_victim();
    let t0 = Instant::now();
    let mut raised: Option<(Duration, Vec<String>)> = None;
    let mut entered: Option<Duration> = None;
    let deadline = t0 + EXPECT;
    let (matched, tip, tip_hash) = loop {
        let w = watchdog(http, frozen).await?;
        let m = watchdog(http, member).await?;
        if raised.is_none() && !w.raised.is_empty() {
            raised = Some((t0.elapsed(), w.raised.clone()));
        }
        if entered.is_none() && w.following == Following::Fallback {
            entered = Some(t0.elapsed());
        }
        if let Some(tip) = w.fallback_tip.as_ref().filter(|t| t.height >= m.head) {
            break (t0.elapsed(), tip.height, tip.hash.clone());
        }
        if Instant::now() > deadline {
            bail!(
                "node-{} never matched the members' tip within {EXPECT:?}: {}",
                n - 1,
                serde_json::to_string(&w)?
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (raise_after, anomalies) = raised.context("a fallback without an anomaly")?;
    let real = net.block_hash(tip).await?;
    let hash_ok = real.eq_ignore_ascii_case(&tip_hash);
    println!(
        "  watchdog raised {} after {} ms; following members' headers after {} ms",
        anomalies.join(", "),
        raise_after.as_millis(),
        entered.unwrap_or(matched).as_millis()
    );
    println!(
        "  fallback tip {tip} matched the members' tip {} ms after the freeze; its hash {} the chain's",
        matched.as_millis(),
        if hash_ok { "is" } else { "is NOT" }
    );
    let (_, ready) = client::get::<ReadyAnswer>(http, &frozen.url("/readyz")).await?;
    println!("  /readyz chain: {}", serde_json::to_string(&ready.chain)?);

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
            .map(|w| w.coordination_block.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Keep it frozen a little longer, as an outage would last.
    tokio::time::sleep(args.duration.min(Duration::from_secs(10)) / 2).await;

    net.restore_victim();
    let t1 = Instant::now();
    expect("node back on its own chain source", || async move {
        let w = watchdog(http, frozen).await?;
        Ok((w.following == Following::Source).then_some(()))
    })
    .await?;
    let back = t1.elapsed();
    let w = watchdog(http, frozen).await?;
    println!(
        "  source restored: following it again after {} ms (head {})",
        back.as_millis(),
        w.head
    );
    let ok = hash_ok && !windows.is_empty();
    println!("result            {}", if ok { "PASS" } else { "FAIL" });
    Ok(StaleChainReport {
        ok,
        nodes: n,
        block_ms: args.block_time.as_millis() as u64,
        freeze_to_raise_ms: raise_after.as_millis() as u64,
        freeze_to_fallback_ms: entered.unwrap_or(matched).as_millis() as u64,
        freeze_to_match_ms: matched.as_millis() as u64,
        windows_on_fallback: windows.len(),
        restore_to_source_ms: back.as_millis() as u64,
    })
}
