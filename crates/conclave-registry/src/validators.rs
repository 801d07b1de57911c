//! RLN memberships registered by Ethereum validators: every node checks the validator's BLS
//! signature itself before the leaf may enter its tree, and keeps one leaf per validator key.
//! The contract checks the same on-chain; for a file registry this is the only check.

use std::collections::HashMap;

use conclave_bls::{PubkeyBytes, Registration};

/// Where a registration was meant to land: the registry's chain and contract (both zero for a
/// file registry, which has neither).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistrationDomain {
    pub chain_id: u64,
    pub registry: [u8; 20],
}

/// The validator behind an RLN leaf, and whether its signature held when the node checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorLeaf {
    pub pubkey: PubkeyBytes,
    /// `Err` names what was wrong; such a leaf is skipped.
    pub verdict: Result<(), String>,
}

impl ValidatorLeaf {
    /// Checks `signature` (96 bytes, compressed) over the registration of `rate_commitment` and
    /// `limit` by `pubkey` in `domain`.
    pub fn check(
        pubkey: PubkeyBytes,
        signature: &[u8],
        rate_commitment: [u8; 32],
        limit: u32,
        domain: RegistrationDomain,
    ) -> Self {
        let registration = Registration {
            validator_pubkey: pubkey,
            rate_commitment,
            limit: u64::from(limit),
            chain_id: domain.chain_id,
            registry: domain.registry,
        };
        ValidatorLeaf {
            pubkey,
            verdict: registration.verify(signature).map_err(|e| e.to_string()),
        }
    }

    /// A leaf whose validator data could not even be decoded.
    pub fn refused(pubkey: PubkeyBytes, problem: String) -> Self {
        ValidatorLeaf {
            pubkey,
            verdict: Err(problem),
        }
    }
}

/// Keeps the first leaf of each validator key; later ones are reported.
#[derive(Default)]
pub struct OneLeafPerValidator(HashMap<PubkeyBytes, u32>);

impl OneLeafPerValidator {
    /// Whether leaf `index` of `v` may enter the view: `Err` is the reason to skip it.
    pub fn admit(&mut self, index: u32, v: &ValidatorLeaf) -> Result<(), String> {
        let key = hex::encode(v.pubkey);
        if let Err(problem) = &v.verdict {
            return Err(format!(
                "RLN leaf {index}: validator 0x{key}'s registration refused: {problem}"
            ));
        }
        if let Some(first) = self.0.get(&v.pubkey) {
            return Err(format!(
                "RLN leaf {index}: validator 0x{key} is already registered at leaf {first}"
            ));
        }
        self.0.insert(v.pubkey, index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_bls::ValidatorSecret;

    #[test]
    fn a_forged_or_repeated_validator_leaf_is_refused_by_name() {
        let domain = RegistrationDomain {
            chain_id: 31337,
            registry: [7; 20],
        };
        let sk = ValidatorSecret::generate().unwrap();
        let pk = sk.public_key();
        let reg = |commitment: [u8; 32]| Registration {
            validator_pubkey: pk,
            rate_commitment: commitment,
            limit: 2,
            chain_id: domain.chain_id,
            registry: domain.registry,
        };
        let good = ValidatorLeaf::check(pk, &sk.sign(&reg([1; 32])), [1; 32], 2, domain);
        let again = ValidatorLeaf::check(pk, &sk.sign(&reg([2; 32])), [2; 32], 2, domain);
        let forger = ValidatorSecret::generate().unwrap();
        let forged = ValidatorLeaf::check(pk, &forger.sign(&reg([3; 32])), [3; 32], 2, domain);
        let elsewhere = ValidatorLeaf::check(
            pk,
            &sk.sign(&reg([4; 32])),
            [4; 32],
            2,
            RegistrationDomain::default(),
        );

        let mut seen = OneLeafPerValidator::default();
        assert_eq!(seen.admit(0, &good), Ok(()));
        let e = seen.admit(1, &forged).unwrap_err();
        assert!(
            e.contains("leaf 1") && e.contains("not the validator's"),
            "{e}"
        );
        let e = seen.admit(2, &elsewhere).unwrap_err();
        assert!(e.contains("refused"), "{e}");
        let e = seen.admit(3, &again).unwrap_err();
        assert!(e.contains("already registered at leaf 0"), "{e}");
    }
}
