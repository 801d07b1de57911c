//! `conclave registry deploy | add-operator | … | show`: governance and operator transactions
//! against the on-chain registry. Each prints the transaction hash and the resulting state;
//! the contract's refusals are shown in plain words.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use conclave_api::ViewAnswer;
use conclave_core::{GroupId, Moment, OperatorId, PeerId};
use conclave_node::keys;
use conclave_registry::evm::{
    admin, Address, EvmConfig, EvmRegistry, RegistryAdmin, SlashOutcome, TxOutcome, OPEN_ENDED,
};
use conclave_registry::RegistrySource;
use serde::Serialize;

/// Who signs: an encrypted keystore, a raw key file, or `CONCLAVE_ETH_KEY`.
#[derive(Args, Clone)]
pub struct KeyArgs {
    /// A Web3 Secret Storage v3 keystore (geth, alloy, `conclave keys eth-keystore`), opened
    /// with the password in `--password-file`.
    #[arg(long, requires = "password_file")]
    keystore: Option<PathBuf>,
    /// The keystore's password: the first line of this file (mode 0600).
    #[arg(long, env = "CONCLAVE_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// A file holding the signer's Ethereum private key in plain hex (mode 0600); otherwise
    /// the `CONCLAVE_ETH_KEY` environment variable.
    #[arg(long, conflicts_with = "keystore")]
    eth_key_file: Option<PathBuf>,
}

/// Where the chain is and who signs.
#[derive(Args, Clone)]
pub struct ChainArgs {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "CONCLAVE_RPC_URL")]
    pub rpc_url: String,
    #[command(flatten)]
    key: KeyArgs,
}

/// The deployed registry to act on.
#[derive(Args, Clone)]
pub struct ContractArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The ConclaveRegistry contract's address.
    #[arg(long, env = "CONCLAVE_REGISTRY_CONTRACT")]
    contract: Address,
}

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Deploy a new registry (the signer becomes its owner) and define its scopes.
    Deploy {
        #[command(flatten)]
        chain: ChainArgs,
        /// Topic names to define as scopes, bit 0 first.
        #[arg(long, value_delimiter = ',', default_value = "signers")]
        scopes: Vec<String>,
    },
    /// Governance: admit an operator (its cold address).
    AddOperator {
        #[command(flatten)]
        at: ContractArgs,
        operator: OperatorId,
    },
    /// Governance: remove an operator; its node keys stop being valid at once.
    RemoveOperator {
        #[command(flatten)]
        at: ContractArgs,
        operator: OperatorId,
    },
    /// Operator: authorize a node key for some scopes and a block window.
    Authorize {
        #[command(flatten)]
        at: ContractArgs,
        /// The node's PeerId (`conclave keys show`).
        #[arg(long)]
        peer_id: PeerId,
        #[arg(long, value_delimiter = ',', default_value = "signers")]
        scopes: Vec<String>,
        /// First valid block (default: the block the transaction lands in).
        #[arg(long, default_value_t = 0)]
        valid_from: u64,
        /// First block at which the key is no longer valid (default: until revoked).
        #[arg(long)]
        valid_until: Option<u64>,
        /// Address hints for peers to dial (multiaddrs).
        #[arg(long = "address")]
        addresses: Vec<String>,
    },
    /// Operator: revoke a node key, now or from a later block.
    Revoke {
        #[command(flatten)]
        at: ContractArgs,
        #[arg(long)]
        peer_id: PeerId,
        /// Block from which the key is refused (default: the block the transaction lands in).
        #[arg(long, default_value_t = 0)]
        at_block: u64,
    },
    /// Operator: authorize a new node key and schedule the old one's revocation, in one call.
    Rotate {
        #[command(flatten)]
        at: ContractArgs,
        #[arg(long)]
        old: PeerId,
        #[arg(long)]
        new: PeerId,
        #[arg(long, value_delimiter = ',', default_value = "signers")]
        scopes: Vec<String>,
        #[arg(long)]
        valid_until: Option<u64>,
        /// Block from which the old key is refused (default: 10 blocks from now, so the node
        /// can move to its new key first).
        #[arg(long)]
        revoke_old_at: Option<u64>,
    },
    /// Governance: define or replace a group's ordered seats.
    AddGroup {
        #[command(flatten)]
        at: ContractArgs,
        /// 20-byte group id (0x-hex), e.g. a wallet's public key hash.
        #[arg(long)]
        id: GroupId,
        /// Operator addresses, in seat order (repeats allowed).
        #[arg(long, value_delimiter = ',', required = true)]
        seats: Vec<OperatorId>,
    },
    /// Operator: register an RLN membership (the anonymous channel's leaf) for the signer.
    RegisterRln {
        #[command(flatten)]
        at: ContractArgs,
        /// The RLN identity file (`conclave rln keygen`); only its public half goes on-chain.
        #[arg(long)]
        rln_key: PathBuf,
        /// Messages per epoch the membership allows.
        #[arg(long, default_value_t = 1)]
        limit: u32,
    },
    /// Governance: admit Ethereum validator keys to register RLN memberships (each counted under
    /// `--operator`, whose cap applies).
    AssignValidators {
        #[command(flatten)]
        at: ContractArgs,
        #[arg(long)]
        operator: OperatorId,
        /// Validator public keys (48 bytes compressed, 0x-hex), comma-separated.
        #[arg(long = "pubkeys", value_delimiter = ',', required = true)]
        pubkeys: Vec<String>,
    },
    /// Governance: let an operator hold up to `cap` live RLN memberships (1..=16; default 1).
    SetRlnCap {
        #[command(flatten)]
        at: ContractArgs,
        operator: OperatorId,
        #[arg(long)]
        cap: u32,
    },
    /// Governance or the registering operator: remove an RLN membership.
    RemoveRln {
        #[command(flatten)]
        at: ContractArgs,
        #[arg(long)]
        index: u64,
    },
    /// Anyone: remove RLN membership `index` by revealing its secret (as `GET /v1/rln/removed`
    /// lists it after a double signal). Nodes with `[rln] chain_key` do this themselves.
    SlashRln {
        #[command(flatten)]
        at: ContractArgs,
        #[arg(long)]
        index: u64,
        /// The revealed identity secret (64 hex digits).
        #[arg(long)]
        secret: String,
    },
    /// Print the registry as nodes see it (JSON), synced to the newest block.
    Show {
        #[arg(long, env = "CONCLAVE_RPC_URL")]
        rpc_url: String,
        #[arg(long, env = "CONCLAVE_REGISTRY_CONTRACT")]
        contract: Address,
    },
}

/// The key `args` name, unlocked.
pub fn key_of(args: &KeyArgs) -> anyhow::Result<admin::PrivateKeySigner> {
    if let (Some(keystore), Some(password)) = (&args.keystore, &args.password_file) {
        return Ok(conclave_node::keystore::load_eth_keystore(
            keystore, password,
        )?);
    }
    if let Some(path) = &args.eth_key_file {
        return Ok(keys::load_eth(path)?);
    }
    let text = std::env::var("CONCLAVE_ETH_KEY").map_err(|_| {
        anyhow::anyhow!("no signing key: pass --eth-key-file FILE or set CONCLAVE_ETH_KEY")
    })?;
    admin::parse_eth_key(&text).context("CONCLAVE_ETH_KEY")
}

/// The transaction signer of `args`.
pub fn signer(args: &ChainArgs) -> anyhow::Result<admin::PrivateKeySigner> {
    key_of(&args.key)
}

fn connect(at: &ContractArgs) -> anyhow::Result<RegistryAdmin> {
    Ok(RegistryAdmin::connect(
        &at.chain.rpc_url,
        at.contract,
        signer(&at.chain)?,
    )?)
}

/// The registry as nodes see it, and where and when it was read.
#[derive(Serialize)]
struct Snapshot {
    #[serde(flatten)]
    view: ViewAnswer,
    contract: String,
    chain_id: u64,
    head: u64,
    /// Each operator's next nonce for signed actions (what `conclave registry sign --from`
    /// reads on the offline machine).
    nonces: std::collections::BTreeMap<Address, u64>,
    /// Registry entries skipped as invalid, each with the reason.
    skipped: Vec<String>,
}

/// The registry as nodes see it, with no confirmations (the transaction just mined included).
async fn snapshot(rpc_url: &str, contract: Address) -> anyhow::Result<Snapshot> {
    let mut cfg = EvmConfig::new(rpc_url, contract);
    cfg.confirmations = 0;
    let registry = EvmRegistry::spawn(cfg).await?;
    let view = registry.view().borrow().clone();
    let status = registry.status().borrow().clone();
    let head = conclave_registry::ChainSource::heads(&registry)
        .borrow()
        .number;
    let at = Moment {
        unix_secs: conclave_core::Clock::moment(&conclave_core::SystemClock).unix_secs,
        block: Some(head),
    };
    let reader = RegistryAdmin::connect(rpc_url, contract, admin::PrivateKeySigner::random())?;
    let mut nonces = std::collections::BTreeMap::new();
    for (op, _) in view.operators() {
        let op = Address::from(op.0);
        nonces.insert(op, reader.nonce_of(op).await?);
    }
    Ok(Snapshot {
        view: conclave_node::describe_view(&view, at, &|_| None),
        contract: contract.to_string(),
        chain_id: reader.chain_id().await?,
        head,
        nonces,
        skipped: status.skipped,
    })
}

fn print_outcome(what: &str, tx: TxOutcome) {
    println!("{what}: tx {} in block {}", tx.tx_hash, tx.block);
}

fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON renders")
    );
}

/// Prints `operator`'s part of the registry (its node keys), or that it is not an operator.
async fn print_operator(at: &ContractArgs, operator: OperatorId) -> anyhow::Result<()> {
    let state = snapshot(&at.chain.rpc_url, at.contract).await?;
    let address = operator.to_string();
    match state.view.operators.iter().find(|o| o.address == address) {
        Some(o) => print_json(o),
        None => print_json(&serde_json::json!({ "address": address, "operator": false })),
    }
    Ok(())
}

pub async fn run(cmd: ChainCommand) -> anyhow::Result<()> {
    match cmd {
        ChainCommand::Deploy { chain, scopes } => {
            let (reg, tx) = RegistryAdmin::deploy(&chain.rpc_url, signer(&chain)?).await?;
            print_outcome("deployed", tx);
            println!("contract = {}", reg.contract());
            if scopes.len() > 64 {
                bail!("at most 64 scopes");
            }
            for (bit, name) in scopes.iter().enumerate() {
                name.parse::<conclave_core::TopicName>()
                    .map_err(|e| anyhow::anyhow!("scope `{name}`: {e}"))?;
                print_outcome(
                    &format!("scope {bit} = {name}"),
                    reg.define_scope(bit as u8, name).await?,
                );
            }
            print_json(&snapshot(&chain.rpc_url, reg.contract()).await?);
        }
        ChainCommand::AddOperator { at, operator } => {
            let tx = connect(&at)?.add_operator(operator).await?;
            print_outcome("operator added", tx);
            print_operator(&at, operator).await?;
        }
        ChainCommand::RemoveOperator { at, operator } => {
            let tx = connect(&at)?.remove_operator(operator).await?;
            print_outcome("operator removed", tx);
            print_operator(&at, operator).await?;
        }
        ChainCommand::Authorize {
            at,
            peer_id,
            scopes,
            valid_from,
            valid_until,
            addresses,
        } => {
            let reg = connect(&at)?;
            let names: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let mask = reg.scope_mask(&names).await?;
            let tx = reg
                .authorize(
                    &peer_id,
                    mask,
                    valid_from,
                    valid_until.unwrap_or(OPEN_ENDED),
                )
                .await?;
            print_outcome(&format!("{peer_id} authorized"), tx);
            if !addresses.is_empty() {
                print_outcome(
                    "addresses set",
                    reg.set_node_addresses(&peer_id, addresses).await?,
                );
            }
            let op = OperatorId(reg.signer().0 .0);
            print_operator(&at, op).await?;
        }
        ChainCommand::Revoke {
            at,
            peer_id,
            at_block,
        } => {
            let reg = connect(&at)?;
            let tx = reg.revoke(&peer_id, at_block).await?;
            print_outcome(&format!("{peer_id} revoked"), tx);
            let op = OperatorId(reg.signer().0 .0);
            print_operator(&at, op).await?;
        }
        ChainCommand::Rotate {
            at,
            old,
            new,
            scopes,
            valid_until,
            revoke_old_at,
        } => {
            let reg = connect(&at)?;
            let names: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let mask = reg.scope_mask(&names).await?;
            let revoke_at = match revoke_old_at {
                Some(b) => b,
                None => reg.block().await? + 10,
            };
            let tx = reg
                .rotate(
                    &old,
                    &new,
                    mask,
                    valid_until.unwrap_or(OPEN_ENDED),
                    revoke_at,
                )
                .await?;
            print_outcome(
                &format!("rotated {old} -> {new} (old revoked from block {revoke_at})"),
                tx,
            );
            let op = OperatorId(reg.signer().0 .0);
            print_operator(&at, op).await?;
        }
        ChainCommand::AddGroup { at, id, seats } => {
            let tx = connect(&at)?.set_group(id, &seats).await?;
            print_outcome(&format!("group {id} set"), tx);
            let state = snapshot(&at.chain.rpc_url, at.contract).await?;
            let group = state.view.groups.iter().find(|g| g.id == id.to_string());
            print_json(&group);
        }
        ChainCommand::RegisterRln { at, rln_key, limit } => {
            let id = keys::load_rln(&rln_key)?;
            let commitment = conclave_rln::fr_to_bytes(&id.rate_commitment(limit));
            let (tx, index) = connect(&at)?.register_rln(commitment, limit).await?;
            print_outcome(&format!("RLN leaf {index} registered"), tx);
            let state = snapshot(&at.chain.rpc_url, at.contract).await?;
            print_json(&state.view.rln);
        }
        ChainCommand::AssignValidators {
            at,
            operator,
            pubkeys,
        } => {
            let keys = pubkeys
                .iter()
                .map(|k| {
                    hex::decode(k.trim_start_matches("0x"))
                        .ok()
                        .and_then(|b| <[u8; 48]>::try_from(b).ok())
                        .with_context(|| {
                            format!("validator key `{k}`: expected 48 bytes as 96 hex digits")
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let tx = connect(&at)?.assign_validators(operator, &keys).await?;
            print_outcome(
                &format!("{} validator key(s) admitted under {operator}", keys.len()),
                tx,
            );
        }
        ChainCommand::SetRlnCap { at, operator, cap } => {
            let reg = connect(&at)?;
            let tx = reg.set_rln_cap(operator, cap).await?;
            let (cap, live) = reg.rln_cap(operator).await?;
            print_outcome(
                &format!("{operator} may hold {cap} RLN memberships (holds {live})"),
                tx,
            );
        }
        ChainCommand::RemoveRln { at, index } => {
            let tx = connect(&at)?.remove_rln(index).await?;
            print_outcome(&format!("RLN leaf {index} removed"), tx);
        }
        ChainCommand::SlashRln { at, index, secret } => {
            let secret = conclave_rln::fr_from_hex(&secret)
                .map_err(|e| anyhow::anyhow!("--secret: {e} (expected 64 hex digits)"))?;
            let bytes = conclave_rln::fr_to_bytes(&secret);
            match connect(&at)?.slash_rln(index, bytes).await? {
                SlashOutcome::Removed(tx) => {
                    print_outcome(&format!("RLN leaf {index} slashed"), tx)
                }
                SlashOutcome::AlreadyRemoved => println!("RLN leaf {index} was already removed"),
            }
        }
        ChainCommand::Show { rpc_url, contract } => {
            print_json(&snapshot(&rpc_url, contract).await?);
        }
    }
    Ok(())
}
