//! Catch-up (`/conclave/catchup/1`): `CatchUpRequest` and `CatchUpReply` (prost), a
//! reconciliation request answered against a fixed set of retained keys exactly as a serving
//! node answers it (`answer_reconcile`: range bounds, fingerprints, splits), and
//! `RetainedMessage::decode`, the form fetched messages travel and are stored in. The same bytes
//! go to every decoder.
//!
//! Properties: nothing panics; each decoded message re-encodes to an equal one; an answer has
//! one entry per requested range; a retained message's id and timestamp are derived from its
//! bytes, so decoding its encoding gives the same message.
#![no_main]

use std::sync::OnceLock;

use conclave_net::{
    answer_reconcile, CatchUpReply, CatchUpRequest, CatchUpRequestKind, RetainedMessage,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// 2000 keys a node might hold: timestamps 1000 ms apart, ids from the index.
fn held() -> &'static [(u64, [u8; 32])] {
    static HELD: OnceLock<Vec<(u64, [u8; 32])>> = OnceLock::new();
    HELD.get_or_init(|| {
        (0..2000u32)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
                id[4..8].copy_from_slice(&i.to_le_bytes());
                (1_700_000_000_000 + u64::from(i) * 1000, id)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = CatchUpRequest::decode(data) {
        let again = CatchUpRequest::decode(request.encode_to_vec().as_slice());
        assert_eq!(again.as_ref(), Ok(&request), "request round trip");
        if let Some(CatchUpRequestKind::Reconcile(r)) = &request.kind {
            if let Ok(answered) = answer_reconcile(held(), r) {
                assert_eq!(
                    answered.answers.len(),
                    r.ranges.len(),
                    "one answer per range"
                );
            }
        }
    }
    if let Ok(reply) = CatchUpReply::decode(data) {
        let again = CatchUpReply::decode(reply.encode_to_vec().as_slice());
        assert_eq!(again.as_ref(), Ok(&reply), "reply round trip");
    }
    if let Ok(m) = RetainedMessage::decode(data) {
        let again = RetainedMessage::decode(&m.encode());
        assert_eq!(again.as_ref(), Ok(&m), "retained round trip");
    }
});
