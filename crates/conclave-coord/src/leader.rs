//! The window's seed, its leader and its checklist: plain functions of the group, the seed
//! block's hash and the window index, so every member computes the same answers alone.

use conclave_core::{GroupId, OperatorId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::gorand::GoRng;
use crate::wire::ActionType;

/// seed = SHA-256(group public key hash ‖ safe block hash).
pub fn seed(group: &GroupId, safe_block_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(group.0);
    h.update(safe_block_hash);
    h.finalize().into()
}

/// The Go RNG seed keep-core derives from a window seed: its first 8 bytes, big-endian.
fn rng_seed(seed: &[u8; 32]) -> i64 {
    i64::from_be_bytes(seed[..8].try_into().expect("8 bytes"))
}

/// The distinct seat operators in leader order: sorted byte-wise as EIP-55 strings (so
/// `0xBBBB…` sorts before `0xaaaa…`), then shuffled with Go's `rand.Shuffle`. The first one leads.
pub fn leader_order(seed: &[u8; 32], seats: &[OperatorId]) -> Vec<OperatorId> {
    let mut keyed: Vec<(String, OperatorId)> = seats.iter().map(|o| (o.to_eip55(), *o)).collect();
    keyed.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    keyed.dedup_by(|a, b| a.1 == b.1);
    let mut order: Vec<OperatorId> = keyed.into_iter().map(|(_, o)| o).collect();
    GoRng::new(rng_seed(seed)).shuffle(&mut order);
    order
}

/// The window's leader, or `None` for a group without seats.
pub fn leader(seed: &[u8; 32], seats: &[OperatorId]) -> Option<OperatorId> {
    leader_order(seed, seats).into_iter().next()
}

/// Which actions a window may propose. The defaults are keep-core v2.1.0's; keep-core v2.0's
/// policy (heartbeat every 16 windows' worth at 12.5 %) is a different `heartbeat_probability`
/// and `sweep_every`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChecklistPolicy {
    /// DepositSweep, MovedFundsSweep and MovingFunds are checked when `index % sweep_every == 0`.
    pub sweep_every: u64,
    /// Heartbeat when a fresh RNG from the seed draws `Float64()` below this.
    pub heartbeat_probability: f64,
}

impl Default for ChecklistPolicy {
    fn default() -> Self {
        ChecklistPolicy {
            sweep_every: 4,
            heartbeat_probability: 0.0625,
        }
    }
}

/// The actions of window `index`, in keep-core's order; `None` for the invalid window 0.
pub fn checklist(index: u64, seed: &[u8; 32], policy: &ChecklistPolicy) -> Option<Vec<ActionType>> {
    if index == 0 {
        return None;
    }
    let mut actions = vec![ActionType::Redemption];
    if policy.sweep_every > 0 && index.is_multiple_of(policy.sweep_every) {
        actions.extend([
            ActionType::DepositSweep,
            ActionType::MovedFundsSweep,
            ActionType::MovingFunds,
        ]);
    }
    // A fresh generator: keep-core does not share the leader shuffle's stream.
    if GoRng::new(rng_seed(seed)).float64() < policy.heartbeat_probability {
        actions.push(ActionType::Heartbeat);
    }
    Some(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_sha256_of_group_then_hash() {
        let s = seed(&GroupId([0x11; 20]), &[0x22; 32]);
        let mut pre = vec![0x11u8; 20];
        pre.extend([0x22u8; 32]);
        assert_eq!(s, <[u8; 32]>::from(Sha256::digest(&pre)));
    }

    #[test]
    fn eip55_strings_sort_byte_wise_uppercase_first() {
        // An address whose checksum form starts `0xB…` and one whose starts `0xa…`: byte-wise,
        // 'B' (0x42) sorts before 'a' (0x61), the reverse of their lowercase order.
        let starting = |hi: u8, c: char| {
            (0..=255u8)
                .map(|k| {
                    OperatorId([
                        hi | (k & 0x0f),
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                        k,
                    ])
                })
                .find(|o| o.to_eip55().as_bytes()[2] == c as u8)
                .expect("some address checksums that way")
        };
        let upper = starting(0xb0, 'B');
        let lower = starting(0xa0, 'a');
        let s = [7u8; 32];
        let mut expected = vec![upper, lower];
        GoRng::new(rng_seed(&s)).shuffle(&mut expected);
        assert_eq!(leader_order(&s, &[lower, upper, lower]), expected);
        // Sorting lowercase hex instead would start from the other order.
        let mut wrong = vec![lower, upper];
        GoRng::new(rng_seed(&s)).shuffle(&mut wrong);
        assert_ne!(wrong, expected);
    }

    #[test]
    fn repeated_seats_count_once_and_order_is_deterministic() {
        let ops: Vec<OperatorId> = (1..=5u8).map(|i| OperatorId([i * 17; 20])).collect();
        let seats: Vec<OperatorId> = ops.iter().chain(&ops[..2]).copied().collect();
        let s = seed(&GroupId([3; 20]), &[9; 32]);
        let order = leader_order(&s, &seats);
        assert_eq!(order.len(), 5);
        assert_eq!(order, leader_order(&s, &seats));
        assert_eq!(leader(&s, &seats), Some(order[0]));
        assert_eq!(leader(&s, &[]), None);
        // Seat order does not matter, only the set.
        let mut reversed = seats.clone();
        reversed.reverse();
        assert_eq!(leader_order(&s, &reversed), order);
    }

    #[test]
    fn checklist_follows_the_policy() {
        let p = ChecklistPolicy::default();
        let s = [0u8; 32]; // Go seed 0: first Float64 is 0.945…, no heartbeat
        assert_eq!(checklist(0, &s, &p), None);
        assert_eq!(checklist(1, &s, &p), Some(vec![ActionType::Redemption]));
        assert_eq!(
            checklist(4, &s, &p),
            Some(vec![
                ActionType::Redemption,
                ActionType::DepositSweep,
                ActionType::MovedFundsSweep,
                ActionType::MovingFunds
            ])
        );
        let always = ChecklistPolicy {
            heartbeat_probability: 1.0,
            ..p
        };
        assert_eq!(
            checklist(3, &s, &always),
            Some(vec![ActionType::Redemption, ActionType::Heartbeat])
        );
        // About 6.25 % of seeds draw a heartbeat.
        let hits = (0..4000u32)
            .filter(|i| {
                let s = seed(
                    &GroupId([1; 20]),
                    &[(*i % 251) as u8; 32].map(|b| b ^ (*i >> 8) as u8),
                );
                checklist(1, &s, &p)
                    .unwrap()
                    .contains(&ActionType::Heartbeat)
            })
            .count();
        assert!(
            (150..350).contains(&hits),
            "{hits} heartbeats in 4000 windows"
        );
    }
}
