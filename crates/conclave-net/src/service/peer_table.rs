//! The worker's record of connections and listeners, and the [`PeerSnapshot`] it publishes
//! after every change (one writer: the worker; readers hold `watch` receivers).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use conclave_core::{Multiaddr, OperatorId, PeerId, TopicName};
use libp2p::core::transport::ListenerId;
use libp2p::swarm::ConnectionId;
use tokio::sync::watch;

use super::types::{PeerInfo, PeerSnapshot};
use crate::metrics::NetMetrics;

pub(crate) struct PeerTable {
    snapshot: PeerSnapshot,
    sender: watch::Sender<Arc<PeerSnapshot>>,
    /// Open connections and their remote address, so one transport's can be closed.
    connections: HashMap<ConnectionId, Multiaddr>,
    /// Our listeners and the address each was asked to listen on.
    listeners: HashMap<ListenerId, Multiaddr>,
    metrics: NetMetrics,
}

impl PeerTable {
    /// An empty table for `local`, and the receiver the handles read it from.
    pub fn new(
        local: PeerId,
        listeners: HashMap<ListenerId, Multiaddr>,
        metrics: NetMetrics,
    ) -> (Self, watch::Receiver<Arc<PeerSnapshot>>) {
        let snapshot = PeerSnapshot {
            local,
            listen: Vec::new(),
            peers: BTreeMap::new(),
        };
        let (sender, receiver) = watch::channel(Arc::new(snapshot.clone()));
        let table = PeerTable {
            snapshot,
            sender,
            connections: HashMap::new(),
            listeners,
            metrics,
        };
        (table, receiver)
    }

    /// Records a new connection; true when it is the peer's first.
    pub fn connected(
        &mut self,
        peer: PeerId,
        operator: Option<OperatorId>,
        connection: ConnectionId,
        address: Multiaddr,
    ) -> bool {
        self.connections.insert(connection, address.clone());
        let info = self.snapshot.peers.entry(peer).or_insert(PeerInfo {
            operator,
            addresses: Vec::new(),
            connections: 0,
            topics: BTreeSet::new(),
        });
        info.connections += 1;
        if !info.addresses.contains(&address) {
            info.addresses.push(address);
        }
        let first = info.connections == 1;
        self.publish();
        first
    }

    /// Records a closed connection; true when it was the peer's last.
    pub fn disconnected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        remaining: u32,
        address: &Multiaddr,
    ) -> bool {
        self.connections.remove(&connection);
        let gone = remaining == 0;
        if gone {
            self.snapshot.peers.remove(&peer);
        } else if let Some(info) = self.snapshot.peers.get_mut(&peer) {
            info.connections = remaining as usize;
            info.addresses.retain(|a| a != address);
        }
        self.publish();
        gone
    }

    /// A peer joined or left a topic.
    pub fn topic_changed(&mut self, peer: &PeerId, topic: TopicName, subscribed: bool) {
        if let Some(info) = self.snapshot.peers.get_mut(peer) {
            if subscribed {
                info.topics.insert(topic);
            } else {
                info.topics.remove(&topic);
            }
            self.publish();
        }
    }

    pub fn listener_added(&mut self, id: ListenerId, address: Multiaddr) {
        self.listeners.insert(id, address);
    }

    pub fn listening_on(&mut self, address: Multiaddr) {
        self.snapshot.listen.push(address);
        self.publish();
    }

    pub fn address_expired(&mut self, address: &Multiaddr) {
        self.snapshot.listen.retain(|a| a != address);
        self.publish();
    }

    pub fn listener_closed(&mut self, id: ListenerId, addresses: &[Multiaddr]) {
        self.listeners.remove(&id);
        self.snapshot.listen.retain(|a| !addresses.contains(a));
        self.publish();
    }

    /// Forgets and returns the listeners whose requested address `matches` selects.
    pub fn take_listeners(&mut self, matches: impl Fn(&Multiaddr) -> bool) -> Vec<ListenerId> {
        let ids: Vec<ListenerId> = self
            .listeners
            .iter()
            .filter(|(_, a)| matches(a))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.listeners.remove(id);
        }
        ids
    }

    /// The open connections whose address `matches` selects.
    pub fn connections_matching(&self, matches: impl Fn(&Multiaddr) -> bool) -> Vec<ConnectionId> {
        self.connections
            .iter()
            .filter(|(_, a)| matches(a))
            .map(|(id, _)| *id)
            .collect()
    }

    fn publish(&mut self) {
        self.metrics.peers.set(self.snapshot.peers.len() as i64);
        self.sender.send_replace(Arc::new(self.snapshot.clone()));
    }
}

/// The address a connection is known by: the remote's, except for a circuit accepted through a
/// relay, whose remote address is a bare `/p2p/<peer>` — there the circuit it came in on says
/// which path (driver) carries it.
pub(crate) fn connection_address(endpoint: &libp2p::core::ConnectedPoint) -> Multiaddr {
    match endpoint {
        libp2p::core::ConnectedPoint::Listener { local_addr, .. } if endpoint.is_relayed() => {
            local_addr.clone()
        }
        _ => endpoint.get_remote_address().clone(),
    }
}
