//! Registry backends: where membership comes from.
//!
//! Place in the data flow: **chain, Stacks node or file → registry → `MembershipView` → gate /
//! validators**.
//! A backend is the single writer of the view; it publishes immutable snapshots through a
//! `watch` channel and never replaces a good view with one it could not validate.

pub mod clock_chain;
mod document;
pub mod evm;
mod file;
pub mod stacks;
pub mod validators;

use std::sync::Arc;

use conclave_core::{Clock, MembershipView, Moment, SystemClock};
use tokio::sync::watch;

pub use clock_chain::ClockChain;
pub use document::{
    GroupEntry, NodeEntry, OperatorEntry, RegistryDocument, RegistryError, RlnEntry, Skipped,
};
pub use file::FileRegistry;

/// What a registry backend reports about itself besides the view: operators need to see that an
/// edit was refused, or the chain could not be read, and why, while the previous view stays in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryStatus {
    /// Number of views published since start (the first load is revision 1).
    pub revision: u64,
    /// The last refused update or failed read, while it lasts.
    pub last_error: Option<String>,
    /// How many updates were refused (file) or reads failed (chain) since start.
    pub rejected_updates: u64,
    /// The source could not be read lately: the view in force may be missing recent changes
    /// (a revocation among them). Cleared when reads succeed again.
    pub stale: bool,
    /// For chain backends: the newest confirmed block applied.
    pub synced_block: Option<u64>,
    /// Entries on the source the view had to leave out (on-chain data cannot be refused whole).
    pub skipped: Vec<String>,
    /// What operators should know about the view in force, though it was accepted (an empty
    /// signer set admits no one).
    pub warnings: Vec<String>,
}

/// The newest block a chain source has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainHead {
    pub number: u64,
    pub hash: [u8; 32],
}

/// A chain's progress: the head stream, and hashes of past blocks (coordination seeds, reorg
/// checks). Block-limited delegations are judged against the head through [`ChainClock`].
pub trait ChainSource: Send + Sync + 'static {
    fn heads(&self) -> watch::Receiver<ChainHead>;
    fn block_hash(
        &self,
        number: u64,
    ) -> impl std::future::Future<Output = Result<[u8; 32], evm::EvmError>> + Send;
}

/// A [`Clock`] whose moments carry the chain head, so delegations limited by block expire when
/// the chain reaches their block.
pub struct ChainClock {
    heads: watch::Receiver<ChainHead>,
}

impl ChainClock {
    pub fn new(heads: watch::Receiver<ChainHead>) -> Self {
        ChainClock { heads }
    }
}

impl Clock for ChainClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms()
    }

    fn moment(&self) -> Moment {
        Moment {
            unix_secs: self.now_ms() / 1000,
            block: Some(self.heads.borrow().number),
        }
    }
}

/// A source of membership views. Consumers only ever read; the backend's task is the one writer.
pub trait RegistrySource: Send + Sync + 'static {
    /// The newest accepted view, and every later one.
    fn view(&self) -> watch::Receiver<Arc<MembershipView>>;
    /// The backend's health: revision and refused updates.
    fn status(&self) -> watch::Receiver<RegistryStatus>;
}

/// A shared backend is still a backend (the EVM registry is also the node's chain source).
impl<T: RegistrySource> RegistrySource for Arc<T> {
    fn view(&self) -> watch::Receiver<Arc<MembershipView>> {
        (**self).view()
    }
    fn status(&self) -> watch::Receiver<RegistryStatus> {
        (**self).status()
    }
}
