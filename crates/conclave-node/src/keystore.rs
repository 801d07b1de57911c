//! Ethereum keys encrypted at rest: Web3 Secret Storage v3 keystores (`conclave-keystore`: the
//! format geth, alloy and eth-keystore read and write), unlocked with a password read from a
//! file (for unattended use; never a flag value). Keystores and password files are refused when
//! group or others can read them, and the password and secret are wiped from memory after use.

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

/// Decrypts the keystore at `path` with the password in `password_file`.
pub fn load_eth_keystore(path: &Path, password_file: &Path) -> Result<PrivateKeySigner, KeyError> {
    let password = read_password(password_file)?;
    let text = read_secret_file(path)?;
    let format = |message: String| KeyError::Format {
        path: path.to_owned(),
        message,
    };
    let secret = conclave_keystore::decrypt(&text, password.as_bytes(), Limits::default())
        .map_err(|e| match e {
            KeystoreError::WrongPassword => format(format!(
                "{e} (is {} the right password file?)",
                password_file.display()
            )),
            e => format(e.to_string()),
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
}
