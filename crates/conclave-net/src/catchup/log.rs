//! The retained log: signed messages this node accepted or published, for the retention window
//! and within a byte budget, ordered per topic by (timestamp, id) — the order reconciliation
//! ranges are drawn in. Sans-IO; the worker is its one writer, the node's store its copy on disk.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use conclave_core::{Envelope, PeerId, TopicName};
use prost::Message;
use sha2::{Digest, Sha256};

use super::{RetainedWire, KEY_BYTES};

/// A message id: SHA-256(source ‖ data), the signed channel's gossipsub id.
pub type MessageKey = [u8; 32];
/// Where a message sits in a topic's order.
pub type Key = (u64, MessageKey);

/// The id gossipsub gives a signed message of `source` carrying `data`.
pub(crate) fn message_key(source: &PeerId, data: &[u8]) -> MessageKey {
    let mut h = Sha256::new();
    h.update(source.to_bytes());
    h.update(data);
    h.finalize().into()
}

/// A signed message as retained: who signed it, on which topic, its envelope bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    pub topic: TopicName,
    pub source: PeerId,
    /// The envelope's timestamp (its place in the order).
    pub timestamp_ms: u64,
    /// The signed envelope exactly as gossiped.
    pub data: Arc<[u8]>,
    pub id: MessageKey,
}

/// Why stored or fetched bytes are not a retained message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetainedError {
    #[error("retained message does not decode: {0}")]
    Undecodable(String),
    #[error("retained message names topic `{0}`, which is not a valid topic name")]
    Topic(String),
    #[error("retained message's source is not a PeerId: {0}")]
    Source(String),
    #[error("retained message's data is not a signed envelope: {0}")]
    Envelope(String),
}

impl RetainedMessage {
    /// A message whose id and timestamp are derived from its parts (never taken on trust).
    pub fn new(topic: TopicName, source: PeerId, data: Arc<[u8]>) -> Result<Self, RetainedError> {
        let envelope =
            Envelope::decode(&data[..]).map_err(|e| RetainedError::Envelope(e.to_string()))?;
        Ok(RetainedMessage {
            id: message_key(&source, &data),
            timestamp_ms: envelope.timestamp_ms,
            topic,
            source,
            data,
        })
    }

    pub fn key(&self) -> Key {
        (self.timestamp_ms, self.id)
    }

    /// Hex of the id, as deliveries and the API name messages.
    pub fn hex_id(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn to_wire(&self) -> RetainedWire {
        RetainedWire {
            topic: self.topic.to_string(),
            source: self.source.to_bytes(),
            data: self.data.to_vec(),
        }
    }

    pub(crate) fn from_wire(w: RetainedWire) -> Result<Self, RetainedError> {
        let topic = w
            .topic
            .parse()
            .map_err(|_| RetainedError::Topic(w.topic.clone()))?;
        let source =
            PeerId::from_bytes(&w.source).map_err(|e| RetainedError::Source(e.to_string()))?;
        Self::new(topic, source, w.data.into())
    }

    /// The stored form (the node's state store keeps these).
    pub fn encode(&self) -> Vec<u8> {
        self.to_wire().encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RetainedError> {
        let w =
            RetainedWire::decode(bytes).map_err(|e| RetainedError::Undecodable(e.to_string()))?;
        Self::from_wire(w)
    }

    /// What this message costs the byte budget.
    fn cost(&self) -> usize {
        self.data.len() + 96
    }
}

/// A key on the wire: timestamp big-endian, then the id.
pub(crate) fn encode_key(k: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_BYTES);
    out.extend_from_slice(&k.0.to_be_bytes());
    out.extend_from_slice(&k.1);
    out
}

/// A bound or key from the wire: 8 to 40 bytes, the id part zero-padded.
pub(crate) fn decode_key(bytes: &[u8]) -> Option<Key> {
    if !(8..=KEY_BYTES).contains(&bytes.len()) {
        return None;
    }
    let ts = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    let mut id = [0u8; 32];
    id[..bytes.len() - 8].copy_from_slice(&bytes[8..]);
    Some((ts, id))
}

/// The retained messages, bounded by age and bytes.
pub(crate) struct RetainedLog {
    topics: HashMap<TopicName, BTreeMap<Key, Arc<RetainedMessage>>>,
    /// Every message's key and topic, oldest first: what eviction walks.
    order: BTreeMap<Key, TopicName>,
    by_id: HashMap<MessageKey, u64>,
    bytes: usize,
    window_ms: u64,
    max_bytes: usize,
}

impl RetainedLog {
    pub fn new(window_ms: u64, max_bytes: usize) -> Self {
        RetainedLog {
            topics: HashMap::new(),
            order: BTreeMap::new(),
            by_id: HashMap::new(),
            bytes: 0,
            window_ms,
            max_bytes,
        }
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// The oldest timestamp still retained at `now_ms`.
    pub fn since(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.window_ms)
    }

    pub fn contains(&self, id: &MessageKey) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn get(&self, id: &MessageKey) -> Option<&Arc<RetainedMessage>> {
        let ts = *self.by_id.get(id)?;
        let topic = self.order.get(&(ts, *id))?;
        self.topics.get(topic)?.get(&(ts, *id))
    }

    /// Keeps `m`; false when it is already kept or too old to keep. Evicts what fell out of the
    /// window or over the byte budget.
    pub fn insert(&mut self, m: Arc<RetainedMessage>, now_ms: u64) -> bool {
        if self.contains(&m.id) || m.timestamp_ms < self.since(now_ms) {
            return false;
        }
        let key = m.key();
        self.bytes += m.cost();
        self.by_id.insert(m.id, m.timestamp_ms);
        self.order.insert(key, m.topic.clone());
        self.topics
            .entry(m.topic.clone())
            .or_default()
            .insert(key, m);
        self.evict(now_ms);
        true
    }

    /// Forgets messages older than the window, then the oldest while over the byte budget.
    pub fn evict(&mut self, now_ms: u64) {
        let since = self.since(now_ms);
        while let Some((&key, _)) = self.order.first_key_value() {
            if key.0 >= since && self.bytes <= self.max_bytes {
                break;
            }
            let Some(topic) = self.order.remove(&key) else {
                break;
            };
            self.by_id.remove(&key.1);
            if let Some(items) = self.topics.get_mut(&topic) {
                if let Some(m) = items.remove(&key) {
                    self.bytes -= m.cost();
                }
                if items.is_empty() {
                    self.topics.remove(&topic);
                }
            }
        }
    }

    /// A topic's messages in order (empty when none are kept).
    pub fn topic(&self, topic: &TopicName) -> Option<&BTreeMap<Key, Arc<RetainedMessage>>> {
        self.topics.get(topic)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;

    pub(crate) fn message(key: &Keypair, topic: &str, ts: u64, payload: &[u8]) -> RetainedMessage {
        let mut e = Envelope {
            timestamp_ms: ts,
            payload: payload.to_vec(),
            nonce: ts,
            signature: vec![],
        };
        e.signature = key.sign(&e.signing_bytes(topic)).unwrap_or_default();
        RetainedMessage::new(
            topic.parse().unwrap_or_else(|_| unreachable!()),
            key.public().to_peer_id(),
            e.encode_to_vec().into(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keeps_messages_for_the_window_and_within_the_byte_budget() {
        let key = Keypair::generate_ed25519();
        let mut log = RetainedLog::new(10_000, 100_000);
        let a = Arc::new(message(&key, "t", 1_000, b"a"));
        assert!(log.insert(a.clone(), 1_000));
        assert!(!log.insert(a.clone(), 1_000), "kept once");
        assert!(log.get(&a.id).is_some());
        assert!(!log.insert(Arc::new(message(&key, "t", 500, b"old")), 20_000));
        log.evict(11_001);
        assert!(!log.contains(&a.id), "out of the window");
        assert_eq!((log.len(), log.bytes()), (0, 0));

        let mut small = RetainedLog::new(10_000, 3 * (200 + 96));
        for i in 0..5u64 {
            small.insert(Arc::new(message(&key, "t", 100 + i, &[7; 120])), 200);
        }
        assert!(small.bytes() <= 3 * (200 + 96));
        let kept: Vec<u64> = small
            .topic(&"t".parse().unwrap_or_else(|_| unreachable!()))
            .map(|m| m.keys().map(|k| k.0).collect())
            .unwrap_or_default();
        assert_eq!(*kept.last().unwrap_or(&0), 104, "the newest stay");
        assert!(kept.len() < 5, "the oldest went first: {kept:?}");
    }

    #[test]
    fn stored_form_round_trips_and_ids_are_derived_not_trusted() {
        let key = Keypair::generate_ed25519();
        let m = message(&key, "signers", 42, b"hello");
        let back = RetainedMessage::decode(&m.encode()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, m);
        let mut w = m.to_wire();
        w.data.push(0);
        let changed = RetainedMessage::from_wire(w);
        assert!(changed.is_err() || changed.is_ok_and(|c| c.id != m.id));
        assert!(matches!(
            RetainedMessage::decode(&[0xff, 0xff]),
            Err(RetainedError::Undecodable(_))
        ));
        let bad_topic = RetainedWire {
            topic: "no spaces allowed".into(),
            ..m.to_wire()
        };
        assert!(matches!(
            RetainedMessage::from_wire(bad_topic),
            Err(RetainedError::Topic(_))
        ));
    }

    #[test]
    fn keys_round_trip_and_short_bounds_pad() {
        let k = (7u64, [9u8; 32]);
        assert_eq!(decode_key(&encode_key(&k)), Some(k));
        assert_eq!(decode_key(&7u64.to_be_bytes()), Some((7, [0; 32])));
        assert_eq!(decode_key(&[1, 2, 3]), None);
        assert_eq!(decode_key(&[0; 41]), None);
    }
}
