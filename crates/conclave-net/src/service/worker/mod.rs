//! The worker task: the one owner of the swarm and of every piece of connection state. It only
//! routes — commands from handles, swarm events, view changes and ticks — to the part that owns
//! the matter: the [`Publisher`], the [`Inbound`] validator, the [`PeerTable`], the
//! [`Connectivity`] keeper, the [`HeaderClient`] and the [`StemRelay`]; connection lifecycle
//! events are handled in `connections`.

mod connections;

use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_core::{Clock, MembershipView, Moment, PeerId, TopicName};
use futures::StreamExt;
use libp2p::gossipsub;
use libp2p::metrics::Recorder;
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, Swarm};
use tokio::sync::{mpsc, watch};

use super::catch_up::{CatchUp, Outcome};
use super::churn::ChurnLimit;
use super::command::Command;
use super::connectivity::{self, dial_refusal, Connectivity};
use super::header_client::HeaderClient;
use super::inbound::{report_anonymous, Inbound, Judged};
use super::peer_table::PeerTable;
use super::publisher::{Dropped, PublishContext, Publisher};
use super::stem_relay::{StemIo, StemRelay};
use super::types::{hex_id, Acceptance, Delivery, NetworkEvent, PublishError, Route};
use crate::behaviour::{
    anonymous_topic, gossip_topic, join_topic, topic_name, Behaviour, BehaviourEvent,
    FRAME_OVERHEAD, GRAYLIST_THRESHOLD,
};
use crate::catchup::log::RetainedMessage;
use crate::metrics::{NetMetrics, ReasonLabels};

/// How often the worker re-checks expiries, redials and the outbox while there is such work: a
/// member to reach or a message waiting for peers.
const TICK: Duration = Duration::from_millis(100);
/// The tick while every member is connected and nothing waits: only the time-driven
/// authorization sweep is left, and authorizations are judged per second. Each tick wakes the
/// whole swarm: at 100 ms that was most of an idle node's CPU.
const QUIET_TICK: Duration = Duration::from_secs(1);
/// How long a graylisted member is kept out after it is disconnected.
const GRAYLIST_COOL_DOWN: Duration = Duration::from_secs(600);
/// How far off the stem timer is set while nothing is held.
const IDLE: Duration = Duration::from_secs(3600);

pub(crate) struct Worker {
    pub swarm: Swarm<Behaviour>,
    pub commands: mpsc::Receiver<Command>,
    pub registry: RegistryFeed,
    pub events: mpsc::Sender<NetworkEvent>,
    pub publisher: Publisher,
    pub inbound: Inbound,
    pub table: PeerTable,
    pub connectivity: Connectivity,
    pub header_client: HeaderClient,
    pub stem: StemRelay,
    /// The retained log, reconciliations and fetches.
    pub catch_up: CatchUp,
    /// Subscription changes per peer, rate-limited.
    pub churn: ChurnLimit,
    pub clock: Arc<dyn Clock>,
    pub metrics: NetMetrics,
    pub libp2p_metrics: libp2p::metrics::Metrics,
    pub shutdown: Arc<tokio::sync::Notify>,
}

/// The registry's snapshots as the worker follows them.
pub(crate) struct RegistryFeed {
    pub views: watch::Receiver<Arc<MembershipView>>,
    /// False once the registry side has gone (the last view stays in force).
    pub open: bool,
    /// The moment of the last time-driven authorization sweep (see `Worker::on_tick`).
    pub swept_at: Option<Moment>,
}

impl Worker {
    pub async fn run(mut self) {
        let tick = tokio::time::sleep(TICK);
        tokio::pin!(tick);
        // The stem's next send or fail-safe (far off until there is one).
        let stem_due = tokio::time::sleep(IDLE);
        tokio::pin!(stem_due);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                changed = self.registry.views.changed(), if self.registry.open => match changed {
                    Ok(()) => {
                        let view = self.registry.views.borrow_and_update().clone();
                        self.apply_view(view);
                    }
                    Err(_) => self.registry.open = false,
                },
                _ = &mut tick => {
                    self.on_tick();
                    let next = tokio::time::Instant::now() + self.tick_period();
                    tick.as_mut().reset(next);
                }
                _ = &mut stem_due => {
                    self.poll_stem();
                    stem_due.as_mut().reset(tokio::time::Instant::now() + IDLE);
                }
                _ = self.shutdown.notified() => break,
            }
            // A timer left over from a frame no longer held fires once and finds nothing.
            if let Some(at) = self.stem.next_deadline() {
                let due = tokio::time::Instant::from_std(at);
                if stem_due.deadline() != due {
                    stem_due.as_mut().reset(due);
                }
            }
            // Work appeared while ticking slowly (a member dropped, a message waits): tick soon.
            let soon = tokio::time::Instant::now() + TICK;
            if self.tick_period() == TICK && tick.deadline() > soon {
                tick.as_mut().reset(soon);
            }
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for p in peers {
            let _ = self.swarm.disconnect_peer_id(p);
        }
        tracing::info!("network service stopped");
    }

    fn emit(&self, event: NetworkEvent) {
        if self.events.try_send(event).is_err() {
            self.metrics.events_dropped.inc();
        }
    }

    fn emit_dropped(&self, dropped: Vec<Dropped>) {
        for Dropped { topic, reason } in dropped {
            self.emit(NetworkEvent::PublishDropped { topic, reason });
        }
    }

    /// The view in force: the gate's.
    fn view(&self) -> Arc<MembershipView> {
        self.swarm.behaviour().gate.view().clone()
    }

    /// Puts `view` in force: the gate evicts whoever it no longer authorizes.
    fn apply_view(&mut self, view: Arc<MembershipView>) {
        let at = self.clock.moment();
        self.catch_up
            .history
            .record(&view, self.clock.now_ms(), at.block);
        self.connectivity.view_changing(&self.view(), &view);
        self.swarm.behaviour_mut().admission.apply_view(&view);
        let evicted = self.swarm.behaviour_mut().gate.apply_view(view);
        for (peer, reason) in evicted {
            tracing::warn!(%peer, %reason, "evicting peer no longer authorized");
            let label = ReasonLabels {
                reason: reason.label(),
            };
            self.metrics.evictions.get_or_create(&label).inc();
            self.emit(NetworkEvent::PeerEvicted { peer, reason });
        }
        self.connectivity
            .view_applied(&self.view(), self.clock.moment());
    }

    fn on_tick(&mut self) {
        // Delegations expire with time, not only with registry edits. An authorization is
        // judged at a moment (second, block), so one sweep per moment is enough.
        let at = self.clock.moment();
        if self.registry.swept_at != Some(at) {
            self.registry.swept_at = Some(at);
            self.apply_view(self.view());
        }
        self.disconnect_graylisted();
        let view = self.view();
        self.connectivity.redial_members(&mut self.swarm, &view, at);
        let expired = self.publisher.expire(Instant::now());
        self.emit_dropped(expired);
        self.flush();
        let members: Vec<PeerId> = self.swarm.behaviour().gate.connected().copied().collect();
        let topics = self.signed_topics();
        let now_ms = self.clock.now_ms();
        let proto = &mut self.swarm.behaviour_mut().catch_up;
        self.catch_up
            .tick(proto, &members, &topics, Instant::now(), now_ms);
    }

    /// The signed topics this node subscribes to.
    fn signed_topics(&self) -> Vec<TopicName> {
        let gossipsub = &self.swarm.behaviour().gossipsub;
        gossipsub.topics().filter_map(topic_name).collect()
    }

    /// Keeps what the publisher sent for catch-up.
    fn retain_sent(&mut self) {
        let source = self.publisher.local();
        let now_ms = self.clock.now_ms();
        for sent in self.publisher.take_sent() {
            let m = RetainedMessage {
                topic: sent.topic,
                source,
                timestamp_ms: sent.timestamp_ms,
                id: sent.id.0.as_slice().try_into().unwrap_or_default(),
                data: sent.data.into(),
            };
            if let Some(kept) = self.catch_up.retain(m, now_ms) {
                self.emit(NetworkEvent::Retained(kept));
            }
        }
    }

    /// Delivers what catch-up accepted and cuts off members that served forgeries.
    fn on_catch_up(&mut self, outcome: Outcome) {
        for c in outcome.caught_up {
            self.emit(NetworkEvent::Retained(c.message.clone()));
            self.emit(NetworkEvent::Message(Delivery::of(
                &c.message,
                c.validated,
                true,
            )));
        }
        for peer in outcome.misbehaved {
            self.cut_off(peer, "catch_up");
        }
    }

    /// Disconnects every member whose score on either channel fell below the graylist and keeps
    /// it out for [`GRAYLIST_COOL_DOWN`].
    fn disconnect_graylisted(&mut self) {
        let b = self.swarm.behaviour();
        let below = |gs: &gossipsub::Behaviour, p: &PeerId| {
            gs.peer_score(p).is_some_and(|s| s < GRAYLIST_THRESHOLD)
        };
        let graylisted: Vec<PeerId> = b
            .gate
            .connected()
            .filter(|p| below(&b.gossipsub, p) || below(&b.anonymous, p))
            .copied()
            .collect();
        for peer in graylisted {
            self.cut_off(peer, "graylisted");
        }
    }

    /// Counts a subscription change of `peer` (on either channel); a member over its rate is
    /// disconnected and kept out like a graylisted one.
    fn subscription_changed(&mut self, peer: PeerId) {
        if !self.churn.change(peer, Instant::now()) {
            self.cut_off(peer, "subscription_churn");
        }
    }

    /// Disconnects a misbehaving member and keeps it out for [`GRAYLIST_COOL_DOWN`]; `reason`
    /// labels the eviction.
    fn cut_off(&mut self, peer: PeerId, reason: &'static str) {
        if self
            .swarm
            .behaviour_mut()
            .gate
            .cool_down(peer, GRAYLIST_COOL_DOWN)
        {
            tracing::warn!(%peer, reason, "disconnecting a misbehaving member for a cool-down");
            let label = ReasonLabels { reason };
            self.metrics.evictions.get_or_create(&label).inc();
            self.emit(NetworkEvent::PeerGraylisted {
                peer,
                cool_down: GRAYLIST_COOL_DOWN,
            });
        }
    }

    /// The stem's two behaviours, borrowed together.
    fn stem_io(&mut self) -> (StemIo<'_>, &mut StemRelay) {
        let b = self.swarm.behaviour_mut();
        let io = StemIo {
            stem: &mut b.stem,
            gossip: &mut b.anonymous,
        };
        (io, &mut self.stem)
    }

    fn poll_stem(&mut self) {
        let (io, stem) = self.stem_io();
        stem.poll(io, Instant::now());
    }

    fn flush(&mut self) {
        let now_ms = self.clock.now_ms();
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        let dropped = self.publisher.flush(gossip, now_ms);
        self.emit_dropped(dropped);
        self.retain_sent();
    }

    fn tick_period(&self) -> Duration {
        if self.connectivity.all_connected() && self.publisher.is_idle() {
            QUIET_TICK
        } else {
            TICK
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish {
                topic,
                payload,
                reply,
            } => {
                let view = self.view();
                let cx = PublishContext {
                    view: &view,
                    at: self.clock.moment(),
                    now_ms: self.clock.now_ms(),
                    now: Instant::now(),
                };
                let gossip = &mut self.swarm.behaviour_mut().gossipsub;
                let _ = reply.send(self.publisher.publish(gossip, &cx, topic, payload));
                self.retain_sent();
            }
            Command::Subscribe { topic, reply } => {
                let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
                join_topic(gossipsub, gossip_topic(&topic), &topic, "signed");
                let _ = reply.send(());
            }
            Command::SubscribeAnonymous { topic, reply } => {
                let anonymous = &mut self.swarm.behaviour_mut().anonymous;
                join_topic(anonymous, anonymous_topic(&topic), &topic, "anonymous");
                let _ = reply.send(());
            }
            Command::Dial { address, reply } => {
                let _ = reply.send(self.swarm.dial(address).map_err(|e| dial_refusal(&e)));
            }
            Command::Listen { address, reply } => {
                self.connectivity.reopen_transport(&address);
                let result = self.swarm.listen_on(address.clone());
                if let Ok(id) = &result {
                    self.table.listener_added(*id, address);
                }
                let _ = reply.send(result.map(|_| ()).map_err(|e| e.to_string()));
            }
            Command::CloseTransport { matches, reply } => {
                let listeners = self.table.take_listeners(&matches);
                for id in &listeners {
                    self.swarm.remove_listener(*id);
                }
                let connections = self.table.connections_matching(&matches);
                for id in &connections {
                    self.swarm.close_connection(*id);
                }
                self.connectivity.close_transport(matches);
                let _ = reply.send((listeners.len(), connections.len()));
            }
            Command::Topics { reply } => {
                let gossipsub = &self.swarm.behaviour().gossipsub;
                let _ = reply.send(gossipsub.topics().filter_map(topic_name).collect());
            }
            Command::MeshPeers { topic, reply } => {
                let hash = gossip_topic(&topic).hash();
                let gossipsub = &self.swarm.behaviour().gossipsub;
                let _ = reply.send(gossipsub.mesh_peers(&hash).copied().collect());
            }
            Command::PublishAnonymous { topic, data, reply } => {
                let max = self.inbound.limits.max_message_bytes + FRAME_OVERHEAD;
                let result = if data.len() > max {
                    Err(PublishError::TooLarge {
                        size: data.len(),
                        max,
                    })
                } else if self.stem.enabled() {
                    let (io, stem) = self.stem_io();
                    stem.publish_own(io, topic, data, Instant::now())
                } else {
                    let anonymous = &mut self.swarm.behaviour_mut().anonymous;
                    anonymous
                        .publish(anonymous_topic(&topic), data)
                        .map(|id| hex_id(&id))
                        .map_err(|e| PublishError::NotSent(e.to_string()))
                };
                let _ = reply.send(result);
            }
            Command::AnonymousScores { reply } => {
                let gs = &self.swarm.behaviour().anonymous;
                let scores = gs
                    .all_peers()
                    .filter_map(|(p, _)| Some((*p, gs.peer_score(p)?)))
                    .collect();
                let _ = reply.send(scores);
            }
            Command::ReportAnonymous { id, acceptance } => {
                match id.route {
                    Route::Local => {}
                    Route::Gossip { .. } => {
                        report_anonymous(&mut self.swarm.behaviour_mut().anonymous, &id, acceptance)
                    }
                    Route::Stem { ticket, .. } => {
                        let (io, stem) = self.stem_io();
                        stem.on_verdict(io, ticket, acceptance, Instant::now());
                    }
                }
                if let (Acceptance::Forged, Some(peer)) = (acceptance, id.from()) {
                    self.cut_off(peer, "forged");
                }
            }
            Command::FetchHeaders {
                peer,
                request,
                reply,
            } => {
                let connected = self.swarm.is_connected(&peer);
                let protocol = &mut self.swarm.behaviour_mut().headers;
                self.header_client
                    .request(protocol, connected, peer, request, reply);
            }
            Command::Retained {
                topic,
                since_ms,
                reply,
            } => {
                let local = self.publisher.local();
                let _ = reply.send(self.catch_up.replay(&topic, since_ms, &local));
            }
            Command::HandOver { reply } => {
                let _ = reply.send(self.publisher.hand_over());
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.libp2p_metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(ev)) => {
                self.libp2p_metrics.record(&ev);
                self.on_gossipsub(ev);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Anonymous(ev)) => {
                self.libp2p_metrics.record(&ev);
                if let gossipsub::Event::Message { message_id, .. } = &ev {
                    // In gossip now: a frame held for the stem's fail-safe is released. Its
                    // copy is judged like any other, so this node forwards it no sooner than
                    // a node that never saw the stem.
                    self.stem.gossiped(message_id);
                }
                if let gossipsub::Event::Subscribed { peer_id, .. }
                | gossipsub::Event::Unsubscribed { peer_id, .. } = &ev
                {
                    self.subscription_changed(*peer_id);
                }
                let anonymous = &mut self.swarm.behaviour_mut().anonymous;
                self.inbound.anonymous(anonymous, ev);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Stem(ev)) => {
                let (io, stem) = self.stem_io();
                stem.on_event(io, ev);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(ev)) => {
                self.libp2p_metrics.record(&ev);
                if let identify::Event::Received { peer_id, info, .. } = ev {
                    let addresses = self.connectivity.learned(peer_id, info.listen_addrs);
                    if !addresses.is_empty() {
                        let peer = peer_id;
                        self.emit(NetworkEvent::AddressesLearned { peer, addresses });
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ev)) => {
                self.libp2p_metrics.record(&ev);
            }
            SwarmEvent::Behaviour(BehaviourEvent::CatchUp(ev)) => {
                let now_ms = self.clock.now_ms();
                let proto = &mut self.swarm.behaviour_mut().catch_up;
                let outcome = self.catch_up.on_event(proto, ev, Instant::now(), now_ms);
                self.on_catch_up(outcome);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Headers(ev)) => {
                let protocol = &mut self.swarm.behaviour_mut().headers;
                self.header_client.on_event(protocol, ev);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(ev)) => {
                let (view, at) = (self.view(), self.clock.moment());
                connectivity::on_relay(&mut self.swarm, &view, at, &self.metrics, ev);
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(ev)) => {
                tracing::debug!(?ev, "relay client");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gate(never))
            | SwarmEvent::Behaviour(BehaviourEvent::Admission(never)) => match never {},
            other => self.on_connection_event(other),
        }
    }

    fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let gs = &mut self.swarm.behaviour_mut().gossipsub;
                let held = <[u8; 32]>::try_from(message_id.0.as_slice())
                    .is_ok_and(|id| self.catch_up.log.contains(&id));
                if held {
                    // Caught up before this copy came: delivered already, and the copy is no
                    // fault of the forwarder's.
                    if let Some(topic) = topic_name(&message.topic) {
                        self.inbound
                            .ignore(gs, &message_id, &propagation_source, &topic);
                    }
                    return;
                }
                let view = self.view();
                let gs = &mut self.swarm.behaviour_mut().gossipsub;
                let judged = self.inbound.signed(
                    gs,
                    &view,
                    &self.clock,
                    propagation_source,
                    message_id,
                    message,
                );
                match judged {
                    Judged::Accepted(m, validated) => {
                        // Already here (caught up before its gossip copy arrived): delivered.
                        if let Some(kept) = self.catch_up.retain(m, self.clock.now_ms()) {
                            self.emit(NetworkEvent::Retained(kept.clone()));
                            let d = Delivery::of(&kept, validated, false);
                            self.emit(NetworkEvent::Message(d));
                        }
                    }
                    Judged::Refused(event) => self.emit(event),
                    Judged::Ignored => {}
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                self.subscription_changed(peer_id);
                if let Some(name) = topic_name(&topic) {
                    self.table.topic_changed(&peer_id, name, true);
                }
                self.flush();
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                self.subscription_changed(peer_id);
                if let Some(name) = topic_name(&topic) {
                    self.table.topic_changed(&peer_id, name, false);
                }
            }
            _ => {}
        }
    }
}
