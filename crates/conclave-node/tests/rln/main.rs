//! The anonymous RLN channel across nodes on loopback, with real proofs: honest messages reach
//! every member without a sender identity; a member that double signals is detected, its secret
//! recovered, the evidence verified and the member removed on every node; its later messages are
//! rejected; a node started late rebuilds the same tree from the registry and the removals.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod byzantine;
#[path = "../common/mod.rs"]
mod common;
mod honest;
mod onchain;
mod slashing;
mod stem;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{get, get_json, listen_addrs, now_ms, until_json};
use conclave_api::{
    AnonymousDeliveryFrame, MembershipAnswer, ReadyAnswer, RlnPublishAnswer, RlnRemovedAnswer,
    RlnStatusAnswer, StreamFrame,
};
use conclave_core::OperatorId;
use conclave_node::config::{EvmSection, NodeConfig, RlnSection};
use conclave_node::keys::{self, KeyType};
use conclave_node::{NodeHooks, RunningNode};
use conclave_registry::RlnEntry;
use conclave_rln::{
    fr_from_bytes, fr_to_hex, EpochRules, NullifierLog, ProofPool, RlnChannel, RlnIdentifier,
    RlnIdentity, RlnMembership, RlnRegistration,
};
use conclave_testkit::{eventually, RegistryChain, RegistryDoc, WAIT};
use futures::StreamExt;
use serde_json::Value;

const LIMIT: u32 = 10;
const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn op(i: usize) -> OperatorId {
    OperatorId([0x20 + i as u8; 20])
}

fn registry(peers: &[String], rate: &[String], limit: u32, addrs: &[Vec<String>]) -> RegistryDoc {
    rate.iter().enumerate().fold(
        common::members(peers, addrs, &[conclave_node::SLASH_TOPIC], op),
        |doc, (i, r)| {
            doc.rln(RlnEntry {
                operator: op(i).to_string(),
                index: i as u32 * 2,
                rate_commitment: r.clone(),
                limit,
                validator_pubkey: None,
                validator_signature: None,
            })
        },
    )
}

/// Node keys `<name>.key` and RLN identities `<name>.rln` in `d`: the PeerIds, the rate
/// commitments for `limit` (hex, as the registry takes them) and the identities.
fn generate_members(
    d: &Path,
    names: &[&str],
    limit: u32,
) -> (Vec<String>, Vec<String>, Vec<RlnIdentity>) {
    let (mut peers, mut rates, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for n in names {
        peers.push(
            keys::generate(&d.join(format!("{n}.key")), KeyType::Ed25519)
                .unwrap()
                .to_string(),
        );
        let id = keys::generate_rln(&d.join(format!("{n}.rln"))).unwrap();
        rates.push(format!("0x{}", fr_to_hex(&id.rate_commitment(limit))));
        ids.push(id);
    }
    (peers, rates, ids)
}

/// Starts `names` (with `tweak`) on the registry of `peers` and `rates`, writes where they listen
/// into it, and waits until every one is ready with `leaves` leaves in its RLN tree.
async fn start_network(
    d: &Path,
    names: &[&str],
    (peers, rates, limit): (&[String], &[String], u32),
    leaves: usize,
    tweak: impl Fn(&mut NodeConfig) + Copy,
) -> Vec<RunningNode> {
    registry(peers, rates, limit, &[]).write(&d.join("registry.toml"));
    let mut nodes = Vec::new();
    for n in names {
        nodes.push(start_with(d, n, tweak).await);
    }
    let mut addrs = Vec::new();
    for n in &nodes {
        addrs.push(listen_addrs(n, 1).await);
    }
    registry(peers, rates, limit, &addrs).write(&d.join("registry.toml"));
    for n in &nodes {
        until_json(n, "/readyz", "readiness", |r: &ReadyAnswer| r.ready).await;
        until_json(
            n,
            "/v1/rln/status",
            "the RLN tree",
            |v: &RlnStatusAnswer| v.members == leaves,
        )
        .await;
    }
    nodes
}

/// The anonymous channel of node `name`: its identity `<name>.rln`, the test network's
/// identifier, the `anon` topic.
fn rln_section(name: &str) -> RlnSection {
    RlnSection {
        enabled: true,
        key: Some(format!("{name}.rln").into()),
        identifier: "conclave/test".into(),
        topics: vec!["anon".into()],
        ..RlnSection::default()
    }
}

async fn start(dir: &Path, name: &str) -> RunningNode {
    start_with(dir, name, |_| {}).await
}

/// Node `name` on the registry file, announcing removals every second; `tweak` adds
/// configuration.
async fn start_with(dir: &Path, name: &str, tweak: impl FnOnce(&mut NodeConfig)) -> RunningNode {
    let mut config = common::node_config(name);
    common::file_registry(&mut config, "registry.toml");
    config.rln = RlnSection {
        announce_removed_secs: 1,
        ..rln_section(name)
    };
    tweak(&mut config);
    common::start_node(dir, name, &config, &[], NodeHooks::default()).await
}

/// The status and the body of a POST.
async fn post(node: &RunningNode, path: &str, body: &[u8]) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("http://{}{path}", node.http_addr))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// Publishes anonymously, retrying while the anonymous mesh is still forming (503).
async fn publish(node: &RunningNode, body: &[u8]) -> RlnPublishAnswer {
    eventually("an anonymous publish to go through", || async {
        let (status, v) = post(node, "/v1/rln/publish/anon", body).await;
        if status == 200 {
            return Ok(serde_json::from_str(&v)
                .unwrap_or_else(|e| panic!("not an RlnPublishAnswer: {e}: {v}")));
        }
        assert_eq!(status, 503, "{v}");
        // Every attempt takes a message id of the epoch's quota: not too many of them.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Err(format!("anonymous publish kept failing: {v}"))
    })
    .await
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(node: &RunningNode) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{}/v1/rln/subscribe/anon", node.http_addr))
        .await
        .unwrap()
        .0
}

/// The next text frame on `ws` within `within`, if any.
async fn next_text(ws: &mut Ws, within: Duration) -> Option<String> {
    match tokio::time::timeout(within, ws.next()).await.ok()??.ok()? {
        tokio_tungstenite::tungstenite::Message::Text(t) => Some(t.as_str().to_owned()),
        _ => None,
    }
}

/// Reads a frame of the anonymous stream: a delivery, or the test fails (a frame that is not
/// one, or a lag note).
fn delivery(text: &str) -> AnonymousDeliveryFrame {
    match serde_json::from_str::<StreamFrame<AnonymousDeliveryFrame>>(text) {
        Ok(StreamFrame::Item(f)) => f,
        other => panic!("not an anonymous delivery: {other:?}: {text}"),
    }
}

/// The next delivery on `ws` within `within`, if any.
async fn next(ws: &mut Ws, within: Duration) -> Option<AnonymousDeliveryFrame> {
    next_text(ws, within).await.map(|t| delivery(&t))
}

fn payload(f: &AnonymousDeliveryFrame) -> Vec<u8> {
    f.payload()
        .unwrap_or_else(|e| panic!("payload is not base64: {e}: {f:?}"))
}

fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// A member's client outside the nodes: drafts and proves frames for any identity under the
/// tree of the registrations it was given (real proofs), for sending raw through a node.
struct Forger {
    channel: RlnChannel,
    pool: ProofPool,
}

impl Forger {
    /// A forger under the tree of `rates` at leaves 0, 2, 4, … (as [`registry`] places them).
    fn for_rates(rates: &[String], limit: u32) -> Self {
        Forger::new(
            rates
                .iter()
                .enumerate()
                .map(|(i, r)| RlnRegistration {
                    index: i as u32 * 2,
                    rate_commitment: fr_from_bytes(&hex::decode(&r[2..]).unwrap()).unwrap(),
                    limit,
                })
                .collect(),
        )
    }

    fn new(regs: Vec<RlnRegistration>) -> Self {
        let mut membership = RlnMembership::new(5);
        membership.apply(regs).unwrap();
        Forger {
            channel: RlnChannel::new(
                EpochRules::default(),
                RlnIdentifier::new("conclave/test"),
                membership,
                NullifierLog::new(100, 1 << 20),
            ),
            pool: ProofPool::new(1, 4),
        }
    }

    /// A freshly proven frame (a new proof every call, even for the same message).
    async fn frame(&self, id: &RlnIdentity, body: &[u8], ts: u64, message_id: u32) -> Vec<u8> {
        let draft = self
            .channel
            .draft(id, "anon", body.to_vec(), ts, message_id)
            .unwrap();
        let p = self
            .pool
            .prove(draft.witness.clone(), None)
            .await
            .unwrap()
            .value;
        draft.finish(p.0, p.1).encode()
    }

    /// Member `id` sends two different messages under message id 0 in one epoch (a double
    /// signal), gossiped from `node`. Returns when the gossip started.
    async fn double_signal(&self, node: &RunningNode, id: &RlnIdentity) -> Instant {
        let mut frames = Vec::new();
        for (k, body) in [&b"spam one"[..], b"spam two"].iter().enumerate() {
            frames.push(self.frame(id, body, now_ms() + k as u64, 0).await);
        }
        let started = Instant::now();
        send_raw(node, frames).await;
        started
    }
}

/// Stays clear of an epoch border, so messages sent next share the epoch.
async fn mid_epoch() {
    let rules = EpochRules::default();
    eventually("a moment clear of an epoch border", || async {
        (now_ms() / 1000) % rules.epoch_secs < rules.epoch_secs - 3
    })
    .await;
}

/// Gossips frames as they are, bypassing the node's own publish checks.
async fn send_raw(node: &RunningNode, frames: Vec<Vec<u8>>) {
    for f in frames {
        node.network()
            .publish_anonymous("anon".parse().unwrap(), f)
            .await
            .unwrap();
    }
}
