//! A contract identifier `<address>.<name>`, with the address's c32check checksum verified so a
//! mistyped address is refused at start instead of answering 404 at every poll.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

const C32: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Address versions: mainnet and testnet, single- and multi-signature.
const VERSIONS: [(u8, &str); 4] = [
    (22, "mainnet"),
    (20, "mainnet multisig"),
    (26, "testnet"),
    (21, "testnet multisig"),
];

/// A Stacks contract: the deployer's address and the contract's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractId {
    pub address: String,
    pub name: String,
}

fn c32_digit(c: u8) -> Option<u8> {
    C32.iter().position(|d| *d == c).map(|p| p as u8)
}

/// The bytes a c32 string encodes: a base-32 number, with one zero byte per leading `0`.
fn c32_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut number: Vec<u8> = Vec::new();
    for &c in s {
        let mut carry = u32::from(c32_digit(c)?);
        for byte in number.iter_mut().rev() {
            let v = u32::from(*byte) * 32 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            number.insert(0, carry as u8);
            carry >>= 8;
        }
    }
    let zeros = s.iter().take_while(|c| **c == b'0').count();
    let first = number.iter().position(|b| *b != 0).unwrap_or(number.len());
    let mut out = vec![0u8; zeros];
    out.extend_from_slice(&number[first..]);
    Some(out)
}

/// Checks a Stacks address (`S`, a version character, then c32check of hash160 + checksum).
fn check_address(address: &str) -> Result<(), String> {
    let bytes = address.as_bytes();
    let (Some(b'S'), Some(version)) = (bytes.first(), bytes.get(1).copied().and_then(c32_digit))
    else {
        return Err(
            "a Stacks address starts with S and a version character (SP, SM, ST, SN)".into(),
        );
    };
    if !VERSIONS.iter().any(|(v, _)| *v == version) {
        return Err(format!(
            "version character `{}` is none of P, M (mainnet), T, N (testnet)",
            bytes[1] as char
        ));
    }
    let payload = c32_decode(&bytes[2..])
        .ok_or("an address uses only the characters 0-9 A-Z without I, L, O, U")?;
    if payload.len() != 24 {
        return Err(format!(
            "encodes {} bytes, expected 24 (a hash160 and a 4-byte checksum)",
            payload.len()
        ));
    }
    let mut check = Sha256::new();
    check.update([version]);
    check.update(&payload[..20]);
    let sum = Sha256::digest(check.finalize());
    if sum[..4] != payload[20..] {
        return Err("its checksum does not match (a mistyped character?)".into());
    }
    Ok(())
}

impl FromStr for ContractId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (address, name) = s
            .split_once('.')
            .ok_or_else(|| format!("`{s}` is not <address>.<contract name>"))?;
        check_address(address).map_err(|e| format!("`{address}`: {e}"))?;
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && name.len() <= 128;
        if !well_formed {
            return Err(format!(
                "contract name `{name}` is not a letter followed by letters, digits, - or _ (at most 128)"
            ));
        }
        Ok(ContractId {
            address: address.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for ContractId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.address, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_addresses_pass_their_checksum() {
        // Clarinet's devnet deployer, sBTC's mainnet deployer (multisig), and the boot address
        // (hash160 of zeros, mainnet).
        for a in [
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM",
            "SM3VDXK3WZZSA84XXFKAFAF15NNZX32CTSG82JFQ4",
            "SP000000000000000000002Q6VF78",
        ] {
            let id: ContractId = format!("{a}.sbtc-registry").parse().unwrap();
            assert_eq!(id.to_string(), format!("{a}.sbtc-registry"));
        }
    }

    #[test]
    fn typos_are_refused_with_the_reason() {
        let err = |s: &str| s.parse::<ContractId>().unwrap_err();
        assert!(err("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGN.r").contains("checksum"));
        assert!(!err("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZG.r").is_empty());
        assert!(err("SX1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.r").contains("version"));
        assert!(err("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGO.r").contains("characters"));
        assert!(err("0x1234.r").contains("starts with S"));
        assert!(err("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM").contains("<address>"));
        assert!(err("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.1x").contains("contract name"));
    }
}
