//! The devnet's registry file: who is a member, where to dial it, the coordination groups and the
//! RLN leaves. Rewritten atomically; the nodes hot-reload it.

use std::path::Path;

use conclave_core::{GroupId, OperatorId};
use conclave_registry::{GroupEntry, NodeEntry, OperatorEntry, RegistryDocument, RlnEntry};
use sha3::{Digest, Keccak256};

use super::common::{write_atomic, TOPIC};

/// One registered node: its member index, peer id and the addresses others dial.
#[derive(Clone)]
pub struct Entry {
    pub index: usize,
    pub peer: String,
    pub addrs: Vec<String>,
}

impl Entry {
    /// The member's entry before its node reported where it listens.
    pub fn bare(index: usize, peer: &str) -> Entry {
        Entry {
            index,
            peer: peer.to_owned(),
            addrs: Vec::new(),
        }
    }
}

/// A deterministic operator address per member, so runs are comparable.
pub fn operator(i: usize) -> OperatorId {
    let h = Keccak256::digest(format!("conclave devnet operator {i}"));
    OperatorId(h[12..].try_into().expect("20 of 32 bytes"))
}

/// The registry of `entries`. Groups and RLN leaves of members not among them are left out.
pub fn document(entries: &[Entry], groups: &[(GroupId, Vec<usize>)], rln: &[RlnEntry]) -> String {
    let present = |i: &usize| entries.iter().any(|e| e.index == *i);
    let doc = RegistryDocument {
        operators: entries
            .iter()
            .map(|e| OperatorEntry {
                address: operator(e.index).to_string(),
                name: Some(format!("devnet operator {}", e.index)),
                nodes: vec![NodeEntry {
                    peer_id: e.peer.clone(),
                    scopes: vec![
                        TOPIC.into(),
                        conclave_node::COORD_TOPIC.into(),
                        conclave_node::SLASH_TOPIC.into(),
                    ],
                    valid_until: None,
                    valid_until_block: None,
                    addresses: e.addrs.clone(),
                }],
                rln_memberships: None,
            })
            .collect(),
        groups: groups
            .iter()
            .filter(|(_, seats)| seats.iter().all(present))
            .map(|(id, seats)| GroupEntry {
                id: id.to_string(),
                seats: seats.iter().map(|i| operator(*i).to_string()).collect(),
            })
            .collect(),
        // A member's RLN leaves go with its operator's registration.
        rln: rln
            .iter()
            .filter(|r| {
                entries
                    .iter()
                    .any(|e| operator(e.index).to_string() == r.operator)
            })
            .cloned()
            .collect(),
    };
    toml::to_string(&doc).expect("registry serializes")
}

/// Writes the registry of `entries` to `path`.
pub fn write(
    path: &Path,
    entries: &[Entry],
    groups: &[(GroupId, Vec<usize>)],
    rln: &[RlnEntry],
) -> anyhow::Result<()> {
    write_atomic(path, &document(entries, groups, rln))
}
