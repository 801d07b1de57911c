//! The node's state store (redb): the peer store (a restarted node redials members at the
//! addresses they last announced), settled coordination windows, RLN removals and the message-id
//! counter, the ids of recently delivered messages (once-only delivery across restarts), and the
//! signed messages retained for catch-up (a restarted node still serves and knows them).

use std::path::Path;
use std::sync::Arc;

use conclave_coord::WindowOutcome;

use conclave_core::{Multiaddr, PeerId};
use conclave_net::RetainedMessage;
use redb::{Database, ReadableTable, TableDefinition};

/// PeerId bytes → addresses, each length-prefixed (u16 BE) multiaddr bytes.
const PEERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peers");
/// Settled coordination windows: key = coordination block (8 bytes BE) ‖ group PKH; value = JSON.
const COORD: TableDefinition<&[u8], &[u8]> = TableDefinition::new("coordination");
/// RLN members removed for double signalling: id commitment (32) → secret (32) ‖ removed at (ms, 8 BE).
const RLN_REMOVED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rln_removed");
/// The RLN message-id counter: one row, epoch (8 BE) ‖ next id (4 BE).
const RLN_COUNTER: TableDefinition<&str, &[u8]> = TableDefinition::new("rln_counter");
/// Ids of delivered signed messages: message timestamp (ms, 8 BE) ‖ message id (hex) → nothing.
/// Kept for the timestamp window, so a replay into a restarted node is not delivered again.
const DELIVERED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("delivered");
/// Signed messages retained for catch-up: message timestamp (ms, 8 BE) ‖ message id (32) → the
/// message's stored form ([`RetainedMessage::encode`]).
const RETAINED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("retained");
/// Addresses kept per peer.
const MAX_ADDRESSES: usize = 8;

/// A store failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {message}")]
pub struct StoreError {
    path: String,
    message: String,
}

/// The redb database under the state directory.
pub struct StateStore {
    db: Database,
    path: String,
}

impl StateStore {
    /// Opens (or creates) `<dir>/conclave.redb`, creating `dir` with mode 0700.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("conclave.redb");
        let err = |message: String| StoreError {
            path: path.display().to_string(),
            message,
        };
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| err(format!("cannot create state directory: {e}")))?;
        }
        let db = Database::create(&path).map_err(|e| err(e.to_string()))?;
        let store = StateStore {
            db,
            path: path.display().to_string(),
        };
        // Create the table so reads of a fresh store succeed.
        let tx = store.db.begin_write().map_err(|e| store.err(e))?;
        tx.open_table(PEERS).map_err(|e| store.err(e))?;
        tx.open_table(COORD).map_err(|e| store.err(e))?;
        tx.open_table(RLN_REMOVED).map_err(|e| store.err(e))?;
        tx.open_table(RLN_COUNTER).map_err(|e| store.err(e))?;
        tx.open_table(DELIVERED).map_err(|e| store.err(e))?;
        tx.open_table(RETAINED).map_err(|e| store.err(e))?;
        tx.commit().map_err(|e| store.err(e))?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Records delivered (id, message timestamp) pairs and forgets those stamped before
    /// `forget_before_ms`, in one transaction.
    pub fn record_delivered(
        &self,
        ids: &[(String, u64)],
        forget_before_ms: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = tx.open_table(DELIVERED).map_err(|e| self.err(e))?;
            for (id, ts) in ids {
                let mut key = ts.to_be_bytes().to_vec();
                key.extend_from_slice(id.as_bytes());
                table
                    .insert(key.as_slice(), [].as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let end = forget_before_ms.to_be_bytes();
            table
                .retain_in(..end.as_slice(), |_, _| false)
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The delivered (id, message timestamp) pairs stamped at or after `since_ms`.
    pub fn delivered_since(&self, since_ms: u64) -> Result<Vec<(String, u64)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(DELIVERED).map_err(|e| self.err(e))?;
        let start = since_ms.to_be_bytes();
        let mut out = Vec::new();
        for row in table.range(start.as_slice()..).map_err(|e| self.err(e))? {
            let (k, _) = row.map_err(|e| self.err(e))?;
            let k = k.value();
            let (Some(ts), Ok(id)) = (
                k.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes),
                std::str::from_utf8(&k[8.min(k.len())..]),
            ) else {
                continue;
            };
            out.push((id.to_owned(), ts));
        }
        Ok(out)
    }

    /// Adds retained messages, forgets those stamped before `forget_before_ms`, then the oldest
    /// while the table holds more than `max_bytes` — one transaction. `stored_bytes` is the
    /// caller's running total of the table's value bytes (see [`StateStore::retained_bytes`]).
    pub fn record_retained(
        &self,
        batch: &[Arc<RetainedMessage>],
        forget_before_ms: u64,
        max_bytes: usize,
        stored_bytes: &mut usize,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = tx.open_table(RETAINED).map_err(|e| self.err(e))?;
            for m in batch {
                let mut key = m.timestamp_ms.to_be_bytes().to_vec();
                key.extend_from_slice(&m.id);
                let value = m.encode();
                let old = table
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(|e| self.err(e))?;
                *stored_bytes += value.len();
                if let Some(old) = old {
                    *stored_bytes = stored_bytes.saturating_sub(old.value().len());
                }
            }
            let end = forget_before_ms.to_be_bytes();
            let mut removed = 0;
            table
                .retain_in(..end.as_slice(), |_, v| {
                    removed += v.len();
                    false
                })
                .map_err(|e| self.err(e))?;
            *stored_bytes = stored_bytes.saturating_sub(removed);
            while *stored_bytes > max_bytes {
                let Some((_, v)) = table.pop_first().map_err(|e| self.err(e))? else {
                    *stored_bytes = 0;
                    break;
                };
                *stored_bytes = stored_bytes.saturating_sub(v.value().len());
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The retained messages stamped at or after `since_ms`, oldest first, and how many rows
    /// did not decode (skipped: a damaged row must not stop the node).
    pub fn retained_since(
        &self,
        since_ms: u64,
    ) -> Result<(Vec<RetainedMessage>, usize), StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(RETAINED).map_err(|e| self.err(e))?;
        let start = since_ms.to_be_bytes();
        let (mut out, mut damaged) = (Vec::new(), 0);
        for row in table.range(start.as_slice()..).map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            match RetainedMessage::decode(v.value()) {
                Ok(m) => out.push(m),
                Err(_) => damaged += 1,
            }
        }
        Ok((out, damaged))
    }

    /// The value bytes the retained table holds (one scan, at start).
    pub fn retained_bytes(&self) -> Result<usize, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(RETAINED).map_err(|e| self.err(e))?;
        let mut total = 0;
        for row in table.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            total += v.value().len();
        }
        Ok(total)
    }

    /// Every remembered (peer, address). Undecodable rows are skipped with a warning: a damaged
    /// hint must not stop the node.
    pub fn peer_addresses(&self) -> Result<Vec<(PeerId, Multiaddr)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(PEERS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            match (PeerId::from_bytes(k.value()), decode(v.value())) {
                (Ok(peer), Some(addrs)) => out.extend(addrs.into_iter().map(|a| (peer, a))),
                _ => tracing::warn!(store = %self.path, "skipping an undecodable peer-store row"),
            }
        }
        Ok(out)
    }

    /// Merges `addresses` into the peer's record (newest last, at most 8 kept).
    pub fn record_addresses(
        &self,
        peer: PeerId,
        addresses: &[Multiaddr],
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = tx.open_table(PEERS).map_err(|e| self.err(e))?;
            let key = peer.to_bytes();
            let mut list = table
                .get(key.as_slice())
                .map_err(|e| self.err(e))?
                .and_then(|v| decode(v.value()))
                .unwrap_or_default();
            for a in addresses {
                list.retain(|x| x != a);
                list.push(a.clone());
            }
            let skip = list.len().saturating_sub(MAX_ADDRESSES);
            let bytes = encode(&list[skip..]);
            table
                .insert(key.as_slice(), bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

impl StateStore {
    /// Persists a settled window (results and faults survive restarts).
    pub fn record_window(&self, w: &WindowOutcome) -> Result<(), StoreError> {
        let mut key = w.coordination_block.to_be_bytes().to_vec();
        key.extend_from_slice(&w.group.0);
        let value = serde_json::to_vec(w).map_err(|e| self.err(e))?;
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = tx.open_table(COORD).map_err(|e| self.err(e))?;
            table
                .insert(key.as_slice(), value.as_slice())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The newest `limit` settled windows, newest first.
    pub fn windows(&self, limit: usize) -> Result<Vec<WindowOutcome>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(COORD).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))?.rev() {
            if out.len() == limit {
                break;
            }
            let (_, v) = row.map_err(|e| self.err(e))?;
            match serde_json::from_slice(v.value()) {
                Ok(w) => out.push(w),
                Err(e) => {
                    tracing::warn!(store = %self.path, error = %e, "skipping an undecodable coordination row")
                }
            }
        }
        Ok(out)
    }
}

fn encode(addrs: &[Multiaddr]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in addrs {
        let b = a.to_vec();
        out.extend_from_slice(&(b.len() as u16).to_be_bytes());
        out.extend_from_slice(&b);
    }
    out
}

fn decode(mut bytes: &[u8]) -> Option<Vec<Multiaddr>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
        let addr = bytes.get(2..2 + len)?;
        out.push(Multiaddr::try_from(addr.to_vec()).ok()?);
        bytes = &bytes[2 + len..];
    }
    Some(out)
}

use std::os::unix::fs::DirBuilderExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rln_ids_are_never_reused_across_reopening_and_removals_persist() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        {
            let s = StateStore::open(&state).unwrap();
            assert_eq!(s.allocate_rln_message_id(7, 2).unwrap(), 0);
            assert!(s.record_rln_removal(&[1; 32], &[2; 32], 99).unwrap());
            assert!(
                !s.record_rln_removal(&[1; 32], &[2; 32], 100).unwrap(),
                "idempotent"
            );
        }
        let s = StateStore::open(&state).unwrap();
        assert_eq!(
            s.allocate_rln_message_id(7, 2).unwrap(),
            1,
            "the restart continues the epoch"
        );
        assert!(matches!(
            s.allocate_rln_message_id(7, 2),
            Err(AllocateError::QuotaExhausted { epoch: 7, limit: 2 })
        ));
        assert_eq!(
            s.allocate_rln_message_id(8, 2).unwrap(),
            0,
            "a new epoch starts over"
        );
        assert!(
            matches!(
                s.allocate_rln_message_id(7, 2),
                Err(AllocateError::QuotaExhausted { .. })
            ),
            "a clock that went back gets no id of an epoch that may be used up"
        );
        assert_eq!(
            s.rln_removed().unwrap(),
            vec![RemovedMember {
                secret: [2; 32],
                removed_at_ms: 99
            }]
        );
    }

    #[test]
    fn addresses_survive_reopening_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let p = PeerId::random();
        {
            let s = StateStore::open(&state).unwrap();
            assert!(s.peer_addresses().unwrap().is_empty());
            let addrs: Vec<Multiaddr> = (0..12u16)
                .map(|i| format!("/ip4/127.0.0.1/tcp/{}", 4000 + i).parse().unwrap())
                .collect();
            s.record_addresses(p, &addrs).unwrap();
            s.record_addresses(p, &addrs[11..]).unwrap();
        }
        let s = StateStore::open(&state).unwrap();
        let got = s.peer_addresses().unwrap();
        assert_eq!(got.len(), MAX_ADDRESSES);
        assert_eq!(
            got.last().unwrap().1,
            "/ip4/127.0.0.1/tcp/4011".parse::<Multiaddr>().unwrap()
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn damaged_rows_are_skipped() {
        assert_eq!(decode(&[0, 5, 1]), None);
        assert_eq!(decode(&[]), Some(vec![]));
    }
}

/// A removed RLN member as persisted: its revealed secret and when this node removed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedMember {
    pub secret: [u8; 32],
    pub removed_at_ms: u64,
}

/// Why no RLN message id was allocated.
#[derive(Debug, thiserror::Error)]
pub enum AllocateError {
    #[error("all {limit} message ids of epoch {epoch} are used; wait for the next epoch")]
    QuotaExhausted { epoch: u64, limit: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StateStore {
    /// Records a removal (idempotent: the first removal time is kept).
    pub fn record_rln_removal(
        &self,
        id_commitment: &[u8; 32],
        secret: &[u8; 32],
        at_ms: u64,
    ) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        let new = {
            let mut table = tx.open_table(RLN_REMOVED).map_err(|e| self.err(e))?;
            if table
                .get(id_commitment.as_slice())
                .map_err(|e| self.err(e))?
                .is_some()
            {
                false
            } else {
                let mut v = secret.to_vec();
                v.extend_from_slice(&at_ms.to_be_bytes());
                table
                    .insert(id_commitment.as_slice(), v.as_slice())
                    .map_err(|e| self.err(e))?;
                true
            }
        };
        tx.commit().map_err(|e| self.err(e))?;
        Ok(new)
    }

    /// Every removed member. A damaged row is skipped with a warning (the removal can be learned
    /// again from peers; it cannot add anyone).
    pub fn rln_removed(&self) -> Result<Vec<RemovedMember>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(RLN_REMOVED).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            let v = v.value();
            if v.len() != 40 {
                tracing::warn!(store = %self.path, "skipping an undecodable RLN removal row");
                continue;
            }
            out.push(RemovedMember {
                secret: v[..32].try_into().expect("32 bytes"),
                removed_at_ms: u64::from_be_bytes(v[32..].try_into().expect("8 bytes")),
            });
        }
        Ok(out)
    }

    /// Allocates the next RLN message id of `epoch`, durably, before any proof uses it: an id is
    /// never handed out twice in an epoch, even across restarts (reusing one would reveal the
    /// node's secret).
    pub fn allocate_rln_message_id(&self, epoch: u64, limit: u32) -> Result<u32, AllocateError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        let id = {
            let mut table = tx.open_table(RLN_COUNTER).map_err(|e| self.err(e))?;
            let (last_epoch, next) = match table.get("counter").map_err(|e| self.err(e))? {
                Some(v) if v.value().len() == 12 => {
                    let v = v.value();
                    (
                        u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
                        u32::from_be_bytes(v[8..].try_into().expect("4 bytes")),
                    )
                }
                Some(_) => return Err(self.err("the RLN counter row is damaged; refusing to publish rather than risk reusing an id").into()),
                None => (0, 0),
            };
            let id = match epoch.cmp(&last_epoch) {
                std::cmp::Ordering::Greater => 0,
                std::cmp::Ordering::Equal => next,
                // The clock went back: the ids of that epoch may have been used already.
                std::cmp::Ordering::Less => limit,
            };
            if id >= limit {
                return Err(AllocateError::QuotaExhausted { epoch, limit });
            }
            let mut v = epoch.max(last_epoch).to_be_bytes().to_vec();
            v.extend_from_slice(&(id + 1).to_be_bytes());
            table
                .insert("counter", v.as_slice())
                .map_err(|e| self.err(e))?;
            id
        };
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }
}
