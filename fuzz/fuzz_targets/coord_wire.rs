//! The coordination message on the signed `coord` topic: `conclave_coord::CoordinationMessage::decode`
//! (keep-core's protobuf, checked field by field).
//!
//! Properties: nothing panics; a decoded message re-encodes to bytes that decode to the same
//! message, and survives the JSON form the node persists settled windows in.
#![no_main]

use conclave_coord::CoordinationMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = CoordinationMessage::decode(data) else {
        return;
    };
    let again = CoordinationMessage::decode(&message.encode());
    assert_eq!(again.as_ref(), Ok(&message), "wire round trip");
    let json = match serde_json::to_string(&message) {
        Ok(j) => j,
        Err(e) => panic!("a decoded message must serialize: {e}"),
    };
    let back: Result<CoordinationMessage, _> = serde_json::from_str(&json);
    assert_eq!(
        back.ok().as_ref(),
        Some(&message),
        "JSON round trip of {json}"
    );
});
