//! The node's state store (redb): for now the peer store, so a restarted node can redial members
//! at the addresses they last announced even when seeds and registry hints are out of date.

use std::path::Path;

use conclave_coord::WindowOutcome;
use conclave_core::{Multiaddr, PeerId};
use redb::{Database, ReadableTable, TableDefinition};

/// PeerId bytes → addresses, each length-prefixed (u16 BE) multiaddr bytes.
const PEERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peers");
/// Settled coordination windows: key = coordination block (8 bytes BE) ‖ group PKH; value = JSON.
const COORD: TableDefinition<&[u8], &[u8]> = TableDefinition::new("coordination");
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
        tx.commit().map_err(|e| store.err(e))?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.clone(),
            message: e.to_string(),
        }
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
