//! `InboundAdmission`: how many inbound connections may be in their handshake at once, decided
//! before any cryptography. A stranger's socket costs a slot until the handshake ends or times
//! out (10 s), and its PeerId is known only after it; a global cap alone let 64 idle sockets keep
//! every member from connecting in. So:
//!
//! - connections from an IP a registered member lists in its address hints are always admitted
//!   (the registry says a member runs there);
//! - any other IP holds at most `per_ip` handshakes at once;
//! - all other IPs together hold at most `max_strangers`.
//!
//! A flood from one address is held to `per_ip` sockets; one from many addresses fills
//! `max_strangers` but never a member's slots. The gate still judges every PeerId after the
//! handshake. Refusals are counted as `connections_denied{direction="inbound",reason}` with
//! `pending_per_ip` or `connection_limit`.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use conclave_core::{MembershipView, PeerId};
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::Multiaddr;

/// Why an inbound connection was not admitted to its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAdmitted {
    #[error("{0} already has {1} handshakes in progress")]
    PerIp(IpAddr, u32),
    #[error("{0} handshakes from unlisted addresses already in progress")]
    Full(u32),
}

impl NotAdmitted {
    pub fn label(&self) -> &'static str {
        match self {
            NotAdmitted::PerIp(..) => "pending_per_ip",
            NotAdmitted::Full(_) => "connection_limit",
        }
    }
}

pub(crate) struct InboundAdmission {
    per_ip: u32,
    max_strangers: u32,
    member_ips: HashSet<IpAddr>,
    /// Handshakes in progress: their IP, and whether it is a member's.
    pending: HashMap<ConnectionId, (IpAddr, bool)>,
    by_ip: HashMap<IpAddr, u32>,
    strangers: u32,
}

/// The IP a multiaddr starts with, if any.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

impl InboundAdmission {
    pub fn new(view: &MembershipView, per_ip: u32, max_strangers: u32) -> Self {
        let mut a = InboundAdmission {
            per_ip,
            max_strangers,
            member_ips: HashSet::new(),
            pending: HashMap::new(),
            by_ip: HashMap::new(),
            strangers: 0,
        };
        a.apply_view(view);
        a
    }

    /// The members' listed IPs in `view` become the always-admitted ones.
    pub fn apply_view(&mut self, view: &MembershipView) {
        self.member_ips = view
            .nodes()
            .flat_map(|(_, auth)| auth.addresses.iter().filter_map(ip_of))
            .collect();
    }

    fn admit(&mut self, id: ConnectionId, remote: &Multiaddr) -> Result<(), NotAdmitted> {
        // Relayed and in-memory connections have no IP of their own: the relay (a member) or
        // the process is what is connected.
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        if self.member_ips.contains(&ip) {
            self.pending.insert(id, (ip, true));
            return Ok(());
        }
        let held = self.by_ip.get(&ip).copied().unwrap_or(0);
        if held >= self.per_ip {
            return Err(NotAdmitted::PerIp(ip, held));
        }
        if self.strangers >= self.max_strangers {
            return Err(NotAdmitted::Full(self.strangers));
        }
        *self.by_ip.entry(ip).or_default() += 1;
        self.strangers += 1;
        self.pending.insert(id, (ip, false));
        Ok(())
    }

    /// The handshake of `id` ended (established, failed or refused).
    fn release(&mut self, id: ConnectionId) {
        let Some((ip, member)) = self.pending.remove(&id) else {
            return;
        };
        if member {
            return;
        }
        self.strangers = self.strangers.saturating_sub(1);
        if let Some(n) = self.by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_ip.remove(&ip);
            }
        }
    }
}

impl NetworkBehaviour for InboundAdmission {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.admit(connection_id, remote_addr)
            .map_err(ConnectionDenied::new)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.release(connection_id);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. })
            | FromSwarm::ConnectionEstablished(ConnectionEstablished { connection_id, .. }) => {
                self.release(connection_id)
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

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::{NodeAuthorization, OperatorId, ViewBuilder, ViewSource};

    fn view_listing(addr: &str) -> MembershipView {
        let mut b = ViewBuilder::new(ViewSource::Empty);
        let op = OperatorId([1; 20]);
        b.operator(op).unwrap_or_else(|e| panic!("{e}"));
        b.node(
            PeerId::random(),
            NodeAuthorization {
                operator: op,
                scopes: Default::default(),
                valid_from_block: None,
                expiry: None,
                addresses: vec![addr.parse().unwrap_or_else(|e| panic!("{e}"))],
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        b.build()
    }

    fn from(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/4000")
            .parse()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn one_address_holds_per_ip_handshakes_and_a_members_address_is_always_admitted() {
        let mut a = InboundAdmission::new(&view_listing("/ip4/10.0.0.1/tcp/9000"), 2, 3);
        let ids: Vec<ConnectionId> = (0..9).map(ConnectionId::new_unchecked).collect();
        assert!(a.admit(ids[0], &from("192.0.2.9")).is_ok());
        assert!(a.admit(ids[1], &from("192.0.2.9")).is_ok());
        assert_eq!(
            a.admit(ids[2], &from("192.0.2.9")),
            Err(NotAdmitted::PerIp(
                "192.0.2.9".parse().unwrap_or_else(|_| unreachable!()),
                2
            ))
        );
        assert!(a.admit(ids[3], &from("192.0.2.10")).is_ok());
        assert_eq!(
            a.admit(ids[4], &from("192.0.2.11")),
            Err(NotAdmitted::Full(3))
        );
        for id in &ids[5..8] {
            assert!(a.admit(*id, &from("10.0.0.1")).is_ok(), "the member's host");
        }
        a.release(ids[0]);
        assert!(a.admit(ids[2], &from("192.0.2.9")).is_ok(), "a slot freed");
        let memory: Multiaddr = "/memory/5".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(a.admit(ids[8], &memory).is_ok(), "no IP: not ours to judge");
    }
}
