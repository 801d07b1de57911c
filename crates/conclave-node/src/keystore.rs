//! Ethereum keys encrypted at rest: Web3 Secret Storage v3 keystores (`conclave-keystore`: the
//! format geth, alloy and eth-keystore read and write), unlocked with a password read from a
//! file (for unattended use; never a flag value). Keystores and password files are refused when
//! group or others can read them, and the password and secret are wiped from memory after use.
//! Validators' BLS keys come in their own format, EIP-2335, with the same rules.

use std::path::Path;

pub use conclave_keystore::Strength;
use conclave_keystore::{KeystoreError, Limits};
use conclave_registry::evm::admin::PrivateKeySigner;
use zeroize::Zeroizing;

use crate::keys::{read_secret_file, write_secret_file, KeyError};

/// The password in `path`: its first line (a trailing newline is not part of it).
pub fn read_password(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let text = Zeroizing::new(read_secret_file(path)?);
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(KeyError::Format {
            path: path.to_owned(),
            message: "the password file is empty (the password is its first line)".into(),
        });
    }
    Ok(Zeroizing::new(line.to_owned()))
}

/// A keystore's refusal as an error about `path`; a wrong password (`wrong` says how it was
/// told) points at the password file.
fn refused(path: &Path, password_file: &Path, e: KeystoreError, wrong: &str) -> KeyError {
    let message = match e {
        KeystoreError::WrongPassword => format!(
            "{wrong} (is {} the right password file?)",
            password_file.display()
        ),
        e => e.to_string(),
    };
    KeyError::Format {
        path: path.to_owned(),
        message,
    }
}

/// Decrypts the keystore at `path` with the password in `password_file`.
pub fn load_eth_keystore(path: &Path, password_file: &Path) -> Result<PrivateKeySigner, KeyError> {
    let password = read_password(password_file)?;
    let text = read_secret_file(path)?;
    let format = |message: String| KeyError::Format {
        path: path.to_owned(),
        message,
    };
    let secret = conclave_keystore::decrypt(&text, password.as_bytes(), Limits::default())
        .map_err(|e| {
            refused(
                path,
                password_file,
                e,
                "wrong password: the keystore's MAC does not match",
            )
        })?;
    PrivateKeySigner::from_slice(&secret)
        .map_err(|e| format(format!("the keystore holds no secp256k1 key ({e})")))
}

/// Encrypts `key` into a new keystore at `path` (mode 0600, never overwritten) with the
/// password in `password_file`.
pub fn write_eth_keystore(
    path: &Path,
    key: &PrivateKeySigner,
    password_file: &Path,
    strength: Strength,
) -> Result<(), KeyError> {
    let password = read_password(password_file)?;
    let secret = Zeroizing::new(key.to_bytes().0);
    let json = conclave_keystore::encrypt(secret.as_slice(), password.as_bytes(), strength);
    write_secret_file(path, &json)
}

/// Opens an EIP-2335 validator keystore (Lighthouse, Prysm, the staking deposit CLI) with the
/// password in `password_file`; the key it holds must be the public key it states, if any.
pub fn load_validator_keystore(
    path: &Path,
    password_file: &Path,
) -> Result<conclave_bls::ValidatorSecret, KeyError> {
    let password = read_password(password_file)?;
    let text = read_secret_file(path)?;
    let format = |message: String| KeyError::Format {
        path: path.to_owned(),
        message,
    };
    let opened =
        conclave_keystore::eip2335::decrypt(&text, &password, Limits::default()).map_err(|e| {
            refused(
                path,
                password_file,
                e,
                "wrong password: the keystore's checksum does not match",
            )
        })?;
    let secret = conclave_bls::ValidatorSecret::from_bytes(&opened.secret)
        .map_err(|e| format(format!("the keystore holds no BLS key ({e})")))?;
    if let Some(stated) = &opened.pubkey {
        let derived = hex::encode(secret.public_key());
        if stated.trim_start_matches("0x") != derived {
            return Err(format(format!(
                "the keystore states public key {stated} but holds the key of 0x{derived}"
            )));
        }
    }
    Ok(secret)
}

/// Writes `secret` as a new EIP-2335 keystore at `path` (mode 0600, never overwritten).
pub fn write_validator_keystore(
    path: &Path,
    secret: &conclave_bls::ValidatorSecret,
    password_file: &Path,
    strength: Strength,
) -> Result<(), KeyError> {
    let password = read_password(password_file)?;
    let json = conclave_keystore::eip2335::encrypt(
        secret.to_bytes().as_ref(),
        &password,
        &hex::encode(secret.public_key()),
        "m/12381/3600/0/0/0",
        strength,
    );
    write_secret_file(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::PathBuf;

    fn private(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        path
    }

    #[test]
    fn a_written_keystore_is_private_opens_with_its_password_only_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let pw = private(dir.path(), "pw", "correct horse\n");
        let key = PrivateKeySigner::random();
        let path = dir.path().join("cold.json");
        write_eth_keystore(&path, &key, &pw, Strength::Light).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            load_eth_keystore(&path, &pw).unwrap().address(),
            key.address()
        );
        assert!(matches!(
            write_eth_keystore(&path, &key, &pw, Strength::Light),
            Err(KeyError::Exists(_))
        ));
        let loose = dir.path().join("loose-pw");
        std::fs::write(&loose, "x\n").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_eth_keystore(&path, &loose),
            Err(KeyError::Permissions { .. })
        ));
    }

    #[test]
    fn a_validator_keystore_opens_with_its_password_and_a_wrong_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let pw = private(dir.path(), "pw", "validator pass\n");
        let wrong = private(dir.path(), "wrong", "guess\n");
        let secret = conclave_bls::ValidatorSecret::generate().unwrap();
        let path = dir.path().join("keystore.json");
        write_validator_keystore(&path, &secret, &pw, Strength::Light).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let opened = load_validator_keystore(&path, &pw).unwrap();
        assert_eq!(opened.public_key(), secret.public_key());
        let e = load_validator_keystore(&path, &wrong)
            .unwrap_err()
            .to_string();
        assert!(e.contains("wrong password") && e.contains("wrong"), "{e}");
    }
}
