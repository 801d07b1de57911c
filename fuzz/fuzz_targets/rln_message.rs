//! The anonymous channel's wire message: `conclave_rln::RlnMessage::decode` (protobuf frame,
//! canonical field elements, compressed Groth16 proof, canonical padding), then every check a
//! receiver makes before proof verification, `RlnChannel::precheck`, against a fixed
//! two-member channel.
//!
//! Properties: nothing panics; a decoded message re-encodes to bytes that decode to the same
//! message; precheck refuses whatever does not decode.
#![no_main]

use conclave_fuzz::{rln_channel, RLN_NOW_MS, RLN_TOPIC};
use conclave_rln::{Outcome, Rejection, RlnMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = RlnMessage::decode(data);
    if let Ok(message) = &decoded {
        let again = RlnMessage::decode(&message.encode());
        assert_eq!(again.as_ref().ok(), Some(message), "wire round trip");
    }
    match rln_channel().precheck(RLN_TOPIC, data, RLN_NOW_MS) {
        Ok(pending) => {
            assert!(decoded.is_ok(), "precheck passed an undecodable message");
            let _ = pending.proof();
        }
        Err(Outcome::Reject(Rejection::Malformed(e))) => {
            assert_eq!(decoded.err(), Some(e), "precheck decodes as decode does");
        }
        Err(Outcome::Accept(_) | Outcome::Slash(_)) => {
            panic!("precheck never accepts or slashes: that needs a verified proof")
        }
        Err(_) => assert!(decoded.is_ok()),
    }
});
