//! The swarm builder shared by production and tests.

use std::time::Duration;

use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::{noise, tcp, yamux, Swarm, SwarmBuilder, Transport};

use crate::behaviour::Behaviour;
use crate::{NetError, TransportKind};

/// Builds the swarm: the same identity, behaviour and swarm configuration whatever the
/// transport, so a memory-transport test runs the production gate, Noise handshake and gossip.
pub(crate) fn build_swarm(
    keypair: Keypair,
    kind: TransportKind,
    idle_connection_timeout: Duration,
    behaviour: Behaviour,
) -> Result<Swarm<Behaviour>, NetError> {
    let swarm_config =
        |c: libp2p::swarm::Config| c.with_idle_connection_timeout(idle_connection_timeout);
    let builder = SwarmBuilder::with_existing_identity(keypair).with_tokio();
    let swarm = match kind {
        TransportKind::Network => builder
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetError::Transport(e.to_string()))?
            .with_quic()
            .with_behaviour(|_| behaviour)
            .expect("an infallible behaviour constructor")
            .with_swarm_config(swarm_config)
            .build(),
        TransportKind::Memory => builder
            .with_other_transport(|key| {
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    MemoryTransport::default()
                        .upgrade(Version::V1)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default()),
                )
            })
            .map_err(|e| NetError::Transport(e.to_string()))?
            .with_behaviour(|_| behaviour)
            .expect("an infallible behaviour constructor")
            .with_swarm_config(swarm_config)
            .build(),
    };
    Ok(swarm)
}
