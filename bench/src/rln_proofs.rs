//! The RLN scenario (#5): proof generation latency through Conclave's proof pool, with and
//! without the partial-proof cache, and verification throughput — zerokit's single verify and
//! Conclave's batches, each on one core (a one-thread rayon pool, so arkworks' own parallelism
//! cannot lend a second), and through the pool with checks arriving together — beside zerokit's
//! raw prove and verify called directly on the same inputs, in the same run.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use conclave_rln::{
    BatchVerifier, EpochRules, NullifierLog, ProofPool, RlnChannel, RlnIdentifier, RlnIdentity,
    RlnMembership, RlnRegistration, MAX_BATCH,
};
use rln::prelude::RLNBuilder;
use serde::Serialize;

use crate::stats::{percentile, Spread};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RlnParams {
    /// Proofs per configuration and repetition.
    pub proofs: usize,
    /// Verifications timed per repetition.
    pub verifications: usize,
}

/// One repetition's figures (latencies in ms, throughput in verifications per second).
#[derive(Debug, Clone, Serialize)]
pub struct RlnRun {
    pub zerokit_prove_p50_ms: f64,
    pub zerokit_prove_p99_ms: f64,
    pub pool_prove_p50_ms: f64,
    pub pool_prove_p99_ms: f64,
    pub pool_partial_prove_p50_ms: f64,
    pub pool_partial_prove_p99_ms: f64,
    pub partial_precompute_ms: f64,
    /// zerokit's `verify`, one proof at a time, on one core.
    pub zerokit_verify_per_s: f64,
    /// [`BatchVerifier`] on batches of 8, on one core.
    pub batch8_verify_per_s: f64,
    /// [`BatchVerifier`] on batches of [`MAX_BATCH`], on one core.
    pub batch32_verify_per_s: f64,
    /// Through the pool, one check at a time (no batch forms).
    pub pool_verify_per_s: f64,
    /// Through the pool, [`MAX_BATCH`] checks submitted together (they form batches).
    pub pool_batched_verify_per_s: f64,
}

#[derive(Serialize)]
pub struct RlnRow {
    pub params: RlnParams,
    pub runs: Vec<RlnRun>,
    pub zerokit_prove_p50_ms: Spread,
    pub zerokit_prove_p99_ms: Spread,
    pub pool_prove_p50_ms: Spread,
    pub pool_prove_p99_ms: Spread,
    pub pool_partial_prove_p50_ms: Spread,
    pub pool_partial_prove_p99_ms: Spread,
    pub zerokit_verify_per_s: Spread,
    pub batch8_verify_per_s: Spread,
    pub batch32_verify_per_s: Spread,
    pub pool_verify_per_s: Spread,
    pub pool_batched_verify_per_s: Spread,
}

fn p50_p99(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

/// A 64-member tree with our identity at leaf 17, a limit high enough for every proof.
fn setup(limit: u32) -> (RlnChannel, RlnIdentity) {
    let me = RlnIdentity::generate();
    let regs = (0..64u32).map(|i| RlnRegistration {
        index: i,
        rate_commitment: if i == 17 {
            me.rate_commitment(limit)
        } else {
            RlnIdentity::generate().rate_commitment(limit)
        },
        limit,
    });
    let mut membership = RlnMembership::new(5);
    membership.apply(regs).expect("a valid tree");
    let channel = RlnChannel::new(
        EpochRules::default(),
        RlnIdentifier::new("conclave/bench"),
        membership,
        NullifierLog::new(1, 1),
    );
    (channel, me)
}

async fn run_once(p: RlnParams) -> anyhow::Result<RlnRun> {
    let (channel, me) = setup(p.proofs as u32 * 3 + 1);
    let now = 1_800_000_000_000;
    let mut id = 0u32;
    let mut draft = |payload: &[u8]| {
        id += 1;
        channel.draft(&me, "bench", payload.to_vec(), now, id)
    };
    // zerokit directly, on this thread (its own rayon parallelism inside, as it ships).
    let engine = RLNBuilder::stateless().build();
    let mut raw = Vec::new();
    let mut proofs = Vec::new();
    for k in 0..p.proofs {
        let d = draft(&k.to_be_bytes()).context("drafting")?;
        let t = Instant::now();
        let proved = engine
            .generate_proof(&d.witness)
            .map_err(|e| anyhow::anyhow!("zerokit prove: {e}"))?;
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
        proofs.push(proved);
    }
    // Through the pool (one worker): full proofs, then finishing a cached partial proof.
    let pool = ProofPool::new(1, 4);
    let mut full = Vec::new();
    for k in 0..p.proofs {
        let d = draft(&k.to_be_bytes()).context("drafting")?;
        let t = Instant::now();
        pool.prove(d.witness, None).await?;
        full.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let t = Instant::now();
    let partial = Arc::new(pool.partial(channel.partial_witness(&me)?).await?.value);
    let partial_precompute_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut finished = Vec::new();
    for k in 0..p.proofs {
        let d = draft(&k.to_be_bytes()).context("drafting")?;
        let t = Instant::now();
        pool.prove(d.witness, Some(partial.clone())).await?;
        finished.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // Verification throughput on one core: zerokit directly, then batches.
    let one_core = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .context("a one-thread rayon pool")?;
    let zerokit_verify_per_s = one_core.install(|| {
        let t = Instant::now();
        for k in 0..p.verifications {
            let (proof, values) = &proofs[k % proofs.len()];
            anyhow::ensure!(
                engine.verify(proof, values).unwrap_or(false),
                "zerokit rejected a valid proof"
            );
        }
        Ok(p.verifications as f64 / t.elapsed().as_secs_f64())
    })?;
    let batcher = BatchVerifier::for_channel();
    let batched = |size: usize| {
        one_core.install(|| {
            let mut rng = rand::thread_rng();
            let t = Instant::now();
            let mut done = 0;
            while done < p.verifications {
                let batch: Vec<_> = (done..done + size)
                    .map(|k| {
                        let (proof, values) = &proofs[k % proofs.len()];
                        (proof, values)
                    })
                    .collect();
                anyhow::ensure!(
                    batcher.verify(&batch, &mut rng),
                    "a batch of valid proofs failed"
                );
                done += size;
            }
            Ok(done as f64 / t.elapsed().as_secs_f64())
        })
    };
    let batch8_verify_per_s = batched(8)?;
    let batch32_verify_per_s = batched(MAX_BATCH)?;
    // Through the pool: one check at a time, then MAX_BATCH at once.
    let t = Instant::now();
    for k in 0..p.verifications {
        let (proof, values) = proofs[k % proofs.len()].clone();
        anyhow::ensure!(
            pool.verify(proof, values).await?.value,
            "the pool rejected a valid proof"
        );
    }
    let pool_verify_per_s = p.verifications as f64 / t.elapsed().as_secs_f64();
    let verifier = ProofPool::new(1, MAX_BATCH);
    let t = Instant::now();
    let mut done = 0;
    while done < p.verifications {
        let wave = (done..done + MAX_BATCH).map(|k| {
            let (proof, values) = proofs[k % proofs.len()].clone();
            verifier.verify(proof, values)
        });
        for verdict in futures::future::join_all(wave).await {
            anyhow::ensure!(verdict?.value, "the pool rejected a valid proof");
        }
        done += MAX_BATCH;
    }
    let pool_batched_verify_per_s = done as f64 / t.elapsed().as_secs_f64();

    let (zerokit_prove_p50_ms, zerokit_prove_p99_ms) = p50_p99(raw);
    let (pool_prove_p50_ms, pool_prove_p99_ms) = p50_p99(full);
    let (pool_partial_prove_p50_ms, pool_partial_prove_p99_ms) = p50_p99(finished);
    Ok(RlnRun {
        zerokit_prove_p50_ms,
        zerokit_prove_p99_ms,
        pool_prove_p50_ms,
        pool_prove_p99_ms,
        pool_partial_prove_p50_ms,
        pool_partial_prove_p99_ms,
        partial_precompute_ms,
        zerokit_verify_per_s,
        batch8_verify_per_s,
        batch32_verify_per_s,
        pool_verify_per_s,
        pool_batched_verify_per_s,
    })
}

pub async fn measure(p: RlnParams, reps: usize) -> anyhow::Result<RlnRow> {
    let mut runs = Vec::new();
    for r in 0..reps {
        let f = run_once(p).await?;
        eprintln!(
            "  rln              rep {}: prove p50 zerokit {:.0} ms, pool {:.0} ms, pool+partial {:.0} ms; verify/s on one core zerokit {:.0}, batches of 8 {:.0}, of 32 {:.0}; pool {:.0}, batched {:.0}",
            r + 1,
            f.zerokit_prove_p50_ms,
            f.pool_prove_p50_ms,
            f.pool_partial_prove_p50_ms,
            f.zerokit_verify_per_s,
            f.batch8_verify_per_s,
            f.batch32_verify_per_s,
            f.pool_verify_per_s,
            f.pool_batched_verify_per_s
        );
        runs.push(f);
    }
    let s = |g: fn(&RlnRun) -> f64| Spread::of(runs.iter().map(g));
    Ok(RlnRow {
        params: p,
        zerokit_prove_p50_ms: s(|f| f.zerokit_prove_p50_ms),
        zerokit_prove_p99_ms: s(|f| f.zerokit_prove_p99_ms),
        pool_prove_p50_ms: s(|f| f.pool_prove_p50_ms),
        pool_prove_p99_ms: s(|f| f.pool_prove_p99_ms),
        pool_partial_prove_p50_ms: s(|f| f.pool_partial_prove_p50_ms),
        pool_partial_prove_p99_ms: s(|f| f.pool_partial_prove_p99_ms),
        zerokit_verify_per_s: s(|f| f.zerokit_verify_per_s),
        batch8_verify_per_s: s(|f| f.batch8_verify_per_s),
        batch32_verify_per_s: s(|f| f.batch32_verify_per_s),
        pool_verify_per_s: s(|f| f.pool_verify_per_s),
        pool_batched_verify_per_s: s(|f| f.pool_batched_verify_per_s),
        runs,
    })
}
