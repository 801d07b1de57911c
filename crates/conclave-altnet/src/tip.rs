//! Tip announcements: each member periodically tells the others its chain tip on the signed
//! channel, so a node can notice that it is behind or on another fork. Small (a height and a
//! hash) and rate-limited by the sender's period; a receiver keeps one tip per operator.

use alloy::primitives::B256;

/// The signed topic tips travel on (a registry scope: a node announces only if granted it).
pub const TIP_TOPIC: &str = "chain-tip";

/// A member's chain tip.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TipAnnouncement {
    #[prost(uint64, tag = "1")]
    pub height: u64,
    /// The tip's block hash, 32 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub hash: Vec<u8>,
}

/// Why bytes are not a tip announcement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TipError {
    #[error("not a tip announcement: {0}")]
    Undecodable(String),
    #[error("tip hash must be 32 bytes, got {0}")]
    HashLength(usize),
}

impl TipAnnouncement {
    pub fn new(height: u64, hash: B256) -> Self {
        TipAnnouncement {
            height,
            hash: hash.to_vec(),
        }
    }

    /// Decodes and checks an announcement: (height, hash).
    pub fn parse(bytes: &[u8]) -> Result<(u64, B256), TipError> {
        let t = <TipAnnouncement as prost::Message>::decode(bytes)
            .map_err(|e| TipError::Undecodable(e.to_string()))?;
        let hash: [u8; 32] = t
            .hash
            .as_slice()
            .try_into()
            .map_err(|_| TipError::HashLength(t.hash.len()))?;
        Ok((t.height, B256::from(hash)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn round_trips_and_refuses_bad_hashes() {
        let bytes = TipAnnouncement::new(7, B256::repeat_byte(3)).encode_to_vec();
        assert_eq!(
            TipAnnouncement::parse(&bytes).unwrap(),
            (7, B256::repeat_byte(3))
        );
        let short = TipAnnouncement {
            height: 1,
            hash: vec![1; 31],
        }
        .encode_to_vec();
        assert_eq!(
            TipAnnouncement::parse(&short),
            Err(TipError::HashLength(31))
        );
        assert!(matches!(
            TipAnnouncement::parse(&[0xff, 0xff]),
            Err(TipError::Undecodable(_))
        ));
    }
}
