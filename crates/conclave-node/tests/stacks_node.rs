//! Nodes configured with `[registry] source = "stacks"` against a Stacks node stand-in whose
//! state is a real Clarity VM (scripts/stacks-simnet.mjs): signers in the contract's set connect
//! and a key outside it is refused; a candidate is admitted with its narrower scopes; a rotation
//! (a contract call) evicts the signer it removes and admits the one it adds within one poll; a
//! set holding a 33-byte value that is not a curve point is refused while the previous set stays;
//! the endpoint going down marks the view stale until it is back; an empty set admits no one.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{get, get_json, listen_addrs, start_node, until, until_answer, until_json};
use conclave_api::{MembershipAnswer, PeersAnswer, ReadyAnswer};
use conclave_node::config::StacksSection;
use conclave_node::keys::{self, KeyType};
use conclave_node::RunningNode;
use conclave_registry::stacks::simnet::StacksSimnet;
use conclave_registry::stacks::SignerKey;
use conclave_testkit::eventually;

/// A secp256k1 node key in `<name>.key`, as the signer key the contract lists.
fn signer_key(dir: &Path, name: &str) -> SignerKey {
    let path = dir.join(format!("{name}.key"));
    keys::generate(&path, KeyType::Secp256k1).unwrap();
    let (pair, _) = keys::load(&path).unwrap();
    let compressed = pair.public().try_into_secp256k1().unwrap().to_bytes();
    SignerKey::from_compressed(compressed).unwrap()
}

async fn start(
    dir: &Path,
    name: &str,
    simnet: &StacksSimnet,
    candidates: &[&SignerKey],
    seeds: Vec<String>,
) -> RunningNode {
    let mut config = common::node_config(name);
    config.registry.source = "stacks".into();
    config.stacks = StacksSection {
        node_url: Some(simnet.url.clone()),
        registry_contract: Some(simnet.contract.to_string()),
        poll_ms: 100,
        member_scopes: vec!["signers".into(), "dkg".into()],
        candidates: candidates
            .iter()
            .map(|k| hex::encode(k.compressed))
            .collect(),
        candidate_scopes: vec!["dkg".into()],
        ..StacksSection::default()
    };
    config.seeds = seeds;
    config.topics = vec!["signers".into(), "dkg".into()];
    config.ready_quorum = Some(1);
    start_node(dir, name, &config, &[], Default::default()).await
}

/// The inbound connections `node` refused as not a member.
async fn refused(node: &RunningNode) -> f64 {
    let (_, m) = get(node, "/metrics").await;
    m.lines()
        .filter(|l| {
            l.starts_with("conclave_connections_denied_total")
                && l.contains("direction=\"inbound\"")
                && l.contains("reason=\"not_member\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn connected(node: &RunningNode) -> Vec<String> {
    let p: PeersAnswer = get_json(node, "/v1/peers").await;
    p.peers.into_iter().map(|p| p.peer_id).collect()
}

async fn publish(node: &RunningNode, topic: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{}/v1/publish/{topic}", node.http_addr))
        .body("hello")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contracts_signer_set_gates_the_network_and_rotations_evict_and_admit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let simnet = StacksSimnet::spawn().unwrap();
    let [a, b, c, cand] = ["a", "b", "c", "d"].map(|n| signer_key(d, n));
    let r = simnet
        .rotate(&[a.compressed, b.compressed], &a.compressed, 2)
        .await
        .unwrap();
    assert!(r.ok, "{r:?}");
    assert!(r.events[0].contains("key-rotation"), "{r:?}");

    let na = start(d, "a", &simnet, &[&cand], vec![]).await;
    let a_tcp = listen_addrs(&na, 1).await.remove(0);
    let seed = vec![format!("{a_tcp}/p2p/{}", a.peer)];
    let nb = start(d, "b", &simnet, &[&cand], seed.clone()).await;
    // c is no member, but its own configuration says it is a candidate: it dials a, which
    // refuses it (a node its own view leaves out would not even dial).
    let nc = start(d, "c", &simnet, &[&cand, &c], seed.clone()).await;
    let nd = start(d, "d", &simnet, &[&cand], seed).await;

    // Signers and the candidate connect; c, outside the set, is refused at the handshake.
    let m: MembershipAnswer = get_json(&na, "/v1/membership").await;
    assert!(m.view.source.starts_with("stacks "), "{m:?}");
    assert_eq!(m.view.operators.len(), 3, "{m:?}");
    eventually("c to be refused", || async { refused(&na).await >= 1.0 }).await;
    until_json(&na, "/v1/peers", "b and d connected", |p: &PeersAnswer| {
        let ids: Vec<_> = p.peers.iter().map(|p| p.peer_id.clone()).collect();
        ids.contains(&b.peer.to_string()) && ids.contains(&cand.peer.to_string())
    })
    .await;
    assert!(!connected(&na).await.contains(&c.peer.to_string()));
    let r: ReadyAnswer = get_json(&nc, "/readyz").await;
    assert!(!r.ready && r.connected_members == 0, "{r:?}");
    assert!(
        r.not_ready[0].contains("members needed are connected"),
        "{r:?}"
    );
    // The candidate may sign only its own scopes.
    assert_eq!(publish(&nd, "signers").await, 403);
    assert_eq!(publish(&nd, "dkg").await, 200);

    // One signer out, one in: one new view, in which b is gone and c is in.
    let r = simnet
        .rotate(&[a.compressed, c.compressed], &a.compressed, 2)
        .await
        .unwrap();
    assert!(r.ok, "{r:?}");
    until_json(
        &na,
        "/v1/peers",
        "b evicted and c admitted",
        |p: &PeersAnswer| {
            let ids: Vec<_> = p.peers.iter().map(|p| p.peer_id.clone()).collect();
            !ids.contains(&b.peer.to_string()) && ids.contains(&c.peer.to_string())
        },
    )
    .await;
    let m: MembershipAnswer = get_json(&na, "/v1/membership").await;
    assert_eq!(m.revision, 2, "one poll, one view: {m:?}");
    let r: ReadyAnswer = until_answer(&nb, "/readyz", "b out of the set", |s, r: &ReadyAnswer| {
        s == 503 && !r.member
    })
    .await;
    assert!(!r.ready);
    assert_eq!(publish(&nb, "signers").await, 403);
    let (_, metrics) = get(&nb, "/metrics").await;
    assert!(metrics.contains("conclave_self_member 0"), "{metrics}");
    until(&na, "/metrics", "b's eviction counted", |_, m| {
        m.contains("conclave_peers_evicted_total{reason=\"not_member\"} 1")
    })
    .await;

    // The contract checks lengths only: 33 bytes that are not a point go in, and the node
    // refuses the whole set, keeping the previous one.
    let mut not_a_point = [0xff; 33];
    not_a_point[0] = 0x02;
    let r = simnet
        .rotate(&[a.compressed, c.compressed, not_a_point], &a.compressed, 2)
        .await
        .unwrap();
    assert!(r.ok, "{r:?}");
    let m = until_json(
        &na,
        "/v1/membership",
        "the refusal",
        |m: &MembershipAnswer| m.rejected_updates == 1,
    )
    .await;
    assert!(
        m.last_error
            .as_deref()
            .is_some_and(|e| e.contains("signer key 2")),
        "{m:?}"
    );
    assert_eq!(m.revision, 2, "{m:?}");
    assert!(m.view.node(&c.peer.to_string()).is_some(), "{m:?}");
    assert!(connected(&na).await.contains(&c.peer.to_string()));

    // The endpoint goes down: the view stays, marked stale; back up, the mark clears (and the
    // refusal, still the content in force, is reported again).
    simnet.set_outage(true).await.unwrap();
    until_answer(&na, "/readyz", "stale", |s, r: &ReadyAnswer| {
        s == 503 && r.registry_stale
    })
    .await;
    let (_, metrics) = get(&na, "/metrics").await;
    assert!(metrics.contains("conclave_registry_stale 1"), "{metrics}");
    assert!(connected(&na).await.contains(&c.peer.to_string()));
    simnet.set_outage(false).await.unwrap();
    let m = until_json(
        &na,
        "/v1/membership",
        "fresh again",
        |m: &MembershipAnswer| !m.stale,
    )
    .await;
    assert!(
        m.last_error
            .as_deref()
            .is_some_and(|e| e.contains("signer key 2")),
        "{m:?}"
    );
    until(&na, "/readyz", "ready again", |s, _| s == 200).await;

    // An empty set admits no one, the candidate included, and says so.
    let r = simnet.rotate(&[], &a.compressed, 0).await.unwrap();
    assert!(r.ok, "{r:?}");
    let m = until_json(
        &na,
        "/v1/membership",
        "the empty set",
        |m: &MembershipAnswer| m.view.operators.is_empty(),
    )
    .await;
    assert!(m.warnings[0].contains("empty"), "{m:?}");
    assert!(m.last_error.is_none(), "{m:?}");
    until_json(&na, "/v1/peers", "everyone evicted", |p: &PeersAnswer| {
        p.peers.is_empty()
    })
    .await;
    let r: ReadyAnswer = get_json(&na, "/readyz").await;
    assert!(!r.member && !r.ready, "{r:?}");

    for n in [na, nb, nc, nd] {
        n.shutdown().await;
    }
}
