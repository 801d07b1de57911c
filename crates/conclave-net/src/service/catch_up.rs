//! Catch-up in the worker: the retained log and view history it owns, reconciliations it runs
//! with members (on every new connection, and every `anti_entropy` with one member at random),
//! the fetches that follow, and both requests served to members — each bounded
//! (docs/ARCHITECTURE.md, "Catch-up").

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use conclave_core::{PeerId, TopicName};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message as _;
use rand::seq::SliceRandom;

use crate::catchup::history::ViewHistory;
use crate::catchup::log::{Key, MessageKey, RetainedLog, RetainedMessage};
use crate::catchup::reconcile::{answer, Reconciler};
use crate::catchup::{
    CatchUpCodec, CatchUpConfig, CatchUpReply, CatchUpReplyKind, CatchUpRequest,
    CatchUpRequestKind, Fetch, Fetched, Reconcile, FETCH_REPLY_BYTES, MAX_FETCH_IDS,
};
use crate::metrics::{NetMetrics, ReasonLabels};
use crate::service::types::Delivery;
use crate::validation::{validate_retained, Validated, ValidationLimits};

type Protocol = request_response::Behaviour<CatchUpCodec>;
type Counters = Family<ReasonLabels, Counter>;

/// Sessions (one per member) at once: a node that just restarted reconciles with this many
/// members at a time.
const MAX_SESSIONS: usize = 16;
/// A member's answers that broke the protocol or carried forged messages before it is cut off.
const STRIKES: u32 = 3;

/// Why a session ended early.
enum Ended {
    /// The member refused (busy, or it judged our request malformed) or had no session.
    Refused(String),
    /// The member broke the protocol or served forged or unrequested messages: a strike.
    Misbehaved(String),
}

/// One accepted caught-up message, for the worker to deliver.
pub(crate) struct CaughtUp {
    pub message: Arc<RetainedMessage>,
    pub validated: Validated,
}

/// What handling a catch-up event produced.
#[derive(Default)]
pub(crate) struct Outcome {
    pub caught_up: Vec<CaughtUp>,
    /// Members that misbehaved [`STRIKES`] times: to be disconnected.
    pub misbehaved: Vec<PeerId>,
}

enum Stage {
    Reconciling(Reconciler),
    Fetching {
        wanted: VecDeque<Key>,
        /// The request in flight: id → the timestamp promised.
        asked: HashMap<MessageKey, u64>,
    },
}

struct Session {
    topic: TopicName,
    stage: Stage,
    /// Topics still to reconcile after this one.
    rest: VecDeque<TopicName>,
}

/// A member's request allowance (token bucket).
struct Allowance {
    tokens: f64,
    at: Instant,
}

pub(crate) struct CatchUp {
    config: CatchUpConfig,
    pub log: RetainedLog,
    pub history: ViewHistory,
    limits: ValidationLimits,
    sessions: HashMap<PeerId, Session>,
    in_flight: HashMap<OutboundRequestId, PeerId>,
    allowances: HashMap<PeerId, Allowance>,
    /// Ids some session has asked for and not received yet: other sessions (reconciling the
    /// same gap with other members) skip them rather than fetch each message several times.
    fetching: HashSet<MessageKey>,
    strikes: HashMap<PeerId, u32>,
    next_round: Instant,
    metrics: NetMetrics,
}

static NOTHING: BTreeMap<Key, Arc<RetainedMessage>> = BTreeMap::new();

impl CatchUp {
    pub fn new(
        config: CatchUpConfig,
        history: ViewHistory,
        limits: ValidationLimits,
        metrics: NetMetrics,
    ) -> Self {
        let window = config.retention.as_millis() as u64;
        CatchUp {
            log: RetainedLog::new(window, config.max_bytes),
            history,
            limits,
            sessions: HashMap::new(),
            in_flight: HashMap::new(),
            allowances: HashMap::new(),
            fetching: HashSet::new(),
            strikes: HashMap::new(),
            next_round: Instant::now() + config.anti_entropy,
            config,
            metrics,
        }
    }

    /// Keeps a message this node accepted or published; the kept one if it is new.
    pub fn retain(&mut self, m: RetainedMessage, now_ms: u64) -> Option<Arc<RetainedMessage>> {
        let m = Arc::new(m);
        let kept = self.log.insert(m.clone(), now_ms).then_some(m);
        self.update_gauges();
        kept
    }

    fn update_gauges(&self) {
        self.metrics.retained_messages.set(self.log.len() as i64);
        self.metrics.retained_bytes.set(self.log.bytes() as i64);
    }

    fn count(&self, family: &Counters, reason: &'static str, n: u64) {
        family.get_or_create(&ReasonLabels { reason }).inc_by(n);
    }

    /// Deliveries of the retained messages of `topic` from `since_ms` on that `local` did not
    /// send, oldest first; each names the operator that authorized its key when it was sent.
    pub fn replay(&self, topic: &TopicName, since_ms: u64, local: &PeerId) -> Vec<Delivery> {
        let Some(items) = self.log.topic(topic) else {
            return Vec::new();
        };
        items
            .range((since_ms, [0u8; 32])..)
            .filter(|(_, m)| m.source != *local)
            .filter_map(|(_, m)| {
                let (view, _) = self.history.at(m.timestamp_ms);
                let operator = view.node(&m.source)?.operator;
                let envelope = conclave_core::Envelope::decode(&m.data[..]).ok()?;
                Some(Delivery {
                    topic: m.topic.clone(),
                    source: m.source,
                    operator,
                    timestamp_ms: m.timestamp_ms,
                    payload: envelope.payload,
                    message_id: m.hex_id(),
                    caught_up: false,
                    nonce: envelope.nonce,
                    signature: envelope.signature,
                })
            })
            .collect()
    }

    /// A member connected: reconcile `topics` with it (unless a session runs or too many do).
    pub fn member_connected(
        &mut self,
        proto: &mut Protocol,
        peer: PeerId,
        topics: Vec<TopicName>,
        now_ms: u64,
    ) {
        if self.sessions.contains_key(&peer) || self.sessions.len() >= MAX_SESSIONS {
            return;
        }
        let mut rest: VecDeque<TopicName> = topics.into();
        if let Some(topic) = rest.pop_front() {
            self.start_topic(proto, peer, topic, rest, now_ms);
        }
    }

    pub fn member_disconnected(&mut self, peer: &PeerId) {
        if let Some(s) = self.sessions.remove(peer) {
            self.release(&s);
            self.count(&self.metrics.catchup_sessions, "interrupted", 1);
        }
        self.allowances.remove(peer);
    }

    /// Anti-entropy: every `anti_entropy`, one connected member at random without a session.
    pub fn tick(
        &mut self,
        proto: &mut Protocol,
        members: &[PeerId],
        topics: &[TopicName],
        now: Instant,
        now_ms: u64,
    ) {
        self.log.evict(now_ms);
        self.update_gauges();
        if now < self.next_round || topics.is_empty() {
            return;
        }
        self.next_round = now + self.config.anti_entropy;
        let idle: Vec<PeerId> = members
            .iter()
            .filter(|p| !self.sessions.contains_key(p))
            .copied()
            .collect();
        if let Some(peer) = idle.choose(&mut rand::thread_rng()) {
            self.member_connected(proto, *peer, topics.to_vec(), now_ms);
        }
    }

    fn start_topic(
        &mut self,
        proto: &mut Protocol,
        peer: PeerId,
        topic: TopicName,
        rest: VecDeque<TopicName>,
        now_ms: u64,
    ) {
        let items = self.log.topic(&topic).unwrap_or(&NOTHING);
        let since = self.log.since(now_ms);
        let (reconciler, ranges) =
            Reconciler::start(items, since, now_ms, self.config.fetch_budget);
        tracing::debug!(%peer, %topic, held = items.len(), "catch-up: reconciling");
        let request = CatchUpRequest {
            kind: Some(CatchUpRequestKind::Reconcile(Reconcile {
                topic: topic.to_string(),
                ranges,
            })),
        };
        self.send(proto, peer, request);
        self.sessions.insert(
            peer,
            Session {
                topic,
                stage: Stage::Reconciling(reconciler),
                rest,
            },
        );
    }

    fn send(&mut self, proto: &mut Protocol, peer: PeerId, request: CatchUpRequest) {
        use prost::Message;
        tracing::debug!(%peer, fetch = matches!(request.kind, Some(CatchUpRequestKind::Fetch(_))), "catch-up: request");
        self.count(
            &self.metrics.catchup_bytes,
            "sent",
            request.encoded_len() as u64,
        );
        let id = proto.send_request(&peer, request);
        self.in_flight.insert(id, peer);
    }

    /// Serves a member's request or takes an answer to ours.
    pub fn on_event(
        &mut self,
        proto: &mut Protocol,
        event: request_response::Event<CatchUpRequest, CatchUpReply>,
        now: Instant,
        now_ms: u64,
    ) -> Outcome {
        use request_response::{Event, Message};
        let mut out = Outcome::default();
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.serve(proto, peer, request, channel, now),
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if self.in_flight.remove(&request_id) == Some(peer) {
                    use prost::Message as _;
                    let n = response.encoded_len() as u64;
                    self.count(&self.metrics.catchup_bytes, "received", n);
                    match self.on_reply(proto, peer, response, now_ms, &mut out) {
                        Ok(()) => {}
                        Err(Ended::Refused(reason)) => {
                            tracing::debug!(%peer, reason, "catch-up session refused");
                            self.end(peer, "refused");
                        }
                        Err(Ended::Misbehaved(reason)) => {
                            tracing::warn!(%peer, reason, "catch-up session ended: the member misbehaved");
                            self.end(peer, "misbehaved");
                            if self.strike(peer) {
                                out.misbehaved.push(peer);
                            }
                        }
                    }
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.in_flight.remove(&request_id).is_some() {
                    tracing::debug!(%peer, %error, "catch-up request failed");
                    self.end(peer, "failed");
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "catch-up request not answered");
            }
            Event::ResponseSent { .. } => {}
        }
        out
    }

    fn end(&mut self, peer: PeerId, outcome: &'static str) {
        if let Some(s) = self.sessions.remove(&peer) {
            self.release(&s);
            self.count(&self.metrics.catchup_sessions, outcome, 1);
        }
    }

    /// Frees the ids a session had asked for, for other sessions to fetch.
    fn release(&mut self, s: &Session) {
        if let Stage::Fetching { asked, .. } = &s.stage {
            for id in asked.keys() {
                self.fetching.remove(id);
            }
        }
    }

    /// Counts a strike against `peer`; true when it has run out.
    fn strike(&mut self, peer: PeerId) -> bool {
        let n = self.strikes.entry(peer).or_default();
        *n += 1;
        if *n >= STRIKES {
            self.strikes.remove(&peer);
            return true;
        }
        false
    }

    fn on_reply(
        &mut self,
        proto: &mut Protocol,
        peer: PeerId,
        reply: CatchUpReply,
        now_ms: u64,
        out: &mut Outcome,
    ) -> Result<(), Ended> {
        let mut session = self
            .sessions
            .remove(&peer)
            .ok_or_else(|| Ended::Refused("no session".into()))?;
        let next = match (&mut session.stage, reply.kind) {
            (_, Some(CatchUpReplyKind::Refused(reason))) => {
                self.release(&session);
                return Err(Ended::Refused(reason));
            }
            (Stage::Reconciling(r), Some(CatchUpReplyKind::Reconciled(rec))) => {
                let items = self.log.topic(&session.topic).unwrap_or(&NOTHING);
                let log = &self.log;
                let next = r
                    .on_answers(items, &rec.answers, |id| log.contains(id))
                    .map_err(|e| Ended::Misbehaved(e.to_string()))?;
                match next {
                    Some(ranges) => Some(CatchUpRequestKind::Reconcile(Reconcile {
                        topic: session.topic.to_string(),
                        ranges,
                    })),
                    None => {
                        let wanted: VecDeque<Key> = r.take_wanted().into_iter().collect();
                        let promised = wanted.len() as u64;
                        tracing::debug!(%peer, promised, "catch-up: reconciled");
                        self.count(&self.metrics.catchup_fetched, "promised", promised);
                        session.stage = Stage::Fetching {
                            wanted,
                            asked: HashMap::new(),
                        };
                        self.next_fetch(&mut session.stage)
                    }
                }
            }
            (Stage::Fetching { asked, wanted }, Some(CatchUpReplyKind::Fetched(f))) => {
                let asked = std::mem::take(asked);
                for id in asked.keys() {
                    self.fetching.remove(id);
                }
                let returned = f.messages.len();
                let (bad, unserved) = self.take_fetched(&session.topic, asked, f, now_ms, out);
                tracing::debug!(%peer, returned, again = unserved.len(), "catch-up: fetched");
                if bad > 0 {
                    let reason = format!("{bad} forged or unrequested messages");
                    return Err(Ended::Misbehaved(reason));
                }
                // What did not fit in the answer is asked for again (only after progress, so
                // an answerer that no longer holds them cannot keep us asking).
                for key in unserved.into_iter().rev() {
                    wanted.push_front(key);
                }
                self.next_fetch(&mut session.stage)
            }
            _ => {
                self.release(&session);
                return Err(Ended::Misbehaved("an answer of the wrong kind".into()));
            }
        };
        match next {
            Some(kind) => {
                self.send(proto, peer, CatchUpRequest { kind: Some(kind) });
                self.sessions.insert(peer, session);
            }
            None => {
                tracing::debug!(%peer, topic = %session.topic, "catch-up: complete");
                self.count(&self.metrics.catchup_sessions, "complete", 1);
                let mut rest = session.rest;
                if let Some(topic) = rest.pop_front() {
                    self.start_topic(proto, peer, topic, rest, now_ms);
                }
            }
        }
        Ok(())
    }

    /// The next fetch request of a fetching session, or `None` when all was fetched.
    fn next_fetch(&mut self, stage: &mut Stage) -> Option<CatchUpRequestKind> {
        let Stage::Fetching { wanted, asked } = stage else {
            return None;
        };
        while asked.len() < MAX_FETCH_IDS {
            let Some((ts, id)) = wanted.pop_front() else {
                break;
            };
            // Gossip or another session may have brought it meanwhile, or be fetching it now
            // (if that one fails, the next reconciliation finds it missing still).
            if !self.log.contains(&id) && self.fetching.insert(id) {
                asked.insert(id, ts);
            }
        }
        if asked.is_empty() {
            return None;
        }
        let ids = asked.keys().map(|id| id.to_vec()).collect();
        Some(CatchUpRequestKind::Fetch(Fetch { ids }))
    }

    /// Judges fetched messages: how many were forged or not asked for, and the asked ones the
    /// answer left out (to ask again, when it carried any at all).
    fn take_fetched(
        &mut self,
        topic: &TopicName,
        asked: HashMap<MessageKey, u64>,
        fetched: Fetched,
        now_ms: u64,
        out: &mut Outcome,
    ) -> (usize, Vec<Key>) {
        let mut bad = 0;
        let mut seen = HashSet::new();
        let progress = !fetched.messages.is_empty();
        for wire in fetched.messages {
            let m = match RetainedMessage::from_wire(wire) {
                Ok(m) => m,
                Err(_) => {
                    bad += 1;
                    self.count(&self.metrics.catchup_fetched, "undecodable", 1);
                    continue;
                }
            };
            if asked.get(&m.id) != Some(&m.timestamp_ms) || m.topic != *topic || !seen.insert(m.id)
            {
                bad += 1;
                self.count(&self.metrics.catchup_fetched, "unrequested", 1);
                continue;
            }
            let (view, at) = self.history.at(m.timestamp_ms);
            let verdict = validate_retained(
                (view, at),
                now_ms,
                self.log.window_ms(),
                self.limits,
                m.source,
                topic,
                &m.data,
            );
            match verdict {
                Ok(validated) => {
                    if let Some(message) = self.retain(m, now_ms) {
                        self.count(&self.metrics.catchup_fetched, "accepted", 1);
                        out.caught_up.push(CaughtUp { message, validated });
                    }
                }
                Err(reason) => {
                    // A forged signature or garbage is the server's doing; an authorization
                    // or a timestamp our view judges differently need not be.
                    if matches!(
                        reason.label(),
                        "bad_signature" | "undecodable" | "too_large"
                    ) {
                        bad += 1;
                    }
                    tracing::debug!(%reason, "caught-up message refused");
                    self.count(&self.metrics.catchup_fetched, reason.label(), 1);
                }
            }
        }
        let mut unserved: Vec<Key> = match progress {
            true => asked
                .into_iter()
                .filter(|(id, _)| !seen.contains(id))
                .map(|(id, ts)| (ts, id))
                .collect(),
            false => Vec::new(),
        };
        unserved.sort_unstable();
        (bad, unserved)
    }

    fn serve(
        &mut self,
        proto: &mut Protocol,
        peer: PeerId,
        request: CatchUpRequest,
        channel: ResponseChannel<CatchUpReply>,
        now: Instant,
    ) {
        let kind = if !self.allow(peer, now) {
            self.count(&self.metrics.catchup_served, "busy", 1);
            CatchUpReplyKind::Refused("busy".into())
        } else {
            match request.kind {
                Some(CatchUpRequestKind::Reconcile(r)) => self.serve_reconcile(r),
                Some(CatchUpRequestKind::Fetch(f)) => self.serve_fetch(f),
                None => CatchUpReplyKind::Refused("empty request".into()),
            }
        };
        let reason = match &kind {
            CatchUpReplyKind::Reconciled(_) => "reconciled",
            CatchUpReplyKind::Fetched(_) => "fetched",
            CatchUpReplyKind::Refused(_) => "refused",
        };
        self.count(&self.metrics.catchup_served, reason, 1);
        tracing::debug!(%peer, reason, "catch-up: served");
        // An error only means the asker went away.
        let _ = proto.send_response(channel, CatchUpReply { kind: Some(kind) });
    }

    /// Token bucket per member: `serve_rate` per second, bursts of 16×.
    fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        let rate = f64::from(self.config.serve_rate.max(1));
        let burst = rate * 16.0;
        let a = self.allowances.entry(peer).or_insert(Allowance {
            tokens: burst,
            at: now,
        });
        a.tokens = (a.tokens + now.duration_since(a.at).as_secs_f64() * rate).min(burst);
        a.at = now;
        if a.tokens < 1.0 {
            return false;
        }
        a.tokens -= 1.0;
        true
    }

    fn serve_reconcile(&self, r: Reconcile) -> CatchUpReplyKind {
        let Ok(topic) = r.topic.parse::<TopicName>() else {
            return CatchUpReplyKind::Refused(format!("`{}` is not a topic name", r.topic));
        };
        let items = self.log.topic(&topic).unwrap_or(&NOTHING);
        match answer(items, &r.ranges) {
            Ok(answers) => CatchUpReplyKind::Reconciled(crate::catchup::Reconciled { answers }),
            Err(e) => CatchUpReplyKind::Refused(e.to_string()),
        }
    }

    fn serve_fetch(&self, f: Fetch) -> CatchUpReplyKind {
        if f.ids.len() > MAX_FETCH_IDS {
            return CatchUpReplyKind::Refused(format!("more than {MAX_FETCH_IDS} ids"));
        }
        let mut messages = Vec::new();
        let mut bytes = 0;
        for raw in &f.ids {
            let Some(m) = <MessageKey>::try_from(raw.as_slice())
                .ok()
                .and_then(|id| self.log.get(&id))
            else {
                continue;
            };
            if bytes >= FETCH_REPLY_BYTES {
                break;
            }
            bytes += m.data.len();
            messages.push(m.to_wire());
        }
        CatchUpReplyKind::Fetched(Fetched { messages })
    }
}
