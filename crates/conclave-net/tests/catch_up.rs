//! Acceptance tests of catch-up: a member that could not receive for a while gets what was
//! published meanwhile from the members it reaches again — once each, marked as caught up, and
//! judged by the authorization in force when each message was sent.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use conclave_net::{Delivery, NetworkEvent};
use prometheus_client::encoding::text::encode;

/// Every delivery within `d`, by payload.
async fn deliveries_within(node: &mut Node, d: Duration) -> Vec<Delivery> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(d, async {
        while let Some(ev) = node.events.recv().await {
            if let NetworkEvent::Message(m) = ev {
                out.push(m);
            }
        }
    })
    .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_was_away_catches_up_once_by_the_authorization_of_each_message_s_time() {
    init_tracing();
    let members: Vec<Member> = (1..=3).map(Member::new).collect();
    let refs: Vec<&Member> = members.iter().collect();
    let (mut nodes, view) = start_all(&members, view_of(&refs, &["signers"]), &["signers"]);
    wait_for_mesh(&nodes, 2, "signers").await;

    // C takes itself off the network: no listener, no connections, no dials.
    let c_addr = members[2].addr.clone();
    let (_, closed) = nodes[2].service.close_listeners(|_| true).await.unwrap();
    assert!(closed >= 1);
    let peers = nodes[2].service.peers();
    eventually("C alone", || {
        let n = peers.borrow().peers.len();
        async move {
            if n == 0 {
                Ok(())
            } else {
                Err(format!("{n} peers"))
            }
        }
    })
    .await;

    // Meanwhile A and B publish; then the registry revokes A.
    for i in 0..10 {
        for (who, n) in nodes.iter().take(2).enumerate() {
            let text = format!("{who}-{i}");
            n.service
                .publish(topic("signers"), text.into_bytes())
                .await
                .unwrap();
        }
    }
    let b_got = deliveries_within(&mut nodes[1], Duration::from_secs(2)).await;
    assert_eq!(b_got.len(), 10, "B received A's messages live");
    view.send_replace(view_of(&[&members[1], &members[2]], &["signers"]));

    // C comes back: it reaches B (A is no longer a member) and catches up.
    nodes[2].service.listen_on(c_addr).await.unwrap();
    let got = deliveries_within(&mut nodes[2], Duration::from_secs(8)).await;
    let mut by_payload: BTreeMap<String, usize> = BTreeMap::new();
    for d in &got {
        assert!(d.caught_up, "{d:?} came by catch-up");
        *by_payload
            .entry(String::from_utf8(d.payload.clone()).unwrap())
            .or_default() += 1;
    }
    assert_eq!(
        by_payload.len(),
        20,
        "every message of A and B: {by_payload:?}"
    );
    assert!(
        by_payload.values().all(|n| *n == 1),
        "each once: {by_payload:?}"
    );
    assert!(
        got.iter().filter(|d| d.source == members[0].peer).count() == 10,
        "A's, authorized when sent, are accepted after A's revocation"
    );

    // Live again: B's next message arrives in gossip, not as caught up, and only once.
    nodes[1]
        .service
        .publish(topic("signers"), b"live".to_vec())
        .await
        .unwrap();
    let live = deliveries_within(&mut nodes[2], Duration::from_secs(3)).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(!live[0].caught_up);

    let mut text = String::new();
    encode(&mut text, &nodes[2].metrics).unwrap();
    assert!(
        text.contains("conclave_catchup_messages_total{reason=\"accepted\"} 20"),
        "{text}"
    );
}
