//! The anonymous channel's wire message: the application payload (padded to a size bucket) with
//! its topic, the epoch, and a Groth16 RLN proof with its public values. No sender field exists;
//! the proof shows membership without saying which member. No time finer than the epoch exists
//! either, and every payload of a bucket travels at the bucket's size.

use rln::prelude::{CanonicalDeserialize, CanonicalSerialize, Fr, Proof, RLNProofValues};
use thiserror::Error;

use crate::field::{fr_from_bytes, fr_to_bytes, FieldError};

/// Protobuf frame (hand-written prost derive; no protoc at build time).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RlnFrame {
    #[prost(string, tag = "1")]
    pub topic: String,
    /// The payload padded ([`pad`]); tag 3 (a millisecond timestamp until wire version 2) is
    /// retired.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
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

/// The sizes a padded payload may have: a 4-byte length, the payload, then zeros up to the
/// smallest bucket that holds both. An observer learns the bucket, not the length.
pub const PAD_BUCKETS: [usize; 5] = [256, 1024, 4096, 16_384, 65_536];

/// The largest payload the channel carries (the largest bucket less its length prefix).
pub const MAX_PAYLOAD: usize = PAD_BUCKETS[PAD_BUCKETS.len() - 1] - 4;

/// Why a payload cannot be padded, or padded bytes are not canonical.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PadError {
    #[error("a payload of {len} bytes exceeds the largest of {MAX_PAYLOAD}")]
    TooLarge { len: usize },
    #[error("{len} padded bytes is not a bucket size ({PAD_BUCKETS:?})")]
    NotABucket { len: usize },
    #[error("the length prefix says {claimed} bytes, more than the {room} the bucket holds")]
    Length { claimed: usize, room: usize },
    #[error("the padding is not all zeros")]
    NonZeroFill,
}

/// `payload` in its bucket: length prefix (u32, big-endian), payload, zero fill.
pub fn pad(payload: &[u8]) -> Result<Vec<u8>, PadError> {
    let need = payload.len() + 4;
    let bucket = PAD_BUCKETS
        .into_iter()
        .find(|b| *b >= need)
        .ok_or(PadError::TooLarge { len: payload.len() })?;
    let mut out = Vec::with_capacity(bucket);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(bucket, 0);
    Ok(out)
}

/// The payload inside canonical padding: exactly a bucket, a length that fits, zeros after it
/// (so the padding cannot carry anything, and one payload has one encoding).
pub fn unpad(padded: &[u8]) -> Result<&[u8], PadError> {
    if !PAD_BUCKETS.contains(&padded.len()) {
        return Err(PadError::NotABucket { len: padded.len() });
    }
    let (len, rest) = padded.split_at(4);
    let claimed = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if claimed > rest.len() {
        return Err(PadError::Length {
            claimed,
            room: rest.len(),
        });
    }
    let (payload, fill) = rest.split_at(claimed);
    if fill.iter().any(|b| *b != 0) {
        return Err(PadError::NonZeroFill);
    }
    Ok(payload)
}

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
    #[error("field `payload`: {0}")]
    Padding(PadError),
}

/// A decoded message (its payload unpadded).
#[derive(Debug, Clone, PartialEq)]
pub struct RlnMessage {
    pub topic: String,
    pub payload: Vec<u8>,
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
        let payload = unpad(&f.payload).map_err(DecodeError::Padding)?.to_vec();
        Ok(RlnMessage {
            topic: f.topic,
            payload,
            epoch: f.epoch,
            proof,
            values,
        })
    }

    /// The wire bytes. A message whose payload exceeds [`MAX_PAYLOAD`] is never built
    /// ([`crate::RlnChannel::draft`] refuses it), so padding cannot fail here.
    pub fn encode(&self) -> Vec<u8> {
        let mut proof = Vec::with_capacity(PROOF_LEN);
        self.proof
            .serialize_compressed(&mut proof)
            .expect("writing to a Vec cannot fail");
        let v = &self.values;
        let frame = RlnFrame {
            topic: self.topic.clone(),
            payload: pad(&self.payload).expect("drafts hold payloads that fit a bucket"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_travel_at_their_bucket_size_and_come_back_whole() {
        for (len, bucket) in [(0, 256), (252, 256), (253, 1024), (MAX_PAYLOAD, 65_536)] {
            let payload = vec![7u8; len];
            let padded = pad(&payload).unwrap();
            assert_eq!(padded.len(), bucket, "payload of {len}");
            assert_eq!(unpad(&padded).unwrap(), &payload[..]);
        }
        assert_eq!(
            pad(&vec![0; MAX_PAYLOAD + 1]),
            Err(PadError::TooLarge {
                len: MAX_PAYLOAD + 1
            })
        );
    }

    #[test]
    fn padding_that_is_not_canonical_is_refused() {
        let mut padded = pad(b"hi").unwrap();
        assert_eq!(
            unpad(&padded[..255]),
            Err(PadError::NotABucket { len: 255 })
        );
        padded[200] = 1;
        assert_eq!(unpad(&padded), Err(PadError::NonZeroFill));
        let mut long = pad(b"hi").unwrap();
        long[..4].copy_from_slice(&300u32.to_be_bytes());
        assert_eq!(
            unpad(&long),
            Err(PadError::Length {
                claimed: 300,
                room: 252
            })
        );
    }
}
