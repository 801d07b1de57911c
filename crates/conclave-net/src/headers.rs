//! The header request-response protocol (`/conclave/headers/1`): a member asks another for a
//! range of recent chain headers when its own chain source looks wrong
//! (docs/ARCHITECTURE.md, "Alternative paths: watchdog, drivers, header fallback").
//!
//! The network only moves bytes: a node serves the headers its own chain source gave it, from a
//! [`RecentHeaders`] snapshot its chain task writes; the asking node decides what to believe
//! (conclave-altnet's `accept_range`). Requests travel on whatever connection the two members
//! have — TCP, QUIC, WebSocket or a relayed circuit — and only between gated members.

use std::collections::BTreeMap;

use libp2p::StreamProtocol;

use crate::framing::ProtoCodec;

/// The protocol name; bump it when the messages change.
pub const HEADERS_PROTOCOL: StreamProtocol = StreamProtocol::new("/conclave/headers/1");
/// The most headers one request may ask for (and one answer carries).
pub const MAX_HEADERS_PER_REQUEST: u32 = 128;
/// A request is two varints; anything longer is not one.
const MAX_REQUEST_BYTES: u64 = 64;
/// 128 headers of at most 4 KiB each, with framing: an EVM header is ~600 bytes.
const MAX_RESPONSE_BYTES: u64 = MAX_HEADERS_PER_REQUEST as u64 * 4200;

/// Asks for `count` consecutive headers starting at height `from`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderRequest {
    /// The first height wanted (our last good header's child).
    #[prost(uint64, tag = "1")]
    pub from: u64,
    /// At most [`MAX_HEADERS_PER_REQUEST`]; the server caps it too.
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

/// One header: its hash as the server's chain source gave it, and its RLP encoding.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HeaderEntry {
    #[prost(bytes = "vec", tag = "1")]
    pub hash: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub rlp: Vec<u8>,
}

/// The consecutive headers the server has from the requested height on (possibly none).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderReply {
    #[prost(message, repeated, tag = "1")]
    pub headers: Vec<HeaderEntry>,
}

/// The recent headers a node serves: those its own chain source gave it, newest `capacity`.
/// One writer (the node's chain task) publishes snapshots; the network worker and the HTTP API
/// answer from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentHeaders {
    capacity: usize,
    by_height: BTreeMap<u64, HeaderEntry>,
}

impl RecentHeaders {
    /// Keeps the newest `capacity` headers (a node serves what members may be missing, not
    /// the chain's history).
    pub fn new(capacity: usize) -> Self {
        RecentHeaders {
            capacity,
            by_height: BTreeMap::new(),
        }
    }

    /// Records the header at `height`, forgetting the oldest beyond capacity. A reorg replaces
    /// the entry and drops every later one (they were on the abandoned branch).
    pub fn insert(&mut self, height: u64, entry: HeaderEntry) {
        if self.by_height.get(&height).is_some_and(|e| *e != entry) {
            self.by_height.split_off(&height);
        }
        self.by_height.insert(height, entry);
        while self.by_height.len() > self.capacity {
            self.by_height.pop_first();
        }
    }

    /// The header at `height`, if held (the fallback's return check reads the source's hash).
    pub fn get(&self, height: u64) -> Option<&HeaderEntry> {
        self.by_height.get(&height)
    }

    /// The highest height held.
    pub fn newest(&self) -> Option<u64> {
        self.by_height.last_key_value().map(|(h, _)| *h)
    }

    /// Up to `count` consecutive headers from `from` (capped at [`MAX_HEADERS_PER_REQUEST`]),
    /// stopping at the first gap.
    pub fn range(&self, from: u64, count: u32) -> Vec<HeaderEntry> {
        let count = count.min(MAX_HEADERS_PER_REQUEST) as u64;
        let mut out = Vec::new();
        for h in from..from.saturating_add(count) {
            match self.by_height.get(&h) {
                Some(e) => out.push(e.clone()),
                None => break,
            }
        }
        out
    }
}

/// The header protocol's codec: one bounded protobuf each way.
pub(crate) type HeaderCodec = ProtoCodec<HeaderRequest, HeaderReply>;

/// A codec with the header protocol's bounds.
pub(crate) fn header_codec() -> HeaderCodec {
    ProtoCodec::new(
        MAX_REQUEST_BYTES,
        MAX_RESPONSE_BYTES,
        ("header request", "header reply"),
    )
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::framing::read_bounded;

    fn entry(n: u8) -> HeaderEntry {
        HeaderEntry {
            hash: vec![n; 32],
            rlp: vec![n; 3],
        }
    }

    #[test]
    fn keeps_the_newest_and_serves_consecutive_ranges() {
        let mut r = RecentHeaders::new(4);
        for h in 1..=6u8 {
            r.insert(u64::from(h), entry(h));
        }
        assert_eq!(r.get(2), None, "beyond capacity the oldest go");
        assert_eq!(r.range(3, 10), vec![entry(3), entry(4), entry(5), entry(6)]);
        assert_eq!(r.range(7, 3), vec![]);
        assert_eq!(r.newest(), Some(6));
    }

    #[test]
    fn a_reorg_drops_the_abandoned_branch() {
        let mut r = RecentHeaders::new(10);
        for h in 1..=5u8 {
            r.insert(u64::from(h), entry(h));
        }
        r.insert(3, entry(33));
        assert_eq!(r.range(1, 10), vec![entry(1), entry(2), entry(33)]);
    }

    #[tokio::test]
    async fn oversized_frames_are_refused() {
        let long = vec![0u8; MAX_REQUEST_BYTES as usize + 1];
        let err = read_bounded::<_, HeaderRequest>(
            &mut long.as_slice(),
            MAX_REQUEST_BYTES,
            "header request",
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("header request longer than 64"),
            "{err}"
        );
        let ok = HeaderRequest { from: 9, count: 3 }.encode_to_vec();
        let req: HeaderRequest =
            read_bounded(&mut ok.as_slice(), MAX_REQUEST_BYTES, "header request")
                .await
                .unwrap();
        assert_eq!((req.from, req.count), (9, 3));
    }
}
