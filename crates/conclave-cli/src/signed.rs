//! `conclave registry sign | inspect | submit`: the cold key stays offline. `sign` needs no
//! RPC — the chain id, registry and nonce come from flags or from the file `conclave registry
//! show` wrote on the online machine — and writes the signed action as JSON; `inspect` says in
//! words what a file authorizes and whether its signature is the operator's; `submit` sends it
//! from any funded account.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use conclave_core::PeerId;
use conclave_node::keys;
use conclave_registry::evm::signed::{ActionDomain, OperatorAction, SignedAction, Verdict};
use conclave_registry::evm::{admin, safe, Address, RegistryAdmin, OPEN_ENDED};
use serde::Deserialize;

use crate::chain::{self, ChainArgs, KeyArgs};

/// What `sign` binds the action to: from flags, or from a `conclave registry show` file.
#[derive(Args)]
pub struct SignArgs {
    /// Where to write the signed action (never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// A file `conclave registry show` wrote on an online machine: the chain id, the registry
    /// and the operator's next nonce come from it.
    #[arg(long)]
    from: Option<PathBuf>,
    #[arg(long, required_unless_present = "from")]
    chain_id: Option<u64>,
    /// The registry contract.
    #[arg(long, required_unless_present = "from")]
    contract: Option<Address>,
    /// The operator's next nonce on the registry (`conclave registry show` lists it).
    #[arg(long, required_unless_present = "from")]
    nonce: Option<u64>,
    /// Sign as one owner of this Safe (the operator): the file holds that owner's signature;
    /// `conclave registry combine` joins the owners' files.
    #[arg(long)]
    safe: Option<Address>,
    /// How long the signature stays valid (e.g. 1h, 7d).
    #[arg(long, default_value = "1d", value_parser = humantime::parse_duration)]
    valid_for: Duration,
    #[command(flatten)]
    key: KeyArgs,
}

/// The action to sign (the same parameters as its `msg.sender` form).
#[derive(Subcommand)]
pub enum ActionCommand {
    /// Authorize a node key.
    Authorize {
        #[arg(long)]
        peer_id: PeerId,
        /// Scope bitmask (bit n = the n-th scope governance defined; 1 = bit 0).
        #[arg(long, default_value_t = 1)]
        scope_mask: u64,
        #[arg(long, default_value_t = 0)]
        valid_from: u64,
        #[arg(long)]
        valid_until: Option<u64>,
    },
    /// Revoke a node key from a block on (0: the block the submission lands in).
    Revoke {
        #[arg(long)]
        peer_id: PeerId,
        #[arg(long, default_value_t = 0)]
        at_block: u64,
    },
    /// Authorize a new node key and revoke the old one from a block on.
    Rotate {
        #[arg(long)]
        old: PeerId,
        #[arg(long)]
        new: PeerId,
        #[arg(long, default_value_t = 1)]
        scope_mask: u64,
        #[arg(long)]
        valid_until: Option<u64>,
        /// The block from which the old key is refused (offline, there is no "now + 10").
        #[arg(long)]
        revoke_old_at: u64,
    },
    /// Set a node key's address hints.
    SetAddresses {
        #[arg(long)]
        peer_id: PeerId,
        #[arg(long = "address")]
        addresses: Vec<String>,
    },
    /// Register an RLN membership (`conclave rln keygen`'s identity; only its commitment goes
    /// on-chain).
    RegisterRln {
        #[arg(long)]
        rln_key: PathBuf,
        #[arg(long, default_value_t = 1)]
        limit: u32,
    },
    /// Remove one of the operator's RLN memberships.
    RemoveRln {
        #[arg(long)]
        index: u64,
    },
}

#[derive(Subcommand)]
pub enum SignedCommand {
    /// Offline: sign an operator action with the cold key and write it to a file.
    Sign {
        #[command(flatten)]
        args: Box<SignArgs>,
        #[command(subcommand)]
        action: ActionCommand,
    },
    /// Say in words what a signed action authorizes, and whether its signature is the
    /// operator's.
    Inspect { file: PathBuf },
    /// Join Safe owners' signed files of one action (same action, nonce, deadline) into the one
    /// the Safe accepts (its owners in ascending order).
    Combine {
        #[arg(long)]
        out: PathBuf,
        #[arg(required = true, num_args = 2..)]
        files: Vec<PathBuf>,
    },
    /// Online: submit a signed action, or a validator's signed RLN registration, from any funded
    /// account (the relayer pays the gas).
    Submit {
        file: PathBuf,
        #[command(flatten)]
        chain: ChainArgs,
    },
}

/// What `sign --from` reads from a `conclave registry show` file.
#[derive(Deserialize)]
struct ShowFile {
    contract: Address,
    chain_id: u64,
    nonces: std::collections::BTreeMap<Address, u64>,
}

fn action_of(cmd: ActionCommand) -> anyhow::Result<OperatorAction> {
    Ok(match cmd {
        ActionCommand::Authorize {
            peer_id,
            scope_mask,
            valid_from,
            valid_until,
        } => OperatorAction::Authorize {
            peer_id,
            scopes: scope_mask,
            valid_from,
            valid_until: valid_until.unwrap_or(OPEN_ENDED),
        },
        ActionCommand::Revoke { peer_id, at_block } => OperatorAction::Revoke {
            peer_id,
            effective_block: at_block,
        },
        ActionCommand::Rotate {
            old,
            new,
            scope_mask,
            valid_until,
            revoke_old_at,
        } => OperatorAction::Rotate {
            old_peer_id: old,
            new_peer_id: new,
            scopes: scope_mask,
            valid_until: valid_until.unwrap_or(OPEN_ENDED),
            revoke_old_at,
        },
        ActionCommand::SetAddresses { peer_id, addresses } => {
            OperatorAction::SetNodeAddresses { peer_id, addresses }
        }
        ActionCommand::RegisterRln { rln_key, limit } => {
            let id = keys::load_rln(&rln_key)?;
            OperatorAction::RegisterRln {
                rate_commitment: conclave_rln::fr_to_bytes(&id.rate_commitment(limit)).into(),
                limit,
            }
        }
        ActionCommand::RemoveRln { index } => OperatorAction::RemoveRln { index },
    })
}

fn binding(args: &SignArgs, operator: Address) -> anyhow::Result<(ActionDomain, u64)> {
    let show = match &args.from {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(serde_json::from_str::<ShowFile>(&text).with_context(|| {
                format!("{} is not a `conclave registry show` file", path.display())
            })?)
        }
        None => None,
    };
    let chain_id = args
        .chain_id
        .or(show.as_ref().map(|s| s.chain_id))
        .context("--chain-id")?;
    let registry = args
        .contract
        .or(show.as_ref().map(|s| s.contract))
        .context("--contract")?;
    let nonce = match (args.nonce, &show) {
        (Some(n), _) => n,
        (None, Some(s)) => s.nonces.get(&operator).copied().with_context(|| {
            format!("{operator} is not an operator in the show file; pass --nonce")
        })?,
        (None, None) => bail!("--nonce"),
    };
    Ok((ActionDomain { chain_id, registry }, nonce))
}

fn now_secs() -> u64 {
    conclave_core::Clock::now_ms(&conclave_core::SystemClock) / 1000
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn read_action(path: &Path) -> anyhow::Result<SignedAction> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SignedAction::parse(&text).with_context(|| path.display().to_string())
}

/// The file's meaning and the signature's verdict, in words.
pub fn describe(a: &SignedAction) -> String {
    // Offline, a Safe operator cannot be told from an EOA: a signature that is not the
    // operator's own is also read as Safe owners' signatures, for the chain to judge.
    let as_safe = match safe::signing_owners(a.operator, a.chain_id, a.digest(), &a.signature) {
        Ok(owners) => {
            let list: Vec<String> = owners.iter().map(|o| o.to_string()).collect();
            format!(
                "; if the operator is a Safe: signed by its owners {} (the Safe checks them and its threshold on-chain)",
                list.join(", ")
            )
        }
        Err(_) => String::new(),
    };
    let verdict = match a.verify(false) {
        Ok(Verdict::SignedByOperator) => "valid: signed by the operator".to_owned(),
        Ok(Verdict::SignedBy(other)) => {
            format!("not the operator's own key: it recovers to {other}{as_safe}")
        }
        Ok(Verdict::ContractOperator) => "checked on-chain by the operator contract".to_owned(),
        Err(e) => format!("not an EOA signature ({e}){as_safe}"),
    };
    let deadline = a.deadline.saturating_sub(now_secs());
    format!(
        "action    {}\noperator  {}\nregistry  {} on chain {}\nnonce     {}\ndeadline  {} (unix; {})\nsignature {}",
        a.action,
        a.operator,
        a.registry,
        a.chain_id,
        a.nonce,
        a.deadline,
        if deadline == 0 {
            "passed".to_owned()
        } else {
            format!("{} left", humantime::format_duration(Duration::from_secs(deadline)))
        },
        verdict
    )
}

pub async fn run(cmd: SignedCommand) -> anyhow::Result<()> {
    match cmd {
        SignedCommand::Sign { args, action } => {
            let key: admin::PrivateKeySigner = chain::key_of(&args.key)?;
            let operator = args.safe.unwrap_or(key.address());
            let (domain, nonce) = binding(&args, operator)?;
            let deadline = now_secs() + args.valid_for.as_secs();
            let action = action_of(action)?;
            let signed = match args.safe {
                Some(safe) => {
                    SignedAction::sign_as_safe(action, safe, &[&key], nonce, deadline, domain)?
                }
                None => SignedAction::sign(action, &key, nonce, deadline, domain)?,
            };
            write_new(&args.out, &serde_json::to_string_pretty(&signed)?)?;
            println!("wrote {}\n{}", args.out.display(), describe(&signed));
        }
        SignedCommand::Inspect { file } => println!("{}", describe(&read_action(&file)?)),
        SignedCommand::Combine { out, files } => {
            let parts: Vec<SignedAction> = files
                .iter()
                .map(|f| read_action(f))
                .collect::<anyhow::Result<_>>()?;
            let first = &parts[0];
            if let Some((f, _)) = files.iter().zip(&parts).find(|(_, p)| {
                SignedAction {
                    signature: first.signature.clone(),
                    ..(*p).clone()
                } != *first
            }) {
                bail!(
                    "{} signs something else than {} (action, operator, nonce, deadline, chain or registry differ)",
                    f.display(),
                    files[0].display()
                );
            }
            let signatures: Vec<_> = parts.iter().map(|p| p.signature.clone()).collect();
            let joined = safe::combine_owner_signatures(
                first.operator,
                first.chain_id,
                first.digest(),
                &signatures,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            let combined = SignedAction {
                signature: joined,
                ..first.clone()
            };
            write_new(&out, &serde_json::to_string_pretty(&combined)?)?;
            println!("wrote {}\n{}", out.display(), describe(&combined));
        }
        SignedCommand::Submit { file, chain } => {
            if let Some(reg) = crate::validator::read_if_registration(&file)? {
                let relayer =
                    RegistryAdmin::connect(&chain.rpc_url, reg.registry, chain::signer(&chain)?)?;
                return crate::validator::submit(&relayer, &reg, &file).await;
            }
            let a = read_action(&file)?;
            let relayer =
                RegistryAdmin::connect(&chain.rpc_url, a.registry, chain::signer(&chain)?)?;
            let tx = relayer.submit(&a).await?;
            println!(
                "submitted {}: {} (signed by operator {}, submitted by {})\ntx {} in block {}, gas {}",
                file.display(),
                a.action,
                a.operator,
                relayer.signer(),
                tx.tx_hash,
                tx.block,
                tx.gas_used
            );
        }
    }
    Ok(())
}
