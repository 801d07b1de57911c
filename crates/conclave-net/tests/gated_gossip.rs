//! Acceptance tests of the gated, signed channel: multi-node, real Noise handshakes over the
//! memory transport, the production behaviour and validator.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use conclave_core::PeerId;
use conclave_net::{Direction, NetworkEvent, PublishError, PublishOutcome, Rejection, HEARTBEAT};
use conclave_testkit::{node, RegistryDoc};
use libp2p::identity::Keypair;
use prometheus_client::encoding::text::encode;
use tokio::sync::watch;

fn delivered_from(events: &[NetworkEvent], peer: PeerId) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, NetworkEvent::Message(d) if d.source == peer))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_members_exchange_messages() {
    init_tracing();
    let members: Vec<Member> = (1..=7).map(Member::new).collect();
    let refs: Vec<&Member> = members.iter().collect();
    let (mut nodes, _view) = start_all(&members, view_of(&refs, &["signers"]), &["signers"]);
    wait_for_mesh(&nodes, 6, "signers").await;

    for (i, n) in nodes.iter().enumerate() {
        let out = n
            .service
            .publish(topic("signers"), format!("hello from {i}").into_bytes())
            .await
            .unwrap();
        assert!(matches!(out, PublishOutcome::Published { .. }), "{out:?}");
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        let mut got = BTreeMap::new();
        while got.len() < 6 {
            let d = next_matching(&mut n.events, |e| match e {
                NetworkEvent::Message(d) => Some(d.clone()),
                _ => None,
            })
            .await;
            assert_ne!(d.source, members[i].peer, "no self-delivery");
            let sender = members.iter().position(|m| m.peer == d.source).unwrap();
            assert_eq!(d.operator, members[sender].operator);
            assert_eq!(d.payload, format!("hello from {sender}").into_bytes());
            assert!(got.insert(sender, d).is_none(), "delivered twice");
        }
    }
    let mut text = String::new();
    encode(&mut text, &nodes[0].metrics).unwrap();
    assert!(
        text.contains(
            "conclave_messages_total{topic=\"signers\",outcome=\"accepted\",reason=\"ok\"} 6"
        ),
        "{text}"
    );
    assert!(text.contains("conclave_peers_connected 6"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_is_refused_both_ways_and_exchanges_nothing() {
    init_tracing();
    let members: Vec<Member> = (1..=3).map(Member::new).collect();
    let refs: Vec<&Member> = members.iter().collect();
    let (mut nodes, _view) = start_all(&members, view_of(&refs, &["signers"]), &["signers"]);
    wait_for_mesh(&nodes, 2, "signers").await;

    // The intruder believes it belongs: its own view lists itself and the members, so it dials
    // them all and tries to publish.
    let intruder_m = Member::new(99);
    let mut all = refs.clone();
    all.push(&intruder_m);
    let (_itx, irx) = watch::channel(view_of(&all, &["signers"]));
    let mut intruder = start(config(&intruder_m, &["signers"]), irx, &intruder_m);

    // 1. It dials the members: each refuses it inbound, after the handshake.
    for n in nodes.iter_mut() {
        let (peer, dir, reason) = next_matching(&mut n.events, |e| match e {
            NetworkEvent::ConnectionDenied {
                peer,
                direction,
                reason,
            } => Some((*peer, *direction, *reason)),
            _ => None,
        })
        .await;
        assert_eq!(
            (peer, dir, reason),
            (Some(intruder_m.peer), Direction::Inbound, "not_member")
        );
    }

    // 2. A member dials it by PeerId: refused before any connection is attempted.
    let with_id = intruder_m
        .addr
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(intruder_m.peer));
    let err = nodes[0].service.dial(with_id).await.unwrap_err();
    assert!(err.to_string().contains("membership gate"), "{err}");

    // 3. A member dials its bare address: the handshake reveals a stranger and the gate refuses.
    nodes[1]
        .service
        .dial(intruder_m.addr.clone())
        .await
        .unwrap();
    let (peer, dir, reason) = next_matching(&mut nodes[1].events, |e| match e {
        NetworkEvent::ConnectionDenied {
            peer,
            direction: Direction::Outbound,
            reason,
        } => Some((*peer, Direction::Outbound, *reason)),
        _ => None,
    })
    .await;
    assert_eq!(
        (peer, dir, reason),
        (Some(intruder_m.peer), Direction::Outbound, "not_member")
    );

    // 4. Nothing flows either way.
    let out = intruder
        .service
        .publish(topic("signers"), b"let me in".to_vec())
        .await
        .unwrap();
    assert!(
        matches!(out, PublishOutcome::Queued { .. }),
        "no subscribed peer: {out:?}"
    );
    for n in &nodes {
        n.service
            .publish(topic("signers"), b"members only".to_vec())
            .await
            .unwrap();
    }
    let seen = drain_for(&mut intruder.events, Duration::from_secs(2)).await;
    assert!(
        !seen.iter().any(|e| matches!(e, NetworkEvent::Message(_))),
        "intruder received: {seen:?}"
    );
    // (The intruder may see its own side of a handshake complete before the member drops it.)
    assert!(intruder.service.peers().borrow().peers.is_empty());
    for n in nodes.iter_mut() {
        let evs = drain_for(&mut n.events, Duration::from_millis(300)).await;
        assert_eq!(delivered_from(&evs, intruder_m.peer), 0);
        assert!(!evs.iter().any(
            |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == intruder_m.peer)
        ));
        assert!(!n
            .service
            .peers()
            .borrow()
            .peers
            .contains_key(&intruder_m.peer));
    }
    let mut text = String::new();
    encode(&mut text, &nodes[1].metrics).unwrap();
    assert!(
        text.contains(
            "conclave_connections_denied_total{direction=\"outbound\",reason=\"not_member\"}"
        ),
        "{text}"
    );
}

/// One member is removed from the registry file. Nodes reading that file evict it within 500 ms
/// of their reload. A laggard reading a stale copy still relays its messages; everyone else
/// rejects them as coming from a non-member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_evicted_promptly_and_its_messages_rejected() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<Member> = (1..=5).map(Member::new).collect();
    let [a, b, c, laggard, removed] = [0, 1, 2, 3, 4].map(|i| &members[i]);
    let doc = |ms: &[&Member]| {
        ms.iter().fold(RegistryDoc::new(), |doc, m| {
            let mut key = node(m.peer, &["signers"]);
            key.addresses = vec![m.addr.to_string()];
            doc.operator(m.operator, vec![key])
        })
    };
    let live = dir.path().join("registry.toml");
    let stale = dir.path().join("stale.toml");
    doc(&[a, b, c, laggard, removed]).write(&live);
    doc(&[a, b, c, laggard, removed]).write(&stale);

    let poll = Duration::from_millis(20);
    let mut registries = Vec::new();
    let mut nodes = Vec::new();
    for (m, file) in [
        (a, &live),
        (b, &live),
        (c, &live),
        (laggard, &stale),
        (removed, &stale),
    ] {
        let reg = conclave_registry::FileRegistry::spawn(file, poll).unwrap();
        nodes.push(start(
            config(m, &["signers"]),
            conclave_registry::RegistrySource::view(&reg),
            m,
        ));
        registries.push(reg);
    }
    wait_for_mesh(&nodes, 4, "signers").await;

    // Watch, on a, b and c, when the reload lands and when `removed` disappears.
    let mut watchers = Vec::new();
    for i in 0..3 {
        let mut view = conclave_registry::RegistrySource::view(&registries[i]);
        let mut peers = nodes[i].service.peers();
        let gone = removed.peer;
        watchers.push(tokio::spawn(async move {
            view.changed().await.unwrap();
            let reloaded = Instant::now();
            while peers.borrow_and_update().peers.contains_key(&gone) {
                peers.changed().await.unwrap();
            }
            reloaded.elapsed()
        }));
    }
    doc(&[a, b, c, laggard]).write(&live);
    for w in watchers {
        let took = tokio::time::timeout(WAIT, w).await.unwrap().unwrap();
        assert!(
            took <= Duration::from_millis(500),
            "evicted {took:?} after the reload"
        );
    }

    // It cannot come back: its redials are refused by a, b and c.
    for n in nodes[..3].iter_mut() {
        next_matching(&mut n.events, |e| match e {
            NetworkEvent::ConnectionDenied { peer: Some(p), .. } if *p == removed.peer => Some(()),
            _ => None,
        })
        .await;
    }

    // Its later messages reach a, b and c only through the laggard, and are rejected there.
    assert!(nodes[4]
        .service
        .peers()
        .borrow()
        .peers
        .contains_key(&laggard.peer));
    nodes[4]
        .service
        .publish(topic("signers"), b"still here?".to_vec())
        .await
        .unwrap();
    let relayed = next_matching(&mut nodes[3].events, |e| match e {
        NetworkEvent::Message(d) if d.source == removed.peer => Some(d.payload.clone()),
        _ => None,
    })
    .await;
    assert_eq!(relayed, b"still here?");
    for n in nodes[..3].iter_mut() {
        let reason = next_matching(&mut n.events, |e| match e {
            NetworkEvent::MessageRejected {
                source: Some(s),
                reason,
            } if *s == removed.peer => Some(reason.clone()),
            NetworkEvent::Message(d) if d.source == removed.peer => {
                panic!("delivered a removed member's message")
            }
            _ => None,
        })
        .await;
        assert_eq!(reason.label(), "not_member");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_outside_scope_or_with_old_timestamps_are_rejected() {
    init_tracing();
    let members: Vec<Member> = (1..=3).map(Member::new).collect();
    let refs: Vec<&Member> = members.iter().collect();
    let strict = view_of(&refs, &["signers"]);
    let (tx, rx) = watch::channel(strict);

    // members[1] believes it may also sign on `coord` (its registry copy is more permissive);
    // members[2] runs twenty minutes behind, so its envelopes look like old replays: older than
    // the catch-up retention window (10 min), within which a late copy is only ignored.
    let (_ltx, lenient) = watch::channel(view_of(&refs, &["signers", "coord"]));
    let mut lagging = config(&members[2], &["signers", "coord"]);
    lagging.clock = Arc::new(LaggingClock(1_200_000));
    let mut nodes = vec![
        start(
            config(&members[0], &["signers", "coord"]),
            rx.clone(),
            &members[0],
        ),
        start(
            config(&members[1], &["signers", "coord"]),
            lenient,
            &members[1],
        ),
        start(lagging, rx.clone(), &members[2]),
    ];
    wait_for_mesh(&nodes, 2, "coord").await;
    let _keep = tx;

    nodes[1]
        .service
        .publish(topic("coord"), b"not my scope".to_vec())
        .await
        .unwrap();
    let r = next_matching(&mut nodes[0].events, |e| match e {
        NetworkEvent::MessageRejected {
            source: Some(s),
            reason,
        } if *s == members[1].peer => Some(reason.clone()),
        NetworkEvent::Message(d) if d.topic.as_str() == "coord" => {
            panic!("out-of-scope message delivered")
        }
        _ => None,
    })
    .await;
    assert!(matches!(r, Rejection::Unauthorized { .. }));
    assert_eq!(r.label(), "out_of_scope");

    nodes[2]
        .service
        .publish(topic("signers"), b"from the past".to_vec())
        .await
        .unwrap();
    let r = next_matching(&mut nodes[0].events, |e| match e {
        NetworkEvent::MessageRejected {
            source: Some(s),
            reason,
        } if *s == members[2].peer => Some(reason.clone()),
        NetworkEvent::Message(d) if d.source == members[2].peer => {
            panic!("stale message delivered")
        }
        _ => None,
    })
    .await;
    assert_eq!(r.label(), "stale");

    // A publish the node itself is not authorized for is refused locally, before signing.
    let err = nodes[0]
        .service
        .publish(topic("coord"), b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::NotAuthorized { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_wait_for_subscribers_instead_of_failing() {
    init_tracing();
    let members: Vec<Member> = (1..=2).map(Member::new).collect();
    let refs: Vec<&Member> = members.iter().collect();
    let view = view_of(&refs, &["signers"]);
    let (tx, rx) = watch::channel(view);
    let mut first = start(config(&members[0], &["signers"]), rx.clone(), &members[0]);
    for i in 0..5u8 {
        let out = first
            .service
            .publish(topic("signers"), vec![i])
            .await
            .unwrap();
        assert_eq!(
            out,
            PublishOutcome::Queued {
                position: i as usize + 1
            }
        );
    }
    // The second node comes up later; the queued messages arrive.
    let mut second = start(config(&members[1], &["signers"]), rx, &members[1]);
    let mut got = Vec::new();
    for _ in 0..5u8 {
        let p = next_matching(&mut second.events, |e| match e {
            NetworkEvent::Message(d) => Some(d.payload[0]),
            _ => None,
        })
        .await;
        got.push(p);
    }
    // The outbox hands them to gossipsub in order (unit-tested); gossip itself does not promise
    // order across connections, so here: every one, exactly once.
    got.sort();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    let _ = (&mut first, tx);
}

/// The sender promises what receivers accept: `max_message_bytes` bounds the whole signed
/// envelope, so the largest payload is smaller by the envelope's worst case. Payloads at and just
/// under it reach every member; one byte more is refused at the sender, naming the limit — it
/// never goes out to be refused by receivers, who would penalize the honest sender for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_up_to_the_largest_deliverable_size_arrive_and_one_more_is_refused_at_the_sender()
{
    init_tracing();
    // ed25519 and secp256k1 senders: their signatures differ in length.
    let mut members: Vec<Member> = (1..=3).map(Member::new).collect();
    members.push(Member::with_key(4, Keypair::generate_secp256k1()));
    let refs: Vec<&Member> = members.iter().collect();
    let (mut nodes, _view) = start_all(&members, view_of(&refs, &["signers"]), &["signers"]);
    wait_for_mesh(&nodes, 3, "signers").await;
    let limit = conclave_net::NetConfig::new(
        Keypair::generate_ed25519(),
        conclave_net::TransportKind::Memory,
    )
    .max_message_bytes;
    let senders = [0, 3];
    let mut sizes = BTreeMap::new();
    for &s in &senders {
        let max = nodes[s].service.max_payload_bytes();
        assert!(
            max < limit && max + 100 >= limit,
            "the envelope costs at most 100 bytes: {max}"
        );
        for size in [max - 1, max] {
            let out = nodes[s]
                .service
                .publish(topic("signers"), vec![s as u8; size])
                .await
                .unwrap();
            assert!(matches!(out, PublishOutcome::Published { .. }), "{out:?}");
        }
        let over = nodes[s]
            .service
            .publish(topic("signers"), vec![0; max + 1])
            .await
            .unwrap_err();
        assert_eq!(over, PublishError::TooLarge { size: max + 1, max });
        assert!(over.to_string().contains(&format!("{max} bytes")), "{over}");
        sizes.insert(members[s].peer, vec![max - 1, max]);
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        let mut got: BTreeMap<PeerId, Vec<usize>> = BTreeMap::new();
        let expected: usize = senders.iter().filter(|&&s| s != i).count() * 2;
        for _ in 0..expected {
            let (source, len) = next_matching(&mut node.events, |e| match e {
                NetworkEvent::Message(d) => Some((d.source, d.payload.len())),
                _ => None,
            })
            .await;
            got.entry(source).or_default().push(len);
        }
        for list in got.values_mut() {
            list.sort();
        }
        let want: BTreeMap<PeerId, Vec<usize>> = sizes
            .iter()
            .filter(|(p, _)| **p != members[i].peer)
            .map(|(p, s)| (*p, s.clone()))
            .collect();
        assert_eq!(
            got, want,
            "node {i} received both payloads of each other sender"
        );
    }
    // A few heartbeats later nobody has refused anything and every sender is still in every
    // receiver's mesh: nobody was penalized.
    tokio::time::sleep(HEARTBEAT * 3).await;
    for (i, node) in nodes.iter().enumerate() {
        let mut text = String::new();
        encode(&mut text, &node.metrics).unwrap();
        assert!(
            !text.contains("outcome=\"rejected\""),
            "node {i} rejected a message:\n{text}"
        );
        let mesh = node.service.mesh_peers(topic("signers")).await.unwrap();
        for &s in senders.iter().filter(|&&s| s != i) {
            assert!(
                mesh.contains(&members[s].peer),
                "node {i} pruned sender {s}: {mesh:?}"
            );
        }
    }
}
