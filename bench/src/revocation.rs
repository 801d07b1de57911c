//! Revocation latency (#4): an operator revokes a node key on-chain while the network carries
//! traffic; the time from the block that makes the revocation final to the last member closing
//! the revoked node's connections. It runs `conclave devnet --chain anvil` (nodes as separate
//! processes, anvil mining blocks) and reads the report the devnet writes.

use anyhow::Context;
use serde::Serialize;

use conclave_api::DevnetReport;

use crate::coordination::{repeat_devnet, traffic};
use crate::stats::Spread;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RevocationParams {
    pub members: usize,
    pub block_ms: u64,
}

#[derive(Serialize)]
pub struct RevocationRow {
    pub params: RevocationParams,
    pub conclave_bin: String,
    /// Final block → evicted by every member, per repetition (ms).
    pub runs: Vec<f64>,
    pub eviction_ms: Spread,
}

pub async fn measure(p: RevocationParams, reps: usize) -> anyhow::Result<RevocationRow> {
    let args = [
        "--chain".to_owned(),
        "anvil".into(),
        "--duration".into(),
        "6s".into(),
        "--nodes".into(),
        p.members.to_string(),
        "--block-time".into(),
        format!("{}ms", p.block_ms),
    ];
    let read = |report: &DevnetReport| {
        let ms = traffic(report)?.removal.eviction_ms.context(
            "the devnet's report has no eviction time: the revoked node was not evicted",
        )?;
        Ok(ms as f64)
    };
    let (bin, runs) = repeat_devnet(
        reps,
        &args,
        read,
        |r, ms: &f64| {
            eprintln!(
                "  revocation       members={} blocks={} ms rep {r}: evicted by every member {ms:.0} ms after the final block",
                p.members, p.block_ms
            )
        },
    )
    .await?;
    Ok(RevocationRow {
        params: p,
        conclave_bin: bin.display().to_string(),
        eviction_ms: Spread::of(runs.iter().copied()),
        runs,
    })
}
