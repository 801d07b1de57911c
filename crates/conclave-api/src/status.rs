//! Health, readiness, errors and coordination windows.

use conclave_coord::{Fault, WindowOutcome};
use serde::{Deserialize, Serialize};

/// Every non-2xx answer: what went wrong and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub error: String,
}

/// Which chain the node acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Following {
    /// Its own chain source (RPC).
    #[default]
    Source,
    /// Headers f+1 other operators signed, while its source is stale.
    Fallback,
}

/// `GET /readyz` (`200` when ready, `503` when not, with the same body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyAnswer {
    pub ready: bool,
    /// Whether the registry's view authorizes this node's own key.
    pub member: bool,
    /// What keeps the node from being ready, in words (empty when ready).
    pub not_ready: Vec<String>,
    pub connected_members: usize,
    pub quorum: usize,
    pub registry_stale: bool,
    /// The chain the node acts on, when it follows one.
    pub chain: Option<ChainFollowing>,
}

/// The head the node acts on and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainFollowing {
    pub head: u64,
    pub following: Following,
}

/// `GET /v1/coordination/windows`: the most recent settled windows, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsAnswer {
    pub windows: Vec<WindowOutcome>,
}

/// `GET /v1/coordination/faults`: the faults of those windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultsAnswer {
    pub faults: Vec<Fault>,
}
