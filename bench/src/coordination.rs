//! The coordination-completion scenario (#4): a tBTC-sized group (100 seats over 15 members) runs
//! coordination windows on a clock chain; per window, the time from the coordination block's start
//! to the last follower's acceptance, and what each member process cost (peak RSS, CPU time).
//! It runs `conclave devnet` (nodes as separate processes) and reads the report the devnet
//! writes, so what is measured is exactly what operators run.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};
use conclave_api::{DevnetReport, TrafficReport};
use serde::Serialize;

use crate::stats::{percentile, Spread};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct CoordinationParams {
    /// Members (the devnet adds one member it removes midway, and an intruder).
    pub members: usize,
    pub group_seats: usize,
    pub duration_s: u64,
    /// Background traffic per member (msg/s) while windows run.
    pub rate: f64,
}

/// One repetition: per settled window, block start → last follower's acceptance; and the
/// background broadcast's delivery latency, nodes as separate processes.
#[derive(Debug, Clone, Serialize)]
pub struct CoordinationRun {
    pub windows: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub broadcast_p50_ms: f64,
    pub broadcast_p99_ms: f64,
    pub broadcast_delivered: f64,
    /// Per member process over the run: peak RSS (median and max over the members, MiB) and
    /// CPU time (median, s).
    pub node_peak_rss_mib: f64,
    pub node_peak_rss_max_mib: f64,
    pub node_cpu_s: f64,
}

#[derive(Serialize)]
pub struct CoordinationRow {
    pub params: CoordinationParams,
    /// The binary measured (a release build, unless the path says otherwise).
    pub conclave_bin: String,
    pub runs: Vec<CoordinationRun>,
    pub p50_ms: Spread,
    pub p99_ms: Spread,
    pub max_ms: Spread,
    pub broadcast_p50_ms: Spread,
    pub broadcast_p99_ms: Spread,
    pub node_peak_rss_mib: Spread,
    pub node_peak_rss_max_mib: Spread,
    pub node_cpu_s: Spread,
}

/// The `conclave` binary: `$CONCLAVE_BIN`, else the one built beside this harness.
pub fn conclave_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("CONCLAVE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("conclave");
    if !bin.exists() {
        bail!(
            "the devnet scenarios run the `conclave` binary, expected at {} \
             (build it with `cargo build --release -p conclave-cli`, or set CONCLAVE_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Runs `conclave devnet <args> --report <scratch>/devnet-report.json` and returns the report,
/// refusing a run that failed or reported `ok: false` (with the end of its output).
async fn run_devnet(bin: &Path, scratch: &Path, args: &[String]) -> anyhow::Result<DevnetReport> {
    let report = scratch.join("devnet-report.json");
    let _ = std::fs::remove_file(&report);
    let out = tokio::process::Command::new(bin)
        .arg("devnet")
        .args(args)
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null())
        // The harness's own setting, not node configuration: a node refuses unknown
        // `CONCLAVE_*` variables.
        .env_remove("CONCLAVE_BIN")
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {} devnet {}", bin.display(), args.join(" ")))?;
    let tail = || {
        let last = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        format!(
            "{}\n(stderr:)\n{}\n({})",
            last(&out.stdout),
            last(&out.stderr),
            out.status
        )
    };
    let text = std::fs::read_to_string(&report).with_context(|| {
        format!(
            "the devnet wrote no report; its output ended with:\n{}",
            tail()
        )
    })?;
    let report: DevnetReport = serde_json::from_str(&text).with_context(|| {
        format!(
            "the devnet report {} is not a conclave_api::DevnetReport (a devnet of another version?)",
            report.display()
        )
    })?;
    if !report.ok() || !out.status.success() {
        bail!("the devnet failed; its output ended with:\n{}", tail());
    }
    Ok(report)
}

/// The traffic report inside `report`, or an error naming the scenario that ran instead.
pub(crate) fn traffic(report: &DevnetReport) -> anyhow::Result<&TrafficReport> {
    match report {
        DevnetReport::Traffic(t) => Ok(t),
        other => bail!("expected the devnet's traffic report, got {other:?}"),
    }
}

/// Sorted as floats, for the percentile helpers.
fn sorted(xs: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut xs: Vec<f64> = xs.into_iter().collect();
    xs.sort_by(f64::total_cmp);
    xs
}

/// A repetition's figures from the devnet's report.
fn read(report: &DevnetReport) -> anyhow::Result<CoordinationRun> {
    let t = traffic(report)?;
    let last = sorted(t.coordination.last_acceptance_ms.iter().map(|&x| x as f64));
    if last.is_empty() {
        bail!("the devnet settled no coordination window with a measured acceptance");
    }
    let d = &t.delivery;
    let latency = sorted(d.latency_ms.iter().map(|&x| x as f64));
    if t.nodes.is_empty() {
        bail!("the devnet measured no node's usage (no /proc here?)");
    }
    let rss = sorted(t.nodes.iter().map(|u| u.peak_rss_kib as f64));
    let cpu = sorted(t.nodes.iter().map(|u| u.cpu_s));
    Ok(CoordinationRun {
        node_peak_rss_mib: percentile(&rss, 0.5) / 1024.0,
        node_peak_rss_max_mib: rss[rss.len() - 1] / 1024.0,
        node_cpu_s: percentile(&cpu, 0.5),
        windows: last.len(),
        p50_ms: percentile(&last, 0.5),
        p99_ms: percentile(&last, 0.99),
        max_ms: last[last.len() - 1],
        broadcast_p50_ms: percentile(&latency, 0.5),
        broadcast_p99_ms: percentile(&latency, 0.99),
        broadcast_delivered: if d.expected > 0 {
            d.delivered as f64 / d.expected as f64
        } else {
            0.0
        },
    })
}

/// Runs `conclave devnet <args>` `reps` times, each in a fresh scratch directory, reads each
/// report with `read` and logs it; stops at the first failure (a configuration with a failed
/// repetition is not reported). Returns the binary measured and the runs.
pub(crate) async fn repeat_devnet<T>(
    reps: usize,
    args: &[String],
    read: impl Fn(&DevnetReport) -> anyhow::Result<T>,
    mut log: impl FnMut(usize, &T),
) -> anyhow::Result<(PathBuf, Vec<T>)> {
    let bin = conclave_bin()?;
    let scratch = std::env::temp_dir().join(format!("conclave-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mut runs = Vec::new();
    let mut failure = None;
    for r in 0..reps {
        match run_devnet(&bin, &scratch, args)
            .await
            .and_then(|v| read(&v))
        {
            Ok(f) => {
                log(r + 1, &f);
                runs.push(f);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    match failure {
        Some(e) => Err(e),
        None => Ok((bin, runs)),
    }
}

pub async fn measure(p: CoordinationParams, reps: usize) -> anyhow::Result<CoordinationRow> {
    let args = [
        "--nodes".to_owned(),
        (p.members + 1).to_string(),
        "--group-seats".into(),
        p.group_seats.to_string(),
        "--rate".into(),
        p.rate.to_string(),
        "--duration".into(),
        format!("{}s", p.duration_s),
    ];
    let (bin, runs) = repeat_devnet(
        reps,
        &args,
        read,
        |r, f: &CoordinationRun| {
            eprintln!(
                "  coordination     members={} seats={} rep {r}: {} windows, last follower p50 {:.0} ms p99 {:.0} ms max {:.0} ms; broadcast p50 {:.1} ms p99 {:.1} ms delivered {:.4}; per node peak RSS {:.1} MiB (max {:.1}), CPU {:.2} s",
                p.members, p.group_seats, f.windows, f.p50_ms, f.p99_ms, f.max_ms,
                f.broadcast_p50_ms, f.broadcast_p99_ms, f.broadcast_delivered,
                f.node_peak_rss_mib, f.node_peak_rss_max_mib, f.node_cpu_s
            )
        },
    )
    .await?;
    Ok(CoordinationRow {
        params: p,
        conclave_bin: bin.display().to_string(),
        p50_ms: Spread::of(runs.iter().map(|f| f.p50_ms)),
        p99_ms: Spread::of(runs.iter().map(|f| f.p99_ms)),
        max_ms: Spread::of(runs.iter().map(|f| f.max_ms)),
        broadcast_p50_ms: Spread::of(runs.iter().map(|f| f.broadcast_p50_ms)),
        broadcast_p99_ms: Spread::of(runs.iter().map(|f| f.broadcast_p99_ms)),
        node_peak_rss_mib: Spread::of(runs.iter().map(|f| f.node_peak_rss_mib)),
        node_peak_rss_max_mib: Spread::of(runs.iter().map(|f| f.node_peak_rss_max_mib)),
        node_cpu_s: Spread::of(runs.iter().map(|f| f.node_cpu_s)),
        runs,
    })
}
