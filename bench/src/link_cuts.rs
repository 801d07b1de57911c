//! The link-cuts scenario (#22): 15 member processes, each on a host of its own (network
//! namespaces; needs root), with 0 %, 10 % and 30 % of the member pairs unable to reach each
//! other for the whole run. Delivery ratio and latency beside the run with no cut, in the same
//! harness run. It runs `conclave devnet --scenario link-cuts` and reads the report it writes.

use anyhow::bail;
use conclave_api::{percentile, DevnetReport, LinkCutsReport};
use serde::Serialize;

use crate::coordination::repeat_devnet;
use crate::stats::Spread;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LinkCutsParams {
    pub members: usize,
    /// Messages per second each member publishes.
    pub rate: u32,
    pub duration_s: u64,
    pub size: usize,
}

#[derive(Serialize)]
pub struct LinkCutsRow {
    pub params: LinkCutsParams,
    /// The share of member pairs cut apart.
    pub fraction: f64,
    pub pairs_cut: usize,
    pub conclave_bin: String,
    pub runs: Vec<LinkCutsReport>,
    /// Delivered over expected (message, member) pairs, %.
    pub delivered_pct: Spread,
    pub p50_ms: Spread,
    pub p99_ms: Spread,
    /// p99 of the deliveries between members cut apart.
    pub relayed_p99_ms: Spread,
}

fn read(report: &DevnetReport) -> anyhow::Result<LinkCutsReport> {
    match report {
        DevnetReport::LinkCuts(r) => Ok(r.clone()),
        other => bail!("expected the devnet's link-cuts report, got {other:?}"),
    }
}

pub async fn measure(p: LinkCutsParams, fraction: f64, reps: usize) -> anyhow::Result<LinkCutsRow> {
    let args = [
        "--scenario".to_owned(),
        "link-cuts".into(),
        "--nodes".into(),
        p.members.to_string(),
        "--cut-pairs".into(),
        fraction.to_string(),
        "--rate".into(),
        p.rate.to_string(),
        "--size".into(),
        p.size.to_string(),
        "--duration".into(),
        format!("{}s", p.duration_s),
    ];
    let (bin, runs) = repeat_devnet(reps, &args, read, |r, l: &LinkCutsReport| {
        eprintln!(
            "  link-cuts        n={} cut {:.0} % ({} pairs) rep {r}: delivered {:.2} %, p50 {} ms, p99 {} ms; cut-apart pairs p99 {} ms",
            p.members,
            fraction * 100.0,
            l.cut.len(),
            l.delivery_ratio() * 100.0,
            percentile(&l.latency_ms, 0.5),
            percentile(&l.latency_ms, 0.99),
            percentile(&l.relayed_latency_ms, 0.99)
        )
    })
    .await?;
    let s = |g: &dyn Fn(&LinkCutsReport) -> f64| Spread::of(runs.iter().map(g));
    Ok(LinkCutsRow {
        params: p,
        fraction,
        pairs_cut: runs.first().map_or(0, |r| r.cut.len()),
        conclave_bin: bin.display().to_string(),
        delivered_pct: s(&|r| r.delivery_ratio() * 100.0),
        p50_ms: s(&|r| percentile(&r.latency_ms, 0.5) as f64),
        p99_ms: s(&|r| percentile(&r.latency_ms, 0.99) as f64),
        relayed_p99_ms: s(&|r| percentile(&r.relayed_latency_ms, 0.99) as f64),
        runs,
    })
}

/// The Markdown section: every cut share beside the run with none.
pub fn markdown(rows: &[LinkCutsRow], f: impl Fn(&Spread) -> String) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let p = first.params;
    let mut s = format!(
        "\n## Link cuts (`conclave devnet --scenario link-cuts`, {} member processes on hosts of their own, {} msg/s per member, {} B, {} s, {} repetition(s))\n\n\
         | pairs cut | delivered % | p50 ms | p99 ms | p99 between cut-apart pairs ms |\n|---|---|---|---|---|\n",
        p.members,
        p.rate,
        p.size,
        p.duration_s,
        first.runs.len()
    );
    for row in rows {
        s.push_str(&format!(
            "| {:.0} % ({}) | {} | {} | {} | {} |\n",
            row.fraction * 100.0,
            row.pairs_cut,
            f(&row.delivered_pct),
            f(&row.p50_ms),
            f(&row.p99_ms),
            f(&row.relayed_p99_ms),
        ));
    }
    s
}
