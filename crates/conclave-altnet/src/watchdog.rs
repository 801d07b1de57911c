//! The watchdog: notices a chain view that stalls, falls behind the members' or forks from it,
//! and a node that hears no member at all. Each anomaly is raised only after its condition held
//! for `raise_after` and cleared only after it was absent for `clear_after`, so a condition that
//! flickers around its threshold produces one raise and one clear, not a stream of them.

use std::collections::BTreeMap;

use alloy::primitives::B256;
use conclave_core::OperatorId;

/// What the watchdog watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Anomaly {
    /// No new block from our chain source for longer than the expected interval plus variance.
    Stalled,
    /// Members of at least a quorum of distinct operators announce a tip more than `k` blocks
    /// ahead of ours.
    Behind,
    /// Members of at least a quorum of distinct operators announce a different hash at our height.
    Forked,
    /// No member gossip for longer than `silence`.
    Silent,
}

impl Anomaly {
    /// Every anomaly, in the order they are evaluated and reported.
    pub const ALL: [Anomaly; 4] = [
        Anomaly::Stalled,
        Anomaly::Behind,
        Anomaly::Forked,
        Anomaly::Silent,
    ];

    /// A short, stable label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Anomaly::Stalled => "stalled",
            Anomaly::Behind => "behind",
            Anomaly::Forked => "forked",
            Anomaly::Silent => "silent",
        }
    }
}

/// Thresholds; durations in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct WatchdogConfig {
    /// The chain's expected block interval.
    pub block_interval_ms: u64,
    /// How much later than expected a block may come before the source counts as stalled.
    pub block_variance_ms: u64,
    /// How many blocks members may be ahead of us before we count as behind (`k`).
    pub ahead_blocks: u64,
    /// Distinct operators that must agree before `Behind` or `Forked` is raised (f+1); the node
    /// also needs this many returning the same headers before it acts on them.
    pub quorum: usize,
    /// Member silence that raises `Silent`.
    pub silence_ms: u64,
    /// How long a condition must hold before its anomaly is raised.
    pub raise_after_ms: u64,
    /// How long a condition must be absent before its anomaly is cleared.
    pub clear_after_ms: u64,
    /// Tip announcements older than this no longer count.
    pub tip_ttl_ms: u64,
}

/// A change of the watchdog's state, reported once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchdogEvent {
    Raised { anomaly: Anomaly, detail: String },
    Cleared { anomaly: Anomaly },
}

#[derive(Debug, Clone, Copy)]
struct Tip {
    height: u64,
    hash: B256,
    at_ms: u64,
}

/// Hysteresis of one anomaly: whether it is raised, and since when its condition has disagreed
/// with that.
#[derive(Debug, Clone, Copy, Default)]
struct Latch {
    raised: bool,
    flipping_since: Option<u64>,
}

impl Latch {
    /// Feeds the condition's current value; returns the new state when it changed.
    fn feed(
        &mut self,
        holds: bool,
        now_ms: u64,
        raise_after: u64,
        clear_after: u64,
    ) -> Option<bool> {
        if holds == self.raised {
            self.flipping_since = None;
            return None;
        }
        let since = *self.flipping_since.get_or_insert(now_ms);
        let wait = if holds { raise_after } else { clear_after };
        if now_ms.saturating_sub(since) >= wait {
            self.raised = holds;
            self.flipping_since = None;
            return Some(holds);
        }
        None
    }
}

/// The watchdog's state: our tip, the members' latest tips, the last member gossip, a latch per
/// anomaly. Fed by the node; [`Watchdog::poll`] evaluates.
#[derive(Debug, Clone)]
pub struct Watchdog {
    cfg: WatchdogConfig,
    started_ms: u64,
    local: Option<Tip>,
    tips: BTreeMap<OperatorId, Tip>,
    last_gossip_ms: Option<u64>,
    latches: BTreeMap<Anomaly, Latch>,
}

impl Watchdog {
    pub fn new(cfg: WatchdogConfig, now_ms: u64) -> Self {
        Watchdog {
            cfg,
            started_ms: now_ms,
            local: None,
            tips: BTreeMap::new(),
            last_gossip_ms: None,
            latches: Anomaly::ALL
                .iter()
                .map(|a| (*a, Latch::default()))
                .collect(),
        }
    }

    /// A block from our chain source. Only a higher block (or a different hash at our height, a
    /// reorg) counts as news; the same tip seen again does not reset the stall timer.
    pub fn local_block(&mut self, height: u64, hash: B256, now_ms: u64) {
        let news = match self.local {
            None => true,
            Some(t) => height > t.height || (height == t.height && hash != t.hash),
        };
        if news || height < self.local.map_or(0, |t| t.height) {
            self.local = Some(Tip {
                height,
                hash,
                at_ms: now_ms,
            });
        }
    }

    /// A member's tip announcement (members of one operator count once: the latest wins).
    pub fn member_tip(&mut self, operator: OperatorId, height: u64, hash: B256, now_ms: u64) {
        self.tips.insert(
            operator,
            Tip {
                height,
                hash,
                at_ms: now_ms,
            },
        );
    }

    /// Any gossip from a member.
    pub fn member_gossip(&mut self, now_ms: u64) {
        self.last_gossip_ms = Some(now_ms);
    }

    /// Whether `anomaly` is currently raised.
    pub fn is_raised(&self, anomaly: Anomaly) -> bool {
        self.latches.get(&anomaly).is_some_and(|l| l.raised)
    }

    /// Evaluates every condition at `now_ms`; returns what was raised or cleared.
    pub fn poll(&mut self, now_ms: u64) -> Vec<WatchdogEvent> {
        let c = self.cfg;
        let fresh: Vec<Tip> = self
            .tips
            .values()
            .filter(|t| now_ms.saturating_sub(t.at_ms) <= c.tip_ttl_ms)
            .copied()
            .collect();
        let mut out = Vec::new();
        for anomaly in Anomaly::ALL {
            let (holds, detail) = match anomaly {
                Anomaly::Stalled => {
                    let last = self.local.map_or(self.started_ms, |t| t.at_ms);
                    let quiet = now_ms.saturating_sub(last);
                    (
                        quiet > c.block_interval_ms + c.block_variance_ms,
                        format!(
                            "no new block for {quiet} ms (expected every {} ms, variance {} ms)",
                            c.block_interval_ms, c.block_variance_ms
                        ),
                    )
                }
                Anomaly::Behind => {
                    let ours = self.local.map_or(0, |t| t.height);
                    let ahead: Vec<&Tip> = fresh
                        .iter()
                        .filter(|t| t.height > ours + c.ahead_blocks)
                        .collect();
                    let best = ahead.iter().map(|t| t.height).max().unwrap_or(ours);
                    (
                        ahead.len() >= c.quorum,
                        format!(
                            "{} operators announce tips more than {} blocks ahead of our {ours} (up to {best})",
                            ahead.len(),
                            c.ahead_blocks
                        ),
                    )
                }
                Anomaly::Forked => match self.local {
                    None => (false, String::new()),
                    Some(ours) => {
                        let differ = fresh
                            .iter()
                            .filter(|t| t.height == ours.height && t.hash != ours.hash)
                            .count();
                        (
                            differ >= c.quorum,
                            format!(
                                "{differ} operators announce another hash at our height {}",
                                ours.height
                            ),
                        )
                    }
                },
                Anomaly::Silent => {
                    let last = self.last_gossip_ms.unwrap_or(self.started_ms);
                    let quiet = now_ms.saturating_sub(last);
                    (
                        quiet > c.silence_ms,
                        format!("no member gossip for {quiet} ms"),
                    )
                }
            };
            let latch = self.latches.entry(anomaly).or_default();
            match latch.feed(holds, now_ms, c.raise_after_ms, c.clear_after_ms) {
                Some(true) => out.push(WatchdogEvent::Raised { anomaly, detail }),
                Some(false) => out.push(WatchdogEvent::Cleared { anomaly }),
                None => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: WatchdogConfig = WatchdogConfig {
        block_interval_ms: 1000,
        block_variance_ms: 500,
        ahead_blocks: 2,
        quorum: 2,
        silence_ms: 5000,
        raise_after_ms: 1000,
        clear_after_ms: 2000,
        tip_ttl_ms: 10_000,
    };

    fn h(n: u8) -> B256 {
        B256::repeat_byte(n)
    }

    fn op(n: u8) -> OperatorId {
        OperatorId([n; 20])
    }

    /// Steps time by 100 ms from `from` to `to`, feeding blocks every `every` ms (0 = none) and
    /// gossip every 100 ms, and collects events.
    fn run(
        w: &mut Watchdog,
        from: u64,
        to: u64,
        block_every: u64,
        height: &mut u64,
    ) -> Vec<WatchdogEvent> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            if block_every > 0 && t.is_multiple_of(block_every) {
                *height += 1;
                w.local_block(*height, h(*height as u8), t);
            }
            w.member_gossip(t);
            out.extend(w.poll(t));
            t += 100;
        }
        out
    }

    #[test]
    fn a_stalled_source_is_raised_once_and_cleared_once_it_moves_again() {
        let mut w = Watchdog::new(CFG, 0);
        let mut height = 0;
        assert!(
            run(&mut w, 0, 5000, 1000, &mut height).is_empty(),
            "healthy"
        );
        // The source freezes: raised after interval + variance + raise_after, once.
        let ev = run(&mut w, 5100, 12_000, 0, &mut height);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(matches!(
            ev[0],
            WatchdogEvent::Raised {
                anomaly: Anomaly::Stalled,
                ..
            }
        ));
        assert!(w.is_raised(Anomaly::Stalled));
        // Blocks again: cleared after clear_after without a stall, once.
        let ev = run(&mut w, 12_100, 20_000, 1000, &mut height);
        assert_eq!(
            ev,
            vec![WatchdogEvent::Cleared {
                anomaly: Anomaly::Stalled
            }]
        );
    }

    #[test]
    fn a_condition_flickering_at_its_threshold_does_not_flap() {
        let mut w = Watchdog::new(CFG, 0);
        let mut events = Vec::new();
        // Blocks arrive alternately just in time (1.4 s) and late (1.7 s): the stall condition
        // flickers for 200 ms at a time, shorter than raise_after.
        let mut t = 0;
        let mut height = 0;
        for k in 0..40u64 {
            let gap = if k % 2 == 0 { 1400 } else { 1700 };
            for step in (0..gap).step_by(100) {
                w.member_gossip(t + step);
                events.extend(w.poll(t + step));
            }
            t += gap;
            height += 1;
            w.local_block(height, h(height as u8), t);
        }
        assert!(events.is_empty(), "no raise for a blip: {events:?}");

        // A real stall raises once; blocks that come back only briefly do not clear it.
        let mut events = Vec::new();
        for step in (0..4000).step_by(100) {
            w.member_gossip(t + step);
            events.extend(w.poll(t + step));
        }
        t += 4000;
        height += 1;
        w.local_block(height, h(height as u8), t); // one block, then silence again
        for step in (0..4000).step_by(100) {
            w.member_gossip(t + step);
            events.extend(w.poll(t + step));
        }
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(w.is_raised(Anomaly::Stalled));
    }

    #[test]
    fn behind_needs_a_quorum_of_distinct_operators_with_fresh_tips() {
        let mut w = Watchdog::new(CFG, 0);
        w.local_block(10, h(10), 0);
        let poll_for = |w: &mut Watchdog, from: u64, to: u64| {
            let mut out = Vec::new();
            let mut t = from;
            while t <= to {
                w.local_block(10, h(10), t); // the source repeats its tip: no news
                w.member_gossip(t);
                out.extend(w.poll(t));
                t += 100;
            }
            out
        };
        // One operator far ahead (twice, from two of its nodes): below the quorum of 2.
        w.member_tip(op(1), 20, h(20), 0);
        w.member_tip(op(1), 21, h(21), 0);
        // Another only 2 ahead: not more than k.
        w.member_tip(op(2), 12, h(12), 0);
        let ev = poll_for(&mut w, 0, 1400);
        assert!(
            !ev.iter().any(|e| matches!(
                e,
                WatchdogEvent::Raised {
                    anomaly: Anomaly::Behind,
                    ..
                }
            )),
            "{ev:?}"
        );
        // A second operator 3+ ahead: raised after raise_after.
        w.member_tip(op(2), 13, h(13), 1400);
        let ev: Vec<_> = poll_for(&mut w, 1400, 3000)
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    WatchdogEvent::Raised {
                        anomaly: Anomaly::Behind,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(ev.len(), 1, "{ev:?}");
        // The announcements age out: cleared.
        let ev = poll_for(&mut w, 3000, 14_000);
        assert!(
            ev.contains(&WatchdogEvent::Cleared {
                anomaly: Anomaly::Behind
            }),
            "{ev:?}"
        );
    }

    #[test]
    fn a_different_hash_at_our_height_from_a_quorum_is_a_fork() {
        let mut w = Watchdog::new(CFG, 0);
        let mut events = Vec::new();
        for t in (0..3000).step_by(100) {
            w.local_block(5, h(5), t);
            w.member_gossip(t);
            w.member_tip(op(1), 5, h(99), t);
            w.member_tip(op(2), 5, h(99), t);
            w.member_tip(op(3), 5, h(5), t);
            events.extend(w.poll(t));
        }
        assert!(
            events.iter().any(|e| matches!(
                e,
                WatchdogEvent::Raised {
                    anomaly: Anomaly::Forked,
                    ..
                }
            )),
            "{events:?}"
        );
        assert!(!w.is_raised(Anomaly::Behind));
    }

    #[test]
    fn silence_from_members_is_raised_and_cleared() {
        let mut w = Watchdog::new(CFG, 0);
        let mut events = Vec::new();
        for t in (0..7000).step_by(100) {
            w.local_block(t / 1000, h((t / 1000) as u8), t);
            events.extend(w.poll(t));
        }
        assert!(
            matches!(
                events.as_slice(),
                [WatchdogEvent::Raised {
                    anomaly: Anomaly::Silent,
                    ..
                }]
            ),
            "{events:?}"
        );
        let mut events = Vec::new();
        for t in (7000..10_000).step_by(100) {
            w.local_block(t / 1000, h((t / 1000) as u8), t);
            w.member_gossip(t);
            events.extend(w.poll(t));
        }
        assert_eq!(
            events,
            vec![WatchdogEvent::Cleared {
                anomaly: Anomaly::Silent
            }]
        );
    }
}
