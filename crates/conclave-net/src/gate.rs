//! `MembershipGate`: the network behaviour that keeps strangers out.
//!
//! A remote's PeerId is authenticated only once the Noise handshake completes, so the decisive
//! checks are in the *established* connection callbacks; a dial that names a PeerId is also
//! refused before any packet is sent. When the view changes (or a delegation expires) the gate
//! closes every connection of each peer that is no longer authorized.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use conclave_core::{Clock, MembershipView, PeerId, Unauthorized};
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::Multiaddr;

/// The cause carried by a `ConnectionDenied` from the gate; the service downcasts it to count
/// refusals by reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("membership gate refused {peer}: {reason}")]
pub struct Denied {
    pub peer: PeerId,
    pub reason: Unauthorized,
}

/// Admits only peers the current [`MembershipView`] authorizes.
pub struct MembershipGate {
    view: Arc<MembershipView>,
    clock: Arc<dyn Clock>,
    /// Peers with at least one open connection, so eviction knows whom to close.
    connected: HashSet<PeerId>,
    to_close: VecDeque<PeerId>,
    waker: Option<Waker>,
}

impl MembershipGate {
    pub fn new(view: Arc<MembershipView>, clock: Arc<dyn Clock>) -> Self {
        MembershipGate {
            view,
            clock,
            connected: HashSet::new(),
            to_close: VecDeque::new(),
            waker: None,
        }
    }

    /// The view decisions are currently made against.
    pub fn view(&self) -> &Arc<MembershipView> {
        &self.view
    }

    fn check(&self, peer: PeerId) -> Result<(), ConnectionDenied> {
        self.view
            .authorization(&peer, self.clock.moment())
            .map(|_| ())
            .map_err(|reason| ConnectionDenied::new(Denied { peer, reason }))
    }

    /// Adopts a new view and schedules the closing of every connected peer it no longer
    /// authorizes (also call it periodically with the same view: delegations expire).
    /// Returns the evicted peers with the reason.
    pub fn apply_view(&mut self, view: Arc<MembershipView>) -> Vec<(PeerId, Unauthorized)> {
        self.view = view;
        let at = self.clock.moment();
        let evicted: Vec<_> = self
            .connected
            .iter()
            .filter_map(|p| self.view.authorization(p, at).err().map(|r| (*p, r)))
            .collect();
        for (peer, _) in &evicted {
            if !self.to_close.contains(peer) {
                self.to_close.push_back(*peer);
            }
        }
        if !evicted.is_empty() {
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
        evicted
    }
}

impl NetworkBehaviour for MembershipGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = maybe_peer {
            self.check(peer)?;
        }
        Ok(vec![])
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished { peer_id, .. }) => {
                self.connected.insert(peer_id);
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                remaining_established: 0,
                ..
            }) => {
                self.connected.remove(&peer_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(peer_id) = self.to_close.pop_front() {
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id,
                connection: CloseConnection::All,
            });
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
