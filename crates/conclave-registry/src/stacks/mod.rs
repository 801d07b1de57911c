//! The Stacks backend: sBTC's own registry. The signer set is the `current-signer-set` data
//! variable of a registry contract (sBTC's `sbtc-registry`, or any contract with the same
//! variables), read from a Stacks node's RPC every poll:
//!
//! `Stacks node /v2/data_var → clarity (strict decode) → signer_set (points, PeerIds) → view`
//!
//! A snapshot with any defect is refused whole and the last good view stays in force; an
//! unreachable node keeps the view and marks it stale (docs/ARCHITECTURE.md, "The Stacks
//! registry").

pub mod clarity;
mod contract;
mod signer_set;
pub mod simnet;
mod source;

pub use contract::ContractId;
pub use signer_set::{NotAPoint, SignerKey, SignerSet};
pub use source::{StacksConfig, StacksRegistry};

/// The data variables read, as sBTC's `sbtc-registry` names them.
pub const SIGNER_SET_VAR: &str = "current-signer-set";
pub const THRESHOLD_VAR: &str = "current-signature-threshold";
pub const AGGREGATE_VAR: &str = "current-aggregate-pubkey";

/// Why the registry could not be read or its state was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StacksError {
    #[error("Stacks node {url}: {message}")]
    Node { url: String, message: String },
    #[error("Stacks node {url} has no data var `{var}` in {contract} (404): is stacks.registry_contract right?")]
    NoVar {
        url: String,
        contract: String,
        var: &'static str,
    },
    #[error("`{var}` is not the contract's declared type: {source}")]
    Value {
        var: &'static str,
        source: clarity::ClarityError,
    },
    #[error("signer key {index} of `current-signer-set`: {source}")]
    NotAPoint { index: usize, source: NotAPoint },
    #[error("signer key {index} of `current-signer-set` repeats key {first}")]
    DuplicateKey { index: usize, first: usize },
}
