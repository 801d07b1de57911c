//! Operator actions signed offline: EIP-712 typed data in the registry's domain (name
//! "ConclaveRegistry", version "1", chain id, registry address), written to a JSON file on the
//! machine that holds the cold key, read back on any online machine and submitted by any funded
//! account through the contract's `…BySig` entry points. The contract checks the signature with
//! `ecrecover` (low s, the exact signer) for an EOA operator and with ERC-1271 for a contract
//! operator (a Safe), so the submitter is trusted with nothing.

use std::fmt;

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::SignerSync;
use alloy::sol_types::{Eip712Domain, SolStruct};
use conclave_core::PeerId;
use serde::{Deserialize, Serialize};

use super::admin::{AdminError, PrivateKeySigner, RegistryAdmin, TxOutcome};
use super::bindings::ConclaveRegistry;

/// The typed structs the contract hashes (its `…_TYPEHASH` constants spell the same types).
mod typed {
    alloy::sol! {
        struct Authorize { address operator; bytes peerId; uint64 scopes; uint64 validFrom; uint64 validUntil; uint256 nonce; uint256 deadline; }
        struct Revoke { address operator; bytes peerId; uint64 effectiveBlock; uint256 nonce; uint256 deadline; }
        struct Rotate { address operator; bytes oldPeerId; bytes newPeerId; uint64 scopes; uint64 validUntil; uint64 revokeOldAt; uint256 nonce; uint256 deadline; }
        struct SetNodeAddresses { address operator; bytes peerId; string[] addresses; uint256 nonce; uint256 deadline; }
        struct RegisterRln { address operator; uint256 rateCommitment; uint32 limit; uint256 nonce; uint256 deadline; }
        struct RemoveRln { address operator; uint256 index; uint256 nonce; uint256 deadline; }
    }
}

/// PeerIds in the file in their usual text form (`12D3KooW…`).
mod peer_text {
    use conclave_core::PeerId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &PeerId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(p)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PeerId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e| serde::de::Error::custom(format!("peer id `{text}`: {e}")))
    }
}

/// The version tag of the JSON file; a file of another version is refused.
pub const SIGNED_ACTION_FORMAT: &str = "conclave-signed-action/1";

/// What an operator authorizes, with the same parameters as the `msg.sender` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OperatorAction {
    Authorize {
        #[serde(with = "peer_text")]
        peer_id: PeerId,
        /// The scope bitmask (bit → topic name as governance defined it).
        scopes: u64,
        /// First valid block (0: the block the submission lands in).
        valid_from: u64,
        /// First block no longer valid (`OPEN_ENDED`: until revoked).
        valid_until: u64,
    },
    Revoke {
        #[serde(with = "peer_text")]
        peer_id: PeerId,
        /// From this block on (0: the block the submission lands in).
        effective_block: u64,
    },
    Rotate {
        #[serde(with = "peer_text")]
        old_peer_id: PeerId,
        #[serde(with = "peer_text")]
        new_peer_id: PeerId,
        scopes: u64,
        valid_until: u64,
        revoke_old_at: u64,
    },
    SetNodeAddresses {
        #[serde(with = "peer_text")]
        peer_id: PeerId,
        addresses: Vec<String>,
    },
    RegisterRln {
        /// `0x`-prefixed big-endian hex, as `conclave rln show` prints it.
        rate_commitment: B256,
        limit: u32,
    },
    RemoveRln {
        index: u64,
    },
}

/// An operator action with its signature: the file that travels from the offline machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedAction {
    pub format: String,
    pub action: OperatorAction,
    /// The operator the action is for: an EOA (its cold key signs) or a contract (ERC-1271).
    pub operator: Address,
    /// The operator's next nonce on the registry (`nonces(operator)`); each is usable once.
    pub nonce: u64,
    /// Unix time after which the registry refuses it.
    pub deadline: u64,
    pub chain_id: u64,
    pub registry: Address,
    /// 65 bytes r ‖ s ‖ v for an EOA; for a contract operator whatever it checks (a Safe: its
    /// owners' signatures over its SafeMessage hash, concatenated in ascending owner order).
    pub signature: Bytes,
}

/// Where a signed action is valid: the registry's EIP-712 domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionDomain {
    pub chain_id: u64,
    pub registry: Address,
}

impl ActionDomain {
    fn eip712(&self) -> Eip712Domain {
        Eip712Domain::new(
            Some("ConclaveRegistry".into()),
            Some("1".into()),
            Some(U256::from(self.chain_id)),
            Some(self.registry),
            None,
        )
    }
}

impl OperatorAction {
    /// The EIP-712 digest the operator signs (what the contract recomputes).
    pub fn digest(
        &self,
        operator: Address,
        nonce: u64,
        deadline: u64,
        domain: ActionDomain,
    ) -> B256 {
        let (nonce, deadline) = (U256::from(nonce), U256::from(deadline));
        let d = domain.eip712();
        let peer = |p: &PeerId| Bytes::from(p.to_bytes());
        match self {
            OperatorAction::Authorize {
                peer_id,
                scopes,
                valid_from,
                valid_until,
            } => typed::Authorize {
                operator,
                peerId: peer(peer_id),
                scopes: *scopes,
                validFrom: *valid_from,
                validUntil: *valid_until,
                nonce,
                deadline,
            }
            .eip712_signing_hash(&d),
            OperatorAction::Revoke {
                peer_id,
                effective_block,
            } => typed::Revoke {
                operator,
                peerId: peer(peer_id),
                effectiveBlock: *effective_block,
                nonce,
                deadline,
            }
            .eip712_signing_hash(&d),
            OperatorAction::Rotate {
                old_peer_id,
                new_peer_id,
                scopes,
                valid_until,
                revoke_old_at,
            } => typed::Rotate {
                operator,
                oldPeerId: peer(old_peer_id),
                newPeerId: peer(new_peer_id),
                scopes: *scopes,
                validUntil: *valid_until,
                revokeOldAt: *revoke_old_at,
                nonce,
                deadline,
            }
            .eip712_signing_hash(&d),
            OperatorAction::SetNodeAddresses { peer_id, addresses } => typed::SetNodeAddresses {
                operator,
                peerId: peer(peer_id),
                addresses: addresses.clone(),
                nonce,
                deadline,
            }
            .eip712_signing_hash(&d),
            OperatorAction::RegisterRln {
                rate_commitment,
                limit,
            } => typed::RegisterRln {
                operator,
                rateCommitment: U256::from_be_bytes(rate_commitment.0),
                limit: *limit,
                nonce,
                deadline,
            }
            .eip712_signing_hash(&d),
            OperatorAction::RemoveRln { index } => typed::RemoveRln {
                operator,
                index: U256::from(*index),
                nonce,
                deadline,
            }
            .eip712_signing_hash(&d),
        }
    }
}

/// Why a signed action file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedActionError {
    #[error("not a signed action file: {0}")]
    Format(String),
    #[error("signature is {0} bytes; an EOA signature is 65 (r, s, v)")]
    Length(usize),
    #[error("signature's s is in the upper half of the curve order (a malleated twin; the registry refuses it)")]
    Malleable,
    #[error("signature does not recover: {0}")]
    Unrecoverable(String),
}

/// Half the secp256k1 group order, as the contract bounds s.
const HALF_ORDER: U256 = U256::from_limbs([
    0xdfe9_2f46_681b_20a0,
    0x5d57_6e73_57a4_501d,
    0xffff_ffff_ffff_ffff,
    0x7fff_ffff_ffff_ffff,
]);

/// What checking a signed action offline found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The signature recovers to the operator.
    SignedByOperator,
    /// It recovers to another key.
    SignedBy(Address),
    /// The operator's own check (ERC-1271) decides, on-chain; not checkable offline.
    ContractOperator,
}

impl SignedAction {
    /// Signs `action` for `operator` with `key` (the operator's own key for an EOA operator).
    pub fn sign(
        action: OperatorAction,
        key: &PrivateKeySigner,
        nonce: u64,
        deadline: u64,
        domain: ActionDomain,
    ) -> Result<Self, AdminError> {
        let operator = key.address();
        let digest = action.digest(operator, nonce, deadline, domain);
        let signature = key
            .sign_hash_sync(&digest)
            .map_err(|e| AdminError::Key(e.to_string()))?;
        Ok(SignedAction {
            format: SIGNED_ACTION_FORMAT.into(),
            action,
            operator,
            nonce,
            deadline,
            chain_id: domain.chain_id,
            registry: domain.registry,
            signature: Bytes::from(signature.as_bytes().to_vec()),
        })
    }

    /// Signs `action` for the Safe at `safe` with the keys of `owners` (at least its threshold
    /// of them): what the Safe accepts under ERC-1271.
    pub fn sign_as_safe(
        action: OperatorAction,
        safe: Address,
        owners: &[&PrivateKeySigner],
        nonce: u64,
        deadline: u64,
        domain: ActionDomain,
    ) -> Result<Self, AdminError> {
        let digest = action.digest(safe, nonce, deadline, domain);
        Ok(SignedAction {
            format: SIGNED_ACTION_FORMAT.into(),
            action,
            operator: safe,
            nonce,
            deadline,
            chain_id: domain.chain_id,
            registry: domain.registry,
            signature: super::safe::owners_signature(safe, domain.chain_id, digest, owners)?,
        })
    }

    /// Reads a signed action file's text.
    pub fn parse(text: &str) -> Result<Self, SignedActionError> {
        let a: SignedAction =
            serde_json::from_str(text).map_err(|e| SignedActionError::Format(e.to_string()))?;
        if a.format != SIGNED_ACTION_FORMAT {
            return Err(SignedActionError::Format(format!(
                "format `{}`, expected `{SIGNED_ACTION_FORMAT}`",
                a.format
            )));
        }
        Ok(a)
    }

    pub fn domain(&self) -> ActionDomain {
        ActionDomain {
            chain_id: self.chain_id,
            registry: self.registry,
        }
    }

    /// The digest this action's signature must cover.
    pub fn digest(&self) -> B256 {
        self.action
            .digest(self.operator, self.nonce, self.deadline, self.domain())
    }

    /// Who signed it, as far as can be told offline. `is_contract` says whether the operator
    /// is a contract (then only the chain can check its signature).
    pub fn verify(&self, is_contract: bool) -> Result<Verdict, SignedActionError> {
        if is_contract {
            return Ok(Verdict::ContractOperator);
        }
        if self.signature.len() != 65 {
            return Err(SignedActionError::Length(self.signature.len()));
        }
        if U256::from_be_slice(&self.signature[32..64]) > HALF_ORDER {
            return Err(SignedActionError::Malleable);
        }
        let sig = alloy::primitives::Signature::try_from(self.signature.as_ref())
            .map_err(|e| SignedActionError::Unrecoverable(e.to_string()))?;
        let signer = sig
            .recover_address_from_prehash(&self.digest())
            .map_err(|e| SignedActionError::Unrecoverable(e.to_string()))?;
        Ok(if signer == self.operator {
            Verdict::SignedByOperator
        } else {
            Verdict::SignedBy(signer)
        })
    }
}

impl fmt::Display for OperatorAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let until = |b: u64| {
            if b == super::OPEN_ENDED {
                "until revoked".to_owned()
            } else {
                format!("until block {b}")
            }
        };
        let from = |b: u64| {
            if b == 0 {
                "from the block it lands in".to_owned()
            } else {
                format!("from block {b}")
            }
        };
        match self {
            OperatorAction::Authorize {
                peer_id,
                scopes,
                valid_from,
                valid_until,
            } => write!(
                f,
                "authorize node key {peer_id} for scope mask {scopes:#x}, {}, {}",
                from(*valid_from),
                until(*valid_until)
            ),
            OperatorAction::Revoke {
                peer_id,
                effective_block,
            } => write!(f, "revoke node key {peer_id} {}", from(*effective_block)),
            OperatorAction::Rotate {
                old_peer_id,
                new_peer_id,
                scopes,
                valid_until,
                revoke_old_at,
            } => write!(
                f,
                "rotate node key {old_peer_id} to {new_peer_id} (scope mask {scopes:#x}, {}); the old key revoked {}",
                until(*valid_until),
                from(*revoke_old_at)
            ),
            OperatorAction::SetNodeAddresses { peer_id, addresses } => write!(
                f,
                "set the addresses of node key {peer_id} to [{}]",
                addresses.join(", ")
            ),
            OperatorAction::RegisterRln {
                rate_commitment,
                limit,
            } => write!(
                f,
                "register the RLN membership {rate_commitment} with {limit} messages per epoch"
            ),
            OperatorAction::RemoveRln { index } => write!(f, "remove RLN membership {index}"),
        }
    }
}

impl RegistryAdmin {
    /// The nonce `operator`'s next signed action must carry.
    pub async fn nonce_of(&self, operator: Address) -> Result<u64, AdminError> {
        let n = self
            .contract
            .nonces(operator)
            .call()
            .await
            .map_err(|e| super::admin::rpc_or_revert(&self.url, e))?;
        Ok(n.saturating_to())
    }

    /// The chain this handle is connected to.
    pub async fn chain_id(&self) -> Result<u64, AdminError> {
        use alloy::providers::Provider;
        self.contract
            .provider()
            .get_chain_id()
            .await
            .map_err(|e| self.rpc(e))
    }

    /// Sends `action` as this handle's own (`msg.sender`) transaction: the form a signed
    /// action stands in for.
    pub async fn send(&self, action: &OperatorAction) -> Result<TxOutcome, AdminError> {
        match action {
            OperatorAction::Authorize {
                peer_id,
                scopes,
                valid_from,
                valid_until,
            } => {
                self.authorize(peer_id, *scopes, *valid_from, *valid_until)
                    .await
            }
            OperatorAction::Revoke {
                peer_id,
                effective_block,
            } => self.revoke(peer_id, *effective_block).await,
            OperatorAction::Rotate {
                old_peer_id,
                new_peer_id,
                scopes,
                valid_until,
                revoke_old_at,
            } => {
                self.rotate(
                    old_peer_id,
                    new_peer_id,
                    *scopes,
                    *valid_until,
                    *revoke_old_at,
                )
                .await
            }
            OperatorAction::SetNodeAddresses { peer_id, addresses } => {
                self.set_node_addresses(peer_id, addresses.clone()).await
            }
            OperatorAction::RegisterRln {
                rate_commitment,
                limit,
            } => self
                .register_rln(rate_commitment.0, *limit)
                .await
                .map(|(tx, _)| tx),
            OperatorAction::RemoveRln { index } => self.remove_rln(*index).await,
        }
    }

    /// Submits a signed action from this handle's account (any funded one).
    pub async fn submit(&self, a: &SignedAction) -> Result<TxOutcome, AdminError> {
        let sig = ConclaveRegistry::OperatorSignature {
            operator: a.operator,
            nonce: U256::from(a.nonce),
            deadline: U256::from(a.deadline),
            chainId: U256::from(a.chain_id),
            registry: a.registry,
            signature: a.signature.clone(),
        };
        let c = &self.contract;
        let peer = |p: &PeerId| Bytes::from(p.to_bytes());
        match &a.action {
            OperatorAction::Authorize {
                peer_id,
                scopes,
                valid_from,
                valid_until,
            } => {
                self.mine(c.authorizeBySig(peer(peer_id), *scopes, *valid_from, *valid_until, sig))
                    .await
            }
            OperatorAction::Revoke {
                peer_id,
                effective_block,
            } => {
                self.mine(c.revokeBySig(peer(peer_id), *effective_block, sig))
                    .await
            }
            OperatorAction::Rotate {
                old_peer_id,
                new_peer_id,
                scopes,
                valid_until,
                revoke_old_at,
            } => {
                let call = c.rotateBySig(
                    peer(old_peer_id),
                    peer(new_peer_id),
                    *scopes,
                    *valid_until,
                    *revoke_old_at,
                    sig,
                );
                self.mine(call).await
            }
            OperatorAction::SetNodeAddresses { peer_id, addresses } => {
                self.mine(c.setNodeAddressesBySig(peer(peer_id), addresses.clone(), sig))
                    .await
            }
            OperatorAction::RegisterRln {
                rate_commitment,
                limit,
            } => {
                let commitment = U256::from_be_bytes(rate_commitment.0);
                self.mine(c.registerRlnBySig(commitment, *limit, sig)).await
            }
            OperatorAction::RemoveRln { index } => {
                self.mine(c.removeRlnBySig(U256::from(*index), sig)).await
            }
        }
    }
}
