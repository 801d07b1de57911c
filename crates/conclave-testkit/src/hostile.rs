//! A registered key running its own code: plain gossipsub on Conclave's signed or anonymous
//! protocol, none of Conclave's checks on the sending side, so a test can make a member send what
//! an honest node never would — replays, messages outside its scopes, garbage, forged proofs,
//! subscription flapping — and see what the node under test makes of it.

use std::hash::{Hash, Hasher};
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

/// Which of the node's two gossip channels the client speaks, as the node names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Signed,
    Anonymous,
}

impl Channel {
    fn protocol(self) -> &'static str {
        match self {
            Channel::Signed => "/conclave/signed/2",
            Channel::Anonymous => "/conclave/anon",
        }
    }

    /// The gossipsub topic of Conclave topic `name` on this channel.
    pub fn topic(self, name: &str) -> IdentTopic {
        match self {
            Channel::Signed => signed_topic(name),
            Channel::Anonymous => IdentTopic::new(format!("conclave/anon/1/{name}")),
        }
    }
}

/// A hostile member's gossipsub client over TCP.
pub struct HostileMember {
    pub key: Keypair,
    channel: Channel,
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

/// The client's own message ids on the anonymous channel (no source to tell messages apart by);
/// the node computes its own.
fn data_id(m: &gossipsub::Message) -> gossipsub::MessageId {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.data.hash(&mut h);
    gossipsub::MessageId::from(h.finish().to_be_bytes().to_vec())
}

impl HostileMember {
    /// A client of the signed channel under `key` (register it in the view to make it a member).
    pub fn new(key: Keypair) -> Self {
        Self::on(Channel::Signed, key)
    }

    /// A client of `channel` under `key`.
    pub fn on(channel: Channel, key: Keypair) -> Self {
        let swarm = libp2p::SwarmBuilder::with_existing_identity(key.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("a TCP transport")
            .with_behaviour(|key| {
                let mut config = gossipsub::ConfigBuilder::default();
                config.protocol_id_prefix(channel.protocol());
                let authenticity = match channel {
                    Channel::Signed => {
                        config.validation_mode(gossipsub::ValidationMode::Permissive);
                        MessageAuthenticity::Author(key.public().to_peer_id())
                    }
                    Channel::Anonymous => {
                        config
                            .validation_mode(gossipsub::ValidationMode::Anonymous)
                            .message_id_fn(data_id);
                        MessageAuthenticity::Anonymous
                    }
                };
                let config = config.build().expect("a gossipsub config");
                Gossip::new(authenticity, config).expect("a gossipsub behaviour")
            })
            .expect("a behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        HostileMember {
            key,
            channel,
            swarm,
        }
    }

    pub fn peer_id(&self) -> PeerId {
        self.key.public().to_peer_id()
    }

    /// Subscribes to `topics` and dials `to` (ending in `/p2p/<peer id>`); returns once the node
    /// is seen subscribed to the first of them.
    pub async fn connect(&mut self, to: Multiaddr, topics: &[&str]) {
        for t in topics {
            let _ = self.swarm.behaviour_mut().subscribe(&self.channel.topic(t));
        }
        self.swarm.dial(to).expect("a dialable address");
        let first = self
            .channel
            .topic(topics.first().copied().unwrap_or("signers"))
            .hash();
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
            .publish(self.channel.topic(topic), data)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The data of the next message the node forwards to this client, within `within`.
    pub async fn next_message(&mut self, within: Duration) -> Option<Vec<u8>> {
        tokio::time::timeout(within, async {
            loop {
                if let SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) =
                    self.swarm.select_next_some().await
                {
                    return message.data;
                }
            }
        })
        .await
        .ok()
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
