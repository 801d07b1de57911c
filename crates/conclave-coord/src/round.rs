//! One coordination window as one member lives it: a sans-IO state machine fed with delivered
//! messages and block heights. The leader sends its proposal (and resends it on new blocks while
//! the active phase lasts); followers judge each message with the checks of keep-core's follower
//! routine, in keep-core's order, accept the first valid proposal and record the leader's faults.

use conclave_core::{GroupId, OperatorId};
use serde::{Deserialize, Serialize};

use crate::leader::{checklist, leader, seed, ChecklistPolicy};
use crate::window::{Phase, Window, WindowParams};
use crate::wire::{ActionType, Bytes20, CoordinationMessage, HexBytes, Proposal};

/// A fault a follower records against the window's leader (or a would-be leader).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    /// A member that is not the leader proposed.
    LeaderImpersonation,
    /// The leader proposed an action not on the window's checklist.
    LeaderMistake,
    /// The leader proposed nothing during the active phase.
    LeaderIdleness,
    /// The leader sent two different proposals in one window (keep-core's follower stops
    /// listening after the first and never sees this).
    LeaderEquivocation,
}

/// One signed message as it travelled, so anyone holding it can check that the culprit's node
/// key signed it: the envelope's fields (see `conclave_core::Envelope::signing_bytes`), its
/// topic and the signing node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCopy {
    /// The signing node's PeerId.
    pub node: String,
    pub topic: String,
    pub timestamp_ms: u64,
    pub nonce: u64,
    pub payload: HexBytes,
    pub signature: HexBytes,
}

/// A recorded fault: who, what, in which window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// The operator at fault (the sender of the message, or the idle leader).
    pub culprit: OperatorId,
    pub group: GroupId,
    pub coordination_block: u64,
    /// The signed messages that prove it, when the fault is in what was sent (an equivocation:
    /// both proposals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<SignedCopy>,
}

/// Why a message was ignored without blame (it is not evidence against anyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// Our own seat's message coming back.
    OwnSeat,
    /// The seat in the message is not held by the operator whose key signed it.
    SeatNotSenders,
    WrongCoordinationBlock,
    WrongGroup,
    /// A proposal was already accepted in this window.
    AlreadyAccepted,
    /// Outside the active phase.
    OutsideActivePhase,
}

/// What the follower routine made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Drop(DropReason),
    Fault(Fault),
    Accept(Proposal),
}

/// What a member needs to know about a window before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSetup {
    pub params: WindowParams,
    pub policy: ChecklistPolicy,
    pub window: Window,
    pub group: GroupId,
    /// Ordered seats (seat i + 1 is `seats[i]`, as keep-core's member indexes).
    pub seats: Vec<OperatorId>,
    /// The hash of the window's safe block.
    pub safe_block_hash: [u8; 32],
    /// This node's operator.
    pub me: OperatorId,
}

/// The final state of a window for this member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOutcome {
    pub group: GroupId,
    pub coordination_block: u64,
    pub index: u64,
    pub leader: Option<OperatorId>,
    pub checklist: Vec<ActionType>,
    /// The accepted proposal (or, for the leader, the one it sent).
    pub proposal: Option<Proposal>,
    pub faults: Vec<Fault>,
    /// When this member accepted the proposal (unix ms; stamped by the executor, which owns the
    /// clock). Absent for leaders and for windows without an accepted proposal.
    #[serde(default)]
    pub accepted_at_ms: Option<u64>,
}

/// One window in progress.
#[derive(Debug, Clone)]
pub struct Round {
    setup: WindowSetup,
    leader: Option<OperatorId>,
    checklist: Vec<ActionType>,
    accepted: Option<Proposal>,
    /// The seat the accepted proposal came from (a second proposal from it is an equivocation).
    accepted_seat: Option<u8>,
    faults: Vec<Fault>,
    /// The message the leader sends (set when this member leads and has a proposal).
    outgoing: Option<CoordinationMessage>,
    finished: bool,
}

impl Round {
    /// Computes the window's leader and checklist from its seed.
    pub fn new(setup: WindowSetup) -> Self {
        let s = seed(&setup.group, &setup.safe_block_hash);
        let leader = leader(&s, &setup.seats);
        let checklist = checklist(setup.window.index, &s, &setup.policy).unwrap_or_default();
        Round {
            setup,
            leader,
            checklist,
            accepted: None,
            accepted_seat: None,
            faults: Vec::new(),
            outgoing: None,
            finished: false,
        }
    }

    /// The operator that leads this window (`None` for a group without seats).
    pub fn leader(&self) -> Option<OperatorId> {
        self.leader
    }

    /// The actions a proposal may carry this window (Noop is always allowed).
    pub fn checklist(&self) -> &[ActionType] {
        &self.checklist
    }

    /// Whether this member leads the window.
    pub fn leads(&self) -> bool {
        self.leader == Some(self.setup.me)
    }

    /// Our first seat (1-based), the sender id our messages carry.
    fn my_seat(&self) -> Option<u8> {
        let i = self.setup.seats.iter().position(|o| *o == self.setup.me)?;
        u8::try_from(i + 1).ok()
    }

    /// As leader: the message to send for `proposal` (kept for resending). `None` if this member
    /// does not lead or holds no seat a message could name.
    pub fn propose(&mut self, proposal: Proposal) -> Option<CoordinationMessage> {
        if !self.leads() {
            return None;
        }
        let msg = CoordinationMessage {
            sender_id: self.my_seat()?,
            coordination_block: self.setup.window.coordination_block,
            wallet_public_key_hash: Bytes20(self.setup.group.0),
            proposal,
        };
        self.outgoing = Some(msg.clone());
        Some(msg)
    }

    /// The leader's message to (re)send at `block`: during the active phase only.
    pub fn resend_at(&self, block: u64) -> Option<&CoordinationMessage> {
        match self.setup.params.phase(self.setup.window, block) {
            Phase::Active { .. } => self.outgoing.as_ref(),
            _ => None,
        }
    }

    /// The follower routine for one delivered message, signed by a key of `sender`, at `block`.
    pub fn on_message(
        &mut self,
        sender: OperatorId,
        msg: &CoordinationMessage,
        block: u64,
    ) -> Verdict {
        // keep-core's follower stops listening once it accepted a proposal; this one goes on
        // listening to the leader, for a second, different proposal.
        if let Some(accepted) = &self.accepted {
            return self.after_acceptance(sender, msg, block, accepted.clone());
        }
        let s = &self.setup;
        let seat_holder = usize::from(msg.sender_id)
            .checked_sub(1)
            .and_then(|i| s.seats.get(i))
            .copied();
        if seat_holder == Some(s.me) || sender == s.me {
            return Verdict::Drop(DropReason::OwnSeat);
        }
        if seat_holder != Some(sender) {
            return Verdict::Drop(DropReason::SeatNotSenders);
        }
        if msg.coordination_block != s.window.coordination_block {
            return Verdict::Drop(DropReason::WrongCoordinationBlock);
        }
        if msg.wallet_public_key_hash.0 != s.group.0 {
            return Verdict::Drop(DropReason::WrongGroup);
        }
        if !matches!(s.params.phase(s.window, block), Phase::Active { .. }) {
            return Verdict::Drop(DropReason::OutsideActivePhase);
        }
        let fault = |kind| Fault {
            kind,
            culprit: sender,
            group: s.group,
            coordination_block: s.window.coordination_block,
            evidence: Vec::new(),
        };
        if Some(sender) != self.leader {
            let f = fault(FaultKind::LeaderImpersonation);
            self.record(f.clone());
            return Verdict::Fault(f);
        }
        let action = msg.proposal.action();
        if action != ActionType::Noop && !self.checklist.contains(&action) {
            let f = fault(FaultKind::LeaderMistake);
            self.record(f.clone());
            return Verdict::Fault(f);
        }
        self.accepted = Some(msg.proposal.clone());
        self.accepted_seat = Some(msg.sender_id);
        Verdict::Accept(msg.proposal.clone())
    }

    /// A message after a proposal was accepted: the leader's own, for this window, during the
    /// active phase and different from what was accepted, is an equivocation; anything else is
    /// dropped as before.
    fn after_acceptance(
        &mut self,
        sender: OperatorId,
        msg: &CoordinationMessage,
        block: u64,
        accepted: Proposal,
    ) -> Verdict {
        let s = &self.setup;
        let same_window = msg.coordination_block == s.window.coordination_block
            && msg.wallet_public_key_hash.0 == s.group.0;
        let from_leader = Some(sender) == self.leader
            && self.accepted_seat.is_some()
            && usize::from(msg.sender_id)
                .checked_sub(1)
                .and_then(|i| s.seats.get(i))
                == Some(&sender);
        let active = matches!(s.params.phase(s.window, block), Phase::Active { .. });
        if !(same_window && from_leader && active) || msg.proposal == accepted {
            return Verdict::Drop(DropReason::AlreadyAccepted);
        }
        let f = Fault {
            kind: FaultKind::LeaderEquivocation,
            culprit: sender,
            group: s.group,
            coordination_block: s.window.coordination_block,
            evidence: Vec::new(),
        };
        self.record(f.clone());
        Verdict::Fault(f)
    }

    /// Attaches the signed messages that prove a recorded fault (the executor holds them;
    /// this state machine sees only decoded messages). Evidence already attached stays.
    pub fn attach_evidence(
        &mut self,
        kind: FaultKind,
        culprit: OperatorId,
        evidence: Vec<SignedCopy>,
    ) {
        if let Some(f) = self
            .faults
            .iter_mut()
            .find(|f| f.kind == kind && f.culprit == culprit && f.evidence.is_empty())
        {
            f.evidence = evidence;
        }
    }

    /// Records a fault once per culprit and kind (a resending impostor is one fault).
    fn record(&mut self, f: Fault) {
        if !self
            .faults
            .iter()
            .any(|g| g.kind == f.kind && g.culprit == f.culprit)
        {
            self.faults.push(f);
        }
    }

    /// Advances to `block`. Once the active phase is over the window is settled: a follower that
    /// accepted nothing records the leader's idleness. Returns the outcome exactly once.
    pub fn on_block(&mut self, block: u64) -> Option<WindowOutcome> {
        if self.finished {
            return None;
        }
        let (params, window, group) = (self.setup.params, self.setup.window, self.setup.group);
        if block < window.coordination_block
            || matches!(params.phase(window, block), Phase::Active { .. })
        {
            return None;
        }
        self.finished = true;
        if !self.leads() && self.accepted.is_none() {
            if let Some(leader) = self.leader {
                self.record(Fault {
                    kind: FaultKind::LeaderIdleness,
                    culprit: leader,
                    group,
                    coordination_block: window.coordination_block,
                    evidence: Vec::new(),
                });
            }
        }
        let s = &self.setup;
        Some(WindowOutcome {
            group: s.group,
            coordination_block: s.window.coordination_block,
            index: s.window.index,
            leader: self.leader,
            checklist: self.checklist.clone(),
            proposal: if self.leads() {
                self.outgoing.as_ref().map(|m| m.proposal.clone())
            } else {
                self.accepted.clone()
            },
            faults: self.faults.clone(),
            accepted_at_ms: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Vec<OperatorId> {
        (1..=4u8).map(|i| OperatorId([i * 0x11; 20])).collect()
    }

    fn setup(me: OperatorId) -> WindowSetup {
        let o = ops();
        WindowSetup {
            params: WindowParams::default(),
            policy: ChecklistPolicy::default(),
            window: WindowParams::default().window_at(900).unwrap(),
            group: GroupId([0xab; 20]),
            // Repeated seats: operator 0 holds seats 1 and 5.
            seats: vec![o[0], o[1], o[2], o[3], o[0]],
            safe_block_hash: [5; 32],
            me,
        }
    }

    /// The rounds of every operator, and which one leads.
    fn rounds() -> (Vec<Round>, usize) {
        let rs: Vec<Round> = ops().into_iter().map(|o| Round::new(setup(o))).collect();
        let l = rs.iter().position(|r| r.leads()).expect("someone leads");
        assert_eq!(rs.iter().filter(|r| r.leads()).count(), 1);
        assert!(rs.iter().all(|r| r.leader() == rs[l].leader()));
        (rs, l)
    }

    #[test]
    fn every_follower_accepts_the_leaders_proposal_once() {
        let (mut rs, l) = rounds();
        let msg = rs[l].propose(Proposal::Noop).unwrap();
        let leader_op = ops()[l];
        for (i, r) in rs.iter_mut().enumerate() {
            let v = r.on_message(leader_op, &msg, 900);
            if i == l {
                assert_eq!(v, Verdict::Drop(DropReason::OwnSeat));
            } else {
                assert_eq!(v, Verdict::Accept(Proposal::Noop));
                // The resend is not accepted twice.
                assert_eq!(
                    r.on_message(leader_op, &msg, 901),
                    Verdict::Drop(DropReason::AlreadyAccepted)
                );
            }
        }
        assert!(rs[l].resend_at(979).is_some() && rs[l].resend_at(980).is_none());
        for r in rs.iter_mut() {
            assert_eq!(r.on_block(979), None);
            let out = r.on_block(980).unwrap();
            assert_eq!(out.proposal, Some(Proposal::Noop));
            assert!(out.faults.is_empty());
            assert_eq!(r.on_block(981), None, "settled once");
        }
    }

    #[test]
    fn a_leader_sending_a_second_different_proposal_is_an_equivocation_with_evidence() {
        let (mut rs, l) = rounds();
        let leader_op = ops()[l];
        let first = rs[l].propose(Proposal::Noop).unwrap();
        let second = CoordinationMessage {
            proposal: Proposal::Heartbeat {
                message: HexBytes(vec![0xee; 16]),
            },
            ..first.clone()
        };
        let judge = (l + 1) % 4;
        assert_eq!(
            rs[judge].on_message(leader_op, &first, 900),
            Verdict::Accept(Proposal::Noop)
        );
        // The same proposal again is a resend; another one is an equivocation, once.
        assert_eq!(
            rs[judge].on_message(leader_op, &first, 901),
            Verdict::Drop(DropReason::AlreadyAccepted)
        );
        let Verdict::Fault(f) = rs[judge].on_message(leader_op, &second, 902) else {
            panic!("not a fault");
        };
        assert_eq!(
            (f.kind, f.culprit),
            (FaultKind::LeaderEquivocation, leader_op)
        );
        let _ = rs[judge].on_message(leader_op, &second, 903);
        let copy = |p: u8| SignedCopy {
            node: "12D3Koo".into(),
            topic: "coord".into(),
            timestamp_ms: 1,
            nonce: u64::from(p),
            payload: HexBytes(vec![p]),
            signature: HexBytes(vec![p; 64]),
        };
        rs[judge].attach_evidence(
            FaultKind::LeaderEquivocation,
            leader_op,
            vec![copy(1), copy(2)],
        );
        let out = rs[judge].on_block(980).unwrap();
        assert_eq!(
            out.proposal,
            Some(Proposal::Noop),
            "the first stays accepted"
        );
        assert_eq!(out.faults.len(), 1, "{:?}", out.faults);
        assert_eq!(out.faults[0].evidence, vec![copy(1), copy(2)]);
        // Not the leader's seat, or outside the active phase: nothing new.
        let (mut rs, l) = rounds();
        let first = rs[l].propose(Proposal::Noop).unwrap();
        let judge = (l + 1) % 4;
        let _ = rs[judge].on_message(leader_op, &first, 900);
        assert_eq!(
            rs[judge].on_message(leader_op, &second, 985),
            Verdict::Drop(DropReason::AlreadyAccepted)
        );
    }

    #[test]
    fn impersonation_mistake_and_idleness_are_recorded() {
        let (mut rs, l) = rounds();
        let o = ops();
        let impostor = (l + 1) % 4;
        let seat_of = |op: usize| -> u8 { (op + 1) as u8 };
        let fake = CoordinationMessage {
            sender_id: seat_of(impostor),
            coordination_block: 900,
            wallet_public_key_hash: Bytes20([0xab; 20]),
            proposal: Proposal::Noop,
        };
        let judge = (l + 2) % 4;
        match rs[judge].on_message(o[impostor], &fake, 900) {
            Verdict::Fault(f) => {
                assert_eq!(f.kind, FaultKind::LeaderImpersonation);
                assert_eq!(f.culprit, o[impostor]);
            }
            v => panic!("{v:?}"),
        }
        // A seat the signer does not hold is dropped, not blamed.
        assert_eq!(
            rs[judge].on_message(
                o[impostor],
                &CoordinationMessage {
                    sender_id: seat_of(l),
                    ..fake.clone()
                },
                900
            ),
            Verdict::Drop(DropReason::SeatNotSenders)
        );
        // Wrong block, wrong group, outside the phase: dropped.
        let from_leader = CoordinationMessage {
            sender_id: seat_of(l),
            ..fake.clone()
        };
        assert_eq!(
            rs[judge].on_message(
                o[l],
                &CoordinationMessage {
                    coordination_block: 1800,
                    ..from_leader.clone()
                },
                900
            ),
            Verdict::Drop(DropReason::WrongCoordinationBlock)
        );
        assert_eq!(
            rs[judge].on_message(
                o[l],
                &CoordinationMessage {
                    wallet_public_key_hash: Bytes20([1; 20]),
                    ..from_leader.clone()
                },
                900
            ),
            Verdict::Drop(DropReason::WrongGroup)
        );
        assert_eq!(
            rs[judge].on_message(o[l], &from_leader, 980),
            Verdict::Drop(DropReason::OutsideActivePhase)
        );
        // The leader proposing what the checklist does not hold is a mistake.
        let checklist = rs[judge].checklist().to_vec();
        assert!(
            !checklist.contains(&ActionType::MovingFunds),
            "window 1 has no MovingFunds"
        );
        let wrong = CoordinationMessage {
            proposal: Proposal::MovingFunds {
                target_wallets: vec![],
                moving_funds_tx_fee: 1,
            },
            ..from_leader.clone()
        };
        match rs[judge].on_message(o[l], &wrong, 901) {
            Verdict::Fault(f) => assert_eq!(f.kind, FaultKind::LeaderMistake),
            v => panic!("{v:?}"),
        }
        // Nothing valid arrived: the leader was idle too.
        let out = rs[judge].on_block(980).unwrap();
        let kinds: Vec<FaultKind> = out.faults.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FaultKind::LeaderImpersonation,
                FaultKind::LeaderMistake,
                FaultKind::LeaderIdleness
            ]
        );
        assert_eq!(out.proposal, None);
        // The leader itself never blames itself for idleness.
        assert!(rs[l].on_block(980).unwrap().faults.is_empty());
    }

    #[test]
    fn the_leader_signs_with_its_first_seat_and_only_the_leader_proposes() {
        let (mut rs, l) = rounds();
        let follower = (l + 1) % 4;
        assert!(rs[follower].propose(Proposal::Noop).is_none());
        let hb = Proposal::Heartbeat {
            message: HexBytes(vec![0xff; 16]),
        };
        let msg = rs[l].propose(hb).unwrap();
        assert_eq!(
            msg.sender_id,
            (l + 1) as u8,
            "operator {l} sits first at seat {}",
            l + 1
        );
        assert_eq!(CoordinationMessage::decode(&msg.encode()).unwrap(), msg);
    }
}
