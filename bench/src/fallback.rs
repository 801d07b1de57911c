//! The chain-source freeze scenario (#7): one member's chain source freezes on anvil while the
//! chain moves on; the time from the freeze to its fallback tip (headers members of f+1 operators
//! agree on) matching the members' tip, with the detection and the return to the source beside
//! it. It runs `conclave devnet --scenario stale-chain` (nodes as separate processes) and reads
//! the report the devnet writes.

use anyhow::Context;
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

fn field(v: &serde_json::Value, name: &str) -> anyhow::Result<f64> {
    v[name]
        .as_f64()
        .with_context(|| format!("report field {name}: expected a number in {v}"))
}

/// A repetition's figures from the devnet's report.
fn read(v: &serde_json::Value) -> anyhow::Result<FallbackRun> {
    Ok(FallbackRun {
        raise_ms: field(v, "freeze_to_raise_ms")?,
        fallback_ms: field(v, "freeze_to_fallback_ms")?,
        match_ms: field(v, "freeze_to_match_ms")?,
        return_ms: field(v, "restore_to_source_ms")?,
        windows_on_fallback: v["windows_on_fallback"].as_u64().unwrap_or(0),
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
