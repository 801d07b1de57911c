//! The publish path as a specification: the size limit at its boundary, nonces, the outbox
//! and the hand-over, with no network.

use std::time::Duration;

use conclave_core::{NodeAuthorization, OperatorId, ViewBuilder, ViewSource};
use prometheus_client::registry::Registry;
use prost::Message as _;

use super::*;
use crate::validation::{validate_signed, ValidationLimits};

const MAX: usize = 1024;
const NOW_MS: u64 = 1_700_000_000_000;
const AT: Moment = Moment {
    unix_secs: NOW_MS / 1000,
    block: None,
};
const LIMITS: ValidationLimits = ValidationLimits {
    max_message_bytes: MAX,
    timestamp_tolerance_ms: 30_000,
};

/// Gossipsub as the publisher sees it: subscriber counts set by the test, sends recorded,
/// and optionally one error to answer every send with.
#[derive(Default)]
struct RecordingGossip {
    subscribed: BTreeMap<TopicName, usize>,
    sent: Vec<(TopicName, Vec<u8>)>,
    fail_with: Option<fn() -> GossipPublishError>,
}

impl Gossip for RecordingGossip {
    fn subscribed_peers(&self, topic: &TopicName) -> usize {
        self.subscribed.get(topic).copied().unwrap_or(0)
    }
    fn subscription_counts(&self) -> BTreeMap<TopicName, usize> {
        self.subscribed.clone()
    }
    fn publish(
        &mut self,
        topic: &TopicName,
        data: Vec<u8>,
    ) -> Result<MessageId, GossipPublishError> {
        if let Some(error) = self.fail_with {
            return Err(error());
        }
        self.sent.push((topic.clone(), data.clone()));
        Ok(MessageId::new(&data[..8.min(data.len())]))
    }
}

fn topic(name: &str) -> TopicName {
    name.parse().unwrap()
}

/// A view in which `key` may publish on "signers" only.
fn view_for(key: &Keypair) -> MembershipView {
    let op = OperatorId([7; 20]);
    let mut b = ViewBuilder::new(ViewSource::Empty);
    b.operator(op).unwrap();
    b.node(
        key.public().to_peer_id(),
        NodeAuthorization {
            operator: op,
            scopes: [topic("signers")].into(),
            valid_from_block: None,
            expiry: None,
            addresses: vec![],
        },
    )
    .unwrap();
    b.build()
}

fn publisher(key: &Keypair, nonce: u64, capacity: usize) -> (Publisher, NetMetrics) {
    let metrics = NetMetrics::register(&mut Registry::default());
    let limits = PublisherLimits {
        max_message_bytes: MAX,
        outbox_capacity: capacity,
        outbox_ttl: Duration::from_secs(10),
        min_publish_peers: 1,
    };
    (
        Publisher::new(key.clone(), nonce, limits, metrics.clone()).unwrap(),
        metrics,
    )
}

fn subscribed(topics: &[&str]) -> RecordingGossip {
    RecordingGossip {
        subscribed: topics.iter().map(|t| (topic(t), 1)).collect(),
        ..Default::default()
    }
}

/// Publishes on `topic` at the tests' moment.
fn send(
    p: &mut Publisher,
    gossip: &mut RecordingGossip,
    view: &MembershipView,
    now: Instant,
    topic_name: &str,
    payload: Vec<u8>,
) -> Result<PublishOutcome, PublishError> {
    let cx = PublishContext {
        view,
        at: AT,
        now_ms: NOW_MS,
        now,
    };
    p.publish(gossip, &cx, topic(topic_name), payload)
}

fn count(metrics: &NetMetrics, topic: &str, outcome: &'static str) -> u64 {
    metrics
        .publishes
        .get_or_create(&PublishLabels {
            topic: topic.into(),
            outcome,
        })
        .get()
}

#[test]
fn the_largest_payload_is_what_every_receiver_accepts_whatever_the_nonce() {
    for key in [Keypair::generate_ed25519(), Keypair::generate_secp256k1()] {
        let view = view_for(&key);
        // The longest nonce varint: the envelope is as long as it can be.
        let (mut p, _) = publisher(&key, u64::MAX, 8);
        let max = p.max_payload;
        let mut gossip = subscribed(&["signers"]);
        let now = Instant::now();
        for size in [max - 1, max] {
            let out = send(&mut p, &mut gossip, &view, now, "signers", vec![0xab; size]);
            assert!(
                matches!(out, Ok(PublishOutcome::Published { .. })),
                "{size}: {out:?}"
            );
        }
        for (t, data) in &gossip.sent {
            assert!(data.len() <= MAX, "{} > {MAX}", data.len());
            let v = validate_signed(
                &view,
                AT,
                NOW_MS,
                LIMITS,
                Some(key.public().to_peer_id()),
                t,
                data,
            );
            assert!(v.is_ok(), "a receiver refuses it: {v:?}");
        }
        // One byte more could exceed the receivers' limit: refused here, naming the limit.
        assert!(
            Envelope::encoded_len_bound(max + 1, max_signature_len(&key)) > MAX,
            "the limit is not needlessly low"
        );
        let over = send(&mut p, &mut gossip, &view, now, "signers", vec![0; max + 1]);
        assert_eq!(over, Err(PublishError::TooLarge { size: max + 1, max }));
        let text = over.unwrap_err().to_string();
        assert!(text.contains(&max.to_string()), "{text}");
        assert_eq!(gossip.sent.len(), 2, "nothing more was sent");
        assert!(p.is_idle(), "and nothing queued");
    }
}

#[test]
fn a_limit_too_small_for_any_envelope_is_refused() {
    let overhead = Envelope::encoded_len_bound(0, 64);
    assert_eq!(max_payload_bytes(overhead - 1, 64), None);
    assert_eq!(max_payload_bytes(overhead, 64), Some(0));
    assert_eq!(max_payload_bytes(overhead + 1, 64), Some(1));
    // Past 127 bytes the payload's length prefix takes two bytes.
    assert_eq!(max_payload_bytes(overhead + 127, 64), Some(127));
    assert_eq!(max_payload_bytes(overhead + 128, 64), Some(127));
    assert_eq!(max_payload_bytes(overhead + 129, 64), Some(128));
    let key = Keypair::generate_ed25519();
    let limits = PublisherLimits {
        max_message_bytes: overhead - 1,
        outbox_capacity: 1,
        outbox_ttl: Duration::from_secs(1),
        min_publish_peers: 1,
    };
    let metrics = NetMetrics::register(&mut Registry::default());
    let refused = Publisher::new(key, 0, limits, metrics).err().unwrap();
    assert!(
        refused.to_string().contains(&overhead.to_string()),
        "{refused}"
    );
}

#[test]
fn waits_in_order_until_a_peer_subscribes() {
    let key = Keypair::generate_ed25519();
    let view = view_for(&key);
    let (mut p, metrics) = publisher(&key, 1, 8);
    let mut gossip = RecordingGossip::default();
    let now = Instant::now();
    for (i, expected) in [(1u8, 1), (2, 2)] {
        let out = send(&mut p, &mut gossip, &view, now, "signers", vec![i]);
        assert_eq!(out, Ok(PublishOutcome::Queued { position: expected }));
    }
    assert!(p.flush(&mut gossip, NOW_MS).is_empty());
    assert!(gossip.sent.is_empty(), "no subscriber yet");
    gossip.subscribed.insert(topic("signers"), 1);
    // A publish while others wait queues behind them, even with a subscriber now.
    let third = send(&mut p, &mut gossip, &view, now, "signers", vec![3]);
    assert_eq!(third, Ok(PublishOutcome::Queued { position: 3 }));
    assert!(p.flush(&mut gossip, NOW_MS + 5).is_empty());
    let payloads: Vec<Vec<u8>> = gossip
        .sent
        .iter()
        .map(|(_, d)| Envelope::decode(d.as_slice()).unwrap())
        .inspect(|e| assert_eq!(e.timestamp_ms, NOW_MS + 5, "stamped when sent"))
        .map(|e| e.payload)
        .collect();
    assert_eq!(payloads, vec![vec![1], vec![2], vec![3]]);
    assert!(p.is_idle());
    assert_eq!(count(&metrics, "signers", "queued"), 3);
    assert_eq!(metrics.outbox_len.get(), 0);
}

#[test]
fn refusals_queue_nothing_and_are_counted() {
    let key = Keypair::generate_ed25519();
    let view = view_for(&key);
    let (mut p, metrics) = publisher(&key, 1, 1);
    let mut gossip = RecordingGossip::default();
    let now = Instant::now();
    let out = send(&mut p, &mut gossip, &view, now, "other", vec![1]);
    assert!(
        matches!(out, Err(PublishError::NotAuthorized { .. })),
        "{out:?}"
    );
    assert!(p.is_idle());
    let stranger = Keypair::generate_ed25519();
    let (mut s, _) = publisher(&stranger, 1, 1);
    let out = send(&mut s, &mut gossip, &view, now, "signers", vec![1]);
    assert!(
        matches!(out, Err(PublishError::NotAuthorized { .. })),
        "{out:?}"
    );

    assert!(send(&mut p, &mut gossip, &view, now, "signers", vec![1]).is_ok());
    let full = send(&mut p, &mut gossip, &view, now, "signers", vec![2]);
    assert_eq!(full, Err(PublishError::QueueFull { capacity: 1 }));
    let full_count = metrics
        .outbox_dropped
        .get_or_create(&ReasonLabels { reason: "full" })
        .get();
    assert_eq!(full_count, 1);
    assert_eq!(count(&metrics, "other", "refused"), 1);
    assert_eq!(count(&metrics, "signers", "refused"), 1);
}

#[test]
fn old_messages_expire_and_failures_drop_only_the_failed_message() {
    let key = Keypair::generate_ed25519();
    let view = view_for(&key);
    let (mut p, metrics) = publisher(&key, 1, 8);
    let mut gossip = RecordingGossip::default();
    let t0 = Instant::now();
    send(&mut p, &mut gossip, &view, t0, "signers", vec![1]).unwrap();
    send(
        &mut p,
        &mut gossip,
        &view,
        t0 + Duration::from_secs(6),
        "signers",
        vec![2],
    )
    .unwrap();
    let expired = p.expire(t0 + Duration::from_secs(11));
    assert_eq!(
        expired,
        vec![Dropped {
            topic: topic("signers"),
            reason: "expired"
        }]
    );
    // No room in gossipsub's queues: the message stays, in place.
    gossip.subscribed.insert(topic("signers"), 1);
    gossip.fail_with = Some(|| GossipPublishError::AllQueuesFull(1));
    assert!(p.flush(&mut gossip, NOW_MS).is_empty());
    assert!(!p.is_idle());
    // A failure that retrying cannot fix drops it, reported.
    gossip.fail_with = Some(|| GossipPublishError::MessageTooLarge);
    let dropped = p.flush(&mut gossip, NOW_MS);
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].reason, "failed");
    assert!(p.is_idle());
    for reason in ["expired", "failed"] {
        assert_eq!(
            metrics
                .outbox_dropped
                .get_or_create(&ReasonLabels { reason })
                .get(),
            1
        );
    }
}

#[test]
fn after_the_hand_over_the_successor_gets_what_waits_and_every_later_publish() {
    let key = Keypair::generate_ed25519();
    let view = view_for(&key);
    let (mut p, _) = publisher(&key, 1, 8);
    let mut gossip = RecordingGossip::default();
    let now = Instant::now();
    send(&mut p, &mut gossip, &view, now, "signers", vec![1]).unwrap();
    send(&mut p, &mut gossip, &view, now, "signers", vec![2]).unwrap();
    assert_eq!(
        p.hand_over(),
        vec![(topic("signers"), vec![1]), (topic("signers"), vec![2])]
    );
    gossip.subscribed.insert(topic("signers"), 1);
    let later = send(&mut p, &mut gossip, &view, now, "signers", vec![3]);
    assert_eq!(later, Err(PublishError::HandedOver));
    assert!(p.flush(&mut gossip, NOW_MS).is_empty());
    assert!(
        gossip.sent.is_empty(),
        "nothing goes out through the old key"
    );
}
