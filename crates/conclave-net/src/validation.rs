//! The signed channel's message validator: a plain function of the view, the clock and the
//! message, so every rule is tested without a network.

use conclave_core::{
    Envelope, MembershipView, Moment, OperatorId, PeerId, TimestampError, TopicName, Unauthorized,
};
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

/// Checks a signed-channel message, cheapest test first: size, source, authorization for the
/// topic at `at`, decoding, timestamp. Gossipsub has already verified the signature (Strict mode).
pub fn validate_signed(
    view: &MembershipView,
    at: Moment,
    now_ms: u64,
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
    envelope.check_timestamp(now_ms, limits.timestamp_tolerance_ms)?;
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

    const LIMITS: ValidationLimits = ValidationLimits {
        max_message_bytes: 1024,
        timestamp_tolerance_ms: 30_000,
    };
    const NOW_MS: u64 = 1_700_000_000_000;
    const AT: Moment = Moment {
        unix_secs: NOW_MS / 1000,
        block: None,
    };

    fn setup() -> (MembershipView, PeerId, TopicName) {
        let peer = PeerId::random();
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
        (b.build(), peer, topic)
    }

    fn envelope(ts: u64, payload: &[u8]) -> Vec<u8> {
        Envelope {
            timestamp_ms: ts,
            payload: payload.to_vec(),
        }
        .encode_to_vec()
    }

    #[test]
    fn accepts_a_member_in_scope_and_on_time() {
        let (view, peer, topic) = setup();
        let v = validate_signed(
            &view,
            AT,
            NOW_MS,
            LIMITS,
            Some(peer),
            &topic,
            &envelope(NOW_MS - 5, b"hi"),
        )
        .unwrap();
        assert_eq!(v.operator, OperatorId([7; 20]));
        assert_eq!(v.envelope.payload, b"hi");
    }

    #[test]
    fn refuses_each_violation_with_its_label() {
        let (view, peer, topic) = setup();
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
    }
}
