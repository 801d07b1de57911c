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
    /// Sent since the worker last took them (to retain for catch-up); at most one flush's worth.
    sent: Vec<Sent>,
    metrics: NetMetrics,
}

/// A message this node sent, as gossipsub has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub topic: TopicName,
    pub id: MessageId,
    pub timestamp_ms: u64,
    pub data: Vec<u8>,
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
            sent: Vec::new(),
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
        let data = envelope.encode_to_vec();
        let id = gossip.publish(topic, data.clone())?;
        let hex = hex_id(&id);
        self.sent.push(Sent {
            topic: topic.clone(),
            id,
            timestamp_ms: now_ms,
            data,
        });
        Ok(hex)
    }

    /// What was sent since the last call.
    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }

    /// This node's key (the source of what it sends).
    pub fn local(&self) -> PeerId {
        self.local
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
mod tests;
