//! The anonymous channel's wire message: the application payload with its topic and timestamp,
//! the epoch, and a Groth16 RLN proof with its public values. No sender field exists; the proof
//! shows membership without saying which member.

use rln::prelude::{CanonicalDeserialize, CanonicalSerialize, Fr, Proof, RLNProofValues};
use thiserror::Error;

use crate::field::{fr_from_bytes, fr_to_bytes, FieldError};

/// Protobuf frame (hand-written prost derive; no protoc at build time).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RlnFrame {
    #[prost(string, tag = "1")]
    pub topic: String,
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub timestamp_ms: u64,
    #[prost(uint64, tag = "4")]
    pub epoch: u64,
    /// Compressed Groth16 proof (128 bytes).
    #[prost(bytes = "vec", tag = "5")]
    pub proof: Vec<u8>,
    /// Public values, 32-byte big-endian field elements.
    #[prost(bytes = "vec", tag = "6")]
    pub root: Vec<u8>,
    #[prost(bytes = "vec", tag = "7")]
    pub external_nullifier: Vec<u8>,
    #[prost(bytes = "vec", tag = "8")]
    pub nullifier: Vec<u8>,
    #[prost(bytes = "vec", tag = "9")]
    pub share_x: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    pub share_y: Vec<u8>,
}

/// Length of a compressed Groth16 proof over BN254.
pub const PROOF_LEN: usize = 128;

/// Why bytes are not an RLN message; each names the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("not a protobuf RLN frame: {0}")]
    Frame(String),
    #[error("field `{field}`: {error}")]
    Field {
        field: &'static str,
        error: FieldError,
    },
    #[error("field `proof`: expected a {PROOF_LEN}-byte compressed Groth16 proof, got {len} bytes that do not decode")]
    Proof { len: usize },
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct RlnMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub timestamp_ms: u64,
    pub epoch: u64,
    pub proof: Proof,
    pub values: RLNProofValues,
}

impl RlnMessage {
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let f = <RlnFrame as prost::Message>::decode(bytes)
            .map_err(|e| DecodeError::Frame(e.to_string()))?;
        let fr = |field: &'static str, b: &[u8]| {
            fr_from_bytes(b).map_err(|error| DecodeError::Field { field, error })
        };
        let values = RLNProofValues::new_single()
            .root(fr("root", &f.root)?)
            .external_nullifier(fr("external_nullifier", &f.external_nullifier)?)
            .nullifier(fr("nullifier", &f.nullifier)?)
            .x(fr("share_x", &f.share_x)?)
            .y(fr("share_y", &f.share_y)?)
            .build();
        if f.proof.len() != PROOF_LEN {
            return Err(DecodeError::Proof { len: f.proof.len() });
        }
        let proof = Proof::deserialize_compressed(&f.proof[..])
            .map_err(|_| DecodeError::Proof { len: f.proof.len() })?;
        Ok(RlnMessage {
            topic: f.topic,
            payload: f.payload,
            timestamp_ms: f.timestamp_ms,
            epoch: f.epoch,
            proof,
            values,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut proof = Vec::with_capacity(PROOF_LEN);
        self.proof
            .serialize_compressed(&mut proof)
            .expect("writing to a Vec cannot fail");
        let v = &self.values;
        let frame = RlnFrame {
            topic: self.topic.clone(),
            payload: self.payload.clone(),
            timestamp_ms: self.timestamp_ms,
            epoch: self.epoch,
            proof,
            root: fr_to_bytes(&v.root()).to_vec(),
            external_nullifier: fr_to_bytes(&v.external_nullifier()).to_vec(),
            nullifier: fr_to_bytes(&self.nullifier()).to_vec(),
            share_x: fr_to_bytes(&v.x()).to_vec(),
            share_y: fr_to_bytes(&self.share_y()).to_vec(),
        };
        prost::Message::encode_to_vec(&frame)
    }

    /// The nullifier (single-message-id proofs always carry one).
    pub fn nullifier(&self) -> Fr {
        self.values.nullifier().expect("single-message-id values")
    }

    pub fn share_y(&self) -> Fr {
        self.values.y().expect("single-message-id values")
    }
}
