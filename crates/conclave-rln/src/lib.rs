//! Conclave's anonymous, spam-resistant channel, over zerokit's RLN (Groth16 on BN254, depth-20
//! tree, resources embedded); see docs/ARCHITECTURE.md, "The anonymous channel (RLN)".
//!
//! Place in the data flow: **registry → [`RlnMembership`] (the tree) → [`RlnChannel`] (validation,
//! nullifier log, slashing evidence) → the node's anonymous gossipsub topic and API**. Everything
//! here but the [`ProofPool`] is sans-IO and tested without a network; proofs run on the pool's
//! threads, never on the async runtime.

mod batch;
mod channel;
mod epoch;
mod field;
mod identity;
mod membership;
mod message;
mod nullifier_log;
mod pool;

pub use batch::{public_inputs, BatchVerifier};
pub use channel::{
    Draft, EvidenceError, ExaminedEvidence, Ignored, Outcome, Pending, PublishError, Rejection,
    RlnChannel, SlashingEvidence,
};
pub use epoch::{signal_hash, EpochRules, RlnIdentifier};
pub use field::{fr_from_bytes, fr_from_hex, fr_to_bytes, fr_to_hex, FieldError};
pub use identity::{rate_commitment, RlnIdentity};
pub use membership::{MembershipError, RlnMembership, RlnRegistration};
pub use message::{
    pad, unpad, DecodeError, PadError, RlnFrame, RlnMessage, MAX_PAYLOAD, PAD_BUCKETS, PROOF_LEN,
};
pub use nullifier_log::{LogFull, NullifierLog, Seen};
pub use pool::{PoolError, ProofPool, Proved, Timed, MAX_BATCH};
pub use rln::prelude::{Fr, PartialProof};
