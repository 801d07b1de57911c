//! Ethereum validators' RLN registrations on the contract: governance admits validator keys
//! under an operator (`assignValidators`); a validator signs its registration with its BLS key
//! (offline if it likes: the `conclave-validator-registration/1` JSON file) and any funded
//! account submits it (`registerRlnValidator`), the contract checking the signature with the
//! EIP-2537 precompiles.

use alloy::primitives::{Address, Bytes, FixedBytes, B256, U256};
use conclave_bls::{eip2537, PubkeyBytes, Registration, ValidatorSecret};
use conclave_core::OperatorId;
use serde::{Deserialize, Serialize};

use super::admin::{AdminError, RegistryAdmin, TxOutcome};
use super::bindings::ConclaveRegistry;
use super::signed::SignedActionError;

/// The version tag of the registration file; a file of another version is refused.
pub const VALIDATOR_REGISTRATION_FORMAT: &str = "conclave-validator-registration/1";

/// A validator's signed RLN registration: what travels from the machine holding its keystore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRegistration {
    pub format: String,
    /// 48 bytes, compressed G1.
    pub validator_pubkey: FixedBytes<48>,
    /// Big-endian, as `conclave rln show` prints it.
    pub rate_commitment: B256,
    pub limit: u32,
    pub chain_id: u64,
    pub registry: Address,
    /// 96 bytes, compressed G2, over the registration's signing root.
    pub signature: FixedBytes<96>,
}

impl SignedRegistration {
    /// Signs the registration of `rate_commitment` with `limit` on `registry` of chain
    /// `chain_id` with the validator's key.
    pub fn sign(
        secret: &ValidatorSecret,
        rate_commitment: [u8; 32],
        limit: u32,
        chain_id: u64,
        registry: Address,
    ) -> Self {
        let registration = Registration {
            validator_pubkey: secret.public_key(),
            rate_commitment,
            limit: u64::from(limit),
            chain_id,
            registry: registry.0 .0,
        };
        SignedRegistration {
            format: VALIDATOR_REGISTRATION_FORMAT.into(),
            validator_pubkey: FixedBytes(registration.validator_pubkey),
            rate_commitment: B256::from(rate_commitment),
            limit,
            chain_id,
            registry,
            signature: FixedBytes(secret.sign(&registration)),
        }
    }

    /// What the validator signed.
    pub fn registration(&self) -> Registration {
        Registration {
            validator_pubkey: self.validator_pubkey.0,
            rate_commitment: self.rate_commitment.0,
            limit: u64::from(self.limit),
            chain_id: self.chain_id,
            registry: self.registry.0 .0,
        }
    }

    /// Reads a registration file's text.
    pub fn parse(text: &str) -> Result<Self, SignedActionError> {
        let r: SignedRegistration =
            serde_json::from_str(text).map_err(|e| SignedActionError::Format(e.to_string()))?;
        if r.format != VALIDATOR_REGISTRATION_FORMAT {
            return Err(SignedActionError::Format(format!(
                "format `{}`, expected `{VALIDATOR_REGISTRATION_FORMAT}`",
                r.format
            )));
        }
        Ok(r)
    }

    /// Checks the BLS signature offline, as the contract and every node will.
    pub fn verify(&self) -> Result<(), conclave_bls::BlsError> {
        self.registration().verify(self.signature.as_slice())
    }

    /// The contract call's argument: the same registration with the points uncompressed.
    pub fn to_call(&self) -> Result<ConclaveRegistry::ValidatorRegistration, AdminError> {
        let key = |e: conclave_bls::BlsError| AdminError::Key(e.to_string());
        Ok(ConclaveRegistry::ValidatorRegistration {
            pubkey: Bytes::copy_from_slice(self.validator_pubkey.as_slice()),
            pubkeyPoint: Bytes::copy_from_slice(
                &eip2537::g1_point(&self.validator_pubkey.0).map_err(key)?,
            ),
            signature: Bytes::copy_from_slice(&eip2537::g2_point(&self.signature.0).map_err(key)?),
            rateCommitment: U256::from_be_bytes(self.rate_commitment.0),
            limit: self.limit,
            chainId: U256::from(self.chain_id),
            registry: self.registry,
        })
    }
}

/// A validator key's standing on the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorStanding {
    /// The operator it counts under; `None` if governance never admitted it.
    pub operator: Option<OperatorId>,
    pub registered: bool,
}

impl RegistryAdmin {
    /// Governance: admits validator keys to register RLN memberships counted under `op`.
    pub async fn assign_validators(
        &self,
        op: OperatorId,
        pubkeys: &[PubkeyBytes],
    ) -> Result<TxOutcome, AdminError> {
        let keys = pubkeys.iter().map(|k| Bytes::copy_from_slice(k)).collect();
        self.mine(self.contract.assignValidators(Address::from(op.0), keys))
            .await
    }

    /// Anyone: submits a validator's signed registration; returns the transaction and the leaf.
    pub async fn register_validator(
        &self,
        registration: &SignedRegistration,
    ) -> Result<(TxOutcome, u64), AdminError> {
        let call = self.contract.registerRlnValidator(registration.to_call()?);
        self.mine_indexed(call).await
    }

    /// Whether `pubkey` is admitted, under whom, and whether it has registered.
    pub async fn validator_standing(
        &self,
        pubkey: &PubkeyBytes,
    ) -> Result<ValidatorStanding, AdminError> {
        let slot = self
            .contract
            .validator(Bytes::copy_from_slice(pubkey))
            .call()
            .await
            .map_err(|e| super::admin::rpc_or_revert(&self.url, e))?;
        Ok(ValidatorStanding {
            operator: (slot.operator != Address::ZERO).then_some(OperatorId(slot.operator.0 .0)),
            registered: slot.registered,
        })
    }
}
