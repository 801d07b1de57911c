//! Field elements on the wire and in files: 32 bytes, big-endian, canonical (below the BN254
//! scalar modulus). One encoding everywhere, so hex printed by the CLI matches what peers send.

use ark_ff::{BigInteger, PrimeField};
use rln::prelude::{CanonicalDeserializeBE, Fr};
use thiserror::Error;

/// Why bytes are not a field element.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FieldError {
    #[error("expected 32 bytes, got {0}")]
    Length(usize),
    #[error("not below the BN254 scalar field modulus")]
    NotCanonical,
    #[error("not hex: {0}")]
    Hex(String),
}

/// The 32-byte big-endian encoding.
pub fn fr_to_bytes(fr: &Fr) -> [u8; 32] {
    let v = fr.into_bigint().to_bytes_be();
    let mut out = [0u8; 32];
    out.copy_from_slice(&v);
    out
}

/// Strict decoding: exactly 32 bytes, canonical.
pub fn fr_from_bytes(bytes: &[u8]) -> Result<Fr, FieldError> {
    if bytes.len() != 32 {
        return Err(FieldError::Length(bytes.len()));
    }
    <Fr as CanonicalDeserializeBE>::deserialize(bytes).map_err(|_| FieldError::NotCanonical)
}

/// Lower-case hex of the 32-byte encoding, without `0x`.
pub fn fr_to_hex(fr: &Fr) -> String {
    hex::encode(fr_to_bytes(fr))
}

/// Parses 64 hex digits (an optional `0x` prefix is accepted).
pub fn fr_from_hex(s: &str) -> Result<Fr, FieldError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(s).map_err(|e| FieldError::Hex(e.to_string()))?;
    fr_from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let x = Fr::from(0x0102_0304u64);
        let b = fr_to_bytes(&x);
        assert_eq!(&b[28..], &[1, 2, 3, 4]);
        assert_eq!(fr_from_bytes(&b).unwrap(), x);
        assert_eq!(fr_from_hex(&format!("0x{}", fr_to_hex(&x))).unwrap(), x);
        assert_eq!(fr_from_bytes(&[0u8; 31]), Err(FieldError::Length(31)));
        assert_eq!(fr_from_bytes(&[0xff; 32]), Err(FieldError::NotCanonical));
        assert!(matches!(fr_from_hex("zz"), Err(FieldError::Hex(_))));
    }
}
