//! The signed channel's message validator: a plain function of the view, the clock and the
//! message, so every rule is tested without a network.

use conclave_core::{
    Envelope, MembershipView, Moment, OperatorId, PeerId, TimestampError, TopicName, Unauthorized,
};
use libp2p::identity::PublicKey;
use prost::Message;
use thiserror::Error;

/// Limits the validator enforces besides membership.
#[derive(Debug, Clone, Copy)]
pub struct ValidationLimits {
    /// Largest accepted envelope (bytes on the wire inside gossipsub's frame).
    pub max_message_bytes: usize,
    /// How far an envelope's timestamp may lie from the receiver's clock, either way.
    pub timestamp_tolerance_ms: u64,
}

/// Why a signed-channel message is refused. Every variant maps to gossipsub's `Reject`, which
/// penalizes the forwarding peer's score: members never forward these in good faith.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("message carries no source")]
    NoSource,
    #[error("topic `{0}` is not a Conclave topic")]
    ForeignTopic(String),
    #[error("source {source_peer}: {reason}")]
    Unauthorized {
        source_peer: PeerId,
        reason: Unauthorized,
    },
    #[error("message of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("envelope does not decode: {0}")]
    Undecodable(String),
    #[error("source {0}: the envelope's signature does not verify with its key")]
    BadSignature(PeerId),
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
}

impl Rejection {
    /// A short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::NoSource => "no_source",
            Rejection::ForeignTopic(_) => "foreign_topic",
            Rejection::Unauthorized { reason, .. } => reason.label(),
            Rejection::TooLarge { .. } => "too_large",
            Rejection::Undecodable(_) => "undecodable",
            Rejection::BadSignature(_) => "bad_signature",
            Rejection::Timestamp(TimestampError::TooOld { .. }) => "stale",
            Rejection::Timestamp(TimestampError::InFuture { .. }) => "future",
        }
    }
}

/// A message that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub source: PeerId,
    pub operator: OperatorId,
    pub envelope: Envelope,
}

/// The public key a source's PeerId inlines (ed25519 and secp256k1 keys are short enough that the
/// PeerId is the key itself), or `None` for a hashed PeerId.
fn inline_key(source: &PeerId) -> Option<PublicKey> {
    let bytes = source.to_bytes();
    // An identity multihash: code 0x00, length, then the protobuf-encoded key.
    match bytes.as_slice() {
        [0x00, len, key @ ..] if *len as usize == key.len() => {
            PublicKey::try_decode_protobuf(key).ok()
        }
        _ => None,
    }
}

/// Whether `envelope` on `topic` carries a valid signature of `source`'s node key: how a
/// recorded signed message (fault evidence) is checked by anyone, without the network.
pub fn verify_envelope(source: &PeerId, topic: &TopicName, envelope: &Envelope) -> bool {
    inline_key(source)
        .is_some_and(|key| key.verify(&envelope.signing_bytes(topic.as_str()), &envelope.signature))
}

/// Checks a signed-channel message, cheapest test first: size, source, authorization for the
/// topic at `at`, decoding, timestamp, and last the signature with the source's key. Gossipsub
/// verifies nothing (it has dropped duplicates), so this runs once per message, not per copy.
pub fn validate_signed(
    view: &MembershipView,
    at: Moment,
    now_ms: u64,
    limits: ValidationLimits,
    source: Option<PeerId>,
    topic: &TopicName,
    data: &[u8],
) -> Result<Validated, Rejection> {
    let tolerance = limits.timestamp_tolerance_ms;
    let window = (tolerance, tolerance);
    validate(view, at, now_ms, window, limits, source, topic, data)
}

/// Checks a message fetched by catch-up: the same checks, with the authorization judged by the
/// view and moment of the message's own time (`(view, at)`, from the node's view history) and
/// its timestamp allowed to be as old as `retention_ms` (never further ahead than the live
/// tolerance).
pub fn validate_retained(
    (view, at): (&MembershipView, Moment),
    now_ms: u64,
    retention_ms: u64,
    limits: ValidationLimits,
    source: PeerId,
    topic: &TopicName,
    data: &[u8],
) -> Result<Validated, Rejection> {
    let window = (retention_ms, limits.timestamp_tolerance_ms);
    validate(view, at, now_ms, window, limits, Some(source), topic, data)
}

/// `window`: how far the timestamp may lie in the past and in the future.
#[allow(clippy::too_many_arguments)]
fn validate(
    view: &MembershipView,
    at: Moment,
    now_ms: u64,
    window: (u64, u64),
    limits: ValidationLimits,
    source: Option<PeerId>,
    topic: &TopicName,
    data: &[u8],
) -> Result<Validated, Rejection> {
    if data.len() > limits.max_message_bytes {
        return Err(Rejection::TooLarge {
            size: data.len(),
            max: limits.max_message_bytes,
        });
    }
    let source = source.ok_or(Rejection::NoSource)?;
    let operator = view
        .may_publish(&source, topic, at)
        .map_err(|reason| Rejection::Unauthorized {
            source_peer: source,
            reason,
        })?
        .operator;
    let envelope = Envelope::decode(data).map_err(|e| Rejection::Undecodable(e.to_string()))?;
    envelope.check_age(now_ms, window.0, window.1)?;
    let key = inline_key(&source).ok_or(Rejection::BadSignature(source))?;
    if !key.verify(&envelope.signing_bytes(topic.as_str()), &envelope.signature) {
        return Err(Rejection::BadSignature(source));
    }
    Ok(Validated {
        source,
        operator,
        envelope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::{NodeAuthorization, ViewBuilder, ViewSource};
    use libp2p::identity::Keypair;

    const LIMITS: ValidationLimits = ValidationLimits {
        max_message_bytes: 1024,
        timestamp_tolerance_ms: 30_000,
    };
    const NOW_MS: u64 = 1_700_000_000_000;
    const AT: Moment = Moment {
        unix_secs: NOW_MS / 1000,
        block: None,
    };

    fn setup() -> (MembershipView, Keypair, TopicName) {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let topic: TopicName = "signers".parse().unwrap();
        let op = OperatorId([7; 20]);
        let mut b = ViewBuilder::new(ViewSource::Empty);
        b.operator(op).unwrap();
        b.node(
            peer,
            NodeAuthorization {
                operator: op,
                scopes: [topic.clone()].into(),
                valid_from_block: None,
                expiry: None,
                addresses: vec![],
            },
        )
        .unwrap();
        (b.build(), key, topic)
    }

    fn signed(key: &Keypair, topic: &str, ts: u64, payload: &[u8]) -> Vec<u8> {
        let mut e = Envelope {
            timestamp_ms: ts,
            payload: payload.to_vec(),
            nonce: 1,
            signature: vec![],
        };
        e.signature = key.sign(&e.signing_bytes(topic)).unwrap();
        e.encode_to_vec()
    }

    #[test]
    fn accepts_a_member_in_scope_and_on_time() {
        let (view, key, topic) = setup();
        let v = validate_signed(
            &view,
            AT,
            NOW_MS,
            LIMITS,
            Some(key.public().to_peer_id()),
            &topic,
            &signed(&key, "signers", NOW_MS - 5, b"hi"),
        )
        .unwrap();
        assert_eq!(v.operator, OperatorId([7; 20]));
        assert_eq!(v.envelope.payload, b"hi");
    }

    #[test]
    fn refuses_each_violation_with_its_label() {
        let (view, key, topic) = setup();
        let peer = key.public().to_peer_id();
        let envelope = |ts, p: &[u8]| signed(&key, "signers", ts, p);
        let ok = envelope(NOW_MS, b"x");
        let other: TopicName = "other".parse().unwrap();
        let check = |src: Option<PeerId>, t: &TopicName, data: &[u8]| {
            validate_signed(&view, AT, NOW_MS, LIMITS, src, t, data)
                .unwrap_err()
                .label()
        };
        assert_eq!(check(None, &topic, &ok), "no_source");
        assert_eq!(check(Some(PeerId::random()), &topic, &ok), "not_member");
        assert_eq!(check(Some(peer), &other, &ok), "out_of_scope");
        assert_eq!(check(Some(peer), &topic, &[0xff; 2000]), "too_large");
        assert_eq!(check(Some(peer), &topic, &[0xff, 0xff]), "undecodable");
        assert_eq!(
            check(Some(peer), &topic, &envelope(NOW_MS - 30_001, b"x")),
            "stale"
        );
        assert_eq!(
            check(Some(peer), &topic, &envelope(NOW_MS + 30_001, b"x")),
            "future"
        );
        // Signed by another key, signed for another topic, or altered after signing.
        let stranger = Keypair::generate_ed25519();
        let forged = signed(&stranger, "signers", NOW_MS, b"x");
        assert_eq!(check(Some(peer), &topic, &forged), "bad_signature");
        let moved = signed(&key, "other", NOW_MS, b"x");
        assert_eq!(check(Some(peer), &topic, &moved), "bad_signature");
        let mut altered = Envelope::decode(ok.as_slice()).unwrap();
        altered.payload = b"y".to_vec();
        assert_eq!(
            check(Some(peer), &topic, &altered.encode_to_vec()),
            "bad_signature"
        );
    }
}
