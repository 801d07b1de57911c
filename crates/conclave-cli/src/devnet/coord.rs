//! Coordination windows in the devnet: two groups with repeated seats among the members (never
//! the member that gets removed), windows every few blocks, and a report of what every member
//! settled: leaders, acceptance and faults.

use std::collections::BTreeMap;

use conclave_api::{CoordinationReport, WindowsAnswer};
use conclave_core::{GroupId, OperatorId};

use super::client;
use super::cluster::NodeProc;

/// Two groups over members `0..victim`, with repeated seats: (id, member index per seat). The
/// first has `seats` seats dealt in turn to as many members as leave at least one repeat.
pub fn groups(victim: usize, seats: usize) -> Vec<(GroupId, Vec<usize>)> {
    let members: Vec<usize> = (0..victim).collect();
    let dealt_to = victim.min(seats.saturating_sub(1)).max(1);
    let first: Vec<usize> = (0..seats.max(2)).map(|s| members[s % dealt_to]).collect();
    let last: Vec<usize> = members
        .iter()
        .rev()
        .take(4)
        .rev()
        .copied()
        .chain([members[members.len() - 1]])
        .collect();
    vec![(GroupId([0xc1; 20]), first), (GroupId([0xc2; 20]), last)]
}

/// Where the members' windows are collected and how they are judged.
pub struct Books<'a> {
    pub groups: &'a [(GroupId, Vec<usize>)],
    /// Member `i`'s operator at index `i`, to name leaders by member.
    pub operators: &'a [OperatorId],
    /// Windows with a coordination block in this range count (later ones may still settle).
    pub first_block: u64,
    pub last_block: u64,
    /// When a block started (unix ms), on the clock chain; none on anvil.
    pub block_start_ms: Option<&'a dyn Fn(u64) -> u64>,
}

/// Collects the settled windows of `members` (those still registered).
pub async fn report(
    http: &reqwest::Client,
    members: &[NodeProc],
    books: &Books<'_>,
) -> CoordinationReport {
    #[derive(Default)]
    struct Seen {
        leader: Option<OperatorId>,
        accepted: usize,
        faults: usize,
        action: Option<String>,
        latencies: Vec<u64>,
    }
    let mut seen: BTreeMap<(GroupId, u64), Seen> = BTreeMap::new();
    for node in members {
        let Ok((_, answer)) =
            client::get::<WindowsAnswer>(http, &node.url("/v1/coordination/windows")).await
        else {
            continue;
        };
        for w in answer.windows {
            let block = w.coordination_block;
            if block < books.first_block || block > books.last_block {
                continue;
            }
            let s = seen.entry((w.group, block)).or_default();
            s.leader = w.leader;
            s.faults += w.faults.len();
            if let Some(p) = &w.proposal {
                s.action = Some(format!("{:?}", p.action()));
                s.accepted += 1;
            }
            if let (Some(at), Some(start)) = (w.accepted_at_ms, books.block_start_ms) {
                s.latencies.push(at.saturating_sub(start(block)));
            }
        }
    }
    let mut r = CoordinationReport {
        group_seats: books.groups.first().map_or(0, |(_, seats)| seats.len()),
        windows: seen.len(),
        ..CoordinationReport::default()
    };
    for ((group, _), s) in &seen {
        let members = books
            .groups
            .iter()
            .find(|(g, _)| g == group)
            .map(|(_, seats)| {
                let mut m = seats.clone();
                m.sort_unstable();
                m.dedup();
                m.len()
            })
            .unwrap_or(0);
        // Every seat holder settles the window with the proposal: followers accepted it, the
        // leader sent it.
        r.expected_acceptances += members;
        r.acceptances += s.accepted;
        r.faults += s.faults;
        if let Some(i) = s
            .leader
            .and_then(|l| books.operators.iter().position(|o| *o == l))
        {
            *r.leaders.entry(i).or_default() += 1;
        }
        *r.actions
            .entry(s.action.clone().unwrap_or_else(|| "none".into()))
            .or_default() += 1;
        if let Some(last) = s.latencies.iter().max() {
            r.last_acceptance_ms.push(*last);
        }
        r.acceptance_ms.extend(&s.latencies);
    }
    r.last_acceptance_ms.sort_unstable();
    r.acceptance_ms.sort_unstable();
    r
}
