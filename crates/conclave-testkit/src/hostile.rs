//! A registered key running its own code: plain gossipsub on Conclave's signed protocol, none of
//! Conclave's checks on the sending side, so a test can make a member send what an honest node
//! never would — replays, messages outside its scopes, garbage, subscription flapping — and see
//! what the node under test makes of it.

use std::time::Duration;

use conclave_core::Envelope;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use prost::Message;

use crate::WAIT;

type Gossip = gossipsub::Behaviour<gossipsub::IdentityTransform>;

/// The signed channel's protocol prefix, as the node speaks it.
const SIGNED_PROTOCOL: &str = "/conclave/signed/2";

/// A hostile member's gossipsub client over TCP.
pub struct HostileMember {
    pub key: Keypair,
    swarm: Swarm<Gossip>,
}

/// What happened while the client ran.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The node closed the last connection (e.g. it cut the member off).
    pub disconnected: bool,
    /// Messages the node forwarded to this client.
    pub received: usize,
}

/// The gossipsub topic of Conclave topic `name` on the signed channel.
pub fn signed_topic(name: &str) -> IdentTopic {
    IdentTopic::new(format!("conclave/1/{name}"))
}

/// An envelope on `topic` signed by `key` at `timestamp_ms`, as Conclave's publisher signs it.
pub fn envelope(
    key: &Keypair,
    topic: &str,
    timestamp_ms: u64,
    nonce: u64,
    payload: &[u8],
) -> Vec<u8> {
    let mut e = Envelope {
        timestamp_ms,
        payload: payload.to_vec(),
        nonce,
        signature: Vec::new(),
    };
    e.signature = key.sign(&e.signing_bytes(topic)).unwrap_or_default();
    e.encode_to_vec()
}

impl HostileMember {
    /// A client under `key` (register it in the view to make it a member).
    pub fn new(key: Keypair) -> Self {
        let swarm = libp2p::SwarmBuilder::with_existing_identity(key.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("a TCP transport")
            .with_behaviour(|key| {
                let config = gossipsub::ConfigBuilder::default()
                    .protocol_id_prefix(SIGNED_PROTOCOL)
                    .validation_mode(gossipsub::ValidationMode::Permissive)
                    .build()
                    .expect("a gossipsub config");
                Gossip::new(
                    MessageAuthenticity::Author(key.public().to_peer_id()),
                    config,
                )
                .expect("a gossipsub behaviour")
            })
            .expect("a behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        HostileMember { key, swarm }
    }

    pub fn peer_id(&self) -> PeerId {
        self.key.public().to_peer_id()
    }

    /// Subscribes to `topics` and dials `to` (ending in `/p2p/<peer id>`); returns once the node
    /// is seen subscribed to the first of them.
    pub async fn connect(&mut self, to: Multiaddr, topics: &[&str]) {
        for t in topics {
            let _ = self.swarm.behaviour_mut().subscribe(&signed_topic(t));
        }
        self.swarm.dial(to).expect("a dialable address");
        let first = signed_topic(topics.first().copied().unwrap_or("signers")).hash();
        tokio::time::timeout(WAIT, async {
            loop {
                if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { topic, .. }) =
                    self.swarm.select_next_some().await
                {
                    if topic == first {
                        return;
                    }
                }
            }
        })
        .await
        .expect("the node subscribed");
    }

    /// Hands `data` to gossipsub on Conclave topic `topic`, unchecked. An error means gossipsub
    /// itself would not send it (no peer, a duplicate).
    pub fn publish(&mut self, topic: &str, data: Vec<u8>) -> Result<(), String> {
        self.swarm
            .behaviour_mut()
            .publish(signed_topic(topic), data)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Drives the client for `d` (or until the node disconnects it).
    pub async fn run_for(&mut self, d: Duration) -> Ran {
        let mut ran = Ran::default();
        let _ = tokio::time::timeout(d, async {
            loop {
                match self.swarm.select_next_some().await {
                    SwarmEvent::ConnectionClosed {
                        num_established: 0, ..
                    } => {
                        ran.disconnected = true;
                        return;
                    }
                    SwarmEvent::Behaviour(gossipsub::Event::Message { .. }) => ran.received += 1,
                    _ => {}
                }
            }
        })
        .await;
        ran
    }
}
