//! The link-cuts scenario's report (`conclave devnet --scenario link-cuts`): a fixed share of
//! member pairs cannot reach each other for the whole run, and every message must still reach
//! every member, through the others.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::report::percentile;

/// One link-cuts run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkCutsReport {
    pub ok: bool,
    pub members: usize,
    /// The share of member pairs asked to be cut, and the pairs cut (node indices).
    pub fraction: f64,
    pub cut: Vec<(usize, usize)>,
    /// Messages per second each member published.
    pub rate: u32,
    pub published: u64,
    /// Every (message, receiver) pair of the run, and those delivered.
    pub expected: u64,
    pub delivered: u64,
    pub duplicates: u64,
    /// Up to ten (message, receiver) pairs that never arrived, described.
    pub missing: Vec<String>,
    /// Of them, the pairs whose sender and receiver were cut apart (delivered through others).
    pub relayed_expected: u64,
    pub relayed_delivered: u64,
    /// Publish → delivery latency of every delivery, ms, sorted.
    pub latency_ms: Vec<u64>,
    /// Publish → delivery latency of the deliveries between cut-apart pairs, ms, sorted.
    pub relayed_latency_ms: Vec<u64>,
    /// Cut-apart pairs found connected at some check (must stay empty).
    pub connected_across_cuts: Vec<(usize, usize)>,
    /// Anything else the scenario checked, as (what, held).
    pub checks: Vec<(String, bool)>,
}

impl LinkCutsReport {
    /// Deliveries over (message, receiver) pairs.
    pub fn delivery_ratio(&self) -> f64 {
        if self.expected == 0 {
            return 0.0;
        }
        self.delivered as f64 / self.expected as f64
    }
}

impl fmt::Display for LinkCutsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = self.members * self.members.saturating_sub(1) / 2;
        writeln!(
            f,
            "link-cuts ({} members): {} of {} member pairs cut ({:.0} % asked), {} msg/s per member",
            self.members,
            self.cut.len(),
            pairs,
            self.fraction * 100.0,
            self.rate
        )?;
        writeln!(
            f,
            "  delivered {}/{} (message, member) pairs ({:.2} %) of {} messages, {} duplicates",
            self.delivered,
            self.expected,
            self.delivery_ratio() * 100.0,
            self.published,
            self.duplicates
        )?;
        for m in &self.missing {
            writeln!(f, "    missing: {m}")?;
        }
        let p = |v: &[u64], q| percentile(v, q);
        writeln!(
            f,
            "  latency p50 {} ms, p99 {} ms; between cut-apart pairs ({}/{} delivered, through others) p50 {} ms, p99 {} ms",
            p(&self.latency_ms, 0.5),
            p(&self.latency_ms, 0.99),
            self.relayed_delivered,
            self.relayed_expected,
            p(&self.relayed_latency_ms, 0.5),
            p(&self.relayed_latency_ms, 0.99)
        )?;
        crate::faults::write_checks(f, &self.checks, self.ok)
    }
}
