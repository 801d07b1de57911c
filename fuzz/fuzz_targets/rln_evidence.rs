//! Slashing notices on the signed `rln-slash` topic: `conclave_node::SlashingNotice` (prost),
//! the evidence check every receiver runs before verifying proofs, `RlnChannel::examine` (both
//! messages decode, share a slot, bind their own signals, reveal a member's secret), and the
//! announced removals, `RlnIdentity::from_secret_bytes` then the member lookup, as the node does.
//!
//! Properties: nothing panics; a decoded notice re-encodes to an equal notice; evidence that
//! passes names a current member whose secret is the one revealed.
#![no_main]

use conclave_fuzz::rln_channel;
use conclave_node::SlashingNotice;
use conclave_rln::RlnIdentity;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// Removed secrets the node reads from one notice (conclave-node's `MAX_ANNOUNCED`).
const MAX_ANNOUNCED: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(notice) = SlashingNotice::decode(data) else {
        return;
    };
    let again = SlashingNotice::decode(notice.encode_to_vec().as_slice());
    assert_eq!(again.as_ref(), Ok(&notice), "notice round trip");
    let channel = rln_channel();
    if let Some(evidence) = &notice.evidence {
        if let Ok(examined) = channel.examine(evidence) {
            let leaf = channel.membership().leaf_of(&examined.identity);
            assert_eq!(leaf.map(|(index, _)| index), Some(examined.index));
        }
    }
    for secret in notice.removed_secrets.iter().take(MAX_ANNOUNCED) {
        if let Ok(id) = RlnIdentity::from_secret_bytes(secret) {
            assert_eq!(&id.secret_bytes()[..], &secret[..], "secret round trip");
            let _ = channel.membership().leaf_of(&id);
        }
    }
});
