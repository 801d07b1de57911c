//! Publishes waiting for subscribed peers.
//!
//! Right after start-up (or a reconnect) gossipsub knows no subscribed peer for a topic and a
//! publish would fail with `NoPeersSubscribedToTopic`. The application should not see that: the
//! message waits here, in order, until enough peers subscribe, bounded in count and in age.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use conclave_core::TopicName;

/// A publish accepted from the application but not yet handed to gossipsub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub topic: TopicName,
    pub payload: Vec<u8>,
    pub queued_at: Instant,
}

/// The outbox refused a publish because it is at capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

/// A bounded FIFO of pending publishes. Order per topic is preserved: once one message of a
/// topic waits, later ones for the same topic wait behind it.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Pending>,
    capacity: usize,
    ttl: Duration,
}

impl Outbox {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Outbox {
            queue: VecDeque::new(),
            capacity,
            ttl,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether something for `topic` is already waiting (a new publish must queue behind it).
    pub fn has_pending(&self, topic: &TopicName) -> bool {
        self.queue.iter().any(|p| &p.topic == topic)
    }

    pub fn push(&mut self, p: Pending) -> Result<(), OutboxFull> {
        if self.queue.len() >= self.capacity {
            return Err(OutboxFull);
        }
        self.queue.push_back(p);
        Ok(())
    }

    /// Puts back publishes that could not be sent after all, ahead of everything else.
    pub fn requeue_front(&mut self, items: Vec<Pending>) {
        for p in items.into_iter().rev() {
            self.queue.push_front(p);
        }
    }

    /// Removes and returns, in order, every pending publish whose topic is `ready`.
    pub fn take_ready(&mut self, mut ready: impl FnMut(&TopicName) -> bool) -> Vec<Pending> {
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.queue.len());
        for p in self.queue.drain(..) {
            if ready(&p.topic) {
                out.push(p);
            } else {
                keep.push_back(p);
            }
        }
        self.queue = keep;
        out
    }

    /// Drops publishes older than the TTL and returns them (to be counted and reported).
    pub fn expire(&mut self, now: Instant) -> Vec<Pending> {
        let ttl = self.ttl;
        let (expired, kept): (Vec<_>, Vec<_>) = self
            .queue
            .drain(..)
            .partition(|p| now.duration_since(p.queued_at) >= ttl);
        self.queue = kept.into();
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(topic: &str, n: u8, at: Instant) -> Pending {
        Pending {
            topic: topic.parse().unwrap(),
            payload: vec![n],
            queued_at: at,
        }
    }

    #[test]
    fn bounded_ordered_and_expiring() {
        let t0 = Instant::now();
        let mut o = Outbox::new(3, Duration::from_secs(10));
        o.push(p("a", 1, t0)).unwrap();
        o.push(p("b", 2, t0)).unwrap();
        o.push(p("a", 3, t0 + Duration::from_secs(5))).unwrap();
        assert_eq!(o.push(p("a", 4, t0)), Err(OutboxFull));
        assert!(o.has_pending(&"b".parse().unwrap()));

        let a: TopicName = "a".parse().unwrap();
        let ready = o.take_ready(|t| *t == a);
        assert_eq!(
            ready.iter().map(|p| p.payload[0]).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(o.len(), 1);

        o.requeue_front(ready);
        assert_eq!(o.len(), 3);
        let expired = o.expire(t0 + Duration::from_secs(12));
        assert_eq!(
            expired.iter().map(|p| p.payload[0]).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(o.len(), 1);
    }
}
