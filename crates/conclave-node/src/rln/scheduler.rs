//! Which anonymous message is judged next, so that a member flooding proofs spends its own share
//! of the verifier and nobody else's.
//!
//! A proof costs milliseconds to verify and a forged one costs nothing to make, so a single
//! hostile member can send proofs faster than any node checks them. Messages wait here, in one
//! queue per forwarder (the gossip peer or stem predecessor they came from), and are taken in
//! turn, one per forwarder, so an honest forwarder's message waits behind at most one message of
//! each other forwarder, however many they sent. A forwarder has at most one message being
//! judged at a time: the messages judged together (the pool verifies them as one batch) come from
//! different forwarders, so a flooder's forged proof reaches the verifier one at a time. When the queue is full, the newest message of
//! the longest per-forwarder queue makes room (a flooder's own backlog is what gets dropped). A
//! forwarder whose message carried an invalid proof — which an honest node never forwards, since
//! it verifies before forwarding — is suspended for a cool-down: its waiting messages are dropped
//! unjudged and new ones refused, so it costs one verification, not one per message.
//!
//! Sans-IO: the caller passes the time and acts on what is returned.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Who handed a message to this node: a member, or this node itself (a stem frame it gossiped).
pub(crate) type Forwarder = Option<PeerId>;

/// At most this many forwarders are remembered as suspended (members are gated, so far fewer
/// exist); the one whose suspension ends first goes when it is full.
const MAX_SUSPENDED: usize = 4096;

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its forwarder sent an invalid proof less than a cool-down ago.
    Suspended,
    /// The queue is full and its forwarder's queue is already the longest.
    Full,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Refused::Suspended => "forwarder_suspended",
            Refused::Full => "busy",
        }
    }
}

/// Messages waiting to be judged, fair across forwarders.
pub(crate) struct ProofScheduler<T> {
    queues: HashMap<Forwarder, VecDeque<T>>,
    /// Forwarders with waiting messages, in turn order; each appears once.
    turns: VecDeque<Forwarder>,
    waiting: usize,
    /// Forwarders with a message being judged: their next waits for its verdict.
    judging: HashSet<Forwarder>,
    capacity: usize,
    suspended: HashMap<PeerId, Instant>,
    cool_down: Duration,
}

impl<T> ProofScheduler<T> {
    /// At most `capacity` messages wait; an invalid proof suspends its forwarder for `cool_down`.
    pub fn new(capacity: usize, cool_down: Duration) -> Self {
        ProofScheduler {
            queues: HashMap::new(),
            turns: VecDeque::new(),
            waiting: 0,
            judging: HashSet::new(),
            capacity: capacity.max(1),
            suspended: HashMap::new(),
            cool_down,
        }
    }

    /// Queues `item` from `from`. Returns a message dropped to make room (the newest of the
    /// longest queue), or the item itself when it is refused.
    pub fn push(
        &mut self,
        from: Forwarder,
        item: T,
        now: Instant,
    ) -> Result<Option<T>, (T, Refused)> {
        if from.is_some_and(|p| self.is_suspended(&p, now)) {
            return Err((item, Refused::Suspended));
        }
        let mut evicted = None;
        if self.waiting >= self.capacity {
            let own = self.queues.get(&from).map_or(0, VecDeque::len);
            let longest = self
                .queues
                .iter()
                .max_by_key(|(_, q)| q.len())
                .map(|(f, q)| (*f, q.len()));
            match longest {
                Some((hog, len)) if len > own + 1 => evicted = self.pop_newest(hog),
                _ => return Err((item, Refused::Full)),
            }
        }
        let queue = self.queues.entry(from).or_default();
        if queue.is_empty() {
            self.turns.push_back(from);
        }
        queue.push_back(item);
        self.waiting += 1;
        Ok(evicted)
    }

    /// The next message to judge: the oldest of the first forwarder in turn that has none being
    /// judged. It stays marked as being judged until [`Self::judged`].
    pub fn pop(&mut self) -> Option<(Forwarder, T)> {
        for _ in 0..self.turns.len() {
            let from = self.turns.pop_front()?;
            if self.judging.contains(&from) {
                self.turns.push_back(from);
                continue;
            }
            let queue = self.queues.get_mut(&from)?;
            let item = queue.pop_front()?;
            self.waiting -= 1;
            if queue.is_empty() {
                self.queues.remove(&from);
            } else {
                self.turns.push_back(from);
            }
            self.judging.insert(from);
            return Some((from, item));
        }
        None
    }

    /// The message [`Self::pop`] gave out for `from` has its verdict: its next may be judged.
    pub fn judged(&mut self, from: Forwarder) {
        self.judging.remove(&from);
    }

    /// `from` forwarded an invalid proof: suspends it until `now + cool_down` and returns its
    /// waiting messages, to be dropped unjudged.
    pub fn invalid_proof(&mut self, from: PeerId, now: Instant) -> Vec<T> {
        self.suspended.retain(|_, until| *until > now);
        if self.suspended.len() >= MAX_SUSPENDED {
            if let Some(first) = self
                .suspended
                .iter()
                .min_by_key(|(_, u)| **u)
                .map(|(p, _)| *p)
            {
                self.suspended.remove(&first);
            }
        }
        self.suspended.insert(from, now + self.cool_down);
        let key = Some(from);
        self.turns.retain(|f| *f != key);
        let dropped: Vec<T> = self.queues.remove(&key).map(Vec::from).unwrap_or_default();
        self.waiting -= dropped.len();
        dropped
    }

    pub fn is_suspended(&self, peer: &PeerId, now: Instant) -> bool {
        self.suspended.get(peer).is_some_and(|until| *until > now)
    }

    fn pop_newest(&mut self, from: Forwarder) -> Option<T> {
        let queue = self.queues.get_mut(&from)?;
        let item = queue.pop_back()?;
        self.waiting -= 1;
        if queue.is_empty() {
            self.queues.remove(&from);
            self.turns.retain(|f| *f != from);
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(600);

    fn peers() -> (Forwarder, Forwarder) {
        (Some(PeerId::random()), Some(PeerId::random()))
    }

    /// Judges one message at a time, as a verifier that finishes each before taking the next.
    fn drain(s: &mut ProofScheduler<u32>) -> Vec<u32> {
        std::iter::from_fn(|| {
            let (from, i) = s.pop()?;
            s.judged(from);
            Some(i)
        })
        .collect()
    }

    #[test]
    fn forwarders_take_turns_so_an_honest_message_waits_behind_one_of_each_other_forwarder() {
        let now = Instant::now();
        let (flooder, honest) = peers();
        let mut s = ProofScheduler::new(64, COOL_DOWN);
        for i in 0..20 {
            s.push(flooder, i, now).unwrap();
        }
        s.push(honest, 100, now).unwrap();
        let order = drain(&mut s);
        assert_eq!(&order[..3], &[0, 100, 1], "{order:?}");
        assert_eq!(order.len(), 21);
        assert_eq!(s.waiting, 0);
    }

    #[test]
    fn a_full_queue_makes_room_from_the_longest_backlog_not_from_a_short_one() {
        let now = Instant::now();
        let (flooder, honest) = peers();
        let mut s = ProofScheduler::new(4, COOL_DOWN);
        for i in 0..4 {
            assert_eq!(s.push(flooder, i, now), Ok(None));
        }
        assert_eq!(s.push(flooder, 4, now), Err((4, Refused::Full)));
        assert_eq!(
            s.push(honest, 100, now),
            Ok(Some(3)),
            "the flooder's newest goes"
        );
        assert_eq!(s.push(honest, 101, now), Ok(Some(2)));
        // Now 2 and 2: nobody's backlog is longer than the newcomer's would be.
        assert_eq!(s.push(honest, 102, now), Err((102, Refused::Full)));
        assert_eq!(drain(&mut s), vec![0, 100, 1, 101]);
    }

    #[test]
    fn an_invalid_proof_suspends_its_forwarder_and_drops_what_it_still_has_waiting() {
        let now = Instant::now();
        let (flooder, honest) = peers();
        let mut s = ProofScheduler::new(64, COOL_DOWN);
        for i in 0..5 {
            s.push(flooder, i, now).unwrap();
        }
        s.push(honest, 100, now).unwrap();
        assert_eq!(s.pop(), Some((flooder, 0)));
        s.judged(flooder);
        assert_eq!(s.invalid_proof(flooder.unwrap(), now), vec![1, 2, 3, 4]);
        assert_eq!(s.push(flooder, 5, now), Err((5, Refused::Suspended)));
        assert_eq!(drain(&mut s), vec![100]);
        let later = now + COOL_DOWN;
        assert!(
            !s.is_suspended(&flooder.unwrap(), later),
            "the cool-down ends"
        );
        assert_eq!(s.push(flooder, 6, later), Ok(None));
    }

    #[test]
    fn this_nodes_own_frames_have_a_turn_of_their_own_and_are_never_suspended() {
        let now = Instant::now();
        let (flooder, _) = peers();
        let mut s = ProofScheduler::new(8, COOL_DOWN);
        s.push(flooder, 1, now).unwrap();
        s.push(None, 2, now).unwrap();
        s.push(flooder, 3, now).unwrap();
        assert_eq!(drain(&mut s), vec![1, 2, 3]);
    }

    #[test]
    fn messages_judged_together_come_from_different_forwarders() {
        let now = Instant::now();
        let (flooder, honest) = peers();
        let mut s = ProofScheduler::new(64, COOL_DOWN);
        for i in 0..10 {
            s.push(flooder, i, now).unwrap();
        }
        s.push(honest, 100, now).unwrap();
        s.push(honest, 101, now).unwrap();
        // A verifier taking all it can get at once gets one message per forwarder.
        let batch: Vec<_> = std::iter::from_fn(|| s.pop()).collect();
        assert_eq!(batch, vec![(flooder, 0), (honest, 100)]);
        // The flooder's proof was forged: the rest of its backlog goes unjudged.
        s.judged(flooder);
        assert_eq!(s.invalid_proof(flooder.unwrap(), now).len(), 9);
        assert_eq!(
            s.pop(),
            None,
            "the honest forwarder's next waits for its verdict"
        );
        s.judged(honest);
        assert_eq!(s.pop(), Some((honest, 101)));
    }

    #[test]
    fn suspensions_are_bounded_and_expire() {
        let now = Instant::now();
        let mut s: ProofScheduler<u32> = ProofScheduler::new(8, COOL_DOWN);
        for _ in 0..MAX_SUSPENDED + 10 {
            s.invalid_proof(PeerId::random(), now);
        }
        assert!(s.suspended.len() <= MAX_SUSPENDED);
        s.invalid_proof(PeerId::random(), now + COOL_DOWN);
        assert_eq!(s.suspended.len(), 1, "expired suspensions are forgotten");
    }
}
