//! Safe multisig operators: signing a registry action as a Safe's owners, and (for tests and
//! the devnet) deploying the real Safe contracts from the npm package
//! `@safe-global/safe-contracts` 1.4.1, whose build artifacts carry the bytecode.
//!
//! A Safe validates an ERC-1271 signature through its `CompatibilityFallbackHandler`: for a
//! digest `d` it checks its owners' signatures over its SafeMessage hash
//! `keccak256(0x1901 ‖ safeDomain ‖ keccak256(SAFE_MSG_TYPEHASH ‖ keccak256(d)))`, where
//! `safeDomain = keccak256(keccak256("EIP712Domain(uint256 chainId,address verifyingContract)")
//! ‖ chainId ‖ safe)`; each owner's 65-byte signature (v 27/28), concatenated in ascending owner
//! order, at least threshold of them.

use std::path::{Path, PathBuf};

use alloy::network::TransactionBuilder;
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::sol_types::SolValue;

use super::admin::{signing_provider, wait_receipt, AdminError, PrivateKeySigner};

alloy::sol! {
    #[sol(rpc)]
    interface SafeProxyFactory {
        event ProxyCreation(address indexed proxy, address singleton);
        function createProxyWithNonce(address singleton, bytes initializer, uint256 saltNonce) external returns (address proxy);
    }

    /// Only encoded, as the proxy's initializer.
    interface Safe {
        function setup(address[] owners, uint256 threshold, address to, bytes data, address fallbackHandler, address paymentToken, uint256 payment, address paymentReceiver) external;
    }
}

/// keccak256("SafeMessage(bytes message)"), as Safe 1.4.1's fallback handler has it.
const SAFE_MSG_TYPEHASH: &str = "SafeMessage(bytes message)";
const SAFE_DOMAIN_TYPE: &str = "EIP712Domain(uint256 chainId,address verifyingContract)";

/// The hash a Safe's owners sign so that the Safe accepts `digest` under ERC-1271.
pub fn safe_message_hash(safe: Address, chain_id: u64, digest: B256) -> B256 {
    let domain = keccak256((keccak256(SAFE_DOMAIN_TYPE), U256::from(chain_id), safe).abi_encode());
    let message = keccak256((keccak256(SAFE_MSG_TYPEHASH), keccak256(digest)).abi_encode());
    let mut pre = Vec::with_capacity(66);
    pre.extend_from_slice(&[0x19, 0x01]);
    pre.extend_from_slice(domain.as_slice());
    pre.extend_from_slice(message.as_slice());
    keccak256(pre)
}

/// The owners' signatures on `digest` for `safe`, in the order the Safe checks them.
pub fn owners_signature(
    safe: Address,
    chain_id: u64,
    digest: B256,
    owners: &[&PrivateKeySigner],
) -> Result<Bytes, AdminError> {
    let hash = safe_message_hash(safe, chain_id, digest);
    let mut sorted: Vec<&&PrivateKeySigner> = owners.iter().collect();
    sorted.sort_by_key(|k| k.address());
    let mut out = Vec::with_capacity(65 * owners.len());
    for key in sorted {
        let sig = key
            .sign_hash_sync(&hash)
            .map_err(|e| AdminError::Key(e.to_string()))?;
        out.extend_from_slice(&sig.as_bytes());
    }
    Ok(Bytes::from(out))
}

/// The owners whose 65-byte signatures (v 27/28) `signature` holds over `safe`'s message hash
/// for `digest`, in the order they appear.
pub fn signing_owners(
    safe: Address,
    chain_id: u64,
    digest: B256,
    signature: &[u8],
) -> Result<Vec<Address>, String> {
    if signature.is_empty() || !signature.len().is_multiple_of(65) {
        return Err(format!(
            "{} bytes is not a whole number of 65-byte owner signatures",
            signature.len()
        ));
    }
    let hash = safe_message_hash(safe, chain_id, digest);
    signature
        .chunks_exact(65)
        .enumerate()
        .map(|(i, chunk)| {
            alloy::primitives::Signature::try_from(chunk)
                .and_then(|s| s.recover_address_from_prehash(&hash))
                .map_err(|e| format!("owner signature {i}: {e}"))
        })
        .collect()
}

/// Merges owners' signatures for one digest (each part one or more 65-byte signatures, any
/// order) into the Safe's format: ascending by owner, each owner once.
pub fn combine_owner_signatures(
    safe: Address,
    chain_id: u64,
    digest: B256,
    parts: &[Bytes],
) -> Result<Bytes, String> {
    let mut signed: Vec<(Address, &[u8])> = Vec::new();
    for part in parts {
        let owners = signing_owners(safe, chain_id, digest, part)?;
        for (owner, chunk) in owners.into_iter().zip(part.chunks_exact(65)) {
            if signed.iter().any(|(o, _)| *o == owner) {
                return Err(format!("owner {owner} signed twice"));
            }
            signed.push((owner, chunk));
        }
    }
    signed.sort_by_key(|(o, _)| *o);
    let joined: Vec<u8> = signed.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    Ok(Bytes::from(joined))
}

/// Where the Safe artifacts are: `$CONCLAVE_SAFE_ARTIFACTS`, else the repository's
/// node_modules (installed by `scripts/install-deps.sh`).
pub fn artifacts_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("CONCLAVE_SAFE_ARTIFACTS") {
        return p.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules/@safe-global/safe-contracts/build/artifacts/contracts")
}

fn bytecode(relative: &str) -> Result<Bytes, AdminError> {
    let path = artifacts_dir().join(relative);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        AdminError::Key(format!(
            "{}: {e} (run scripts/install-deps.sh chain)",
            path.display()
        ))
    })?;
    #[derive(serde::Deserialize)]
    struct Artifact {
        bytecode: Bytes,
    }
    serde_json::from_str::<Artifact>(&text)
        .map(|a| a.bytecode)
        .map_err(|e| AdminError::Key(format!("{}: not a build artifact: {e}", path.display())))
}

/// The Safe 1.4.1 singleton, proxy factory and fallback handler, deployed once per chain.
#[derive(Debug, Clone, Copy)]
pub struct SafeDeployment {
    pub singleton: Address,
    pub factory: Address,
    pub fallback_handler: Address,
}

async fn deploy(url: &str, key: &PrivateKeySigner, code: Bytes) -> Result<Address, AdminError> {
    let p = signing_provider(url, key.clone())?;
    let rpc = |e: String| AdminError::Rpc {
        url: url.into(),
        message: e,
    };
    let tx = TransactionRequest::default().with_deploy_code(code);
    let pending = p
        .send_transaction(tx)
        .await
        .map_err(|e| rpc(e.to_string()))?;
    let receipt = wait_receipt(pending).await.map_err(rpc)?;
    receipt
        .contract_address
        .ok_or_else(|| rpc("the deployment receipt has no contract address".into()))
}

impl SafeDeployment {
    /// Deploys the three contracts from the npm package's artifacts, paid by `key`.
    pub async fn deploy(url: &str, key: &PrivateKeySigner) -> Result<Self, AdminError> {
        Ok(SafeDeployment {
            singleton: deploy(url, key, bytecode("Safe.sol/Safe.json")?).await?,
            factory: deploy(
                url,
                key,
                bytecode("proxies/SafeProxyFactory.sol/SafeProxyFactory.json")?,
            )
            .await?,
            fallback_handler: deploy(
                url,
                key,
                bytecode(
                    "handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json",
                )?,
            )
            .await?,
        })
    }

    /// Creates a Safe of `owners` needing `threshold` of them, with the fallback handler that
    /// answers ERC-1271; returns its address.
    pub async fn create_safe(
        &self,
        url: &str,
        key: &PrivateKeySigner,
        owners: &[Address],
        threshold: u64,
        salt: u64,
    ) -> Result<Address, AdminError> {
        let p = signing_provider(url, key.clone())?;
        let setup = Safe::setupCall {
            owners: owners.to_vec(),
            threshold: U256::from(threshold),
            to: Address::ZERO,
            data: Bytes::new(),
            fallbackHandler: self.fallback_handler,
            paymentToken: Address::ZERO,
            payment: U256::ZERO,
            paymentReceiver: Address::ZERO,
        };
        let factory = SafeProxyFactory::new(self.factory, &p);
        let call = factory.createProxyWithNonce(
            self.singleton,
            alloy::sol_types::SolCall::abi_encode(&setup).into(),
            U256::from(salt),
        );
        let rpc = |e: String| AdminError::Rpc {
            url: url.into(),
            message: e,
        };
        let pending = call.send().await.map_err(|e| rpc(e.to_string()))?;
        let receipt = wait_receipt(pending).await.map_err(rpc)?;
        receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<SafeProxyFactory::ProxyCreation>().ok())
            .map(|l| l.inner.data.proxy)
            .ok_or_else(|| rpc("createProxyWithNonce emitted no ProxyCreation".into()))
    }
}
