//! Conclave's defence against a bad chain view (DESIGN §7).
//!
//! Place in the data flow: **the chain source's blocks, members' tip announcements and gossip →
//! [`Watchdog`] (anomalies, with hysteresis) → a header request to members → [`accept_range`]
//! (f+1 distinct operators agree, the range links to our last good header, every hash is the
//! keccak of its RLP header) → the chain view's fallback tip**. Everything here is sans-IO: time
//! comes in as milliseconds and answers come in as bytes, so every rule is tested without a
//! network or a clock.

mod headers;
mod tip;
mod watchdog;

pub use headers::{accept_range, AcceptedRange, HeaderResponse, RangeRefusal, ResponseFault};
pub use tip::{TipAnnouncement, TipError, TIP_TOPIC};
pub use watchdog::{Anomaly, Watchdog, WatchdogConfig, WatchdogEvent};
