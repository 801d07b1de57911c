use thiserror::Error;

/// What a signed-channel message carries inside gossipsub's signed frame.
///
/// Gossipsub already signs (source, seqno, data) with the node key, so the envelope carries no
/// second signature; it adds the sender's timestamp, which lets receivers refuse replays that
/// arrive after gossipsub's duplicate cache has forgotten the original.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// Sender's wall clock, milliseconds since the Unix epoch.
    #[prost(uint64, tag = "1")]
    pub timestamp_ms: u64,
    /// The application payload, opaque to Conclave.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

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
    fn garbage_does_not_decode() {
        assert!(Envelope::decode(&[0xff, 0xff, 0xff][..]).is_err());
    }
}
