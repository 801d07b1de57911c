//! The Clarity consensus serialization of the registry's three data variables, decoded strictly:
//! only the exact types the contract declares are accepted, and every byte must be used.
//!
//! Layout (big-endian): a `uint` is `0x01` + 16 bytes; a buffer is `0x02` + u32 length + bytes;
//! a list is `0x0b` + u32 count + items. The signer set is `(list 128 (buff 33))`.

use thiserror::Error;

/// The most keys the contract's signer-set type allows.
pub const MAX_SIGNERS: usize = 128;

/// Length of a compressed secp256k1 public key.
pub const KEY_LEN: usize = 33;

const TYPE_UINT: u8 = 0x01;
const TYPE_BUFFER: u8 = 0x02;
const TYPE_LIST: u8 = 0x0b;

/// Why a serialized value is not the type the contract declares. Every variant names where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClarityError {
    #[error("not a 0x-prefixed hex string ({0})")]
    Hex(String),
    #[error("{what}: ends after {at} bytes, {needed} more expected")]
    Truncated {
        what: String,
        at: usize,
        needed: usize,
    },
    #[error("{what}: type byte 0x{found:02x} at byte {at}, expected 0x{expected:02x} ({name})")]
    Type {
        what: String,
        at: usize,
        found: u8,
        expected: u8,
        name: &'static str,
    },
    #[error("signer set holds {0} keys; the contract's type allows at most 128")]
    TooManyKeys(u32),
    #[error("signer key {index} is {len} bytes; expected 33 (a compressed secp256k1 key)")]
    KeyLength { index: usize, len: u32 },
    #[error("{what}: buffer of {len} bytes is longer than the declared {max}")]
    BufferTooLong { what: String, len: u32, max: usize },
    #[error("{what}: {count} bytes left after the value")]
    Trailing { what: String, count: usize },
}

/// Decodes the `0x…` hex a Stacks node answers into bytes.
pub fn from_hex(s: &str) -> Result<Vec<u8>, ClarityError> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| ClarityError::Hex("missing 0x".into()))?;
    hex::decode(digits).map_err(|e| ClarityError::Hex(e.to_string()))
}

/// A cursor that names what it was reading when the input ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8], ClarityError> {
        let left = self.bytes.len() - self.at;
        if left < n {
            return Err(ClarityError::Truncated {
                what: what(),
                at: self.bytes.len(),
                needed: n - left,
            });
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn type_byte(
        &mut self,
        expected: u8,
        name: &'static str,
        what: &dyn Fn() -> String,
    ) -> Result<(), ClarityError> {
        let at = self.at;
        let found = self.take(1, what)?[0];
        if found != expected {
            return Err(ClarityError::Type {
                what: what(),
                at,
                found,
                expected,
                name,
            });
        }
        Ok(())
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, ClarityError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn finish(self, what: &str) -> Result<(), ClarityError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            count => Err(ClarityError::Trailing {
                what: what.into(),
                count,
            }),
        }
    }
}

/// Decodes `(list 128 (buff 33))` where every item is exactly 33 bytes. Whether each key is a
/// point on the curve is checked where keys become peers ([`super::SignerSet`]).
pub fn signer_set(bytes: &[u8]) -> Result<Vec<[u8; KEY_LEN]>, ClarityError> {
    let mut r = Reader::new(bytes);
    let set = || "signer set".to_owned();
    r.type_byte(TYPE_LIST, "list", &set)?;
    let count = r.u32(&set)?;
    if count as usize > MAX_SIGNERS {
        return Err(ClarityError::TooManyKeys(count));
    }
    let mut keys = Vec::with_capacity(count as usize);
    for index in 0..count as usize {
        let item = || format!("signer key {index}");
        r.type_byte(TYPE_BUFFER, "buffer", &item)?;
        let len = r.u32(&item)?;
        if len as usize != KEY_LEN {
            return Err(ClarityError::KeyLength { index, len });
        }
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(r.take(KEY_LEN, &item)?);
        keys.push(key);
    }
    r.finish("signer set")?;
    Ok(keys)
}

/// Decodes a `uint`.
pub fn uint(bytes: &[u8], what: &str) -> Result<u128, ClarityError> {
    let mut r = Reader::new(bytes);
    let name = || what.to_owned();
    r.type_byte(TYPE_UINT, "uint", &name)?;
    let mut v = [0u8; 16];
    v.copy_from_slice(r.take(16, &name)?);
    r.finish(what)?;
    Ok(u128::from_be_bytes(v))
}

/// Decodes a `(buff max)`.
pub fn buffer(bytes: &[u8], max: usize, what: &str) -> Result<Vec<u8>, ClarityError> {
    let mut r = Reader::new(bytes);
    let name = || what.to_owned();
    r.type_byte(TYPE_BUFFER, "buffer", &name)?;
    let len = r.u32(&name)?;
    if len as usize > max {
        return Err(ClarityError::BufferTooLong {
            what: what.into(),
            len,
            max,
        });
    }
    let out = r.take(len as usize, &name)?.to_vec();
    r.finish(what)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured once from the Clarity VM of @stacks/clarinet-sdk 3.21.0 running
    // contracts/stacks/contracts/signer-registry.clar: scripts/stacks-simnet.mjs answering
    // GET /v2/data_var/…/{var}?proof=0 before and after `rotate-keys` calls.
    const VM_EMPTY_SET: &str = "0x0b00000000";
    const VM_THRESHOLD_0: &str = "0x0100000000000000000000000000000000";
    const VM_THRESHOLD_2: &str = "0x0100000000000000000000000000000002";
    const VM_AGGREGATE_DEFAULT: &str = "0x020000000100";
    const VM_AGGREGATE_2G: &str =
        "0x020000002102c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";
    /// The set (G, 2G, 3G) of the secp256k1 generator G.
    const VM_SET_G_2G_3G: &str = "0x0b0000000302000000210279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798020000002102c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5020000002102f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
    /// The set (G, 02ff…ff): the contract accepts the second, 33 bytes but not a point.
    const VM_SET_WITH_NON_POINT: &str = "0x0b0000000202000000210279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798020000002102ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    /// The head of a set of 128 copies of G (the largest the type allows).
    const VM_SET_128_HEAD: &str = "0x0b0000008002000000210279be667ef9dcbbac55a06295ce";

    fn g() -> [u8; 33] {
        let mut k = [0u8; 33];
        hex::decode_to_slice(
            "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
            &mut k,
        )
        .unwrap();
        k
    }

    #[test]
    fn vm_values_decode() {
        assert!(signer_set(&from_hex(VM_EMPTY_SET).unwrap())
            .unwrap()
            .is_empty());
        let set = signer_set(&from_hex(VM_SET_G_2G_3G).unwrap()).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set[0], g());
        assert_eq!(hex::encode(&set[1][..4]), "02c6047f");
        assert_eq!(hex::encode(&set[2][..4]), "02f9308a");
        // Length-checked only: whether it is a point is the next layer's check.
        let set = signer_set(&from_hex(VM_SET_WITH_NON_POINT).unwrap()).unwrap();
        let mut non_point = [0xff; 33];
        non_point[0] = 0x02;
        assert_eq!(set[1], non_point);
        assert_eq!(uint(&from_hex(VM_THRESHOLD_0).unwrap(), "t").unwrap(), 0);
        assert_eq!(uint(&from_hex(VM_THRESHOLD_2).unwrap(), "t").unwrap(), 2);
        assert_eq!(
            buffer(&from_hex(VM_AGGREGATE_DEFAULT).unwrap(), 33, "a").unwrap(),
            vec![0]
        );
        assert_eq!(
            buffer(&from_hex(VM_AGGREGATE_2G).unwrap(), 33, "a")
                .unwrap()
                .len(),
            33
        );
    }

    #[test]
    fn the_largest_set_decodes_and_one_more_is_refused() {
        let head = from_hex(VM_SET_128_HEAD).unwrap();
        let mut full = head[..5].to_vec();
        for _ in 0..128 {
            full.extend_from_slice(&[0x02, 0, 0, 0, 33]);
            full.extend_from_slice(&g());
        }
        assert_eq!(full[..head.len()], head[..]);
        assert_eq!(signer_set(&full).unwrap().len(), 128);
        full[1..5].copy_from_slice(&129u32.to_be_bytes());
        full.extend_from_slice(&[0x02, 0, 0, 0, 33]);
        full.extend_from_slice(&g());
        assert_eq!(signer_set(&full), Err(ClarityError::TooManyKeys(129)));
        // A count far beyond the bytes is refused before anything is allocated for it.
        assert_eq!(
            signer_set(&[0x0b, 0xff, 0xff, 0xff, 0xff]),
            Err(ClarityError::TooManyKeys(u32::MAX))
        );
    }

    #[test]
    fn every_defect_names_its_item() {
        let good = from_hex(VM_SET_G_2G_3G).unwrap();
        // The second key's type byte is at 5 + 38.
        let mut wrong_type = good.clone();
        wrong_type[43] = 0x01;
        assert_eq!(
            signer_set(&wrong_type).unwrap_err().to_string(),
            "signer key 1: type byte 0x01 at byte 43, expected 0x02 (buffer)"
        );
        let mut short_key = good.clone();
        short_key[47] = 32;
        assert_eq!(
            signer_set(&short_key),
            Err(ClarityError::KeyLength { index: 1, len: 32 })
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            signer_set(&trailing).unwrap_err().to_string(),
            "signer set: 1 bytes left after the value"
        );
        assert!(matches!(
            signer_set(&good[..good.len() - 1]),
            Err(ClarityError::Truncated { ref what, needed: 1, .. }) if what == "signer key 2"
        ));
        assert!(matches!(
            signer_set(&from_hex(VM_THRESHOLD_2).unwrap()),
            Err(ClarityError::Type {
                found: 0x01,
                expected: 0x0b,
                ..
            })
        ));
        assert!(matches!(
            uint(&from_hex(VM_EMPTY_SET).unwrap(), "threshold"),
            Err(ClarityError::Type { .. })
        ));
        assert!(matches!(
            buffer(&[0x02, 0, 0, 0, 34], 33, "aggregate"),
            Err(ClarityError::BufferTooLong { len: 34, .. })
        ));
        assert!(signer_set(&[]).is_err());
        assert!(matches!(from_hex("0b00"), Err(ClarityError::Hex(_))));
        assert!(matches!(from_hex("0xzz"), Err(ClarityError::Hex(_))));
    }
}
