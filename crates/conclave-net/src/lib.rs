//! The Conclave network service.
//!
//! Place in the data flow: **registry → `MembershipView` → [this crate] → application**.
//! The service owns the libp2p swarm: TCP, QUIC, WebSocket and circuit relay v2 transports
//! (see `transport.rs`). Its behaviour puts the [`MembershipGate`] and connection limits first,
//! then the member-only relay server (when configured) and relay client, signed gossipsub
//! (envelope signatures, manual validation against the view), anonymous gossipsub (no
//! signatures; the application validates each message's RLN proof and reports an
//! [`Acceptance`]), the header request-response protocol ([`HEADERS_PROTOCOL`]), the
//! anonymous channel's stem ([`STEM_PROTOCOL`], Dandelion++: own anonymous messages travel
//! single verified hops among members before they are gossiped), catch-up
//! ([`CATCHUP_PROTOCOL`]: signed messages retained for a window, reconciled with members and
//! fetched when missed), identify and ping. The application talks to it through a [`NetworkService`] handle and reads one
//! [`NetworkEvent`] stream; the peer table is published as [`PeerSnapshot`]s.
//!
//! Pure pieces are separate and tested without a network: [`validate_signed`], [`MeshParams`],
//! the redial schedule, the publish outbox and the stem router.

mod admission;
mod behaviour;
mod catchup;
mod config;
mod framing;
mod gate;
mod headers;
mod mesh;
mod metrics;
mod redial;
mod service;
mod stem;
mod transport;
mod validation;

use conclave_core::{Multiaddr, PeerId};

pub use admission::NotAdmitted;
pub use behaviour::{anonymous_topic, gossip_topic, RelayLimits};
pub use catchup::log::{RetainedError, RetainedMessage};
pub use catchup::reconcile::ReconcileError;
pub use catchup::{
    answer_reconcile, CatchUpConfig, CatchUpReply, CatchUpReplyKind, CatchUpRequest,
    CatchUpRequestKind, Fetch, Fetched, RangeAnswer, Reconcile, Reconciled, RetainedWire,
    WireRange, CATCHUP_PROTOCOL,
};
pub use config::{NetConfig, TransportKind};
pub use framing::read_bounded;
pub use gate::{Denied, MembershipGate, Refusal};
pub use headers::{
    HeaderEntry, HeaderReply, HeaderRequest, RecentHeaders, HEADERS_PROTOCOL,
    MAX_HEADERS_PER_REQUEST,
};
pub use mesh::{MeshParams, MeshParamsError, HEARTBEAT};
pub use redial::Backoff;
pub use service::{
    Acceptance, AnonymousMessage, AnonymousMessageId, Arrival, Delivery, Direction, NetworkEvent,
    NetworkService, PeerInfo, PeerSnapshot, PublishError, PublishOutcome, StartedNetwork,
};
pub use stem::{StemConfig, StemReply, StemRequest, StemVerdict, STEM_PROTOCOL};
pub use transport::HANDSHAKE_TIMEOUT;
pub use validation::{
    validate_retained, validate_signed, verify_envelope, Rejection, Validated, ValidationLimits,
};

/// Why the network service could not start or serve a request.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("seed {0} must end with /p2p/<peer id> so the gate can judge it before dialing")]
    SeedWithoutPeerId(Multiaddr),
    #[error("cannot listen on {0}: {1}")]
    Listen(Multiaddr, String),
    #[error("transport setup failed: {0}")]
    Transport(String),
    #[error("gossipsub setup failed: {0}")]
    Gossipsub(String),
    #[error(transparent)]
    Mesh(#[from] MeshParamsError),
    #[error("dial failed: {0}")]
    Dial(String),
    #[error("the network service has stopped")]
    Stopped,
    #[error(
        "max_message_bytes = {max_message_bytes} leaves no room for a signed envelope: an empty \
         one takes up to {envelope} bytes"
    )]
    MessageLimit {
        max_message_bytes: usize,
        envelope: usize,
    },
    #[error("header request to {peer} failed: {reason}")]
    HeaderRequest { peer: PeerId, reason: String },
}
