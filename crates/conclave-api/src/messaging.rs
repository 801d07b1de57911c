//! The signed channel: publish, subscribe and the connection table.

use base64::Engine;
use serde::{Deserialize, Serialize};

/// `POST /v1/publish/{topic}`: `200` when handed to gossip, `202` when held until a peer is
/// connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PublishAnswer {
    Published { message_id: String },
    Queued { position: usize },
}

/// One message on `GET /v1/subscribe/{topic}` (a WebSocket text frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFrame {
    pub topic: String,
    /// The sending operator's address, as the registry names it.
    pub operator: String,
    /// The sending node's peer id.
    pub node: String,
    pub timestamp_ms: u64,
    pub message_id: String,
    pub payload_base64: String,
    /// Fetched from a member after this node missed it (partition, restart), not received in
    /// gossip; still delivered once only.
    #[serde(default)]
    pub caught_up: bool,
    /// Sent from the node's retained messages because the subscriber asked for what it missed
    /// (`?since_ms=`), not delivered just now. A subscriber may have seen it before: message
    /// ids tell.
    #[serde(default)]
    pub replayed: bool,
}

impl DeliveryFrame {
    /// The payload's bytes.
    pub fn payload(&self) -> Result<Vec<u8>, base64::DecodeError> {
        decode_payload(&self.payload_base64)
    }
}

/// Decodes a frame's `payload_base64`.
pub fn decode_payload(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

/// Sent in place of messages a slow subscriber missed: the stream never stalls the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lagged {
    pub lagged: u64,
}

/// A frame of a subscription stream: an item, or the note that some were missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StreamFrame<T> {
    Item(T),
    Lagged(Lagged),
}

/// `GET /v1/peers`: this node and everyone it is connected to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeersAnswer {
    pub local: String,
    pub listen: Vec<String>,
    pub peers: Vec<PeerAnswer>,
}

/// One connected peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerAnswer {
    pub peer_id: String,
    /// Its operator, when the registry names the key.
    pub operator: Option<String>,
    pub addresses: Vec<String>,
    pub connections: usize,
    pub topics: Vec<String>,
    /// Its score on the anonymous channel (gossipsub's, with stem penalties), when it is on
    /// it; below −400 it is graylisted.
    #[serde(default)]
    pub anonymous_score: Option<f64>,
}

impl PeersAnswer {
    /// The connected peer with this id.
    pub fn peer(&self, peer_id: &str) -> Option<&PeerAnswer> {
        self.peers.iter().find(|p| p.peer_id == peer_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_tells_messages_from_lag_notes() {
        let frame = DeliveryFrame {
            topic: "t".into(),
            operator: "0xab".into(),
            node: "12D3".into(),
            timestamp_ms: 7,
            message_id: "m".into(),
            payload_base64: "aGk=".into(),
            caught_up: false,
            replayed: false,
        };
        let text = serde_json::to_string(&frame).unwrap();
        let read: StreamFrame<DeliveryFrame> = serde_json::from_str(&text).unwrap();
        assert_eq!(read, StreamFrame::Item(frame.clone()));
        assert_eq!(frame.payload().unwrap(), b"hi");
        let lag: StreamFrame<DeliveryFrame> = serde_json::from_str(r#"{"lagged":3}"#).unwrap();
        assert_eq!(lag, StreamFrame::Lagged(Lagged { lagged: 3 }));
    }

    #[test]
    fn publish_answers_carry_their_status() {
        let queued = serde_json::to_string(&PublishAnswer::Queued { position: 2 }).unwrap();
        assert_eq!(queued, r#"{"status":"queued","position":2}"#);
    }
}
