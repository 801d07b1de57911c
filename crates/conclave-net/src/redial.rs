//! The peer manager's bookkeeping: where members can be reached and when to dial them next.
//!
//! Every authorized member that is not connected gets its own backoff, so one unreachable signer
//! never delays the others and a node keeps trying to reach the full set (not only when it has
//! zero peers, the failure mode sBTC's signer had).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use conclave_core::{Multiaddr, PeerId};
use rand::Rng;

/// At most this many learned addresses are kept per peer.
pub const MAX_ADDRESSES_PER_PEER: usize = 8;

/// Addresses learned from seeds, identify and the persisted peer store (registry hints are read
/// from the view directly, so they are never stale here).
#[derive(Debug, Default)]
pub struct AddressBook {
    learned: HashMap<PeerId, Vec<Multiaddr>>,
}

impl AddressBook {
    /// Records an address; returns whether it was new. Oldest addresses give way when full.
    pub fn add(&mut self, peer: PeerId, addr: Multiaddr) -> bool {
        let list = self.learned.entry(peer).or_default();
        if list.contains(&addr) {
            return false;
        }
        if list.len() >= MAX_ADDRESSES_PER_PEER {
            list.remove(0);
        }
        list.push(addr);
        true
    }

    /// Forgets peers for which `keep` is false (members removed from the registry).
    pub fn retain(&mut self, mut keep: impl FnMut(&PeerId) -> bool) {
        self.learned.retain(|p, _| keep(p));
    }

    /// Hints first (the registry is authoritative), then learned addresses, without duplicates.
    pub fn dial_addresses(&self, peer: &PeerId, hints: &[Multiaddr]) -> Vec<Multiaddr> {
        let mut out: Vec<Multiaddr> = hints.to_vec();
        for a in self.learned.get(peer).into_iter().flatten() {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        out
    }
}

/// Backoff bounds for redials.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Delay after `failures` consecutive failures: min·2^(failures-1), capped, with ±25 % jitter
    /// so that a restarted network does not redial in lockstep.
    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        let exp = self
            .min
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let base = exp.min(self.max);
        base.mul_f64(rng.gen_range(0.75..1.25))
    }
}

/// A connection must last this long before the peer's backoff is forgiven. A remote that
/// accepts the handshake and then drops us (its gate refuses us, or it is overloaded) must not
/// be redialled every tick.
pub const STABLE_CONNECTION: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    next_at: Instant,
    connected_at: Option<Instant>,
}

/// When each disconnected member is next dialled.
#[derive(Debug)]
pub struct RedialSchedule {
    backoff: Backoff,
    entries: HashMap<PeerId, Entry>,
}

impl RedialSchedule {
    pub fn new(backoff: Backoff) -> Self {
        RedialSchedule {
            backoff,
            entries: HashMap::new(),
        }
    }

    /// Of the `disconnected` members, those due for a dial now. A returned peer is considered
    /// in flight until [`Self::on_failure`] or [`Self::on_connected`]; it is not returned again
    /// before `backoff.max` even if neither is reported.
    pub fn due(&mut self, disconnected: &BTreeSet<PeerId>, now: Instant) -> Vec<PeerId> {
        let guard = now + self.backoff.max;
        disconnected
            .iter()
            .filter(|p| {
                let e = self.entries.entry(**p).or_insert(Entry {
                    failures: 0,
                    next_at: now,
                    connected_at: None,
                });
                if e.connected_at.is_none() && e.next_at <= now {
                    e.next_at = guard;
                    true
                } else {
                    false
                }
            })
            .copied()
            .collect()
    }

    /// Holds back the first dial to `peer` until `now + by`, unless it is already scheduled: the
    /// peer is expected to dial us (see the service's tie-break), and one connection per pair
    /// costs one handshake instead of two.
    pub fn defer_first(&mut self, peer: PeerId, now: Instant, by: Duration) {
        self.entries.entry(peer).or_insert(Entry {
            failures: 0,
            next_at: now + by,
            connected_at: None,
        });
    }

    /// Dials `peer` at the next opportunity with a fresh backoff: its address hints changed, so
    /// the failures behind the current backoff say nothing about the new addresses.
    pub fn reset(&mut self, peer: &PeerId) {
        if self
            .entries
            .get(peer)
            .is_some_and(|e| e.connected_at.is_none())
        {
            self.entries.remove(peer);
        }
    }

    /// Forgets peers that are no longer members.
    pub fn retain(&mut self, mut keep: impl FnMut(&PeerId) -> bool) {
        self.entries.retain(|p, _| keep(p));
    }

    pub fn on_failure(&mut self, peer: PeerId, now: Instant, rng: &mut impl Rng) {
        if let Some(e) = self.entries.get_mut(&peer) {
            e.failures += 1;
            e.next_at = now + self.backoff.delay(e.failures, rng);
        }
    }

    pub fn on_connected(&mut self, peer: PeerId, now: Instant) {
        let e = self.entries.entry(peer).or_insert(Entry {
            failures: 0,
            next_at: now,
            connected_at: None,
        });
        e.connected_at.get_or_insert(now);
    }

    /// The last connection to `peer` closed: a stable one resets the backoff, a short-lived one
    /// counts as a failure.
    pub fn on_disconnected(&mut self, peer: PeerId, now: Instant, rng: &mut impl Rng) {
        let Some(e) = self.entries.get_mut(&peer) else {
            return;
        };
        match e.connected_at.take() {
            Some(since) if now.duration_since(since) >= STABLE_CONNECTION => {
                self.entries.remove(&peer);
            }
            _ => self.on_failure(peer, now, rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_deferred_first_dial_waits_unless_already_scheduled() {
        let mut s = RedialSchedule::new(Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
        });
        let (p, q) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        assert_eq!(s.due(&[q].into(), t0), vec![q]);
        s.defer_first(p, t0, Duration::from_secs(1));
        s.defer_first(q, t0, Duration::from_secs(1));
        let both: BTreeSet<PeerId> = [p, q].into();
        assert!(s.due(&both, t0 + Duration::from_millis(500)).is_empty());
        assert_eq!(s.due(&both, t0 + Duration::from_millis(1000)), vec![p]);
    }

    #[test]
    fn new_addresses_reset_the_backoff() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut s = RedialSchedule::new(Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
        });
        let peer = PeerId::random();
        let set: BTreeSet<PeerId> = [peer].into();
        let t0 = Instant::now();
        for k in 0..5 {
            let now = t0 + Duration::from_secs(120 * k);
            assert_eq!(s.due(&set, now), vec![peer]);
            s.on_failure(peer, now, &mut rng);
        }
        // The fifth failure was at 480 s: the next dial is at least 12 s later.
        let now = t0 + Duration::from_secs(481);
        assert!(
            s.due(&set, now).is_empty(),
            "backed off after five failures"
        );
        s.reset(&peer);
        assert_eq!(
            s.due(&set, now),
            vec![peer],
            "due at once with the new hints"
        );
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(10),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for (f, base) in [(1, 100), (2, 200), (3, 400), (10, 10_000), (40, 10_000)] {
            let d = b.delay(f, &mut rng).as_millis() as u64;
            assert!(
                d >= base * 3 / 4 && d <= base * 5 / 4,
                "failures={f}: {d} ms"
            );
        }
    }

    #[test]
    fn each_member_has_its_own_schedule() {
        let b = Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(30),
        };
        let mut s = RedialSchedule::new(b);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let (p, q) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let both: BTreeSet<_> = [p, q].into();
        assert_eq!(s.due(&both, t0).len(), 2);
        assert!(
            s.due(&both, t0).is_empty(),
            "in-flight dials are not repeated"
        );
        s.on_failure(p, t0, &mut rng);
        s.on_connected(q, t0);
        assert!(s
            .due(&[p].into(), t0 + Duration::from_millis(500))
            .is_empty());
        assert_eq!(
            s.due(&[p].into(), t0 + Duration::from_millis(1300)),
            vec![p]
        );
        // After a stable connection, a member that disconnects is redialled at once.
        let later = t0 + STABLE_CONNECTION;
        s.on_disconnected(q, later, &mut rng);
        assert_eq!(s.due(&[q].into(), later), vec![q]);
    }

    #[test]
    fn a_peer_that_drops_us_right_after_the_handshake_is_backed_off() {
        let b = Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(30),
        };
        let mut s = RedialSchedule::new(b);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let p = PeerId::random();
        let mut t = Instant::now();
        let mut gaps = Vec::new();
        for _ in 0..5 {
            assert_eq!(s.due(&[p].into(), t), vec![p]);
            s.on_connected(p, t);
            s.on_disconnected(p, t + Duration::from_millis(5), &mut rng);
            let start = t;
            t += Duration::from_millis(5);
            while s.entries[&p].next_at > t {
                t += Duration::from_millis(50);
            }
            gaps.push(t.duration_since(start));
        }
        assert!(gaps[0] >= Duration::from_millis(750), "{gaps:?}");
        assert!(
            gaps[4] >= Duration::from_secs(12),
            "backoff grows: {gaps:?}"
        );
    }

    #[test]
    fn address_book_is_bounded_and_prefers_hints() {
        let mut book = AddressBook::default();
        let p = PeerId::random();
        for port in 0..20u16 {
            book.add(p, format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap());
        }
        let hint: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().unwrap();
        let all = book.dial_addresses(&p, std::slice::from_ref(&hint));
        assert_eq!(all.len(), 1 + MAX_ADDRESSES_PER_PEER);
        assert_eq!(all[0], hint);
        assert!(!book.add(p, "/ip4/127.0.0.1/tcp/19".parse().unwrap()));
        book.retain(|_| false);
        assert_eq!(book.dial_addresses(&p, &[]).len(), 0);
    }
}
