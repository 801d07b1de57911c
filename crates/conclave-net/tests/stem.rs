//! The anonymous channel's stem (Dandelion++) between in-process members: own frames never go
//! straight to gossip, every hop forwards only what its application verified, a frame the next
//! hop drops is gossiped by the fail-safe, and an invalid frame costs its sender its score. The
//! verdicts are scripted here; the node's RLN checks behind them are tested in conclave-node.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use conclave_net::{Acceptance, Arrival, NetConfig, PublishError, StemConfig};
use tokio::sync::watch;

fn with_stem(mut c: NetConfig, stem: StemConfig) -> NetConfig {
    c.stem = stem;
    c
}

fn stem(fluff_probability: f64) -> StemConfig {
    StemConfig {
        fluff_probability,
        ..StemConfig::default()
    }
}

/// Publishes `data` from `node` once a peer carries the topic.
async fn publish(node: &Node, data: &[u8]) -> String {
    let (s, anon) = (node.service.clone(), topic("anon"));
    eventually("a stem successor", || {
        let (s, anon, data) = (s.clone(), anon.clone(), data.to_vec());
        async move {
            match s.publish_anonymous(anon, data).await {
                Ok(id) => Ok(id),
                Err(PublishError::NotSent(e)) => Err(e),
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
}

async fn subscribe_all(nodes: &[&Node]) {
    for n in nodes {
        n.service.subscribe_anonymous(topic("anon")).await.unwrap();
    }
}

fn metric(node: &Node, name: &str, labels: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &node.metrics).unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_frames_travel_the_stem_hop_by_hop_and_each_hop_waits_for_its_verdict() {
    init_tracing();
    let (a, hub, c) = (Member::new(1), Member::new(2), Member::new(3));
    let (_tx, rx) = watch::channel(line_view(&[&a, &hub, &c], &hub));
    // The author's stem starts at the hub (its only peer); the hub always forwards, C always
    // fluffs: A → hub → C → gossip.
    let mut a_node = start(with_stem(config(&a, &[]), stem(1.0)), rx.clone(), &a);
    let mut hub_node = start(with_stem(config(&hub, &[]), stem(0.0)), rx.clone(), &hub);
    let mut c_node = start(with_stem(config(&c, &[]), stem(1.0)), rx.clone(), &c);
    subscribe_all(&[&a_node, &hub_node, &c_node]).await;
    for n in [&a_node, &c_node] {
        n.service.dial(hub.addr.clone()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let id = publish(&a_node, b"over the stem").await;
    let at_hub = next_anonymous(&mut hub_node.anonymous, WAIT)
        .await
        .expect("the hub gets it");
    assert_eq!(
        (at_hub.id.arrival(), at_hub.id.from(), at_hub.id.hex()),
        (Arrival::Stem, Some(a.peer), id.clone()),
        "the author's frame reaches its first hop on the stem, not in gossip"
    );
    assert!(
        next_anonymous(&mut c_node.anonymous, Duration::from_millis(800))
            .await
            .is_none(),
        "the hub sends nothing on before its verdict"
    );
    hub_node
        .service
        .report_anonymous(at_hub.id, Acceptance::Accept)
        .await
        .unwrap();
    let at_c = next_anonymous(&mut c_node.anonymous, WAIT)
        .await
        .expect("forwarded after Accept");
    assert_eq!(
        (at_c.id.arrival(), at_c.id.from(), at_c.id.hex()),
        (Arrival::Stem, Some(hub.peer), id.clone()),
        "the second hop hears it from the first, not from the author"
    );
    c_node
        .service
        .report_anonymous(at_c.id, Acceptance::Accept)
        .await
        .unwrap();
    // C fluffs; the gossip copies reach the hub and the author, whose applications judge them
    // like any other gossip (a stem check commits nothing), so they forward no sooner than a
    // node that never saw the stem.
    eventually("C gossiped it", || async {
        metric(&c_node, "conclave_stem_fluffed_total", "coin") >= 1.0
    })
    .await;
    let at_hub = next_anonymous(&mut hub_node.anonymous, WAIT)
        .await
        .expect("the hub gets the gossip copy");
    assert_eq!(
        (at_hub.id.arrival(), at_hub.id.from(), at_hub.id.hex()),
        (Arrival::Gossip, Some(c.peer), id.clone()),
        "the hub's copy comes from the fluffer, in gossip"
    );
    hub_node
        .service
        .report_anonymous(at_hub.id, Acceptance::Accept)
        .await
        .unwrap();
    let at_a = next_anonymous(&mut a_node.anonymous, WAIT)
        .await
        .expect("the author gets the gossip copy from the hub");
    assert_eq!(
        (at_a.id.arrival(), at_a.id.from(), at_a.id.hex()),
        (Arrival::Gossip, Some(hub.peer), id.clone())
    );
    assert_eq!(metric(&a_node, "conclave_stem_received_total", ""), 0.0);
    assert_eq!(
        metric(&hub_node, "conclave_stem_received_total", "accepted"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_its_next_hop_drops_is_gossiped_by_the_failsafe() {
    init_tracing();
    let (a, b) = (Member::new(1), Member::new(2));
    let (_tx, rx) = watch::channel(line_view(&[&a, &b], &b));
    let failsafe = Duration::from_millis(400);
    let a_cfg = with_stem(
        config(&a, &[]),
        StemConfig {
            failsafe,
            ..StemConfig::default()
        },
    );
    let a_node = start(a_cfg, rx.clone(), &a);
    let mut b_node = start(config(&b, &[]), rx.clone(), &b);
    subscribe_all(&[&a_node, &b_node]).await;
    a_node.service.dial(b.addr.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let sent = Instant::now();
    let id = publish(&a_node, b"dropped on the stem").await;
    let first = next_anonymous(&mut b_node.anonymous, WAIT).await.unwrap();
    assert_eq!(
        (first.id.arrival(), first.id.hex()),
        (Arrival::Stem, id.clone())
    );
    // B takes it and drops it (a black hole that answers like a duplicate).
    b_node
        .service
        .report_anonymous(first.id, Acceptance::Ignore)
        .await
        .unwrap();
    let again = next_anonymous(&mut b_node.anonymous, WAIT)
        .await
        .expect("the author's fail-safe gossips the lost frame");
    assert_eq!((again.id.arrival(), again.id.hex()), (Arrival::Gossip, id));
    assert!(
        sent.elapsed() >= failsafe,
        "gossiped by the fail-safe, not at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_frame_goes_no_further_and_costs_its_sender_its_score_then_its_connection() {
    init_tracing();
    let (a, hub, c) = (Member::new(1), Member::new(2), Member::new(3));
    let (_tx, rx) = watch::channel(line_view(&[&a, &hub, &c], &hub));
    let a_node = start(config(&a, &[]), rx.clone(), &a);
    let mut hub_node = start(with_stem(config(&hub, &[]), stem(0.0)), rx.clone(), &hub);
    let mut c_node = start(config(&c, &[]), rx.clone(), &c);
    subscribe_all(&[&a_node, &hub_node, &c_node]).await;
    for n in [&a_node, &c_node] {
        n.service.dial(hub.addr.clone()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let score_of_a = || async {
        let scores = hub_node.service.anonymous_scores().await.unwrap();
        scores
            .into_iter()
            .find(|(p, _)| *p == a.peer)
            .map(|(_, s)| s)
    };
    let before = score_of_a()
        .await
        .expect("A is on the hub's anonymous channel");
    // The hub's application finds each of A's frames invalid, until A is graylisted. (A's
    // fail-safe later gossips what the hub rejected; those copies are judged invalid too.)
    let mut rejected = 0;
    while score_of_a().await.unwrap() >= -400.0 {
        assert!(rejected < 4, "graylisted after a few invalid frames");
        publish(&a_node, format!("invalid {rejected}").as_bytes()).await;
        loop {
            let m = next_anonymous(&mut hub_node.anonymous, WAIT).await.unwrap();
            assert_eq!(m.id.from(), Some(a.peer));
            let on_stem = m.id.arrival() == Arrival::Stem;
            hub_node
                .service
                .report_anonymous(m.id, Acceptance::Reject)
                .await
                .unwrap();
            if on_stem {
                break;
            }
        }
        rejected += 1;
        eventually("the penalty applied", || async {
            metric(&hub_node, "conclave_stem_received_total", "rejected") >= f64::from(rejected)
        })
        .await;
        if rejected == 1 {
            let after = score_of_a().await.unwrap();
            assert!(
                after <= before - 90.0,
                "one invalid frame costs 100: {before} → {after}"
            );
        }
    }
    while let Some(m) = next_anonymous(&mut hub_node.anonymous, Duration::from_millis(500)).await {
        assert_eq!(m.id.arrival(), Arrival::Gossip, "a leftover gossip copy");
        hub_node
            .service
            .report_anonymous(m.id, Acceptance::Reject)
            .await
            .unwrap();
    }
    assert!(
        next_anonymous(&mut c_node.anonymous, Duration::from_millis(500))
            .await
            .is_none(),
        "no invalid frame went past the first hop"
    );
    // Graylisted: the hub disconnects A and keeps it out (A redials, the hub's gate refuses it),
    // rather than only ignoring what it sends while still sending it everything.
    let hub_peers = hub_node.service.peers();
    eventually("the hub disconnects the graylisted member", || {
        let connected = hub_peers.borrow().peers.contains_key(&a.peer);
        async move { !connected }
    })
    .await;
    eventually("its redials refused for the cool-down", || async {
        metric(
            &hub_node,
            "conclave_connections_denied_total",
            "reason=\"graylisted\"",
        ) >= 1.0
    })
    .await;
    assert_eq!(
        metric(
            &hub_node,
            "conclave_peers_evicted_total",
            "reason=\"graylisted\""
        ),
        1.0
    );
    assert!(
        hub_peers.borrow().peers.contains_key(&c.peer),
        "the honest member stays connected"
    );
}
