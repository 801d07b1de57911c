//! The stem's routing decisions, sans IO: the worker feeds it verified frames, the connected
//! candidates and the time, and carries out what it returns.
//!
//! Per stem epoch a node picks two successors among the candidates. Each predecessor is bound
//! to one of them for the whole epoch, and own messages always take the same one: Dandelion++
//! shows that a fresh random choice per message lets colluders fingerprint the sender, while a
//! fixed one-to-one mapping does not. A relayed frame is fluffed with probability q, otherwise
//! forwarded after a random delay; every frame a node sends on is held until it shows up in
//! gossip, or the fail-safe fluffs it.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use conclave_core::{PeerId, TopicName};
use libp2p::gossipsub::MessageId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::StemConfig;

/// An anonymous frame on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub topic: TopicName,
    pub data: Vec<u8>,
}

/// Why a frame leaves the stem for gossip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FluffCause {
    /// The q coin (relayed frames only).
    Coin,
    /// No candidate to forward to.
    NoSuccessor,
    /// The fail-safe table is full.
    HeldFull,
    /// The successor could not be reached or refused the frame.
    Unreachable,
    /// Held too long without being seen in gossip.
    Failsafe,
}

impl FluffCause {
    pub fn label(self) -> &'static str {
        match self {
            FluffCause::Coin => "coin",
            FluffCause::NoSuccessor => "no_successor",
            FluffCause::HeldFull => "held_full",
            FluffCause::Unreachable => "unreachable",
            FluffCause::Failsafe => "failsafe",
        }
    }
}

/// What to do with a verified frame now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Gossip it now.
    Fluff(Frame, FluffCause),
    /// Held; its send comes out of [`StemRouter::poll`] when due.
    Scheduled { to: PeerId },
    /// Held here already (an own frame again, or one that came back too often): nothing to do.
    Duplicate,
}

/// Work that has come due.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Send {
        to: PeerId,
        id: MessageId,
        frame: Frame,
    },
    /// The fail-safe fired; `own` tells the caller's counters to stay silent about it.
    Fluff { frame: Frame, own: bool },
}

struct Held {
    frame: Frame,
    to: PeerId,
    own: bool,
    /// How often it came back (a loop); bounded, so two members cannot bounce it forever.
    returns: u8,
}

/// Returns of one frame routed on; beyond it the frame is left to gossip and the fail-safe.
const MAX_RETURNS: u8 = 3;

pub(crate) struct StemRouter {
    cfg: StemConfig,
    epoch_started: Option<Instant>,
    successors: [Option<PeerId>; 2],
    own_slot: usize,
    /// Predecessor → successor slot, fixed for the epoch (at most one entry per member).
    slot_of: HashMap<PeerId, usize>,
    held: HashMap<MessageId, Held>,
    /// Delayed sends and fail-safe deadlines; entries whose frame is no longer held are stale
    /// and skipped.
    sends: BTreeMap<(Instant, u64), MessageId>,
    failsafes: BTreeMap<(Instant, u64), MessageId>,
    seq: u64,
    rng: StdRng,
}

impl StemRouter {
    pub fn new(cfg: StemConfig, seed: u64) -> Self {
        StemRouter {
            cfg,
            epoch_started: None,
            successors: [None, None],
            own_slot: 0,
            slot_of: HashMap::new(),
            held: HashMap::new(),
            sends: BTreeMap::new(),
            failsafes: BTreeMap::new(),
            seq: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn config(&self) -> &StemConfig {
        &self.cfg
    }

    /// Routes a verified frame that came from `from` (`None`: our own). Own frames never
    /// fluff by the coin: they always start on the stem.
    pub fn route(
        &mut self,
        from: Option<PeerId>,
        id: MessageId,
        frame: Frame,
        candidates: &[PeerId],
        now: Instant,
    ) -> Routed {
        let again = match self.held.get_mut(&id) {
            Some(h) if from.is_none() || h.returns >= MAX_RETURNS => return Routed::Duplicate,
            Some(h) => {
                h.returns += 1;
                true
            }
            None => false,
        };
        // A frame back on a node that holds it (the walk looped) is routed like any relayed
        // one, author or not: dropping it would leave it to the fail-safes, and the author's,
        // started first, would usually fire first and gossip it from its author.
        if from.is_some()
            && self
                .rng
                .gen_bool(self.cfg.fluff_probability.clamp(0.0, 1.0))
        {
            self.held.remove(&id);
            return Routed::Fluff(frame, FluffCause::Coin);
        }
        let Some(to) = self.successor(from, candidates, now) else {
            self.held.remove(&id);
            return Routed::Fluff(frame, FluffCause::NoSuccessor);
        };
        if again {
            let delay = self.uniform(self.cfg.hop_delay);
            self.seq += 1;
            self.sends.insert((now + delay, self.seq), id.clone());
            if let Some(h) = self.held.get_mut(&id) {
                h.to = to;
            }
            return Routed::Scheduled { to };
        }
        if self.held.len() >= self.cfg.held_capacity {
            return Routed::Fluff(frame, FluffCause::HeldFull);
        }
        let delay = match from {
            None => Duration::ZERO,
            Some(_) => self.uniform(self.cfg.hop_delay),
        };
        let failsafe = self.cfg.failsafe + self.exponential(self.cfg.failsafe / 2);
        self.seq += 1;
        self.sends.insert((now + delay, self.seq), id.clone());
        self.failsafes
            .insert((now + failsafe, self.seq), id.clone());
        let own = from.is_none();
        self.held.insert(
            id,
            Held {
                frame,
                to,
                own,
                returns: 0,
            },
        );
        Routed::Scheduled { to }
    }

    /// The frame was gossiped by someone: the stem did its job, stop holding it. True if it
    /// was held here.
    pub fn seen_in_gossip(&mut self, id: &MessageId) -> bool {
        self.held.remove(id).is_some()
    }

    /// The successor could not take the frame: fluff it now (if still held); whether it was
    /// our own.
    pub fn send_failed(&mut self, id: &MessageId) -> Option<(Frame, bool)> {
        self.held.remove(id).map(|h| (h.frame, h.own))
    }

    /// Sends and fail-safe fluffs due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Due> {
        let mut due = Vec::new();
        while let Some(entry) = self.sends.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            if let Some(h) = self.held.get(&id) {
                let (to, frame) = (h.to, h.frame.clone());
                due.push(Due::Send { to, id, frame });
            }
        }
        while let Some(entry) = self.failsafes.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            if let Some(h) = self.held.remove(&id) {
                due.push(Due::Fluff {
                    frame: h.frame,
                    own: h.own,
                });
            }
        }
        due
    }

    /// When [`Self::poll`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let first = |m: &BTreeMap<(Instant, u64), MessageId>| m.keys().next().map(|k| k.0);
        match (first(&self.sends), first(&self.failsafes)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn holds(&self, id: &MessageId) -> bool {
        self.held.contains_key(id)
    }

    /// The successor for frames from `from` in the current epoch, never `from` itself.
    fn successor(
        &mut self,
        from: Option<PeerId>,
        candidates: &[PeerId],
        now: Instant,
    ) -> Option<PeerId> {
        let epoch_over = self
            .epoch_started
            .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.epoch);
        if epoch_over {
            self.epoch_started = Some(now);
            self.successors = [None, None];
            self.slot_of.clear();
            self.own_slot = self.rng.gen_range(0..2);
        }
        // A successor that left is replaced for the rest of the epoch; its predecessors keep
        // their slot.
        for slot in 0..2 {
            let current = self.successors[slot];
            if current.is_some_and(|p| candidates.contains(&p)) {
                continue;
            }
            let other = self.successors[1 - slot];
            let choices: Vec<PeerId> = candidates
                .iter()
                .copied()
                .filter(|p| Some(*p) != other)
                .collect();
            self.successors[slot] = match choices.len() {
                0 => other.filter(|p| candidates.contains(p)),
                n => Some(choices[self.rng.gen_range(0..n)]),
            };
        }
        let slot = match from {
            None => self.own_slot,
            Some(p) => match self.slot_of.get(&p) {
                Some(s) => *s,
                None => {
                    let s = self.rng.gen_range(0..2);
                    self.slot_of.insert(p, s);
                    s
                }
            },
        };
        [self.successors[slot], self.successors[1 - slot]]
            .into_iter()
            .flatten()
            .find(|s| Some(*s) != from)
    }

    fn uniform(&mut self, max: Duration) -> Duration {
        let ms = max.as_millis() as u64;
        Duration::from_millis(self.rng.gen_range(0..=ms))
    }

    /// An exponentially distributed delay with this mean, capped at four means: fail-safe
    /// timers of the nodes on a path then expire in no fixed order, so the one that fluffs a
    /// lost frame is not predictably its author.
    fn exponential(&mut self, mean: Duration) -> Duration {
        let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        mean.mul_f64((-u.ln()).min(4.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> (MessageId, Frame) {
        let topic: TopicName = "anon".parse().unwrap_or_else(|_| unreachable!());
        (
            MessageId::from(vec![n]),
            Frame {
                topic,
                data: vec![n],
            },
        )
    }

    fn router(q: f64) -> StemRouter {
        let cfg = StemConfig {
            fluff_probability: q,
            ..StemConfig::default()
        };
        StemRouter::new(cfg, 7)
    }

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    fn scheduled_to(r: Routed) -> PeerId {
        match r {
            Routed::Scheduled { to } => to,
            other => panic!("expected a stem hop, got {other:?}"),
        }
    }

    #[test]
    fn own_frames_always_start_on_the_stem_and_take_one_successor_per_epoch() {
        let mut r = router(1.0);
        let (cands, now) = (peers(6), Instant::now());
        let first = scheduled_to(r.route(None, frame(0).0, frame(0).1, &cands, now));
        for n in 1..40 {
            let (id, f) = frame(n);
            let later = now + Duration::from_secs(u64::from(n));
            assert_eq!(scheduled_to(r.route(None, id, f, &cands, later)), first);
        }
    }

    #[test]
    fn each_predecessor_keeps_its_successor_and_is_never_sent_its_own_frame_back() {
        let mut r = router(0.0);
        let (cands, now) = (peers(8), Instant::now());
        let mut mapping = HashMap::new();
        let mut n = 0u8;
        for round in 0..5 {
            for pred in &cands {
                n += 1;
                let (id, f) = frame(n);
                let to = scheduled_to(r.route(Some(*pred), id, f, &cands, now));
                assert_ne!(to, *pred);
                assert_eq!(*mapping.entry(*pred).or_insert(to), to, "round {round}");
            }
        }
        let successors: std::collections::HashSet<_> = mapping.values().collect();
        assert!(successors.len() <= 2, "two successors per epoch");
    }

    #[test]
    fn a_new_epoch_picks_successors_again() {
        let mut r = router(0.0);
        let (cands, now) = (peers(12), Instant::now());
        let mut picks = std::collections::HashSet::new();
        for e in 0..8u8 {
            let at = now + r.config().epoch * u32::from(e);
            let (id, f) = frame(e);
            picks.insert(scheduled_to(r.route(None, id, f, &cands, at)));
        }
        assert!(picks.len() > 1, "successors change between epochs");
    }

    #[test]
    fn a_successor_that_left_is_replaced() {
        let mut r = router(0.0);
        let (mut cands, now) = (peers(5), Instant::now());
        let gone = scheduled_to(r.route(None, frame(1).0, frame(1).1, &cands, now));
        cands.retain(|p| *p != gone);
        let next = scheduled_to(r.route(None, frame(2).0, frame(2).1, &cands, now));
        assert!(cands.contains(&next));
    }

    #[test]
    fn relayed_frames_fluff_by_the_coin_and_otherwise_wait_at_most_the_hop_delay() {
        let (cands, now) = (peers(4), Instant::now());
        let mut always = router(1.0);
        let (id, f) = frame(1);
        assert_eq!(
            always.route(Some(cands[0]), id, f.clone(), &cands, now),
            Routed::Fluff(f, FluffCause::Coin)
        );
        let mut never = router(0.0);
        let (id, f) = frame(2);
        let to = scheduled_to(never.route(Some(cands[0]), id.clone(), f.clone(), &cands, now));
        let hop = never.config().hop_delay;
        assert!(never
            .poll(now + hop)
            .contains(&Due::Send { to, id, frame: f }));
    }

    #[test]
    fn without_candidates_or_room_a_frame_is_fluffed_at_once() {
        let now = Instant::now();
        let mut r = router(0.0);
        let (id, f) = frame(1);
        assert_eq!(
            r.route(None, id, f.clone(), &[], now),
            Routed::Fluff(f, FluffCause::NoSuccessor)
        );
        let only = peers(1);
        let (id, f) = frame(2);
        assert_eq!(
            r.route(Some(only[0]), id, f.clone(), &only, now),
            Routed::Fluff(f, FluffCause::NoSuccessor),
            "the only candidate is the predecessor itself"
        );
        let mut small = StemRouter::new(
            StemConfig {
                held_capacity: 1,
                ..StemConfig::default()
            },
            1,
        );
        let cands = peers(3);
        scheduled_to(small.route(None, frame(3).0, frame(3).1, &cands, now));
        let (id, f) = frame(4);
        assert_eq!(
            small.route(None, id, f.clone(), &cands, now),
            Routed::Fluff(f, FluffCause::HeldFull)
        );
    }

    #[test]
    fn the_failsafe_fluffs_a_frame_never_seen_in_gossip() {
        let mut r = router(0.0);
        let (cands, now) = (peers(3), Instant::now());
        let (id, f) = frame(1);
        let to = scheduled_to(r.route(None, id.clone(), f.clone(), &cands, now));
        assert_eq!(
            r.poll(now),
            vec![Due::Send {
                to,
                id: id.clone(),
                frame: f.clone()
            }]
        );
        let deadline = r.next_deadline().expect("the fail-safe is armed");
        assert!(deadline >= now + r.config().failsafe);
        assert!(r.poll(deadline - Duration::from_millis(1)).is_empty());
        assert_eq!(
            r.poll(deadline),
            vec![Due::Fluff {
                frame: f,
                own: true
            }]
        );
        assert!(!r.holds(&id));
    }

    #[test]
    fn a_frame_seen_in_gossip_is_neither_sent_nor_fluffed_again() {
        let mut r = router(0.0);
        let (cands, now) = (peers(3), Instant::now());
        let (id, f) = frame(1);
        r.route(Some(cands[0]), id.clone(), f.clone(), &cands, now);
        assert!(r.seen_in_gossip(&id));
        assert!(!r.seen_in_gossip(&id));
        assert!(r.poll(now + Duration::from_secs(60)).is_empty());
        let mut own = router(0.0);
        own.route(None, id.clone(), f.clone(), &cands, now);
        assert_eq!(own.route(None, id, f, &cands, now), Routed::Duplicate);
    }

    #[test]
    fn a_frame_that_loops_back_walks_on_instead_of_waiting_for_the_failsafe() {
        let mut r = router(0.0);
        let (cands, now) = (peers(4), Instant::now());
        let (id, f) = frame(1);
        scheduled_to(r.route(None, id.clone(), f.clone(), &cands, now));
        r.poll(now);
        // Our own frame comes back from a member: it goes on like a relayed one.
        let pred = cands[2];
        let to = scheduled_to(r.route(Some(pred), id.clone(), f.clone(), &cands, now));
        assert_ne!(to, pred);
        let hop = r.config().hop_delay;
        assert!(r.poll(now + hop).contains(&Due::Send {
            to,
            id: id.clone(),
            frame: f.clone()
        }));
        for _ in 1..MAX_RETURNS {
            scheduled_to(r.route(Some(pred), id.clone(), f.clone(), &cands, now));
        }
        assert_eq!(
            r.route(Some(pred), id, f, &cands, now),
            Routed::Duplicate,
            "a frame bounced back and forth is not routed on for ever"
        );
    }

    #[test]
    fn an_unreachable_successor_hands_the_frame_back_for_fluffing() {
        let mut r = router(0.0);
        let (cands, now) = (peers(3), Instant::now());
        let (id, f) = frame(1);
        r.route(None, id.clone(), f.clone(), &cands, now);
        assert_eq!(r.send_failed(&id), Some((f, true)));
        assert_eq!(r.send_failed(&id), None);
    }
}
