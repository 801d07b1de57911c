//! Ethereum validators' BLS12-381 keys, as Conclave uses them: a validator joins the anonymous
//! channel by signing its RLN registration with the key it already validates with.
//!
//! Place in the data flow: at the registry, before the RLN tree. The CLI signs a
//! [`Registration`] ([`ValidatorSecret::sign`]); the registry contract checks the signature
//! on-chain through the EIP-2537 precompiles (points encoded by [`eip2537`]); every node checks it
//! again with [`Registration::verify`] before a leaf enters its tree, which for a file registry is
//! the only check there is.
//!
//! The scheme is Ethereum's, unchanged: the minimal-pubkey-size variant (keys in G1, 48 bytes
//! compressed; signatures in G2, 96 bytes), the proof-of-possession ciphersuite [`DST`], keys
//! validated (not the identity, in the subgroup) before use.

pub mod eip2537;
mod registration;

use blst::min_pk::{PublicKey, SecretKey, Signature};
use blst::BLST_ERROR;
use zeroize::Zeroizing;

pub use registration::{compute_domain, Registration, DOMAIN, DOMAIN_TYPE};

/// Ethereum's BLS ciphersuite (proof of possession), the one validators sign with.
pub const DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A validator public key: 48 bytes, compressed G1.
pub type PubkeyBytes = [u8; 48];
/// A signature: 96 bytes, compressed G2.
pub type SignatureBytes = [u8; 96];

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlsError {
    #[error("validator key 0x{key}: {problem}")]
    BadKey { key: String, problem: String },
    #[error("signature: {0}")]
    BadSignature(String),
    #[error("the signature is not the validator's over this registration")]
    WrongSignature,
    #[error("secret key: {0}")]
    BadSecret(String),
}

pub(crate) fn describe(e: BLST_ERROR) -> &'static str {
    match e {
        BLST_ERROR::BLST_BAD_ENCODING => "not a valid encoding",
        BLST_ERROR::BLST_POINT_NOT_ON_CURVE => "not a point on the curve",
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => "not in the prime-order subgroup",
        BLST_ERROR::BLST_PK_IS_INFINITY => "the identity (point at infinity)",
        BLST_ERROR::BLST_VERIFY_FAIL => "verification failed",
        BLST_ERROR::BLST_AGGR_TYPE_MISMATCH => "aggregate type mismatch",
        BLST_ERROR::BLST_BAD_SCALAR => "not a scalar below the group order",
        BLST_ERROR::BLST_SUCCESS => "no error",
    }
}

/// Parses and validates a compressed public key (KeyValidate: on the curve, in the subgroup, not
/// the identity).
pub fn public_key(bytes: &[u8]) -> Result<PublicKey, BlsError> {
    let bad = |problem: String| BlsError::BadKey {
        key: hex::encode(bytes),
        problem,
    };
    if bytes.len() != 48 {
        return Err(bad(format!(
            "{} bytes (expected 48, compressed G1)",
            bytes.len()
        )));
    }
    let pk = PublicKey::uncompress(bytes).map_err(|e| bad(describe(e).into()))?;
    pk.validate().map_err(|e| bad(describe(e).into()))?;
    Ok(pk)
}

/// Parses a compressed signature and checks it is in the subgroup.
pub fn signature(bytes: &[u8]) -> Result<Signature, BlsError> {
    if bytes.len() != 96 {
        return Err(BlsError::BadSignature(format!(
            "{} bytes (expected 96, compressed G2)",
            bytes.len()
        )));
    }
    let sig =
        Signature::uncompress(bytes).map_err(|e| BlsError::BadSignature(describe(e).into()))?;
    sig.validate(true)
        .map_err(|e| BlsError::BadSignature(describe(e).into()))?;
    Ok(sig)
}

/// A validator's secret key (zeroized on drop by blst).
pub struct ValidatorSecret(SecretKey);

/// Names the public key only: a secret never reaches a log.
impl std::fmt::Debug for ValidatorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidatorSecret(0x{})", hex::encode(self.public_key()))
    }
}

impl ValidatorSecret {
    /// A fresh key from 32 bytes of OS randomness, through EIP-2333's KeyGen.
    pub fn generate() -> Result<Self, BlsError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, ikm.as_mut());
        SecretKey::key_gen(ikm.as_ref(), &[])
            .map(ValidatorSecret)
            .map_err(|e| BlsError::BadSecret(describe(e).into()))
    }

    /// The key from its 32 big-endian bytes (as an EIP-2335 keystore holds it).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        if bytes.len() != 32 {
            return Err(BlsError::BadSecret(format!(
                "{} bytes (expected 32)",
                bytes.len()
            )));
        }
        SecretKey::from_bytes(bytes)
            .map(ValidatorSecret)
            .map_err(|e| BlsError::BadSecret(describe(e).into()))
    }

    /// The 32 big-endian bytes, for writing into a keystore.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn public_key(&self) -> PubkeyBytes {
        self.0.sk_to_pk().compress()
    }

    /// Signs `registration`'s signing root with [`DST`].
    pub fn sign(&self, registration: &Registration) -> SignatureBytes {
        self.0
            .sign(&registration.signing_root(), DST, &[])
            .compress()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_encodings_are_named() {
        let sk = ValidatorSecret::generate().unwrap();
        let again = ValidatorSecret::from_bytes(sk.to_bytes().as_ref()).unwrap();
        assert_eq!(sk.public_key(), again.public_key());
        assert!(public_key(&sk.public_key()).is_ok());

        let mut identity = [0u8; 48];
        identity[0] = 0xc0;
        let e = public_key(&identity).unwrap_err().to_string();
        assert!(e.contains("identity"), "{e}");
        let e = public_key(&[1u8; 47]).unwrap_err().to_string();
        assert!(e.contains("47 bytes"), "{e}");
        let mut off_curve = sk.public_key();
        off_curve[47] ^= 1;
        assert!(public_key(&off_curve).is_err());
        assert!(ValidatorSecret::from_bytes(&[0xffu8; 32]).is_err());
        assert!(signature(&[0u8; 95]).is_err());
    }
}
