//! A validator's RLN registration, from the three places it arrives: the
//! `conclave-validator-registration/1` file `conclave registry submit` reads
//! (`SignedRegistration::parse`, then `verify` and `to_call`), the EIP-2537 points the
//! registry's event carries (`eip2537::pubkey_from_g1`, `signature_from_g2`), and the compressed
//! key and signature of a file registry's `[[rln]]` entry (`conclave_bls::public_key`,
//! `signature`).
//!
//! Input: byte 0 picks the decoder (modulo 4), the rest is its input.
//! Properties: nothing panics; a registration file that parses, written back, parses equal; a
//! point or compressed value that decodes encodes back to exactly the input (one encoding per
//! point: no padding, flag or coordinate slack a forger could vary).
#![no_main]

use conclave_bls::eip2537;
use conclave_registry::evm::validators::SignedRegistration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => registration_file(rest),
        1 => {
            if let Ok(pubkey) = eip2537::pubkey_from_g1(rest) {
                let point = eip2537::g1_point(&pubkey).expect("a decoded key re-encodes");
                assert_eq!(point.as_slice(), rest, "G1 point has a second encoding");
            }
        }
        2 => {
            if let Ok(signature) = eip2537::signature_from_g2(rest) {
                let point = eip2537::g2_point(&signature).expect("a decoded signature re-encodes");
                assert_eq!(point.as_slice(), rest, "G2 point has a second encoding");
            }
        }
        _ => {
            if let Ok(key) = conclave_bls::public_key(rest) {
                assert_eq!(key.compress().as_slice(), rest, "key has a second encoding");
            }
            if let Ok(signature) = conclave_bls::signature(rest) {
                assert_eq!(
                    signature.compress().as_slice(),
                    rest,
                    "signature has a second encoding"
                );
            }
        }
    }
});

fn registration_file(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let registration = match SignedRegistration::parse(text) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    // A forged or malformed signature is an error, never a panic; the call needs both points.
    let verified = registration.verify();
    let call = registration.to_call();
    if verified.is_ok() {
        assert!(call.is_ok(), "a verified registration has no contract call");
    }
    let written = serde_json::to_string(&registration).expect("a registration serializes");
    match SignedRegistration::parse(&written) {
        Ok(again) => assert_eq!(
            again, registration,
            "registration round trip through {written}"
        ),
        Err(e) => panic!("a registration written back is refused: {e}\n{written}"),
    }
}
