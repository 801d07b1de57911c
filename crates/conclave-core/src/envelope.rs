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

    /// The most bytes an encoded envelope can take for a payload of `payload_len` bytes and a
    /// signature of at most `max_signature_len`: every varint at its longest. A sender that keeps
    /// this within the receivers' limit knows its message cannot be refused as too large,
    /// whatever its timestamp and nonce turn out to be when it is finally sent.
    pub fn encoded_len_bound(payload_len: usize, max_signature_len: usize) -> usize {
        use prost::encoding::encoded_len_varint;
        // Each field: a one-byte key (tags 1–4), then a varint or a length-prefixed byte string.
        let max_varint = encoded_len_varint(u64::MAX);
        let bytes = |len: usize| 1 + encoded_len_varint(len as u64) + len;
        (1 + max_varint) + bytes(payload_len) + (1 + max_varint) + bytes(max_signature_len)
    }

    /// Checks the timestamp against the receiver's clock, symmetric tolerance both ways. Any
    /// timestamp a peer sends is judged, none overflows.
    pub fn check_timestamp(&self, now_ms: u64, tolerance_ms: u64) -> Result<(), TimestampError> {
        self.check_age(now_ms, tolerance_ms, tolerance_ms)
    }

    /// Checks the timestamp lies at most `max_age_ms` in the past and `max_ahead_ms` in the
    /// future of `now_ms` (a caught-up message may be old, never from the future).
    pub fn check_age(
        &self,
        now_ms: u64,
        max_age_ms: u64,
        max_ahead_ms: u64,
    ) -> Result<(), TimestampError> {
        if self.timestamp_ms.saturating_add(max_age_ms) < now_ms {
            return Err(TimestampError::TooOld {
                age_ms: now_ms - self.timestamp_ms,
                tolerance_ms: max_age_ms,
            });
        }
        if self.timestamp_ms > now_ms.saturating_add(max_ahead_ms) {
            return Err(TimestampError::InFuture {
                ahead_ms: self.timestamp_ms - now_ms,
                tolerance_ms: max_ahead_ms,
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
    fn the_length_bound_is_reached_and_never_exceeded() {
        // Around every varint boundary of the payload length, with the longest timestamp and
        // nonce the bound is exact; with any others the encoding is shorter.
        for len in [0, 1, 127, 128, 16_383, 16_384, 65_536] {
            for sig in [64, 72] {
                let bound = Envelope::encoded_len_bound(len, sig);
                let worst = Envelope {
                    timestamp_ms: u64::MAX,
                    payload: vec![7; len],
                    nonce: u64::MAX,
                    signature: vec![1; sig],
                };
                // proto3 leaves an empty payload out: the bound counts its key and length.
                let empty = usize::from(len == 0) * 2;
                assert_eq!(worst.encoded_len() + empty, bound, "len {len}, sig {sig}");
                let typical = Envelope {
                    timestamp_ms: 1_700_000_000_000,
                    nonce: 3,
                    ..worst
                };
                assert!(typical.encoded_len() < bound);
            }
        }
    }

    #[test]
    fn extreme_timestamps_are_judged_not_overflowed() {
        let env = |timestamp_ms| Envelope {
            timestamp_ms,
            payload: vec![],
            nonce: 0,
            signature: vec![],
        };
        assert!(matches!(
            env(u64::MAX).check_timestamp(1_700_000_000_000, 30_000),
            Err(TimestampError::InFuture { .. })
        ));
        assert!(matches!(
            env(0).check_timestamp(u64::MAX, 30_000),
            Err(TimestampError::TooOld { .. })
        ));
        assert!(env(u64::MAX).check_timestamp(u64::MAX, u64::MAX).is_ok());
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(Envelope::decode(&[0xff, 0xff, 0xff][..]).is_err());
    }
}
