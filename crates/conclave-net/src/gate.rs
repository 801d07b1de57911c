//! `MembershipGate`: the network behaviour that keeps strangers out.
//!
//! A remote's PeerId is authenticated only once the Noise handshake completes, so the decisive
//! checks are in the *established* connection callbacks; a dial that names a PeerId is also
//! refused before any packet is sent. When the view changes (or a delegation expires) the gate
//! closes every connection of each peer that is no longer authorized. A member whose peer score
//! fell below the graylist is disconnected and kept out for a cool-down ([`MembershipGate::cool_down`]):
//! gossipsub alone would only stop reading it, and keep sending it everything.

use std::collections::{HashMap, HashSet, VecDeque};
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
    pub reason: Refusal,
}

/// Why the gate refuses a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The registry does not authorize it now.
    #[error(transparent)]
    Unauthorized(#[from] Unauthorized),
    /// A member whose peer score fell below the graylist, kept out for a cool-down.
    #[error(
        "graylisted member, kept out until {until_ms} ms (its peer score fell below the graylist)"
    )]
    Graylisted { until_ms: u64 },
}

impl Refusal {
    /// A short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Unauthorized(u) => u.label(),
            Refusal::Graylisted { .. } => "graylisted",
        }
    }
}

/// Admits only peers the current [`MembershipView`] authorizes.
pub struct MembershipGate {
    view: Arc<MembershipView>,
    clock: Arc<dyn Clock>,
    /// Peers with at least one open connection, so eviction knows whom to close.
    connected: HashSet<PeerId>,
    /// Graylisted members and the wall-clock ms until which they are kept out (one entry per
    /// member at most; expired entries go at the next cool-down).
    cooling: HashMap<PeerId, u64>,
    to_close: VecDeque<PeerId>,
    waker: Option<Waker>,
}

impl MembershipGate {
    pub fn new(view: Arc<MembershipView>, clock: Arc<dyn Clock>) -> Self {
        MembershipGate {
            view,
            clock,
            connected: HashSet::new(),
            cooling: HashMap::new(),
            to_close: VecDeque::new(),
            waker: None,
        }
    }

    /// The view decisions are currently made against.
    pub fn view(&self) -> &Arc<MembershipView> {
        &self.view
    }

    fn check(&self, peer: PeerId) -> Result<(), ConnectionDenied> {
        let deny = |reason| ConnectionDenied::new(Denied { peer, reason });
        self.view
            .authorization(&peer, self.clock.moment())
            .map_err(|u| deny(Refusal::Unauthorized(u)))?;
        match self.cooling.get(&peer) {
            Some(&until_ms) if self.clock.now_ms() < until_ms => {
                Err(deny(Refusal::Graylisted { until_ms }))
            }
            _ => Ok(()),
        }
    }

    /// The peers connected now.
    pub fn connected(&self) -> impl Iterator<Item = &PeerId> {
        self.connected.iter()
    }

    /// Disconnects a graylisted member and keeps it out for `cool_down`; false if it is
    /// already kept out.
    pub fn cool_down(&mut self, peer: PeerId, cool_down: std::time::Duration) -> bool {
        let now = self.clock.now_ms();
        self.cooling.retain(|_, until| *until > now);
        if self.cooling.contains_key(&peer) {
            return false;
        }
        self.cooling
            .insert(peer, now.saturating_add(cool_down.as_millis() as u64));
        if !self.to_close.contains(&peer) {
            self.to_close.push_back(peer);
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        true
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
