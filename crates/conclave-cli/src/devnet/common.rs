//! What every devnet module shares: topics, timings, the members' roles, the wall clock and
//! atomic file writes. One place, so a node's configuration and the checks that read it agree.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The signed topic all traffic goes on.
pub const TOPIC: &str = "devnet";
/// The anonymous (RLN) topic.
pub const ANON_TOPIC: &str = "anon";

/// How long a node has to start, report its addresses and become ready.
pub const STARTUP: Duration = Duration::from_secs(60);
/// Time in-flight messages get to arrive before the books are closed.
pub const DRAIN: Duration = Duration::from_secs(3);
/// How long a scenario waits for each thing it expects before calling the run failed.
pub const EXPECT: Duration = Duration::from_secs(60);

/// Block interval of the clock chain file-registry devnets share.
pub const CLOCK_BLOCK_MS: u64 = 100;
/// Confirmations the nodes wait for before applying an on-chain registry change.
pub const CONFIRMATIONS: u64 = 2;
/// Where node-0 finds the key it rotates to (on a chain), beside its configuration.
pub const ROTATION_KEY_DIR: &str = "node-0-keys";

/// Messages per RLN epoch each membership allows.
pub const RLN_LIMIT: u32 = 4;
/// The member whose RLN identity is also used by [`TWIN`].
pub const SPAMMER: usize = 1;
pub const TWIN: usize = 2;
/// On a chain: seconds each node waits per turn before submitting an RLN removal itself.
pub const CHAIN_STAGGER_SECS: u64 = 2;

/// Coordination window timing, in blocks.
#[derive(Clone, Copy)]
pub struct Windows {
    pub frequency: u64,
    pub active: u64,
    pub passive: u64,
    pub safe_shift: u64,
}

impl Windows {
    /// Blocks from a window's coordination block until it is settled everywhere.
    pub fn settle(&self) -> u64 {
        self.frequency + self.active + self.passive
    }
}

/// On the clock chain (100 ms blocks): a window every 2 s.
pub const CLOCK_WINDOWS: Windows = Windows {
    frequency: 20,
    active: 10,
    passive: 5,
    safe_shift: 3,
};
/// On anvil: a window every 10 blocks.
pub const CHAIN_WINDOWS: Windows = Windows {
    frequency: 10,
    active: 6,
    passive: 2,
    safe_shift: 3,
};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_millis() as u64
}

/// Writes atomically (write + rename) so a node never reads half a file.
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
