//! A three-node network on loopback (TCP + QUIC, real Noise), driven through the HTTP API.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{get, get_json, listen_addrs, start_node, until, until_answer};
use conclave_api::{DeliveryFrame, MembershipAnswer, PeersAnswer, ReadyAnswer, StreamFrame};
use conclave_node::keys::{self, KeyType};
use conclave_node::RunningNode;
use conclave_testkit::{node, RegistryDoc, WAIT};
use futures::StreamExt;

const OPS: [&str; 4] = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
];

/// A registry where each `(operator index, peer, addresses)` is a node key of `OPS[index]`,
/// allowed on `signers`, with its dial hints.
fn registry(entries: &[(usize, String, Vec<String>)]) -> RegistryDoc {
    entries
        .iter()
        .fold(RegistryDoc::new(), |doc, (op, peer, addrs)| {
            let mut entry = node(peer, &["signers"]);
            entry.addresses = addrs.clone();
            doc.operator(OPS[*op], vec![entry])
        })
}

async fn start(dir: &Path, name: &str, registry_file: &Path, extra: &[String]) -> RunningNode {
    let mut config = common::node_config(name);
    config.listen = vec![
        "/ip4/127.0.0.1/tcp/0".into(),
        "/ip4/127.0.0.1/udp/0/quic-v1".into(),
    ];
    config.topics = vec!["signers".into()];
    common::file_registry(&mut config, registry_file);
    start_node(dir, name, &config, extra, Default::default()).await
}

async fn wait_ready(node: &RunningNode) -> ReadyAnswer {
    until_answer(node, "/readyz", "readiness", |status, _: &ReadyAnswer| {
        status == 200
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_serve_the_api_and_gate_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let peers: Vec<String> = ["a", "b", "c", "stranger"]
        .iter()
        .map(|n| {
            keys::generate(&d.join(format!("{n}.key")), KeyType::Ed25519)
                .unwrap()
                .to_string()
        })
        .collect();
    let reg = d.join("registry.toml");
    registry(&[
        (0, peers[0].clone(), vec![]),
        (1, peers[1].clone(), vec![]),
        (2, peers[2].clone(), vec![]),
    ])
    .write(&reg);

    let quorum = ["ready_quorum=2".to_string()];
    let a = start(d, "a", &reg, &quorum).await;
    let (status, body) = get(&a, "/readyz").await;
    assert_eq!(status, 503, "alone, a is not ready: {body}");
    assert_eq!(get(&a, "/healthz").await.0, 200);

    let b = start(d, "b", &reg, &quorum).await;
    let c = start(d, "c", &reg, &quorum).await;
    // Address hints arrive by editing the registry: a hot reload starts the redial loops.
    let mut entries = Vec::new();
    for (i, n) in [&a, &b, &c].iter().enumerate() {
        entries.push((i, peers[i].clone(), listen_addrs(n, 2).await));
    }
    registry(&entries).write(&reg);
    for n in [&a, &b, &c] {
        let r = wait_ready(n).await;
        assert_eq!(r.connected_members, 2, "{r:?}");
    }

    // Subscribe on b and c, publish on a.
    let mut subs = Vec::new();
    for n in [&b, &c] {
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/v1/subscribe/signers", n.http_addr))
                .await
                .unwrap();
        subs.push(ws);
    }
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{}/v1/publish/signers", a.http_addr))
        .body("ping from a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    for ws in subs.iter_mut() {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let text = msg.to_text().unwrap();
        let f = match serde_json::from_str::<StreamFrame<DeliveryFrame>>(text) {
            Ok(StreamFrame::Item(f)) => f,
            other => panic!("not a delivery: {other:?}: {text}"),
        };
        assert_eq!(f.topic, "signers", "{f:?}");
        assert_eq!(f.operator, OPS[0], "{f:?}");
        assert_eq!(f.node, peers[0], "{f:?}");
        assert_eq!(f.payload().unwrap(), b"ping from a", "{f:?}");
    }

    // Refusals are explicit.
    let r = client
        .post(format!("http://{}/v1/publish/other", a.http_addr))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = client
        .post(format!("http://{}/v1/publish/Not%20A%20Topic", a.http_addr))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // A stranger that seeds a's address is refused at the handshake.
    let a_tcp = entries[0]
        .2
        .iter()
        .find(|x| x.contains("/tcp/"))
        .unwrap()
        .clone();
    let sreg = d.join("stranger-registry.toml");
    registry(&[(3, peers[3].clone(), vec![]), (0, peers[0].clone(), vec![])]).write(&sreg);
    let stranger = start(
        d,
        "stranger",
        &sreg,
        &[format!("seeds=[\"{a_tcp}/p2p/{}\"]", peers[0])],
    )
    .await;
    let metrics = until(&a, "/metrics", "the stranger to be refused", |_, m| {
        m.contains(
            "conclave_connections_denied_total{direction=\"inbound\",reason=\"not_member\"} 1",
        )
    })
    .await;
    assert!(metrics.contains("conclave_peers_connected 2"), "{metrics}");
    assert!(
        metrics.contains("conclave_publishes_total{topic=\"signers\",outcome=\"published\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("conclave_publish_queue_dropped_total{reason=\"full\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("conclave_ready 1"), "{metrics}");
    assert!(
        metrics.contains("libp2p_"),
        "libp2p's own metrics are exported too"
    );
    let (_, m) = get(&b, "/metrics").await;
    assert!(
        m.contains(
            "conclave_messages_total{topic=\"signers\",outcome=\"accepted\",reason=\"ok\"} 1"
        ),
        "{m}"
    );
    let (status, sbody) = get(&stranger, "/readyz").await;
    assert_eq!(status, 503, "{sbody}");

    let v: MembershipAnswer = get_json(&a, "/v1/membership").await;
    assert_eq!(v.view.operators.len(), 3, "{v:?}");
    assert_eq!(v.revision, 2, "{v:?}");
    let v: PeersAnswer = get_json(&a, "/v1/peers").await;
    assert_eq!(v.peers.len(), 2, "{v:?}");

    for n in [a, b, c, stranger] {
        n.shutdown().await;
    }
}
