//! Ethereum validators in the anonymous channel: `conclave keys bls-generate` (a test validator
//! key, as an EIP-2335 keystore) and `conclave rln register-validator` (sign an RLN membership
//! with the validator key a keystore holds; submit it, or write it for an offline hand-over to
//! `conclave registry submit`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use conclave_node::keys;
use conclave_node::keystore::{load_validator_keystore, write_validator_keystore, Strength};
use conclave_registry::evm::validators::{SignedRegistration, VALIDATOR_REGISTRATION_FORMAT};
use conclave_registry::evm::{admin, Address, RegistryAdmin};

/// `conclave rln register-validator`.
#[derive(Args)]
pub struct RegisterValidatorArgs {
    /// The validator's EIP-2335 keystore (Lighthouse, Prysm, the staking deposit CLI, or
    /// `conclave keys bls-generate`).
    #[arg(long)]
    keystore: PathBuf,
    /// The keystore's password: the first line of this file (mode 0600).
    #[arg(long, env = "CONCLAVE_PASSWORD_FILE")]
    password_file: PathBuf,
    /// The RLN identity file (`conclave rln keygen`); only its rate commitment is signed.
    #[arg(long)]
    rln_key: PathBuf,
    /// Messages per epoch the membership allows.
    #[arg(long, default_value_t = 1)]
    limit: u32,
    /// The ConclaveRegistry contract the registration is for.
    #[arg(long, env = "CONCLAVE_REGISTRY_CONTRACT")]
    contract: Address,
    /// Write the signed registration to this file instead of submitting it (for an offline
    /// machine; `conclave registry submit FILE` sends it). Needs `--chain-id`.
    #[arg(long, requires = "chain_id", conflicts_with = "rpc_url")]
    out: Option<PathBuf>,
    /// The chain the registry is on (offline signing; online it is asked of `--rpc-url`).
    #[arg(long)]
    chain_id: Option<u64>,
    /// JSON-RPC endpoint to submit through.
    #[arg(long, env = "CONCLAVE_RPC_URL", required_unless_present = "out")]
    rpc_url: Option<String>,
    /// The account that pays for the submission: a plain hex key file (mode 0600); otherwise
    /// `CONCLAVE_ETH_KEY`. Any funded account will do.
    #[arg(long)]
    eth_key_file: Option<PathBuf>,
}

/// Writes a new validator key as an EIP-2335 keystore and returns its public key (hex).
pub fn bls_generate(out: &Path, password_file: &Path, light: bool) -> anyhow::Result<String> {
    let secret = conclave_bls::ValidatorSecret::generate()?;
    let strength = if light {
        Strength::Light
    } else {
        Strength::Standard
    };
    write_validator_keystore(out, &secret, password_file, strength)?;
    Ok(format!("0x{}", hex::encode(secret.public_key())))
}

fn submitter(key_file: &Option<PathBuf>) -> anyhow::Result<admin::PrivateKeySigner> {
    if let Some(path) = key_file {
        return Ok(keys::load_eth(path)?);
    }
    let text = std::env::var("CONCLAVE_ETH_KEY").map_err(|_| {
        anyhow::anyhow!(
            "no account to submit from: pass --eth-key-file FILE or set CONCLAVE_ETH_KEY"
        )
    })?;
    admin::parse_eth_key(&text).context("CONCLAVE_ETH_KEY")
}

/// Signs the registration and writes or submits it.
pub async fn register_validator(args: RegisterValidatorArgs) -> anyhow::Result<()> {
    if !(1..=conclave_core::RLN_MAX_LIMIT).contains(&args.limit) {
        bail!(
            "--limit {}: expected 1 to {} messages per epoch",
            args.limit,
            conclave_core::RLN_MAX_LIMIT
        );
    }
    let secret = load_validator_keystore(&args.keystore, &args.password_file)?;
    let id = keys::load_rln(&args.rln_key)?;
    let commitment = conclave_rln::fr_to_bytes(&id.rate_commitment(args.limit));
    let online = match (&args.rpc_url, args.chain_id) {
        (Some(url), _) => {
            let relayer =
                RegistryAdmin::connect(url, args.contract, submitter(&args.eth_key_file)?)?;
            let chain_id = relayer.chain_id().await?;
            Some((relayer, chain_id))
        }
        (None, _) => None,
    };
    let chain_id = match (&online, args.chain_id) {
        (Some((_, id)), Some(given)) if *id != given => {
            bail!(
                "--chain-id {given}, but {} is chain {id}",
                args.rpc_url.unwrap_or_default()
            )
        }
        (Some((_, id)), _) => *id,
        (None, Some(id)) => id,
        (None, None) => bail!("offline signing needs --chain-id"),
    };
    let signed = SignedRegistration::sign(&secret, commitment, args.limit, chain_id, args.contract);
    drop(secret);
    match online {
        None => {
            let out = args.out.context("--out FILE or --rpc-url")?;
            write_registration(&out, &signed)?;
            println!(
                "wrote {} ({VALIDATOR_REGISTRATION_FORMAT}): validator 0x{} registers rate commitment {} (limit {}) on registry {} of chain {}",
                out.display(),
                hex::encode(signed.validator_pubkey),
                signed.rate_commitment,
                signed.limit,
                signed.registry,
                signed.chain_id
            );
        }
        Some((relayer, _)) => submit(&relayer, &signed, &args.keystore).await?,
    }
    Ok(())
}

fn write_registration(out: &Path, signed: &SignedRegistration) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(signed)? + "\n";
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .with_context(|| format!("writing {}", out.display()))
}

/// Submits a signed registration; prints the leaf and the gas.
pub async fn submit(
    relayer: &RegistryAdmin,
    signed: &SignedRegistration,
    from: &Path,
) -> anyhow::Result<()> {
    let (tx, index) = relayer.register_validator(signed).await?;
    println!(
        "submitted {}: validator 0x{} registered RLN leaf {index} (limit {}), submitted by {}\ntx {} in block {}, gas {}",
        from.display(),
        hex::encode(signed.validator_pubkey),
        signed.limit,
        relayer.signer(),
        tx.tx_hash,
        tx.block,
        tx.gas_used
    );
    Ok(())
}

/// Reads `path` as a validator registration if its format says it is one.
pub fn read_if_registration(path: &Path) -> anyhow::Result<Option<SignedRegistration>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let format = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_owned));
    if format.as_deref() != Some(VALIDATOR_REGISTRATION_FORMAT) {
        return Ok(None);
    }
    let signed = SignedRegistration::parse(&text).with_context(|| path.display().to_string())?;
    signed
        .verify()
        .with_context(|| format!("{}: the validator's signature", path.display()))?;
    Ok(Some(signed))
}
