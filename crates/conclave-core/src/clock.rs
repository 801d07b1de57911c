use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from. Authorization windows and envelope timestamps are judged against it,
/// so it is injected rather than read from the OS everywhere: a node with a skewed clock is a
/// real failure mode the tests must be able to reproduce.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// The moment authorizations are evaluated at. `block` stays `None` until a chain source
    /// feeds block heights; block-limited delegations then fail closed.
    fn moment(&self) -> Moment {
        Moment {
            unix_secs: self.now_ms() / 1000,
            block: None,
        }
    }
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A point at which an authorization is judged: wall-clock seconds and, when a chain source is
/// attached, the current block height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub unix_secs: u64,
    pub block: Option<u64>,
}
