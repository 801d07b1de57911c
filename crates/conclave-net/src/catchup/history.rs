//! The views this node held over the retention window: a fetched message is judged by the
//! authorization in force when it was sent, not now. Rule: a message is accepted if the view
//! this node held at the message's timestamp authorized its key for its topic at that moment
//! (with that view's block height), so a message from a key revoked since stays valid; for a
//! timestamp before the oldest view held (this node was not running then), the oldest view
//! decides.

use std::collections::VecDeque;
use std::sync::Arc;

use conclave_core::{MembershipView, Moment};

/// Views kept at most (a view changes on registry edits and new blocks, not per message).
const MAX_VIEWS: usize = 4096;

struct Held {
    from_ms: u64,
    block: Option<u64>,
    view: Arc<MembershipView>,
}

pub(crate) struct ViewHistory {
    held: VecDeque<Held>,
    window_ms: u64,
}

impl ViewHistory {
    pub fn new(view: Arc<MembershipView>, now_ms: u64, block: Option<u64>, window_ms: u64) -> Self {
        ViewHistory {
            held: VecDeque::from([Held {
                from_ms: now_ms,
                block,
                view,
            }]),
            window_ms,
        }
    }

    /// Records the view put in force at `now_ms` (the same snapshot again only moves the block).
    pub fn record(&mut self, view: &Arc<MembershipView>, now_ms: u64, block: Option<u64>) {
        if let Some(last) = self.held.back() {
            if Arc::ptr_eq(&last.view, view) && last.block == block {
                return;
            }
        }
        self.held.push_back(Held {
            from_ms: now_ms,
            block,
            view: view.clone(),
        });
        // Keep the view that was in force at the window's start, drop the ones before it.
        let since = now_ms.saturating_sub(self.window_ms);
        while self.held.len() > 1
            && (self.held.len() > MAX_VIEWS || self.held.get(1).is_some_and(|h| h.from_ms <= since))
        {
            self.held.pop_front();
        }
    }

    /// The view in force at `ts_ms` and the moment to judge a message of that time at.
    pub fn at(&self, ts_ms: u64) -> (&Arc<MembershipView>, Moment) {
        let i = self
            .held
            .partition_point(|h| h.from_ms <= ts_ms)
            .saturating_sub(1);
        let h = &self.held[i];
        (
            &h.view,
            Moment {
                unix_secs: ts_ms / 1000,
                block: h.block,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::ViewSource;

    fn view() -> Arc<MembershipView> {
        Arc::new(conclave_core::ViewBuilder::new(ViewSource::Empty).build())
    }

    #[test]
    fn a_message_is_judged_by_the_view_of_its_time() {
        let (a, b, c) = (view(), view(), view());
        let mut h = ViewHistory::new(a.clone(), 1_000, Some(1), 60_000);
        h.record(&b, 5_000, Some(2));
        h.record(&c, 9_000, Some(3));
        assert!(
            Arc::ptr_eq(h.at(500).0, &a),
            "before the oldest: the oldest"
        );
        assert!(Arc::ptr_eq(h.at(4_999).0, &a));
        assert!(Arc::ptr_eq(h.at(5_000).0, &b));
        assert_eq!(
            h.at(6_000).1,
            Moment {
                unix_secs: 6,
                block: Some(2)
            }
        );
        assert!(Arc::ptr_eq(h.at(100_000).0, &c));
        // Out of the window, the views before the one in force at its start go.
        h.record(&a, 70_000, Some(4));
        assert!(Arc::ptr_eq(h.at(9_500).0, &c));
        assert!(Arc::ptr_eq(h.at(0).0, &c));
    }
}
