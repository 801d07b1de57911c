//! The gate driven by the on-chain registry: nodes follow a real chain (anvil) through the EVM
//! backend, and the network admits, refuses and evicts by what the contract says.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use conclave_core::{Clock, PeerId};
use conclave_net::NetworkEvent;
use conclave_registry::evm::{EvmConfig, EvmRegistry, OPEN_ENDED};
use conclave_registry::{ChainClock, ChainSource, RegistrySource};
use conclave_testkit::RegistryChain;
use libp2p::multiaddr::Protocol;
use tokio::sync::watch;

/// Peers of `node` as a set of ids, now.
fn connected(node: &Node) -> Vec<PeerId> {
    node.service
        .peers()
        .borrow()
        .peers
        .keys()
        .copied()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_membership_admits_refuses_revokes_and_expires() {
    init_tracing();
    // Six members, each under its own operator account; the last one's delegation is short.
    let chain = RegistryChain::start(&[], &["signers"], 6).await;
    let (anvil, gov) = (&chain.anvil, &chain.gov);
    let mut members: Vec<Member> = (1..=6).map(Member::new).collect();
    let stranger = Member::new(9);
    let head = gov.block().await.unwrap();
    let expires_at = head + 30;
    for (i, (m, op)) in members.iter_mut().zip(&chain.operators).enumerate() {
        m.operator = RegistryChain::id_of(op);
        let until = if i == 5 { expires_at } else { OPEN_ENDED };
        op.authorize(&m.peer, 1, 0, until).await.unwrap();
        op.set_node_addresses(&m.peer, vec![m.addr.to_string()])
            .await
            .unwrap();
    }
    anvil.mine(2).await.unwrap();

    let mut cfg = EvmConfig::new(&anvil.url, gov.contract());
    cfg.poll_interval = Duration::from_millis(50);
    let registry = EvmRegistry::spawn(cfg).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ChainClock::new(registry.heads()));
    let live = registry.view();
    assert_eq!(live.borrow().nodes().count(), 6);

    // a, b, c and the expiring member follow the chain; the laggard and the soon-revoked
    // member keep the view of now (as a node with a lagging RPC endpoint would).
    let frozen = watch::channel(live.borrow().clone());
    let mut nodes = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let mut c = config(m, &["signers"]);
        c.clock = clock.clone();
        let view = if i == 3 || i == 4 {
            frozen.1.clone()
        } else {
            live.clone()
        };
        nodes.push(start(c, view, m));
    }
    wait_for_mesh(&nodes, 5, "signers").await;
    // The laggard relays the revoked node's messages later: it must have every member in its
    // mesh by then (the heartbeat grafts them).
    eventually("the laggard's mesh is complete", || {
        let svc = nodes[3].service.clone();
        async move { svc.mesh_peers(topic("signers")).await.unwrap().len() == 5 }
    })
    .await;

    // A node never authorized is refused at the handshake. It believes it belongs (its own view
    // lists it): a node its own view leaves out dials no one.
    let mut sc = config(&stranger, &["signers"]);
    sc.clock = clock.clone();
    sc.seeds = vec![members[0].addr.clone().with(Protocol::P2p(members[0].peer))];
    let mut believed: Vec<&Member> = members.iter().collect();
    believed.push(&stranger);
    let (_believes, believed_view) = watch::channel(view_of(&believed, &["signers"]));
    let stranger_node = start(sc, believed_view, &stranger);
    let reason = next_matching(&mut nodes[0].events, |e| match e {
        NetworkEvent::ConnectionDenied {
            peer: Some(p),
            reason,
            ..
        } if *p == stranger.peer => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, "not_member");
    // No member ever counts it as a peer (its own side may see a connection until the member
    // closes it).
    for n in &nodes {
        assert!(!connected(n).contains(&stranger.peer));
    }
    drop(stranger_node);

    // Revocation: once mined and confirmed, every peer following the chain drops the node.
    let revoked = members[4].peer;
    chain.operators[4].revoke(&revoked, 0).await.unwrap();
    anvil.mine(2).await.unwrap();
    let final_at = Instant::now();
    for n in &nodes[..3] {
        let peers = n.service.peers();
        eventually("revoked node evicted", || {
            let gone = !peers.borrow().peers.contains_key(&revoked);
            async move { gone }
        })
        .await;
    }
    tracing::info!(took = ?final_at.elapsed(), "revoked node evicted by every chain-following peer");
    // Its messages, relayed by the laggard that still talks to it, are rejected.
    nodes[4]
        .service
        .publish(topic("signers"), b"revoked but talking".to_vec())
        .await
        .unwrap();
    let relayed = next_matching(&mut nodes[3].events, |e| match e {
        NetworkEvent::Message(d) if d.source == revoked => Some(d.payload.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        relayed, b"revoked but talking",
        "the laggard accepts and relays it"
    );
    for (i, n) in nodes[..3].iter_mut().enumerate() {
        tracing::info!(node = i, "waiting for the rejection");
        let reason = next_matching(&mut n.events, |e| match e {
            NetworkEvent::MessageRejected {
                source: Some(s),
                reason,
            } if *s == revoked => Some(reason.label()),
            NetworkEvent::Message(d) if d.source == revoked => {
                panic!("delivered a revoked node's message")
            }
            _ => None,
        })
        .await;
        assert_eq!(reason, "expired");
    }

    // Expiry: the short delegation stops at its valid_until block, with no transaction.
    let expiring = members[5].peer;
    assert!(connected(&nodes[0]).contains(&expiring));
    let now = gov.block().await.unwrap();
    anvil.mine(expires_at - now - 1).await.unwrap();
    let mut heads = registry.heads();
    heads
        .wait_for(|h| h.number == expires_at - 1)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        connected(&nodes[0]).contains(&expiring),
        "still valid one block before valid_until"
    );
    anvil.mine(1).await.unwrap();
    for n in &nodes[..3] {
        let peers = n.service.peers();
        eventually("expired node evicted", || {
            let gone = !peers.borrow().peers.contains_key(&expiring);
            async move { gone }
        })
        .await;
    }
    assert_eq!(
        registry.block_hash(expires_at).await.unwrap(),
        registry.heads().borrow().hash
    );
}
