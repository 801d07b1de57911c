//! Conclave's shared vocabulary.
//!
//! Place in the data flow: **chain → registry → [`MembershipView`] → gate / validators → application**.
//! Every other crate speaks these types: the registry builds [`MembershipView`] snapshots, the
//! network gate and validators read them, the node serves them. Nothing here does I/O, so every
//! decision that depends on membership can be tested as a plain function.

mod addr;
mod clock;
mod envelope;
mod operator;
mod topic;
mod view;

pub use addr::split_peer_id;
pub use clock::{Clock, Moment, SystemClock};
pub use envelope::{Envelope, TimestampError};
pub use libp2p_identity::PeerId;
pub use multiaddr::Multiaddr;
pub use operator::{GroupId, OperatorId, ParseAddressError};
pub use topic::{TopicName, TopicNameError};
pub use view::{
    Expiry, Group, MembershipView, NodeAuthorization, RlnMember, Unauthorized, ViewBuilder,
    ViewError, ViewSource, RLN_MAX_INDEX, RLN_MAX_LIMIT, RLN_MAX_MEMBERSHIPS,
};
