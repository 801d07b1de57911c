//! Nodes configured with `[registry] source = "evm"` against a real chain (anvil): they join by on-chain
//! delegation; an RPC outage (a cut path, then anvil killed and restarted) turns `/readyz` and the
//! metrics stale until the chain is back; a rotation moves a node to its new key without loss;
//! the watchdog raises a frozen chain, and a node whose source freezes while the chain moves on
//! follows the headers members agree on, keeps coordinating, and returns to its source.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{get, get_json, listen_addrs, start_node, until, until_answer, until_json};
use conclave_api::{
    DeliveryFrame, DeliveryMode, DriversAnswer, Following, MembershipAnswer, PeersAnswer,
    ReadyAnswer, StreamFrame, WatchdogAnswer, WindowsAnswer,
};
use conclave_coord::WindowOutcome;
use conclave_core::OperatorId;
use conclave_node::config::{CoordinationSection, EvmSection, NodeConfig, WatchdogSection};
use conclave_node::keys::{self, KeyType};
use conclave_node::RunningNode;
use conclave_registry::evm::anvil::RpcProxy;
use conclave_registry::evm::OPEN_ENDED;
use conclave_testkit::RegistryChain;
use serde_json::Value;

/// anvil (keeping its chain in `state` when stopped, and reloading it on restart) with the
/// registry deployed, `scopes` defined and dev accounts 1..=n admitted as operators.
async fn chain_with_operators(n: usize, state: &Path, scopes: &[&str]) -> RegistryChain {
    RegistryChain::start(&["--state", state.to_str().unwrap()], scopes, n).await
}

async fn start(dir: &Path, name: &str, rpc_url: &str, contract: &str) -> RunningNode {
    start_with(dir, name, rpc_url, contract, |_| {}).await
}

/// A node following the registry at `contract`; `tweak` adds configuration.
async fn start_with(
    dir: &Path,
    name: &str,
    rpc_url: &str,
    contract: &str,
    tweak: impl FnOnce(&mut NodeConfig),
) -> RunningNode {
    let mut config = common::node_config(name);
    config.registry.source = "evm".into();
    config.evm = EvmSection {
        rpc_url: Some(rpc_url.into()),
        contract: Some(contract.into()),
        confirmations: 2,
        poll_ms: 100,
    };
    config.ready_quorum = Some(1);
    config.topics = vec!["signers".into()];
    tweak(&mut config);
    start_node(dir, name, &config, &[], Default::default()).await
}

async fn tcp_addr(node: &RunningNode) -> String {
    listen_addrs(node, 1).await.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_registry_nodes_join_and_report_rpc_outages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let RegistryChain {
        mut anvil,
        gov,
        operators: ops,
    } = chain_with_operators(2, &d.join("anvil.json"), &["signers"]).await;
    let contract = gov.contract().to_string();
    let mut peers = Vec::new();
    for (op, name) in ops.iter().zip(["a", "b"]) {
        let peer = keys::generate(&d.join(format!("{name}.key")), KeyType::Ed25519).unwrap();
        op.authorize(&peer, 1, 0, OPEN_ENDED).await.unwrap();
        peers.push(peer);
    }
    anvil.mine(2).await.unwrap();

    // a reads the chain through a proxy that can be cut; b reads it directly.
    let proxy = RpcProxy::start(anvil.port).await.unwrap();
    let a = start(d, "a", &proxy.url, &contract).await;
    let b = start(d, "b", &anvil.url, &contract).await;
    // Address hints go on-chain; once confirmed, the redial loops connect the two.
    for (i, node) in [&a, &b].iter().enumerate() {
        let addr = tcp_addr(node).await;
        ops[i]
            .set_node_addresses(&peers[i], vec![addr])
            .await
            .unwrap();
    }
    anvil.mine(2).await.unwrap();
    for n in [&a, &b] {
        until(n, "/readyz", "readiness", |s, _| s == 200).await;
    }
    let m: MembershipAnswer = get_json(&a, "/v1/membership").await;
    assert!(m.view.source.starts_with("chain 31337 block"), "{m:?}");
    assert_eq!(m.view.operators.len(), 2, "{m:?}");
    assert!(!m.stale, "{m:?}");

    // The RPC endpoint goes away: the view stays, readiness and metrics say stale.
    proxy.cut();
    until_answer(&a, "/readyz", "stale readiness", |s, r: &ReadyAnswer| {
        s == 503 && r.registry_stale
    })
    .await;
    let (_, metrics) = get(&a, "/metrics").await;
    assert!(metrics.contains("conclave_registry_stale 1"), "{metrics}");
    let m: MembershipAnswer = get_json(&a, "/v1/membership").await;
    assert!(m.stale, "{m:?}");
    assert!(
        m.last_error
            .as_deref()
            .is_some_and(|e| e.contains(&proxy.url)),
        "{m:?}"
    );
    assert_eq!(m.view.operators.len(), 2, "the last view stays: {m:?}");
    let (status, _) = get(&b, "/readyz").await;
    assert_eq!(
        status, 200,
        "b reads the chain directly and is not affected"
    );

    // The endpoint returns: a is current and ready again.
    proxy.restore();
    until(&a, "/readyz", "recovery", |s, _| s == 200).await;
    let (_, metrics) = get(&a, "/metrics").await;
    assert!(metrics.contains("conclave_registry_stale 0"), "{metrics}");

    // anvil itself dies (writing its chain out on the way) and comes back on the same port:
    // both nodes report stale while it is gone and recover without a restart of their own.
    anvil.stop().unwrap();
    for n in [&a, &b] {
        until_answer(
            n,
            "/readyz",
            "stale after anvil died",
            |s, r: &ReadyAnswer| s == 503 && r.registry_stale,
        )
        .await;
    }
    anvil.restart().unwrap();
    for n in [&a, &b] {
        until(n, "/readyz", "recovery after anvil came back", |s, _| {
            s == 200
        })
        .await;
    }
    let m: MembershipAnswer = get_json(&b, "/v1/membership").await;
    assert_eq!(m.view.operators.len(), 2, "{m:?}");

    for n in [a, b] {
        n.shutdown().await;
    }
}

/// Mines a block every `every` until dropped: a chain that moves on its own.
struct Miner(tokio::task::JoinHandle<()>);

impl Miner {
    fn start(url: String, every: Duration) -> Miner {
        Miner(tokio::spawn(async move {
            let anvil_rpc = reqwest::Client::new();
            loop {
                let _ = anvil_rpc
                    .post(&url)
                    .json(&serde_json::json!({"jsonrpc":"2.0","id":1,"method":"anvil_mine","params":["0x1"]}))
                    .send()
                    .await;
                tokio::time::sleep(every).await;
            }
        }))
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_moves_the_node_to_its_new_key_without_losing_a_message() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let RegistryChain {
        anvil,
        gov,
        operators: ops,
    } = chain_with_operators(2, &d.join("anvil.json"), &["signers"]).await;
    let contract = gov.contract().to_string();
    let (op_a, op_b) = (&ops[0], &ops[1]);
    let old = keys::generate(&d.join("a.key"), KeyType::Ed25519).unwrap();
    std::fs::create_dir(d.join("a-keys")).unwrap();
    let new = keys::generate(&d.join("a-keys/next.key"), KeyType::Ed25519).unwrap();
    let b_peer = keys::generate(&d.join("b.key"), KeyType::Ed25519).unwrap();
    op_a.authorize(&old, 1, 0, OPEN_ENDED).await.unwrap();
    op_b.authorize(&b_peer, 1, 0, OPEN_ENDED).await.unwrap();
    anvil.mine(2).await.unwrap();

    let a = start_with(d, "a", &anvil.url, &contract, |c| {
        c.key_dir = Some("a-keys".into())
    })
    .await;
    let b = start(d, "b", &anvil.url, &contract).await;
    op_b.set_node_addresses(&b_peer, vec![tcp_addr(&b).await])
        .await
        .unwrap();
    anvil.mine(2).await.unwrap();
    for n in [&a, &b] {
        until(n, "/readyz", "readiness", |s, _| s == 200).await;
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/subscribe/signers", b.http_addr))
            .await
            .unwrap();

    // A numbered stream from a's application, running through the whole swap.
    let total = 300u32;
    let api = a.http_addr;
    let publisher = tokio::spawn(async move {
        let client = reqwest::Client::new();
        for i in 0..total {
            let r = client
                .post(format!("http://{api}/v1/publish/signers"))
                .body(i.to_string())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "publish {i}: {:?}", r.text().await);
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    });

    // The operator rotates: the new key valid now, the old one revoked 40 blocks on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let head = op_a.block().await.unwrap();
    op_a.rotate(&old, &new, 1, OPEN_ENDED, head + 40)
        .await
        .unwrap();
    let _miner = Miner::start(anvil.url.clone(), Duration::from_millis(100));

    let mut seen = std::collections::BTreeMap::<u32, u32>::new();
    let mut senders = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < total as usize {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {total} arrived", seen.len()))
            .unwrap()
            .unwrap();
        let text = msg.to_text().unwrap();
        let f = match serde_json::from_str::<StreamFrame<DeliveryFrame>>(text) {
            Ok(StreamFrame::Item(f)) => f,
            Ok(StreamFrame::Lagged(l)) => panic!("subscriber lagged: {l:?}"),
            Err(e) => panic!("not a delivery frame: {e}: {text}"),
        };
        let n: u32 = String::from_utf8(f.payload().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        *seen.entry(n).or_default() += 1;
        senders.insert(f.node);
    }
    publisher.await.unwrap();
    // Nothing more may arrive: a duplicate would show up here.
    if let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
        panic!(
            "unexpected extra delivery: {}",
            msg.to_text().unwrap_or("<binary>")
        );
    }
    let _ = ws.close(None).await;
    assert!(seen.values().all(|&c| c == 1), "duplicates: {seen:?}");
    assert_eq!(seen.len(), total as usize);
    assert!(
        senders.contains(&old.to_string()) && senders.contains(&new.to_string()),
        "the stream moved from the old key to the new one: {senders:?}"
    );
    assert_eq!(a.peer_id(), new);
    let (_, metrics) = get(&a, "/metrics").await;
    assert!(
        metrics.contains("conclave_key_rotations_total 1"),
        "{metrics}"
    );
    let peers: PeersAnswer = get_json(&b, "/v1/peers").await;
    assert!(peers.peer(&new.to_string()).is_some(), "{peers:?}");

    for n in [a, b] {
        n.shutdown().await;
    }
}

/// The chain-view watchdog on a real chain: anvil without transactions mines nothing, so the
/// node's chain source is frozen — the stall is raised once (log, metric, API); blocks coming
/// back clear it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_raises_a_frozen_chain_source_and_clears_it_when_blocks_return() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let RegistryChain {
        anvil,
        gov,
        operators: ops,
    } = chain_with_operators(1, &d.join("anvil.json"), &["signers"]).await;
    let peer = keys::generate(&d.join("a.key"), KeyType::Ed25519).unwrap();
    ops[0].authorize(&peer, 1, 0, OPEN_ENDED).await.unwrap();
    anvil.mine(3).await.unwrap();
    // A stall is 1.5 s without a new head: far above the gaps between heads on a loaded test
    // machine polling every 100 ms, so once cleared it cannot flap back.
    let stall = |c: &mut NodeConfig| {
        c.watchdog = WatchdogSection {
            block_ms: 500,
            variance_ms: 1000,
            raise_after_ms: 500,
            clear_after_ms: 600,
            silence_secs: 600,
            ..WatchdogSection::default()
        }
    };
    let a = start_with(d, "a", &anvil.url, &gov.contract().to_string(), stall).await;

    // No transactions, no blocks: the source is frozen.
    until_answer(
        &a,
        "/v1/altnet/watchdog",
        "the stall to be raised",
        |s, w: &WatchdogAnswer| s == 200 && w.raised.iter().any(|r| r == "stalled"),
    )
    .await;
    let (_, metrics) = get(&a, "/metrics").await;
    assert!(
        metrics.contains("conclave_watchdog_anomaly{anomaly=\"stalled\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("conclave_watchdog_raised_total{anomaly=\"stalled\"} 1"));

    // Blocks again, every 100 ms: cleared, and not raised a second time.
    let miner = Miner::start(anvil.url.clone(), Duration::from_millis(100));
    until_answer(
        &a,
        "/v1/altnet/watchdog",
        "the stall to clear",
        |s, w: &WatchdogAnswer| s == 200 && w.raised.is_empty(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, metrics) = get(&a, "/metrics").await;
    assert!(metrics.contains("conclave_watchdog_anomaly{anomaly=\"stalled\"} 0"));
    assert!(
        metrics.contains("conclave_watchdog_raised_total{anomaly=\"stalled\"} 1"),
        "one raise, no flapping: {metrics}"
    );
    drop(miner);
    a.shutdown().await;
}

/// Tip announcements, anycast header fetch and fallback on a real chain. Three members (one
/// group, all seated) announce their tips on `chain-tip` and coordinate every 20 blocks. When
/// node a's chain source freezes (its RPC path is cut) while the chain moves on, the other two
/// operators' tips run ahead and a raises `behind`; it fetches the missing headers from them
/// over p2p and HTTP, accepts what both operators agree on, and acts on that fallback tip:
/// `/readyz` and the metrics say so, and a keeps settling coordination windows past its frozen
/// head. The others never leave their source. With the path back, a returns to its source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_chain_source_freezes_follows_members_headers_and_keeps_coordinating() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let RegistryChain {
        anvil,
        gov,
        operators: ops,
    } = chain_with_operators(3, &d.join("anvil.json"), &["signers", "chain-tip", "coord"]).await;
    let group = conclave_core::GroupId([0xa1; 20]);
    let seats: Vec<OperatorId> = ops.iter().map(RegistryChain::id_of).collect();
    gov.set_group(group, &seats).await.unwrap();
    let mut peers = Vec::new();
    for (op, name) in ops.iter().zip(["a", "b", "c"]) {
        let peer = keys::generate(&d.join(format!("{name}.key")), KeyType::Ed25519).unwrap();
        op.authorize(&peer, 0b111, 0, OPEN_ENDED).await.unwrap();
        peers.push(peer);
    }
    anvil.mine(2).await.unwrap();
    let proxy = RpcProxy::start(anvil.port).await.unwrap();
    let settings = |c: &mut NodeConfig| {
        c.watchdog = WatchdogSection {
            block_ms: 60_000,
            silence_secs: 600,
            tip_secs: 1,
            ahead_blocks: 3,
            quorum: 2,
            raise_after_ms: 300,
            clear_after_ms: 600,
            fetch_ms: 500,
            ..WatchdogSection::default()
        };
        c.altnet.http_listen = Some("127.0.0.1:0".into());
        c.coordination = CoordinationSection {
            enabled: true,
            frequency: 20,
            active: 10,
            passive: 5,
            safe_shift: 3,
            ..CoordinationSection::default()
        };
    };
    // b and c first, so a can poll their HTTP APIs too.
    let mut nodes = Vec::new();
    for name in ["b", "c"] {
        nodes.push(start_with(d, name, &anvil.url, &gov.contract().to_string(), settings).await);
    }
    let http_peers = vec![
        format!("http://{}", nodes[0].altnet_http_addr.unwrap()),
        format!("http://{}", nodes[1].altnet_http_addr.unwrap()),
    ];
    // The header listener is read-only: signed headers, and nothing of the API besides.
    let listener = nodes[0].altnet_http_addr.unwrap();
    let r = reqwest::get(format!("http://{listener}/v1/peers"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let a_settings = |c: &mut NodeConfig| {
        settings(c);
        c.altnet.http_peers = http_peers;
    };
    nodes.insert(
        0,
        start_with(d, "a", &proxy.url, &gov.contract().to_string(), a_settings).await,
    );
    for (i, node) in nodes.iter().enumerate() {
        let addr = tcp_addr(node).await;
        ops[i]
            .set_node_addresses(&peers[i], vec![addr])
            .await
            .unwrap();
    }
    let miner = Miner::start(anvil.url.clone(), Duration::from_millis(100));
    for n in &nodes {
        until(n, "/metrics", "tips from the other members", |_, m| {
            m.contains("conclave_watchdog_tips_total{reason=\"accepted\"}")
        })
        .await;
    }

    // Coordination runs before the freeze: every member has settled a window with a proposal.
    for n in &nodes {
        until_json(
            n,
            "/v1/coordination/windows",
            "a settled window",
            |v: &WindowsAnswer| v.windows.iter().any(|w| w.proposal.is_some()),
        )
        .await;
    }

    proxy.cut();
    let frozen = get_json::<WatchdogAnswer>(&nodes[0], "/v1/altnet/watchdog")
        .await
        .head;
    let behind = |w: &WatchdogAnswer| w.raised.iter().any(|r| r == "behind");
    let w = until_json(
        &nodes[0],
        "/v1/altnet/watchdog",
        "a to follow members' headers",
        |v: &WatchdogAnswer| {
            v.following == Following::Fallback
                && v.fallback_tip.as_ref().map(|t| t.height) > Some(frozen + 20)
        },
    )
    .await;
    assert!(behind(&w), "{w:?}");
    // Both header-capable paths answered: libp2p (tcp) and the signed HTTP driver.
    let fetch = w
        .last_fetch
        .as_ref()
        .unwrap_or_else(|| panic!("no header fetch: {w:?}"));
    let drivers: Vec<&str> = fetch
        .drivers
        .iter()
        .filter(|d| d.answers > 0)
        .map(|d| d.driver.as_str())
        .collect();
    assert!(
        drivers.contains(&"tcp") && drivers.contains(&"http"),
        "{w:?}"
    );
    // The fallback tip is a real block of the chain the members follow.
    let tip = w.fallback_tip.as_ref().unwrap();
    let on_chain: Value = reqwest::Client::new()
        .post(&anvil.url)
        .json(&serde_json::json!({"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":[format!("{:#x}", tip.height), false]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(on_chain["result"]["hash"], tip.hash, "{w:?}");
    let d: DriversAnswer = get_json(&nodes[0], "/v1/altnet/drivers").await;
    let names: Vec<&str> = d.drivers.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["tcp", "quic", "ws", "relay", "http"], "{d:?}");
    assert_eq!(d.drivers[0].health.state, "up", "{d:?}");
    assert_eq!(
        d.drivers[4].capabilities.delivery,
        DeliveryMode::Polled,
        "{d:?}"
    );
    let ready: ReadyAnswer = get_json(&nodes[0], "/readyz").await;
    assert_eq!(
        ready.chain.map(|c| c.following),
        Some(Following::Fallback),
        "{ready:?}"
    );
    let metrics = get(&nodes[0], "/metrics").await.1;
    assert!(metrics.contains("conclave_altnet_fallback 1"), "{metrics}");
    assert!(
        metrics.contains("conclave_altnet_header_fetches_total{reason=\"accepted\"}"),
        "{metrics}"
    );
    // a keeps coordinating on the fallback tip: a window past its frozen head settles with a
    // proposal and no fault, as at the members that follow their own source.
    let past_frozen = |v: &WindowsAnswer| -> Vec<WindowOutcome> {
        v.windows
            .iter()
            .filter(|w| w.coordination_block > frozen + 3)
            .cloned()
            .collect()
    };
    let windows = until_json(
        &nodes[0],
        "/v1/coordination/windows",
        "a window settled on the fallback tip",
        |v: &WindowsAnswer| !past_frozen(v).is_empty(),
    )
    .await;
    for w in past_frozen(&windows) {
        assert!(w.proposal.is_some(), "{w:?}");
        assert!(w.faults.is_empty(), "{w:?}");
    }
    for n in &nodes[1..] {
        let v: WatchdogAnswer = get_json(n, "/v1/altnet/watchdog").await;
        assert_eq!(v.following, Following::Source, "{v:?}");
        assert!(!behind(&v), "{v:?}");
    }

    proxy.restore();
    until_json(
        &nodes[0],
        "/v1/altnet/watchdog",
        "a back on its own source",
        |v: &WatchdogAnswer| v.following == Following::Source && !behind(v),
    )
    .await;
    let metrics = get(&nodes[0], "/metrics").await.1;
    assert!(metrics.contains("conclave_altnet_fallback 0"), "{metrics}");
    drop(miner);
    for n in nodes {
        n.shutdown().await;
    }
}
