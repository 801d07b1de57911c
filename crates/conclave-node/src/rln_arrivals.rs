//! The arrivals record behind `/v1/rln/arrivals` (`[rln] record_arrivals`, off by default):
//! for each anonymous message this node validates, the member it came from, over the stem or
//! gossip, and when. Every member's node sees this much anyway; recording it lets the
//! anonymity benchmark measure what a curious member learns (docs/ARCHITECTURE.md, "The
//! stem"). A bounded ring: the oldest go first.

use std::collections::VecDeque;
use std::sync::Mutex;

use conclave_api::{ArrivalPath, RlnArrival, RlnArrivalsAnswer};
use conclave_net::{AnonymousMessageId, Arrival};

pub(crate) struct ArrivalRecord {
    capacity: usize,
    kept: Mutex<VecDeque<RlnArrival>>,
}

impl ArrivalRecord {
    /// `None` when recording is off.
    pub fn new(capacity: usize) -> Option<Self> {
        (capacity > 0).then(|| ArrivalRecord {
            capacity,
            kept: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
        })
    }

    /// Records a message that came from a member (not one this node gossiped itself).
    pub fn record(&self, id: &AnonymousMessageId, at_ms: u64) {
        let (Some(from), via) = (id.from(), id.arrival()) else {
            return;
        };
        let arrival = RlnArrival {
            message_id: id.hex(),
            from: from.to_string(),
            via: match via {
                Arrival::Stem => ArrivalPath::Stem,
                Arrival::Gossip | Arrival::Local => ArrivalPath::Gossip,
            },
            at_ms,
        };
        let mut kept = crate::lock(&self.kept);
        if kept.len() >= self.capacity {
            kept.pop_front();
        }
        kept.push_back(arrival);
    }

    pub fn answer(&self) -> RlnArrivalsAnswer {
        RlnArrivalsAnswer {
            arrivals: crate::lock(&self.kept).iter().cloned().collect(),
        }
    }
}
