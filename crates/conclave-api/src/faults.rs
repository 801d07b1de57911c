//! The fault scenarios' reports (`conclave devnet --scenario partition|restart`): what each
//! fault cost and how the network recovered, in figures.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::report::percentile;

/// Delivery of the messages a fault put at risk, to the members that could not receive them
/// while it lasted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtRisk {
    /// (message, receiver) pairs cut off by the fault.
    pub expected: u64,
    pub delivered: u64,
    /// Deliveries of one message to one receiver beyond the first.
    pub duplicates: u64,
    /// From the end of the fault (heal, restart) to the last of them delivered, ms.
    pub last_after_ms: Option<u64>,
    /// Up to ten that never arrived, described.
    pub missing: Vec<String>,
}

/// One fault scenario's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    pub ok: bool,
    /// `partition` or `restart`.
    pub kind: String,
    pub members: usize,
    /// What was done, in words (e.g. "split 4/3 for 20 s, blackholed").
    pub fault: String,
    /// Messages published during the whole run.
    pub published: u64,
    /// Every (message, receiver) pair of the run.
    pub expected: u64,
    pub delivered: u64,
    pub duplicates: u64,
    /// Up to ten (message, receiver) pairs of the run that never arrived, described.
    #[serde(default)]
    pub missing: Vec<String>,
    /// The pairs the fault put at risk.
    pub at_risk: AtRisk,
    /// From the end of the fault until every member was connected to every other again, ms.
    pub reconnected_after_ms: Option<u64>,
    /// Messages accepted through catch-up, summed over members.
    pub caught_up: u64,
    /// Catch-up protocol bytes sent and received, summed over members.
    pub catchup_bytes: u64,
    /// Latency of the deliveries before the fault, ms, sorted (the baseline).
    pub latency_before_ms: Vec<u64>,
    /// Anything else the scenario checked, as (what, held).
    pub checks: Vec<(String, bool)>,
}

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |v: Option<u64>| {
            v.map_or("never".to_string(), |v| {
                format!("{:.1} s", v as f64 / 1000.0)
            })
        };
        writeln!(
            f,
            "{} ({} members): {}",
            self.kind, self.members, self.fault
        )?;
        writeln!(
            f,
            "  delivered {}/{} (message, member) pairs of {} messages, {} duplicates",
            self.delivered, self.expected, self.published, self.duplicates
        )?;
        for m in &self.missing {
            writeln!(f, "    missing: {m}")?;
        }
        let r = &self.at_risk;
        writeln!(
            f,
            "  cut off by the fault: {}/{} delivered, {} duplicates, the last {} after it ended",
            r.delivered,
            r.expected,
            r.duplicates,
            ms(r.last_after_ms)
        )?;
        for m in &r.missing {
            writeln!(f, "    missing: {m}")?;
        }
        writeln!(
            f,
            "  reconnected {} after; {} messages caught up, {} catch-up bytes",
            ms(self.reconnected_after_ms),
            self.caught_up,
            self.catchup_bytes
        )?;
        let p = |q| percentile(&self.latency_before_ms, q);
        writeln!(
            f,
            "  latency before the fault: p50 {} ms, p99 {} ms",
            p(0.5),
            p(0.99)
        )?;
        write_checks(f, &self.checks, self.ok)
    }
}

/// A scenario's checks, one line each, and its result line.
pub(crate) fn write_checks(
    f: &mut fmt::Formatter<'_>,
    checks: &[(String, bool)],
    ok: bool,
) -> fmt::Result {
    for (what, held) in checks {
        writeln!(f, "  {}: {what}", if *held { "ok" } else { "FAILED" })?;
    }
    writeln!(f, "result            {}", if ok { "PASS" } else { "FAIL" })
}
