//! `conclave devnet`: a whole signer network on this machine, as separate node processes on
//! loopback, exercised the way production would be: member traffic through the HTTP API, an
//! intruder that is not in the registry, and a member removed from the registry mid-run.
//! With `--chain anvil` the registry is the on-chain contract ([`chain`]): the removal is a
//! revocation, and a member rotates its node key live. With `--registry stacks` it is sBTC's
//! signer set in a Clarity VM, rotated mid-run ([`stacks`]).
//!
//! Layers, each using only those above it: [`common`] (constants), [`config`], [`registry`],
//! [`cluster`] (processes), [`client`] (typed API calls), [`chain`]; then the parts of a run
//! ([`traffic`], [`coord`], [`rln`], [`timeline`], [`estimate`], [`netns`] hosts and the
//! [`faults`] books) and the scenarios ([`full`], [`stale_chain`], [`tcp_cut`], [`anonymity`],
//! [`partition`], [`restart`], [`flood`], [`link_cuts`], [`stacks`]).

mod anonymity;
mod args;
mod chain;
mod client;
mod cluster;
mod common;
mod config;
mod coord;
mod estimate;
mod faults;
mod flood;
mod full;
mod kept;
mod link_cuts;
mod netns;
mod operators;
mod partition;
mod registry;
mod restart;
mod rln;
mod stacks;
mod stale_chain;
pub mod strangers;
mod tcp_cut;
mod timeline;
mod traffic;
mod validators;

use anyhow::{bail, Context};
use conclave_api::DevnetReport;

pub use args::{DevnetArgs, RegistryKind, Scenario};

/// Runs the chosen scenario; whether every expectation held. With `--report`, writes the
/// scenario's report (tcp-cut has none).
pub async fn run(args: DevnetArgs) -> anyhow::Result<bool> {
    if args.nodes < 3 {
        bail!("--nodes must be at least 3 (got {})", args.nodes);
    }
    let tmp = match &args.dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("conclave-devnet-")
                .tempdir()?,
        ),
    };
    let dir = match (&args.dir, &tmp) {
        (Some(d), _) => {
            std::fs::create_dir_all(d)?;
            d.canonicalize()?
        }
        (None, Some(t)) => t.path().to_path_buf(),
        _ => unreachable!(),
    };
    let exe = std::env::current_exe()?;
    let outcome = async {
        if args.cold_keys == args::ColdKeys::Offline
            && (args.chain != args::ChainKind::Anvil || args.scenario != Scenario::Full)
        {
            bail!("--cold-keys offline needs --chain anvil (and the full scenario)");
        }
        if args.registry == Some(RegistryKind::Stacks)
            && (args.scenario != Scenario::Full || args.chain != args::ChainKind::File)
        {
            bail!("--registry stacks runs its own scenario: leave --scenario and --chain at their defaults");
        }
        let (ok, report) = match args.scenario {
            _ if args.registry == Some(RegistryKind::Stacks) => {
                let r = stacks::run(&args, &dir, &exe).await?;
                (r.ok, Some(DevnetReport::StacksRotation(r)))
            }
            Scenario::Full => {
                let r = full::run(&args, &dir, &exe).await?;
                (r.ok, Some(DevnetReport::Traffic(r)))
            }
            Scenario::StaleChain => {
                let r = stale_chain::run(&args, &dir, &exe).await?;
                (r.ok, Some(DevnetReport::StaleChain(r)))
            }
            Scenario::TcpCut => (tcp_cut::run(&args, &dir, &exe).await?, None),
            Scenario::Anonymity => {
                let r = anonymity::run(&args, &dir, &exe).await?;
                (r.ok, Some(DevnetReport::Anonymity(r)))
            }
            Scenario::Partition => {
                let r = partition::run(&args, &dir, &exe).await?;
                (r.ok, Some(DevnetReport::Fault(r)))
            }
            Scenario::Flood => {
                let r = flood::run(&args, &dir, &exe).await?;
                (r.ok, Some(DevnetReport::Fault(r)))
            }
            Scenario::Restart => {
                let r = restart::run(&args, &dir, &exe).await?;
                (r.ok, Some(DevnetReport::Fault(r)))
            }
            Scenario::LinkCuts => {
                let r = link_cuts::run(&args, &dir, &exe).await?;
                (r.ok, Some(DevnetReport::LinkCuts(r)))
            }
        };
        if let (Some(path), Some(report)) = (&args.report, report) {
            common::write_atomic(path, &serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("writing the report to {}", path.display()))?;
        }
        anyhow::Ok(ok)
    }
    .await;
    if args.keep || args.dir.is_some() {
        if let Some(t) = tmp {
            println!("kept {}", t.keep().display());
        }
    }
    outcome
}
