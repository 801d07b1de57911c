//! The stem with real proofs: an own message reaches its first hop on the stem, never straight
//! from its author in gossip; a frame whose proof does not verify stops at the first hop and
//! costs the member that sent it its score there.

use conclave_api::{ArrivalPath, PeersAnswer, RlnArrivalsAnswer};
use conclave_rln::RlnMessage;

use super::*;

async fn arrivals_of(node: &RunningNode, message_id: &str) -> Vec<conclave_api::RlnArrival> {
    let all: RlnArrivalsAnswer = get_json(node, "/v1/rln/arrivals").await;
    all.arrivals
        .into_iter()
        .filter(|a| a.message_id == message_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stem_carries_own_messages_and_stops_an_invalid_proof_at_the_first_hop() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = &NAMES[..3];
    let (peers, rates, ids) = generate_members(d, names, LIMIT);
    let record = |c: &mut NodeConfig| c.rln.record_arrivals = 1000;
    let nodes = start_network(d, names, (&peers, &rates, LIMIT), 3, record).await;
    let author = nodes[0].peer_id().to_string();

    // An honest message: delivered to both others; it first left its author on the stem, to
    // exactly one first hop (later the author forwards gossip copies like everyone).
    let mut subs = Vec::new();
    for n in &nodes[1..] {
        subs.push(subscribe(n).await);
    }
    let RlnPublishAnswer::Published { message_id, .. } = publish(&nodes[0], b"stemmed").await;
    for ws in subs.iter_mut() {
        let v = next(ws, WAIT).await.expect("delivered");
        assert_eq!(payload(&v), b"stemmed");
    }
    let mut first_hops = 0;
    let mut earliest: Option<conclave_api::RlnArrival> = None;
    for n in &nodes[1..] {
        for a in arrivals_of(n, &message_id).await {
            first_hops += usize::from(a.via == ArrivalPath::Stem && a.from == author);
            if earliest.as_ref().is_none_or(|e| a.at_ms < e.at_ms) {
                earliest = Some(a);
            }
        }
    }
    let earliest = earliest.expect("arrivals recorded");
    assert_eq!(
        (earliest.via, earliest.from.as_str()),
        (ArrivalPath::Stem, author.as_str()),
        "the message left its author on the stem, not in gossip: {earliest:?}"
    );
    assert!(first_hops >= 1, "a first hop took it from the author");

    // A frame with a real proof for another payload: it does not verify. Sent raw from a's
    // network service, it goes to a's stem successor, which rejects it unforwarded.
    let forge = Forger::for_rates(&rates, LIMIT);
    mid_epoch().await;
    let proven = forge.frame(&ids[0], b"what was proven", now_ms(), 5).await;
    let mut tampered = RlnMessage::decode(&proven).unwrap();
    tampered.payload = b"something else".to_vec();
    let bad_id = nodes[0]
        .network()
        .publish_anonymous("anon".parse().unwrap(), tampered.encode())
        .await
        .unwrap();
    let first_hop = eventually("the first hop to reject it", || async {
        for (i, n) in nodes.iter().enumerate().skip(1) {
            let text = get(n, "/metrics").await.1;
            if metric(&text, "conclave_stem_received_total", "reason=\"rejected\"") >= 1.0 {
                return Ok(i);
            }
        }
        Err("not rejected yet".to_string())
    })
    .await;
    let other = 3 - first_hop;
    let text = get(&nodes[first_hop], "/metrics").await.1;
    assert!(
        metric(&text, "conclave_rln_messages_total", "outcome=\"rejected\"") >= 1.0,
        "rejected by the RLN checks: {text}"
    );
    let peers: PeersAnswer = get_json(&nodes[first_hop], "/v1/peers").await;
    let score = peers
        .peer(&author)
        .and_then(|p| p.anonymous_score)
        .expect("the author's score at its first hop");
    assert!(
        score <= -90.0,
        "an invalid stem frame costs its sender: {score}"
    );
    // Give a forwarded copy time to show up, then check nobody took it further.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        arrivals_of(&nodes[other], &bad_id)
            .await
            .iter()
            .all(|a| a.via == ArrivalPath::Gossip && a.from == author),
        "the first hop forwarded nothing (only the author's own fail-safe may gossip it)"
    );
    for ws in subs.iter_mut() {
        assert!(
            next(ws, Duration::from_millis(500)).await.is_none(),
            "an invalid frame is never delivered"
        );
    }
    for n in nodes {
        n.shutdown().await;
    }
}
