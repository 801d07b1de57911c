//! A member flapping its subscriptions (a registered key running its own gossipsub, outside
//! Conclave's code) is disconnected and kept out; joining with many topics at once is not churn.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use conclave_net::{NetConfig, TransportKind};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_flapping_its_subscriptions_is_disconnected_and_kept_out() {
    init_tracing();
    let (target, flapper) = (Member::new(1), Member::new(2));
    let (_tx, rx) = watch::channel(view_of(&[&target, &flapper], &[]));
    let mut cfg = NetConfig::new(target.key.clone(), TransportKind::Network);
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    let node = start(cfg, rx, &target);
    let peers = node.service.peers();
    let listen: Multiaddr = eventually("the target listening", || {
        let l = peers.borrow().listen.first().cloned();
        async move { l.ok_or("no listen address yet") }
    })
    .await;

    // The hostile member: plain gossipsub on Conclave's signed protocol, its own code.
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(flapper.key.clone())
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
                .build()
                .unwrap();
            gossipsub::Behaviour::<gossipsub::IdentityTransform>::new(
                MessageAuthenticity::Signed(key.clone()),
                config,
            )
            .unwrap()
        })
        .unwrap()
        .build();
    let dial = listen.with(libp2p::multiaddr::Protocol::P2p(target.peer));
    swarm.dial(dial.clone()).unwrap();
    // Joins with 40 topics at once (fine), then flaps one of them 10 times a second.
    let topics: Vec<IdentTopic> = (0..40)
        .map(|i| IdentTopic::new(format!("conclave/1/t{i}")))
        .collect();
    let mut joined = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let flaps = tokio::time::timeout(WAIT, async {
        let mut flaps = 0u32;
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::ConnectionEstablished { .. } if !joined => {
                        for t in &topics {
                            swarm.behaviour_mut().subscribe(t).unwrap();
                        }
                        joined = true;
                    }
                    SwarmEvent::ConnectionClosed { num_established: 0, .. } if joined => {
                        return flaps;
                    }
                    _ => {}
                },
                _ = tick.tick(), if joined => {
                    let t = &topics[0];
                    if flaps.is_multiple_of(2) {
                        swarm.behaviour_mut().unsubscribe(t);
                    } else {
                        swarm.behaviour_mut().subscribe(t).unwrap();
                    }
                    flaps += 1;
                }
            }
        }
    })
    .await
    .expect("the target disconnects the flapping member");
    assert!(
        flaps > 20,
        "the 40-topic join was not taken for churn (disconnected after {flaps} flaps)"
    );
    // The client sees its connection close before the node's peer table is republished.
    eventually("the node's table without the flapper", || {
        let connected = peers.borrow().peers.contains_key(&flapper.peer);
        async move { !connected }
    })
    .await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &node.metrics).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("conclave_peers_evicted_total")
                && l.contains("subscription_churn")
                && l.ends_with(" 1")),
        "{text}"
    );
    // Kept out: its redial is refused by the gate.
    swarm.dial(dial).unwrap();
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionClosed { .. }
                | SwarmEvent::OutgoingConnectionError { .. } => return true,
                SwarmEvent::ConnectionEstablished { .. } => {}
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert!(refused);
    eventually("the redial refused as graylisted", || {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &node.metrics).unwrap();
        async move {
            text.lines().any(|l| {
                l.starts_with("conclave_connections_denied_total") && l.contains("graylisted")
            })
        }
    })
    .await;
}
