//! The chain-source freeze scenario (#7): one member's chain source freezes on anvil while the
//! chain moves on; the time from the freeze to its fallback tip (headers members of f+1 operators
//! agree on) matching the members' tip, with the detection and the return to the source beside
//! it. It runs `conclave devnet --scenario stale-chain` (nodes as separate processes) and reads
//! the report the devnet writes.

use anyhow::bail;
use conclave_api::DevnetReport;
use serde::Serialize;

use crate::coordination::repeat_devnet;
use crate::stats::Spread;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct FallbackParams {
    pub members: usize,
    pub block_ms: u64,
}

/// One repetition, in ms from the freeze (the last from the source's return).
#[derive(Debug, Clone, Serialize)]
pub struct FallbackRun {
    pub raise_ms: f64,
    pub fallback_ms: f64,
    pub match_ms: f64,
    pub return_ms: f64,
    pub windows_on_fallback: u64,
}

#[derive(Serialize)]
pub struct FallbackRow {
    pub params: FallbackParams,
    pub conclave_bin: String,
    pub runs: Vec<FallbackRun>,
    pub raise_ms: Spread,
    pub fallback_ms: Spread,
    pub match_ms: Spread,
    pub return_ms: Spread,
}

/// A repetition's figures from the devnet's report.
fn read(report: &DevnetReport) -> anyhow::Result<FallbackRun> {
    let DevnetReport::StaleChain(r) = report else {
        bail!("expected the devnet's stale-chain report, got {report:?}");
    };
    Ok(FallbackRun {
        raise_ms: r.freeze_to_raise_ms as f64,
        fallback_ms: r.freeze_to_fallback_ms as f64,
        match_ms: r.freeze_to_match_ms as f64,
        return_ms: r.restore_to_source_ms as f64,
        windows_on_fallback: r.windows_on_fallback as u64,
    })
}

pub async fn measure(p: FallbackParams, reps: usize) -> anyhow::Result<FallbackRow> {
    let args = [
        "--scenario".to_owned(),
        "stale-chain".into(),
        "--duration".into(),
        "2s".into(),
        "--nodes".into(),
        p.members.to_string(),
        "--block-time".into(),
        format!("{}ms", p.block_ms),
    ];
    let (bin, runs) = repeat_devnet(
        reps,
        &args,
        read,
        |r, f: &FallbackRun| {
            eprintln!(
                "  chain freeze     members={} blocks={} ms rep {r}: raised {:.0} ms, on fallback {:.0} ms, tip matched {:.0} ms; back on source {:.0} ms after restore",
                p.members, p.block_ms, f.raise_ms, f.fallback_ms, f.match_ms, f.return_ms
            )
        },
    )
    .await?;
    Ok(FallbackRow {
        params: p,
        conclave_bin: bin.display().to_string(),
        raise_ms: Spread::of(runs.iter().map(|f| f.raise_ms)),
        fallback_ms: Spread::of(runs.iter().map(|f| f.fallback_ms)),
        match_ms: Spread::of(runs.iter().map(|f| f.match_ms)),
        return_ms: Spread::of(runs.iter().map(|f| f.return_ms)),
        runs,
    })
}
