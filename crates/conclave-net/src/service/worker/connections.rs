//! The worker's handling of connection lifecycle events: connections opened and closed (the
//! peer table and the redial schedule follow them), refusals by the gate or the limits, failed
//! dials, and the listeners' addresses.

use conclave_core::PeerId;
use libp2p::swarm::{DialError, ListenError, SwarmEvent};

use super::Worker;
use crate::behaviour::BehaviourEvent;
use crate::metrics::DeniedLabels;
use crate::service::denial;
use crate::service::peer_table::connection_address;
use crate::service::types::{Direction, NetworkEvent};

impl Worker {
    /// Everything the swarm reports that is not a behaviour's event.
    pub(super) fn on_connection_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                self.connectivity.connected(peer_id);
                let at = self.clock.moment();
                let operator = self
                    .view()
                    .authorization(&peer_id, at)
                    .ok()
                    .map(|a| a.operator);
                let address = connection_address(&endpoint);
                let first = self
                    .table
                    .connected(peer_id, operator, connection_id, address);
                if let (true, Some(operator)) = (first, operator) {
                    tracing::info!(peer = %peer_id, %operator, "member connected");
                    let peer = peer_id;
                    self.emit(NetworkEvent::PeerConnected { peer, operator });
                    // What either side missed while apart.
                    let topics = self.signed_topics();
                    let now_ms = self.clock.now_ms();
                    let proto = &mut self.swarm.behaviour_mut().catch_up;
                    self.catch_up.member_connected(proto, peer, topics, now_ms);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                endpoint,
                connection_id,
                ..
            } => {
                let address = connection_address(&endpoint);
                if self
                    .table
                    .disconnected(peer_id, connection_id, num_established, &address)
                {
                    self.connectivity.disconnected(peer_id);
                    self.churn.forget(&peer_id);
                    self.catch_up.member_disconnected(&peer_id);
                    tracing::info!(peer = %peer_id, "peer disconnected");
                    self.emit(NetworkEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::IncomingConnectionError {
                error: ListenError::Denied { cause },
                peer_id,
                ..
            } => {
                let (peer, reason) = denial(&cause, peer_id);
                // Debug, not info: a flood of strangers must not flood the log (it is counted).
                tracing::debug!(?peer, reason, "inbound connection refused");
                self.count_denied(peer, Direction::Inbound, reason);
            }
            SwarmEvent::OutgoingConnectionError { error, peer_id, .. } => {
                if let DialError::Denied { cause } = &error {
                    let (peer, reason) = denial(cause, peer_id);
                    tracing::info!(?peer, reason, "outbound connection refused");
                    self.count_denied(peer, Direction::Outbound, reason);
                }
                if let Some(peer) = peer_id {
                    tracing::debug!(%peer, error = %error, "dial failed");
                    self.connectivity.dial_failed(peer);
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                // A relay tells the members it serves where to be reached: its own listen
                // addresses (not circuits through other relays).
                let circuit = address
                    .iter()
                    .any(|p| p == libp2p::multiaddr::Protocol::P2pCircuit);
                if self.swarm.behaviour().relay.is_enabled() && !circuit {
                    self.swarm.add_external_address(address.clone());
                }
                self.table.listening_on(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => self.table.address_expired(&address),
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                ..
            } => self.table.listener_closed(listener_id, &addresses),
            _ => {}
        }
    }

    fn count_denied(&mut self, peer: Option<PeerId>, direction: Direction, reason: &'static str) {
        let labels = DeniedLabels {
            direction: direction.label(),
            reason,
        };
        self.metrics.connections_denied.get_or_create(&labels).inc();
        self.emit(NetworkEvent::ConnectionDenied {
            peer,
            direction,
            reason,
        });
    }
}
