//! Secrets encrypted at rest in Web3 Secret Storage v3, the keystore format of geth, alloy,
//! eth-keystore and the Ethereum tools operators already use: a key derived from a password by
//! scrypt or PBKDF2-HMAC-SHA256, the secret encrypted with AES-128-CTR under its first half, and
//! keccak256(second half ‖ ciphertext) as the MAC that tells a wrong password; and (`eip2335`)
//! the validators' EIP-2335 keystores for BLS keys, which use the same KDFs and cipher.
//!
//! Place in the data flow: beside it, at start-up — key file on disk → (password file) →
//! secret bytes → the node's or the CLI's keys. A keystore is input like any other: its key
//! derivation cost is bounded ([`Limits`]) before any work is done, so a hostile file cannot
//! make the process allocate or compute without end.

pub mod eip2335;
mod scrypt;

use aes::cipher::{KeyIvInit, StreamCipher};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Why a keystore could not be opened or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeystoreError {
    #[error("not a Web3 Secret Storage v3 keystore: {0}")]
    Format(String),
    #[error("unsupported keystore: {0}")]
    Unsupported(String),
    #[error("the keystore's key derivation would cost {what}, above the limit of {limit}")]
    TooCostly { what: String, limit: String },
    #[error("wrong password: the keystore's MAC does not match")]
    WrongPassword,
}

/// The most a keystore's key derivation may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// scrypt's memory, 128 · r · N bytes.
    pub max_scrypt_bytes: usize,
    /// scrypt's parallelism p (each pass costs the memory's worth of hashing again).
    pub max_scrypt_p: usize,
    pub max_pbkdf2_rounds: u32,
}

impl Default for Limits {
    /// 512 MiB and p ≤ 16 for scrypt, 10 million PBKDF2 rounds: twice geth's standard
    /// parameters (256 MiB; 262144 rounds in the spec's vector).
    fn default() -> Self {
        Limits {
            max_scrypt_bytes: 512 << 20,
            max_scrypt_p: 16,
            max_pbkdf2_rounds: 10_000_000,
        }
    }
}

/// How hard a new keystore is to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// geth's standard scrypt parameters: N = 2^18, r = 8, p = 1 (256 MiB).
    Standard,
    /// geth's light ones: N = 2^12, r = 8, p = 6 (4 MiB); for devnets and tests.
    Light,
}

#[derive(Serialize, Deserialize)]
struct KeystoreFile {
    #[serde(alias = "Crypto")]
    crypto: Crypto,
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Crypto {
    cipher: String,
    cipherparams: CipherParams,
    ciphertext: String,
    kdf: String,
    kdfparams: serde_json::Value,
    mac: String,
}

#[derive(Serialize, Deserialize)]
struct CipherParams {
    iv: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    dklen: usize,
    n: usize,
    r: usize,
    p: usize,
    salt: String,
}

#[derive(Deserialize)]
struct Pbkdf2Params {
    c: u32,
    dklen: usize,
    prf: String,
    salt: String,
}

fn unhex(what: &str, s: &str) -> Result<Vec<u8>, KeystoreError> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s))
        .map_err(|e| KeystoreError::Format(format!("{what} is not hex ({e})")))
}

fn params<T: for<'de> Deserialize<'de>>(
    kdf: &str,
    v: &serde_json::Value,
) -> Result<T, KeystoreError> {
    T::deserialize(v).map_err(|e| KeystoreError::Format(format!("{kdf} kdfparams: {e}")))
}

/// The key `kdf` with `kdfparams` derives from `password`, refusing costs beyond `limits`.
fn derive(
    kdf: &str,
    kdfparams: &serde_json::Value,
    password: &[u8],
    limits: Limits,
) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    let costly = |what: String, limit: String| Err(KeystoreError::TooCostly { what, limit });
    match kdf {
        "scrypt" => {
            let p: ScryptParams = params("scrypt", kdfparams)?;
            if p.n < 2 || !p.n.is_power_of_two() || p.r == 0 || p.p == 0 {
                return Err(KeystoreError::Format(format!(
                    "scrypt n = {} must be a power of two above 1, r = {} and p = {} positive",
                    p.n, p.r, p.p
                )));
            }
            let bytes = p.n.checked_mul(p.r).and_then(|x| x.checked_mul(128));
            match bytes {
                Some(b) if b <= limits.max_scrypt_bytes => {}
                _ => {
                    return costly(
                        format!("128·r·N = 128·{}·{} bytes of memory", p.r, p.n),
                        format!("{} bytes", limits.max_scrypt_bytes),
                    )
                }
            }
            if p.p > limits.max_scrypt_p {
                return costly(
                    format!("p = {}", p.p),
                    format!("p = {}", limits.max_scrypt_p),
                );
            }
            check_dklen(p.dklen)?;
            let salt = unhex("scrypt salt", &p.salt)?;
            let mut dk = Zeroizing::new(vec![0u8; p.dklen]);
            scrypt::derive(password, &salt, p.n, p.r, p.p, &mut dk);
            Ok(dk)
        }
        "pbkdf2" => {
            let p: Pbkdf2Params = params("pbkdf2", kdfparams)?;
            if p.prf != "hmac-sha256" {
                return Err(KeystoreError::Unsupported(format!(
                    "pbkdf2 prf `{}` (expected hmac-sha256)",
                    p.prf
                )));
            }
            if p.c == 0 || p.c > limits.max_pbkdf2_rounds {
                return costly(
                    format!("{} PBKDF2 rounds", p.c),
                    format!("1 to {} rounds", limits.max_pbkdf2_rounds),
                );
            }
            check_dklen(p.dklen)?;
            let salt = unhex("pbkdf2 salt", &p.salt)?;
            let mut dk = Zeroizing::new(vec![0u8; p.dklen]);
            pbkdf2::pbkdf2::<hmac::Hmac<sha2::Sha256>>(password, &salt, p.c, &mut dk);
            Ok(dk)
        }
        other => Err(KeystoreError::Unsupported(format!(
            "kdf `{other}` (expected scrypt or pbkdf2)"
        ))),
    }
}

fn check_dklen(dklen: usize) -> Result<(), KeystoreError> {
    if !(32..=64).contains(&dklen) {
        return Err(KeystoreError::Format(format!(
            "dklen = {dklen}; expected 32 (16 bytes of AES key, 16 of MAC key) up to 64"
        )));
    }
    Ok(())
}

fn mac(dk: &[u8], ciphertext: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(&dk[16..32]);
    h.update(ciphertext);
    h.finalize().into()
}

/// Opens a keystore's JSON text with `password`: the secret it holds.
pub fn decrypt(
    json: &str,
    password: &[u8],
    limits: Limits,
) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    let file: KeystoreFile =
        serde_json::from_str(json).map_err(|e| KeystoreError::Format(e.to_string()))?;
    if file.version != 3 {
        return Err(KeystoreError::Unsupported(format!(
            "version {} (expected 3)",
            file.version
        )));
    }
    let c = &file.crypto;
    if c.cipher != "aes-128-ctr" {
        return Err(KeystoreError::Unsupported(format!(
            "cipher `{}` (expected aes-128-ctr)",
            c.cipher
        )));
    }
    let iv = iv_of(&c.cipherparams.iv)?;
    let ciphertext = unhex("ciphertext", &c.ciphertext)?;
    let expected = unhex("mac", &c.mac)?;
    let dk = derive(&c.kdf, &c.kdfparams, password, limits)?;
    if !equal_in_full(&mac(&dk, &ciphertext), &expected) {
        return Err(KeystoreError::WrongPassword);
    }
    Ok(aes_ctr(&dk, &iv, ciphertext))
}

/// Compared in full whatever the first difference: the check leaks no prefix.
fn equal_in_full(actual: &[u8; 32], expected: &[u8]) -> bool {
    expected.len() == 32
        && actual
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// AES-128-CTR under the derived key's first half (its own inverse).
fn aes_ctr(dk: &[u8], iv: &[u8], data: Vec<u8>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(data);
    Aes128Ctr::new(dk[..16].into(), iv.into()).apply_keystream(&mut out);
    out
}

/// The 16-byte iv in `hex`.
fn iv_of(hex: &str) -> Result<Vec<u8>, KeystoreError> {
    let iv = unhex("cipher iv", hex)?;
    if iv.len() != 16 {
        return Err(KeystoreError::Format(format!(
            "the cipher's iv is {} bytes; expected 16",
            iv.len()
        )));
    }
    Ok(iv)
}

/// Encrypts `secret` under `password`: a new keystore's JSON text.
pub fn encrypt(secret: &[u8], password: &[u8], strength: Strength) -> String {
    let fresh = Fresh::new(password, strength);
    let ciphertext = fresh.encrypt(secret);
    let file = KeystoreFile {
        crypto: Crypto {
            cipher: "aes-128-ctr".into(),
            cipherparams: CipherParams {
                iv: hex::encode(fresh.iv),
            },
            ciphertext: hex::encode(&ciphertext),
            kdf: "scrypt".into(),
            kdfparams: fresh.scrypt_params(),
            mac: hex::encode(mac(&fresh.key, &ciphertext)),
        },
        version: 3,
        id: Some(fresh.uuid()),
    };
    serde_json::to_string_pretty(&file).unwrap_or_default()
}

/// What a new keystore draws: salt, iv, id, and the key scrypt derives from them.
struct Fresh {
    key: Zeroizing<Vec<u8>>,
    salt: [u8; 32],
    iv: [u8; 16],
    id: [u8; 16],
    params: (usize, usize, usize),
}

impl Fresh {
    fn new(password: &[u8], strength: Strength) -> Self {
        let mut rng = rand::thread_rng();
        let params = match strength {
            Strength::Standard => (1 << 18, 8, 1),
            Strength::Light => (1 << 12, 8, 6),
        };
        let mut fresh = Fresh {
            key: Zeroizing::new(vec![0u8; 32]),
            salt: [0; 32],
            iv: [0; 16],
            id: [0; 16],
            params,
        };
        rng.fill_bytes(&mut fresh.salt);
        rng.fill_bytes(&mut fresh.iv);
        rng.fill_bytes(&mut fresh.id);
        let (n, r, p) = params;
        scrypt::derive(password, &fresh.salt, n, r, p, &mut fresh.key);
        fresh
    }

    fn encrypt(&self, secret: &[u8]) -> Vec<u8> {
        aes_ctr(&self.key, &self.iv, secret.to_vec()).to_vec()
    }

    fn scrypt_params(&self) -> serde_json::Value {
        let (n, r, p) = self.params;
        serde_json::json!(ScryptParams {
            dklen: 32,
            n,
            r,
            p,
            salt: hex::encode(self.salt),
        })
    }

    /// A version-4 (random) UUID.
    fn uuid(&self) -> String {
        let mut id = self.id;
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let h = hex::encode(id);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Web3 Secret Storage Definition's test vectors: one key, password "testpassword",
    /// under PBKDF2-SHA-256 (c = 262144) and under scrypt (N = 262144, r = 1, p = 8).
    const PBKDF2: &str = r#"{"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"6087dab2f9fdbbfaddc31a909735c1e6"},"ciphertext":"5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46","kdf":"pbkdf2","kdfparams":{"c":262144,"dklen":32,"prf":"hmac-sha256","salt":"ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd"},"mac":"517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2"},"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","version":3}"#;
    const SCRYPT: &str = r#"{"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"83dbcc02d8ccb40e466191a123791e0e"},"ciphertext":"d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c","kdf":"scrypt","kdfparams":{"dklen":32,"n":262144,"p":8,"r":1,"salt":"ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19"},"mac":"2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097"},"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","version":3}"#;
    const KEY: &str = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d";

    #[test]
    fn the_spec_s_vectors_decrypt() {
        for vector in [PBKDF2, SCRYPT] {
            let secret = decrypt(vector, b"testpassword", Limits::default()).unwrap();
            assert_eq!(hex::encode(secret.as_slice()), KEY);
        }
    }

    #[test]
    fn a_wrong_password_and_a_costly_file_are_refused_by_name() {
        assert_eq!(
            decrypt(PBKDF2, b"testpassword2", Limits::default()),
            Err(KeystoreError::WrongPassword)
        );
        let tight = Limits {
            max_scrypt_bytes: 16 << 20,
            ..Limits::default()
        };
        assert!(matches!(
            decrypt(SCRYPT, b"testpassword", tight),
            Err(KeystoreError::TooCostly { .. })
        ));
        let huge = SCRYPT.replace("\"n\":262144", "\"n\":1099511627776");
        assert!(matches!(
            decrypt(&huge, b"testpassword", Limits::default()),
            Err(KeystoreError::TooCostly { .. })
        ));
        let odd = SCRYPT.replace("\"n\":262144", "\"n\":262143");
        assert!(matches!(
            decrypt(&odd, b"testpassword", Limits::default()),
            Err(KeystoreError::Format(_))
        ));
        let cbc = PBKDF2.replace("aes-128-ctr", "aes-128-cbc");
        assert!(matches!(
            decrypt(&cbc, b"testpassword", Limits::default()),
            Err(KeystoreError::Unsupported(_))
        ));
        assert!(matches!(
            decrypt("{}", b"x", Limits::default()),
            Err(KeystoreError::Format(_))
        ));
    }

    #[test]
    fn what_is_encrypted_decrypts_and_nothing_else_does() {
        let secret = [7u8; 32];
        let json = encrypt(&secret, b"pw", Strength::Light);
        assert_eq!(
            decrypt(&json, b"pw", Limits::default()).unwrap().as_slice(),
            &secret
        );
        assert_eq!(
            decrypt(&json, b"pw2", Limits::default()),
            Err(KeystoreError::WrongPassword)
        );
        assert_ne!(
            json,
            encrypt(&secret, b"pw", Strength::Light),
            "fresh salt and iv"
        );
    }
}
