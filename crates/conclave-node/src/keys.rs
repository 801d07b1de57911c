//! Node key files: the hot key a node signs its gossip with, and its RLN identity.
//!
//! A small TOML file naming the key type, holding the secret in hex and, for the operator's
//! convenience, the PeerId it derives (checked on load). Written with mode 0600 and refused when
//! group or others can read it.

use conclave_registry::evm::admin::PrivateKeySigner;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use conclave_rln::{fr_to_hex, RlnIdentity};
use libp2p::identity::{secp256k1, Keypair};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Supported node key types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    /// The default: faster signatures on the gossip hot path.
    #[default]
    Ed25519,
    /// For operators who want their signer's curve as node key.
    Secp256k1,
}

impl FromStr for KeyType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ed25519" => Ok(KeyType::Ed25519),
            "secp256k1" => Ok(KeyType::Secp256k1),
            other => Err(format!(
                "key type `{other}` is not supported (expected ed25519 or secp256k1)"
            )),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Secp256k1 => "secp256k1",
        })
    }
}

/// Why a key file could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {0} not found")]
    Missing(PathBuf),
    #[error("key file {0} already exists; refusing to overwrite a node key")]
    Exists(PathBuf),
    #[error("key file {path} is readable by others (mode {mode:04o}); expected 0600 — run `chmod 600 {path}`")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(rename = "type")]
    key_type: String,
    secret: String,
    peer_id: String,
}

fn keypair_from_secret(key_type: KeyType, mut secret: [u8; 32]) -> Option<Keypair> {
    match key_type {
        KeyType::Ed25519 => Keypair::ed25519_from_bytes(&mut secret).ok(),
        KeyType::Secp256k1 => secp256k1::SecretKey::try_from_bytes(&mut secret)
            .ok()
            .map(|sk| secp256k1::Keypair::from(sk).into()),
    }
}

/// Generates a key of `key_type` and writes it to `path` (created 0600, never overwritten).
pub fn generate(path: &Path, key_type: KeyType) -> Result<PeerId, KeyError> {
    let (secret, keypair) = loop {
        let secret: [u8; 32] = rand::random();
        if let Some(kp) = keypair_from_secret(key_type, secret) {
            break (secret, kp);
        }
    };
    let peer_id = keypair.public().to_peer_id();
    let text = toml::to_string(&KeyFile {
        key_type: key_type.to_string(),
        secret: hex::encode(secret),
        peer_id: peer_id.to_string(),
    })
    .expect("a key file serializes");
    write_secret_file(
        path,
        &format!("# Conclave node key. Keep it secret: mode 0600.\n{text}"),
    )?;
    Ok(peer_id)
}

/// Creates `path` with mode 0600 (never overwriting) and writes `text` durably.
pub fn write_secret_file(path: &Path, text: &str) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists(path.to_owned()),
            _ => io(e),
        })?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RlnKeyFile {
    secret: String,
    id_commitment: String,
}

/// Generates an RLN identity and writes it to `path` (0600, never overwritten). What the registry
/// needs is its rate commitment for the chosen limit: [`RlnIdentity::rate_commitment`].
pub fn generate_rln(path: &Path) -> Result<RlnIdentity, KeyError> {
    let id = RlnIdentity::generate();
    let text = toml::to_string(&RlnKeyFile {
        secret: hex::encode(id.secret_bytes()),
        id_commitment: fr_to_hex(&id.id_commitment()),
    })
    .expect("an RLN key file serializes");
    write_secret_file(
        path,
        &format!("# Conclave RLN identity. Keep it secret: mode 0600. Sending over quota reveals it.\n{text}"),
    )?;
    Ok(id)
}

/// Loads an RLN identity, refusing loose permissions and inconsistent files.
/// Generates an Ethereum account key for `[rln] chain_key` (0600, never overwritten); fund its
/// address so the node can pay for on-chain removals.
pub fn generate_eth(path: &Path) -> Result<PrivateKeySigner, KeyError> {
    let key = PrivateKeySigner::random();
    write_secret_file(path, &format!("0x{}\n", hex::encode(key.to_bytes())))?;
    Ok(key)
}

/// Loads an Ethereum signing key (hex, as `conclave registry` takes it), refusing loose
/// permissions.
pub fn load_eth(path: &Path) -> Result<PrivateKeySigner, KeyError> {
    let text = read_secret_file(path)?;
    conclave_registry::evm::admin::parse_eth_key(&text).map_err(|e| KeyError::Format {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

pub fn load_rln(path: &Path) -> Result<RlnIdentity, KeyError> {
    let text = read_secret_file(path)?;
    let format = |message: String| KeyError::Format {
        path: path.to_owned(),
        message,
    };
    let file: RlnKeyFile = toml::from_str(&text).map_err(|e| {
        format(format!(
            "not a Conclave RLN identity (expected `secret` and `id_commitment` entries): {}",
            e.message()
        ))
    })?;
    let bytes = hex::decode(&file.secret)
        .map_err(|_| format("`secret` must be 64 hex digits (32 bytes)".into()))?;
    let id = RlnIdentity::from_secret_bytes(&bytes)
        .map_err(|e| format(format!("`secret` is not an RLN secret: {e}")))?;
    let derived = fr_to_hex(&id.id_commitment());
    if file.id_commitment.trim_start_matches("0x") != derived {
        return Err(format(format!(
            "`id_commitment` {} does not match the secret (which gives {derived})",
            file.id_commitment
        )));
    }
    Ok(id)
}

/// Reads a secret file (a node key, an Ethereum key), refusing one others can read.
pub fn read_secret_file(path: &Path) -> Result<String, KeyError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KeyError::Missing(path.to_owned()),
        _ => KeyError::Io {
            path: path.to_owned(),
            source: e,
        },
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    std::fs::read_to_string(path).map_err(|e| KeyError::Format {
        path: path.to_owned(),
        message: format!("not a text file ({e})"),
    })
}

/// Loads a node key, refusing loose permissions, unknown formats and inconsistent files.
pub fn load(path: &Path) -> Result<(Keypair, KeyType), KeyError> {
    let text = read_secret_file(path)?;
    let format = |message: String| KeyError::Format {
        path: path.to_owned(),
        message,
    };
    let file: KeyFile = toml::from_str(&text).map_err(|e| {
        format(format!(
            "not a Conclave key file (expected `type`, `secret` and `peer_id` entries): {}",
            e.message()
        ))
    })?;
    let key_type: KeyType = file.key_type.parse().map_err(format)?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(&file.secret, &mut secret)
        .map_err(|_| format("`secret` must be 64 hex digits (32 bytes)".into()))?;
    let keypair = keypair_from_secret(key_type, secret)
        .ok_or_else(|| format(format!("`secret` is not a valid {key_type} secret key")))?;
    let derived = keypair.public().to_peer_id();
    if file.peer_id != derived.to_string() {
        return Err(format(format!(
            "`peer_id` {} does not match the secret (which gives {derived})",
            file.peer_id
        )));
    }
    Ok((keypair, key_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_and_load_both_types() {
        let dir = tempfile::tempdir().unwrap();
        for t in [KeyType::Ed25519, KeyType::Secp256k1] {
            let path = dir.path().join(format!("{t}.key"));
            let peer = generate(&path, t).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let (kp, kt) = load(&path).unwrap();
            assert_eq!((kp.public().to_peer_id(), kt), (peer, t));
            assert!(matches!(generate(&path, t), Err(KeyError::Exists(_))));
        }
    }

    #[test]
    fn rln_identity_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rln.key");
        let id = generate_rln(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_rln(&path).unwrap().id_commitment(), id.id_commitment());
        assert!(matches!(generate_rln(&path), Err(KeyError::Exists(_))));
        let good = std::fs::read_to_string(&path).unwrap();
        let write = |text: &str| {
            std::fs::write(&path, text).unwrap();
            load_rln(&path).unwrap_err().to_string()
        };
        let other = fr_to_hex(&RlnIdentity::generate().id_commitment());
        let tampered: Vec<String> = good
            .lines()
            .map(|l| {
                if l.starts_with("id_commitment") {
                    format!("id_commitment = \"{other}\"")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        assert!(write(&tampered.join("\n")).contains("does not match"));
        assert!(write("secret = \"zz\"\nid_commitment = \"00\"\n").contains("64 hex digits"));
        assert!(write(&format!(
            "secret = \"{}\"\nid_commitment = \"00\"\n",
            "ff".repeat(32)
        ))
        .contains("not an RLN secret"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(load_rln(&path).unwrap_err().to_string().contains("0640"));
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        assert!(matches!(load(&path), Err(KeyError::Missing(_))));

        generate(&path, KeyType::Ed25519).unwrap();
        let good = std::fs::read_to_string(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            err.to_string().contains("0644") && err.to_string().contains("chmod 600"),
            "{err}"
        );

        let write = |text: &str| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            load(&path).unwrap_err().to_string()
        };
        assert!(write("hello").contains("not a Conclave key file"));
        assert!(write(&good.replace("ed25519", "rsa")).contains("`rsa` is not supported"));
        let err = write("type = \"ed25519\"\nsecret = \"abcd\"\npeer_id = \"x\"\n");
        assert!(err.contains("64 hex digits"), "{err}");
        let other = PeerId::random().to_string();
        let mut lines: Vec<String> = good.lines().map(String::from).collect();
        for l in lines.iter_mut() {
            if l.starts_with("peer_id") {
                *l = format!("peer_id = \"{other}\"");
            }
        }
        assert!(write(&lines.join("\n")).contains("does not match"));
    }
}
