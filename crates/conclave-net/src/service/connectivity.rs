//! Keeping every member connected: where each can be reached (the address book), when to dial
//! it again (the redial schedule and the PeerId tie-break), which transports are taken out, and
//! the sanity check on relay events.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_core::{MembershipView, Moment, Multiaddr, PeerId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::DialError;
use libp2p::Swarm;

use super::command::AddressFilter;
use crate::behaviour::Behaviour;
use crate::metrics::{NetMetrics, ReasonLabels};
use crate::redial::{AddressBook, RedialSchedule};

/// How long a node whose address members know waits for a lower-PeerId member to dial it before
/// dialling itself. Without the tie-break every pair of members would dial each other at once
/// and pay two Noise handshakes for the connection it keeps — at start-up, all of them.
const INBOUND_GRACE: Duration = Duration::from_secs(1);
/// Extra grace per member: at start-up every member handshakes with all the others at once,
/// and on a small machine the lower PeerId's dials take longer the more there are; dialing
/// back meanwhile doubles the handshakes and slows everyone further.
const INBOUND_GRACE_PER_MEMBER: Duration = Duration::from_millis(40);

fn inbound_grace(members: usize) -> Duration {
    INBOUND_GRACE + INBOUND_GRACE_PER_MEMBER * members as u32
}

pub(crate) struct Connectivity {
    local: PeerId,
    book: AddressBook,
    redial: RedialSchedule,
    /// Every member was connected at the last redial pass; cleared when one disconnects or the
    /// view changes. With nothing else to do it lets the worker tick slowly.
    all_connected: bool,
    /// Transports taken out (`NetworkService::close_listeners`): not dialed until listened
    /// on again.
    closed_transports: Vec<AddressFilter>,
}

impl Connectivity {
    pub fn new(local: PeerId, book: AddressBook, redial: RedialSchedule) -> Self {
        Connectivity {
            local,
            book,
            redial,
            all_connected: false,
            closed_transports: Vec::new(),
        }
    }

    pub fn all_connected(&self) -> bool {
        self.all_connected
    }

    /// Before a new view applies: members whose address hints changed are dialled at once,
    /// whatever their backoff (an operator publishing its node's new address should not wait
    /// out failures at the old). So is every member when the view newly admits this node: they
    /// refused it until now, and a signer entering the set should not wait out that backoff.
    pub fn view_changing(&mut self, old: &Arc<MembershipView>, new: &Arc<MembershipView>) {
        if Arc::ptr_eq(old, new) {
            return;
        }
        self.all_connected = false;
        let admitted = old.node(&self.local).is_none() && new.node(&self.local).is_some();
        for (peer, auth) in new.nodes() {
            if admitted || old.node(peer).map(|o| &o.addresses) != Some(&auth.addresses) {
                self.redial.reset(peer);
            }
        }
    }

    /// After a view applied: forget whoever it no longer authorizes at `at`.
    pub fn view_applied(&mut self, view: &MembershipView, at: Moment) {
        self.book.retain(|p| view.authorization(p, at).is_ok());
        self.redial.retain(|p| view.authorization(p, at).is_ok());
    }

    /// Addresses a member told us it listens on (identify); the ones new to the book.
    pub fn learned(&mut self, peer: PeerId, addresses: Vec<Multiaddr>) -> Vec<Multiaddr> {
        addresses
            .into_iter()
            .filter(|a| self.book.add(peer, a.clone()))
            .collect()
    }

    pub fn connected(&mut self, peer: PeerId) {
        self.redial.on_connected(peer, Instant::now());
    }

    pub fn disconnected(&mut self, peer: PeerId) {
        self.all_connected = false;
        self.redial
            .on_disconnected(peer, Instant::now(), &mut rand::thread_rng());
    }

    pub fn dial_failed(&mut self, peer: PeerId) {
        self.redial
            .on_failure(peer, Instant::now(), &mut rand::thread_rng());
    }

    /// Takes a transport out of dialing.
    pub fn close_transport(&mut self, matches: AddressFilter) {
        self.closed_transports.push(matches);
    }

    /// Listening on `address` again brings its transport back.
    pub fn reopen_transport(&mut self, address: &Multiaddr) {
        self.closed_transports.retain(|closed| !closed(address));
    }

    /// Dials the members that are due: every authorized member not connected, unless the
    /// tie-break says to wait for it or its backoff has not run out. A node its own view does
    /// not authorize dials no one: members reading the same registry would refuse it after a
    /// handshake each, and the view that admits it dials them all at once
    /// ([`Self::view_changing`]).
    pub fn redial_members(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        view: &MembershipView,
        at: Moment,
    ) {
        let local = self.local;
        if view.authorization(&local, at).is_err() {
            return;
        }
        let disconnected: BTreeSet<PeerId> = view
            .members_at(at)
            .map(|(p, _)| *p)
            .filter(|p| *p != local && !swarm.is_connected(p))
            .collect();
        self.all_connected = disconnected.is_empty();
        let now = Instant::now();
        // The lower PeerId of a pair dials; the higher one waits a little for it — but only if
        // members can dial us at all (our address hints are in the registry).
        if view.node(&local).is_some_and(|a| !a.addresses.is_empty()) {
            for peer in disconnected.iter().filter(|p| **p < local) {
                self.redial
                    .defer_first(*peer, now, inbound_grace(view.nodes().count()));
            }
        }
        for peer in self.redial.due(&disconnected, now) {
            let hints = view
                .authorization(&peer, at)
                .map(|a| a.addresses.clone())
                .unwrap_or_default();
            let addrs: Vec<Multiaddr> = self
                .book
                .dial_addresses(&peer, &hints)
                .into_iter()
                .filter(|a| !self.closed_transports.iter().any(|closed| closed(a)))
                .collect();
            if addrs.is_empty() {
                // Nowhere to dial yet: count it as a failure so the schedule backs off.
                self.dial_failed(peer);
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "dial not started");
                self.dial_failed(peer);
            }
        }
    }
}

/// Counts what the relay server did. Every peer here passed the gate; a request that somehow
/// came from a non-member would be a gate bug, so it is logged loudly and the peer dropped.
pub(crate) fn on_relay(
    swarm: &mut Swarm<Behaviour>,
    view: &MembershipView,
    at: Moment,
    metrics: &NetMetrics,
    event: libp2p::relay::Event,
) {
    use libp2p::relay::Event as E;
    let (what, peer) = match &event {
        E::ReservationReqAccepted { src_peer_id, .. } => ("reservation_accepted", *src_peer_id),
        E::ReservationReqDenied { src_peer_id, .. } => ("reservation_denied", *src_peer_id),
        E::CircuitReqAccepted { src_peer_id, .. } => ("circuit_accepted", *src_peer_id),
        E::CircuitReqDenied { src_peer_id, .. } => ("circuit_denied", *src_peer_id),
        E::CircuitClosed { src_peer_id, .. } => ("circuit_closed", *src_peer_id),
        _ => {
            tracing::debug!(?event, "relay");
            return;
        }
    };
    if view.authorization(&peer, at).is_err() {
        tracing::error!(%peer, what, "relay event for a non-member; closing its connections");
        let _ = swarm.disconnect_peer_id(peer);
    }
    tracing::debug!(%peer, what, "relay");
    metrics
        .relay
        .get_or_create(&ReasonLabels { reason: what })
        .inc();
}

/// What the gate (or the dialer) said when a dial was refused.
pub(crate) fn dial_refusal(e: &DialError) -> String {
    match e {
        DialError::Denied { cause } => match cause.downcast_ref::<crate::gate::Denied>() {
            Some(d) => d.to_string(),
            None => format!("refused: {cause}"),
        },
        _ => e.to_string(),
    }
}
