//! The anonymous RLN channel across nodes on loopback, with real proofs: honest messages reach
//! every member without a sender identity; a member that double signals is detected, its secret
//! recovered, the evidence verified and the member removed on every node; its later messages are
//! rejected; a node started late rebuilds the same tree from the registry and the removals.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{get, get_json, listen_addrs, now_ms, until_json, WAIT};
use conclave_api::{
    AnonymousDeliveryFrame, MembershipAnswer, ReadyAnswer, RlnPublishAnswer, RlnRemovedAnswer,
    RlnStatusAnswer, StreamFrame,
};
use conclave_core::OperatorId;
use conclave_node::keys::{self, KeyType};
use conclave_node::{NodeHooks, RunningNode};
use conclave_rln::{
    fr_from_bytes, fr_to_hex, EpochRules, NullifierLog, ProofPool, RlnChannel, RlnIdentifier,
    RlnIdentity, RlnMembership, RlnRegistration,
};
use futures::StreamExt;
use serde_json::Value;

const LIMIT: u32 = 10;
const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn op(i: usize) -> OperatorId {
    OperatorId([0x20 + i as u8; 20])
}

fn registry(peers: &[String], rate: &[String], limit: u32, addrs: &[Vec<String>]) -> String {
    let mut s = common::operators_toml(peers, addrs, &[conclave_node::SLASH_TOPIC], op);
    for (i, r) in rate.iter().enumerate() {
        s.push_str(&format!(
            "[[rln]]\noperator = \"{}\"\nindex = {}\nrate_commitment = \"{r}\"\nlimit = {limit}\n",
            op(i),
            i * 2
        ));
    }
    s
}

async fn start(dir: &Path, name: &str) -> RunningNode {
    start_with(dir, name, "").await
}

async fn start_with(dir: &Path, name: &str, extra: &str) -> RunningNode {
    let config = format!(
        "key_file = \"{name}.key\"\nregistry_file = \"registry.toml\"\nstate_dir = \"{name}-state\"\n\
         listen = [\"/ip4/127.0.0.1/tcp/0\"]\nhttp_listen = \"127.0.0.1:0\"\nregistry_poll_ms = 50\n\
         rln = true\nrln_key = \"{name}.rln\"\nrln_identifier = \"conclave/test\"\nrln_topics = [\"anon\"]\n\
         rln_announce_removed_secs = 1\n{extra}"
    );
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
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, v) = post(node, "/v1/rln/publish/anon", body).await;
        if status == 200 {
            return serde_json::from_str(&v)
                .unwrap_or_else(|e| panic!("not an RlnPublishAnswer: {e}: {v}"));
        }
        assert_eq!(status, 503, "{v}");
        assert!(
            Instant::now() < deadline,
            "anonymous publish kept failing: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    while (now_ms() / 1000) % rules.epoch_secs >= rules.epoch_secs - 3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_messages_and_slashing_across_five_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut peers = Vec::new();
    let mut rates = Vec::new();
    let mut ids = Vec::new();
    for n in NAMES {
        peers.push(
            keys::generate(&d.join(format!("{n}.key")), KeyType::Ed25519)
                .unwrap()
                .to_string(),
        );
        let id = keys::generate_rln(&d.join(format!("{n}.rln"))).unwrap();
        rates.push(format!("0x{}", fr_to_hex(&id.rate_commitment(LIMIT))));
        ids.push(id);
    }
    std::fs::write(
        d.join("registry.toml"),
        registry(&peers, &rates, LIMIT, &[]),
    )
    .unwrap();
    let mut nodes = Vec::new();
    for n in &NAMES[..5] {
        nodes.push(start(d, n).await);
    }
    let mut addrs = Vec::new();
    for n in &nodes {
        addrs.push(listen_addrs(n, 1).await);
    }
    std::fs::write(
        d.join("registry.toml"),
        registry(&peers, &rates, LIMIT, &addrs),
    )
    .unwrap();
    for n in &nodes {
        until_json(n, "/readyz", "readiness", |r: &ReadyAnswer| r.ready).await;
        until_json(
            n,
            "/v1/rln/status",
            "the RLN tree",
            |v: &RlnStatusAnswer| v.members == 6,
        )
        .await;
    }
    let root = get_json::<RlnStatusAnswer>(&nodes[0], "/v1/rln/status")
        .await
        .root;

    // Honest: a's message reaches b..e, with no sender identity.
    let mut subs = Vec::new();
    for n in &nodes[1..] {
        subs.push(subscribe(n).await);
    }
    // Read as an `RlnPublishAnswer`, the answer carries `"status": "published"`.
    let RlnPublishAnswer::Published { .. } = publish(&nodes[0], b"anonymous hello").await;
    for ws in subs.iter_mut() {
        let text = next_text(ws, WAIT)
            .await
            .expect("honest anonymous message delivered");
        let v = delivery(&text);
        assert_eq!(payload(&v), b"anonymous hello", "{v:?}");
        assert_eq!(v.topic, "anon", "{v:?}");
        // The frame is exactly an `AnonymousDeliveryFrame`, which has no sender fields: nothing
        // beyond them (no operator, no node) travels.
        let sent: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            sent,
            serde_json::to_value(&v).unwrap(),
            "no sender identity: {text}"
        );
    }

    // A spammer: member e reuses message id 0 in one epoch for two different payloads.
    let spammer = 4;
    let regs: Vec<RlnRegistration> = rates
        .iter()
        .enumerate()
        .map(|(i, r)| RlnRegistration {
            index: i as u32 * 2,
            rate_commitment: fr_from_bytes(&hex::decode(&r[2..]).unwrap()).unwrap(),
            limit: LIMIT,
        })
        .collect();
    let forge = Forger::new(regs);

    // A duplicate — the same message proven twice (two proofs, so two gossip ids, one nullifier
    // and one share) — is delivered once and ignored the second time, never slashed.
    mid_epoch().await;
    let ts = now_ms();
    let mut dup = Vec::new();
    for _ in 0..2 {
        dup.push(forge.frame(&ids[0], b"said twice", ts, LIMIT - 1).await);
    }
    assert_ne!(dup[0], dup[1], "two different proofs");
    send_raw(&nodes[0], dup).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut ignored = 0.0;
        for n in &nodes[1..] {
            let text = get(n, "/metrics").await.1;
            ignored += metric(&text, "conclave_rln_messages_total", "reason=\"duplicate\"");
        }
        if ignored >= 4.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "duplicates ignored by {ignored} of 4 nodes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (ws, n) in subs.iter_mut().zip(&nodes[1..]) {
        let mut got = 0;
        while let Some(v) = next(ws, Duration::from_millis(500)).await {
            got += usize::from(payload(&v) == b"said twice");
        }
        assert_eq!(got, 1, "delivered once");
        let status: RlnStatusAnswer = get_json(n, "/v1/rln/status").await;
        assert_eq!(status.members, 6, "nobody slashed: {status:?}");
    }

    mid_epoch().await;
    let started = forge.double_signal(&nodes[spammer], &ids[spammer]).await;
    let rules = EpochRules::default();
    let secret = hex::encode(ids[spammer].secret_bytes());
    let mut removed_root = None;
    for n in &nodes {
        let v = until_json(
            n,
            "/v1/rln/removed",
            "the spammer's removal",
            |v: &RlnRemovedAnswer| !v.removed.is_empty(),
        )
        .await;
        assert_eq!(v.removed.len(), 1, "only the spammer is removed: {v:?}");
        assert_eq!(v.removed[0].secret, secret, "{v:?}");
        let status: RlnStatusAnswer = get_json(n, "/v1/rln/status").await;
        assert_eq!(status.members, 5, "{status:?}");
        let removed_root = removed_root.get_or_insert_with(|| status.root.clone());
        assert_eq!(
            &status.root, removed_root,
            "every node removed the same leaf"
        );
    }
    let removed_root = removed_root.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(rules.epoch_secs),
        "removed everywhere within one epoch (took {took:?})"
    );
    assert_ne!(removed_root, root);
    // Whichever spam message a node saw first was valid; the second, the double signal, is never
    // delivered (which one comes first may differ between nodes).
    for ws in subs.iter_mut().take(3) {
        let mut got = Vec::new();
        while let Some(v) = next(ws, Duration::from_millis(300)).await {
            got.push(payload(&v));
        }
        let spam = got.iter().filter(|p| p.starts_with(b"spam ")).count();
        assert!(
            spam <= 1,
            "the double signal was delivered ({spam} spam messages)"
        );
    }

    // The removed member's later messages are rejected: its node refuses, and a forged one
    // under the old root is refused by everyone.
    let (status, v) = post(&nodes[spammer], "/v1/rln/publish/anon", b"still here?").await;
    assert_eq!(status, 409, "{v}");
    let after = forge
        .frame(&ids[spammer], b"after removal", now_ms(), 1)
        .await;
    send_raw(&nodes[spammer], vec![after]).await;
    for ws in subs.iter_mut().take(3) {
        while let Some(v) = next(ws, Duration::from_millis(1500)).await {
            assert_ne!(payload(&v), b"after removal");
        }
    }
    let mut unknown_root = 0.0;
    for n in &nodes[..spammer] {
        let text = get(n, "/metrics").await.1;
        unknown_root += metric(
            &text,
            "conclave_rln_messages_total",
            "reason=\"unknown_root\"",
        );
        assert!(metric(&text, "conclave_rln_slashings_total", "") <= 1.0);
    }
    assert!(
        unknown_root >= 1.0,
        "the forged message was rejected for its stale root"
    );

    // Honest members still publish.
    let RlnPublishAnswer::Published { .. } = publish(&nodes[1], b"after the slashing").await;

    // A node started late rebuilds the same tree from the registry and the announced removals.
    let late = start(d, "f").await;
    let v = until_json(
        &late,
        "/v1/rln/status",
        "the late joiner's tree",
        |v: &RlnStatusAnswer| v.root == removed_root,
    )
    .await;
    assert_eq!(v.members, 5, "{v:?}");
    let v: RlnRemovedAnswer = get_json(&late, "/v1/rln/removed").await;
    assert_eq!(
        v.removed.first().map(|r| r.secret.as_str()),
        Some(secret.as_str()),
        "{v:?}"
    );

    late.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}

/// Honest traffic at the quota across many short epochs, with a node restarted in the middle:
/// nobody is ever slashed, because message ids come from a persisted counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_traffic_across_epochs_and_a_restart_never_slashes() {
    const EPOCH_LIMIT: u32 = 1;
    let extra = "rln_epoch_secs = 2\nrln_timestamp_tolerance_ms = 6000\n";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = &NAMES[..5];
    let mut peers = Vec::new();
    let mut rates = Vec::new();
    for n in names {
        peers.push(
            keys::generate(&d.join(format!("{n}.key")), KeyType::Ed25519)
                .unwrap()
                .to_string(),
        );
        let id = keys::generate_rln(&d.join(format!("{n}.rln"))).unwrap();
        rates.push(format!("0x{}", fr_to_hex(&id.rate_commitment(EPOCH_LIMIT))));
    }
    std::fs::write(
        d.join("registry.toml"),
        registry(&peers, &rates, EPOCH_LIMIT, &[]),
    )
    .unwrap();
    let mut nodes = Vec::new();
    for n in names {
        nodes.push(Some(start_with(d, n, extra).await));
    }
    let mut addrs = Vec::new();
    for n in nodes.iter().flatten() {
        addrs.push(listen_addrs(n, 1).await);
    }
    std::fs::write(
        d.join("registry.toml"),
        registry(&peers, &rates, EPOCH_LIMIT, &addrs),
    )
    .unwrap();
    for n in nodes.iter().flatten() {
        until_json(n, "/readyz", "readiness", |r: &ReadyAnswer| r.ready).await;
        until_json(
            n,
            "/v1/rln/status",
            "the RLN tree",
            |v: &RlnStatusAnswer| v.members == 5,
        )
        .await;
    }

    // Every node publishes as fast as it can (one message per 2 s epoch is its quota) in at least
    // four epochs; node c restarts half-way, right after a round, in an epoch it has likely just
    // used.
    let restarted = 2;
    let mut published = vec![0usize; names.len()];
    let mut refused_quota = 0;
    let mut restarted_at = None;
    // Driven by progress, not by a fixed time, so a loaded machine only makes it slower: node c
    // restarts once every node has published twice, and the run ends once every node has
    // published four times and the quota has been hit.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(restarted_at.is_some() && published.iter().all(|p| *p >= 4) && refused_quota > 0) {
        assert!(
            Instant::now() < deadline,
            "no progress: published {published:?}, refused {refused_quota}, restarted {restarted_at:?}"
        );
        for (i, slot) in nodes.iter().enumerate() {
            let Some(n) = slot else { continue };
            let (status, v) = post(
                n,
                "/v1/rln/publish/anon",
                format!("{i}:{}", published[i]).as_bytes(),
            )
            .await;
            match status {
                200 => published[i] += 1,
                429 => refused_quota += 1,
                503 => {} // the anonymous mesh is still (re)forming
                other => panic!("unexpected {other}: {v}"),
            }
        }
        if restarted_at.is_none() && published.iter().all(|p| *p >= 2) {
            nodes[restarted].take().unwrap().shutdown().await;
            nodes[restarted] = Some(start_with(d, names[restarted], extra).await);
            restarted_at = Some(Instant::now());
        }
    }
    // Let the last messages settle, then check that nobody was ever slashed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in nodes.iter().flatten() {
        let v: RlnRemovedAnswer = get_json(n, "/v1/rln/removed").await;
        assert!(v.removed.is_empty(), "an honest member was removed: {v:?}");
        let status: RlnStatusAnswer = get_json(n, "/v1/rln/status").await;
        assert_eq!(status.members, 5, "{status:?}");
        let text = get(n, "/metrics").await.1;
        assert_eq!(
            metric(
                &text,
                "conclave_rln_messages_total",
                "reason=\"double_signal\""
            ),
            0.0
        );
        assert_eq!(metric(&text, "conclave_rln_slashings_total", ""), 0.0);
        assert!(metric(&text, "conclave_rln_messages_total", "outcome=\"accepted\"") > 0.0);
    }
    for n in nodes.into_iter().flatten() {
        n.shutdown().await;
    }
}

/// With the on-chain registry: memberships are registered through the contract, and a double
/// signal removes the member on every node and, once, on-chain — submitted by one node (any
/// account may: the contract checks the revealed secret), the others finding it done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_evm_registry_one_node_removes_the_spammer_on_chain() {
    use conclave_registry::evm::anvil::{Anvil, DEV_KEYS};
    use conclave_registry::evm::{admin, RegistryAdmin, OPEN_ENDED};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Automine: every transaction is a block, and nodes apply blocks at once (0 confirmations).
    let anvil = Anvil::spawn(&[]).unwrap();
    let (gov, _) = RegistryAdmin::deploy(&anvil.url, admin::parse_eth_key(DEV_KEYS[0]).unwrap())
        .await
        .unwrap();
    gov.define_scope(0, conclave_node::SLASH_TOPIC)
        .await
        .unwrap();
    // Operators are accounts 1..=5; nodes a..d sign removals with accounts 6..=9, which are no
    // operators. The spammer's node (e) has no chain key.
    let names = &NAMES[..5];
    let mut ops = Vec::new();
    let mut peers = Vec::new();
    let mut ids = Vec::new();
    let mut regs = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let op = RegistryAdmin::connect(
            &anvil.url,
            gov.contract(),
            admin::parse_eth_key(DEV_KEYS[i + 1]).unwrap(),
        )
        .unwrap();
        gov.add_operator(OperatorId(op.signer().0 .0))
            .await
            .unwrap();
        let peer = keys::generate(&d.join(format!("{n}.key")), KeyType::Ed25519).unwrap();
        op.authorize(&peer, 1, 0, OPEN_ENDED).await.unwrap();
        let id = keys::generate_rln(&d.join(format!("{n}.rln"))).unwrap();
        let rate = id.rate_commitment(LIMIT);
        let (_, index) = op
            .register_rln(conclave_rln::fr_to_bytes(&rate), LIMIT)
            .await
            .unwrap();
        regs.push(RlnRegistration {
            index: index as u32,
            rate_commitment: rate,
            limit: LIMIT,
        });
        if i < 4 {
            let key = d.join(format!("{n}.eth"));
            std::fs::write(&key, DEV_KEYS[6 + i]).unwrap();
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        ops.push(op);
        peers.push(peer);
        ids.push(id);
    }
    let contract = gov.contract().to_string();
    let mut nodes = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let chain_key = if i < 4 {
            format!("rln_chain_key = \"{n}.eth\"\nrln_chain_stagger_secs = 2\n")
        } else {
            String::new()
        };
        let config = format!(
            "key_file = \"{n}.key\"\nstate_dir = \"{n}-state\"\n\
             registry = \"evm\"\nevm_rpc_url = \"{}\"\nevm_contract = \"{contract}\"\n\
             evm_confirmations = 0\nevm_poll_ms = 100\n\
             listen = [\"/ip4/127.0.0.1/tcp/0\"]\nhttp_listen = \"127.0.0.1:0\"\n\
             rln = true\nrln_key = \"{n}.rln\"\nrln_identifier = \"conclave/test\"\n\
             rln_topics = [\"anon\"]\n{chain_key}",
            anvil.url
        );
        nodes.push(common::start_node(d, n, &config, &[], NodeHooks::default()).await);
    }
    for (i, n) in nodes.iter().enumerate() {
        let addr = listen_addrs(n, 1).await;
        ops[i].set_node_addresses(&peers[i], addr).await.unwrap();
    }
    for n in &nodes {
        until_json(n, "/readyz", "readiness", |r: &ReadyAnswer| r.ready).await;
        until_json(
            n,
            "/v1/rln/status",
            "the RLN tree from the chain",
            |v: &RlnStatusAnswer| v.members == 5,
        )
        .await;
    }
    let v: MembershipAnswer = get_json(&nodes[0], "/v1/membership").await;
    assert_eq!(v.view.rln.len(), 5, "{v:?}");

    let spammer = 4;
    let leaf = u64::from(regs[spammer].index);
    mid_epoch().await;
    Forger::new(regs)
        .double_signal(&nodes[spammer], &ids[spammer])
        .await;
    for n in &nodes {
        until_json(
            n,
            "/v1/rln/status",
            "the spammer's removal",
            |v: &RlnStatusAnswer| v.members == 4,
        )
        .await;
    }
    // Every chain-key node finishes its turn: exactly one submitted, the rest found it done.
    let deadline = Instant::now() + WAIT;
    let (submitted, already) = loop {
        let (mut submitted, mut already) = (0.0, 0.0);
        for n in &nodes {
            let text = get(n, "/metrics").await.1;
            let m = |r| metric(&text, "conclave_rln_onchain_removals_total", r);
            submitted += m("reason=\"submitted\"");
            already += m("reason=\"already_removed\"");
            assert_eq!(m("reason=\"failed\""), 0.0, "a submission failed");
        }
        if submitted + already >= 4.0 || Instant::now() > deadline {
            break (submitted, already);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!((submitted, already), (1.0, 3.0));
    assert!(gov.rln_removed(leaf).await.unwrap(), "removed on-chain");
    // The chain's view now leaves the leaf out too, and every node keeps the same root.
    let root = get_json::<RlnStatusAnswer>(&nodes[0], "/v1/rln/status")
        .await
        .root;
    for n in &nodes {
        until_json(
            n,
            "/v1/membership",
            "the chain view without the leaf",
            |v: &MembershipAnswer| v.view.rln.len() == 4,
        )
        .await;
        let status: RlnStatusAnswer = get_json(n, "/v1/rln/status").await;
        assert_eq!((status.members, &status.root), (4, &root), "{status:?}");
    }
    for n in nodes {
        n.shutdown().await;
    }
}
