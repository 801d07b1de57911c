//! Which chain the node acts on: its own source's head, or a fallback tip made of header ranges
//! members agreed on, and when to go back.
//!
//! The node enters fallback when a fetched range is accepted past its source's head, extends it
//! with later ranges, and returns to its source once the source reaches the fallback tip with
//! the same hash there. A source that reaches the tip with a different hash is on another fork
//! than f+1 operators: the node stays on fallback and says so once.

use std::collections::BTreeMap;

use alloy::primitives::B256;

use crate::AcceptedRange;

/// How many fallback hashes are kept (lookups for coordination seeds go a few blocks back).
const KEEP: usize = 1024;

/// A change worth a log line and a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// The node now follows members' headers.
    EnteredFallback { tip: u64 },
    /// The source reached the fallback tip and agrees: the node follows it again.
    ReturnedToSource { head: u64 },
    /// The source reached the fallback tip with another hash there.
    SourceDisagrees {
        height: u64,
        source: B256,
        members: B256,
    },
}

/// The sans-IO core of the node's chain choice.
#[derive(Debug, Clone)]
pub struct ChainFollower {
    source: (u64, B256),
    fallback: BTreeMap<u64, B256>,
    disagreement_reported: bool,
}

impl ChainFollower {
    /// Starts on the source, at its current head.
    pub fn new(source_head: (u64, B256)) -> Self {
        ChainFollower {
            source: source_head,
            fallback: BTreeMap::new(),
            disagreement_reported: false,
        }
    }

    /// The head the node acts on.
    pub fn head(&self) -> (u64, B256) {
        self.fallback_tip().unwrap_or(self.source)
    }

    /// The newest accepted header while on fallback; `None` while following the source.
    pub fn fallback_tip(&self) -> Option<(u64, B256)> {
        self.fallback.last_key_value().map(|(n, h)| (*n, *h))
    }

    /// The hash an accepted fallback header has at `height`.
    pub fn fallback_hash(&self, height: u64) -> Option<B256> {
        self.fallback.get(&height).copied()
    }

    /// Every accepted fallback header's (height, hash), oldest first.
    pub fn fallback_hashes(&self) -> impl Iterator<Item = (u64, B256)> + '_ {
        self.fallback.iter().map(|(n, h)| (*n, *h))
    }

    /// Our last good header: where a fetched range must link.
    pub fn anchor(&self) -> (u64, B256) {
        self.head()
    }

    /// A new head from the source. `source_hash_at` answers what the source says at an earlier
    /// height (from the headers it gave us), or `None` if not known yet.
    pub fn source_head(
        &mut self,
        head: (u64, B256),
        source_hash_at: impl Fn(u64) -> Option<B256>,
    ) -> Option<FollowEvent> {
        self.source = head;
        let (tip, members) = self.fallback_tip()?;
        if head.0 < tip {
            return None;
        }
        let source = if head.0 == tip {
            head.1
        } else {
            source_hash_at(tip)?
        };
        if source == members {
            self.fallback.clear();
            self.disagreement_reported = false;
            Some(FollowEvent::ReturnedToSource { head: head.0 })
        } else if !self.disagreement_reported {
            self.disagreement_reported = true;
            Some(FollowEvent::SourceDisagrees {
                height: tip,
                source,
                members,
            })
        } else {
            None
        }
    }

    /// A range accepted from members, fetched from `anchor`. Ignored unless it still links to
    /// where we are (the head may have moved while it was fetched).
    pub fn accept(&mut self, anchor: (u64, B256), range: &AcceptedRange) -> Option<FollowEvent> {
        if anchor != self.anchor() {
            return None;
        }
        let last = range.headers.last()?.number;
        let entering = self.fallback.is_empty();
        for (h, hash) in range.headers.iter().zip(&range.hashes) {
            self.fallback.insert(h.number, *hash);
        }
        while self.fallback.len() > KEEP {
            self.fallback.pop_first();
        }
        entering.then_some(FollowEvent::EnteredFallback { tip: last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::consensus::Header;

    fn range(from: (u64, B256), n: u64) -> AcceptedRange {
        let (mut number, mut parent) = from;
        let mut headers = Vec::new();
        let mut hashes = Vec::new();
        for _ in 0..n {
            number += 1;
            let h = Header {
                parent_hash: parent,
                number,
                ..Header::default()
            };
            parent = h.hash_slow();
            headers.push(h);
            hashes.push(parent);
        }
        AcceptedRange {
            headers,
            hashes,
            operators: Vec::new(),
            faults: Vec::new(),
        }
    }

    const GENESIS: (u64, B256) = (10, B256::repeat_byte(1));

    #[test]
    fn enters_extends_and_returns_when_the_source_agrees() {
        let mut f = ChainFollower::new(GENESIS);
        let first = range(GENESIS, 3);
        assert_eq!(
            f.accept(GENESIS, &first),
            Some(FollowEvent::EnteredFallback { tip: 13 })
        );
        assert_eq!(f.head(), (13, first.hashes[2]));
        // A range fetched from the old anchor no longer links: ignored.
        assert_eq!(f.accept(GENESIS, &range(GENESIS, 5)), None);
        assert_eq!(f.head().0, 13);
        let second = range(f.anchor(), 2);
        assert_eq!(f.accept(f.anchor(), &second), None, "extends quietly");
        assert_eq!(f.head(), (15, second.hashes[1]));
        assert_eq!(f.fallback_hash(12), Some(first.hashes[1]));

        // The source creeps forward but has not reached the tip: still on fallback.
        assert_eq!(f.source_head((14, first.hashes[2]), |_| None), None);
        assert_eq!(f.head().0, 15);
        // The source passes the tip; until we know its hash there, we wait.
        assert_eq!(f.source_head((16, B256::ZERO), |_| None), None);
        let agree = second.hashes[1];
        assert_eq!(
            f.source_head((16, B256::ZERO), |n| (n == 15).then_some(agree)),
            Some(FollowEvent::ReturnedToSource { head: 16 })
        );
        assert_eq!(f.head(), (16, B256::ZERO));
        assert_eq!(f.fallback_tip(), None);
    }

    #[test]
    fn a_source_on_another_fork_is_reported_once_and_not_followed() {
        let mut f = ChainFollower::new(GENESIS);
        let r = range(GENESIS, 2);
        f.accept(GENESIS, &r);
        let other = B256::repeat_byte(9);
        assert_eq!(
            f.source_head((12, other), |_| None),
            Some(FollowEvent::SourceDisagrees {
                height: 12,
                source: other,
                members: r.hashes[1],
            })
        );
        assert_eq!(f.source_head((12, other), |_| None), None, "said once");
        assert_eq!(f.head(), (12, r.hashes[1]));
    }
}
