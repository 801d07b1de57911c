//! Coordination windows in the devnet: two groups with repeated seats among the members (never
//! the member that gets removed), windows every few blocks, and a report of what every member
//! settled: leaders, acceptance and faults.

use std::collections::BTreeMap;

use conclave_core::GroupId;
use serde_json::Value;

use super::{get_json, NodeProc};

/// The coordination topic's scope name (the node subscribes to it).
pub const COORD_SCOPE: &str = "coord";

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

/// Configuration lines turning coordination on. With a registry file the nodes share a clock
/// chain (100 ms blocks, a window every 2 s); on anvil they follow its blocks (a window every 10).
pub fn node_config(chain: bool, genesis_ms: u64) -> String {
    if chain {
        "coordination = true\ncoord_frequency = 10\ncoord_active = 6\ncoord_passive = 2\ncoord_safe_shift = 3\n".into()
    } else {
        format!(
            "coordination = true\nclock_chain_genesis_ms = {genesis_ms}\nclock_chain_block_ms = 100\n\
             coord_frequency = 20\ncoord_active = 10\ncoord_passive = 5\ncoord_safe_shift = 3\n"
        )
    }
}

/// What the members settled, window by window.
pub struct CoordReport {
    pub windows: usize,
    pub expected_acceptances: usize,
    pub acceptances: usize,
    pub faults: usize,
    /// Leaders by member index, with how many windows each led.
    pub leaders: BTreeMap<usize, usize>,
    pub actions: BTreeMap<String, usize>,
    /// Per window, coordination block start → the last follower's acceptance (ms); clock chain only.
    pub last_acceptance_ms: Vec<u64>,
    /// Every follower's acceptance latency (ms); clock chain only.
    pub acceptance_ms: Vec<u64>,
}

impl CoordReport {
    pub fn ok(&self) -> bool {
        self.windows > 0 && self.faults == 0 && self.acceptances == self.expected_acceptances
    }
}

/// Collects the settled windows of `nodes[..victim]` with a coordination block in
/// `[first_block, last_block]` (windows still settling at the end are left out).
#[allow(clippy::too_many_arguments)]
pub async fn report(
    http: &reqwest::Client,
    nodes: &[NodeProc],
    victim: usize,
    groups: &[(GroupId, Vec<usize>)],
    operators: &[String],
    first_block: u64,
    last_block: u64,
    block_start_ms: Option<&dyn Fn(u64) -> u64>,
) -> CoordReport {
    #[derive(Default)]
    struct Seen {
        leader: Option<String>,
        accepted: usize,
        faults: usize,
        action: Option<String>,
        latencies: Vec<u64>,
    }
    let mut seen: BTreeMap<(String, u64), Seen> = BTreeMap::new();
    for node in &nodes[..victim] {
        let Ok((_, v)) = get_json(http, &node.url("/v1/coordination/windows")).await else {
            continue;
        };
        for w in v["windows"].as_array().into_iter().flatten() {
            let block = w["coordination_block"].as_u64().unwrap_or(0);
            if block < first_block || block > last_block {
                continue;
            }
            let key = (w["group"].as_str().unwrap_or("").to_owned(), block);
            let s = seen.entry(key).or_default();
            s.leader = w["leader"].as_str().map(String::from);
            s.faults += w["faults"].as_array().map_or(0, |f| f.len());
            if let Some(p) = w["proposal"].as_object() {
                s.action = p.get("action").and_then(Value::as_str).map(String::from);
                s.accepted += 1;
            }
            if let (Some(at), Some(start)) = (w["accepted_at_ms"].as_u64(), block_start_ms) {
                s.latencies.push(at.saturating_sub(start(block)));
            }
        }
    }
    let mut r = CoordReport {
        windows: seen.len(),
        expected_acceptances: 0,
        acceptances: 0,
        faults: 0,
        leaders: BTreeMap::new(),
        actions: BTreeMap::new(),
        last_acceptance_ms: Vec::new(),
        acceptance_ms: Vec::new(),
    };
    for ((group, _), s) in &seen {
        let members = groups
            .iter()
            .find(|(g, _)| g.to_string() == *group)
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
            .as_ref()
            .and_then(|l| operators.iter().position(|o| o == l))
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
