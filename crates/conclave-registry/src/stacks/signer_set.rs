//! From the contract's signer set to a [`MembershipView`]: each key must be a point on the
//! curve, appear once, and becomes both the member's PeerId (an sBTC signer's libp2p key is its
//! signer key) and its operator id (the key's hash160, the hash in its Stacks address).

use std::collections::BTreeSet;

use conclave_core::{
    MembershipView, NodeAuthorization, OperatorId, PeerId, TopicName, ViewBuilder, ViewSource,
};
use libp2p_identity::secp256k1;
use ripemd::Ripemd160;
use sha2::{Digest, Sha256};

use super::clarity::{self, KEY_LEN};
use super::StacksError;

/// A signer's compressed secp256k1 public key, checked to be a point, with what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignerKey {
    pub compressed: [u8; KEY_LEN],
    pub peer: PeerId,
    pub operator: OperatorId,
}

/// Why 33 bytes are not a signer key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("0x{} is not a compressed secp256k1 point (02 or 03, then an x on the curve)", hex::encode(.0))]
pub struct NotAPoint(pub [u8; KEY_LEN]);

impl SignerKey {
    /// Checks that `compressed` is the canonical encoding of a curve point.
    pub fn from_compressed(compressed: [u8; KEY_LEN]) -> Result<Self, NotAPoint> {
        let key = secp256k1::PublicKey::try_from_bytes(&compressed)
            .ok()
            // The decoder accepts other prefixes (hybrid encodings) for the same point; only the
            // compressed form names the PeerId the signer actually has.
            .filter(|k| k.to_bytes() == compressed)
            .ok_or(NotAPoint(compressed))?;
        let peer = PeerId::from_public_key(&libp2p_identity::PublicKey::from(key));
        let hash = Ripemd160::digest(Sha256::digest(compressed));
        Ok(SignerKey {
            compressed,
            peer,
            operator: OperatorId(hash.into()),
        })
    }

    /// Parses a key written in hex (`0x` optional), as in `stacks.candidates`.
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let mut compressed = [0u8; KEY_LEN];
        hex::decode_to_slice(digits, &mut compressed)
            .map_err(|_| format!("`{s}` is not 66 hex digits (a 33-byte compressed key)"))?;
        Self::from_compressed(compressed).map_err(|e| e.to_string())
    }
}

/// The registry's state at one read: the signer set, its threshold and its aggregate key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSet {
    pub signers: Vec<SignerKey>,
    pub threshold: u128,
    /// As stored: `0x00` until the first rotation sets a 33-byte key.
    pub aggregate_key: Vec<u8>,
}

impl SignerSet {
    /// Decodes the three data variables. Any defect refuses the whole set, naming the item.
    pub fn decode(set: &[u8], threshold: &[u8], aggregate: &[u8]) -> Result<Self, StacksError> {
        let keys = clarity::signer_set(set).map_err(|e| StacksError::Value {
            var: super::SIGNER_SET_VAR,
            source: e,
        })?;
        let mut signers: Vec<SignerKey> = Vec::with_capacity(keys.len());
        for (index, key) in keys.into_iter().enumerate() {
            let signer = SignerKey::from_compressed(key)
                .map_err(|source| StacksError::NotAPoint { index, source })?;
            if let Some(first) = signers.iter().position(|s| s.compressed == key) {
                return Err(StacksError::DuplicateKey { index, first });
            }
            signers.push(signer);
        }
        let threshold =
            clarity::uint(threshold, super::THRESHOLD_VAR).map_err(|e| StacksError::Value {
                var: super::THRESHOLD_VAR,
                source: e,
            })?;
        let aggregate_key =
            clarity::buffer(aggregate, KEY_LEN, super::AGGREGATE_VAR).map_err(|e| {
                StacksError::Value {
                    var: super::AGGREGATE_VAR,
                    source: e,
                }
            })?;
        Ok(SignerSet {
            signers,
            threshold,
            aggregate_key,
        })
    }

    /// The view: every signer with `member_scopes`; every candidate not already a signer with
    /// `candidate_scopes`. Candidates join a set: an empty set admits no one, candidates
    /// included (a registry wiped or not yet bootstrapped fails closed). The contract knows no
    /// addresses: members find each other through the configured seeds.
    pub fn to_view(
        &self,
        candidates: &[SignerKey],
        member_scopes: &BTreeSet<TopicName>,
        candidate_scopes: &BTreeSet<TopicName>,
        source: ViewSource,
    ) -> MembershipView {
        let mut b = ViewBuilder::new(source);
        let candidates = candidates.iter().filter(|c| {
            !self.signers.is_empty() && !self.signers.iter().any(|s| s.compressed == c.compressed)
        });
        let entries = self
            .signers
            .iter()
            .map(|s| (s, member_scopes))
            .chain(candidates.map(|c| (c, candidate_scopes)));
        for (key, scopes) in entries {
            // Keys are distinct (decode and config validation refuse repeats) and each is its
            // own operator, so neither call can fail.
            let added = b.operator(key.operator).and_then(|()| {
                b.node(
                    key.peer,
                    NodeAuthorization {
                        operator: key.operator,
                        scopes: scopes.clone(),
                        valid_from_block: None,
                        expiry: None,
                        addresses: Vec::new(),
                    },
                )
            });
            debug_assert!(added.is_ok(), "{added:?}");
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::{Moment, ViewSource};

    const G: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    const G2: &str = "02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";

    fn set_bytes(keys: &[&str]) -> Vec<u8> {
        let mut out = vec![0x0b];
        out.extend_from_slice(&(keys.len() as u32).to_be_bytes());
        for k in keys {
            out.extend_from_slice(&[0x02, 0, 0, 0, 33]);
            out.extend_from_slice(&hex::decode(k).unwrap());
        }
        out
    }

    const THRESHOLD_2: [u8; 17] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const NO_AGGREGATE: [u8; 6] = [2, 0, 0, 0, 1, 0];

    fn scopes(names: &[&str]) -> BTreeSet<TopicName> {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn a_signer_key_is_its_peer_id_and_its_stacks_address_hash() {
        let k = SignerKey::from_hex(G).unwrap();
        let libp2p_key = libp2p_identity::PublicKey::from(
            secp256k1::PublicKey::try_from_bytes(&hex::decode(G).unwrap()).unwrap(),
        );
        assert_eq!(k.peer, libp2p_key.to_peer_id());
        // hash160(G): the hash of the well-known address of private key 1.
        assert_eq!(
            hex::encode(k.operator.0),
            "751e76e8199196d454941c45d1b3a323f1433bd6"
        );
    }

    #[test]
    fn non_points_and_other_encodings_are_refused() {
        let mut non_point = [0xff; 33];
        non_point[0] = 0x02;
        assert!(SignerKey::from_compressed(non_point).is_err());
        // The same point as G under a hybrid prefix: not the key G's owner has.
        let mut hybrid = [0u8; 33];
        hex::decode_to_slice(G, &mut hybrid).unwrap();
        hybrid[0] = 0x06;
        assert!(SignerKey::from_compressed(hybrid).is_err());
        assert!(SignerKey::from_hex("02abcd").is_err());
    }

    #[test]
    fn a_set_becomes_members_and_candidates_get_their_own_scopes() {
        let set = SignerSet::decode(&set_bytes(&[G]), &THRESHOLD_2, &NO_AGGREGATE).unwrap();
        assert_eq!(set.threshold, 2);
        assert_eq!(set.aggregate_key, vec![0]);
        let g = SignerKey::from_hex(G).unwrap();
        let g2 = SignerKey::from_hex(G2).unwrap();
        let view = set.to_view(
            &[g2, g],
            &scopes(&["sbtc", "dkg"]),
            &scopes(&["dkg"]),
            ViewSource::Empty,
        );
        let at = Moment {
            unix_secs: 0,
            block: None,
        };
        assert_eq!(view.members_at(at).count(), 2);
        let member = view.authorization(&g.peer, at).unwrap();
        assert_eq!(member.scopes, scopes(&["sbtc", "dkg"]));
        let candidate = view.authorization(&g2.peer, at).unwrap();
        assert_eq!(candidate.scopes, scopes(&["dkg"]));
        assert_eq!(candidate.operator, g2.operator);
    }

    #[test]
    fn one_bad_key_refuses_the_whole_set() {
        let mut non_point = "02".to_owned();
        non_point.push_str(&"ff".repeat(32));
        let err = SignerSet::decode(&set_bytes(&[G, &non_point]), &THRESHOLD_2, &NO_AGGREGATE)
            .unwrap_err();
        assert!(
            matches!(err, StacksError::NotAPoint { index: 1, .. }),
            "{err}"
        );
        let err =
            SignerSet::decode(&set_bytes(&[G, G2, G]), &THRESHOLD_2, &NO_AGGREGATE).unwrap_err();
        assert!(
            matches!(err, StacksError::DuplicateKey { index: 2, first: 0 }),
            "{err}"
        );
        let err = SignerSet::decode(&set_bytes(&[G]), &NO_AGGREGATE, &NO_AGGREGATE).unwrap_err();
        assert!(
            err.to_string().contains(super::super::THRESHOLD_VAR),
            "{err}"
        );
    }

    #[test]
    fn an_empty_set_admits_no_one() {
        let set = SignerSet::decode(&set_bytes(&[]), &THRESHOLD_2, &NO_AGGREGATE).unwrap();
        let candidate = SignerKey::from_hex(G).unwrap();
        let view = set.to_view(
            &[candidate],
            &scopes(&["sbtc"]),
            &scopes(&["dkg"]),
            ViewSource::Empty,
        );
        assert_eq!(view.nodes().count(), 0);
    }
}
