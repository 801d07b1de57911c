//! What `conclave devnet --report <file>` writes and the benchmark harness reads. `Display`
//! prints the same report as the operator-facing summary, so the summary and the file cannot
//! disagree.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One devnet run's outcome, by scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "kebab-case")]
// One report per run, moved once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum DevnetReport {
    /// The main job: traffic, an intruder, a removal, coordination and the anonymous channel.
    Traffic(TrafficReport),
    /// A member's chain source freezes; it follows the members' headers and returns.
    StaleChain(StaleChainReport),
    /// Curious members try to name the authors of anonymous messages.
    Anonymity(crate::AnonymityReport),
    /// A network partition or a crashed member, and the recovery.
    Fault(crate::FaultReport),
    /// Member pairs that cannot reach each other, and delivery through the others.
    LinkCuts(crate::LinkCutsReport),
    /// sBTC's registry on a Clarity VM: the signer set rotates mid-run.
    StacksRotation(StacksRotationReport),
}

impl DevnetReport {
    /// Whether every expectation of the run held.
    pub fn ok(&self) -> bool {
        match self {
            DevnetReport::Traffic(r) => r.ok,
            DevnetReport::StaleChain(r) => r.ok,
            DevnetReport::Anonymity(r) => r.ok,
            DevnetReport::Fault(r) => r.ok,
            DevnetReport::LinkCuts(r) => r.ok,
            DevnetReport::StacksRotation(r) => r.ok,
        }
    }
}

/// The main devnet job's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficReport {
    pub ok: bool,
    pub setup: TrafficSetup,
    /// From the first spawn to every member connected to every other.
    pub mesh_ready_ms: u64,
    pub delivery: DeliveryReport,
    pub intruder: IntruderReport,
    /// With a chain: node-0 rotating to a new key mid-run.
    pub rotation: Option<RotationReport>,
    pub removal: RemovalReport,
    pub coordination: CoordinationReport,
    /// The anonymous channel's phase; none with fewer than 4 members.
    pub rln: Option<RlnReport>,
    /// What each member process cost over the whole run.
    pub nodes: Vec<NodeUsage>,
    /// With `--cold-keys offline`: who signed and who submitted every operator action.
    #[serde(default)]
    pub cold_keys: Option<crate::ColdKeysReport>,
    /// With `--rln-validators`: the memberships validators registered, and the forgeries.
    #[serde(default)]
    pub validators: Option<crate::ValidatorsReport>,
}

/// How the run was set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSetup {
    pub members: usize,
    /// The on-chain registry (anvil), when used; otherwise a registry file.
    pub chain: Option<ChainSetup>,
    pub duration_ms: u64,
    /// Messages per second per member.
    pub rate: u32,
    /// Payload bytes.
    pub size: usize,
}

/// The devnet chain's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSetup {
    pub block_ms: u64,
    pub confirmations: u64,
}

/// The signed channel's delivery, counted per (message, receiver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub expected: u64,
    pub delivered: u64,
    pub duplicates: u64,
    /// Messages subscribers missed because they read too slowly.
    pub lagged: u64,
    /// Every delivery's latency, sorted.
    pub latency_ms: Vec<u64>,
    /// Up to ten missing deliveries, described.
    pub missing: Vec<String>,
}

impl DeliveryReport {
    /// Delivered over expected, in percent (0 when nothing was expected).
    pub fn percent(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.delivered as f64 * 100.0 / self.expected as f64
        }
    }
}

/// A stranger's node with a valid key that no registry names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntruderReport {
    /// Connections the members refused as `not_member`.
    pub refused: u64,
    /// Peers it ended up connected to.
    pub peers: usize,
    /// Members' messages it received.
    pub received: u64,
    /// Its messages members delivered, of its attempts.
    pub delivered: u64,
    pub attempts: u64,
}

/// node-0's key rotation (chain only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationReport {
    /// The new peer id.
    pub to: String,
    /// From the rotation being mined to the members accepting the new key.
    pub after_ms: Option<u64>,
}

/// The removal (file) or revocation (chain) of one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalReport {
    pub victim: usize,
    /// Revoked on a chain (true) or removed from the registry file.
    pub on_chain: bool,
    /// From the cause to every member having evicted it.
    pub eviction_ms: Option<u64>,
    /// Its messages after the removal that members delivered, of those it sent.
    pub later_delivered: u64,
    pub later_sent: u64,
    /// Peers it was still connected to at the end.
    pub peers: usize,
}

/// What the members settled, window by window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinationReport {
    /// Seats of the first group.
    pub group_seats: usize,
    pub windows: usize,
    pub expected_acceptances: usize,
    pub acceptances: usize,
    pub faults: usize,
    /// Leaders by member index, with how many windows each led.
    #[serde(deserialize_with = "index_keyed")]
    pub leaders: BTreeMap<usize, usize>,
    /// Proposed actions with how often each was proposed.
    pub actions: BTreeMap<String, usize>,
    /// Per window, coordination block start → the last follower's acceptance (ms); clock chain
    /// only.
    pub last_acceptance_ms: Vec<u64>,
    /// Every follower's acceptance latency (ms); clock chain only.
    pub acceptance_ms: Vec<u64>,
}

/// Reads a map keyed by member index. JSON writes the keys as strings, and inside the internally
/// tagged [`DevnetReport`] serde hands them over buffered, no longer parsed as numbers.
fn index_keyed<'de, D>(d: D) -> Result<BTreeMap<usize, usize>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    BTreeMap::<String, usize>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| {
            k.parse()
                .map(|k| (k, v))
                .map_err(|_| serde::de::Error::custom(format!("`{k}` is no member index")))
        })
        .collect()
}

impl CoordinationReport {
    /// Windows were settled, all with the proposal and without faults.
    pub fn ok(&self) -> bool {
        self.windows > 0 && self.faults == 0 && self.acceptances == self.expected_acceptances
    }
}

/// The anonymous channel's phase: posts, then a double signal and its removal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlnReport {
    pub spammer: usize,
    /// The member that holds the same identity and so double-signals.
    pub twin: usize,
    pub posted: usize,
    pub expected: usize,
    pub delivered: usize,
    /// Members that removed the spammer, of those asked.
    pub removed_by: usize,
    pub members: usize,
    pub removal_ms: Option<u64>,
    /// The spammer's node refused its next publish (it is no longer a member).
    pub refused_after: bool,
    pub proof_ms: Vec<u64>,
    /// With the on-chain registry: how the removal reached the contract.
    pub onchain: Option<OnchainRemovalReport>,
}

impl RlnReport {
    /// Every post delivered, the double signal removed everywhere and on-chain by one node.
    pub fn ok(&self) -> bool {
        self.posted > 0
            && self.delivered == self.expected
            && self.removed_by == self.members
            && self.refused_after
            && self
                .onchain
                .as_ref()
                .is_none_or(|c| c.removed && c.submitted == 1.0)
    }
}

/// The slashed membership's removal from the registry contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnchainRemovalReport {
    pub removed: bool,
    /// Members whose node sent the transaction (one, when turns work), and members that found
    /// it already done; each member counts once its turn is over.
    pub submitted: f64,
    pub already_removed: f64,
    /// From the double signal to the removal being on-chain.
    pub removal_ms: Option<u64>,
}

/// What a node process cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodeUsage {
    /// Peak resident set (VmHWM).
    pub peak_rss_kib: u64,
    /// User + system CPU time.
    pub cpu_s: f64,
}

/// The stale-chain scenario's timings, each from the freeze (or the restore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleChainReport {
    pub ok: bool,
    pub nodes: usize,
    pub block_ms: u64,
    pub freeze_to_raise_ms: u64,
    pub freeze_to_fallback_ms: u64,
    pub freeze_to_match_ms: u64,
    pub windows_on_fallback: usize,
    pub restore_to_source_ms: u64,
}

/// The Stacks registry scenario: a rotation of the contract's signer set, one signer out and
/// one in, timed from the contract call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StacksRotationReport {
    pub ok: bool,
    /// Signers in the set before and after the rotation.
    pub signers: usize,
    /// The simnet block the rotate-keys call was mined in.
    pub rotation_block: u64,
    pub rotation_to_last_connection_closed_ms: u64,
    /// Until the new signer was connected to every remaining one.
    pub rotation_to_admitted_ms: u64,
    /// Connections the removed signer held at most, counted on both sides, while it was
    /// watched for 3 s after its eviction (0 expected).
    pub removed_reconnections: u64,
    /// Messages published after the rotation that reached the removed signer (0 expected).
    pub removed_delivered_after: u64,
    /// Messages published after the rotation by the remaining signers that reached the new one.
    pub joiner_delivered_after: u64,
}

/// The `q` quantile of an ascending slice (nearest rank); 0 when empty.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

impl fmt::Display for TrafficReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.setup;
        let backend = match s.chain {
            Some(c) => format!(
                "on-chain registry (anvil, {} ms blocks, {} confirmations)",
                c.block_ms, c.confirmations
            ),
            None => "registry file".to_owned(),
        };
        writeln!(
            f,
            "Conclave devnet summary — {} members, {backend}, {:?} of traffic, {} msg/s per member, {} B payloads",
            s.members,
            std::time::Duration::from_millis(s.duration_ms),
            s.rate,
            s.size
        )?;
        writeln!(
            f,
            "  mesh ready        {:.1} s after start",
            self.mesh_ready_ms as f64 / 1000.0
        )?;
        let d = &self.delivery;
        writeln!(
            f,
            "  delivery          {} / {} ({:.2} %), {} duplicates, {} lagged",
            d.delivered,
            d.expected,
            d.percent(),
            d.duplicates,
            d.lagged
        )?;
        let l = &d.latency_ms;
        writeln!(
            f,
            "  latency           p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
            percentile(l, 0.5),
            percentile(l, 0.9),
            percentile(l, 0.99),
            l.last().copied().unwrap_or(0)
        )?;
        let i = &self.intruder;
        writeln!(
            f,
            "  intruder          refused {} times by members; connected peers {}; received {}; delivered {} of {} attempts",
            i.refused, i.peers, i.received, i.delivered, i.attempts
        )?;
        if s.chain.is_some() {
            match &self.rotation {
                Some(RotationReport { to, after_ms: Some(ms) }) => writeln!(
                    f,
                    "  rotation          node-0 moved to {to} {ms} ms after the rotation was mined; its messages are in the delivery count"
                )?,
                _ => writeln!(f, "  rotation          node-0 did NOT move to its new key")?,
            }
        }
        self.removal.fmt(f)?;
        self.coordination.fmt(f)?;
        match &self.rln {
            Some(r) => r.fmt(f)?,
            None => writeln!(f, "  rln               not run (needs at least 4 nodes)")?,
        }
        if let Some(c) = &self.cold_keys {
            c.fmt(f)?;
        }
        if let Some(v) = &self.validators {
            v.fmt(f)?;
        }
        if !self.nodes.is_empty() {
            let mut rss: Vec<u64> = self.nodes.iter().map(|u| u.peak_rss_kib).collect();
            rss.sort_unstable();
            let mut cpu: Vec<u64> = self
                .nodes
                .iter()
                .map(|u| (u.cpu_s * 1000.0) as u64)
                .collect();
            cpu.sort_unstable();
            writeln!(
                f,
                "  per node          peak RSS p50 {:.1} MiB, max {:.1} MiB; CPU p50 {:.2} s, max {:.2} s (whole run, {} processes)",
                percentile(&rss, 0.5) as f64 / 1024.0,
                *rss.last().unwrap_or(&0) as f64 / 1024.0,
                percentile(&cpu, 0.5) as f64 / 1000.0,
                *cpu.last().unwrap_or(&0) as f64 / 1000.0,
                self.nodes.len()
            )?;
        }
        for m in &d.missing {
            writeln!(f, "  missing           {m}")?;
        }
        writeln!(
            f,
            "  result            {}",
            if self.ok { "PASS" } else { "FAIL" }
        )
    }
}

impl fmt::Display for RemovalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, cause) = if self.on_chain {
            ("revocation", "the block that made the revocation final")
        } else {
            ("removal", "the registry edit")
        };
        match self.eviction_ms {
            Some(ms) => writeln!(
                f,
                "  {what:<17} node-{} evicted by all members {ms} ms after {cause}",
                self.victim
            )?,
            None => writeln!(f, "  {what:<17} node-{} was NOT evicted", self.victim)?,
        }
        writeln!(
            f,
            "  removed node      {} of {} later messages delivered; connected peers {}",
            self.later_delivered, self.later_sent, self.peers
        )
    }
}

impl fmt::Display for CoordinationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leaders: Vec<String> = self
            .leaders
            .iter()
            .map(|(i, k)| format!("node-{i}×{k}"))
            .collect();
        let actions: Vec<String> = self
            .actions
            .iter()
            .map(|(a, k)| format!("{a}×{k}"))
            .collect();
        writeln!(
            f,
            "  coordination      {} windows in 2 groups; leaders {}; proposals {}; settled with the proposal {} / {}; faults {}",
            self.windows,
            leaders.join(" "),
            actions.join(" "),
            self.acceptances,
            self.expected_acceptances,
            self.faults
        )?;
        if !self.last_acceptance_ms.is_empty() {
            let (last, all) = (&self.last_acceptance_ms, &self.acceptance_ms);
            writeln!(
                f,
                "  coord. latency    block start → last follower's acceptance p50 {} ms, p99 {} ms, max {} ms; any follower p50 {} ms, p99 {} ms ({} acceptances; group 1 has {} seats)",
                percentile(last, 0.5),
                percentile(last, 0.99),
                last.last().copied().unwrap_or(0),
                percentile(all, 0.5),
                percentile(all, 0.99),
                all.len(),
                self.group_seats
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for RlnReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut proofs = self.proof_ms.clone();
        proofs.sort_unstable();
        writeln!(
            f,
            "  rln               anonymous posts delivered {} / {}; proofs {} ms each (median)",
            self.delivered,
            self.expected,
            percentile(&proofs, 0.5)
        )?;
        writeln!(
            f,
            "  rln slashing      node-{}'s identity (also on node-{}) double signalled: removed by {} / {} members{}; its next post {}",
            self.spammer,
            self.twin,
            self.removed_by,
            self.members,
            self.removal_ms
                .map(|ms| format!(" {ms} ms after"))
                .unwrap_or_default(),
            if self.refused_after { "refused" } else { "NOT refused" }
        )?;
        if let Some(c) = &self.onchain {
            writeln!(
                f,
                "  rln on-chain      slashRln {}{}: {} node submitted, {} found it done",
                if c.removed { "landed" } else { "NOT landed" },
                c.removal_ms
                    .map(|ms| format!(" {ms} ms after the double signal"))
                    .unwrap_or_default(),
                c.submitted,
                c.already_removed
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_as_written_and_names_its_scenario() {
        let report = DevnetReport::StaleChain(StaleChainReport {
            ok: true,
            nodes: 4,
            block_ms: 500,
            freeze_to_raise_ms: 1500,
            freeze_to_fallback_ms: 2000,
            freeze_to_match_ms: 2100,
            windows_on_fallback: 3,
            restore_to_source_ms: 900,
        });
        let text = serde_json::to_string(&report).unwrap();
        assert!(text.contains("\"scenario\":\"stale-chain\""), "{text}");
        let back: DevnetReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        assert!(back.ok());
    }

    #[test]
    fn a_traffic_report_reads_back_with_its_leaders() {
        let report = DevnetReport::Traffic(TrafficReport {
            ok: true,
            setup: TrafficSetup {
                members: 4,
                chain: None,
                duration_ms: 8000,
                rate: 10,
                size: 256,
            },
            mesh_ready_ms: 400,
            delivery: DeliveryReport {
                expected: 2,
                delivered: 2,
                duplicates: 0,
                lagged: 0,
                latency_ms: vec![3, 4],
                missing: Vec::new(),
            },
            intruder: IntruderReport {
                refused: 3,
                peers: 0,
                received: 0,
                delivered: 0,
                attempts: 5,
            },
            rotation: None,
            removal: RemovalReport {
                victim: 3,
                on_chain: false,
                eviction_ms: Some(40),
                later_delivered: 0,
                later_sent: 7,
                peers: 0,
            },
            coordination: CoordinationReport {
                windows: 3,
                leaders: BTreeMap::from([(0, 2), (2, 1)]),
                ..CoordinationReport::default()
            },
            rln: None,
            nodes: vec![NodeUsage {
                peak_rss_kib: 50_000,
                cpu_s: 1.5,
            }],
            cold_keys: None,
            validators: None,
        });
        let text = serde_json::to_string(&report).unwrap();
        let back: DevnetReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[1, 2, 3, 4, 5], 0.5), 3);
        assert_eq!(percentile(&[1, 2, 3, 4, 5], 0.99), 5);
    }
}
