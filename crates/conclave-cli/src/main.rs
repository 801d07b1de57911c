//! `conclave`: run a node, run a local devnet, manage node keys and check registry files.

mod chain;
mod coord;
mod devnet;
mod signed;
mod validator;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use conclave_node::keys::{self, KeyType};
use conclave_node::{BuildInfo, NodeConfig, NodeHooks, RunningNode};

/// What `build.rs` found in git: `COMMIT` and `DIRTY`.
mod build_stamp {
    include!(concat!(env!("OUT_DIR"), "/build_stamp.rs"));
}

/// This binary's build: the crate version and its git commit.
const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    commit: build_stamp::COMMIT,
    dirty: build_stamp::DIRTY,
};

#[derive(Parser)]
#[command(
    name = "conclave",
    about = "Gated p2p messaging for threshold-signer networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Node keys (the hot keys nodes sign gossip with).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Run a node.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// The registry: check a registry file, or deploy, change and show the on-chain registry.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// RLN identities for the anonymous channel.
    Rln {
        #[command(subcommand)]
        command: RlnCommand,
    },
    /// Coordination windows (tBTC RFC 12): seeds, leaders, checklists and the wire format.
    Coord {
        #[command(subcommand)]
        command: coord::CoordCommand,
    },
    /// Start a local network of nodes on loopback, drive traffic, an intruder and a removal, and
    /// report delivery and latency. Exits non-zero if anything leaked or went missing.
    Devnet(devnet::DevnetArgs),
    /// The flood scenario's strangers, as a process of their own (started by the devnet).
    #[command(hide = true)]
    Strangers(devnet::strangers::StrangersArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a node key file (mode 0600) and print its PeerId.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long = "type", default_value = "ed25519")]
        key_type: KeyType,
    },
    /// Print a key file's type and PeerId (never the secret).
    Show { file: PathBuf },
    /// Write an Ethereum key (a new one, or `--from-key-file`'s) as an encrypted Web3 Secret
    /// Storage v3 keystore (mode 0600), and print its address.
    EthKeystore {
        #[arg(long)]
        out: PathBuf,
        /// The password: the first line of this file (mode 0600).
        #[arg(long, env = "CONCLAVE_PASSWORD_FILE")]
        password_file: PathBuf,
        /// Encrypt this plain hex key file instead of a new key.
        #[arg(long)]
        from_key_file: Option<PathBuf>,
        /// geth's light scrypt parameters (4 MiB) instead of the standard ones (256 MiB): for
        /// test keys.
        #[arg(long)]
        light: bool,
    },
    /// Generate a test Ethereum validator key (BLS12-381) as an EIP-2335 keystore (mode 0600)
    /// and print its public key. Real validators already hold theirs.
    BlsGenerate {
        #[arg(long)]
        out: PathBuf,
        /// The password: the first line of this file (mode 0600).
        #[arg(long, env = "CONCLAVE_PASSWORD_FILE")]
        password_file: PathBuf,
        /// Light scrypt parameters (4 MiB) instead of EIP-2335's (256 MiB): for test keys.
        #[arg(long)]
        light: bool,
    },
}

#[derive(Subcommand)]
enum RlnCommand {
    /// Generate an RLN identity file (mode 0600) and print, as JSON, what the registry needs:
    /// the id commitment and the rate commitment for `--limit` messages per epoch.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Print an identity file's commitments (never the secret), as JSON.
    Show {
        file: PathBuf,
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Register an RLN membership signed by an Ethereum validator's BLS key (from its EIP-2335
    /// keystore): submit it, or with `--out` write it for `conclave registry submit`.
    RegisterValidator(Box<validator::RegisterValidatorArgs>),
}

/// The public half of an RLN identity, as the registry's `[[rln]]` entry wants it.
fn rln_commitments(id: &conclave_rln::RlnIdentity, limit: u32) -> serde_json::Value {
    serde_json::json!({
        "id_commitment": format!("0x{}", conclave_rln::fr_to_hex(&id.id_commitment())),
        "rate_commitment": format!("0x{}", conclave_rln::fr_to_hex(&id.rate_commitment(limit))),
        "limit": limit,
    })
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Run a node until SIGINT or SIGTERM.
    Run {
        /// The node's TOML configuration.
        #[arg(long, env = "CONCLAVE_CONFIG")]
        config: PathBuf,
        /// Override any configuration key, e.g. `--set http_listen=127.0.0.1:9090`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Validate a registry file and summarize it.
    Check { file: PathBuf },
    #[command(flatten)]
    Chain(Box<chain::ChainCommand>),
    #[command(flatten)]
    Signed(Box<signed::SignedCommand>),
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONCLAVE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=warn,libp2p_swarm=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Installs the SIGINT and SIGTERM handlers now — before the node starts, so a signal during
/// start-up is neither lost nor fatal — and returns what completes on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}

fn main() -> anyhow::Result<()> {
    // `conclave --version` names the commit: what an operator attaches to a bug report.
    let version: &'static str = Box::leak(BUILD.to_string().into_boxed_str());
    let mut cli = Cli::from_arg_matches(&Cli::command().version(version).get_matches())
        .unwrap_or_else(|e| e.exit());
    // CPU affinity is inherited by the threads a process starts later, so it is set before the
    // runtime starts any: the flood's strangers on a CPU of their own, the nodes on the rest.
    match &mut cli.command {
        Command::Devnet(args) if args.scenario == devnet::Scenario::Flood => {
            args.attacker_cpu = devnet::strangers::leave_last_cpu()?;
        }
        Command::Strangers(args) => {
            if let Some(cpu) = args.cpu {
                devnet::strangers::take_cpu(cpu)?;
            }
        }
        _ => {}
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Command::Keys {
            command: KeysCommand::Generate { out, key_type },
        } => {
            let peer = keys::generate(&out, key_type)?;
            println!("{peer}");
        }
        Command::Keys {
            command:
                KeysCommand::EthKeystore {
                    out,
                    password_file,
                    from_key_file,
                    light,
                },
        } => {
            let key = match from_key_file {
                Some(f) => keys::load_eth(&f)?,
                None => conclave_registry::evm::admin::PrivateKeySigner::random(),
            };
            let strength = if light {
                conclave_node::keystore::Strength::Light
            } else {
                conclave_node::keystore::Strength::Standard
            };
            conclave_node::keystore::write_eth_keystore(&out, &key, &password_file, strength)?;
            println!("{}", key.address());
        }
        Command::Keys {
            command:
                KeysCommand::BlsGenerate {
                    out,
                    password_file,
                    light,
                },
        } => {
            println!("{}", validator::bls_generate(&out, &password_file, light)?);
        }
        Command::Rln {
            command: RlnCommand::RegisterValidator(args),
        } => runtime.block_on(validator::register_validator(*args))?,
        Command::Keys {
            command: KeysCommand::Show { file },
        } => {
            let (kp, kt) = keys::load(&file)?;
            println!("type    = {kt}\npeer_id = {}", kp.public().to_peer_id());
        }
        Command::Rln {
            command: RlnCommand::Keygen { out, limit },
        } => {
            if !(1..=conclave_core::RLN_MAX_LIMIT).contains(&limit) {
                anyhow::bail!(
                    "--limit {limit}: expected 1 to {} messages per epoch",
                    conclave_core::RLN_MAX_LIMIT
                );
            }
            let id = keys::generate_rln(&out)?;
            println!("{}", rln_commitments(&id, limit));
        }
        Command::Rln {
            command: RlnCommand::Show { file, limit },
        } => {
            let id = keys::load_rln(&file)?;
            println!("{}", rln_commitments(&id, limit));
        }
        Command::Node {
            command: NodeCommand::Run { config, set },
        } => {
            let (raw, base) = NodeConfig::load(Some(&config), &set)?;
            let cfg = raw.validate(&base)?;
            init_logging(cfg.json_logs);
            runtime.block_on(async {
                let stop = shutdown_signal();
                let hooks = NodeHooks {
                    build: BUILD,
                    ..NodeHooks::default()
                };
                let node = RunningNode::start_with(cfg, hooks).await?;
                stop.await;
                node.shutdown().await;
                anyhow::Ok(())
            })?;
        }
        Command::Registry {
            command: RegistryCommand::Check { file },
        } => {
            let (view, skipped) = conclave_registry::FileRegistry::load(&file)?;
            println!(
                "{}: {} operators, {} node keys, {} groups, {} RLN memberships — valid",
                file.display(),
                view.operators().count(),
                view.nodes().count(),
                view.groups().len(),
                view.rln_members().count()
            );
            for s in &skipped {
                println!("skipped: {s}");
            }
        }
        Command::Registry {
            command: RegistryCommand::Chain(cmd),
        } => runtime.block_on(chain::run(*cmd))?,
        Command::Registry {
            command: RegistryCommand::Signed(cmd),
        } => runtime.block_on(signed::run(*cmd))?,
        Command::Coord { command } => {
            println!("{}", serde_json::to_string_pretty(&coord::run(command)?)?);
        }
        Command::Strangers(args) => {
            let report = runtime.block_on(devnet::strangers::run(args));
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Devnet(args) => {
            init_logging(false);
            let ok = runtime.block_on(devnet::run(args))?;
            runtime.shutdown_timeout(Duration::from_secs(2));
            if !ok {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
