//! The registry file format and its validation into a [`MembershipView`].

use std::collections::BTreeSet;

use conclave_core::{
    split_peer_id, Expiry, Group, GroupId, MembershipView, Multiaddr, NodeAuthorization,
    OperatorId, PeerId, RlnMember, TopicName, TopicNameError, ViewBuilder, ViewError, ViewSource,
    RLN_MAX_MEMBERSHIPS,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::validators::{OneLeafPerValidator, RegistrationDomain, ValidatorLeaf};

/// Entries left out of a view, each with the reason.
pub type Skipped = Vec<String>;

/// The registry file as written by operators (TOML). Every field is a string here so that a bad
/// value is reported with its entry and field rather than as an anonymous type error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryDocument {
    #[serde(default)]
    pub operators: Vec<OperatorEntry>,
    #[serde(default)]
    pub groups: Vec<GroupEntry>,
    /// RLN memberships of the anonymous channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rln: Vec<RlnEntry>,
}

/// An operator (cold EVM address) and the node keys it authorizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorEntry {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
    /// How many RLN memberships the operator may hold; absent = 1. Whoever writes the file is
    /// governance. Signed, so a negative value is reported with its entry, not as a syntax error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rln_memberships: Option<i64>,
}

/// One hot node key acting for its operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub peer_id: String,
    /// Topic names this key may sign.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Unix time (seconds) from which the key is no longer valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<u64>,
    /// Block height from which the key is no longer valid (needs a chain source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until_block: Option<u64>,
    /// Where the node can be reached; used as dial hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// A signing group and its ordered seats.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub id: String,
    pub seats: Vec<String>,
}

/// One RLN membership: the operator that registered it, its leaf index, the rate commitment
/// (`conclave rln keygen` prints it) and the messages per epoch it allows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlnEntry {
    pub operator: String,
    pub index: u32,
    pub rate_commitment: String,
    pub limit: u32,
    /// For a membership an Ethereum validator registered: its BLS key (48 bytes compressed,
    /// hex) and its signature over the registration (96 bytes, hex; chain id 0 and a zero
    /// registry address, a file having neither). Every node checks it; a leaf whose signature
    /// fails, or a validator's second leaf, is skipped and named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator_pubkey: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator_signature: Option<String>,
}

/// Why a registry could not be read. Each variant names the file and, where it applies, the
/// entry and field, the value found and what was expected.
#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("registry {file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("registry {file}: not a valid registry document: {message}")]
    Syntax { file: String, message: String },
    #[error("registry {file}: {entry}.{field} = {value:?} is invalid: expected {expected}")]
    Field {
        file: String,
        entry: String,
        field: &'static str,
        value: String,
        expected: String,
    },
    #[error("registry {file}: {entry}: {source}")]
    Structure {
        file: String,
        entry: String,
        source: Box<ViewError>,
    },
}

/// The validator an `[[rln]]` entry names, checked; `Err` is (field, value, expected).
fn validator_of(
    r: &RlnEntry,
    rate_commitment: [u8; 32],
) -> Result<Option<ValidatorLeaf>, (&'static str, String, &'static str)> {
    let (key, sig) = match (&r.validator_pubkey, &r.validator_signature) {
        (None, None) => return Ok(None),
        (Some(k), Some(s)) => (k, s),
        (Some(_), None) => {
            return Err((
                "validator_signature",
                String::new(),
                "the validator's signature beside its key",
            ))
        }
        (None, Some(s)) => {
            return Err((
                "validator_pubkey",
                s.clone(),
                "the validator's key beside its signature",
            ))
        }
    };
    let unhex = |t: &str| hex::decode(t.strip_prefix("0x").unwrap_or(t)).ok();
    let pubkey: [u8; 48] = unhex(key).and_then(|b| b.try_into().ok()).ok_or((
        "validator_pubkey",
        key.clone(),
        "48 bytes as 96 hex digits",
    ))?;
    let signature: [u8; 96] = unhex(sig).and_then(|b| b.try_into().ok()).ok_or((
        "validator_signature",
        sig.clone(),
        "96 bytes as 192 hex digits",
    ))?;
    Ok(Some(ValidatorLeaf::check(
        pubkey,
        &signature,
        rate_commitment,
        r.limit,
        RegistrationDomain::default(),
    )))
}

fn parse_bytes32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s))
        .ok()?
        .try_into()
        .ok()
}

impl RegistryDocument {
    /// Parses TOML text; `file` is only used in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Self, RegistryError> {
        toml::from_str(text).map_err(|e| RegistryError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    /// Validates every entry and builds the view. A malformed entry refuses the whole file;
    /// only validator registrations whose signature fails (or that repeat a validator) are
    /// skipped, and returned by name: they are someone's forgery, not the author's typo.
    pub fn into_view(
        self,
        file: &str,
        source: ViewSource,
    ) -> Result<(MembershipView, Skipped), RegistryError> {
        let field_err = |entry: String, field: &'static str, value: &str, expected: String| {
            RegistryError::Field {
                file: file.to_owned(),
                entry,
                field,
                value: value.to_owned(),
                expected,
            }
        };
        let structure = |entry: String, source: ViewError| RegistryError::Structure {
            file: file.to_owned(),
            entry,
            source: Box::new(source),
        };

        let mut builder = ViewBuilder::new(source);
        for (i, op) in self.operators.iter().enumerate() {
            let entry = format!("operators[{i}]");
            let operator: OperatorId = op.address.parse().map_err(|e| {
                field_err(
                    entry.clone(),
                    "address",
                    &op.address,
                    format!("an EVM address ({e})"),
                )
            })?;
            builder
                .operator(operator)
                .map_err(|e| structure(entry.clone(), e))?;
            if let Some(n) = op.rln_memberships {
                let cap = u32::try_from(n)
                    .ok()
                    .filter(|c| (1..=RLN_MAX_MEMBERSHIPS).contains(c))
                    .ok_or_else(|| {
                        field_err(
                            entry.clone(),
                            "rln_memberships",
                            &n.to_string(),
                            format!("1 to {RLN_MAX_MEMBERSHIPS} RLN memberships for operator {operator}"),
                        )
                    })?;
                builder
                    .rln_cap(operator, cap)
                    .map_err(|e| structure(entry.clone(), e))?;
            }
            for (j, node) in op.nodes.iter().enumerate() {
                let entry = format!("operators[{i}].nodes[{j}]");
                let peer: PeerId = node.peer_id.parse().map_err(|_| {
                    field_err(
                        entry.clone(),
                        "peer_id",
                        &node.peer_id,
                        "a libp2p PeerId (12D3Koo… or 16Uiu2…)".into(),
                    )
                })?;
                let mut scopes = BTreeSet::new();
                for s in &node.scopes {
                    let t: TopicName = s.parse().map_err(|e: TopicNameError| {
                        field_err(entry.clone(), "scopes", s, e.to_string())
                    })?;
                    scopes.insert(t);
                }
                let expiry = match (node.valid_until, node.valid_until_block) {
                    (Some(_), Some(b)) => {
                        return Err(field_err(
                            entry,
                            "valid_until_block",
                            &b.to_string(),
                            "at most one of valid_until (unix seconds) and valid_until_block"
                                .into(),
                        ))
                    }
                    (Some(t), None) => Some(Expiry::UnixSecs(t)),
                    (None, Some(b)) => Some(Expiry::Block(b)),
                    (None, None) => None,
                };
                let mut addresses = Vec::new();
                for a in &node.addresses {
                    let addr: Multiaddr = a.parse().map_err(|_| {
                        field_err(
                            entry.clone(),
                            "addresses",
                            a,
                            "a multiaddr such as /ip4/192.0.2.1/tcp/9000".into(),
                        )
                    })?;
                    let (addr, named) = split_peer_id(addr);
                    if named.is_some_and(|n| n != peer) {
                        return Err(field_err(
                            entry,
                            "addresses",
                            a,
                            format!("an address of this node (a /p2p/ part must name {peer})"),
                        ));
                    }
                    addresses.push(addr);
                }
                builder
                    .node(
                        peer,
                        NodeAuthorization {
                            operator,
                            scopes,
                            valid_from_block: None,
                            expiry,
                            addresses,
                        },
                    )
                    .map_err(|e| structure(entry, e))?;
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            let entry = format!("groups[{i}]");
            let id: GroupId = g.id.parse().map_err(|e| {
                field_err(
                    entry.clone(),
                    "id",
                    &g.id,
                    format!("a 20-byte wallet PKH ({e})"),
                )
            })?;
            let mut seats = Vec::with_capacity(g.seats.len());
            for s in &g.seats {
                seats.push(s.parse().map_err(|e| {
                    field_err(
                        entry.clone(),
                        "seats",
                        s,
                        format!("an operator address ({e})"),
                    )
                })?);
            }
            builder
                .group(Group { id, seats })
                .map_err(|e| structure(entry, e))?;
        }
        let mut skipped = Vec::new();
        let mut validators = OneLeafPerValidator::default();
        for (i, r) in self.rln.iter().enumerate() {
            let entry = format!("rln[{i}]");
            let operator: OperatorId = r.operator.parse().map_err(|e| {
                field_err(
                    entry.clone(),
                    "operator",
                    &r.operator,
                    format!("an operator address ({e})"),
                )
            })?;
            let rate_commitment = parse_bytes32(&r.rate_commitment).ok_or_else(|| {
                field_err(
                    entry.clone(),
                    "rate_commitment",
                    &r.rate_commitment,
                    "32 bytes as 64 hex digits (0x optional)".into(),
                )
            })?;
            let validator =
                validator_of(r, rate_commitment).map_err(|(field, value, expected)| {
                    field_err(entry.clone(), field, &value, expected.into())
                })?;
            if let Some(v) = &validator {
                if let Err(e) = validators.admit(r.index, v) {
                    skipped.push(format!("{entry}: {e}"));
                    continue;
                }
            }
            builder
                .rln_member(RlnMember {
                    operator,
                    index: r.index,
                    rate_commitment,
                    limit: r.limit,
                    validator: validator.map(|v| v.pubkey),
                })
                .map_err(|e| structure(entry, e))?;
        }
        Ok((builder.build(), skipped))
    }
}
