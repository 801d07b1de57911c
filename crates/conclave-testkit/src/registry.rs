//! Registry files as typed documents: a test says which operators, nodes, groups and RLN
//! memberships exist, and the TOML is written by the same serde types the node reads.

use std::path::Path;

use conclave_registry::{GroupEntry, NodeEntry, OperatorEntry, RegistryDocument, RlnEntry};

/// A registry document under construction.
#[derive(Debug, Clone, Default)]
pub struct RegistryDoc(RegistryDocument);

/// A node key acting for its operator with `scopes`, no expiry and no address hints.
pub fn node(peer_id: impl ToString, scopes: &[&str]) -> NodeEntry {
    NodeEntry {
        peer_id: peer_id.to_string(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        valid_until: None,
        valid_until_block: None,
        addresses: Vec::new(),
    }
}

impl RegistryDoc {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an operator with its node keys.
    pub fn operator(mut self, address: impl ToString, nodes: Vec<NodeEntry>) -> Self {
        self.0.operators.push(OperatorEntry {
            address: address.to_string(),
            name: None,
            nodes,
            rln_memberships: None,
        });
        self
    }

    /// Lets the operator added last hold `cap` RLN memberships (without it: 1).
    pub fn rln_memberships(mut self, cap: i64) -> Self {
        let op = self.0.operators.last_mut().expect("an operator to cap");
        op.rln_memberships = Some(cap);
        self
    }

    /// Adds a coordination group with its seats in order.
    pub fn group(mut self, id: impl ToString, seats: &[impl ToString]) -> Self {
        self.0.groups.push(GroupEntry {
            id: id.to_string(),
            seats: seats.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Adds an RLN membership.
    pub fn rln(mut self, entry: RlnEntry) -> Self {
        self.0.rln.push(entry);
        self
    }

    /// The document itself, for tests that edit it further.
    pub fn document(&self) -> &RegistryDocument {
        &self.0
    }

    /// The TOML a registry file holds.
    pub fn toml(&self) -> String {
        toml::to_string(&self.0).unwrap()
    }

    /// Writes the registry file to `path`, replacing it whole (a reader never sees half a
    /// file: the text goes to a sibling and is renamed over).
    pub fn write(&self, path: &Path) {
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, self.toml()).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_document_reads_back_as_the_same_registry() {
        let doc = RegistryDoc::new()
            .operator(
                "0x1111111111111111111111111111111111111111",
                vec![node("12D3KooWexample", &["signers"])],
            )
            .group(
                format!("0x{}", "22".repeat(20)),
                &["0x1111111111111111111111111111111111111111"],
            );
        let back: RegistryDocument = toml::from_str(&doc.toml()).unwrap();
        assert_eq!(back.operators.len(), 1);
        assert_eq!(back.operators[0].nodes[0].scopes, ["signers"]);
        assert_eq!(back.groups[0].seats.len(), 1);
    }
}
