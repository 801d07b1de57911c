//! Registry backends: where membership comes from.
//!
//! Place in the data flow: **chain or file → registry → `MembershipView` → gate / validators**.
//! A backend is the single writer of the view; it publishes immutable snapshots through a
//! `watch` channel and never replaces a good view with one it could not validate.

mod document;
mod file;

use std::sync::Arc;

use conclave_core::MembershipView;
use tokio::sync::watch;

pub use document::{GroupEntry, NodeEntry, OperatorEntry, RegistryDocument, RegistryError};
pub use file::FileRegistry;

/// What a registry backend reports about itself besides the view: operators need to see that an
/// edit was refused, and why, while the previous view stays in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryStatus {
    /// Number of views published since start (the first load is revision 1).
    pub revision: u64,
    /// The last refused update, if the newest content on the source is refused.
    pub last_error: Option<String>,
    /// How many updates were refused since start.
    pub rejected_updates: u64,
}

/// A source of membership views. Consumers only ever read; the backend's task is the one writer.
pub trait RegistrySource: Send + Sync + 'static {
    /// The newest accepted view, and every later one.
    fn view(&self) -> watch::Receiver<Arc<MembershipView>>;
    /// The backend's health: revision and refused updates.
    fn status(&self) -> watch::Receiver<RegistryStatus>;
}
