use thiserror::Error;

/// What a signed-channel message carries as its gossipsub data.
///
/// The node key's signature lives here rather than in gossipsub's frame: gossipsub verifies its
/// own signatures on every copy that arrives (a node in a mesh of D receives up to D copies),
/// while the envelope's is checked once per message, after gossipsub dropped the duplicates —
/// the message id covers the whole envelope, signature included, so a tampered copy is a
/// different message and cannot shadow the real one. The timestamp lets receivers refuse replays
/// that arrive after the duplicate cache has forgotten the original; the nonce keeps two equal
/// payloads sent in the same millisecond apart.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// Sender's wall clock, milliseconds since the Unix epoch.
    #[prost(uint64, tag = "1")]
    pub timestamp_ms: u64,
    /// The application payload, opaque to Conclave.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
    /// Unique per message of one sender.
    #[prost(uint64, tag = "3")]
    pub nonce: u64,
    /// The sender's node key over [`Envelope::signing_bytes`].
    #[prost(bytes = "vec", tag = "4")]
    pub signature: Vec<u8>,
}

/// Domain separation of envelope signatures from every other use of a node key.
const SIGNING_DOMAIN: &[u8] = b"conclave/signed-envelope/v1\0";

/// Why an envelope's timestamp is unacceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TimestampError {
    #[error("timestamp is {age_ms} ms old, more than the tolerance of {tolerance_ms} ms")]
    TooOld { age_ms: u64, tolerance_ms: u64 },
    #[error(
        "timestamp is {ahead_ms} ms in the future, more than the tolerance of {tolerance_ms} ms"
    )]
    InFuture { ahead_ms: u64, tolerance_ms: u64 },
}

impl Envelope {
    /// What the node key signs: the domain, the topic (so a message cannot be moved to another
    /// topic), the timestamp, the nonce and the payload, length-prefixed where variable.
    pub fn signing_bytes(&self, topic: &str) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(SIGNING_DOMAIN.len() + 28 + topic.len() + self.payload.len());
        out.extend_from_slice(SIGNING_DOMAIN);
        out.extend_from_slice(&(topic.len() as u32).to_be_bytes());
        out.extend_from_slice(topic.as_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&(self.payload.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Checks the timestamp against the receiver's clock, symmetric tolerance both ways.
    pub fn check_timestamp(&self, now_ms: u64, tolerance_ms: u64) -> Result<(), TimestampError> {
        if self.timestamp_ms + tolerance_ms < now_ms {
            return Err(TimestampError::TooOld {
                age_ms: now_ms - self.timestamp_ms,
                tolerance_ms,
            });
        }
        if self.timestamp_ms > now_ms + tolerance_ms {
            return Err(TimestampError::InFuture {
                ahead_ms: self.timestamp_ms - now_ms,
                tolerance_ms,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn round_trips_and_checks_tolerance_both_ways() {
        let env = Envelope {
            timestamp_ms: 100_000,
            payload: b"hello".to_vec(),
            nonce: 7,
            signature: vec![1; 64],
        };
        let bytes = env.encode_to_vec();
        assert_eq!(Envelope::decode(bytes.as_slice()).unwrap(), env);
        assert!(env.check_timestamp(100_000, 0).is_ok());
        assert!(env.check_timestamp(130_000, 30_000).is_ok());
        assert_eq!(
            env.check_timestamp(130_001, 30_000),
            Err(TimestampError::TooOld {
                age_ms: 30_001,
                tolerance_ms: 30_000
            })
        );
        assert_eq!(
            env.check_timestamp(69_999, 30_000),
            Err(TimestampError::InFuture {
                ahead_ms: 30_001,
                tolerance_ms: 30_000
            })
        );
    }

    #[test]
    fn the_signature_covers_topic_timestamp_nonce_and_payload() {
        let env = Envelope {
            timestamp_ms: 1,
            payload: b"ab".to_vec(),
            nonce: 2,
            signature: vec![],
        };
        let base = env.signing_bytes("signers");
        assert_ne!(base, env.signing_bytes("coord"));
        for other in [
            Envelope {
                timestamp_ms: 9,
                ..env.clone()
            },
            Envelope {
                nonce: 9,
                ..env.clone()
            },
            Envelope {
                payload: b"abc".to_vec(),
                ..env.clone()
            },
        ] {
            assert_ne!(base, other.signing_bytes("signers"));
        }
        // The signature itself is not signed (it could not be).
        let signed = Envelope {
            signature: vec![5; 64],
            ..env
        };
        assert_eq!(base, signed.signing_bytes("signers"));
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(Envelope::decode(&[0xff, 0xff, 0xff][..]).is_err());
    }
}
