//! A replay into a node that restarted: a registered member (its own gossipsub client, outside
//! Conclave's code) sends a signed message, the node delivers it and restarts, and the member
//! sends the very same bytes again within the timestamp window. Gossipsub's duplicate cache died
//! with the process and the timestamp is still fresh: only the persisted delivered ids stop it.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{listen_addrs, now_ms, start_node, until_json};
use conclave_api::{DeliveryFrame, PeersAnswer, StreamFrame};
use conclave_node::keys::{self, KeyType};
use conclave_node::RunningNode;
use conclave_testkit::{envelope, HostileMember};
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::Multiaddr;

/// Sends `data` on `signers` to `node` at `to` from a fresh client under `key` (its own
/// duplicate cache empty), lets it leave, and waits until the node has seen it go. (Gossipsub
/// sends its subscriptions only on a peer's first connection: a client that came back while the
/// node still held the last one would never learn them.)
async fn send(node: &RunningNode, key: &Keypair, to: Multiaddr, data: Vec<u8>) {
    let mut client = HostileMember::new(key.clone());
    client.connect(to, &["signers"]).await;
    client.publish("signers", data).unwrap();
    client.run_for(Duration::from_millis(500)).await;
    drop(client);
    until_json(node, "/v1/peers", "the client gone", |v: &PeersAnswer| {
        v.peers.is_empty()
    })
    .await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(node: &RunningNode) -> Ws {
    let url = format!("ws://{}/v1/subscribe/signers", node.http_addr);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Payloads delivered on `ws` within `within`.
async fn payloads(ws: &mut Ws, within: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Ok(StreamFrame::Item(f)) =
            serde_json::from_str::<StreamFrame<DeliveryFrame>>(m.to_text().unwrap_or(""))
        {
            out.push(f.payload().unwrap());
        }
    }
    out
}

async fn start(dir: &Path) -> (RunningNode, Multiaddr) {
    let mut cfg = common::node_config("target");
    common::file_registry(&mut cfg, "registry.toml");
    cfg.topics = vec!["signers".into()];
    let node = start_node(dir, "target", &cfg, &[], Default::default()).await;
    let addr: Multiaddr = listen_addrs(&node, 1).await[0].parse().unwrap();
    let peer = node.peer_id();
    (node, addr.with(libp2p::multiaddr::Protocol::P2p(peer)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_into_a_restarted_node_is_not_delivered_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = keys::generate(&d.join("target.key"), KeyType::Ed25519).unwrap();
    let member = Keypair::generate_ed25519();
    let peers = [target.to_string(), member.public().to_peer_id().to_string()];
    common::members(&peers, &[], &["signers"], |i| {
        conclave_core::OperatorId([0x30 + i as u8; 20])
    })
    .write(&d.join("registry.toml"));

    let (node, addr) = start(d).await;
    let mut ws = subscribe(&node).await;
    let once = envelope(&member, "signers", now_ms(), 1, b"once");
    send(&node, &member, addr, once.clone()).await;
    assert_eq!(
        payloads(&mut ws, Duration::from_secs(2)).await,
        vec![b"once".to_vec()]
    );

    node.shutdown().await;
    let (node, addr) = start(d).await;
    let mut ws = subscribe(&node).await;
    // A new client (its own duplicate cache is empty too) sends the same bytes; then, once it is
    // gone, another one sends a new message.
    send(&node, &member, addr.clone(), once).await;
    send(
        &node,
        &member,
        addr,
        envelope(&member, "signers", now_ms(), 2, b"fresh"),
    )
    .await;
    assert_eq!(
        payloads(&mut ws, Duration::from_secs(2)).await,
        vec![b"fresh".to_vec()],
        "the replay is not delivered again; a new message is"
    );
    node.shutdown().await;
}
