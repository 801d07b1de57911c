//! Keystores (`conclave-keystore`), as read from disk: Web3 Secret Storage v3 (Ethereum keys,
//! at start-up) and EIP-2335 (validators' BLS keys, `conclave rln register-validator`).
//!
//! Input: the keystore's JSON text, given to both decoders. Properties: nothing panics; the
//! declared key derivation cost is checked against the limits before any work (the limits here
//! are small, so an input that gets past them is cheap); a keystore that opens with one password
//! refuses another as a wrong password.
#![no_main]

use conclave_keystore::{decrypt, eip2335, KeystoreError, Limits};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_scrypt_bytes: 1 << 20,
    max_scrypt_p: 2,
    max_pbkdf2_rounds: 2000,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decrypt(text, b"testpassword", LIMITS) {
        Ok(_) => assert_eq!(
            decrypt(text, b"another password", LIMITS),
            Err(KeystoreError::WrongPassword)
        ),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match eip2335::decrypt(text, "testpassword", LIMITS) {
        Ok(_) => assert!(matches!(
            eip2335::decrypt(text, "another password", LIMITS),
            Err(KeystoreError::WrongPassword)
        )),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
