//! What a member's header answer becomes before the watchdog weighs it (feature `altnet`):
//! p2p entries checked for 32-byte hashes, and the signed answer of `GET /v1/altnet/headers`,
//! whose signature by a node key authorized now names the operator it counts for.
//!
//! Place in the data flow: **a member's bytes (p2p reply or HTTP body) → [`SignedHeaders::verify`]
//! / `decode_entries` → `HeaderResponse` → `conclave_altnet::accept_range`**.

use conclave_altnet::{HeaderResponse, B256};
use conclave_core::{MembershipView, Moment, PeerId};
use conclave_net::HeaderEntry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Entries as (claimed hash, RLP); a hash that is not 32 bytes fails the whole answer.
pub(crate) fn decode_entries(entries: &[HeaderEntry]) -> Result<Vec<(B256, Vec<u8>)>, String> {
    entries
        .iter()
        .map(|e| {
            let hash: [u8; 32] = e
                .hash
                .as_slice()
                .try_into()
                .map_err(|_| format!("a header hash of {} bytes, not 32", e.hash.len()))?;
            Ok((B256::from(hash), e.rlp.clone()))
        })
        .collect()
}

/// The body of `GET /v1/altnet/headers`: a member's recent headers, signed by its node key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignedHeaders {
    pub peer_id: String,
    /// The node's public key (libp2p protobuf encoding), hex.
    pub public_key: String,
    pub from: u64,
    /// `[hash, rlp]` pairs, hex.
    pub headers: Vec<[String; 2]>,
    /// The node key's signature, hex, over SHA-256 of a domain tag, `from` and every hash and RLP.
    pub signature: String,
}

impl SignedHeaders {
    /// What the signature covers: a domain tag, the start height and every hash and RLP.
    fn digest(from: u64, entries: &[HeaderEntry]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"conclave/altnet/headers/1");
        h.update(from.to_be_bytes());
        for e in entries {
            h.update((e.hash.len() as u64).to_be_bytes());
            h.update(&e.hash);
            h.update((e.rlp.len() as u64).to_be_bytes());
            h.update(&e.rlp);
        }
        h.finalize().into()
    }

    pub fn sign(net: &conclave_net::NetworkService, from: u64, entries: &[HeaderEntry]) -> Self {
        Self::build(&net.public_key(), from, entries, |d| net.sign(d))
    }

    /// An answer signed by `sign` for `key` (the node's own signer, or a test's key).
    pub fn build(
        key: &libp2p::identity::PublicKey,
        from: u64,
        entries: &[HeaderEntry],
        sign: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Self {
        SignedHeaders {
            peer_id: key.to_peer_id().to_string(),
            public_key: hex::encode(key.encode_protobuf()),
            from,
            headers: entries
                .iter()
                .map(|e| [hex::encode(&e.hash), hex::encode(&e.rlp)])
                .collect(),
            signature: hex::encode(sign(&Self::digest(from, entries))),
        }
    }

    /// Checks the signature and that the signer's node key is authorized at `at` (an expired,
    /// not yet valid or revoked key names no operator); the answer as that member's response.
    pub fn verify(
        &self,
        view: &MembershipView,
        at: Moment,
        from: u64,
    ) -> Result<(PeerId, HeaderResponse), String> {
        if self.from != from {
            return Err(format!("answer starts at {}, asked for {from}", self.from));
        }
        let key_bytes =
            hex::decode(&self.public_key).map_err(|e| format!("public_key is not hex: {e}"))?;
        let key = libp2p::identity::PublicKey::try_decode_protobuf(&key_bytes)
            .map_err(|e| format!("public_key is not a libp2p key: {e}"))?;
        let peer = key.to_peer_id();
        if peer.to_string() != self.peer_id {
            return Err(format!(
                "public_key belongs to {peer}, not the claimed {}",
                self.peer_id
            ));
        }
        let entries = self
            .headers
            .iter()
            .map(|[hash, rlp]| {
                Ok(HeaderEntry {
                    hash: hex::decode(hash).map_err(|e| format!("hash is not hex: {e}"))?,
                    rlp: hex::decode(rlp).map_err(|e| format!("rlp is not hex: {e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let signature =
            hex::decode(&self.signature).map_err(|e| format!("signature is not hex: {e}"))?;
        if !key.verify(&Self::digest(from, &entries), &signature) {
            return Err(format!("signature by {peer} does not verify"));
        }
        let operator = view
            .authorization(&peer, at)
            .map(|a| a.operator)
            .map_err(|e| format!("{peer} is not a member now: {e}"))?;
        let headers = decode_entries(&entries)?;
        Ok((peer, HeaderResponse { operator, headers }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::{Expiry, NodeAuthorization, OperatorId, ViewBuilder, ViewSource};
    use libp2p::identity::Keypair;

    const NOW: Moment = Moment {
        unix_secs: 1_000,
        block: Some(100),
    };

    fn signed_by(key: &Keypair, from: u64, entries: &[HeaderEntry]) -> SignedHeaders {
        SignedHeaders::build(&key.public(), from, entries, |d| key.sign(d).unwrap())
    }

    fn view_with(peer: PeerId, operator: OperatorId, expiry: Option<Expiry>) -> MembershipView {
        let mut b = ViewBuilder::new(ViewSource::Empty);
        let _ = b.operator(operator);
        b.node(
            peer,
            NodeAuthorization {
                operator,
                scopes: Default::default(),
                valid_from_block: None,
                expiry,
                addresses: vec![],
            },
        )
        .unwrap();
        b.build()
    }

    #[test]
    fn signed_answers_name_their_operator_and_refuse_tampering_and_strangers() {
        let key = Keypair::generate_ed25519();
        let op = OperatorId([7; 20]);
        let view = view_with(key.public().to_peer_id(), op, None);
        let entries = vec![HeaderEntry {
            hash: vec![1; 32],
            rlp: vec![0xc0],
        }];
        let good = signed_by(&key, 10, &entries);
        let (peer, answer) = good.verify(&view, NOW, 10).unwrap();
        assert_eq!(peer, key.public().to_peer_id());
        assert_eq!(answer.operator, op);
        assert_eq!(answer.headers[0].0, B256::repeat_byte(1));

        let mut tampered = good.clone();
        tampered.headers[0][1] = "c1".into();
        assert!(tampered
            .verify(&view, NOW, 10)
            .unwrap_err()
            .contains("does not verify"));
        assert!(good
            .verify(&view, NOW, 11)
            .unwrap_err()
            .contains("asked for 11"));
        let stranger = Keypair::generate_ed25519();
        let theirs = signed_by(&stranger, 10, &entries);
        assert!(theirs
            .verify(&view, NOW, 10)
            .unwrap_err()
            .contains("is not a member"));
        let mut lying = good.clone();
        lying.peer_id = stranger.public().to_peer_id().to_string();
        assert!(lying
            .verify(&view, NOW, 10)
            .unwrap_err()
            .contains("not the claimed"));
        let mut short = signed_by(
            &key,
            10,
            &[HeaderEntry {
                hash: vec![1; 31],
                rlp: vec![0xc0],
            }],
        );
        assert!(short.verify(&view, NOW, 10).unwrap_err().contains("not 32"));
        short.signature = "zz".into();
        assert!(short
            .verify(&view, NOW, 10)
            .unwrap_err()
            .contains("not hex"));
    }

    #[test]
    fn an_answer_signed_by_a_key_whose_delegation_ended_names_no_operator() {
        let key = Keypair::generate_ed25519();
        let entries = vec![HeaderEntry {
            hash: vec![1; 32],
            rlp: vec![0xc0],
        }];
        let answer = signed_by(&key, 10, &entries);
        for expiry in [Expiry::UnixSecs(NOW.unix_secs), Expiry::Block(100)] {
            let view = view_with(key.public().to_peer_id(), OperatorId([7; 20]), Some(expiry));
            let e = answer.verify(&view, NOW, 10).unwrap_err();
            assert!(e.contains("expired"), "{e}");
        }
    }
}
