//! A Byzantine member: a registered key running hostile code (plain gossipsub, none of
//! Conclave's checks) sends messages outside its scopes, replays signed long ago and garbage,
//! while an honest member keeps publishing. Every bad message is refused with its reason, none is
//! delivered, the honest traffic all arrives, and the hostile member is graylisted by score and
//! disconnected.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use conclave_net::{NetConfig, NetworkEvent, TransportKind};
use conclave_testkit::{envelope, HostileMember};
use libp2p::multiaddr::Protocol;
use prometheus_client::encoding::text::encode;
use tokio::sync::watch;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn tcp_config(m: &Member, topics: &[&str]) -> NetConfig {
    let mut c = NetConfig::new(m.key.clone(), TransportKind::Network);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c.topics = topics.iter().map(|t| topic(t)).collect();
    c
}

/// Honest deliveries at `node` within `d`: (payload, latency ms); every other event is kept.
async fn collect(node: &mut Node, d: Duration) -> (Vec<(Vec<u8>, u64)>, Vec<NetworkEvent>) {
    let (mut got, mut other) = (Vec::new(), Vec::new());
    let _ = tokio::time::timeout(d, async {
        while let Some(ev) = node.events.recv().await {
            match ev {
                NetworkEvent::Message(m) => {
                    got.push((m.payload.clone(), now_ms().saturating_sub(m.timestamp_ms)))
                }
                ev => other.push(ev),
            }
        }
    })
    .await;
    (got, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byzantine_member_is_refused_message_by_message_then_cut_off_while_honest_traffic_flows()
{
    init_tracing();
    let (target, honest, hostile) = (Member::new(1), Member::new(2), Member::new(3));
    // The hostile member may publish on `signers` only; the target also carries `admin`.
    let mut v = conclave_core::ViewBuilder::new(conclave_core::ViewSource::Empty);
    for (m, scopes) in [
        (&target, vec!["signers", "admin"]),
        (&honest, vec!["signers", "admin"]),
        (&hostile, vec!["signers"]),
    ] {
        v.operator(m.operator).unwrap();
        v.node(
            m.peer,
            conclave_core::NodeAuthorization {
                operator: m.operator,
                scopes: scopes.iter().map(|s| topic(s)).collect(),
                valid_from_block: None,
                expiry: None,
                addresses: vec![],
            },
        )
        .unwrap();
    }
    let (_tx, rx) = watch::channel(std::sync::Arc::new(v.build()));
    let mut t = start(
        tcp_config(&target, &["signers", "admin"]),
        rx.clone(),
        &target,
    );
    let h = start(tcp_config(&honest, &["signers", "admin"]), rx, &honest);
    let peers = t.service.peers();
    let listen = eventually("the target listening", || {
        let l = peers.borrow().listen.first().cloned();
        async move { l.ok_or("no listen address yet") }
    })
    .await
    .with(Protocol::P2p(target.peer));
    h.service.dial(listen.clone()).await.unwrap();
    wait_for_mesh(std::slice::from_ref(&t), 1, "signers").await;

    let honest_round = |n: usize, tag: &'static str| {
        let service = h.service.clone();
        async move {
            for i in 0..n {
                let payload = format!("{tag}-{i}").into_bytes();
                service.publish(topic("signers"), payload).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    honest_round(20, "before").await;
    let (before, _) = collect(&mut t, Duration::from_secs(2)).await;
    assert_eq!(before.len(), 20, "{before:?}");

    // The attack: out of scope, replayed from long ago (older than the retention window),
    // and garbage — each validly framed gossip, each signed where it can be.
    let mut b = HostileMember::new(hostile.key.clone());
    b.connect(listen, &["signers", "admin"]).await;
    let long_ago = now_ms() - 3_600_000;
    for i in 0..3u64 {
        let k = &hostile.key;
        b.publish("admin", envelope(k, "admin", now_ms(), i, b"not my scope"))
            .unwrap();
        b.publish(
            "signers",
            envelope(k, "signers", long_ago, i, b"an old one"),
        )
        .unwrap();
        b.publish("signers", vec![0xff; 40 + i as usize]).unwrap();
    }
    let attack = tokio::spawn(honest_round(20, "during"));
    let ran = b.run_for(WAIT).await;
    attack.await.unwrap();
    let (during, events) = collect(&mut t, Duration::from_secs(3)).await;

    assert!(ran.disconnected, "the hostile member was cut off: {ran:?}");
    assert!(
        events.iter().any(
            |e| matches!(e, NetworkEvent::PeerGraylisted { peer, .. } if *peer == hostile.peer)
        ),
        "{events:?}"
    );
    let payloads: Vec<String> = during
        .iter()
        .map(|(p, _)| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(
        payloads.len(),
        20,
        "every honest message, once, and nothing of the hostile's: {payloads:?}"
    );
    assert!(
        payloads.iter().all(|p| p.starts_with("during-")),
        "{payloads:?}"
    );
    let p99 = |v: &[(Vec<u8>, u64)]| {
        let mut l: Vec<u64> = v.iter().map(|(_, l)| *l).collect();
        l.sort_unstable();
        l[(l.len() - 1) * 99 / 100]
    };
    eprintln!(
        "honest latency p99: {} ms before, {} ms during the attack",
        p99(&before),
        p99(&during)
    );

    let mut text = String::new();
    encode(&mut text, &t.metrics).unwrap();
    for reason in ["out_of_scope", "stale", "undecodable"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("conclave_messages_total")
                    && l.contains("outcome=\"rejected\"")
                    && l.contains(&format!("reason=\"{reason}\""))),
            "no {reason} rejection counted:\n{text}"
        );
    }
    assert!(
        text.contains("conclave_peers_evicted_total{reason=\"graylisted\"} 1"),
        "{text}"
    );
}
