//! Catch-up: what a member missed while it was partitioned, restarting or unreachable, fetched
//! from the members it reaches again (docs/ARCHITECTURE.md, "Catch-up").
//!
//! Every node keeps the signed messages it accepted (and published) for a retention window,
//! bounded in bytes (`log`). When a member connects, and every few seconds with one connected
//! member at random, the two reconcile what they hold per topic with range-based set
//! reconciliation (`reconcile`: fingerprints of ranges of (timestamp, id), split until the
//! differences are listed), then the asking side fetches exactly the ids it was shown and lacks.
//! Fetched messages are judged like gossip, against the view in force at their timestamp
//! (`history`), and delivered once, marked as caught up.
//!
//! This module: the wire protocol `/conclave/catchup/1` and [`CatchUpConfig`]; the worker's side
//! is `service/catch_up.rs`.

pub(crate) mod history;
pub(crate) mod log;
pub(crate) mod reconcile;

use std::time::Duration;

use libp2p::StreamProtocol;

use crate::framing::ProtoCodec;

/// The protocol name; bump it when the messages change.
pub const CATCHUP_PROTOCOL: StreamProtocol = StreamProtocol::new("/conclave/catchup/1");

/// Ranges in one reconciliation request; a round with more differences sends the rest next.
pub const MAX_RANGES: usize = 64;
/// A range holding at most this many messages is answered with their keys, not split.
pub const LIST_THRESHOLD: usize = 16;
/// A range the asker holds nothing of is answered with up to this many keys.
pub const LIST_WHEN_EMPTY: usize = 256;
/// A range with more is split into this many sub-ranges of equal counts.
pub const SPLIT: usize = 16;
/// Ids in one fetch request.
pub const MAX_FETCH_IDS: usize = 512;
/// Message bytes in one fetch answer: the answerer stops adding messages past this (at least
/// one always fits), and the asker asks again for the rest.
pub const FETCH_REPLY_BYTES: usize = 1024 * 1024;
/// Bytes of one key on the wire: the timestamp (8, big-endian) and the message id (32).
pub const KEY_BYTES: usize = 40;

/// How catch-up behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUpConfig {
    /// How long accepted messages are kept (and can be fetched, and are accepted when fetched).
    pub retention: Duration,
    /// The most bytes of messages kept; beyond it the oldest go first.
    pub max_bytes: usize,
    /// How often this node reconciles with one connected member at random, besides on every
    /// new connection (a partition that never closed a connection heals through this).
    pub anti_entropy: Duration,
    /// Messages one reconciliation may fetch: a member cannot make this node fetch more than it
    /// promised, nor more than this.
    pub fetch_budget: usize,
    /// Reconciliation and fetch requests a member may send per second (burst: 16× this);
    /// beyond it they are answered `busy`.
    pub serve_rate: u32,
}

impl Default for CatchUpConfig {
    fn default() -> Self {
        CatchUpConfig {
            retention: Duration::from_secs(600),
            max_bytes: 64 * 1024 * 1024,
            anti_entropy: Duration::from_secs(5),
            fetch_budget: 8192,
            serve_rate: 8,
        }
    }
}

/// A range of keys `[lower, upper)` with the sender's count and fingerprint of what it holds
/// there. `lower` is 8 to 40 bytes (a timestamp and an id prefix, zero-padded); `upper` the
/// same, or empty for "no upper bound".
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireRange {
    #[prost(bytes = "vec", tag = "1")]
    pub lower: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub upper: Vec<u8>,
    #[prost(uint32, tag = "3")]
    pub count: u32,
    #[prost(bytes = "vec", tag = "4")]
    pub fingerprint: Vec<u8>,
}

/// "What do you hold of `topic` in these ranges?"
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Reconcile {
    #[prost(string, tag = "1")]
    pub topic: String,
    #[prost(message, repeated, tag = "2")]
    pub ranges: Vec<WireRange>,
}

/// How a range was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum AnswerMode {
    /// Same count and fingerprint: nothing differs there.
    Equal = 0,
    /// The answerer's keys in the range, all of them.
    Keys = 1,
    /// Sub-ranges with the answerer's counts and fingerprints.
    Split = 2,
}

/// The answer for one requested range, in the request's order.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RangeAnswer {
    #[prost(enumeration = "AnswerMode", tag = "1")]
    pub mode: i32,
    /// `Keys`: 40 bytes each (timestamp and id), ascending.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub keys: Vec<Vec<u8>>,
    /// `Split`: contiguous sub-ranges covering the requested one, ascending.
    #[prost(message, repeated, tag = "3")]
    pub split: Vec<WireRange>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Reconciled {
    #[prost(message, repeated, tag = "1")]
    pub answers: Vec<RangeAnswer>,
}

/// "Send me these messages" (ids the answerer listed).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Fetch {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub ids: Vec<Vec<u8>>,
}

/// A retained message as it travels (and as the node stores it): enough to judge it again.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RetainedWire {
    #[prost(string, tag = "1")]
    pub topic: String,
    /// The author's PeerId bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub source: Vec<u8>,
    /// The signed envelope, as gossiped.
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Fetched {
    #[prost(message, repeated, tag = "1")]
    pub messages: Vec<RetainedWire>,
}

#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum CatchUpRequestKind {
    #[prost(message, tag = "1")]
    Reconcile(Reconcile),
    #[prost(message, tag = "2")]
    Fetch(Fetch),
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CatchUpRequest {
    #[prost(oneof = "CatchUpRequestKind", tags = "1, 2")]
    pub kind: Option<CatchUpRequestKind>,
}

#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum CatchUpReplyKind {
    #[prost(message, tag = "1")]
    Reconciled(Reconciled),
    #[prost(message, tag = "2")]
    Fetched(Fetched),
    /// Over this member's request rate, or the request was malformed (the reason).
    #[prost(string, tag = "3")]
    Refused(String),
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CatchUpReply {
    #[prost(oneof = "CatchUpReplyKind", tags = "1, 2, 3")]
    pub kind: Option<CatchUpReplyKind>,
}

/// The catch-up protocol's codec.
pub(crate) type CatchUpCodec = ProtoCodec<CatchUpRequest, CatchUpReply>;

/// Requests are ranges or ids (tens of KiB); answers carry [`FETCH_REPLY_BYTES`] of messages
/// and one more of at most `max_message_bytes`, or [`MAX_RANGES`] answered ranges.
pub(crate) fn catch_up_codec(max_message_bytes: usize) -> CatchUpCodec {
    let request = (MAX_RANGES * 2 * (2 * KEY_BYTES + 32) + MAX_FETCH_IDS * 40 + 1024) as u64;
    let per_message = max_message_bytes + 256;
    let fetched = FETCH_REPLY_BYTES + MAX_FETCH_IDS * 64 + per_message;
    let reconciled =
        MAX_RANGES * (SPLIT * (2 * KEY_BYTES + 32)).max(LIST_WHEN_EMPTY * (KEY_BYTES + 2));
    let response = (fetched.max(reconciled) + 1024) as u64;
    ProtoCodec::new(request, response, ("catch-up request", "catch-up reply"))
}

/// Answers a reconciliation request against `held` (timestamp, message id) keys exactly as a
/// node serving it does — the answering side is stateless — so the protocol can be exercised
/// (tests, fuzzing) without a worker. An error names what is wrong with the request.
pub fn answer_reconcile(
    held: &[(u64, [u8; 32])],
    request: &Reconcile,
) -> Result<Reconciled, reconcile::ReconcileError> {
    let items: std::collections::BTreeMap<log::Key, ()> = held.iter().map(|k| (*k, ())).collect();
    reconcile::answer(&items, &request.ranges).map(|answers| Reconciled { answers })
}

/// How long one catch-up request may take.
pub(crate) const CATCHUP_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
