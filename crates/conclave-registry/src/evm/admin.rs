//! Writing to the registry: governance and operator transactions, with the contract's revert
//! reasons turned into plain words. Used by `conclave registry …`, the devnet and the tests.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, FixedBytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
pub use alloy::signers::local::PrivateKeySigner;
use conclave_core::{GroupId, OperatorId, PeerId};

use super::bindings::ConclaveRegistry::{
    self, ConclaveRegistryErrors as E, ConclaveRegistryInstance,
};

/// Why a registry transaction did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("signing key: {0}")]
    Key(String),
    #[error("RPC URL `{0}` is invalid")]
    Url(String),
    #[error("the registry refused: {0}")]
    Reverted(String),
    #[error("RPC {url}: {message}")]
    Rpc { url: String, message: String },
}

/// A mined registry transaction.
#[derive(Debug, Clone, Copy)]
pub struct TxOutcome {
    pub tx_hash: B256,
    pub block: u64,
    pub gas_used: u64,
}

/// What a slashing submission achieved.
#[derive(Debug, Clone, Copy)]
pub enum SlashOutcome {
    /// Our transaction removed the membership.
    Removed(TxOutcome),
    /// Somebody else's did (or governance removed it) first: nothing left to do.
    AlreadyRemoved,
}

/// A signer's handle on one deployed registry.
pub struct RegistryAdmin {
    pub(super) contract: ConclaveRegistryInstance<DynProvider>,
    pub(super) url: String,
    signer: Address,
}

/// Parses a hex secp256k1 key (`0x…` or bare), as in key files and `CONCLAVE_ETH_KEY`.
pub fn parse_eth_key(text: &str) -> Result<PrivateKeySigner, AdminError> {
    text.trim().parse::<PrivateKeySigner>().map_err(|_| {
        AdminError::Key(
            "expected 32 bytes of hex (an Ethereum private key, 0x-prefixed or not)".into(),
        )
    })
}

/// A signing provider for `url`.
pub fn signing_provider(url: &str, signer: PrivateKeySigner) -> Result<DynProvider, AdminError> {
    let parsed = url.parse().map_err(|_| AdminError::Url(url.to_owned()))?;
    // Nonces are asked of the node for every transaction: a cached nonce manager would leave a
    // gap after a transaction that failed gas estimation (a revert), and stall every later one.
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(parsed)
        .erased())
}

/// How long a transaction may take to be mined before the command gives up.
const MINING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Waits for a sent transaction's receipt by polling `eth_getTransactionReceipt`. (alloy's block
/// heartbeat can miss a block anvil mines the instant the transaction arrives, and then waits
/// forever.)
pub async fn wait_receipt<N: alloy::network::Network>(
    pending: alloy::providers::PendingTransactionBuilder<N>,
) -> Result<N::ReceiptResponse, String> {
    let hash = *pending.tx_hash();
    let provider = pending.provider().clone();
    let deadline = tokio::time::Instant::now() + MINING_TIMEOUT;
    loop {
        let receipt = provider
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(r) = receipt {
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "transaction {hash} was not mined within {MINING_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn peer_text(bytes: &Bytes) -> String {
    PeerId::from_bytes(bytes)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| format!("0x{}", alloy::hex::encode(bytes)))
}

/// The contract's custom errors, in words an operator can act on.
pub fn describe(e: &E) -> String {
    match e {
        E::NotOwner(x) => format!("{} is not the registry owner (governance)", x.caller),
        E::NotOperator(x) => format!("{} is not a registered operator", x.caller),
        E::ZeroAddress(_) => "the zero address is not allowed".into(),
        E::AlreadyOperator(x) => format!("{} is already an operator", x.operator),
        E::UnknownOperator(x) => format!("{} is not an operator", x.operator),
        E::EmptyName(_) => "a scope needs a name".into(),
        E::UndefinedScope(x) => format!("scope mask {:#x} uses undefined scope bits", x.scopes),
        E::NoScopes(_) => "a node key needs at least one scope".into(),
        E::EmptyPeerId(_) => "the peer id is empty".into(),
        E::AlreadyAuthorized(x) => format!(
            "node {} is already authorized (by {}); revoke it first",
            peer_text(&x.peerId),
            x.operator
        ),
        E::UnknownNode(x) => format!("node {} was never authorized", peer_text(&x.peerId)),
        E::NotYourNode(x) => format!(
            "node {} belongs to {}, not to the sender",
            peer_text(&x.peerId),
            x.operator
        ),
        E::AlreadyRevoked(x) => format!(
            "node {} is already revoked from block {}",
            peer_text(&x.peerId),
            x.effectiveBlock
        ),
        E::InvalidWindow(x) => format!(
            "validity window [{}, {}) is empty or already over (current block {})",
            x.validFrom, x.validUntil, x.currentBlock
        ),
        E::InvalidRevocationBlock(x) => format!(
            "revocation block {} is in the past (current block {})",
            x.effectiveBlock, x.currentBlock
        ),
        E::TooManyAddresses(x) => format!("{} addresses given, at most {}", x.count, x.max),
        E::EmptyGroup(x) => format!("group {} needs at least one seat", x.groupId),
        E::TooManySeats(x) => format!("{} seats given, at most {}", x.count, x.max),
        E::SeatNotOperator(x) => {
            format!("seat {} of group {} is not an operator", x.seat, x.groupId)
        }
        E::UnknownGroup(x) => format!("group {} does not exist", x.groupId),
        E::InvalidRlnMembership(x) => format!(
            "RLN registration needs a non-zero rate commitment and limit (got {}, {})",
            x.rateCommitment, x.limit
        ),
        E::UnknownRlnIndex(x) => format!("no RLN registration at index {}", x.index),
        E::RlnAlreadyRemoved(x) => format!("RLN registration {} is already removed", x.index),
        E::NotRlnOwner(x) => format!(
            "{} may not remove RLN registration {} (only its operator or governance)",
            x.caller, x.index
        ),
        E::RlnTreeFull(x) => format!("the RLN tree is full (indices up to {})", x.maxIndex),
        E::WrongRlnSecret(x) => format!(
            "the secret does not open the rate commitment of RLN registration {}",
            x.index
        ),
        E::RlnCapReached(x) => format!(
            "{} already holds {} live RLN membership(s), its cap (governance may raise it; or remove one)",
            x.operator, x.cap
        ),
        E::InvalidRlnCap(x) => format!(
            "RLN membership cap {} for {} is outside 1..={}",
            x.cap,
            x.operator,
            conclave_core::RLN_MAX_MEMBERSHIPS
        ),
        E::WrongChain(x) => format!(
            "the action was signed for chain {}, not this chain ({})",
            x.signedFor, x.chainId
        ),
        E::WrongRegistry(x) => format!(
            "the action was signed for registry {}, not this one ({})",
            x.signedFor, x.registry
        ),
        E::SignatureExpired(x) => format!(
            "the action's deadline {} has passed (block time {})",
            x.deadline, x.timestamp
        ),
        E::NonceUsed(x) => format!(
            "nonce {} of {} is already used: this action was submitted before (a replay)",
            x.nonce, x.operator
        ),
        E::NonceTooHigh(x) => format!(
            "nonce {} of {} is ahead of the registry's ({}): submit the earlier actions first",
            x.nonce, x.operator, x.expected
        ),
        E::MalformedSignature(x) => format!(
            "the signature is not 65 bytes r, s, v with v 27 or 28 ({} bytes)",
            x.length
        ),
        E::MalleableSignature(_) => {
            "the signature's s is in the upper half of the curve order (a malleated twin)".into()
        }
        E::WrongSigner(x) => format!(
            "the signature is by {}, not by the operator {}",
            x.recovered, x.operator
        ),
        E::ContractSignatureRefused(x) => format!(
            "operator contract {} did not accept the signature (ERC-1271)",
            x.operator
        ),
        E::MalformedValidatorKey(x) => format!(
            "validator key {} is not a 48-byte compressed BLS key matching the given point",
            x.pubkey
        ),
        E::ValidatorNotAssigned(x) => format!(
            "validator key {} is not admitted by governance (assignValidators)",
            x.pubkey
        ),
        E::ValidatorAlreadyRegistered(x) => format!(
            "validator {} has already registered an RLN membership (one per validator)",
            x.pubkey
        ),
        E::RlnCommitmentUsed(x) => format!(
            "rate commitment {:#x} is already registered (one identity, one leaf)",
            x.rateCommitment
        ),
        E::MalformedValidatorSignature(_) => {
            "the BLS signature or key is not a valid point of its subgroup".into()
        }
        E::WrongValidatorSignature(x) => format!(
            "the BLS signature is not validator {}'s over this registration",
            x.pubkey
        ),
    }
}

impl RegistryAdmin {
    /// Deploys a fresh registry owned by `signer`.
    pub async fn deploy(
        url: &str,
        signer: PrivateKeySigner,
    ) -> Result<(Self, TxOutcome), AdminError> {
        let address = signer.address();
        let p = signing_provider(url, signer)?;
        let builder = ConclaveRegistry::deploy_builder(&p);
        let pending = builder.send().await.map_err(|e| rpc_or_revert(url, e))?;
        let receipt = wait_receipt(pending)
            .await
            .map_err(|message| AdminError::Rpc {
                url: url.into(),
                message,
            })?;
        let contract = receipt.contract_address.ok_or_else(|| AdminError::Rpc {
            url: url.into(),
            message: "deployment receipt has no contract address".into(),
        })?;
        let outcome = outcome_of(&receipt);
        Ok((
            RegistryAdmin {
                contract: ConclaveRegistry::new(contract, p),
                url: url.into(),
                signer: address,
            },
            outcome,
        ))
    }

    /// A handle on the registry at `contract`, signing as `signer`.
    pub fn connect(
        url: &str,
        contract: Address,
        signer: PrivateKeySigner,
    ) -> Result<Self, AdminError> {
        let address = signer.address();
        Ok(RegistryAdmin {
            contract: ConclaveRegistry::new(contract, signing_provider(url, signer)?),
            url: url.into(),
            signer: address,
        })
    }

    /// The registry this handle acts on.
    pub fn contract(&self) -> Address {
        *self.contract.address()
    }

    /// The account transactions are signed with.
    pub fn signer(&self) -> Address {
        self.signer
    }

    /// The chain's current block number.
    pub async fn block(&self) -> Result<u64, AdminError> {
        self.contract
            .provider()
            .get_block_number()
            .await
            .map_err(|e| self.rpc(e))
    }

    pub(super) fn rpc(&self, e: impl std::fmt::Display) -> AdminError {
        AdminError::Rpc {
            url: self.url.clone(),
            message: e.to_string(),
        }
    }

    pub(super) async fn mine<D: alloy::contract::CallDecoder>(
        &self,
        call: alloy::contract::CallBuilder<&DynProvider, D>,
    ) -> Result<TxOutcome, AdminError> {
        Ok(outcome_of(&self.mine_receipt(call).await?))
    }

    async fn mine_receipt<D: alloy::contract::CallDecoder>(
        &self,
        call: alloy::contract::CallBuilder<&DynProvider, D>,
    ) -> Result<alloy::rpc::types::TransactionReceipt, AdminError> {
        let pending = call.send().await.map_err(|e| rpc_or_revert(&self.url, e))?;
        let receipt = wait_receipt(pending).await.map_err(|e| self.rpc(e))?;
        if !receipt.status() {
            return Err(AdminError::Reverted(format!(
                "transaction {} reverted",
                receipt.transaction_hash
            )));
        }
        Ok(receipt)
    }

    /// Governance: admits an operator (its cold address).
    pub async fn add_operator(&self, op: OperatorId) -> Result<TxOutcome, AdminError> {
        self.mine(self.contract.addOperator(Address::from(op.0)))
            .await
    }

    /// Governance: removes an operator; its node keys stop being valid for good.
    pub async fn remove_operator(&self, op: OperatorId) -> Result<TxOutcome, AdminError> {
        self.mine(self.contract.removeOperator(Address::from(op.0)))
            .await
    }

    /// Governance: names scope bit `bit` (a topic name nodes are authorized for).
    pub async fn define_scope(&self, bit: u8, name: &str) -> Result<TxOutcome, AdminError> {
        self.mine(self.contract.defineScope(bit, name.into())).await
    }

    /// The scope bitmask for topic names, from the scopes defined on-chain.
    pub async fn scope_mask(&self, names: &[&str]) -> Result<u64, AdminError> {
        // One pass over the scope bits, stopping once every name is found.
        let mut mask = 0u64;
        let mut missing: Vec<&str> = names.to_vec();
        for bit in 0..64u8 {
            if missing.is_empty() {
                break;
            }
            let defined = self
                .contract
                .scopeName(bit)
                .call()
                .await
                .map_err(|e| self.rpc(e))?;
            let before = missing.len();
            missing.retain(|n| *n != defined);
            if missing.len() < before {
                mask |= 1 << bit;
            }
        }
        match missing.first() {
            None => Ok(mask),
            Some(name) => Err(AdminError::Reverted(format!(
                "scope `{name}` is not defined on the registry (governance defines scopes)"
            ))),
        }
    }

    /// Authorizes a node key for the signer (an operator); `valid_from` 0 = now.
    pub async fn authorize(
        &self,
        peer: &PeerId,
        scopes: u64,
        valid_from: u64,
        valid_until: u64,
    ) -> Result<TxOutcome, AdminError> {
        let call = self
            .contract
            .authorize(peer.to_bytes().into(), scopes, valid_from, valid_until);
        self.mine(call).await
    }

    /// Revokes a node key from `effective_block` (0 = the block this transaction lands in).
    pub async fn revoke(
        &self,
        peer: &PeerId,
        effective_block: u64,
    ) -> Result<TxOutcome, AdminError> {
        self.mine(
            self.contract
                .revoke(peer.to_bytes().into(), effective_block),
        )
        .await
    }

    /// Authorizes `new` now and revokes `old` from `revoke_old_at`, in one transaction.
    pub async fn rotate(
        &self,
        old: &PeerId,
        new: &PeerId,
        scopes: u64,
        valid_until: u64,
        revoke_old_at: u64,
    ) -> Result<TxOutcome, AdminError> {
        let call = self.contract.rotate(
            old.to_bytes().into(),
            new.to_bytes().into(),
            scopes,
            valid_until,
            revoke_old_at,
        );
        self.mine(call).await
    }

    /// Operator: publishes where a node of its can be dialled (hints for peers' redial loops).
    pub async fn set_node_addresses(
        &self,
        peer: &PeerId,
        addresses: Vec<String>,
    ) -> Result<TxOutcome, AdminError> {
        self.mine(
            self.contract
                .setNodeAddresses(peer.to_bytes().into(), addresses),
        )
        .await
    }

    /// Governance: defines or replaces a group's ordered seats.
    pub async fn set_group(
        &self,
        id: GroupId,
        seats: &[OperatorId],
    ) -> Result<TxOutcome, AdminError> {
        let seats = seats.iter().map(|o| Address::from(o.0)).collect();
        self.mine(self.contract.setGroup(FixedBytes(id.0), seats))
            .await
    }

    /// Governance: deletes a group.
    pub async fn remove_group(&self, id: GroupId) -> Result<TxOutcome, AdminError> {
        self.mine(self.contract.removeGroup(FixedBytes(id.0))).await
    }

    /// Operator: registers an RLN membership (`rate_commitment` big-endian, as
    /// `conclave rln show` prints it); returns the transaction and the leaf index assigned.
    pub async fn register_rln(
        &self,
        rate_commitment: [u8; 32],
        limit: u32,
    ) -> Result<(TxOutcome, u64), AdminError> {
        let call = self
            .contract
            .registerRln(U256::from_be_bytes(rate_commitment), limit);
        self.mine_indexed(call).await
    }

    /// Mines a call that registers an RLN membership; returns it and the leaf index assigned.
    pub(super) async fn mine_indexed<D: alloy::contract::CallDecoder>(
        &self,
        call: alloy::contract::CallBuilder<&DynProvider, D>,
    ) -> Result<(TxOutcome, u64), AdminError> {
        let receipt = self.mine_receipt(call).await?;
        let index = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<ConclaveRegistry::RlnRegistered>().ok())
            .map(|l| l.inner.data.index.saturating_to())
            .ok_or_else(|| self.rpc("the registration receipt has no RlnRegistered event"))?;
        Ok((outcome_of(&receipt), index))
    }

    /// Governance: lets `op` hold up to `cap` live RLN memberships (1..=16; default 1).
    pub async fn set_rln_cap(&self, op: OperatorId, cap: u32) -> Result<TxOutcome, AdminError> {
        self.mine(self.contract.setRlnCap(Address::from(op.0), cap))
            .await
    }

    /// How many live RLN memberships `op` may hold, and how many it holds (latest block).
    pub async fn rln_cap(&self, op: OperatorId) -> Result<(u32, u32), AdminError> {
        let op = Address::from(op.0);
        let cap = self.contract.rlnCap(op).call().await;
        let live = self.contract.rlnLive(op).call().await;
        let err = |e| rpc_or_revert(&self.url, e);
        Ok((cap.map_err(err)?, live.map_err(err)?))
    }

    /// Governance or the registering operator: removes an RLN membership.
    pub async fn remove_rln(&self, index: u64) -> Result<TxOutcome, AdminError> {
        self.mine(self.contract.removeRln(U256::from(index))).await
    }

    /// Anyone: removes membership `index` by revealing its secret (recovered from a double
    /// signal). Idempotent: a membership already removed, before or during our attempt, is
    /// [`SlashOutcome::AlreadyRemoved`], not an error.
    pub async fn slash_rln(
        &self,
        index: u64,
        secret: [u8; 32],
    ) -> Result<SlashOutcome, AdminError> {
        if self.rln_removed(index).await? {
            return Ok(SlashOutcome::AlreadyRemoved);
        }
        let call = self
            .contract
            .slashRln(U256::from(index), U256::from_be_bytes(secret));
        match self.mine(call).await {
            Ok(tx) => Ok(SlashOutcome::Removed(tx)),
            // Lost a race: another submission landed between our check and our transaction.
            Err(e) => match self.rln_removed(index).await {
                Ok(true) => Ok(SlashOutcome::AlreadyRemoved),
                _ => Err(e),
            },
        }
    }

    /// Whether RLN membership `index` is removed on-chain (as of the latest block).
    pub async fn rln_removed(&self, index: u64) -> Result<bool, AdminError> {
        let call = self.contract.rlnMembership(U256::from(index));
        match call.call().await {
            Ok(m) => Ok(m.removed),
            Err(e) => Err(rpc_or_revert(&self.url, e)),
        }
    }

    /// The contract's own Poseidon(Poseidon(secret), limit), for checking it against zerokit.
    pub async fn rln_rate_commitment(
        &self,
        secret: [u8; 32],
        limit: u32,
    ) -> Result<[u8; 32], AdminError> {
        let call = self
            .contract
            .rlnRateCommitment(U256::from_be_bytes(secret), limit);
        let c = call.call().await.map_err(|e| rpc_or_revert(&self.url, e))?;
        Ok(c.to_be_bytes())
    }
}

fn outcome_of(receipt: &alloy::rpc::types::TransactionReceipt) -> TxOutcome {
    TxOutcome {
        tx_hash: receipt.transaction_hash,
        block: receipt.block_number.unwrap_or_default(),
        gas_used: receipt.gas_used,
    }
}

pub(super) fn rpc_or_revert(url: &str, e: alloy::contract::Error) -> AdminError {
    match e.as_decoded_interface_error::<E>() {
        Some(reason) => AdminError::Reverted(describe(&reason)),
        None => AdminError::Rpc {
            url: url.into(),
            message: e.to_string(),
        },
    }
}
