//! The header fallback's wire: `conclave_net::HeaderReply` (prost) turned into a member's answer
//! the way the node does (32-byte hashes) and judged by `conclave_altnet::accept_range`
//! (RLP-decoded EVM headers, re-hashed, linked to our anchor); `conclave_net::HeaderRequest`
//! answered from a fixed `RecentHeaders`; and tip announcements, `TipAnnouncement::parse`.
//! The same bytes go to all three decoders.
//!
//! Properties: nothing panics; each decoded message re-encodes to an equal one; an accepted
//! range re-hashes to the hashes it reports and links to the anchor; a request is served at
//! most `MAX_HEADERS_PER_REQUEST` headers.
#![no_main]

use conclave_altnet::{accept_range, HeaderResponse, TipAnnouncement, B256};
use conclave_core::OperatorId;
use conclave_fuzz::{assert_linked, HEADER_ANCHOR_HASH, HEADER_ANCHOR_NUMBER};
use conclave_net::{
    HeaderEntry, HeaderReply, HeaderRequest, RecentHeaders, MAX_HEADERS_PER_REQUEST,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::OnceLock;

/// What this node serves: four headers at heights 10..14.
fn served() -> &'static RecentHeaders {
    static SERVED: OnceLock<RecentHeaders> = OnceLock::new();
    SERVED.get_or_init(|| {
        let mut r = RecentHeaders::new(8);
        for h in 10..14u64 {
            let entry = HeaderEntry {
                hash: vec![h as u8; 32],
                rlp: vec![0xc0],
            };
            r.insert(h, entry);
        }
        r
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = HeaderReply::decode(data) {
        let again = HeaderReply::decode(reply.encode_to_vec().as_slice());
        assert_eq!(again.as_ref(), Ok(&reply), "reply round trip");
        // As conclave-node's `decode_entries`: a hash that is not 32 bytes refuses the answer.
        let headers: Option<Vec<(B256, Vec<u8>)>> = reply
            .headers
            .iter()
            .map(|e| {
                let hash: [u8; 32] = e.hash.as_slice().try_into().ok()?;
                Some((B256::from(hash), e.rlp.clone()))
            })
            .collect();
        if let Some(headers) = headers {
            let anchor = (HEADER_ANCHOR_NUMBER, B256::from(HEADER_ANCHOR_HASH));
            let answers = [HeaderResponse {
                operator: OperatorId([1; 20]),
                headers,
            }];
            if let Ok(range) = accept_range(anchor, &answers, 1) {
                assert!(range.headers.len() <= reply.headers.len());
                assert_linked(anchor, &range);
            }
        }
    }
    if let Ok(request) = HeaderRequest::decode(data) {
        let again = HeaderRequest::decode(request.encode_to_vec().as_slice());
        assert_eq!(again.as_ref(), Ok(&request), "request round trip");
        let answer = served().range(request.from, request.count);
        assert!(answer.len() <= MAX_HEADERS_PER_REQUEST as usize);
        assert!(answer.len() <= request.count as usize);
    }
    if let Ok((height, hash)) = TipAnnouncement::parse(data) {
        let bytes = TipAnnouncement::new(height, hash).encode_to_vec();
        assert_eq!(
            TipAnnouncement::parse(&bytes),
            Ok((height, hash)),
            "tip round trip"
        );
    }
});
