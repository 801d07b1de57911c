//! The signed channel's envelope: `conclave_core::Envelope` (prost) and the validator that runs
//! on every gossip message, `conclave_net::validate_signed`, against a fixed one-operator view.
//!
//! Input: byte 0 picks the source (none, the member, a hashed-PeerId member, a stranger) and
//! the topic (in or out of scope); the rest is the gossip data.
//! Properties: nothing panics; whatever decodes re-encodes to an equal envelope; an accepted
//! message is the decoded envelope, from the member, who can sign.
#![no_main]

use conclave_core::Envelope;
use conclave_fuzz::{
    hashed_member, member_peer, other_topic, signed_topic, signed_view, stranger, AT, LIMITS,
    NOW_MS,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    if let Ok(envelope) = Envelope::decode(data) {
        let again = Envelope::decode(envelope.encode_to_vec().as_slice());
        assert_eq!(again.as_ref(), Ok(&envelope), "envelope round trip");
    }
    let member = member_peer();
    let source = match selector & 3 {
        0 => None,
        1 => Some(member),
        2 => Some(hashed_member()),
        _ => Some(stranger()),
    };
    let topic = if selector & 4 == 0 {
        signed_topic()
    } else {
        other_topic()
    };
    let verdict =
        conclave_net::validate_signed(signed_view(), AT, NOW_MS, LIMITS, source, &topic, data);
    match verdict {
        Ok(v) => {
            assert_eq!(
                v.source, member,
                "only the member with an inline key can sign"
            );
            assert_eq!(Envelope::decode(data).ok(), Some(v.envelope));
        }
        // Every refusal has a label for metrics and a message for logs.
        Err(e) => assert!(!e.label().is_empty() && !e.to_string().is_empty()),
    }
});
