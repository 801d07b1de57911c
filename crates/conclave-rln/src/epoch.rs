//! Epochs and the external nullifier. An epoch is floor(unix time / epoch length); the external
//! nullifier Poseidon(epoch, rln identifier) scopes every quota to one epoch of one network, so a
//! proof made for another network (another identifier) can never be replayed here.

use rln::prelude::{hash_to_field_le, Fr, Hasher, PoseidonHash};

/// The epoch rules every member must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochRules {
    /// Epoch length in seconds (at least 1).
    pub epoch_secs: u64,
    /// How many epochs a message's epoch may differ from ours (clock skew and propagation).
    pub max_epoch_gap: u64,
}

impl Default for EpochRules {
    fn default() -> Self {
        EpochRules {
            epoch_secs: 10,
            max_epoch_gap: 1,
        }
    }
}

impl EpochRules {
    pub fn epoch_of(&self, unix_ms: u64) -> u64 {
        unix_ms / 1000 / self.epoch_secs.max(1)
    }

    /// Epochs still acceptable at `now_ms`: the nullifier log must remember all of them.
    pub fn acceptable(&self, now_ms: u64) -> std::ops::RangeInclusive<u64> {
        let now = self.epoch_of(now_ms);
        now.saturating_sub(self.max_epoch_gap)..=now + self.max_epoch_gap
    }
}

/// The network's RLN identifier: Keccak of its name, mapped into the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlnIdentifier(Fr);

impl RlnIdentifier {
    pub fn new(name: &str) -> Self {
        RlnIdentifier(hash_to_field_le(name.as_bytes()))
    }

    /// Poseidon(epoch, identifier).
    pub fn external_nullifier(&self, epoch: u64) -> Fr {
        Hasher::<PoseidonHash>::hash_pair(Fr::from(epoch), self.0)
    }
}

/// The signal a proof binds: topic, epoch and payload, length-prefixed so no two messages share
/// an encoding. Changing any of them changes x and breaks the proof. The message carries no
/// finer time than its epoch: a millisecond timestamp would let any member match arrival times
/// against each member's measurable clock offset.
pub fn signal_hash(topic: &str, epoch: u64, payload: &[u8]) -> Fr {
    let mut s = Vec::with_capacity(16 + topic.len() + 8 + payload.len());
    s.extend_from_slice(b"conclave-rln/2\0");
    s.extend_from_slice(&(topic.len() as u32).to_be_bytes());
    s.extend_from_slice(topic.as_bytes());
    s.extend_from_slice(&epoch.to_be_bytes());
    s.extend_from_slice(payload);
    hash_to_field_le(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_and_nullifiers() {
        let r = EpochRules::default();
        assert_eq!(r.epoch_of(9_999), 0);
        assert_eq!(r.epoch_of(10_000), 1);
        assert_eq!(r.acceptable(25_000), 1..=3);
        assert_eq!(r.acceptable(0), 0..=1);
        let a = RlnIdentifier::new("conclave/devnet");
        let b = RlnIdentifier::new("conclave/other");
        assert_ne!(a.external_nullifier(5), b.external_nullifier(5));
        assert_ne!(a.external_nullifier(5), a.external_nullifier(6));
        assert_ne!(signal_hash("t", 1, b"ab"), signal_hash("t", 1, b"ac"));
        assert_ne!(signal_hash("t", 1, b"ab"), signal_hash("t", 2, b"ab"));
        assert_ne!(signal_hash("ta", 1, b"b"), signal_hash("t", 1, b"ab"));
    }
}
