//! What Conclave's integration tests share, so that each test file says only what it tests.
//!
//! Where it sits: beside the data flow, never in it. It is a dev-dependency of the crates whose
//! tests need it (`publish = false`): [`eventually`] for every bounded wait, [`RegistryDoc`] for
//! registry files built as typed documents instead of `format!`-ed TOML, and [`RegistryChain`]
//! for an anvil chain with the registry deployed and operators admitted, and [`HostileMember`]:
//! a registered key running plain gossipsub, sending what an honest node never would.
// Test support reports a broken fixture by panicking, with the reason, like the tests it serves.
#![allow(clippy::unwrap_used)]

mod chain;
mod hostile;
mod registry;
mod wait;

pub use chain::RegistryChain;
pub use hostile::{envelope, signed_topic, Channel, HostileMember, Ran};
pub use registry::{node, RegistryDoc};
pub use wait::{eventually, eventually_within, Settled, WAIT};
