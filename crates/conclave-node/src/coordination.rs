//! The coordination executor: runs [`Round`]s for every group this node's operator sits in, over
//! the signed `coord` topic, on the node's chain (the EVM registry's chain or the clock chain).
//! It is the one writer of coordination results; settled windows go to the state store.

mod early;

use std::collections::BTreeMap;
use std::sync::Arc;

use conclave_coord::wire::HexBytes;
use conclave_coord::{
    CoordinationMessage, FaultKind, ProposalGenerator, ProposalValidator, Round, SignedCopy,
    Verdict, Window, WindowSetup,
};
use conclave_core::{Clock, MembershipView, OperatorId, TopicName};
use conclave_net::Delivery;
use tokio::sync::{broadcast, watch};

use self::early::{EarlyProposals, WindowKey};
use crate::chain_view::ChainView;
use crate::config::CoordConfig;
use crate::metrics::NodeMetrics;
use crate::network::NodeNetwork;
use crate::store::StateStore;

/// The topic coordination messages travel on (the registry must grant it as a scope).
pub const COORD_TOPIC: &str = "coord";

pub(crate) struct Coordinator {
    pub cfg: CoordConfig,
    /// The chain as the node acts on it (its source, or the fallback tip).
    pub chain: ChainView,
    pub view: watch::Receiver<Arc<MembershipView>>,
    pub net: NodeNetwork,
    pub deliveries: broadcast::Receiver<Arc<Delivery>>,
    pub store: Arc<StateStore>,
    pub metrics: Arc<NodeMetrics>,
    pub generator: Arc<dyn ProposalGenerator>,
    pub validator: Arc<dyn ProposalValidator>,
    pub shutdown: watch::Receiver<bool>,
}

/// A round in progress and when this member accepted its proposal.
struct Live {
    round: Round,
    accepted_at_ms: Option<u64>,
    /// The accepted proposal as signed (evidence should the leader send another).
    accepted_copy: Option<SignedCopy>,
}

/// Rounds in progress, by coordination block and group; and messages that arrived before their
/// window opened here, replayed when it opens.
#[derive(Default)]
struct Rounds {
    live: BTreeMap<WindowKey, Live>,
    early: EarlyProposals<SignedCopy>,
}

impl Coordinator {
    pub async fn run(mut self) {
        let topic: TopicName = conclave_core::static_topic!(COORD_TOPIC);
        if let Err(e) = self.net.subscribe(topic.clone()).await {
            tracing::error!(error = %e, "coordination cannot subscribe; not running");
            return;
        }
        let mut heads = self.chain.heads();
        let mut last = heads.borrow_and_update().number;
        let mut rounds = Rounds::default();
        loop {
            tokio::select! {
                changed = heads.changed() => {
                    if changed.is_err() { return; }
                    let head = heads.borrow_and_update().number;
                    // What arrived before this head is judged at the head it arrived under:
                    // settling a window first would blame a leader whose proposal is waiting.
                    if !self.drain(&topic, last, &mut rounds) { return; }
                    self.open_windows(last, head, &topic, &mut rounds).await;
                    // Opening awaits the seed block; what arrived meanwhile is for the new head.
                    if !self.drain(&topic, head, &mut rounds) { return; }
                    last = head;
                    self.advance(head, &topic, &mut rounds).await;
                }
                d = self.deliveries.recv() => if !self.received(d, &topic, last, &mut rounds) {
                    return;
                },
                _ = self.shutdown.changed() => return,
            }
        }
    }

    /// Opens the windows that start in `(last, head]` (after a long stall, at most those of the
    /// last `frequency` blocks), except those whose active phase the head already passed.
    async fn open_windows(&mut self, last: u64, head: u64, topic: &TopicName, rounds: &mut Rounds) {
        let from = (last + 1).max(head.saturating_sub(self.cfg.params.frequency));
        for b in from..=head {
            match self.cfg.params.window_at(b) {
                Some(w) if self.cfg.params.joinable(w, head) => {
                    self.open(w, head, topic, rounds).await
                }
                Some(w) => {
                    // Our head jumped past its whole active phase: we could not have seen the
                    // leader's messages, so we do not judge it.
                    tracing::info!(
                        block = w.coordination_block,
                        head,
                        "coordination window missed: the chain head passed its active phase at once"
                    );
                    let missed = crate::metrics::ReasonLabel { reason: "missed" };
                    self.metrics.coord_windows.get_or_create(&missed).inc();
                }
                None => {}
            }
        }
        // What was held for windows now behind us and not opened here has no use.
        rounds.early.forget_through(head);
    }

    /// Handles every delivery already waiting, at `head`; false once the stream has closed.
    fn drain(&mut self, topic: &TopicName, head: u64, rounds: &mut Rounds) -> bool {
        loop {
            let d = match self.deliveries.try_recv() {
                Ok(d) => Ok(d),
                Err(broadcast::error::TryRecvError::Empty) => return true,
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    Err(broadcast::error::RecvError::Lagged(n))
                }
                Err(broadcast::error::TryRecvError::Closed) => {
                    Err(broadcast::error::RecvError::Closed)
                }
            };
            if !self.received(d, topic, head, rounds) {
                return false;
            }
        }
    }

    /// One item of the delivery stream; false once the stream has closed.
    fn received(
        &mut self,
        d: Result<Arc<Delivery>, broadcast::error::RecvError>,
        topic: &TopicName,
        head: u64,
        rounds: &mut Rounds,
    ) -> bool {
        match d {
            Ok(d) if d.topic == *topic => self.on_delivery(&d, head, rounds),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "coordination fell behind the delivery stream");
                let lagged = crate::metrics::ReasonLabel { reason: "lagged" };
                self.metrics.coord_dropped.get_or_create(&lagged).inc_by(n);
            }
            Err(broadcast::error::RecvError::Closed) => return false,
        }
        true
    }

    /// This node's operator, from the view (whatever key it runs under now).
    fn me(&self, view: &MembershipView) -> Option<OperatorId> {
        let peer = self.net.current().local_peer_id();
        view.nodes()
            .find(|(p, _)| **p == peer)
            .map(|(_, a)| a.operator)
    }

    /// Opens `w` for each of this member's groups at `head` (leading: proposes; following:
    /// judges what was held for it).
    async fn open(&mut self, w: Window, head: u64, topic: &TopicName, rounds: &mut Rounds) {
        let view = self.view.borrow().clone();
        let Some(me) = self.me(&view) else { return };
        let mine: Vec<_> = view
            .groups()
            .iter()
            .filter(|g| g.seats.contains(&me))
            .collect();
        if mine.is_empty() {
            return;
        }
        // One seed block per window, whatever the number of groups.
        let safe_block_hash = match self.chain.block_hash(self.cfg.params.safe_block(w)).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(block = w.coordination_block, error = %e, "no safe block hash; skipping the window");
                return;
            }
        };
        for group in mine {
            let mut round = Round::new(WindowSetup {
                params: self.cfg.params,
                policy: self.cfg.policy,
                window: w,
                group: group.id,
                seats: group.seats.clone(),
                safe_block_hash,
                me,
            });
            tracing::info!(group = %group.id, window = w.index, block = w.coordination_block, leader = ?round.leader(), leads = round.leads(), checklist = ?round.checklist(), "coordination window opened");
            if round.leads() {
                let proposal =
                    self.generator
                        .generate(&group.id, w.coordination_block, round.checklist());
                if let Some(msg) = proposal.and_then(|p| round.propose(p)) {
                    self.send(topic, &msg).await;
                }
            }
            let key = (w.coordination_block, group.id.0);
            let mut live = Live {
                round,
                accepted_at_ms: None,
                accepted_copy: None,
            };
            for (sender, msg, copy) in rounds.early.take(key) {
                self.judge(&mut live, key, sender, &msg, head, Some(copy));
            }
            rounds.live.insert(key, live);
        }
    }

    async fn send(&self, topic: &TopicName, msg: &CoordinationMessage) {
        if let Err(e) = self.net.publish(topic.clone(), msg.encode()).await {
            tracing::warn!(error = %e, "coordination proposal not sent");
        }
    }

    /// Resends leaders' proposals on the new block and settles finished windows.
    async fn advance(&mut self, head: u64, topic: &TopicName, rounds: &mut Rounds) {
        let mut settled = Vec::new();
        for (key, live) in rounds.live.iter_mut() {
            let round = &mut live.round;
            if key.0 < head {
                if let Some(msg) = round.resend_at(head).cloned() {
                    self.send(topic, &msg).await;
                }
            }
            if let Some(mut outcome) = round.on_block(head) {
                outcome.accepted_at_ms = live.accepted_at_ms;
                settled.push(*key);
                for f in &outcome.faults {
                    tracing::warn!(kind = ?f.kind, culprit = %f.culprit, group = %f.group, block = f.coordination_block, "coordination fault recorded");
                    self.metrics
                        .coord_faults
                        .get_or_create(&crate::metrics::KindLabel {
                            kind: fault_label(f.kind),
                        })
                        .inc();
                }
                let result = if round.leads() {
                    "led"
                } else if outcome.proposal.is_some() {
                    "accepted"
                } else {
                    "none"
                };
                self.metrics
                    .coord_windows
                    .get_or_create(&crate::metrics::ReasonLabel { reason: result })
                    .inc();
                let store = self.store.clone();
                let written =
                    tokio::task::spawn_blocking(move || store.record_window(&outcome)).await;
                if !matches!(written, Ok(Ok(()))) {
                    tracing::error!(?written, "coordination result not persisted");
                }
            }
        }
        for k in settled {
            rounds.live.remove(&k);
        }
    }

    fn on_delivery(&mut self, d: &Delivery, head: u64, rounds: &mut Rounds) {
        let drop = |reason: &'static str| {
            self.metrics
                .coord_dropped
                .get_or_create(&crate::metrics::ReasonLabel { reason })
                .inc();
        };
        let msg = match CoordinationMessage::decode(&d.payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, from = %d.source, "not a coordination message");
                return drop("undecodable");
            }
        };
        let key = (msg.coordination_block, msg.wallet_public_key_hash.0);
        let Some(live) = rounds.live.get_mut(&key) else {
            // A window this node has not reached yet: hold the sender's latest message for it.
            if let Err(not) =
                rounds
                    .early
                    .hold(d.operator, msg, signed_copy(d), head, &self.cfg.params)
            {
                drop(not.label());
            }
            return;
        };
        self.judge(live, key, d.operator, &msg, head, Some(signed_copy(d)));
    }

    /// The follower routine for one message in a window in progress.
    /// `copy`: the message as signed (also for one held from before its window opened).
    fn judge(
        &self,
        live: &mut Live,
        key: (u64, [u8; 20]),
        sender: OperatorId,
        msg: &CoordinationMessage,
        head: u64,
        copy: Option<SignedCopy>,
    ) {
        match live.round.on_message(sender, msg, head) {
            Verdict::Accept(p) => {
                live.accepted_at_ms = Some(conclave_core::SystemClock.now_ms());
                live.accepted_copy = copy;
                match self
                    .validator
                    .validate(&conclave_core::GroupId(key.1), key.0, &p)
                {
                    Ok(()) => {
                        tracing::info!(group = %conclave_core::GroupId(key.1), block = key.0, action = ?p.action(), "coordination proposal accepted")
                    }
                    Err(reason) => tracing::warn!(%reason, "accepted proposal failed validation"),
                }
            }
            Verdict::Fault(f) if f.kind == FaultKind::LeaderEquivocation => {
                tracing::warn!(culprit = %f.culprit, group = %conclave_core::GroupId(key.1), block = key.0, "the leader sent two different proposals in one window");
                let evidence = live.accepted_copy.clone().into_iter().chain(copy).collect();
                live.round.attach_evidence(f.kind, f.culprit, evidence);
            }
            Verdict::Fault(_) => {}
            Verdict::Drop(r) => {
                let label = crate::metrics::ReasonLabel {
                    reason: drop_label(r),
                };
                self.metrics.coord_dropped.get_or_create(&label).inc();
            }
        }
    }
}

/// A delivered message as signed, for fault evidence.
fn signed_copy(d: &Delivery) -> SignedCopy {
    SignedCopy {
        node: d.source.to_string(),
        topic: d.topic.to_string(),
        timestamp_ms: d.timestamp_ms,
        nonce: d.nonce,
        payload: HexBytes(d.payload.clone()),
        signature: HexBytes(d.signature.clone()),
    }
}

fn fault_label(k: conclave_coord::FaultKind) -> &'static str {
    match k {
        conclave_coord::FaultKind::LeaderImpersonation => "leader_impersonation",
        conclave_coord::FaultKind::LeaderMistake => "leader_mistake",
        conclave_coord::FaultKind::LeaderIdleness => "leader_idleness",
        conclave_coord::FaultKind::LeaderEquivocation => "leader_equivocation",
    }
}

fn drop_label(r: conclave_coord::DropReason) -> &'static str {
    use conclave_coord::DropReason as D;
    match r {
        D::OwnSeat => "own_seat",
        D::SeatNotSenders => "seat_not_senders",
        D::WrongCoordinationBlock => "wrong_block",
        D::WrongGroup => "wrong_group",
        D::AlreadyAccepted => "already_accepted",
        D::OutsideActivePhase => "outside_active_phase",
    }
}
