//! Points as the EIP-2537 precompiles take them: every base-field element as 64 bytes (16 zero
//! bytes, then 48 big-endian), a G1 point as x ‖ y (128 bytes), a G2 point as
//! x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1 (256 bytes), the identity as all zeros. The registry contract
//! cannot decompress points cheaply, so a registration carries them uncompressed as well.

use blst::min_pk::{PublicKey, Signature};

use crate::{BlsError, PubkeyBytes, SignatureBytes};

/// A G1 point in EIP-2537 encoding.
pub type G1Point = [u8; 128];
/// A G2 point in EIP-2537 encoding.
pub type G2Point = [u8; 256];

fn pad_into(out: &mut [u8], value: &[u8]) {
    out[16..64].copy_from_slice(value);
}

/// The validated key `pubkey` as an EIP-2537 G1 point.
pub fn g1_point(pubkey: &PubkeyBytes) -> Result<G1Point, BlsError> {
    let ser = crate::public_key(pubkey)?.serialize();
    let mut out = [0u8; 128];
    pad_into(&mut out[..64], &ser[..48]);
    pad_into(&mut out[64..], &ser[48..]);
    Ok(out)
}

/// The signature as an EIP-2537 G2 point.
pub fn g2_point(signature: &SignatureBytes) -> Result<G2Point, BlsError> {
    Ok(g2_from_serialized(
        &crate::signature(signature)?.serialize(),
    ))
}

/// blst's uncompressed G2 (x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0, 48 bytes each) in EIP-2537 order.
fn g2_from_serialized(ser: &[u8; 192]) -> G2Point {
    let mut out = [0u8; 256];
    for (slot, from) in [(0, 48), (1, 0), (2, 144), (3, 96)] {
        pad_into(&mut out[slot * 64..slot * 64 + 64], &ser[from..from + 48]);
    }
    out
}

/// The compressed signature an EIP-2537 G2 point encodes (as the registry's event carries it),
/// checked to be on the curve and in the subgroup.
pub fn signature_from_g2(point: &[u8]) -> Result<SignatureBytes, BlsError> {
    if point.len() != 256 {
        return Err(BlsError::BadSignature(format!(
            "{} bytes (expected a 256-byte EIP-2537 G2 point)",
            point.len()
        )));
    }
    if point.iter().all(|&b| b == 0) {
        return Err(BlsError::BadSignature(
            "the identity (point at infinity)".into(),
        ));
    }
    let mut ser = [0u8; 192];
    for (slot, to) in [(0, 48), (1, 0), (2, 144), (3, 96)] {
        let fp = &point[slot * 64..slot * 64 + 64];
        if fp[..16].iter().any(|&b| b != 0) {
            return Err(BlsError::BadSignature(format!(
                "field element {slot} is not 16 zero bytes then 48 (EIP-2537 padding)"
            )));
        }
        ser[to..to + 48].copy_from_slice(&fp[16..]);
    }
    let sig = Signature::deserialize(&ser)
        .map_err(|e| BlsError::BadSignature(crate::describe(e).into()))?;
    let compressed = sig.compress();
    crate::signature(&compressed)?;
    Ok(compressed)
}

/// The compressed key an EIP-2537 G1 point encodes.
pub fn pubkey_from_g1(point: &[u8]) -> Result<PubkeyBytes, BlsError> {
    let bad = |problem: &str| BlsError::BadKey {
        key: hex::encode(point),
        problem: problem.into(),
    };
    if point.len() != 128 || point[..16].iter().chain(&point[64..80]).any(|&b| b != 0) {
        return Err(bad("not a 128-byte EIP-2537 G1 point"));
    }
    let mut ser = [0u8; 96];
    ser[..48].copy_from_slice(&point[16..64]);
    ser[48..].copy_from_slice(&point[80..]);
    let pk = PublicKey::deserialize(&ser).map_err(|e| bad(crate::describe(e)))?;
    Ok(pk.compress())
}

/// RFC 9380 hash_to_curve to G2 (the `_RO_` suite with SHA-256 and SSWU) of `msg` under `dst`,
/// by blst: the reference the contract's own hash-to-curve is tested against.
pub fn hash_to_g2(msg: &[u8], dst: &[u8]) -> G2Point {
    let mut point = blst::blst_p2::default();
    let mut affine = blst::blst_p2_affine::default();
    let mut ser = [0u8; 192];
    // SAFETY: blst reads `msg` and `dst` within the lengths given (the empty `aug` has length
    // 0) and writes only into the three outputs, which are its own types, sized as it expects.
    unsafe {
        blst::blst_hash_to_g2(
            &mut point,
            msg.as_ptr(),
            msg.len(),
            dst.as_ptr(),
            dst.len(),
            std::ptr::null(),
            0,
        );
        blst::blst_p2_to_affine(&mut affine, &point);
        blst::blst_p2_affine_serialize(ser.as_mut_ptr(), &affine);
    }
    g2_from_serialized(&ser)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Registration, ValidatorSecret};

    /// RFC 9380 J.10.1 (BLS12381G2_XMD:SHA-256_SSWU_RO_), msg = "abc".
    #[test]
    fn hash_to_g2_meets_rfc_9380_s_vector() {
        let p = hash_to_g2(
            b"abc",
            b"QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_",
        );
        let fp = |i: usize| hex::encode(&p[i * 64 + 16..i * 64 + 64]);
        assert_eq!(fp(0), "02c2d18e033b960562aae3cab37a27ce00d80ccd5ba4b7fe0e7a210245129dbec7780ccc7954725f4168aff2787776e6");
        assert_eq!(fp(1), "139cddbccdc5e91b9623efd38c49f81a6f83f175e80b06fc374de9eb4b41dfe4ca3a230ed250fbe3a2acf73a41177fd8");
        assert_eq!(fp(2), "1787327b68159716a37440985269cf584bcb1e621d3a7202be6ea05c4cfe244aeb197642555a0645fb87bf7466b2ba48");
        assert_eq!(fp(3), "00aa65dae3c8d732d10ecd2c50f8a1baf3001578f71c694e03866e9f3d49ac1e1ce70dd94a733534f106d4cec0eddd16");
    }

    #[test]
    fn points_round_trip_between_encodings() {
        let sk = ValidatorSecret::generate().unwrap();
        let pk = sk.public_key();
        assert_eq!(pubkey_from_g1(&g1_point(&pk).unwrap()).unwrap(), pk);
        let sig = sk.sign(&Registration {
            validator_pubkey: pk,
            rate_commitment: [1; 32],
            limit: 1,
            chain_id: 1,
            registry: [0; 20],
        });
        assert_eq!(signature_from_g2(&g2_point(&sig).unwrap()).unwrap(), sig);
        assert!(signature_from_g2(&[0u8; 256]).is_err());
        let mut bad_pad = g2_point(&sig).unwrap();
        bad_pad[64] = 1;
        assert!(signature_from_g2(&bad_pad).is_err());
    }
}
