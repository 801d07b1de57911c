//! The HTTP header fallback's answer: `conclave_node::header_answers::SignedHeaders` (JSON, as
//! `GET /v1/altnet/headers` serves it) checked by `verify` against the fixture view at the
//! fixture moment, then judged by `conclave_altnet::accept_range` as the watchdog does.
//!
//! Properties: nothing panics; a verified answer is the fixture member's (the only registered
//! key that can sign), names its operator and carries every header it listed; an accepted range
//! re-hashes to its hashes and links to the anchor.
#![no_main]

use conclave_altnet::{accept_range, B256};
use conclave_core::OperatorId;
use conclave_fuzz::{
    assert_linked, member_peer, signed_view, AT, HEADER_ANCHOR_HASH, HEADER_ANCHOR_NUMBER,
};
use conclave_node::header_answers::SignedHeaders;
use libfuzzer_sys::fuzz_target;

/// The start height every answer is asked for.
const FROM: u64 = HEADER_ANCHOR_NUMBER + 1;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = serde_json::from_slice::<SignedHeaders>(data) else {
        return;
    };
    let Ok((peer, response)) = answer.verify(signed_view(), AT, FROM) else {
        return;
    };
    assert_eq!(peer, member_peer(), "only the member's key verifies");
    assert_eq!(response.operator, OperatorId([7; 20]));
    assert_eq!(response.headers.len(), answer.headers.len());
    let anchor = (HEADER_ANCHOR_NUMBER, B256::from(HEADER_ANCHOR_HASH));
    if let Ok(range) = accept_range(anchor, std::slice::from_ref(&response), 1) {
        assert_linked(anchor, &range);
    }
});
