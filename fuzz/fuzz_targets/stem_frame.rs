//! The anonymous channel's stem (`/conclave/stem/1`): `conclave_net::StemRequest` and
//! `StemReply` (prost), the topic check a relay makes (`TopicName` parse), and the frame's RLN
//! precheck against a fixed channel, as the node runs it on a member's frame. The same bytes
//! go to both decoders.
//!
//! Properties: nothing panics; each decoded message re-encodes to an equal one; a reply's
//! verdict is either a known `StemVerdict` or refused by `try_from`.
#![no_main]

use conclave_core::TopicName;
use conclave_fuzz::{rln_channel, RLN_NOW_MS};
use conclave_net::{StemReply, StemRequest, StemVerdict};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = StemRequest::decode(data) {
        let again = StemRequest::decode(request.encode_to_vec().as_slice());
        assert_eq!(again.as_ref(), Ok(&request), "request round trip");
        if let Ok(topic) = request.topic.parse::<TopicName>() {
            assert_eq!(topic.as_str(), request.topic);
            let _ = rln_channel().precheck(topic.as_str(), &request.data, RLN_NOW_MS);
        }
    }
    if let Ok(reply) = StemReply::decode(data) {
        let again = StemReply::decode(reply.encode_to_vec().as_slice());
        assert_eq!(again.as_ref(), Ok(&reply), "reply round trip");
        if let Ok(verdict) = StemVerdict::try_from(reply.verdict) {
            assert_eq!(verdict as i32, reply.verdict);
        }
    }
});
