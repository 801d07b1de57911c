//! The signed channel's sending side, without I/O: authorization and size checks, the node key
//! and its nonces, the wait queue for topics without subscribed peers, and the hand-over to a
//! successor key. The worker lends it gossipsub (as [`Gossip`]) and the time; tests lend it a
//! recording stand-in, so every rule here is checked without a network.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use conclave_core::{Envelope, MembershipView, Moment, PeerId, TopicName};
use libp2p::gossipsub::{self, MessageId, PublishError as GossipPublishError};
use libp2p::identity::{KeyType, Keypair};
use prost::Message as _;

use super::outbox::{Outbox, Pending};
use super::types::{hex_id, PublishError, PublishOutcome};
use crate::behaviour::{gossip_topic, topic_name};
use crate::metrics::{NetMetrics, PublishLabels, ReasonLabels};
use crate::NetError;

/// What the publisher needs of gossipsub: who subscribes where, and sending one message.
pub(crate) trait Gossip {
    /// Connected peers subscribed to `topic`.
    fn subscribed_peers(&self, topic: &TopicName) -> usize;
    /// Connected peers per subscribed topic (one pass, for flushing the whole queue).
    fn subscription_counts(&self) -> BTreeMap<TopicName, usize>;
    fn publish(
        &mut self,
        topic: &TopicName,
        data: Vec<u8>,
    ) -> Result<MessageId, GossipPublishError>;
}

/// The longest signature a key of this type makes: 64 bytes for ed25519; the DER-encoded ECDSA
/// signatures of secp256k1 (and P-256) are at most 72.
fn max_signature_len(key: &Keypair) -> usize {
    match key.key_type() {
        KeyType::Ed25519 => 64,
        _ => 72,
    }
}

/// The largest payload whose envelope, at its longest, still fits `max_message_bytes`; `None`
/// when not even an empty one does.
pub(crate) fn max_payload_bytes(
    max_message_bytes: usize,
    max_signature_len: usize,
) -> Option<usize> {
    let fits = |n: usize| Envelope::encoded_len_bound(n, max_signature_len) <= max_message_bytes;
    let overhead = Envelope::encoded_len_bound(0, max_signature_len);
    // Start where the payload's own length prefix is one byte, step down past longer prefixes.
    let mut n = max_message_bytes.checked_sub(overhead)?;
    while !fits(n) {
        n -= 1;
    }
    Some(n)
}

/// What a publish is judged against: the view in force and its moment, the wall clock for the
/// envelope's timestamp, the monotonic clock for the wait queue.
pub(crate) struct PublishContext<'a> {
    pub view: &'a MembershipView,
    pub at: Moment,
    pub now_ms: u64,
    pub now: Instant,
}

/// A queued publish given up, for the worker to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub topic: TopicName,
    pub reason: &'static str,
}

/// Signs and sends this node's messages, or keeps them in order until peers subscribe.
pub(crate) struct Publisher {
    /// Signs every envelope this node publishes.
    key: Keypair,
    /// The key's PeerId, which the view authorizes.
    local: PeerId,
    /// The next envelope's nonce (random start, so a restart does not reuse nonces).
    nonce: u64,
    outbox: Outbox,
    capacity: usize,
    /// The largest payload every receiver accepts (see [`max_payload_bytes`]).
    max_payload: usize,
    min_publish_peers: usize,
    /// Set by the hand-over to a new key: publishes now belong to the successor.
    handed_over: bool,
    metrics: NetMetrics,
}

/// How the publisher is sized.
pub(crate) struct PublisherLimits {
    /// The receivers' limit on a whole encoded envelope.
    pub max_message_bytes: usize,
    pub outbox_capacity: usize,
    pub outbox_ttl: std::time::Duration,
    /// Subscribed peers a topic needs before a message is sent rather than queued.
    pub min_publish_peers: usize,
}

impl Publisher {
    /// Refused when `max_message_bytes` leaves no room for a signed envelope.
    pub fn new(
        key: Keypair,
        nonce: u64,
        limits: PublisherLimits,
        metrics: NetMetrics,
    ) -> Result<Self, NetError> {
        let signature = max_signature_len(&key);
        let max_payload = max_payload_bytes(limits.max_message_bytes, signature).ok_or(
            NetError::MessageLimit {
                max_message_bytes: limits.max_message_bytes,
                envelope: Envelope::encoded_len_bound(0, signature),
            },
        )?;
        Ok(Publisher {
            local: key.public().to_peer_id(),
            key,
            nonce,
            outbox: Outbox::new(limits.outbox_capacity, limits.outbox_ttl),
            capacity: limits.outbox_capacity,
            max_payload,
            min_publish_peers: limits.min_publish_peers,
            handed_over: false,
            metrics,
        })
    }

    /// The largest payload every receiver accepts.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Nothing waits to be sent.
    pub fn is_idle(&self) -> bool {
        self.outbox.is_empty()
    }

    /// Publishes `payload` on `topic` now, or queues it behind earlier ones for the topic (or
    /// until enough peers subscribe). Refused — and nothing queued — when this key may not
    /// publish there at `at`, when the payload is over the largest deliverable size, when the
    /// queue is full or after the hand-over. Every outcome is counted.
    pub fn publish(
        &mut self,
        gossip: &mut impl Gossip,
        cx: &PublishContext<'_>,
        topic: TopicName,
        payload: Vec<u8>,
    ) -> Result<PublishOutcome, PublishError> {
        let result = self.admit(gossip, cx, topic.clone(), payload);
        let outcome = match &result {
            Ok(PublishOutcome::Published { .. }) => "published",
            Ok(PublishOutcome::Queued { .. }) => "queued",
            Err(_) => "refused",
        };
        self.metrics
            .publishes
            .get_or_create(&PublishLabels {
                topic: topic.to_string(),
                outcome,
            })
            .inc();
        result
    }

    fn admit(
        &mut self,
        gossip: &mut impl Gossip,
        cx: &PublishContext<'_>,
        topic: TopicName,
        payload: Vec<u8>,
    ) -> Result<PublishOutcome, PublishError> {
        if self.handed_over {
            return Err(PublishError::HandedOver);
        }
        if let Err(reason) = cx.view.may_publish(&self.local, &topic, cx.at) {
            return Err(PublishError::NotAuthorized { topic, reason });
        }
        if payload.len() > self.max_payload {
            return Err(PublishError::TooLarge {
                size: payload.len(),
                max: self.max_payload,
            });
        }
        let ready = !self.outbox.has_pending(&topic)
            && gossip.subscribed_peers(&topic) >= self.min_publish_peers;
        if ready {
            match self.send(gossip, &topic, &payload, cx.now_ms) {
                Ok(id) => return Ok(PublishOutcome::Published { message_id: id }),
                Err(e) => tracing::debug!(%topic, error = %e, "publish deferred"),
            }
        }
        let pending = Pending {
            topic,
            payload,
            queued_at: cx.now,
        };
        match self.outbox.push(pending) {
            Ok(()) => {
                self.metrics.outbox_len.set(self.outbox.len() as i64);
                Ok(PublishOutcome::Queued {
                    position: self.outbox.len(),
                })
            }
            Err(_) => {
                self.count_dropped("full");
                Err(PublishError::QueueFull {
                    capacity: self.capacity,
                })
            }
        }
    }

    /// Stamps, signs and sends; the timestamp is taken now so queued messages are not stale.
    fn send(
        &mut self,
        gossip: &mut impl Gossip,
        topic: &TopicName,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<String, GossipPublishError> {
        let mut envelope = Envelope {
            timestamp_ms: now_ms,
            payload: payload.to_vec(),
            nonce: self.nonce,
            signature: Vec::new(),
        };
        self.nonce = self.nonce.wrapping_add(1);
        envelope.signature = self.key.sign(&envelope.signing_bytes(topic.as_str()))?;
        let id = gossip.publish(topic, envelope.encode_to_vec())?;
        Ok(hex_id(&id))
    }

    /// Sends, in order, what waits for topics that now have enough subscribed peers. A topic
    /// gossipsub cannot take right now stays queued, in order; any other failure drops the
    /// message, returned to be reported.
    pub fn flush(&mut self, gossip: &mut impl Gossip, now_ms: u64) -> Vec<Dropped> {
        if self.outbox.is_empty() {
            return Vec::new();
        }
        let subscribed = gossip.subscription_counts();
        let min = self.min_publish_peers;
        let ready = self
            .outbox
            .take_ready(|t| subscribed.get(t).copied().unwrap_or(0) >= min);
        let mut retry = Vec::new();
        let mut blocked: BTreeSet<TopicName> = BTreeSet::new();
        let mut dropped = Vec::new();
        for p in ready {
            if blocked.contains(&p.topic) {
                retry.push(p);
                continue;
            }
            match self.send(gossip, &p.topic, &p.payload, now_ms) {
                Ok(_) => {}
                Err(GossipPublishError::NoPeersSubscribedToTopic)
                | Err(GossipPublishError::AllQueuesFull(_)) => {
                    blocked.insert(p.topic.clone());
                    retry.push(p);
                }
                Err(e) => {
                    tracing::warn!(topic = %p.topic, error = %e, "queued publish failed");
                    dropped.push(self.drop_pending(p, "failed"));
                }
            }
        }
        self.outbox.requeue_front(retry);
        self.metrics.outbox_len.set(self.outbox.len() as i64);
        dropped
    }

    /// Gives up publishes that waited longer than the queue's TTL.
    pub fn expire(&mut self, now: Instant) -> Vec<Dropped> {
        let expired = self.outbox.expire(now);
        expired
            .into_iter()
            .map(|p| self.drop_pending(p, "expired"))
            .collect()
    }

    /// Key rotation: returns what still waits, in order, and refuses every later publish, so
    /// each application message goes out through exactly one key.
    pub fn hand_over(&mut self) -> Vec<(TopicName, Vec<u8>)> {
        self.handed_over = true;
        let queued = self
            .outbox
            .take_ready(|_| true)
            .into_iter()
            .map(|p| (p.topic, p.payload))
            .collect();
        self.metrics.outbox_len.set(0);
        queued
    }

    fn drop_pending(&mut self, p: Pending, reason: &'static str) -> Dropped {
        self.count_dropped(reason);
        Dropped {
            topic: p.topic,
            reason,
        }
    }

    fn count_dropped(&self, reason: &'static str) {
        self.metrics
            .outbox_dropped
            .get_or_create(&ReasonLabels { reason })
            .inc();
        self.metrics.outbox_len.set(self.outbox.len() as i64);
    }
}

/// The signed channel's gossipsub, as the publisher uses it.
impl Gossip for gossipsub::Behaviour {
    fn subscribed_peers(&self, topic: &TopicName) -> usize {
        let hash = gossip_topic(topic).hash();
        self.all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .count()
    }

    fn subscription_counts(&self) -> BTreeMap<TopicName, usize> {
        let mut counts = BTreeMap::new();
        for (_, topics) in self.all_peers() {
            for name in topics.into_iter().filter_map(topic_name) {
                *counts.entry(name).or_default() += 1;
            }
        }
        counts
    }

    fn publish(
        &mut self,
        topic: &TopicName,
        data: Vec<u8>,
    ) -> Result<MessageId, GossipPublishError> {
        gossipsub::Behaviour::publish(self, gossip_topic(topic), data)
    }
}

#[cfg(test)]
mod tests {
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
}
