//! The network transports as drivers, on loopback with OS-chosen ports: a member whose TCP is
//! taken out is reached over QUIC; members reach each other only through a member relay
//! (circuit relay v2), which refuses a stranger any reservation or circuit.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use conclave_core::{
    MembershipView, Multiaddr, NodeAuthorization, PeerId, ViewBuilder, ViewSource,
};
use conclave_net::{NetworkEvent, RelayLimits, TransportKind};
use libp2p::multiaddr::Protocol;
use prometheus_client::encoding::text::encode;
use tokio::sync::watch;

/// A view authorizing each member for `signers`, with its address hints.
fn view_with(members: &[(&Member, Vec<Multiaddr>)]) -> Arc<MembershipView> {
    let mut b = ViewBuilder::new(ViewSource::Empty);
    for (m, addrs) in members {
        let _ = b.operator(m.operator);
        b.node(
            m.peer,
            NodeAuthorization {
                operator: m.operator,
                scopes: [topic("signers")].into_iter().collect(),
                valid_from_block: None,
                expiry: None,
                addresses: addrs.clone(),
            },
        )
        .unwrap();
    }
    Arc::new(b.build())
}

fn on_loopback(m: &Member, listen: &[Multiaddr]) -> conclave_net::NetConfig {
    let mut c = config(m, &["signers"]);
    c.transport = TransportKind::Network;
    c.listen = listen.to_vec();
    c
}

fn is_tcp(a: &Multiaddr) -> bool {
    a.iter().any(|p| matches!(p, Protocol::Tcp(_)))
        && !a
            .iter()
            .any(|p| matches!(p, Protocol::Ws(_) | Protocol::P2pCircuit))
}

fn is_circuit(a: &Multiaddr) -> bool {
    a.iter().any(|p| p == Protocol::P2pCircuit)
}

async fn listen_addrs(node: &Node, n: usize) -> Vec<Multiaddr> {
    let peers = node.service.peers();
    eventually("listen addresses", || {
        let l = peers.borrow().listen.len();
        async move { l >= n }
    })
    .await;
    let l = peers.borrow().listen.clone();
    l
}

async fn delivered(node: &mut Node, from: PeerId, payload: &[u8]) {
    next_matching(&mut node.events, |e| match e {
        NetworkEvent::Message(d) if d.source == from && d.payload == payload => Some(()),
        _ => None,
    })
    .await
}

fn metrics(node: &Node) -> String {
    let mut text = String::new();
    encode(&mut text, &node.metrics).unwrap();
    text
}

/// The relay's count of `reason` (0 before the first).
fn relay_count(node: &Node, reason: &str) -> u64 {
    let prefix = format!("conclave_relay_total{{reason=\"{reason}\"}} ");
    metrics(node)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_tcp_is_taken_out_is_reached_over_quic() {
    init_tracing();
    let members: Vec<Member> = (1..=3).map(Member::new).collect();
    let listen: Vec<Multiaddr> = vec![
        "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
    ];
    let (tx, rx) = watch::channel(view_with(
        &members.iter().map(|m| (m, vec![])).collect::<Vec<_>>(),
    ));
    let mut nodes: Vec<Node> = members
        .iter()
        .map(|m| start(on_loopback(m, &listen), rx.clone(), m))
        .collect();
    let mut hints = Vec::new();
    for n in &nodes {
        hints.push(listen_addrs(n, 2).await);
    }
    tx.send_replace(view_with(&members.iter().zip(hints).collect::<Vec<_>>()));
    wait_for_mesh(&nodes, 2, "signers").await;

    // Node 0 takes TCP out: its listener and its TCP connections close, and it dials no TCP.
    let (listeners, _) = nodes[0].service.close_listeners(is_tcp).await.unwrap();
    assert_eq!(listeners, 1);
    let peers = nodes[0].service.peers();
    eventually("node 0 reconnected to both members over QUIC only", || {
        let snap = peers.borrow().clone();
        async move {
            snap.peers.len() == 2
                && snap.listen.iter().all(|a| !is_tcp(a))
                && snap
                    .peers
                    .values()
                    .all(|p| !p.addresses.is_empty() && p.addresses.iter().all(|a| !is_tcp(a)))
                && snap
                    .peers
                    .values()
                    .all(|p| p.topics.contains(&topic("signers")))
        }
    })
    .await;

    // Traffic flows both ways over the remaining driver.
    let zero = members[0].peer;
    nodes[0]
        .service
        .publish(topic("signers"), b"over quic".to_vec())
        .await
        .unwrap();
    for n in &mut nodes[1..] {
        delivered(n, zero, b"over quic").await;
    }
    let one = members[1].peer;
    nodes[1]
        .service
        .publish(topic("signers"), b"back to 0".to_vec())
        .await
        .unwrap();
    delivered(&mut nodes[0], one, b"back to 0").await;
    // Each transport's bytes are counted apart: node 0's QUIC traffic shows.
    let text = metrics(&nodes[0]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("libp2p_bandwidth_bytes_total") && l.contains("quic-v1")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_meet_through_a_member_relay_that_refuses_strangers() {
    init_tracing();
    let relay_m = Member::new(1);
    let a_m = Member::new(2);
    let b_m = Member::new(3);
    let stranger_m = Member::new(99);

    // The relay listens on TCP and serves members.
    let (relay_tx, relay_rx) = watch::channel(view_with(&[(&relay_m, vec![])]));
    let mut relay_cfg = on_loopback(&relay_m, &["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    relay_cfg.relay_server = Some(RelayLimits::default());
    let relay = start(relay_cfg, relay_rx, &relay_m);
    let relay_addr = listen_addrs(&relay, 1).await.remove(0);
    let circuit = relay_addr
        .clone()
        .with(Protocol::P2p(relay_m.peer))
        .with(Protocol::P2pCircuit);

    // a and b listen only through the relay and are known only by their circuit address: the
    // relay is their one path to each other.
    let members = view_with(&[
        (&relay_m, vec![relay_addr.clone()]),
        (&a_m, vec![circuit.clone()]),
        (&b_m, vec![circuit.clone()]),
    ]);
    relay_tx.send_replace(members.clone());
    let (_mtx, mrx) = watch::channel(members);
    let mut a = start(
        on_loopback(&a_m, std::slice::from_ref(&circuit)),
        mrx.clone(),
        &a_m,
    );
    let mut b = start(on_loopback(&b_m, std::slice::from_ref(&circuit)), mrx, &b_m);
    for n in [&a, &b] {
        let l = listen_addrs(n, 1).await;
        assert!(l.iter().all(is_circuit), "{l:?}");
    }
    let peers = a.service.peers();
    let b_peer = b_m.peer;
    eventually("a and b connected through the relay", || {
        let snap = peers.borrow().clone();
        async move {
            snap.peers.get(&b_peer).is_some_and(|p| {
                p.addresses.iter().any(is_circuit) && p.topics.contains(&topic("signers"))
            })
        }
    })
    .await;
    a.service
        .publish(topic("signers"), b"relayed".to_vec())
        .await
        .unwrap();
    delivered(&mut b, a_m.peer, b"relayed").await;

    let circuits_before = relay_count(&relay, "circuit_accepted");
    assert!(circuits_before >= 1, "{}", metrics(&relay));

    // The stranger believes it belongs (its own view lists it), asks the relay for a
    // reservation and for a circuit to b: the relay's gate refuses its connection first.
    let with_stranger = view_with(&[
        (&relay_m, vec![relay_addr.clone()]),
        (&a_m, vec![circuit.clone()]),
        (&b_m, vec![circuit.clone()]),
        (&stranger_m, vec![circuit.clone()]),
    ]);
    let (_stx, srx) = watch::channel(with_stranger);
    let stranger = start(
        on_loopback(&stranger_m, std::slice::from_ref(&circuit)),
        srx,
        &stranger_m,
    );
    let _ = stranger
        .service
        .dial(circuit.clone().with(Protocol::P2p(b_m.peer)))
        .await;
    eventually("the relay refused the stranger", || {
        let text = metrics(&relay);
        async move {
            text.lines().any(|l| {
                l.starts_with(
                    "conclave_connections_denied_total{direction=\"inbound\",reason=\"not_member\"}",
                ) && !l.ends_with(" 0")
            })
        }
    })
    .await;
    // Give a would-be reservation or circuit time to show up, then check none did.
    let _ = drain_for(&mut a.events, std::time::Duration::from_secs(2)).await;
    let text = metrics(&relay);
    assert!(
        text.contains("conclave_relay_total{reason=\"reservation_accepted\"} 2"),
        "only a and b hold reservations: {text}"
    );
    assert_eq!(
        relay_count(&relay, "circuit_accepted"),
        circuits_before,
        "the stranger got no circuit: {text}"
    );
    let snap = stranger.service.peers().borrow().clone();
    assert!(snap.peers.is_empty(), "{snap:?}");
    assert!(!snap.listen.iter().any(is_circuit), "{snap:?}");
    for n in [&a, &b] {
        let p = n.service.peers().borrow().clone();
        assert!(!p.peers.contains_key(&stranger_m.peer), "{p:?}");
    }
}
