//! Inbound admission under a stall flood: strangers open a thousand TCP sockets and send
//! nothing — from one address, and from a hundred — and a member still connects in at once.
//! Loopback has all of 127.0.0.0/8, so strangers and the member come from different addresses
//! without namespaces.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use conclave_core::{Multiaddr, NodeAuthorization, ViewBuilder, ViewSource};
use conclave_net::{NetConfig, TransportKind};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

/// A view with both members; the member that dials in lists an address on 127.0.0.1 (its
/// port does not matter: admission goes by IP).
fn view(members: &[&Member]) -> std::sync::Arc<conclave_core::MembershipView> {
    let mut b = ViewBuilder::new(ViewSource::Empty);
    for m in members {
        b.operator(m.operator).unwrap();
        b.node(
            m.peer,
            NodeAuthorization {
                operator: m.operator,
                scopes: Default::default(),
                valid_from_block: None,
                expiry: None,
                addresses: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
            },
        )
        .unwrap();
    }
    std::sync::Arc::new(b.build())
}

fn tcp_config(m: &Member) -> NetConfig {
    let mut c = NetConfig::new(m.key.clone(), TransportKind::Network);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c
}

/// Opens `count` sockets from `from` to `to` and keeps them, sending nothing.
async fn stall(from: &str, to: SocketAddr, count: usize, held: &mut Vec<TcpStream>) {
    for _ in 0..count {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(1), s.connect(to)).await {
            held.push(stream);
        }
    }
}

fn metric(node: &Node, labels: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &node.metrics).unwrap();
    text.lines()
        .filter(|l| l.starts_with("conclave_connections_denied_total") && l.contains(labels))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_connects_in_while_strangers_stall_a_thousand_handshakes() {
    init_tracing();
    let (target, member) = (Member::new(1), Member::new(2));
    let (_tx, rx) = watch::channel(view(&[&target, &member]));
    let target_node = start(tcp_config(&target), rx.clone(), &target);
    let peers = target_node.service.peers();
    let listen: Multiaddr = eventually("the target listening", || {
        let l = peers.borrow().listen.first().cloned();
        async move { l.ok_or("no listen address yet") }
    })
    .await;
    let port = listen
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // 500 stalled sockets from one stranger address, 500 from a hundred others.
    let mut held = Vec::new();
    stall("127.0.0.2", to, 500, &mut held).await;
    for i in 1..=100 {
        stall(&format!("127.0.1.{i}"), to, 5, &mut held).await;
    }
    eventually(
        "the flood refused per address and beyond the strangers' share",
        || async {
            let per_ip = metric(&target_node, "reason=\"pending_per_ip\"");
            let full = metric(&target_node, "reason=\"connection_limit\"");
            if per_ip >= 400.0 && full >= 1.0 {
                Ok(())
            } else {
                Err(format!("pending_per_ip {per_ip}, connection_limit {full}"))
            }
        },
    )
    .await;

    // The member dials in while every stranger socket is still open.
    let member_node = start(tcp_config(&member), rx.clone(), &member);
    let dial = listen.with(libp2p::multiaddr::Protocol::P2p(target.peer));
    member_node.service.dial(dial).await.unwrap();
    // Before the strangers' handshakes could time out (10 s) and free their slots.
    conclave_testkit::eventually_within(
        Duration::from_secs(8),
        "the member admitted while the flood still holds its sockets",
        || {
            let connected = peers.borrow().peers.contains_key(&member.peer);
            async move { connected }
        },
    )
    .await;
    assert!(
        held.len() >= 900,
        "the flood really held its sockets: {}",
        held.len()
    );
}
