//! The anonymous channel's state machine: validation of received messages in the order given in
//! docs/ARCHITECTURE.md, "The anonymous channel (RLN)", preparation of our own messages, and
//! slashing evidence. Sans-IO: proofs are made and checked by the caller on the
//! [`ProofPool`](crate::ProofPool) between [`RlnChannel::precheck`] and
//! [`RlnChannel::commit`], so the state is never held across a proof.

use std::sync::Arc;

use rln::prelude::{
    compute_id_secret, Fr, Proof, RLNPartialWitnessInput, RLNProofValues, RLNWitnessInput,
};
use thiserror::Error;

use crate::epoch::{signal_hash, EpochRules, RlnIdentifier};
use crate::identity::RlnIdentity;
use crate::membership::{MembershipError, RlnMembership, RlnRegistration};
use crate::message::{DecodeError, RlnMessage, MAX_PAYLOAD};
use crate::nullifier_log::{LogFull, NullifierLog, Seen};

/// Why a message is refused and its forwarder penalized (gossipsub `Reject`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("malformed: {0}")]
    Malformed(DecodeError),
    #[error("message names topic `{inner}` but arrived on `{outer}`")]
    TopicMismatch { inner: String, outer: String },
    #[error("epoch {epoch} is more than {gap} epochs from ours ({now})")]
    EpochOutOfRange { epoch: u64, now: u64, gap: u64 },
    #[error("external nullifier is not ours for epoch {0}: a proof for another epoch or another RLN identifier")]
    WrongRlnIdentifier(u64),
    #[error("the proof binds another signal: payload, topic or epoch changed")]
    SignalMismatch,
    #[error("the proof's Merkle root is not among our recent roots")]
    UnknownRoot,
    #[error("the proof does not verify")]
    InvalidProof,
    #[error("double signal: a second message under a nullifier already used this epoch")]
    DoubleSignal,
}

impl Rejection {
    /// A short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::TopicMismatch { .. } => "topic_mismatch",
            Rejection::EpochOutOfRange { .. } => "epoch_out_of_range",
            Rejection::WrongRlnIdentifier(_) => "wrong_rln_identifier",
            Rejection::SignalMismatch => "signal_mismatch",
            Rejection::UnknownRoot => "unknown_root",
            Rejection::InvalidProof => "invalid_proof",
            Rejection::DoubleSignal => "double_signal",
        }
    }
}

/// Why a message is dropped without blame (gossipsub `Ignore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Ignored {
    #[error("duplicate: the same share under the same nullifier")]
    Duplicate,
    #[error("the nullifier log is full")]
    LogFull,
    #[error("the proof pool is busy")]
    Busy,
}

impl Ignored {
    pub fn label(&self) -> &'static str {
        match self {
            Ignored::Duplicate => "duplicate",
            Ignored::LogFull => "log_full",
            Ignored::Busy => "busy",
        }
    }
}

/// The outcome of validating one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accept(Box<RlnMessage>),
    Ignore(Ignored),
    Reject(Rejection),
    /// Rejected as a double signal; the evidence (both messages) is to be gossiped.
    Slash(SlashingEvidence),
}

/// A message that passed every check up to proof verification.
pub struct Pending {
    message: RlnMessage,
    raw: Arc<[u8]>,
}

impl Pending {
    /// What the proof pool verifies.
    pub fn proof(&self) -> (Proof, RLNProofValues) {
        (self.message.proof.clone(), self.message.values.clone())
    }
}

/// Two messages under one nullifier with different shares, as gossiped on the signed channel.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SlashingEvidence {
    #[prost(bytes = "vec", tag = "1")]
    pub first: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub second: Vec<u8>,
}

/// Why slashing evidence is not acted on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvidenceError {
    #[error("evidence message {which}: {error}")]
    Malformed {
        which: &'static str,
        error: DecodeError,
    },
    #[error("the two messages do not share an external nullifier and nullifier")]
    NotSameSlot,
    #[error("the two messages carry the same share: a duplicate, not a double signal")]
    SameShare,
    #[error("evidence message {0}: its proof binds another signal")]
    SignalMismatch(&'static str),
    #[error("the recovered secret is not a current member's (already removed, or forged)")]
    NotAMember,
}

/// Evidence that checked out up to proof verification: both proofs are still to be verified.
pub struct ExaminedEvidence {
    pub proofs: [(Proof, RLNProofValues); 2],
    pub identity: RlnIdentity,
    /// The member's leaf index.
    pub index: u32,
}

/// Why we cannot publish now.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublishError {
    #[error("our RLN identity is not a member leaf (not registered, or removed)")]
    NotAMember,
    #[error("message id {id} is not below our limit of {limit} per epoch")]
    QuotaExhausted { id: u32, limit: u32 },
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error("building the witness: {0}")]
    Witness(String),
    #[error("a payload of {len} bytes exceeds the anonymous channel's largest of {MAX_PAYLOAD}")]
    TooLarge { len: usize },
}

/// One of our messages, waiting for its proof.
pub struct Draft {
    pub topic: String,
    pub payload: Vec<u8>,
    pub epoch: u64,
    pub witness: RLNWitnessInput,
}

impl Draft {
    pub fn finish(self, proof: Proof, values: RLNProofValues) -> RlnMessage {
        RlnMessage {
            topic: self.topic,
            payload: self.payload,
            epoch: self.epoch,
            proof,
            values,
        }
    }
}

/// The channel: membership tree, nullifier log and the rules every member shares.
pub struct RlnChannel {
    rules: EpochRules,
    identifier: RlnIdentifier,
    membership: RlnMembership,
    log: NullifierLog,
}

impl RlnChannel {
    pub fn new(
        rules: EpochRules,
        identifier: RlnIdentifier,
        membership: RlnMembership,
        log: NullifierLog,
    ) -> Self {
        RlnChannel {
            rules,
            identifier,
            membership,
            log,
        }
    }

    pub fn rules(&self) -> &EpochRules {
        &self.rules
    }

    pub fn membership(&self) -> &RlnMembership {
        &self.membership
    }

    /// A registry update; returns whether the root changed.
    pub fn apply_registrations(
        &mut self,
        registrations: impl IntoIterator<Item = RlnRegistration>,
    ) -> Result<bool, MembershipError> {
        self.membership.apply(registrations)
    }

    /// Every check up to proof verification, in the order given in docs/ARCHITECTURE.md,
    /// "The anonymous channel (RLN)": decode (and unpad) → epoch → external nullifier → signal →
    /// root window → nullifier log.
    pub fn precheck(&self, topic: &str, raw: &[u8], now_ms: u64) -> Result<Pending, Outcome> {
        let message =
            RlnMessage::decode(raw).map_err(|e| Outcome::Reject(Rejection::Malformed(e)))?;
        if message.topic != topic {
            return Err(Outcome::Reject(Rejection::TopicMismatch {
                inner: message.topic,
                outer: topic.to_owned(),
            }));
        }
        let now = self.rules.epoch_of(now_ms);
        if message.epoch.abs_diff(now) > self.rules.max_epoch_gap {
            return Err(Outcome::Reject(Rejection::EpochOutOfRange {
                epoch: message.epoch,
                now,
                gap: self.rules.max_epoch_gap,
            }));
        }
        let v = &message.values;
        if v.external_nullifier() != self.identifier.external_nullifier(message.epoch) {
            return Err(Outcome::Reject(Rejection::WrongRlnIdentifier(
                message.epoch,
            )));
        }
        if v.x() != signal_hash(&message.topic, message.epoch, &message.payload) {
            return Err(Outcome::Reject(Rejection::SignalMismatch));
        }
        if !self.membership.roots().contains(&v.root()) {
            return Err(Outcome::Reject(Rejection::UnknownRoot));
        }
        match self.log.lookup(
            message.epoch,
            &message.nullifier(),
            &v.x(),
            &message.share_y(),
        ) {
            Seen::Duplicate => Err(Outcome::Ignore(Ignored::Duplicate)),
            // A double signal still needs its proof verified before it can slash anyone.
            Seen::Fresh | Seen::DoubleSignal { .. } => Ok(Pending {
                message,
                raw: Arc::from(raw),
            }),
        }
    }

    /// After verification: records a valid message in the nullifier log and says what to do.
    pub fn commit(&mut self, pending: Pending, proof_valid: bool, now_ms: u64) -> Outcome {
        if !proof_valid {
            return Outcome::Reject(Rejection::InvalidProof);
        }
        self.log.prune(*self.rules.acceptable(now_ms).start());
        let m = &pending.message;
        match self.log.insert(
            m.epoch,
            &m.nullifier(),
            m.values.x(),
            m.share_y(),
            pending.raw.clone(),
        ) {
            Ok(Seen::Fresh) => Outcome::Accept(Box::new(pending.message)),
            Ok(Seen::Duplicate) => Outcome::Ignore(Ignored::Duplicate),
            Ok(Seen::DoubleSignal { earlier }) => Outcome::Slash(SlashingEvidence {
                first: earlier.to_vec(),
                second: pending.raw.to_vec(),
            }),
            Err(LogFull) => Outcome::Ignore(Ignored::LogFull),
        }
    }

    /// Checks evidence up to proof verification: both messages decode, share one slot, carry
    /// different shares bound to their own signals, and the secret they reveal is a member's.
    pub fn examine(&self, evidence: &SlashingEvidence) -> Result<ExaminedEvidence, EvidenceError> {
        let decode = |which: &'static str, b: &[u8]| {
            RlnMessage::decode(b).map_err(|error| EvidenceError::Malformed { which, error })
        };
        let a = decode("first", &evidence.first)?;
        let b = decode("second", &evidence.second)?;
        if a.values.external_nullifier() != b.values.external_nullifier()
            || a.nullifier() != b.nullifier()
        {
            return Err(EvidenceError::NotSameSlot);
        }
        for (which, m) in [("first", &a), ("second", &b)] {
            if m.values.x() != signal_hash(&m.topic, m.epoch, &m.payload) {
                return Err(EvidenceError::SignalMismatch(which));
            }
        }
        let secret = compute_id_secret((a.values.x(), a.share_y()), (b.values.x(), b.share_y()))
            .map_err(|_| EvidenceError::SameShare)?;
        let identity = RlnIdentity::from_secret(secret);
        let (index, _) = self
            .membership
            .leaf_of(&identity)
            .ok_or(EvidenceError::NotAMember)?;
        Ok(ExaminedEvidence {
            proofs: [(a.proof, a.values), (b.proof, b.values)],
            identity,
            index,
        })
    }

    /// Removes a member whose evidence verified (or whose secret a removal list names); returns
    /// whether its leaf was dropped.
    pub fn remove(&mut self, identity: &RlnIdentity) -> bool {
        self.membership.remove(identity)
    }

    /// Our own message under `message_id`, ready for the proof pool. The caller allocates ids
    /// from a persisted counter so an id is never used twice in an epoch.
    pub fn draft(
        &self,
        identity: &RlnIdentity,
        topic: &str,
        payload: Vec<u8>,
        now_ms: u64,
        message_id: u32,
    ) -> Result<Draft, PublishError> {
        let (index, limit) = self
            .membership
            .leaf_of(identity)
            .ok_or(PublishError::NotAMember)?;
        if message_id >= limit {
            return Err(PublishError::QuotaExhausted {
                id: message_id,
                limit,
            });
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(PublishError::TooLarge { len: payload.len() });
        }
        let epoch = self.rules.epoch_of(now_ms);
        let witness = RLNWitnessInput::new_single()
            .identity_secret(identity.secret())
            .user_message_limit(Fr::from(u64::from(limit)))
            .merkle_proof(self.membership.merkle_proof(index)?)
            .x(signal_hash(topic, epoch, &payload))
            .external_nullifier(self.identifier.external_nullifier(epoch))
            .message_id(Fr::from(u64::from(message_id)))
            .build()
            .map_err(|e| PublishError::Witness(e.to_string()))?;
        Ok(Draft {
            topic: topic.to_owned(),
            payload,
            epoch,
            witness,
        })
    }

    /// The message-independent part of our witness under the current root (for a partial proof).
    pub fn partial_witness(
        &self,
        identity: &RlnIdentity,
    ) -> Result<RLNPartialWitnessInput, PublishError> {
        let (index, limit) = self
            .membership
            .leaf_of(identity)
            .ok_or(PublishError::NotAMember)?;
        RLNPartialWitnessInput::new()
            .identity_secret(identity.secret())
            .user_message_limit(Fr::from(u64::from(limit)))
            .merkle_proof(self.membership.merkle_proof(index)?)
            .build()
            .map_err(|e| PublishError::Witness(e.to_string()))
    }
}
