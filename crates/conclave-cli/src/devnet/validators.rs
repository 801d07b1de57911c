//! `--rln-validators`: every member's RLN membership is registered through an Ethereum
//! validator key (an EIP-2335 keystore per member in the devnet directory, opened with a
//! password file as an operator's machine would), then a forged registration (signed by another
//! validator's key) and a validator's second registration are tried. On anvil the contract
//! refuses both; with a registry file both are in the file and every member must leave them out
//! of its tree and name them in `/v1/membership`.

use std::path::Path;

use anyhow::Context;
use conclave_api::{AcceptedRegistration, MembershipAnswer, RefusedRegistration, ValidatorsReport};
use conclave_bls::{Registration, ValidatorSecret};
use conclave_core::OperatorId;
use conclave_node::keystore::{load_validator_keystore, write_validator_keystore, Strength};
use conclave_registry::evm::validators::SignedRegistration;
use conclave_registry::evm::{AdminError, RegistryAdmin};
use conclave_registry::RlnEntry;

use super::client;
use super::cluster::NodeProc;
use super::registry::operator;

const KEYSTORE_DIR: &str = "validators";
const FORGED: &str = "a forged registration (another validator's key signed it)";
const REPEATED: &str = "a validator's second registration";

/// Writes one EIP-2335 keystore per member (light scrypt) and its password file, then opens
/// each again through the password file.
pub fn keystores(dir: &Path, n: usize) -> anyhow::Result<Vec<ValidatorSecret>> {
    let kdir = dir.join(KEYSTORE_DIR);
    std::fs::create_dir_all(&kdir)?;
    let password = kdir.join("password.txt");
    conclave_node::keys::write_secret_file(&password, "devnet validators\n")?;
    (0..n)
        .map(|i| {
            let path = kdir.join(format!("keystore-{i}.json"));
            write_validator_keystore(
                &path,
                &ValidatorSecret::generate()?,
                &password,
                Strength::Light,
            )?;
            Ok(load_validator_keystore(&path, &password)?)
        })
        .collect()
}

fn hex_key(v: &ValidatorSecret) -> String {
    format!("0x{}", hex::encode(v.public_key()))
}

fn rate_bytes(e: &RlnEntry) -> anyhow::Result<[u8; 32]> {
    Ok(conclave_rln::fr_to_bytes(
        &conclave_rln::fr_from_hex(&e.rate_commitment)
            .map_err(|err| anyhow::anyhow!("rate commitment {}: {err}", e.rate_commitment))?,
    ))
}

/// A fresh rate commitment no member uses.
fn fresh_commitment(limit: u32) -> [u8; 32] {
    conclave_rln::fr_to_bytes(&conclave_rln::RlnIdentity::generate().rate_commitment(limit))
}

/// A file registry: signs every member's `[[rln]]` entry with its validator key (chain id 0, a
/// zero registry) and appends the two forgeries as further leaves.
pub fn sign_file_entries(
    dir: &Path,
    rln: &mut Vec<RlnEntry>,
    secrets: &[ValidatorSecret],
) -> anyhow::Result<ValidatorsReport> {
    let sign = |entry: &mut RlnEntry, key: &ValidatorSecret, signer: &ValidatorSecret| {
        let registration = Registration {
            validator_pubkey: key.public_key(),
            rate_commitment: rate_bytes(entry)?,
            limit: u64::from(entry.limit),
            chain_id: 0,
            registry: [0; 20],
        };
        entry.validator_pubkey = Some(hex_key(key));
        entry.validator_signature = Some(format!("0x{}", hex::encode(signer.sign(&registration))));
        anyhow::Ok(())
    };
    let mut accepted = Vec::new();
    for (entry, key) in rln.iter_mut().zip(secrets) {
        sign(entry, key, key)?;
        accepted.push(AcceptedRegistration {
            leaf: entry.index,
            validator: hex_key(key),
            gas: None,
        });
    }
    let limit = rln[0].limit;
    let extra = |index: usize| RlnEntry {
        operator: operator(0).to_string(),
        index: index as u32,
        rate_commitment: format!("0x{}", hex::encode(fresh_commitment(limit))),
        limit,
        validator_pubkey: None,
        validator_signature: None,
    };
    let mut forged = extra(rln.len());
    sign(&mut forged, &ValidatorSecret::generate()?, &secrets[1])?;
    let mut repeated = extra(rln.len() + 1);
    sign(&mut repeated, &secrets[0], &secrets[0])?;
    let refused = [(FORGED, forged.index), (REPEATED, repeated.index)]
        .map(|(what, leaf)| RefusedRegistration {
            attempt: format!("{what}, leaf {leaf}"),
            refusal: None,
        })
        .to_vec();
    rln.push(forged);
    rln.push(repeated);
    Ok(ValidatorsReport {
        registry: "file".into(),
        keystores: dir.join(KEYSTORE_DIR).display().to_string(),
        accepted,
        refused,
        nodes_skipping: None,
    })
}

/// With a file registry: asks each member what it skipped; a forgery counts as refused when
/// every member named its leaf, and a member counts when it named both.
pub async fn check_nodes(
    http: &reqwest::Client,
    nodes: &[NodeProc],
    report: &mut ValidatorsReport,
) -> anyhow::Result<()> {
    let leaves: Vec<u32> = report.accepted.iter().map(|a| a.leaf).collect();
    let forged_leaves = [leaves.len(), leaves.len() + 1];
    let mut named = [Vec::new(), Vec::new()];
    let mut skipping = 0;
    for node in nodes {
        let (_, m): (u16, MembershipAnswer) =
            client::get(http, &node.url("/v1/membership")).await?;
        let in_tree: Vec<u32> = m.view.rln.iter().map(|l| l.index).collect();
        let mut all = true;
        for (k, leaf) in forged_leaves.iter().enumerate() {
            let skip = m
                .skipped
                .iter()
                .find(|s| s.contains(&format!("RLN leaf {leaf}:")));
            match skip {
                Some(s) if !in_tree.contains(&(*leaf as u32)) => named[k].push(s.clone()),
                _ => all = false,
            }
        }
        skipping += usize::from(all);
    }
    for (k, r) in report.refused.iter_mut().enumerate() {
        if named[k].len() == nodes.len() {
            r.refusal = named[k]
                .first()
                .map(|s| format!("skipped by every member ({s})"));
        }
    }
    report.nodes_skipping = Some((skipping, nodes.len()));
    Ok(())
}

fn refusal<T>(outcome: Result<T, AdminError>) -> Option<String> {
    match outcome {
        Ok(_) => None,
        Err(AdminError::Reverted(why)) => Some(why),
        Err(e) => Some(format!("not submitted: {e}")),
    }
}

/// On-chain: governance admits each member's validator key under its operator, the validator
/// signs, `submitter` (any funded account) sends it; then the two forgeries.
pub async fn register_on_chain(
    dir: &Path,
    gov: &RegistryAdmin,
    submitter: &RegistryAdmin,
    operators: &[OperatorId],
    rln: &[RlnEntry],
    secrets: &[ValidatorSecret],
) -> anyhow::Result<ValidatorsReport> {
    let chain_id = gov.chain_id().await?;
    let contract = gov.contract();
    let mut accepted = Vec::new();
    for ((entry, key), op) in rln.iter().zip(secrets).zip(operators) {
        gov.assign_validators(*op, &[key.public_key()]).await?;
        let signed =
            SignedRegistration::sign(key, rate_bytes(entry)?, entry.limit, chain_id, contract);
        let (tx, leaf) = submitter
            .register_validator(&signed)
            .await
            .with_context(|| format!("registering validator {}", hex_key(key)))?;
        accepted.push(AcceptedRegistration {
            leaf: leaf as u32,
            validator: hex_key(key),
            gas: Some(tx.gas_used),
        });
    }
    let limit = rln[0].limit;
    // The forged key is admitted, so the signature is what refuses it.
    let impostor = ValidatorSecret::generate()?;
    gov.assign_validators(operators[0], &[impostor.public_key()])
        .await?;
    let mut forged = SignedRegistration::sign(
        &secrets[1],
        fresh_commitment(limit),
        limit,
        chain_id,
        contract,
    );
    forged.validator_pubkey = impostor.public_key().into();
    let repeated = SignedRegistration::sign(
        &secrets[0],
        fresh_commitment(limit),
        limit,
        chain_id,
        contract,
    );
    let refused = vec![
        RefusedRegistration {
            attempt: FORGED.into(),
            refusal: refusal(submitter.register_validator(&forged).await),
        },
        RefusedRegistration {
            attempt: REPEATED.into(),
            refusal: refusal(submitter.register_validator(&repeated).await),
        },
    ];
    Ok(ValidatorsReport {
        registry: "anvil".into(),
        keystores: dir.join(KEYSTORE_DIR).display().to_string(),
        accepted,
        refused,
        nodes_skipping: None,
    })
}
