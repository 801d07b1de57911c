//! The registration a validator signs, and its SSZ signing root.
//!
//! Layout (SSZ, as the consensus specs define containers):
//!
//! ```text
//! class ConclaveRlnRegistration(Container):
//!     validator_pubkey: Bytes48      # compressed G1
//!     rate_commitment:  Bytes32      # Poseidon(id commitment, limit), big-endian BN254 element
//!     limit:            uint64       # messages per epoch
//!     chain_id:         uint64       # EIP-155 chain id of the registry (0 for a file registry)
//!     registry:         Bytes20      # the registry contract (zero for a file registry)
//! ```
//!
//! signing root = hash_tree_root(SigningData(object_root = hash_tree_root(registration),
//! domain = [`DOMAIN`])), the way the builder API signs validator registrations: an application
//! domain (`DOMAIN_APPLICATION_MASK` set) over the genesis fork version and a zero genesis
//! validators root, so no beacon-chain signature (block, attestation, deposit) can be replayed
//! as a registration or the other way round.

use sha2::{Digest, Sha256};

use crate::{BlsError, PubkeyBytes};

/// Conclave's application domain type: "CNV" with `DOMAIN_APPLICATION_MASK` (0x00000001) set.
pub const DOMAIN_TYPE: [u8; 4] = [0x43, 0x4e, 0x56, 0x01];

/// The domain every registration is signed in: [`compute_domain`] of [`DOMAIN_TYPE`], the
/// mainnet genesis fork version 0x00000000 and a zero genesis validators root (as the builder
/// API's registrations, valid on every network).
pub const DOMAIN: [u8; 32] = compute_domain(DOMAIN_TYPE, [0; 4], [0; 32]);

/// compute_domain of the consensus specs: the domain type, then the first 28 bytes of
/// hash_tree_root(ForkData(fork_version, genesis_validators_root)).
pub const fn compute_domain(
    domain_type: [u8; 4],
    fork_version: [u8; 4],
    genesis_validators_root: [u8; 32],
) -> [u8; 32] {
    let mut fork_chunk = [0u8; 32];
    let mut i = 0;
    while i < 4 {
        fork_chunk[i] = fork_version[i];
        i += 1;
    }
    let fork_data_root = sha2_const::pair(&fork_chunk, &genesis_validators_root);
    let mut domain = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        domain[i] = if i < 4 {
            domain_type[i]
        } else {
            fork_data_root[i - 4]
        };
        i += 1;
    }
    domain
}

/// An RLN membership as a validator signs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub validator_pubkey: PubkeyBytes,
    pub rate_commitment: [u8; 32],
    pub limit: u64,
    pub chain_id: u64,
    pub registry: [u8; 20],
}

fn pair(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(a);
    h.update(b);
    h.finalize().into()
}

fn chunk(bytes: &[u8]) -> [u8; 32] {
    let mut c = [0u8; 32];
    c[..bytes.len()].copy_from_slice(bytes);
    c
}

impl Registration {
    /// hash_tree_root of the container: five chunks padded to eight, merkleized.
    pub fn hash_tree_root(&self) -> [u8; 32] {
        let pk = &self.validator_pubkey;
        let leaves = [
            pair(&chunk(&pk[..32]), &chunk(&pk[32..])),
            self.rate_commitment,
            chunk(&self.limit.to_le_bytes()),
            chunk(&self.chain_id.to_le_bytes()),
            chunk(&self.registry),
            [0; 32],
            [0; 32],
            [0; 32],
        ];
        let l1: Vec<[u8; 32]> = leaves.chunks(2).map(|p| pair(&p[0], &p[1])).collect();
        pair(&pair(&l1[0], &l1[1]), &pair(&l1[2], &l1[3]))
    }

    /// What the validator signs: hash_tree_root(SigningData(object root, [`DOMAIN`])).
    pub fn signing_root(&self) -> [u8; 32] {
        pair(&self.hash_tree_root(), &DOMAIN)
    }

    /// Checks `signature` (96 bytes compressed) is the validator's over this registration, the
    /// key and the signature validated first.
    pub fn verify(&self, signature: &[u8]) -> Result<(), BlsError> {
        let pk = crate::public_key(&self.validator_pubkey)?;
        let sig = crate::signature(signature)?;
        match sig.verify(true, &self.signing_root(), crate::DST, &[], &pk, true) {
            blst::BLST_ERROR::BLST_SUCCESS => Ok(()),
            _ => Err(BlsError::WrongSignature),
        }
    }
}

/// SHA-256 of 64 bytes in a `const fn`, so that [`DOMAIN`] is a constant.
mod sha2_const {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    const H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    const fn compress(mut state: [u32; 8], block: &[u8; 64]) -> [u32; 8] {
        let mut w = [0u32; 64];
        let mut t = 0;
        while t < 16 {
            w[t] = u32::from_be_bytes([
                block[4 * t],
                block[4 * t + 1],
                block[4 * t + 2],
                block[4 * t + 3],
            ]);
            t += 1;
        }
        while t < 64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16]
                .wrapping_add(s0)
                .wrapping_add(w[t - 7])
                .wrapping_add(s1);
            t += 1;
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
        let mut t = 0;
        while t < 64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[t])
                .wrapping_add(w[t]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
            t += 1;
        }
        let add = [a, b, c, d, e, f, g, h];
        let mut i = 0;
        while i < 8 {
            state[i] = state[i].wrapping_add(add[i]);
            i += 1;
        }
        state
    }

    /// SHA-256(a ‖ b): one data block, then the padding block of a 512-bit message.
    pub const fn pair(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        let mut block = [0u8; 64];
        let mut i = 0;
        while i < 32 {
            block[i] = a[i];
            block[32 + i] = b[i];
            i += 1;
        }
        let state = compress(H0, &block);
        let mut pad = [0u8; 64];
        pad[0] = 0x80;
        pad[62] = 0x02; // 512 bits, big-endian
        let state = compress(state, &pad);
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < 8 {
            let b = state[i].to_be_bytes();
            out[4 * i] = b[0];
            out[4 * i + 1] = b[1];
            out[4 * i + 2] = b[2];
            out[4 * i + 3] = b[3];
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValidatorSecret;

    #[test]
    fn the_const_sha256_is_sha256() {
        let (a, b) = ([7u8; 32], [0xa5u8; 32]);
        assert_eq!(sha2_const::pair(&a, &b), pair(&a, &b));
    }

    /// The builder API's DOMAIN_APPLICATION_BUILDER on mainnet, computed the same way, is the
    /// value mev-boost and the relays use.
    #[test]
    fn compute_domain_gives_the_builder_api_s_mainnet_domain() {
        assert_eq!(
            hex::encode(compute_domain([0, 0, 0, 1], [0; 4], [0; 32])),
            "00000001f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"
        );
        assert_eq!(DOMAIN[..4], DOMAIN_TYPE);
        assert_eq!(DOMAIN_TYPE[3] & 1, 1, "the application mask is set");
    }

    fn registration(sk: &ValidatorSecret) -> Registration {
        Registration {
            validator_pubkey: sk.public_key(),
            rate_commitment: [3; 32],
            limit: 4,
            chain_id: 31337,
            registry: [0x11; 20],
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_registration_and_key() {
        let sk = ValidatorSecret::generate().unwrap();
        let r = registration(&sk);
        let sig = sk.sign(&r);
        r.verify(&sig).unwrap();
        for other in [
            Registration { chain_id: 1, ..r },
            Registration {
                registry: [0x12; 20],
                ..r
            },
            Registration { limit: 5, ..r },
            Registration {
                rate_commitment: [4; 32],
                ..r
            },
        ] {
            assert_eq!(other.verify(&sig), Err(BlsError::WrongSignature));
        }
        let another = ValidatorSecret::generate().unwrap();
        let forged = another.sign(&r);
        assert_eq!(r.verify(&forged), Err(BlsError::WrongSignature));
        let mut garbage = sig;
        garbage[5] ^= 0x40;
        assert!(matches!(
            r.verify(&garbage),
            Err(BlsError::BadSignature(_) | BlsError::WrongSignature)
        ));
    }
}
