//! The Stacks registry's values as a Stacks node answers them (Clarity consensus serialization):
//! the signer set, its threshold and its aggregate key, each decoded strictly.
//!
//! Input: a selector byte (0 the signer set, 1 the threshold, 2 the aggregate key; others wrap)
//! and the serialized value. Properties: nothing panics; whatever decodes is the exact encoding
//! of what it decoded to (no ignored or trailing byte, no second form of one value); a set holds
//! at most 128 keys; a set accepted whole has only distinct keys that are curve points, each
//! naming the PeerId of its key.
#![no_main]

use conclave_registry::stacks::clarity::{self, KEY_LEN, MAX_SIGNERS};
use conclave_registry::stacks::{SignerKey, SignerSet};
use libfuzzer_sys::fuzz_target;

const THRESHOLD: [u8; 17] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const NO_AGGREGATE: [u8; 6] = [2, 0, 0, 0, 1, 0];

fn buffer(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02];
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

fuzz_target!(|data: &[u8]| {
    let [selector, value @ ..] = data else {
        return;
    };
    match selector % 3 {
        0 => {
            let decoded = clarity::signer_set(value);
            if let Ok(keys) = &decoded {
                assert!(keys.len() <= MAX_SIGNERS);
                let mut encoded = vec![0x0b];
                encoded.extend_from_slice(&(keys.len() as u32).to_be_bytes());
                for k in keys {
                    encoded.extend_from_slice(&buffer(k));
                }
                assert_eq!(encoded, value, "decoded from another encoding");
            }
            match SignerSet::decode(value, &THRESHOLD, &NO_AGGREGATE) {
                Ok(set) => {
                    let keys = decoded.expect("a set accepted whole decodes");
                    assert_eq!(set.signers.len(), keys.len());
                    for (i, (signer, key)) in set.signers.iter().zip(&keys).enumerate() {
                        assert_eq!(&signer.compressed, key);
                        assert_eq!(SignerKey::from_compressed(*key).as_ref(), Ok(signer));
                        assert!(!keys[..i].contains(key), "key {i} repeats");
                    }
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
        1 => {
            if let Ok(v) = clarity::uint(value, "threshold") {
                let mut encoded = vec![0x01];
                encoded.extend_from_slice(&v.to_be_bytes());
                assert_eq!(encoded, value);
            }
        }
        _ => {
            if let Ok(b) = clarity::buffer(value, KEY_LEN, "aggregate") {
                assert!(b.len() <= KEY_LEN);
                assert_eq!(buffer(&b), value);
            }
        }
    }
});
