//! EIP-2335 keystores: how Ethereum validators keep their BLS12-381 keys (Lighthouse, Prysm, the
//! staking deposit CLI). Same KDFs and cipher as Web3 Secret Storage, a SHA-256 checksum instead
//! of the keccak MAC, and the password normalized first: NFKD, then control characters (C0, C1,
//! DEL) removed, then UTF-8.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::{aes_ctr, derive, equal_in_full, iv_of, unhex, Fresh, KeystoreError, Limits, Strength};

#[derive(Serialize, Deserialize)]
struct Module {
    function: String,
    params: serde_json::Value,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct Crypto {
    kdf: Module,
    checksum: Module,
    cipher: Module,
}

#[derive(Serialize, Deserialize)]
struct File {
    crypto: Crypto,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// The BLS public key (48 bytes compressed, hex), when the keystore states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pubkey: Option<String>,
    path: String,
    uuid: String,
    version: u32,
}

#[derive(Deserialize)]
struct CipherParams {
    iv: String,
}

/// An opened validator keystore.
pub struct ValidatorSecret {
    /// The 32-byte BLS secret key, big-endian.
    pub secret: Zeroizing<Vec<u8>>,
    /// The public key the file states (hex, unchecked here: the caller derives it from the
    /// secret and compares).
    pub pubkey: Option<String>,
    pub path: String,
}

/// The password as EIP-2335 hashes it: NFKD, without control characters, as UTF-8.
pub fn normalize_password(password: &str) -> Zeroizing<Vec<u8>> {
    let control = |c: &char| matches!(*c as u32, 0x00..=0x1f | 0x7f..=0x9f);
    let text: Zeroizing<String> = Zeroizing::new(password.nfkd().filter(|c| !control(c)).collect());
    Zeroizing::new(text.as_bytes().to_vec())
}

fn checksum(dk: &[u8], ciphertext: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(&dk[16..32]);
    h.update(ciphertext);
    h.finalize().into()
}

/// Opens an EIP-2335 keystore's JSON text with `password`.
pub fn decrypt(
    json: &str,
    password: &str,
    limits: Limits,
) -> Result<ValidatorSecret, KeystoreError> {
    let file: File =
        serde_json::from_str(json).map_err(|e| KeystoreError::Format(format!("EIP-2335: {e}")))?;
    if file.version != 4 {
        return Err(KeystoreError::Unsupported(format!(
            "EIP-2335 version {} (expected 4)",
            file.version
        )));
    }
    let c = &file.crypto;
    if c.checksum.function != "sha256" {
        return Err(KeystoreError::Unsupported(format!(
            "checksum function `{}` (expected sha256)",
            c.checksum.function
        )));
    }
    if c.cipher.function != "aes-128-ctr" {
        return Err(KeystoreError::Unsupported(format!(
            "cipher `{}` (expected aes-128-ctr)",
            c.cipher.function
        )));
    }
    let params: CipherParams = serde_json::from_value(c.cipher.params.clone())
        .map_err(|e| KeystoreError::Format(format!("cipher params: {e}")))?;
    let iv = iv_of(&params.iv)?;
    let ciphertext = unhex("cipher message", &c.cipher.message)?;
    let expected = unhex("checksum message", &c.checksum.message)?;
    let dk = derive(
        &c.kdf.function,
        &c.kdf.params,
        &normalize_password(password),
        limits,
    )?;
    if !equal_in_full(&checksum(&dk, &ciphertext), &expected) {
        return Err(KeystoreError::WrongPassword);
    }
    Ok(ValidatorSecret {
        secret: aes_ctr(&dk, &iv, ciphertext),
        pubkey: file.pubkey,
        path: file.path,
    })
}

/// A new EIP-2335 keystore (scrypt) of `secret` with its `pubkey` (hex) and derivation `path`.
pub fn encrypt(
    secret: &[u8],
    password: &str,
    pubkey: &str,
    path: &str,
    strength: Strength,
) -> String {
    let fresh = Fresh::new(&normalize_password(password), strength);
    let ciphertext = fresh.encrypt(secret);
    let file = File {
        crypto: Crypto {
            kdf: Module {
                function: "scrypt".into(),
                params: fresh.scrypt_params(),
                message: String::new(),
            },
            checksum: Module {
                function: "sha256".into(),
                params: serde_json::json!({}),
                message: hex::encode(checksum(&fresh.key, &ciphertext)),
            },
            cipher: Module {
                function: "aes-128-ctr".into(),
                params: serde_json::json!({ "iv": hex::encode(fresh.iv) }),
                message: hex::encode(&ciphertext),
            },
        },
        description: None,
        pubkey: Some(pubkey.to_owned()),
        path: path.to_owned(),
        uuid: fresh.uuid(),
        version: 4,
    };
    serde_json::to_string_pretty(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EIP-2335's test vectors: password "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑" (normalized: "testpassword🔑").
    const PASSWORD: &str = "\u{1d531}\u{1d522}\u{1d530}\u{1d531}\u{1d52d}\u{1d51e}\u{1d530}\u{1d530}\u{1d534}\u{1d52c}\u{1d52f}\u{1d521}\u{1f511}";
    const SECRET: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
    const PUBKEY: &str = "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07";
    const SCRYPT: &str = r#"{"crypto":{"kdf":{"function":"scrypt","params":{"dklen":32,"n":262144,"p":1,"r":8,"salt":"d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"},"message":""},"checksum":{"function":"sha256","params":{},"message":"d2217fe5f3e9a1e34581ef8a78f7c9928e436d36dacc5e846690a5581e8ea484"},"cipher":{"function":"aes-128-ctr","params":{"iv":"264daa3f303d7259501c93d997d84fe6"},"message":"06ae90d55fe0a6e9c5c3bc5b170827b2e5cce3929ed3f116c2811e6366dfe20f"}},"description":"This is a test keystore that uses scrypt to secure the secret.","pubkey":"9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07","path":"m/12381/60/3141592653/589793238","uuid":"1d85ae20-35c5-4611-98e8-aa14a633906f","version":4}"#;
    const PBKDF2: &str = r#"{"crypto":{"kdf":{"function":"pbkdf2","params":{"dklen":32,"c":262144,"prf":"hmac-sha256","salt":"d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"},"message":""},"checksum":{"function":"sha256","params":{},"message":"8a9f5d9912ed7e75ea794bc5a89bca5f193721d30868ade6f73043c6ea6febf1"},"cipher":{"function":"aes-128-ctr","params":{"iv":"264daa3f303d7259501c93d997d84fe6"},"message":"cee03fde2af33149775b7223e7845e4fb2c8ae1792e5f99fe9ecf474cc8c16ad"}},"description":"This is a test keystore that uses PBKDF2 to secure the secret.","pubkey":"9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07","path":"m/12381/60/0/0","uuid":"64625def-3331-4eea-ab6f-782f3ed16a83","version":4}"#;

    #[test]
    fn the_password_normalizes_as_the_eip_says() {
        assert_eq!(
            hex::encode(normalize_password(PASSWORD).as_slice()),
            "7465737470617373776f7264f09f9491"
        );
        assert_eq!(
            normalize_password("a\u{7f}b\u{1}c\u{85}").as_slice(),
            b"abc"
        );
    }

    #[test]
    fn the_eip_s_vectors_decrypt_and_a_wrong_password_is_named() {
        for vector in [SCRYPT, PBKDF2] {
            let opened = decrypt(vector, PASSWORD, Limits::default()).unwrap();
            assert_eq!(hex::encode(opened.secret.as_slice()), SECRET);
            assert_eq!(opened.pubkey.as_deref(), Some(PUBKEY));
        }
        assert!(matches!(
            decrypt(PBKDF2, "testpassword", Limits::default()),
            Err(KeystoreError::WrongPassword)
        ));
        let v3 = PBKDF2.replace("\"version\":4", "\"version\":3");
        assert!(matches!(
            decrypt(&v3, PASSWORD, Limits::default()),
            Err(KeystoreError::Unsupported(_))
        ));
    }

    #[test]
    fn a_written_keystore_opens_with_its_password_only() {
        let secret = [9u8; 32];
        let json = encrypt(
            &secret,
            "pässwörd",
            PUBKEY,
            "m/12381/3600/0/0/0",
            Strength::Light,
        );
        let opened = decrypt(&json, "pässwörd", Limits::default()).unwrap();
        assert_eq!(opened.secret.as_slice(), &secret);
        assert_eq!(opened.path, "m/12381/3600/0/0/0");
        assert!(matches!(
            decrypt(&json, "passwort", Limits::default()),
            Err(KeystoreError::WrongPassword)
        ));
    }
}
