//! Key files read from disk at start and on every key rotation: `conclave_node::keys::load`
//! (node key), `load_rln` (RLN identity), `load_eth` (Ethereum key) and `read_secret_file`,
//! each on the input written to a 0600 file in a scratch folder.
//!
//! Properties: nothing panics; a loaded key, written back in the canonical file form, loads to
//! the same key.
#![no_main]

use conclave_fuzz::{scratch_file, write_private};
use conclave_node::keys::{self, KeyType};
use conclave_rln::fr_to_hex;
use libfuzzer_sys::fuzz_target;
use libp2p_identity::Keypair;

/// The 32-byte secret of a node key, to write it back.
fn secret_of(keypair: &Keypair, key_type: KeyType) -> Option<[u8; 32]> {
    match key_type {
        KeyType::Ed25519 => {
            let k = keypair.clone().try_into_ed25519().ok()?;
            k.secret().as_ref().try_into().ok()
        }
        KeyType::Secp256k1 => {
            let k = keypair.clone().try_into_secp256k1().ok()?;
            Some(k.secret().to_bytes())
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let path = scratch_file("fuzz.key");
    write_private(&path, data);
    let text = keys::read_secret_file(&path);
    assert_eq!(
        text.as_ref().ok().map(String::as_bytes),
        std::str::from_utf8(data).ok().map(str::as_bytes),
        "a 0600 file reads back as written when it is UTF-8"
    );
    let node = keys::load(&path);
    let rln = keys::load_rln(&path);
    let eth = keys::load_eth(&path);

    if let Ok((keypair, key_type)) = node {
        let secret = match secret_of(&keypair, key_type) {
            Some(s) => s,
            None => panic!("a loaded {key_type} key has no 32-byte secret"),
        };
        let peer = keypair.public().to_peer_id();
        let canonical = format!(
            "type = \"{key_type}\"\nsecret = \"{}\"\npeer_id = \"{peer}\"\n",
            hex_lower(&secret)
        );
        write_private(&path, canonical.as_bytes());
        match keys::load(&path) {
            Ok((again, t)) => assert_eq!((again.public(), t), (keypair.public(), key_type)),
            Err(e) => panic!("canonical node key file refused: {e}"),
        }
    }
    if let Ok(id) = rln {
        let canonical = format!(
            "secret = \"{}\"\nid_commitment = \"{}\"\n",
            hex_lower(&id.secret_bytes()),
            fr_to_hex(&id.id_commitment())
        );
        write_private(&path, canonical.as_bytes());
        match keys::load_rln(&path) {
            Ok(again) => assert_eq!(again.id_commitment(), id.id_commitment()),
            Err(e) => panic!("canonical RLN key file refused: {e}"),
        }
    }
    if let Ok(signer) = eth {
        let canonical = format!("0x{}\n", hex_lower(&signer.to_bytes()[..]));
        write_private(&path, canonical.as_bytes());
        match keys::load_eth(&path) {
            Ok(again) => assert_eq!(again.address(), signer.address()),
            Err(e) => panic!("canonical Ethereum key file refused: {e}"),
        }
    }
});

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
