//! The swarm builder shared by production and tests.

use std::time::Duration;

use libp2p::core::transport::timeout::TransportTimeout;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::{noise, tcp, websocket, yamux, Swarm, SwarmBuilder, Transport};

use crate::behaviour::Behaviour;
use crate::{NetError, TransportKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the swarm: the same identity, behaviour and swarm configuration whatever the
/// transport, so a memory-transport test runs the production gate, Noise handshake and gossip.
///
/// The network transports are drivers of one swarm
/// (docs/ARCHITECTURE.md, "Alternative paths: watchdog, drivers, header fallback"): TCP, QUIC,
/// WebSocket over TCP (for paths where only HTTP-looking traffic passes) and circuit relay v2
/// through a member relay. Each listens on the addresses configured for it; every connection,
/// whatever carried it, is authenticated by Noise (TLS 1.3 inside QUIC) and judged by the same
/// gate.
/// How long a connection may take from its first packet to a finished handshake (Noise and
/// Yamux), either way. A stranger stalling a handshake holds its slot no longer than this, and
/// a dial into a partition gives up this soon so the next one can find the healed path.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a dial of ours may take to a finished handshake (TCP; QUIC's handshake, both ways). Short, so that a dial into a
/// path that drops packets (its SYNs retransmitted 1 s, then 2 s apart) is given up and the next
/// one tried soon: after a partition heals, a member is reached within about 3 s (with the 1 s
/// redial cap). A real path takes about three round trips, well within it; a slower one fails
/// and is tried again.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long sent data may stay unacknowledged before the kernel drops a TCP connection. A
/// partition that silently drops packets leaves connections open for many minutes otherwise
/// (every message sent into them lost until retransmission resumes, and no redial); with
/// pings every [`crate::behaviour::PING_INTERVAL`] there is always data in flight, so a dead
/// path is found within this, the member redialed and catch-up fills the gap.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// Sets [`TCP_USER_TIMEOUT`] on a new connection; a socket that refuses keeps the default
/// (the connection still works, it is only found dead later).
fn with_user_timeout(stream: tcp::tokio::TcpStream) -> tcp::tokio::TcpStream {
    if let Err(e) = socket2::SockRef::from(&stream.0).set_tcp_user_timeout(Some(TCP_USER_TIMEOUT)) {
        tracing::debug!(error = %e, "TCP_USER_TIMEOUT not set");
    }
    stream
}

pub(crate) fn build_swarm(
    keypair: Keypair,
    kind: TransportKind,
    idle_connection_timeout: Duration,
    mut behaviour: Behaviour,
    metrics: &mut prometheus_client::registry::Registry,
) -> Result<Swarm<Behaviour>, NetError> {
    let swarm_config =
        |c: libp2p::swarm::Config| c.with_idle_connection_timeout(idle_connection_timeout);
    let builder = SwarmBuilder::with_existing_identity(keypair).with_tokio();
    let transport_err = |e: &dyn std::fmt::Display| NetError::Transport(e.to_string());
    let swarm = match kind {
        TransportKind::Network => builder
            .with_quic_config(|mut c| {
                // As for TCP: give a dial into a silent path up soon and try again.
                c.handshake_timeout = DIAL_TIMEOUT;
                c
            })
            .with_other_transport(|key| {
                let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .map(|stream, _| with_user_timeout(stream));
                let upgraded = tcp
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default());
                Ok::<_, BoxError>(TransportTimeout::with_outgoing_timeout(
                    upgraded,
                    DIAL_TIMEOUT,
                ))
            })
            .map_err(|e| transport_err(&e))?
            .with_other_transport(|key| {
                let ws = websocket::Config::new(tcp::tokio::Transport::new(
                    tcp::Config::default().nodelay(true),
                ));
                Ok::<_, BoxError>(
                    ws.upgrade(Version::V1Lazy)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default()),
                )
            })
            .map_err(|e| transport_err(&e))?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| transport_err(&e))?
            // Bytes per transport stack (`/ip4/tcp`, `/ip4/udp/quic-v1`, …): each driver's traffic.
            .with_bandwidth_metrics(metrics)
            .with_behaviour(|_, relay_client| {
                behaviour.relay_client = Some(relay_client).into();
                behaviour
            })
            .expect("an infallible behaviour constructor")
            .with_swarm_config(swarm_config)
            .with_connection_timeout(HANDSHAKE_TIMEOUT)
            .build(),
        TransportKind::Memory => builder
            .with_other_transport(|key| {
                Ok::<_, BoxError>(
                    MemoryTransport::default()
                        .upgrade(Version::V1)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default()),
                )
            })
            .map_err(|e| transport_err(&e))?
            .with_bandwidth_metrics(metrics)
            .with_behaviour(|_| behaviour)
            .expect("an infallible behaviour constructor")
            .with_swarm_config(swarm_config)
            .build(),
    };
    Ok(swarm)
}
