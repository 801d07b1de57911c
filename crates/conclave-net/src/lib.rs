//! The Conclave network service.
//!
//! Place in the data flow: **registry → `MembershipView` → [this crate] → application**.
//! The service owns the libp2p swarm. Its behaviour puts the [`MembershipGate`] and connection
//! limits first, then signed gossipsub (Strict signatures, manual validation against the view),
//! anonymous gossipsub (no signatures; the application validates each message's RLN proof and
//! reports an [`Acceptance`]), identify and ping. The application talks to it through a [`NetworkService`] handle and reads
//! one [`NetworkEvent`] stream; the peer table is published as [`PeerSnapshot`]s.
//!
//! Pure pieces are separate and tested without a network: [`validate_signed`], [`MeshParams`],
//! the redial schedule and the publish outbox.

mod behaviour;
mod config;
mod gate;
mod mesh;
mod metrics;
mod outbox;
mod redial;
mod service;
mod transport;
mod validation;

use conclave_core::Multiaddr;

pub use behaviour::{anonymous_topic, gossip_topic};
pub use config::{NetConfig, TransportKind};
pub use gate::{Denied, MembershipGate};
pub use mesh::{MeshParams, MeshParamsError};
pub use redial::Backoff;
pub use service::{
    Acceptance, AnonymousMessage, AnonymousMessageId, Delivery, Direction, NetworkEvent,
    NetworkService, PeerInfo, PeerSnapshot, PublishError, PublishOutcome, StartedNetwork,
};
pub use validation::{validate_signed, Rejection, Validated, ValidationLimits};

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
}
