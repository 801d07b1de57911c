//! The EVM backend: the `ConclaveRegistry` contract read through JSON-RPC (alloy).
//!
//! [`ChainState`] folds contract events into registry state (sans-IO); [`EvmRegistry`] follows
//! the chain and publishes views; [`admin`] sends governance and operator transactions;
//! [`signed`] makes and submits operator actions signed offline (EIP-712, ERC-1271), and
//! [`safe`] signs them as a Safe's owners (and deploys Safe 1.4.1 for tests and the devnet);
//! [`validators`] admits Ethereum validators' keys and submits their BLS-signed RLN
//! registrations; [`anvil`] starts a local chain for tests and the devnet.
pub mod admin;
pub mod anvil;
pub mod bindings;
pub mod safe;
pub mod signed;
mod state;
mod sync;
pub mod validators;

pub use admin::{AdminError, RegistryAdmin, SlashOutcome, TxOutcome};
/// Contract and operator addresses, as the EVM backend takes them.
pub use alloy::primitives::Address;
pub use state::{ChainState, RlnRegistration, Skipped};
pub use sync::{EvmConfig, EvmError, EvmRegistry, SourceHeader};

/// `validUntil` of a delegation that lasts until revoked (the contract's `OPEN_ENDED`).
pub const OPEN_ENDED: u64 = u64::MAX;
