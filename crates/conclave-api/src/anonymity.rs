//! What `conclave devnet --scenario anonymity` reports: how well curious members name the
//! author of anonymous messages, and what the stem costs in latency.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::report::percentile;

/// One anonymity run: members post anonymously at random while `spies` of them record where
/// each message first reached them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnonymityReport {
    pub ok: bool,
    pub members: usize,
    /// Whether own messages started on the stem.
    pub stem: bool,
    /// The stem epoch the nodes ran (ms): shorter in a measurement than in production, so one
    /// run averages over many choices of successors.
    pub stem_epoch_ms: u64,
    pub published: usize,
    /// Published messages every other member delivered.
    pub delivered_to_all: usize,
    /// Per message delivered to all: from the publisher's answer to the last other member's
    /// delivery, ascending (ms).
    pub latency_ms: Vec<u64>,
    pub guesses: Vec<EstimatorScore>,
    /// How the first spy first saw other members' messages.
    pub first_sights: FirstSights,
}

/// The first spy's first sight of each message by another member, by path and sender: on the
/// stem from its author means the spy was the author's first hop; in gossip from its author,
/// the author gossiped it itself (a fail-safe, or no stem).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstSights {
    pub stem_from_author: usize,
    pub stem_from_relay: usize,
    pub gossip_from_author: usize,
    pub gossip_from_relay: usize,
    pub unseen: usize,
}

/// How one estimator did for one set of colluding members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstimatorScore {
    /// `first-spy` (the member the earliest colluder heard it from) or `majority` (the member
    /// most colluders heard it from first).
    pub estimator: String,
    pub colluders: usize,
    /// Messages by members outside the colluders: the ones they try to attribute.
    pub judged: usize,
    /// Of those, attributed to their author.
    pub correct: usize,
}

impl EstimatorScore {
    /// The fraction of judged messages attributed to their author.
    pub fn precision(&self) -> f64 {
        if self.judged == 0 {
            0.0
        } else {
            self.correct as f64 / self.judged as f64
        }
    }
}

/// A random guess among the members outside the colluders: 1/(N − c).
pub fn random_guess(members: usize, colluders: usize) -> f64 {
    1.0 / members.saturating_sub(colluders).max(1) as f64
}

impl AnonymityReport {
    pub fn latency_p50_ms(&self) -> u64 {
        percentile(&self.latency_ms, 0.5)
    }
    pub fn latency_p99_ms(&self) -> u64 {
        percentile(&self.latency_ms, 0.99)
    }
}

impl fmt::Display for AnonymityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "anonymity, {} members, stem {} (epoch {} ms): {} posted, {} reached every other member; latency p50 {} ms, p99 {} ms",
            self.members,
            if self.stem { "on" } else { "off" },
            self.stem_epoch_ms,
            self.published,
            self.delivered_to_all,
            self.latency_p50_ms(),
            self.latency_p99_ms(),
        )?;
        for g in &self.guesses {
            let random = random_guess(self.members, g.colluders);
            writeln!(
                f,
                "  {} with {} colluding member(s): {} of {} authors named, precision {:.3} (random guess {:.3}, {:.2}×)",
                g.estimator,
                g.colluders,
                g.correct,
                g.judged,
                g.precision(),
                random,
                g.precision() / random
            )?;
        }
        let s = &self.first_sights;
        writeln!(
            f,
            "  the first spy first saw others' messages: on the stem from the author {}, from a relay {}; in gossip from the author {}, from a relay {}; never {}",
            s.stem_from_author, s.stem_from_relay, s.gossip_from_author, s.gossip_from_relay, s.unseen
        )?;
        writeln!(
            f,
            "  result            {}",
            if self.ok { "PASS" } else { "FAIL" }
        )
    }
}
