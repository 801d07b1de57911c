//! The anonymous channel with real Groth16 proofs: every validation outcome, slashing and a late
//! joiner's tree, on the sans-IO channel and the proof pool (no network).

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

use conclave_rln::{
    fr_to_bytes, DecodeError, EpochRules, EvidenceError, Ignored, NullifierLog, Outcome, ProofPool,
    PublishError, Rejection, RlnChannel, RlnFrame, RlnIdentifier, RlnIdentity, RlnMembership,
    RlnMessage, RlnRegistration,
};
use prost::Message;

const TOPIC: &str = "anon";
const NOW: u64 = 1_800_000_000_000;
const LIMIT: u32 = 2;

struct Net {
    ids: Vec<RlnIdentity>,
    regs: Vec<RlnRegistration>,
    pool: ProofPool,
}

fn channel(net: &Net, identifier: &str) -> RlnChannel {
    let mut membership = RlnMembership::new(3);
    membership.apply(net.regs.clone()).unwrap();
    RlnChannel::new(
        EpochRules::default(),
        RlnIdentifier::new(identifier),
        membership,
        NullifierLog::new(10_000, 1 << 24),
    )
}

fn net(members: usize) -> Net {
    let ids: Vec<RlnIdentity> = (0..members).map(|_| RlnIdentity::generate()).collect();
    let regs = ids
        .iter()
        .enumerate()
        .map(|(i, id)| RlnRegistration {
            index: i as u32 * 3 + 1,
            rate_commitment: id.rate_commitment(LIMIT),
            limit: LIMIT,
        })
        .collect();
    Net {
        ids,
        regs,
        pool: ProofPool::new(2, 16),
    }
}

async fn make(
    net: &Net,
    ch: &RlnChannel,
    who: usize,
    payload: &[u8],
    now: u64,
    id: u32,
) -> Vec<u8> {
    let draft = ch
        .draft(&net.ids[who], TOPIC, payload.to_vec(), now, id)
        .unwrap();
    let witness = draft.witness.clone();
    let proved = net.pool.prove(witness, None).await.unwrap().value;
    draft.finish(proved.0, proved.1).encode()
}

async fn receive(net: &Net, ch: &mut RlnChannel, raw: &[u8], now: u64) -> Outcome {
    let pending = match ch.precheck(TOPIC, raw, now) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let (proof, values) = pending.proof();
    let ok = net.pool.verify(proof, values).await.unwrap().value;
    ch.commit(pending, ok, now)
}

fn rejected(o: &Outcome) -> &'static str {
    match o {
        Outcome::Reject(r) => r.label(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn reframe(raw: &[u8], edit: impl FnOnce(&mut RlnFrame)) -> Vec<u8> {
    let mut f = RlnFrame::decode(raw).unwrap();
    edit(&mut f);
    f.encode_to_vec()
}

#[tokio::test]
async fn honest_duplicate_double_signal_and_removal() {
    let net = net(5);
    let sender = channel(&net, "conclave/test");
    let mut rx = channel(&net, "conclave/test");

    let m1 = make(&net, &sender, 0, b"hello", NOW, 0).await;
    match receive(&net, &mut rx, &m1, NOW + 50).await {
        Outcome::Accept(m) => {
            assert_eq!(m.payload, b"hello");
            assert_eq!(m.topic, TOPIC);
        }
        other => panic!("honest message not accepted: {other:?}"),
    }
    // Same message re-proved (new proof bytes, same share): a duplicate, ignored, never slashed.
    let again = make(&net, &sender, 0, b"hello", NOW, 0).await;
    assert_ne!(again, m1);
    assert_eq!(
        receive(&net, &mut rx, &again, NOW + 60).await,
        Outcome::Ignore(Ignored::Duplicate)
    );
    // Its second quota slot is fine.
    let m2 = make(&net, &sender, 0, b"second", NOW, 1).await;
    assert!(matches!(
        receive(&net, &mut rx, &m2, NOW + 70).await,
        Outcome::Accept(_)
    ));
    // The drafting side refuses a third id...
    assert_eq!(
        sender
            .draft(&net.ids[0], TOPIC, b"x".to_vec(), NOW, LIMIT)
            .err(),
        Some(PublishError::QuotaExhausted {
            id: LIMIT,
            limit: LIMIT
        })
    );
    // ...so a spammer reuses an id with another payload: a double signal.
    let spam = make(&net, &sender, 0, b"spam", NOW, 0).await;
    let evidence = match receive(&net, &mut rx, &spam, NOW + 80).await {
        Outcome::Slash(e) => e,
        other => panic!("double signal not caught: {other:?}"),
    };

    // Any node checks the evidence itself: the secret it reveals is member 0's leaf.
    let mut other = channel(&net, "conclave/test");
    let examined = other.examine(&evidence).unwrap();
    assert_eq!(examined.index, net.regs[0].index);
    assert_eq!(examined.identity.secret_bytes(), net.ids[0].secret_bytes());
    for (proof, values) in examined.proofs.clone() {
        assert!(net.pool.verify(proof, values).await.unwrap().value);
    }
    assert!(other.remove(&examined.identity));
    assert!(rx.remove(&examined.identity));
    assert_eq!(other.membership().root(), rx.membership().root());
    assert!(matches!(
        other.examine(&evidence),
        Err(EvidenceError::NotAMember)
    ));

    // The removed member can no longer draft, and its messages under the old root are refused.
    assert_eq!(
        sender
            .draft(&net.ids[0], TOPIC, b"x".to_vec(), NOW, 0)
            .err(),
        None,
        "the sender's own stale channel still has the leaf"
    );
    let late = make(&net, &sender, 0, b"after removal", NOW + 1000, 1).await;
    assert_eq!(
        rejected(&receive(&net, &mut rx, &late, NOW + 1100).await),
        "unknown_root"
    );
    assert_eq!(
        rx.draft(&net.ids[0], TOPIC, b"x".to_vec(), NOW, 0).err(),
        Some(PublishError::NotAMember)
    );

    // A late joiner rebuilds the same root from the registry and the removed secret alone.
    let mut joiner = RlnMembership::new(3);
    let revealed = RlnIdentity::from_secret_bytes(&examined.identity.secret_bytes()).unwrap();
    joiner.remove(&revealed);
    joiner.apply(net.regs.clone()).unwrap();
    assert_eq!(joiner.root(), rx.membership().root());

    // Evidence of a duplicate is not a double signal.
    let dup = conclave_rln::SlashingEvidence {
        first: m2.clone(),
        second: m2.clone(),
    };
    assert!(matches!(other.examine(&dup), Err(EvidenceError::SameShare)));
}

#[tokio::test]
async fn each_invalid_message_has_its_own_reason() {
    let net = net(3);
    let sender = channel(&net, "conclave/test");
    let mut rx = channel(&net, "conclave/test");
    let good = make(&net, &sender, 1, b"payload", NOW, 0).await;

    // A proof made for another network's RLN identifier.
    let foreign = channel(&net, "conclave/elsewhere");
    let m = make(&net, &foreign, 1, b"payload", NOW, 1).await;
    assert_eq!(
        rejected(&receive(&net, &mut rx, &m, NOW).await),
        "wrong_rln_identifier"
    );

    // A stale root: proved before members joined, after the window moved on.
    let stale = make(&net, &sender, 2, b"old root", NOW, 0).await;
    let mut moved = channel(&net, "conclave/test");
    let mut regs = net.regs.clone();
    for k in 0..3u32 {
        regs.push(RlnRegistration {
            index: 100 + k,
            rate_commitment: RlnIdentity::generate().rate_commitment(1),
            limit: 1,
        });
        moved.apply_registrations(regs.clone()).unwrap();
    }
    assert_eq!(
        rejected(&receive(&net, &mut moved, &stale, NOW).await),
        "unknown_root"
    );

    // A frame that claims another epoch than its proof was made for: the external nullifier
    // (bound into the proof) is not ours for the claimed epoch.
    let m = reframe(&good, |f| f.epoch += 1);
    assert_eq!(
        rejected(&receive(&net, &mut rx, &m, NOW).await),
        "wrong_rln_identifier"
    );
    // The wire carries no finer time than the epoch, and payloads only in their bucket.
    let frame = RlnFrame::decode(&good[..]).unwrap();
    assert!(
        conclave_rln::PAD_BUCKETS.contains(&frame.payload.len()),
        "{} bytes",
        frame.payload.len()
    );
    let padding = |o: &Outcome| {
        matches!(
            o,
            Outcome::Reject(Rejection::Malformed(DecodeError::Padding(_)))
        )
    };
    let m = reframe(&good, |f| f.payload.push(0));
    let o = receive(&net, &mut rx, &m, NOW).await;
    assert!(padding(&o), "not a bucket: {o:?}");
    let m = reframe(&good, |f| f.payload[255] = 1);
    let o = receive(&net, &mut rx, &m, NOW).await;
    assert!(padding(&o), "non-zero fill: {o:?}");
    // An epoch too far from ours.
    let mut strict = RlnChannel::new(
        EpochRules {
            max_epoch_gap: 0,
            ..EpochRules::default()
        },
        RlnIdentifier::new("conclave/test"),
        {
            let mut m = RlnMembership::new(3);
            m.apply(net.regs.clone()).unwrap();
            m
        },
        NullifierLog::new(100, 1 << 20),
    );
    assert_eq!(
        rejected(&receive(&net, &mut strict, &good, NOW + 30_000).await),
        "epoch_out_of_range"
    );
    // A tampered payload.
    let m = reframe(&good, |f| {
        f.payload = conclave_rln::pad(b"paylaod").unwrap()
    });
    assert_eq!(
        rejected(&receive(&net, &mut rx, &m, NOW).await),
        "signal_mismatch"
    );
    // A malformed proof: bytes that are not a curve point encoding.
    let m = reframe(&good, |f| f.proof = vec![0xff; 128]);
    assert_eq!(
        rejected(&receive(&net, &mut rx, &m, NOW).await),
        "malformed"
    );
    let m = reframe(&good, |f| f.proof.truncate(100));
    let o = receive(&net, &mut rx, &m, NOW).await;
    assert!(
        matches!(&o, Outcome::Reject(Rejection::Malformed(e)) if e.to_string().contains("128-byte")),
        "{o:?}"
    );
    // A well-formed proof of another message: the SNARK does not verify.
    let other = make(&net, &sender, 1, b"payload", NOW, 1).await;
    let other_proof = RlnFrame::decode(&other[..]).unwrap().proof;
    let m = reframe(&good, |f| f.proof = other_proof);
    assert_eq!(
        rejected(&receive(&net, &mut rx, &m, NOW).await),
        "invalid_proof"
    );
    // A share tampered with (y): the proof does not verify either, and it slashes nobody.
    let m = reframe(&good, |f| {
        f.share_y = fr_to_bytes(&conclave_rln::Fr::from(7u64)).to_vec()
    });
    assert_eq!(
        rejected(&receive(&net, &mut rx, &m, NOW).await),
        "invalid_proof"
    );
    // A message on another topic than it names.
    assert_eq!(
        rejected(&rx.precheck("elsewhere", &good, NOW).err().unwrap()),
        "topic_mismatch"
    );
    // Garbage.
    assert_eq!(
        rejected(&rx.precheck(TOPIC, b"\xff\xff\xff", NOW).err().unwrap()),
        "malformed"
    );

    // After all that, the good message is still accepted: nothing invalid entered the log.
    assert!(matches!(
        receive(&net, &mut rx, &good, NOW).await,
        Outcome::Accept(_)
    ));
    let _ = RlnMessage::decode(&good).unwrap();
}

#[tokio::test]
async fn partial_proofs_finish_into_valid_proofs() {
    let net = net(2);
    let ch = channel(&net, "conclave/test");
    let mut rx = channel(&net, "conclave/test");
    let partial = net
        .pool
        .partial(ch.partial_witness(&net.ids[1]).unwrap())
        .await
        .unwrap()
        .value;
    let partial = std::sync::Arc::new(partial);
    for id in 0..LIMIT {
        let draft = ch
            .draft(&net.ids[1], TOPIC, vec![id as u8; 40], NOW, id)
            .unwrap();
        let p = net
            .pool
            .prove(draft.witness.clone(), Some(partial.clone()))
            .await
            .unwrap()
            .value;
        let raw = draft.finish(p.0, p.1).encode();
        assert!(matches!(
            receive(&net, &mut rx, &raw, NOW).await,
            Outcome::Accept(_)
        ));
    }
}

/// Proofs checked as one batch (one multi-pairing, one final exponentiation): valid proofs pass
/// together; one proof moved to another message's values, or one message's signal changed,
/// fails the whole batch. The pool, handed such a batch, finds the bad checks alone and still
/// passes the others — as zerokit's verifier judges each.
#[tokio::test]
async fn proofs_verify_in_batches_and_a_bad_one_fails_only_itself() {
    use conclave_rln::BatchVerifier;
    use rln::prelude::RLNProofValues;

    let net = net(3);
    let ch = channel(&net, "conclave/test");
    let mut checks = Vec::new();
    for who in 0..3 {
        for id in 0..LIMIT {
            let raw = make(&net, &ch, who, &[who as u8; 40], NOW, id).await;
            checks.push(ch.precheck(TOPIC, &raw, NOW).unwrap().proof());
        }
    }
    let batcher = BatchVerifier::for_channel();
    let rng = &mut rand::thread_rng();
    let all: Vec<_> = checks.iter().map(|(p, v)| (p, v)).collect();
    assert!(
        batcher.verify(&all, rng),
        "six valid proofs verify together"
    );
    assert!(batcher.verify(&all[..1], rng), "and one alone");
    assert!(
        batcher.verify(&[], rng),
        "an empty batch holds nothing false"
    );

    let mut swapped = all.clone();
    swapped[2] = (all[3].0, all[2].1);
    assert!(
        !batcher.verify(&swapped, rng),
        "a proof under another's values"
    );

    let v = &checks[4].1;
    let other_signal = RLNProofValues::new_single()
        .y(v.y().unwrap())
        .root(v.root())
        .nullifier(v.nullifier().unwrap())
        .x(v.x() + conclave_rln::Fr::from(1u64))
        .external_nullifier(v.external_nullifier())
        .build();
    let mut tampered = all.clone();
    tampered[4] = (all[4].0, &other_signal);
    assert!(!batcher.verify(&tampered, rng), "a changed signal");

    // The pool: every check submitted at once, the swapped and the tampered among them.
    let mut jobs: Vec<(rln::prelude::Proof, RLNProofValues)> = checks.clone();
    jobs[2] = (checks[3].0.clone(), checks[2].1.clone());
    jobs[4] = (checks[4].0.clone(), other_signal.clone());
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(p, v)| {
            let pool = net.pool.clone();
            tokio::spawn(async move { pool.verify(p, v).await.unwrap().value })
        })
        .collect();
    let mut verdicts = Vec::new();
    for h in handles {
        verdicts.push(h.await.unwrap());
    }
    assert_eq!(verdicts, [true, true, false, true, false, true]);
}
