//! Coordination windows over the network: five nodes on loopback, two groups with repeated
//! seats, windows on a fast clock chain. Every honest follower accepts its leader's proposal; an
//! impostor is recorded by every other follower; results survive a restart.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{get_json, listen_addrs, now_ms, start_node, until_json};

use conclave_api::{FaultsAnswer, ReadyAnswer, WindowsAnswer};
use conclave_coord::{leader, seed, Fault, FaultKind, WindowOutcome, WindowParams};
use conclave_core::{GroupId, OperatorId};
use conclave_node::config::{ClockChainSection, CoordinationSection};
use conclave_node::keys::{self, KeyType};
use conclave_node::RunningNode;
use conclave_registry::clock_chain::clock_block_hash;
use conclave_testkit::RegistryDoc;

const BLOCK_MS: u64 = 100;
const PARAMS: WindowParams = WindowParams {
    frequency: 20,
    active: 10,
    passive: 5,
    safe_shift: 3,
};

fn op(i: usize) -> OperatorId {
    OperatorId([0x10 + i as u8; 20])
}

const G1: GroupId = GroupId([0xa1; 20]);
const G2: GroupId = GroupId([0xb2; 20]);

fn g1_seats() -> Vec<OperatorId> {
    vec![op(0), op(1), op(2), op(0), op(3)]
}

fn g2_seats() -> Vec<OperatorId> {
    vec![op(1), op(2), op(3), op(4), op(4)]
}

fn registry(peers: &[String], addrs: &[Vec<String>]) -> RegistryDoc {
    common::members(peers, addrs, &["signers", "coord"], op)
        .group(G1, &g1_seats())
        .group(G2, &g2_seats())
}

async fn start(dir: &Path, name: &str, genesis: u64) -> RunningNode {
    start_with(dir, name, genesis, conclave_node::NodeHooks::default()).await
}

async fn start_with(
    dir: &Path,
    name: &str,
    genesis: u64,
    hooks: conclave_node::NodeHooks,
) -> RunningNode {
    let mut config = common::node_config(name);
    common::file_registry(&mut config, "registry.toml");
    config.ready_quorum = Some(4);
    config.clock_chain = ClockChainSection {
        genesis_ms: Some(genesis),
        block_ms: BLOCK_MS,
    };
    config.coordination = CoordinationSection {
        enabled: true,
        frequency: PARAMS.frequency,
        active: PARAMS.active,
        passive: PARAMS.passive,
        safe_shift: PARAMS.safe_shift,
        ..CoordinationSection::default()
    };
    start_node(dir, name, &config, &[], hooks).await
}

/// Five nodes `a`..`e` (operators 0..4) on loopback, connected and ready; node `a` runs `a_hooks`.
/// Returns the nodes, their PeerIds and the clock chain's genesis.
async fn network(d: &Path, a_hooks: conclave_node::NodeHooks) -> (Vec<RunningNode>, u64) {
    let names = ["a", "b", "c", "d", "e"];
    let peers: Vec<String> = names
        .iter()
        .map(|n| {
            keys::generate(&d.join(format!("{n}.key")), KeyType::Ed25519)
                .unwrap()
                .to_string()
        })
        .collect();
    registry(&peers, &[]).write(&d.join("registry.toml"));
    let genesis = now_ms();
    let mut nodes = vec![start_with(d, "a", genesis, a_hooks).await];
    for n in &names[1..] {
        nodes.push(start(d, n, genesis).await);
    }
    let mut addrs = Vec::new();
    for n in &nodes {
        addrs.push(listen_addrs(n, 1).await);
    }
    registry(&peers, &addrs).write(&d.join("registry.toml"));
    for n in &nodes {
        until_json(n, "/readyz", "readiness", |r: &ReadyAnswer| r.ready).await;
    }
    (nodes, genesis)
}

/// The settled windows of `group` in a `/v1/coordination/windows` answer.
fn windows_of(v: &WindowsAnswer, group: GroupId) -> Vec<&WindowOutcome> {
    v.windows.iter().filter(|w| w.group == group).collect()
}

/// The faults of `group`'s window at `block` in a `/v1/coordination/faults` answer.
fn faults_at(v: &FaultsAnswer, group: GroupId, block: u64) -> Vec<&Fault> {
    v.faults
        .iter()
        .filter(|f| f.coordination_block == block && f.group == group)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_coordinate_impostors_are_recorded_and_results_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = ["a", "b", "c", "d", "e"];
    let (mut nodes, genesis) = network(d, Default::default()).await;

    // Two settled windows per group at every seat holder, each accepted (or led), no faults.
    let member_of = |i: usize, g: GroupId| {
        let seats = if g == G1 { g1_seats() } else { g2_seats() };
        seats.contains(&op(i))
    };
    for (i, n) in nodes.iter().enumerate() {
        for g in [G1, G2].into_iter().filter(|g| member_of(i, *g)) {
            let v = until_json(
                n,
                "/v1/coordination/windows",
                "two settled windows",
                |v: &WindowsAnswer| windows_of(v, g).len() >= 2,
            )
            .await;
            for w in windows_of(&v, g) {
                let block = w.coordination_block;
                let safe = clock_block_hash(genesis, block - PARAMS.safe_shift);
                let seats = if g == G1 { g1_seats() } else { g2_seats() };
                let expected = leader(&seed(&g, &safe), &seats).unwrap();
                assert_eq!(w.leader, Some(expected), "node {i}: {w:?}");
                assert!(w.proposal.is_some(), "node {i} has no proposal for {w:?}");
                assert!(w.faults.is_empty(), "node {i}: {w:?}");
            }
        }
    }

    // The leader of a coming G1 window goes silent (its node stops) and another G1 member
    // proposes in its place: every other follower records the impostor and the idle leader.
    let head = (now_ms() - genesis) / BLOCK_MS;
    let next = (head / PARAMS.frequency + 2) * PARAMS.frequency;
    let safe = clock_block_hash(genesis, next - PARAMS.safe_shift);
    let l = leader(&seed(&G1, &safe), &g1_seats()).unwrap();
    let silent = (0..5).find(|i| op(*i) == l).unwrap();
    let impostor = (0..4).find(|i| *i != silent).unwrap();
    let seat = g1_seats().iter().position(|o| *o == op(impostor)).unwrap() + 1;
    let leader_node = nodes.remove(silent);
    let before: WindowsAnswer = get_json(&leader_node, "/v1/coordination/windows").await;
    leader_node.shutdown().await;
    // After the shutdown, indexes shift: map operator index to position in `nodes`.
    let pos = |i: usize| if i > silent { i - 1 } else { i };
    let msg = conclave_coord::CoordinationMessage {
        sender_id: seat as u8,
        coordination_block: next,
        wallet_public_key_hash: conclave_coord::wire::Bytes20(G1.0),
        proposal: conclave_coord::Proposal::Noop,
    };
    // Send two blocks into the window's active phase.
    let at = genesis + (next + 2) * BLOCK_MS;
    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
    let r = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/publish/coord",
            nodes[pos(impostor)].http_addr
        ))
        .body(msg.encode())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    for i in (0..4).filter(|i| *i != impostor && *i != silent) {
        let n = &nodes[pos(i)];
        let v = until_json(
            n,
            "/v1/coordination/faults",
            "the faults of the window",
            |v: &FaultsAnswer| faults_at(v, G1, next).len() == 2,
        )
        .await;
        let faults: Vec<(FaultKind, OperatorId)> = faults_at(&v, G1, next)
            .into_iter()
            .map(|f| (f.kind, f.culprit))
            .collect();
        assert_eq!(
            faults,
            [
                (FaultKind::LeaderImpersonation, op(impostor)),
                (FaultKind::LeaderIdleness, l),
            ],
            "node {i}: {v:?}"
        );
    }

    // A restart keeps the recorded results.
    let back = start(d, names[silent], genesis).await;
    let after: WindowsAnswer = get_json(&back, "/v1/coordination/windows").await;
    let blocks = |v: &WindowsAnswer| -> Vec<u64> {
        v.windows.iter().map(|w| w.coordination_block).collect()
    };
    assert!(!blocks(&before).is_empty(), "{before:?}");
    assert!(
        blocks(&before).iter().all(|b| blocks(&after).contains(b)),
        "{before:?}\n{after:?}"
    );
    let judge = (0..4).find(|i| *i != impostor && *i != silent).unwrap();
    let m = reqwest::get(format!("http://{}/metrics", nodes[pos(judge)].http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("conclave_coordination_faults_total{kind=\"leader_impersonation\"}"),
        "{m}"
    );

    back.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}

/// A leader that always proposes moving funds, whatever the checklist says.
struct AlwaysMovingFunds;

impl conclave_coord::ProposalGenerator for AlwaysMovingFunds {
    fn generate(
        &self,
        _: &GroupId,
        _: u64,
        _: &[conclave_coord::ActionType],
    ) -> Option<conclave_coord::Proposal> {
        Some(conclave_coord::Proposal::MovingFunds {
            target_wallets: vec![conclave_coord::wire::Bytes20([9; 20])],
            moving_funds_tx_fee: 1000,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_proposing_off_the_checklist_is_recorded_as_a_mistake() {
    let dir = tempfile::tempdir().unwrap();
    // Node a (operator 0, two G1 seats) runs a generator that ignores the checklist.
    let hooks = conclave_node::NodeHooks {
        generator: std::sync::Arc::new(AlwaysMovingFunds),
        ..Default::default()
    };
    let (nodes, genesis) = network(dir.path(), hooks).await;
    // The next G1 window a leads whose index is not a multiple of 4 (no MovingFunds on it).
    let head = (now_ms() - genesis) / BLOCK_MS;
    let first = head / PARAMS.frequency + 1;
    let window = (first..first + 200)
        .find(|i| {
            let b = i * PARAMS.frequency;
            let safe = clock_block_hash(genesis, b - PARAMS.safe_shift);
            i % 4 != 0 && leader(&seed(&G1, &safe), &g1_seats()) == Some(op(0))
        })
        .expect("a leads some window soon");
    let block = window * PARAMS.frequency;
    for (i, n) in nodes.iter().enumerate().filter(|(i, _)| (1..4).contains(i)) {
        let v = until_json(
            n,
            "/v1/coordination/faults",
            "the mistake",
            |v: &FaultsAnswer| v.faults.iter().any(|f| f.coordination_block == block),
        )
        .await;
        let f = v
            .faults
            .iter()
            .find(|f| f.coordination_block == block)
            .unwrap();
        assert_eq!(f.kind, FaultKind::LeaderMistake, "node {i}: {f:?}");
        assert_eq!(f.culprit, op(0), "node {i}: {f:?}");
        // Nothing was accepted in that window: the leader is recorded idle as well.
        let w: WindowsAnswer = get_json(n, "/v1/coordination/windows").await;
        let settled = windows_of(&w, G1)
            .into_iter()
            .find(|w| w.coordination_block == block)
            .unwrap_or_else(|| panic!("node {i}: no settled G1 window at {block}: {w:?}"));
        assert!(settled.proposal.is_none(), "{settled:?}");
    }
    for n in nodes {
        n.shutdown().await;
    }
}

/// A leader that sends a second, different proposal in its window (its operator publishes it
/// through its own node) is recorded by every follower as equivocating, with both signed
/// messages as evidence anyone can check against the leader's node key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_leader_is_recorded_with_both_signed_proposals() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, genesis) = network(dir.path(), Default::default()).await;
    let head = (now_ms() - genesis) / BLOCK_MS;
    let next = (head / PARAMS.frequency + 2) * PARAMS.frequency;
    let safe = clock_block_hash(genesis, next - PARAMS.safe_shift);
    let l = leader(&seed(&G1, &safe), &g1_seats()).unwrap();
    let li = (0..5).find(|i| op(*i) == l).unwrap();
    let seat = g1_seats().iter().position(|o| *o == l).unwrap() + 1;
    // Its honest proposal goes out as the window opens; the second one three blocks later.
    let at = genesis + (next + 3) * BLOCK_MS;
    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
    let second = conclave_coord::CoordinationMessage {
        sender_id: seat as u8,
        coordination_block: next,
        wallet_public_key_hash: conclave_coord::wire::Bytes20(G1.0),
        proposal: conclave_coord::Proposal::Heartbeat {
            message: conclave_coord::wire::HexBytes(vec![0xee; 16]),
        },
    };
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/publish/coord", nodes[li].http_addr))
        .body(second.encode())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);

    let followers = (0..4).filter(|i| *i != li && g1_seats().contains(&op(*i)));
    let coord: conclave_core::TopicName = "coord".parse().unwrap();
    for i in followers {
        let v = until_json(
            &nodes[i],
            "/v1/coordination/faults",
            "the equivocation",
            |v: &FaultsAnswer| {
                faults_at(v, G1, next)
                    .iter()
                    .any(|f| f.kind == FaultKind::LeaderEquivocation)
            },
        )
        .await;
        let f = faults_at(&v, G1, next)
            .into_iter()
            .find(|f| f.kind == FaultKind::LeaderEquivocation)
            .unwrap();
        assert_eq!(f.culprit, l, "node {i}: {f:?}");
        assert_eq!(f.evidence.len(), 2, "both signed proposals: {f:?}");
        let mut proposals = Vec::new();
        for copy in &f.evidence {
            let source: conclave_core::PeerId = copy.node.parse().unwrap();
            assert_eq!(copy.node, nodes[li].peer_id().to_string());
            let envelope = conclave_core::Envelope {
                timestamp_ms: copy.timestamp_ms,
                payload: copy.payload.0.clone(),
                nonce: copy.nonce,
                signature: copy.signature.0.clone(),
            };
            assert!(
                conclave_net::verify_envelope(&source, &coord, &envelope),
                "the leader's key signed it: {copy:?}"
            );
            let m = conclave_coord::CoordinationMessage::decode(&copy.payload.0).unwrap();
            assert_eq!((m.coordination_block, m.sender_id), (next, seat as u8));
            proposals.push(m.proposal);
        }
        assert_ne!(proposals[0], proposals[1], "two different proposals");
    }
    for n in nodes {
        n.shutdown().await;
    }
}
