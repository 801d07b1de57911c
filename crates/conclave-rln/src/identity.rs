//! A member's RLN identity. The secret is what a double signal reveals; the rate commitment
//! (Poseidon(Poseidon(secret), limit)) is what the registry publishes as the member's leaf.

use rln::prelude::{Fr, Hasher, IdentityKeys, PoseidonHash, SecretFr};

use crate::field::{fr_from_bytes, fr_to_bytes, FieldError};

/// The secret of one RLN membership. `Debug` never prints it.
#[derive(Clone, PartialEq)]
pub struct RlnIdentity {
    secret: SecretFr,
}

impl std::fmt::Debug for RlnIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RlnIdentity(commitment {})",
            crate::fr_to_hex(&self.id_commitment())
        )
    }
}

impl RlnIdentity {
    /// A fresh identity from the operating system's randomness.
    pub fn generate() -> Self {
        let keys = IdentityKeys::generate::<PoseidonHash, _>(&mut rand::rngs::OsRng);
        RlnIdentity {
            secret: keys.identity_secret(),
        }
    }

    /// From the 32-byte secret (a key file, or a secret recovered from a double signal).
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, FieldError> {
        let mut fr = fr_from_bytes(bytes)?;
        Ok(RlnIdentity {
            secret: SecretFr::from(&mut fr),
        })
    }

    pub(crate) fn from_secret(secret: SecretFr) -> Self {
        RlnIdentity { secret }
    }

    /// The secret's encoding, for the key file and for removal lists (a slashed secret is public).
    pub fn secret_bytes(&self) -> [u8; 32] {
        fr_to_bytes(&self.secret)
    }

    pub(crate) fn secret(&self) -> SecretFr {
        self.secret.clone()
    }

    /// Poseidon(secret): the public half of the identity.
    pub fn id_commitment(&self) -> Fr {
        Hasher::<PoseidonHash>::hash_single(*self.secret)
    }

    /// The leaf the registry publishes for this identity with `limit` messages per epoch.
    pub fn rate_commitment(&self, limit: u32) -> Fr {
        rate_commitment(self.id_commitment(), limit)
    }
}

/// Poseidon(id commitment, limit): a member's leaf.
pub fn rate_commitment(id_commitment: Fr, limit: u32) -> Fr {
    Hasher::<PoseidonHash>::hash_pair(id_commitment, Fr::from(u64::from(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_round_trip_and_redacted_debug() {
        let id = RlnIdentity::generate();
        let back = RlnIdentity::from_secret_bytes(&id.secret_bytes()).unwrap();
        assert_eq!(back.id_commitment(), id.id_commitment());
        assert_ne!(id.rate_commitment(1), id.rate_commitment(2));
        let shown = format!("{id:?}");
        assert!(!shown.contains(&hex::encode(id.secret_bytes())));
    }
}
