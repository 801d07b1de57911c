//! `conclave devnet --registry stacks` (docs/ARCHITECTURE.md, "The Stacks registry"): sBTC's
//! own registry. A Stacks node stand-in runs the registry contract in a real Clarity VM
//! (scripts/stacks-simnet.mjs); every member's node key is a secp256k1 key listed in the
//! contract's signer set, and the nodes gate by that set. Mid-run the set rotates by a contract
//! call — the last member out, a new signer in — and the run reports the time from the call to
//! the removed signer's last connection closing and to the new one being connected to every
//! remaining member. It fails if the removed signer keeps a connection, or is delivered a
//! message, after the rotation.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use conclave_api::StacksRotationReport;
use conclave_node::config::StacksSection;
use conclave_node::keys::{self, KeyType};
use conclave_node::NodeConfig;
use conclave_registry::stacks::simnet::StacksSimnet;
use conclave_registry::stacks::SignerKey;

use super::args::DevnetArgs;
use super::client::{self, expect, http_client, peer_ids, wait_ready};
use super::cluster::{self, await_api, stop, NodeProc};
use super::common::{now_ms, DRAIN, TOPIC};
use super::config;
use super::traffic::{publish, publish_url, subscribe, Probe, Tally};

/// How long the removed signer is watched after its eviction for a connection coming back.
const HOLD: Duration = Duration::from_secs(3);
/// Messages each sender publishes before and after the rotation.
const BATCH: u64 = 5;

fn signer_key(dir: &Path, name: &str) -> anyhow::Result<SignerKey> {
    let path = dir.join(format!("{name}.key"));
    keys::generate(&path, KeyType::Secp256k1)?;
    let (pair, _) = keys::load(&path)?;
    let compressed = pair
        .public()
        .try_into_secp256k1()
        .context("a secp256k1 key file holds a secp256k1 key")?
        .to_bytes();
    SignerKey::from_compressed(compressed).map_err(anyhow::Error::from)
}

/// Every signer may sign the devnet topic; 2/3 of the set, rounded up, is the threshold.
fn threshold(signers: usize) -> u64 {
    (signers as u64 * 2).div_ceil(3)
}

fn stacks_config(simnet: &StacksSimnet, name: &str, seeds: Vec<String>) -> NodeConfig {
    let mut cfg = config::node(name);
    cfg.registry.source = "stacks".into();
    cfg.stacks = StacksSection {
        node_url: Some(simnet.url.clone()),
        registry_contract: Some(simnet.contract.to_string()),
        poll_ms: 100,
        member_scopes: vec![TOPIC.into()],
        ..StacksSection::default()
    };
    cfg.seeds = seeds;
    cfg
}

/// Runs the scenario; its report says whether every expectation held.
pub async fn run(
    args: &DevnetArgs,
    dir: &Path,
    exe: &Path,
) -> anyhow::Result<StacksRotationReport> {
    let n = args.nodes;
    let removed = n - 1;
    println!(
        "conclave devnet --registry stacks: {n} signers in a Clarity VM's signer set; node-{removed} rotates out, node-{n} in"
    );
    let simnet = StacksSimnet::spawn().context("starting the Stacks simnet endpoint")?;
    let keys: Vec<SignerKey> = (0..=n)
        .map(|i| signer_key(dir, &format!("node-{i}")))
        .collect::<anyhow::Result<_>>()?;
    let set: Vec<[u8; 33]> = keys[..n].iter().map(|k| k.compressed).collect();
    let call = simnet
        .rotate(&set, &keys[0].compressed, threshold(n))
        .await?;
    if !call.ok {
        bail!("the initial rotate-keys call failed: {}", call.result);
    }
    println!(
        "  {} at {}: rotate-keys set {n} signers (block {})",
        simnet.url, simnet.contract, call.height
    );
    let http = http_client()?;
    // Each node dials the ones started before it, so every pair connects once.
    let mut nodes: Vec<NodeProc> = Vec::new();
    let mut seeds = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let name = format!("node-{i}");
        let mut node = cluster::spawn(
            exe,
            dir,
            &name,
            &stacks_config(&simnet, &name, seeds.clone()),
        )?;
        await_api(&mut node).await?;
        let tcp = client::listen_addrs(&http, &node)
            .await?
            .into_iter()
            .find(|a| a.contains("/tcp/"))
            .with_context(|| format!("{name} reported no TCP address"))?;
        seeds.push(format!("{tcp}/p2p/{}", key.peer));
        nodes.push(node);
    }
    let result = drive(&simnet, &nodes, &keys, &http).await;
    for node in nodes.iter_mut() {
        stop(node).await;
    }
    result
}

/// Publishes [`BATCH`] probes from each of `senders`, sequence numbers from `first`.
async fn publish_batch(
    http: &reqwest::Client,
    nodes: &[NodeProc],
    senders: &[usize],
    first: u64,
) -> anyhow::Result<()> {
    for s in first..first + BATCH {
        for &i in senders {
            let probe = Probe {
                n: i,
                s,
                t: now_ms(),
                p: String::new(),
            };
            publish(http, &publish_url(&nodes[i]), &probe)
                .await
                .map_err(|e| anyhow::anyhow!("node-{i} could not publish: {e}"))?;
        }
    }
    tokio::time::sleep(DRAIN).await;
    Ok(())
}

/// Connections the removed signer holds, as it and every other node report them.
async fn removed_connections(
    http: &reqwest::Client,
    nodes: &[NodeProc],
    removed: usize,
    removed_peer: &str,
) -> usize {
    let mut count = peer_ids(http, &nodes[removed]).await.len();
    for (i, node) in nodes.iter().enumerate() {
        if i != removed && peer_ids(http, node).await.contains(removed_peer) {
            count += 1;
        }
    }
    count
}

/// How many of `senders`' probes numbered `seqs` `receiver` was delivered.
fn delivered(
    tally: &Mutex<Tally>,
    receiver: usize,
    senders: &[usize],
    seqs: std::ops::Range<u64>,
) -> usize {
    let t = tally.lock().expect("tally lock");
    t.delivered
        .keys()
        .filter(|(r, s, q)| *r == receiver && senders.contains(s) && seqs.contains(q))
        .count()
}

async fn drive(
    simnet: &StacksSimnet,
    nodes: &[NodeProc],
    keys: &[SignerKey],
    http: &reqwest::Client,
) -> anyhow::Result<StacksRotationReport> {
    let n = nodes.len() - 1;
    let (removed, joiner) = (n - 1, n);
    let remaining: Vec<usize> = (0..removed).collect();
    let members: Vec<usize> = (0..n).collect();
    wait_ready(http, &nodes[..n]).await?;
    let peer = |i: usize| keys[i].peer.to_string();
    if !peer_ids(http, &nodes[joiner]).await.is_empty() {
        bail!("node-{joiner}, not in the set yet, is connected");
    }
    println!("  all {n} signers ready; node-{joiner} (not in the set) is not connected");

    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut subs = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        subs.push(subscribe(node, Some(i), tally.clone()).await?);
    }
    publish_batch(http, nodes, &members, 0).await?;
    let before_to_removed = delivered(&tally, removed, &remaining, 0..BATCH);
    let before_to_joiner = delivered(&tally, joiner, &members, 0..BATCH);

    // The rotation: the last member out, the joiner in.
    let mut set: Vec<[u8; 33]> = remaining.iter().map(|&i| keys[i].compressed).collect();
    set.push(keys[joiner].compressed);
    let t0 = Instant::now();
    let call = simnet
        .rotate(&set, &keys[0].compressed, threshold(n))
        .await?;
    if !call.ok {
        bail!("the rotate-keys call failed: {}", call.result);
    }
    let evicted = expect("the removed signer's last connection to close", || async {
        Ok(removed_connections(http, nodes, removed, &peer(removed))
            .await
            .eq(&0)
            .then(|| t0.elapsed()))
    })
    .await?;
    let wanted: HashSet<String> = remaining.iter().map(|&i| peer(i)).collect();
    let admitted = expect(
        "the new signer connected to every remaining one",
        || async {
            let connected = peer_ids(http, &nodes[joiner]).await;
            Ok(wanted.is_subset(&connected).then(|| t0.elapsed()))
        },
    )
    .await?;
    println!(
        "  rotate-keys (block {}): node-{removed}'s last connection closed after {} ms; node-{joiner} connected to all {} remaining signers after {} ms",
        call.height,
        evicted.as_millis(),
        remaining.len(),
        admitted.as_millis()
    );
    // Any connection to the removed signer from here on, on either side, breaks the gate.
    let mut reconnected = 0;
    let hold_until = Instant::now() + HOLD;
    while Instant::now() < hold_until {
        reconnected =
            reconnected.max(removed_connections(http, nodes, removed, &peer(removed)).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut senders = remaining.clone();
    senders.push(joiner);
    publish_batch(http, nodes, &senders, BATCH).await?;
    for sub in subs {
        sub.abort();
    }
    let after = BATCH..2 * BATCH;
    // Nothing is published between the call and the evictions: every message the removed
    // signer could be delivered from here on was published after the rotation.
    let after_to_removed = delivered(&tally, removed, &senders, after.clone());
    let after_to_joiner = delivered(&tally, joiner, &remaining, after.clone());
    let after_to_remaining: usize = remaining
        .iter()
        .map(|&r| delivered(&tally, r, &senders, after.clone()))
        .sum();
    let expected_remaining = remaining.len() * (senders.len() - 1) * BATCH as usize;
    let ok = reconnected == 0
        && after_to_removed == 0
        && before_to_joiner == 0
        && before_to_removed == remaining.len() * BATCH as usize
        && after_to_joiner == remaining.len() * BATCH as usize
        && after_to_remaining == expected_remaining;
    println!(
        "  before: node-{removed} delivered {before_to_removed}/{} members' messages, node-{joiner} {before_to_joiner} (expected 0)",
        remaining.len() * BATCH as usize
    );
    println!(
        "  after: node-{removed} held at most {reconnected} connection(s) in {HOLD:?} and was delivered {after_to_removed} (expected 0); node-{joiner} delivered {after_to_joiner}/{}; remaining signers {after_to_remaining}/{expected_remaining}",
        remaining.len() * BATCH as usize
    );
    println!("result            {}", if ok { "PASS" } else { "FAIL" });
    Ok(StacksRotationReport {
        ok,
        signers: n,
        rotation_block: call.height,
        rotation_to_last_connection_closed_ms: evicted.as_millis() as u64,
        rotation_to_admitted_ms: admitted.as_millis() as u64,
        removed_reconnections: reconnected as u64,
        removed_delivered_after: after_to_removed as u64,
        joiner_delivered_after: after_to_joiner as u64,
    })
}
