//! Proposals that arrive before their window opened here: this node's head is behind the
//! leader's (a slow source, or a fallback tip fetched every few blocks). Sans-IO: the executor
//! holds them here, with the signed copy each came in (`C`: fault evidence must be the message
//! as signed), and replays them when the window opens.

use std::collections::BTreeMap;

use conclave_coord::{CoordinationMessage, WindowParams};
use conclave_core::OperatorId;

/// Proposals a member may hold for windows its head has not reached yet, in all.
pub(super) const EARLY_MAX: usize = 256;

/// A window: its coordination block and group (wallet public key hash).
pub(super) type WindowKey = (u64, [u8; 20]);

/// Why a message was not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotHeld {
    /// Its block is not a window start within the next `frequency` blocks.
    NoOpenWindow,
    /// [`EARLY_MAX`] messages from other senders or windows are held already.
    Full,
}

impl NotHeld {
    /// The `coordination_dropped_total` reason.
    pub fn label(self) -> &'static str {
        match self {
            NotHeld::NoOpenWindow => "no_open_window",
            NotHeld::Full => "early_full",
        }
    }
}

/// The latest early message per (window, sender), with its copy `C`, bounded in all.
pub(super) struct EarlyProposals<C> {
    held: BTreeMap<(u64, [u8; 20], OperatorId), (CoordinationMessage, C)>,
}

impl<C> Default for EarlyProposals<C> {
    fn default() -> Self {
        EarlyProposals {
            held: BTreeMap::new(),
        }
    }
}

impl<C> EarlyProposals<C> {
    /// Holds `msg` from `sender` if its window starts within the next `frequency` blocks after
    /// `head`; a later message from the same sender for the same window replaces the earlier.
    pub fn hold(
        &mut self,
        sender: OperatorId,
        msg: CoordinationMessage,
        copy: C,
        head: u64,
        params: &WindowParams,
    ) -> Result<(), NotHeld> {
        let block = msg.coordination_block;
        let ahead = block > head
            && block <= head.saturating_add(params.frequency)
            && params.window_at(block).is_some();
        if !ahead {
            return Err(NotHeld::NoOpenWindow);
        }
        let key = (block, msg.wallet_public_key_hash.0, sender);
        if self.held.len() >= EARLY_MAX && !self.held.contains_key(&key) {
            return Err(NotHeld::Full);
        }
        self.held.insert(key, (msg, copy));
        Ok(())
    }

    /// Everything held for `window`, by sender, now that it opens; nothing stays held for it.
    pub fn take(&mut self, window: WindowKey) -> Vec<(OperatorId, CoordinationMessage, C)> {
        let (block, group) = window;
        let range = (block, group, OperatorId([0; 20]))..=(block, group, OperatorId([0xff; 20]));
        let keys: Vec<_> = self.held.range(range).map(|(k, _)| *k).collect();
        keys.into_iter()
            .filter_map(|k| self.held.remove(&k).map(|(m, c)| (k.2, m, c)))
            .collect()
    }

    /// Forgets what was held for windows at or behind `head` that never opened here.
    pub fn forget_through(&mut self, head: u64) {
        self.held.retain(|k, _| k.0 > head);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use conclave_coord::wire::{Bytes20, Proposal};

    use super::*;

    const PARAMS: WindowParams = WindowParams {
        frequency: 20,
        active: 10,
        passive: 5,
        safe_shift: 3,
    };

    fn msg(block: u64, group: u8, sender_id: u8) -> CoordinationMessage {
        CoordinationMessage {
            sender_id,
            coordination_block: block,
            wallet_public_key_hash: Bytes20([group; 20]),
            proposal: Proposal::Noop,
        }
    }

    fn op(i: u8) -> OperatorId {
        OperatorId([i; 20])
    }

    #[test]
    fn holds_only_the_next_window_and_nothing_behind_or_between() {
        let mut early = EarlyProposals::<()>::default();
        assert_eq!(early.hold(op(1), msg(40, 1, 1), (), 25, &PARAMS), Ok(()));
        // Behind or at the head, not a window start, or more than a window ahead.
        for block in [20, 25, 41, 60] {
            assert_eq!(
                early.hold(op(1), msg(block, 1, 1), (), 25, &PARAMS),
                Err(NotHeld::NoOpenWindow),
                "block {block}"
            );
        }
        assert_eq!(early.len(), 1);
    }

    #[test]
    fn keeps_the_latest_message_per_sender_and_window_and_replays_it_once() {
        let mut early = EarlyProposals::<()>::default();
        early.hold(op(1), msg(40, 1, 1), (), 30, &PARAMS).unwrap();
        early.hold(op(1), msg(40, 1, 7), (), 30, &PARAMS).unwrap();
        early.hold(op(2), msg(40, 1, 2), (), 30, &PARAMS).unwrap();
        early.hold(op(2), msg(40, 9, 2), (), 30, &PARAMS).unwrap();
        let taken = early.take((40, [1; 20]));
        let seats: Vec<(OperatorId, u8)> =
            taken.iter().map(|(o, m, _)| (*o, m.sender_id)).collect();
        assert_eq!(seats, [(op(1), 7), (op(2), 2)]);
        assert!(early.take((40, [1; 20])).is_empty());
        // The other group's window is still held.
        assert_eq!(early.take((40, [9; 20])).len(), 1);
    }

    #[test]
    fn is_bounded_in_all_but_a_sender_may_still_replace_its_own() {
        let mut early = EarlyProposals::<()>::default();
        for i in 0..EARLY_MAX {
            let sender = OperatorId((i as u32).to_be_bytes().repeat(5).try_into().unwrap());
            early.hold(sender, msg(40, 1, 1), (), 30, &PARAMS).unwrap();
        }
        assert_eq!(
            early.hold(op(0xee), msg(40, 1, 1), (), 30, &PARAMS),
            Err(NotHeld::Full)
        );
        let first = OperatorId(0u32.to_be_bytes().repeat(5).try_into().unwrap());
        assert_eq!(early.hold(first, msg(40, 1, 9), (), 30, &PARAMS), Ok(()));
        assert_eq!(early.len(), EARLY_MAX);
    }

    #[test]
    fn forgets_windows_the_head_passed_without_opening_them() {
        let mut early = EarlyProposals::<()>::default();
        early.hold(op(1), msg(40, 1, 1), (), 30, &PARAMS).unwrap();
        early.hold(op(1), msg(60, 1, 1), (), 45, &PARAMS).unwrap();
        early.forget_through(50);
        assert!(early.take((40, [1; 20])).is_empty());
        assert_eq!(early.take((60, [1; 20])).len(), 1);
    }
}
