use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use thiserror::Error;

/// An operator's cold identity: the EVM address that registered it. It never touches a node;
/// it only authorizes node keys. Shown in EIP-55 mixed case, the form operators copy from
/// their wallets (and the form keep-core sorts by).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OperatorId(pub [u8; 20]);

/// A signing group (a tBTC wallet): the 20-byte public key hash that names it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupId(pub [u8; 20]);

/// Why a string is not a 20-byte address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseAddressError {
    #[error("`{0}` is not 0x followed by 40 hex digits")]
    Format(String),
    #[error("`{given}` has mixed case but fails its EIP-55 checksum (expected `{expected}`)")]
    Checksum { given: String, expected: String },
}

fn parse_20(s: &str) -> Result<[u8; 20], ParseAddressError> {
    let hex_part = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| ParseAddressError::Format(s.to_owned()))?;
    let mut out = [0u8; 20];
    if hex_part.len() != 40 || hex::decode_to_slice(hex_part, &mut out).is_err() {
        return Err(ParseAddressError::Format(s.to_owned()));
    }
    Ok(out)
}

impl OperatorId {
    /// The EIP-55 checksummed form, `0x` included.
    pub fn to_eip55(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        out
    }
}

impl FromStr for OperatorId {
    type Err = ParseAddressError;

    /// Accepts all-lowercase, all-uppercase, or a correct EIP-55 checksum; a mixed-case string
    /// with a wrong checksum is a typo and is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = OperatorId(parse_20(s)?);
        let digits = &s[2..];
        let mixed = digits.chars().any(|c| c.is_ascii_lowercase())
            && digits.chars().any(|c| c.is_ascii_uppercase());
        if mixed {
            let expected = id.to_eip55();
            if expected[2..] != *digits {
                return Err(ParseAddressError::Checksum {
                    given: s.to_owned(),
                    expected,
                });
            }
        }
        Ok(id)
    }
}

impl FromStr for GroupId {
    type Err = ParseAddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_20(s).map(GroupId)
    }
}

macro_rules! string_conversions {
    ($t:ty, $show:expr) => {
        impl TryFrom<String> for $t {
            type Error = ParseAddressError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                $show(&v)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&$show(self))
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&$show(self))
            }
        }
    };
}

string_conversions!(OperatorId, OperatorId::to_eip55);
string_conversions!(GroupId, |g: &GroupId| format!("0x{}", hex::encode(g.0)));

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors from EIP-55 itself.
    const VECTORS: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_round_trip() {
        for v in VECTORS {
            let id: OperatorId = v.parse().unwrap();
            assert_eq!(id.to_eip55(), v);
            let lower: OperatorId = v.to_lowercase().parse().unwrap();
            assert_eq!(lower, id);
        }
    }

    #[test]
    fn refuses_bad_checksum_and_bad_format() {
        let bad = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
        assert!(matches!(
            bad.parse::<OperatorId>(),
            Err(ParseAddressError::Checksum { .. })
        ));
        for f in [
            "",
            "0x12",
            "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xzz",
        ] {
            assert!(matches!(
                f.parse::<OperatorId>(),
                Err(ParseAddressError::Format(_))
            ));
        }
    }
}
