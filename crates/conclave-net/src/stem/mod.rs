//! The stem of the anonymous channel (Dandelion++, Fanti et al. 2018): before an anonymous
//! message is gossiped it travels a line of single hops among members, so the member that first
//! gossips it ("fluffs") is usually not its author
//! (docs/ARCHITECTURE.md, "The anonymous channel (RLN)", "The stem").
//!
//! - this module: the wire protocol `/conclave/stem/1` (one frame per request, a verdict per
//!   answer) and its [`StemConfig`];
//! - `router` (sans-IO): who the next hop is (per stem epoch, one successor per predecessor),
//!   the fluff coin, hop delays, and the fail-safe that fluffs a message the stem lost.
//!
//! A hop forwards a frame only after the application verified its RLN proof and nullifier
//! (the same verdict gossip waits for), so the stem is exactly as spam-resistant as gossip.

pub(crate) mod router;

use std::time::Duration;

use libp2p::StreamProtocol;

use crate::framing::ProtoCodec;

/// The protocol name; bump it when the messages change.
pub const STEM_PROTOCOL: StreamProtocol = StreamProtocol::new("/conclave/stem/1");

/// How the stem behaves; the defaults follow Dandelion++ scaled to signer networks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StemConfig {
    /// Own messages start on the stem. Off, they are gossiped at once (and this node still
    /// relays other members' stems).
    pub enabled: bool,
    /// The chance that a hop fluffs a relayed message instead of forwarding it: the stem is
    /// 1/q hops long on average.
    pub fluff_probability: f64,
    /// A relayed message waits a uniformly random time up to this before it is forwarded.
    pub hop_delay: Duration,
    /// A held message not seen in gossip after this (plus a random share of it) is fluffed by
    /// the holder itself.
    pub failsafe: Duration,
    /// How long one choice of successors lasts.
    pub epoch: Duration,
    /// Messages held for the fail-safe at once; beyond it a message is fluffed at once.
    pub held_capacity: usize,
}

impl Default for StemConfig {
    fn default() -> Self {
        StemConfig {
            enabled: true,
            fluff_probability: 0.2,
            hop_delay: Duration::from_millis(50),
            failsafe: Duration::from_secs(2),
            epoch: Duration::from_secs(600),
            held_capacity: 1024,
        }
    }
}

/// One anonymous frame handed to the next hop.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StemRequest {
    /// The anonymous topic name.
    #[prost(string, tag = "1")]
    pub topic: String,
    /// The RLN frame, exactly as it is gossiped.
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// What the next hop made of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum StemVerdict {
    /// Valid: it goes on (stem or fluff).
    Accepted = 0,
    /// Not taken, nobody at fault (a duplicate, a busy validator).
    Ignored = 1,
    /// Invalid (proof, nullifier, format): the sender is penalized.
    Rejected = 2,
    /// Not looked at: the sender's score is below the graylist threshold.
    Refused = 3,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StemReply {
    #[prost(enumeration = "StemVerdict", tag = "1")]
    pub verdict: i32,
}

/// A verdict is one varint.
const MAX_REPLY_BYTES: u64 = 16;

/// The stem protocol's codec: frames bounded by what the anonymous channel accepts.
pub(crate) type StemCodec = ProtoCodec<StemRequest, StemReply>;

/// A codec for frames of at most `max_request` bytes.
pub(crate) fn stem_codec(max_request: u64) -> StemCodec {
    ProtoCodec::new(max_request, MAX_REPLY_BYTES, ("stem frame", "stem reply"))
}
