//! The stem in the worker: own frames onto the stem, members' frames to the application's
//! validator and, once it accepts them, on to the next hop or into gossip; fail-safe fluffs;
//! and the score a member pays for sending an invalid frame (docs/ARCHITECTURE.md, "The stem").

use std::collections::HashMap;
use std::time::{Duration, Instant};

use conclave_core::{PeerId, TopicName};
use libp2p::gossipsub::{self, MessageId};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use tokio::sync::mpsc;

use super::types::{hex_id, Acceptance, AnonymousMessage, AnonymousMessageId, PublishError, Route};
use crate::behaviour::{anonymous_message_id, anonymous_topic, GRAYLIST_THRESHOLD};
use crate::metrics::{NetMetrics, ReasonLabels};
use crate::stem::router::{Due, FluffCause, Frame, Routed, StemRouter};
use crate::stem::{StemCodec, StemConfig, StemReply, StemRequest, StemVerdict};

type Protocol = request_response::Behaviour<StemCodec>;

/// Members' frames waiting for the application's verdict at once; beyond it they are ignored.
const MAX_AWAITING: usize = 512;
/// Application-specific score per invalid stem frame, squared like gossipsub's own penalty
/// for invalid messages: with its weight of 10, one costs −100, two −400 (the graylist), three
/// −900.
const PENALTY: f64 = 10.0;
/// Penalties halve this often, so a member that once sent a bad frame recovers.
const PENALTY_HALF_LIFE: Duration = Duration::from_secs(600);

/// The two behaviours a stem step touches, lent by the worker.
pub(crate) struct StemIo<'a> {
    pub stem: &'a mut Protocol,
    pub gossip: &'a mut gossipsub::Behaviour,
}

struct Awaiting {
    channel: ResponseChannel<StemReply>,
    from: PeerId,
    id: MessageId,
    frame: Frame,
}

pub(crate) struct StemRelay {
    router: StemRouter,
    /// The application's validation queue (shared with anonymous gossip).
    inbox: mpsc::Sender<AnonymousMessage>,
    awaiting: HashMap<u64, Awaiting>,
    next_ticket: u64,
    /// Our sends in flight: the frame each carries (at most one per held frame).
    in_flight: HashMap<OutboundRequestId, MessageId>,
    /// Invalid frames seen from each member, decaying.
    penalties: HashMap<PeerId, f64>,
    decayed_at: Instant,
    metrics: NetMetrics,
}

impl StemRelay {
    pub fn new(
        cfg: StemConfig,
        inbox: mpsc::Sender<AnonymousMessage>,
        metrics: NetMetrics,
    ) -> Self {
        StemRelay {
            router: StemRouter::new(cfg, rand::random()),
            inbox,
            awaiting: HashMap::new(),
            next_ticket: 0,
            in_flight: HashMap::new(),
            penalties: HashMap::new(),
            decayed_at: Instant::now(),
            metrics,
        }
    }

    /// Whether own frames start on the stem.
    pub fn enabled(&self) -> bool {
        self.router.config().enabled
    }

    /// Puts an own frame on the stem; its message id (the gossip one, equal on every node).
    pub fn publish_own(
        &mut self,
        io: StemIo<'_>,
        topic: TopicName,
        data: Vec<u8>,
        now: Instant,
    ) -> Result<String, PublishError> {
        let id = anonymous_message_id(&data);
        let hex = hex_id(&id);
        let candidates = candidates(io.gossip, &topic);
        match self
            .router
            .route(None, id, Frame { topic, data }, &candidates, now)
        {
            Routed::Fluff(frame, _) => self.fluff(io.gossip, frame).map(|_| hex),
            Routed::Scheduled { .. } => {
                self.poll(io, now);
                Ok(hex)
            }
            Routed::Duplicate => Ok(hex),
        }
    }

    /// A gossip copy arrived: the stem did its job, stop holding the frame.
    pub fn gossiped(&mut self, id: &MessageId) {
        self.router.seen_in_gossip(id);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.router.next_deadline()
    }

    /// Sends and fail-safe fluffs that have come due.
    pub fn poll(&mut self, io: StemIo<'_>, now: Instant) {
        for due in self.router.poll(now) {
            match due {
                Due::Send { to, id, frame } => {
                    let request = StemRequest {
                        topic: frame.topic.to_string(),
                        data: frame.data,
                    };
                    let req = io.stem.send_request(&to, request);
                    self.in_flight.insert(req, id);
                }
                Due::Fluff { frame, own } => {
                    if !own {
                        self.count_fluff(FluffCause::Failsafe);
                    }
                    let _ = self.fluff(io.gossip, frame);
                }
            }
        }
        self.decay(io.gossip, now);
    }

    pub fn on_event(
        &mut self,
        io: StemIo<'_>,
        event: request_response::Event<StemRequest, StemReply>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_request(io, peer, request, channel),
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                // Taken, ignored or found invalid: the frame stays held, and the fail-safe
                // gossips it if nobody else does. Refused unread (we are graylisted there, or
                // the answer is not one): gossip it now.
                let id = self.in_flight.remove(&request_id);
                let answered = matches!(
                    StemVerdict::try_from(response.verdict),
                    Ok(StemVerdict::Accepted | StemVerdict::Ignored | StemVerdict::Rejected)
                );
                if let (Some(id), false) = (id, answered) {
                    self.fluff_back(io.gossip, &id);
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "stem hop failed");
                if let Some(id) = self.in_flight.remove(&request_id) {
                    self.fluff_back(io.gossip, &id);
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "stem frame not answered");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// The application's verdict on a member's frame: answer the sender, then forward,
    /// fluff or penalize.
    pub fn on_verdict(
        &mut self,
        io: StemIo<'_>,
        ticket: u64,
        acceptance: Acceptance,
        now: Instant,
    ) {
        let Some(a) = self.awaiting.remove(&ticket) else {
            return;
        };
        let verdict = match acceptance {
            Acceptance::Accept => StemVerdict::Accepted,
            Acceptance::Ignore => StemVerdict::Ignored,
            Acceptance::Reject | Acceptance::Forged => StemVerdict::Rejected,
        };
        self.count_received(verdict_label(verdict));
        let _ = io.stem.send_response(a.channel, reply(verdict));
        match acceptance {
            Acceptance::Accept => self.route_relayed(io, a.from, a.id, a.frame, now),
            Acceptance::Reject | Acceptance::Forged => self.penalize(io.gossip, a.from),
            Acceptance::Ignore => {}
        }
    }

    /// A verified frame from `from`: fluffed by the coin, or on to the next hop.
    fn route_relayed(
        &mut self,
        io: StemIo<'_>,
        from: PeerId,
        id: MessageId,
        frame: Frame,
        now: Instant,
    ) {
        let candidates = candidates(io.gossip, &frame.topic);
        match self.router.route(Some(from), id, frame, &candidates, now) {
            Routed::Fluff(frame, cause) => {
                self.count_fluff(cause);
                let _ = self.fluff(io.gossip, frame);
            }
            Routed::Scheduled { .. } => self.poll(io, now),
            Routed::Duplicate => {}
        }
    }

    fn on_request(
        &mut self,
        io: StemIo<'_>,
        from: PeerId,
        request: StemRequest,
        channel: ResponseChannel<StemReply>,
    ) {
        // Graylisted members are not worth a proof verification.
        if io
            .gossip
            .peer_score(&from)
            .is_some_and(|s| s < GRAYLIST_THRESHOLD)
        {
            self.count_received("refused");
            let _ = io.stem.send_response(channel, reply(StemVerdict::Refused));
            return;
        }
        let Ok(topic) = request.topic.parse::<TopicName>() else {
            self.count_received("rejected");
            self.penalize(io.gossip, from);
            let _ = io.stem.send_response(channel, reply(StemVerdict::Rejected));
            return;
        };
        let carried = io
            .gossip
            .topics()
            .any(|t| *t == anonymous_topic(&topic).hash());
        let id = anonymous_message_id(&request.data);
        if carried && self.router.holds(&id) {
            // Back on a node that verified these very bytes: no second verification, it walks
            // on.
            self.count_received("looped");
            let _ = io.stem.send_response(channel, reply(StemVerdict::Accepted));
            let frame = Frame {
                topic,
                data: request.data,
            };
            self.route_relayed(io, from, id, frame, Instant::now());
            return;
        }
        let verdict = if !carried {
            Some(("not_subscribed", StemVerdict::Ignored))
        } else if self.awaiting.len() >= MAX_AWAITING {
            Some(("busy", StemVerdict::Ignored))
        } else {
            None
        };
        if let Some((label, verdict)) = verdict {
            self.count_received(label);
            let _ = io.stem.send_response(channel, reply(verdict));
            return;
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let message = AnonymousMessage {
            topic: topic.clone(),
            data: request.data.clone(),
            id: AnonymousMessageId {
                message_id: id.clone(),
                route: Route::Stem { from, ticket },
            },
        };
        if self.inbox.try_send(message).is_err() {
            self.metrics.anonymous_dropped.inc();
            self.count_received("busy");
            let _ = io.stem.send_response(channel, reply(StemVerdict::Ignored));
            return;
        }
        let frame = Frame {
            topic,
            data: request.data,
        };
        let awaiting = Awaiting {
            channel,
            from,
            id,
            frame,
        };
        self.awaiting.insert(ticket, awaiting);
    }

    /// The successor could not take a frame we sent: fluff it now.
    fn fluff_back(&mut self, gossip: &mut gossipsub::Behaviour, id: &MessageId) {
        if let Some((frame, own)) = self.router.send_failed(id) {
            if !own {
                self.count_fluff(FluffCause::Unreachable);
            }
            let _ = self.fluff(gossip, frame);
        }
    }

    /// Gossips a frame to the anonymous mesh, and hands it to this node's own validator: gossip
    /// never gives a node back what it published, and the node's subscribers should get it like
    /// everyone else's (delivered once it passes the full checks).
    fn fluff(
        &mut self,
        gossip: &mut gossipsub::Behaviour,
        frame: Frame,
    ) -> Result<MessageId, PublishError> {
        let id = gossip
            .publish(anonymous_topic(&frame.topic), frame.data.clone())
            .map_err(|e| {
                tracing::debug!(error = %e, "fluff not sent");
                PublishError::NotSent(e.to_string())
            })?;
        let local = AnonymousMessage {
            topic: frame.topic,
            data: frame.data,
            id: AnonymousMessageId {
                message_id: id.clone(),
                route: Route::Local,
            },
        };
        if self.inbox.try_send(local).is_err() {
            self.metrics.anonymous_dropped.inc();
        }
        Ok(id)
    }

    fn penalize(&mut self, gossip: &mut gossipsub::Behaviour, peer: PeerId) {
        let count = self.penalties.entry(peer).or_insert(0.0);
        *count += 1.0;
        let score = -PENALTY * *count * *count;
        tracing::debug!(%peer, score, "invalid stem frame: member penalized");
        gossip.set_application_score(&peer, score);
    }

    fn decay(&mut self, gossip: &mut gossipsub::Behaviour, now: Instant) {
        if now.saturating_duration_since(self.decayed_at) < PENALTY_HALF_LIFE {
            return;
        }
        self.decayed_at = now;
        self.penalties.retain(|peer, count| {
            *count /= 2.0;
            let keep = *count >= 0.5;
            let score = if keep {
                -PENALTY * *count * *count
            } else {
                0.0
            };
            gossip.set_application_score(peer, score);
            keep
        });
    }

    fn count_received(&self, reason: &'static str) {
        let labels = ReasonLabels { reason };
        self.metrics.stem_received.get_or_create(&labels).inc();
    }

    fn count_fluff(&self, cause: FluffCause) {
        let labels = ReasonLabels {
            reason: cause.label(),
        };
        self.metrics.stem_fluffed.get_or_create(&labels).inc();
    }
}

fn reply(verdict: StemVerdict) -> StemReply {
    StemReply {
        verdict: verdict as i32,
    }
}

fn verdict_label(v: StemVerdict) -> &'static str {
    match v {
        StemVerdict::Accepted => "accepted",
        StemVerdict::Ignored => "ignored",
        StemVerdict::Rejected => "rejected",
        StemVerdict::Refused => "refused",
    }
}

/// Members that carry `topic` on the anonymous channel and are not graylisted: the possible
/// next hops.
fn candidates(gossip: &gossipsub::Behaviour, topic: &TopicName) -> Vec<PeerId> {
    let hash = anonymous_topic(topic).hash();
    gossip
        .all_peers()
        .filter(|(_, topics)| topics.contains(&&hash))
        .map(|(p, _)| *p)
        .filter(|p| gossip.peer_score(p).is_none_or(|s| s >= GRAYLIST_THRESHOLD))
        .collect()
}
