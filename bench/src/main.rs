//! `conclave-bench`: Conclave beside its baselines, in one run, on this machine.
//!
//! Place in the project: it drives `conclave-net` (the production network service) and the
//! baselines through the same scenarios and writes machine-readable results (JSON) and a Markdown
//! summary under `bench/results/`. Every figure is the median of the repetitions, with min and max;
//! a run where a baseline fails is not reported.
//!
//! Systems so far: Conclave and baseline (a), plain rust-libp2p gossipsub. Scenarios so far:
//! broadcast latency at a fixed offered rate (in-process nodes on TCP loopback), coordination
//! completion (`conclave devnet`, nodes as separate processes) and RLN proofs (Conclave's proof
//! pool beside zerokit called directly).

mod broadcast;
mod cluster;
mod conclave;
mod coordination;
mod plain;
mod rln_proofs;
mod stats;

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use serde::Serialize;

use broadcast::BroadcastParams;
use coordination::{CoordinationParams, CoordinationRow};
use stats::{RunFigures, Spread};

#[derive(Parser)]
#[command(
    name = "conclave-bench",
    about = "Conclave beside its baselines, in one run"
)]
struct Args {
    /// A smoke run (under 3 minutes): broadcast at N = 4 and 15, 1 KiB, 100 msg/s, 3 s per
    /// repetition; coordination on 7 members; a few RLN proofs.
    #[arg(long)]
    quick: bool,
    /// Repetitions per configuration (figures are their median).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Where results go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Scenarios to run (default: all).
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Broadcast,
    Coordination,
    Rln,
}

#[derive(Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum System {
    Conclave,
    PlainGossipsub,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Conclave => "conclave",
            System::PlainGossipsub => "plain-gossipsub",
        }
    }
}

#[derive(Serialize)]
struct Row {
    system: System,
    params: BroadcastParams,
    runs: Vec<RunFigures>,
    p50_ms: Spread,
    p95_ms: Spread,
    p99_ms: Spread,
    max_ms: Spread,
    delivery_ratio: Spread,
}

#[derive(Serialize)]
struct Report {
    date_unix: u64,
    commit: String,
    machine: serde_json::Value,
    reps: usize,
    rows: Vec<Row>,
    coordination: Vec<CoordinationRow>,
    rln: Vec<rln_proofs::RlnRow>,
}

const MAX_MESSAGE: usize = 64 * 1024;

async fn measure(system: System, p: BroadcastParams, reps: usize) -> anyhow::Result<Row> {
    let mut runs = Vec::new();
    for r in 0..reps {
        let cluster = match system {
            System::Conclave => conclave::start(p.nodes, MAX_MESSAGE).await,
            System::PlainGossipsub => plain::start(p.nodes, MAX_MESSAGE).await,
        }
        .with_context(|| format!("{} with {} nodes", system.name(), p.nodes))?;
        let f = broadcast::run(cluster, p).await.figures();
        eprintln!(
            "  {:<16} n={:<3} {:>5} B {:>4} msg/s rep {}: p50 {:.2} ms p99 {:.2} ms max {:.2} ms delivered {:.4}",
            system.name(), p.nodes, p.size, p.rate, r + 1, f.p50_ms, f.p99_ms, f.max_ms, f.delivery_ratio
        );
        runs.push(f);
    }
    let spread = |g: fn(&RunFigures) -> f64| Spread::of(runs.iter().map(g));
    Ok(Row {
        system,
        params: p,
        p50_ms: spread(|f| f.p50_ms),
        p95_ms: spread(|f| f.p95_ms),
        p99_ms: spread(|f| f.p99_ms),
        max_ms: spread(|f| f.max_ms),
        delivery_ratio: spread(|f| f.delivery_ratio),
        runs,
    })
}

fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# Conclave benchmark — commit {}\n\nMachine: {}. Each figure: median of {} repetitions (min–max).\n",
        r.commit, r.machine, r.reps
    );
    let f = |x: &Spread| format!("{:.2} ({:.2}–{:.2})", x.median, x.min, x.max);
    if !r.rows.is_empty() {
        s.push_str(
            "\n## Broadcast latency (in-process nodes, TCP loopback)\n\n\
             | system | nodes | size | offered msg/s | p50 ms | p99 ms | max ms | delivered |\n|---|---|---|---|---|---|---|---|\n",
        );
    }
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {} B | {} | {} | {} | {} | {:.4} |\n",
            row.system.name(),
            row.params.nodes,
            row.params.size,
            row.params.rate,
            f(&row.p50_ms),
            f(&row.p99_ms),
            f(&row.max_ms),
            row.delivery_ratio.median
        ));
    }
    if !r.coordination.is_empty() {
        s.push_str(
            "\n## Coordination completion (`conclave devnet`, separate processes, 100 ms clock blocks)\n\n\
             Per window: coordination block start → the last follower's acceptance.\n\n\
             | members | group seats | background msg/s/member | windows | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n",
        );
    }
    for row in &r.coordination {
        let windows: Vec<String> = row.runs.iter().map(|x| x.windows.to_string()).collect();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            row.params.members,
            row.params.group_seats,
            row.params.rate,
            windows.join("/"),
            f(&row.p50_ms),
            f(&row.p99_ms),
            f(&row.max_ms),
        ));
    }
    if !r.rln.is_empty() {
        s.push_str(
            "\n## RLN proofs (zerokit rln 3.0.0, depth-20 tree, one proof at a time)\n\n\
             | | p50 ms | p99 ms |\n|---|---|---|\n",
        );
    }
    for row in &r.rln {
        for (what, p50, p99) in [
            (
                "prove: zerokit directly",
                &row.zerokit_prove_p50_ms,
                &row.zerokit_prove_p99_ms,
            ),
            (
                "prove: Conclave proof pool",
                &row.pool_prove_p50_ms,
                &row.pool_prove_p99_ms,
            ),
            (
                "prove: pool, cached partial proof",
                &row.pool_partial_prove_p50_ms,
                &row.pool_partial_prove_p99_ms,
            ),
        ] {
            s.push_str(&format!("| {what} | {} | {} |\n", f(p50), f(p99)));
        }
        s.push_str(&format!(
            "\nVerification on one core: zerokit directly {} /s, through the pool {} /s ({} proofs and {} verifications per repetition).\n",
            f(&row.zerokit_verify_per_s),
            f(&row.pool_verify_per_s),
            row.params.proofs,
            row.params.verifications
        ));
    }
    s
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let wants = |sc: Scenario| args.scenarios.is_empty() || args.scenarios.contains(&sc);
    let (ns, sizes, rate, duration_s): (&[usize], &[usize], u32, u64) = if args.quick {
        (&[4, 15], &[1024], 100, 3)
    } else {
        (&[4, 15, 50], &[256, 1024, 16 * 1024], 100, 10)
    };
    let mut rows = Vec::new();
    for &nodes in ns.iter().filter(|_| wants(Scenario::Broadcast)) {
        for &size in sizes {
            let p = BroadcastParams {
                nodes,
                size,
                rate,
                duration_s,
            };
            // The baseline first: a run whose baseline fails is not reported.
            let base = measure(System::PlainGossipsub, p, args.reps).await?;
            if base.delivery_ratio.median < 0.99 {
                bail!(
                    "baseline plain-gossipsub delivered only {:.4} of its messages at n={nodes}, {size} B: not reporting this run",
                    base.delivery_ratio.median
                );
            }
            rows.push(base);
            rows.push(measure(System::Conclave, p, args.reps).await?);
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut coordination = Vec::new();
    if wants(Scenario::Coordination) {
        // A tBTC-sized wallet group: 100 seats over 15 operators, light background traffic.
        let p = if args.quick {
            CoordinationParams {
                members: 7,
                group_seats: 30,
                duration_s: 5,
                rate: 1.0,
            }
        } else {
            CoordinationParams {
                members: 15,
                group_seats: 100,
                duration_s: 30,
                rate: 1.0,
            }
        };
        coordination.push(coordination::measure(p, args.reps).await?);
    }
    let mut rln_rows = Vec::new();
    if wants(Scenario::Rln) {
        let p = if args.quick {
            rln_proofs::RlnParams {
                proofs: 3,
                verifications: 30,
            }
        } else {
            rln_proofs::RlnParams {
                proofs: 20,
                verifications: 200,
            }
        };
        rln_rows.push(rln_proofs::measure(p, args.reps).await?);
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let date_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let report = Report {
        date_unix,
        commit,
        machine: serde_json::json!({
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        }),
        reps: args.reps,
        rows,
        coordination,
        rln: rln_rows,
    };
    let stem = args.out.join(format!("bench-{date_unix}"));
    std::fs::write(
        stem.with_extension("json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let md = markdown(&report);
    std::fs::write(stem.with_extension("md"), &md)?;
    println!("{md}");
    println!("written {}.json and .md", stem.display());
    Ok(())
}
