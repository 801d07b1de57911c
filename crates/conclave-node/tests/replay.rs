//! A replay into a node that restarted: a registered member (its own gossipsub client, outside
//! Conclave's code) sends a signed message, the node delivers it and restarts, and the member
//! sends the very same bytes again within the timestamp window. Gossipsub's duplicate cache died
//! with the process and the timestamp is still fresh: only the persisted delivered ids stop it.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{listen_addrs, now_ms, start_node};
use conclave_api::{DeliveryFrame, StreamFrame};
use conclave_core::Envelope;
use conclave_node::keys::{self, KeyType};
use conclave_node::RunningNode;
use conclave_testkit::WAIT;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm};
use prost::Message as _;

type Gossip = gossipsub::Behaviour<gossipsub::IdentityTransform>;

/// A fresh gossipsub client under `key`, speaking Conclave's signed protocol.
fn client(key: &Keypair) -> Swarm<Gossip> {
    libp2p::SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .protocol_id_prefix("/conclave/signed/2")
                .validation_mode(gossipsub::ValidationMode::Permissive)
                .build()
                .unwrap();
            Gossip::new(
                MessageAuthenticity::Author(key.public().to_peer_id()),
                config,
            )
            .unwrap()
        })
        .unwrap()
        .build()
}

/// Dials `to` and publishes `data` on `signers` once the node is seen subscribed; keeps the
/// swarm running a moment so the message leaves.
async fn send(swarm: &mut Swarm<Gossip>, to: Multiaddr, data: Vec<u8>) {
    swarm.dial(to).unwrap();
    let topic = IdentTopic::new("conclave/1/signers");
    tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) =
                swarm.select_next_some().await
            {
                swarm
                    .behaviour_mut()
                    .publish(topic.clone(), data.clone())
                    .unwrap();
                return;
            }
        }
    })
    .await
    .expect("the node subscribed to signers");
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            swarm.select_next_some().await;
        }
    })
    .await;
}

/// An envelope signed by `key` as Conclave's publisher would sign it.
fn envelope(key: &Keypair, payload: &[u8], nonce: u64) -> Vec<u8> {
    let mut e = Envelope {
        timestamp_ms: now_ms(),
        payload: payload.to_vec(),
        nonce,
        signature: Vec::new(),
    };
    e.signature = key.sign(&e.signing_bytes("signers")).unwrap();
    e.encode_to_vec()
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
    let once = envelope(&member, b"once", 1);
    send(&mut client(&member), addr, once.clone()).await;
    assert_eq!(
        payloads(&mut ws, Duration::from_secs(2)).await,
        vec![b"once".to_vec()]
    );

    node.shutdown().await;
    let (node, addr) = start(d).await;
    let mut ws = subscribe(&node).await;
    // A new client (its own duplicate cache is empty too) sends the same bytes; then, once it is
    // gone, another one sends a new message.
    let mut replayer = client(&member);
    send(&mut replayer, addr.clone(), once).await;
    drop(replayer);
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&mut client(&member), addr, envelope(&member, b"fresh", 2)).await;
    assert_eq!(
        payloads(&mut ws, Duration::from_secs(2)).await,
        vec![b"fresh".to_vec()],
        "the replay is not delivered again; a new message is"
    );
    node.shutdown().await;
}
