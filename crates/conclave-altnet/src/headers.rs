//! Accepting a header range fetched from members: what makes headers from the network good
//! enough to stand in for our own chain source.
//!
//! A range is accepted only when (1) every header's hash is the keccak of its RLP encoding and
//! equals the hash the member claimed, (2) the range links by parent hash to our last good header
//! and through itself, and (3) members of at least `needed` (f+1) distinct operators returned the
//! same hashes (all of their answer or its start). A member can lie about anything; f colluding
//! operators cannot reach f+1.

use alloy::consensus::Header;
use alloy::primitives::B256;
use alloy::rlp::Decodable;
use conclave_core::OperatorId;

/// One member's answer: (claimed hash, RLP-encoded header) for consecutive heights.
#[derive(Debug, Clone)]
pub struct HeaderResponse {
    pub operator: OperatorId,
    pub headers: Vec<(B256, Vec<u8>)>,
}

/// What was wrong with one member's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseFault {
    #[error("no headers")]
    Empty,
    #[error("header {index} is not an RLP-encoded EVM header: {error}")]
    Undecodable { index: usize, error: String },
    #[error("header {number} hashes to {computed}, not the claimed {claimed}")]
    HashMismatch {
        number: u64,
        claimed: B256,
        computed: B256,
    },
    #[error("header {number} has parent {parent}, expected {expected} (height {expected_number})")]
    DoesNotLink {
        number: u64,
        parent: B256,
        expected: B256,
        expected_number: u64,
    },
}

/// Why no range was accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeRefusal {
    #[error("no member answered")]
    NoAnswers,
    #[error(
        "only {agreeing} distinct operators agree on the best range, {needed} needed ({} answers refused)",
        faults.len()
    )]
    TooFewOperators {
        agreeing: usize,
        needed: usize,
        faults: Vec<(OperatorId, ResponseFault)>,
    },
}

/// A range members agreed on, from our last good header's child on.
#[derive(Debug, Clone)]
pub struct AcceptedRange {
    pub headers: Vec<Header>,
    pub hashes: Vec<B256>,
    /// The operators whose members returned exactly this range.
    pub operators: Vec<OperatorId>,
    /// Answers refused on the way, with their reasons.
    pub faults: Vec<(OperatorId, ResponseFault)>,
}

/// Checks one answer: decodes, re-hashes and links it to `anchor` (our last good header).
fn check(
    anchor: (u64, B256),
    r: &HeaderResponse,
) -> Result<(Vec<Header>, Vec<B256>), ResponseFault> {
    if r.headers.is_empty() {
        return Err(ResponseFault::Empty);
    }
    let (mut prev_number, mut prev_hash) = anchor;
    let mut headers = Vec::with_capacity(r.headers.len());
    let mut hashes = Vec::with_capacity(r.headers.len());
    for (index, (claimed, rlp)) in r.headers.iter().enumerate() {
        let header =
            Header::decode(&mut rlp.as_slice()).map_err(|e| ResponseFault::Undecodable {
                index,
                error: e.to_string(),
            })?;
        let computed = header.hash_slow();
        if computed != *claimed {
            return Err(ResponseFault::HashMismatch {
                number: header.number,
                claimed: *claimed,
                computed,
            });
        }
        if header.parent_hash != prev_hash || header.number != prev_number + 1 {
            return Err(ResponseFault::DoesNotLink {
                number: header.number,
                parent: header.parent_hash,
                expected: prev_hash,
                expected_number: prev_number + 1,
            });
        }
        (prev_number, prev_hash) = (header.number, computed);
        headers.push(header);
        hashes.push(computed);
    }
    Ok((headers, hashes))
}

/// Accepts the longest range that members of at least `needed` distinct operators returned,
/// each as all or the start of its answer (members at different heights agree on the heights
/// they share). Several answers from members of one operator count once (its first valid one).
pub fn accept_range(
    anchor: (u64, B256),
    responses: &[HeaderResponse],
    needed: usize,
) -> Result<AcceptedRange, RangeRefusal> {
    if responses.is_empty() {
        return Err(RangeRefusal::NoAnswers);
    }
    let needed = needed.max(1);
    let mut faults = Vec::new();
    let mut valid: Vec<(OperatorId, Vec<Header>, Vec<B256>)> = Vec::new();
    for r in responses {
        if valid.iter().any(|(op, ..)| *op == r.operator) {
            continue;
        }
        match check(anchor, r) {
            Ok((headers, hashes)) => valid.push((r.operator, headers, hashes)),
            Err(fault) => faults.push((r.operator, fault)),
        }
    }
    let supporters = |hashes: &[B256]| -> Vec<OperatorId> {
        valid
            .iter()
            .filter(|(_, _, h)| h.starts_with(hashes))
            .map(|(op, ..)| *op)
            .collect()
    };
    // (length, index of an answer holding it, supporters) of the best range so far.
    let mut best: Option<(usize, usize, Vec<OperatorId>)> = None;
    for (i, (_, _, hashes)) in valid.iter().enumerate() {
        for len in (1..=hashes.len()).rev() {
            if best.as_ref().is_some_and(|(l, ..)| *l >= len) {
                break;
            }
            let ops = supporters(&hashes[..len]);
            if ops.len() >= needed {
                best = Some((len, i, ops));
                break;
            }
        }
    }
    match best {
        Some((len, i, operators)) => Ok(AcceptedRange {
            headers: valid[i].1[..len].to_vec(),
            hashes: valid[i].2[..len].to_vec(),
            operators,
            faults,
        }),
        None => Err(RangeRefusal::TooFewOperators {
            agreeing: valid
                .iter()
                .map(|(_, _, h)| supporters(&h[..1]).len())
                .max()
                .unwrap_or(0),
            needed,
            faults,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::rlp::Encodable;

    fn op(n: u8) -> OperatorId {
        OperatorId([n; 20])
    }

    /// A chain of `n` headers after `anchor`; `salt` makes a different (forked) chain.
    fn chain(anchor: (u64, B256), n: u64, salt: u64) -> Vec<(B256, Vec<u8>)> {
        let (mut number, mut parent) = anchor;
        (0..n)
            .map(|_| {
                number += 1;
                let h = Header {
                    parent_hash: parent,
                    number,
                    timestamp: 1_700_000_000 + number * 12,
                    gas_limit: 30_000_000,
                    extra_data: salt.to_be_bytes().to_vec().into(),
                    ..Header::default()
                };
                let mut rlp = Vec::new();
                h.encode(&mut rlp);
                parent = h.hash_slow();
                (parent, rlp)
            })
            .collect()
    }

    fn answer(operator: OperatorId, headers: Vec<(B256, Vec<u8>)>) -> HeaderResponse {
        HeaderResponse { operator, headers }
    }

    const ANCHOR: (u64, B256) = (100, B256::repeat_byte(0xaa));

    #[test]
    fn f_plus_one_operators_agreeing_on_a_linked_range_is_accepted() {
        let good = chain(ANCHOR, 5, 0);
        let forked = chain(ANCHOR, 5, 1);
        let r = accept_range(
            ANCHOR,
            &[
                answer(op(1), good.clone()),
                answer(op(2), good.clone()),
                answer(op(3), forked),
            ],
            2,
        )
        .unwrap();
        assert_eq!(r.operators, vec![op(1), op(2)]);
        assert_eq!(r.headers.len(), 5);
        assert_eq!(r.headers[0].number, 101);
        assert_eq!(r.hashes, good.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    }

    #[test]
    fn members_at_different_heights_agree_on_the_heights_they_share() {
        let long = chain(ANCHOR, 6, 0);
        let short = long[..4].to_vec();
        let r = accept_range(
            ANCHOR,
            &[
                answer(op(1), long.clone()),
                answer(op(2), short),
                answer(op(3), long[..5].to_vec()),
            ],
            2,
        )
        .unwrap();
        // Two operators returned at least 5 headers; only one returned the sixth.
        assert_eq!(r.headers.len(), 5);
        assert_eq!(r.operators, vec![op(1), op(3)]);
        let all = accept_range(ANCHOR, &[answer(op(1), long.clone())], 1).unwrap();
        assert_eq!(all.hashes.len(), 6);
    }

    #[test]
    fn fewer_than_f_plus_one_distinct_operators_is_refused() {
        let good = chain(ANCHOR, 3, 0);
        // Two answers, but from members of one operator: they count once.
        let err = accept_range(
            ANCHOR,
            &[answer(op(1), good.clone()), answer(op(1), good)],
            2,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                RangeRefusal::TooFewOperators {
                    agreeing: 1,
                    needed: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            accept_range(ANCHOR, &[], 2).unwrap_err(),
            RangeRefusal::NoAnswers
        );
    }

    #[test]
    fn a_range_that_does_not_link_is_refused_with_the_reason() {
        let other_anchor = (100, B256::repeat_byte(0xbb));
        let unlinked = chain(other_anchor, 3, 0);
        let mut gap = chain(ANCHOR, 4, 0);
        gap.remove(1);
        let err = accept_range(
            ANCHOR,
            &[
                answer(op(1), unlinked.clone()),
                answer(op(2), unlinked),
                answer(op(3), gap),
            ],
            2,
        )
        .unwrap_err();
        let RangeRefusal::TooFewOperators {
            agreeing: 0,
            faults,
            ..
        } = err
        else {
            panic!("{err:?}")
        };
        assert!(
            matches!(faults[0].1, ResponseFault::DoesNotLink { number: 101, .. }),
            "{faults:?}"
        );
        assert!(
            matches!(faults[2].1, ResponseFault::DoesNotLink { number: 103, .. }),
            "{faults:?}"
        );
    }

    #[test]
    fn a_hash_that_is_not_the_headers_keccak_is_refused() {
        let mut lie = chain(ANCHOR, 2, 0);
        lie[1].0 = B256::repeat_byte(0x11);
        let mut garbage = chain(ANCHOR, 2, 0);
        garbage[0].1 = vec![0xc0, 0x01];
        let good = chain(ANCHOR, 2, 0);
        let err = accept_range(
            ANCHOR,
            &[
                answer(op(1), lie),
                answer(op(2), garbage),
                answer(op(3), good),
            ],
            2,
        )
        .unwrap_err();
        let RangeRefusal::TooFewOperators {
            agreeing: 1,
            faults,
            ..
        } = err
        else {
            panic!("{err:?}")
        };
        assert!(
            matches!(faults[0].1, ResponseFault::HashMismatch { number: 102, .. }),
            "{faults:?}"
        );
        assert!(
            matches!(faults[1].1, ResponseFault::Undecodable { index: 0, .. }),
            "{faults:?}"
        );
        assert!(faults[0].1.to_string().contains("not the claimed"));
    }
}
