//! The typed contracts between Conclave processes.
//!
//! Where it sits: at the edge. The node (`conclave-node`) serializes these types as its HTTP
//! answers; the devnet (`conclave-cli`), the benchmark harness and the tests deserialize the same
//! types. The devnet's report is here too, because the bench reads it. A field renamed here
//! therefore fails to compile in every producer and consumer, instead of silently reading `null`
//! at run time.
//!
//! The crate holds data only (serde and a base64 decoder): no I/O, no node internals. Identifiers
//! travel in their text form (peer ids, operator addresses, multiaddrs), exactly as on the wire.

mod altnet;
mod anonymity;
mod cold_keys;
mod faults;
mod link_cuts;
mod membership;
mod messaging;
mod report;
mod rln;
mod status;
mod validators;

pub use altnet::{
    Capabilities, DeliveryMode, DriverAnswer, DriverChanged, DriverFetch, DriverHealth,
    DriversAnswer, FallbackTip, FetchOutcome, HeaderFetch, PathKind, WatchdogAnswer,
};
pub use anonymity::{random_guess, AnonymityReport, EstimatorScore, FirstSights};
pub use cold_keys::{ColdKeysReport, OperatorSignatures};
pub use faults::{AtRisk, FaultReport};
pub use link_cuts::LinkCutsReport;
pub use membership::{
    GroupAnswer, MembershipAnswer, NodeAnswer, OperatorAnswer, RlnLeafAnswer, ViewAnswer,
};
pub use messaging::{
    decode_payload, DeliveryFrame, Lagged, PeerAnswer, PeersAnswer, PublishAnswer, StreamFrame,
};
pub use report::{
    percentile, ChainSetup, CoordinationReport, DeliveryReport, DevnetReport, IntruderReport,
    NodeUsage, OnchainRemovalReport, RemovalReport, RlnReport, RotationReport,
    StacksRotationReport, StaleChainReport, TrafficReport, TrafficSetup,
};
pub use rln::{
    AnonymousDeliveryFrame, ArrivalPath, RemovedSecret, RlnArrival, RlnArrivalsAnswer,
    RlnIdentityAnswer, RlnLeaf, RlnPublishAnswer, RlnRemovedAnswer, RlnStatusAnswer,
};
pub use status::{
    ChainFollowing, ErrorAnswer, FaultsAnswer, Following, ReadyAnswer, WindowsAnswer,
};
pub use validators::{AcceptedRegistration, RefusedRegistration, ValidatorsReport};
