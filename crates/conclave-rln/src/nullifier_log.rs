//! The nullifier log: for every epoch still acceptable, the share each nullifier was seen with.
//! A second message with the same nullifier is a duplicate (same share) or a double signal (a
//! different share: two points on the member's line, which reveal its secret). Waku's lesson:
//! keep neighbouring epochs too, or a double signal straddling the border goes unnoticed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rln::prelude::Fr;

use crate::field::fr_to_bytes;

/// What the log knows about a message's nullifier.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Not seen in this epoch.
    Fresh,
    /// The same share again: a re-sent (re-proved) message.
    Duplicate,
    /// Another share under the same nullifier; carries the earlier message (encoded).
    DoubleSignal { earlier: Arc<[u8]> },
}

struct Entry {
    x: Fr,
    y: Fr,
    message: Arc<[u8]>,
}

/// Why an insert was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFull;

/// Bounded by entries and by bytes of stored messages; full means new messages are ignored
/// (never evicted: an evicted entry would let a double signal through).
pub struct NullifierLog {
    epochs: BTreeMap<u64, HashMap<[u8; 32], Entry>>,
    entries: usize,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl NullifierLog {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        NullifierLog {
            epochs: BTreeMap::new(),
            entries: 0,
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    pub fn lookup(&self, epoch: u64, nullifier: &Fr, x: &Fr, y: &Fr) -> Seen {
        match self
            .epochs
            .get(&epoch)
            .and_then(|m| m.get(&fr_to_bytes(nullifier)))
        {
            None => Seen::Fresh,
            Some(e) if e.x == *x && e.y == *y => Seen::Duplicate,
            Some(e) => Seen::DoubleSignal {
                earlier: e.message.clone(),
            },
        }
    }

    /// Records a fully valid message. Re-checks first, because another copy may have been
    /// verified meanwhile; only a fresh nullifier is stored.
    pub fn insert(
        &mut self,
        epoch: u64,
        nullifier: &Fr,
        x: Fr,
        y: Fr,
        message: Arc<[u8]>,
    ) -> Result<Seen, LogFull> {
        let seen = self.lookup(epoch, nullifier, &x, &y);
        if seen != Seen::Fresh {
            return Ok(seen);
        }
        if self.entries >= self.max_entries || self.bytes + message.len() > self.max_bytes {
            return Err(LogFull);
        }
        self.entries += 1;
        self.bytes += message.len();
        self.epochs
            .entry(epoch)
            .or_default()
            .insert(fr_to_bytes(nullifier), Entry { x, y, message });
        Ok(Seen::Fresh)
    }

    /// Forgets epochs before `oldest` (no longer acceptable, so no message can meet them).
    pub fn prune(&mut self, oldest: u64) {
        let keep = self.epochs.split_off(&oldest);
        for m in std::mem::replace(&mut self.epochs, keep).into_values() {
            self.entries -= m.len();
            self.bytes -= m.values().map(|e| e.message.len()).sum::<usize>();
        }
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(b: &[u8]) -> Arc<[u8]> {
        Arc::from(b)
    }

    #[test]
    fn fresh_duplicate_double_signal_and_pruning() {
        let mut log = NullifierLog::new(3, 1 << 20);
        let (n, x, y) = (Fr::from(1u64), Fr::from(2u64), Fr::from(3u64));
        assert_eq!(log.lookup(5, &n, &x, &y), Seen::Fresh);
        assert_eq!(log.insert(5, &n, x, y, msg(b"first")), Ok(Seen::Fresh));
        assert_eq!(log.lookup(5, &n, &x, &y), Seen::Duplicate);
        assert_eq!(
            log.lookup(5, &n, &Fr::from(9u64), &Fr::from(8u64)),
            Seen::DoubleSignal {
                earlier: msg(b"first")
            }
        );
        // The same nullifier in another epoch is another quota slot.
        assert_eq!(log.lookup(6, &n, &x, &y), Seen::Fresh);
        assert_eq!(log.insert(5, &n, x, y, msg(b"again")), Ok(Seen::Duplicate));
        log.insert(6, &n, x, y, msg(b"b")).unwrap();
        log.insert(7, &n, x, y, msg(b"c")).unwrap();
        assert_eq!(log.insert(8, &n, x, y, msg(b"d")), Err(LogFull), "bounded");
        log.prune(6);
        assert_eq!(log.len(), 2);
        assert_eq!(log.lookup(5, &n, &x, &y), Seen::Fresh);
        assert_eq!(log.insert(8, &n, x, y, msg(b"d")), Ok(Seen::Fresh));
    }

    #[test]
    fn byte_bound() {
        let mut log = NullifierLog::new(100, 10);
        let (x, y) = (Fr::from(2u64), Fr::from(3u64));
        log.insert(1, &Fr::from(1u64), x, y, msg(&[0; 6])).unwrap();
        assert_eq!(
            log.insert(1, &Fr::from(2u64), x, y, msg(&[0; 6])),
            Err(LogFull)
        );
    }
}
