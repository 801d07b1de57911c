//! Once-only delivery to subscribers: across the two services of a key rotation (both receive
//! the same gossip), and across restarts. Gossipsub's duplicate cache and this filter's memory
//! die with the process; the network's timestamp check refuses only what is older than
//! `[limits] timestamp_tolerance_secs` (caught-up messages may be as old as `[catch_up]
//! retention_secs`). So the ids of delivered messages are written to the state store (`persist`)
//! and read back at start for the longer of the two windows: a member replaying traffic into a
//! node that restarted finds it already delivered (docs/ARCHITECTURE.md, "The node").

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use conclave_core::{Clock, PeerId};
use conclave_net::Delivery;

/// Delivered ids remembered at most (the window's worth at 8,700 msg/s with the default 30 s
/// tolerance); beyond it the oldest are forgotten early.
pub(crate) const RECENT_IDS: usize = 262_144;

/// Recently delivered ids with their messages' timestamps, oldest first.
struct RecentIds {
    order: VecDeque<(Arc<str>, u64)>,
    set: HashSet<Arc<str>>,
    window_ms: u64,
}

impl RecentIds {
    fn new(window_ms: u64) -> Self {
        RecentIds {
            order: VecDeque::new(),
            set: HashSet::new(),
            window_ms,
        }
    }

    /// True the first time an id is seen. Ids whose message fell out of the timestamp window
    /// are forgotten: the network refuses such a message by its timestamp alone.
    fn first(&mut self, id: &str, ts_ms: u64, now_ms: u64) -> bool {
        while let Some((old, ts)) = self.order.front() {
            if ts.saturating_add(self.window_ms) >= now_ms && self.order.len() < RECENT_IDS {
                break;
            }
            self.set.remove(old);
            self.order.pop_front();
        }
        if self.set.contains(id) {
            return false;
        }
        let id: Arc<str> = id.into();
        self.order.push_back((id.clone(), ts_ms));
        self.set.insert(id);
        true
    }
}

/// What decides whether a delivery reaches the subscribers, shared by the dispatchers of every
/// service the node has run.
pub(crate) struct DeliveryFilter {
    recent: RecentIds,
    /// Every key this node has run under: during a rotation the two services gossip with each
    /// other, and the node's own messages must not come back to its subscribers.
    own_keys: Vec<PeerId>,
    /// Admitted since the last write to the store (bounded like `recent`).
    unsaved: Vec<(String, u64)>,
    clock: Arc<dyn Clock>,
}

impl DeliveryFilter {
    /// A filter that already knows `remembered` (id, message timestamp) pairs from the store.
    pub fn new(window: Duration, remembered: Vec<(String, u64)>, clock: Arc<dyn Clock>) -> Self {
        let mut recent = RecentIds::new(window.as_millis() as u64);
        let now = clock.now_ms();
        for (id, ts) in remembered {
            recent.first(&id, ts, now);
        }
        DeliveryFilter {
            recent,
            own_keys: Vec::new(),
            unsaved: Vec::new(),
            clock,
        }
    }

    pub fn add_own_key(&mut self, key: PeerId) {
        self.own_keys.push(key);
    }

    pub fn admit(&mut self, d: &Delivery) -> bool {
        let first = !self.own_keys.contains(&d.source)
            && self
                .recent
                .first(&d.message_id, d.timestamp_ms, self.clock.now_ms());
        if first && self.unsaved.len() < RECENT_IDS {
            self.unsaved.push((d.message_id.clone(), d.timestamp_ms));
        }
        first
    }

    pub(crate) fn take_unsaved(&mut self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.unsaved)
    }

    /// The oldest message timestamp still remembered.
    pub(crate) fn forget_before(&self) -> u64 {
        self.clock.now_ms().saturating_sub(self.recent.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StateStore;
    use conclave_core::OperatorId;

    struct At(u64);
    impl Clock for At {
        fn now_ms(&self) -> u64 {
            self.0
        }
    }

    fn delivery(id: &str, ts: u64) -> Delivery {
        Delivery {
            topic: "t".parse().unwrap_or_else(|_| unreachable!()),
            source: PeerId::random(),
            operator: OperatorId([1; 20]),
            timestamp_ms: ts,
            payload: Vec::new(),
            message_id: id.into(),
            caught_up: false,
            nonce: 0,
            signature: Vec::new(),
        }
    }

    #[test]
    fn ids_are_remembered_for_the_timestamp_window_then_forgotten() {
        let mut r = RecentIds::new(30_000);
        assert!(r.first("a", 1_000, 1_000));
        assert!(!r.first("a", 1_000, 30_000), "a replay within the window");
        assert!(r.first("b", 31_500, 31_500));
        assert!(!r.set.contains("a"), "a's message is out of the window now");
    }

    #[test]
    fn a_restarted_node_knows_what_it_delivered_before() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let now = 100_000;
        let d = delivery("replayed", now - 5_000);
        {
            let store = StateStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let mut f = DeliveryFilter::new(Duration::from_secs(30), vec![], Arc::new(At(now)));
            assert!(f.admit(&d));
            store
                .record_delivered(&f.take_unsaved(), now - 30_000)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let store = StateStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let later = now + 2_000;
        let remembered = store
            .delivered_since(later - 30_000)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut f = DeliveryFilter::new(Duration::from_secs(30), remembered, Arc::new(At(later)));
        assert!(
            !f.admit(&d),
            "the replay after the restart is not delivered"
        );
        assert!(f.admit(&delivery("new", later)));
        // Out of the window, the store forgets it too.
        store
            .record_delivered(&[], now + 40_000)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(store
            .delivered_since(0)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
    }
}
