//! Subscription churn per peer, sans IO: every subscription change a member announces costs the
//! node mesh bookkeeping on both gossipsubs, and a member flapping subscriptions within the topic
//! cap kept a node at ≈ 0.9 of a core. A token bucket per peer: a burst (a node joining with all
//! its topics) passes; a sustained rate above the refill is churn, and the member is cooled down
//! like a graylisted one.

use std::collections::HashMap;
use std::time::Instant;

use conclave_core::PeerId;

/// Changes a peer may announce at once (a node with many topics joining).
const BURST: f64 = 64.0;
/// Changes per second a peer may sustain.
const REFILL_PER_SEC: f64 = 1.0;

#[derive(Default)]
pub(crate) struct ChurnLimit {
    buckets: HashMap<PeerId, (f64, Instant)>,
}

impl ChurnLimit {
    /// Records one subscription change of `peer`; false once it is over its rate.
    pub fn change(&mut self, peer: PeerId, now: Instant) -> bool {
        let (tokens, at) = self.buckets.entry(peer).or_insert((BURST, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * REFILL_PER_SEC).min(BURST);
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }

    /// Forgets a peer that disconnected (the map holds connected peers only).
    pub fn forget(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SUSTAINED: Duration = Duration::from_secs(1);

    #[test]
    fn a_joining_burst_passes_and_sustained_flapping_does_not() {
        let (mut c, p, t0) = (ChurnLimit::default(), PeerId::random(), Instant::now());
        for _ in 0..64 {
            assert!(c.change(p, t0), "a node joining with 64 topics");
        }
        assert!(!c.change(p, t0), "the 65th change at once");
        assert!(c.change(p, t0 + SUSTAINED), "one more per second");
        assert!(!c.change(p, t0 + SUSTAINED));
        c.forget(&p);
        assert!(c.change(p, t0 + SUSTAINED), "a reconnect starts afresh");
    }
}
