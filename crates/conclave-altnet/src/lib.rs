//! Conclave's defence against a bad chain view
//! (docs/ARCHITECTURE.md, "Alternative paths: watchdog, drivers, header fallback").
//!
//! Place in the data flow: **the chain source's blocks, members' tip announcements and gossip →
//! [`Watchdog`] (anomalies, with hysteresis) → a header request to members over every
//! [`Driver`] that carries headers → [`accept_range`] (f+1 distinct operators agree, the range
//! links to our last good header, every hash is the keccak of its RLP header) →
//! [`ChainFollower`] (the fallback tip the node acts on, and the return to its source)**.
//! Everything but the [`Driver`] trait is sans-IO: time comes in as milliseconds and answers as
//! bytes, so every rule is tested without a network or a clock.

mod driver;
mod follower;
mod headers;
mod tip;
mod watchdog;

/// Header hashes, as the rest of the node names them.
pub use alloy::primitives::B256;
pub use driver::{
    Capabilities, Delivery, Driver, DriverHealth, DriverState, FetchFailure, FetchReport,
    MessageKind, PathKind,
};
pub use follower::{ChainFollower, FollowEvent};
pub use headers::{accept_range, AcceptedRange, HeaderResponse, RangeRefusal, ResponseFault};
pub use tip::{TipAnnouncement, TipError, TIP_TOPIC};
pub use watchdog::{Anomaly, Watchdog, WatchdogConfig, WatchdogEvent};
