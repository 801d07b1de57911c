//! The proof worker pool: Groth16 proving (~0.6 s) and verification (a few ms) run on dedicated
//! threads, never on the async runtime. Verification has a lane of its own: a relay's check of
//! someone else's message (on every stem hop and gossip delivery) never waits behind this node's
//! own proof. The verifying thread takes every check waiting when it gets to work (up to
//! [`MAX_BATCH`]) and verifies them as one batch ([`crate::BatchVerifier`]); when the batch
//! fails it checks each alone with zerokit's verifier, so a bad proof fails only itself. Both
//! queues are bounded; a full queue is an error the caller turns into "ignore this message" or
//! "try later", never an unbounded backlog.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rln::prelude::{
    ArkGroth16Backend, PartialProof, PoseidonHash, Proof, RLNBuilder, RLNPartialWitnessInput,
    RLNProofValues, RLNWitnessInput, Stateless, RLN,
};
use thiserror::Error;
use tokio::sync::oneshot;

use crate::batch::BatchVerifier;

type Engine = RLN<Stateless, ArkGroth16Backend<PoseidonHash>>;

/// The most checks verified as one batch: past a few dozen a batch saves little more per proof,
/// and a batch that fails costs one single check per member.
pub const MAX_BATCH: usize = 32;

/// Why the pool did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PoolError {
    #[error("the proof pool's queue is full ({0} jobs waiting)")]
    Busy(usize),
    #[error("the proof pool has stopped")]
    Stopped,
    #[error("proving failed: {0}")]
    Prove(String),
}

/// A result and how long the worker took (queueing excluded), for the latency histograms.
#[derive(Debug, Clone)]
pub struct Timed<T> {
    pub value: T,
    pub took: Duration,
}

/// A proof and its public values.
pub type Proved = (Proof, RLNProofValues);

enum Job {
    Prove {
        witness: Box<RLNWitnessInput>,
        partial: Option<Arc<PartialProof>>,
        reply: oneshot::Sender<Result<Timed<Proved>, PoolError>>,
    },
    Partial {
        input: Box<RLNPartialWitnessInput>,
        reply: oneshot::Sender<Result<Timed<PartialProof>, PoolError>>,
    },
}

/// Handle to the pool; cheap to clone. Workers stop when the last handle is dropped.
#[derive(Clone)]
pub struct ProofPool {
    /// Proofs and partial proofs.
    proving: SyncSender<Job>,
    /// Verifications, on their own thread.
    verifying: SyncSender<Verification>,
    queue: usize,
}

/// A check the verifying thread has taken.
struct Verification {
    proof: Box<Proof>,
    values: Box<RLNProofValues>,
    reply: oneshot::Sender<Timed<bool>>,
}

/// Starts `threads` workers taking jobs from one bounded queue of `queue`.
fn lane(name: &str, threads: usize, queue: usize, engine: &Arc<Engine>) -> SyncSender<Job> {
    let (tx, rx) = sync_channel::<Job>(queue);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..threads.max(1) {
        let rx = rx.clone();
        let engine = engine.clone();
        std::thread::Builder::new()
            .name(format!("rln-{name}-{i}"))
            .spawn(move || loop {
                let job = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => run(&engine, job),
                    Err(_) => return,
                }
            })
            .expect("spawning a proof worker thread");
    }
    tx
}

/// Starts the verifying thread, taking checks from a bounded queue of `queue`.
fn verify_lane(queue: usize, engine: &Arc<Engine>) -> SyncSender<Verification> {
    let (tx, rx) = sync_channel::<Verification>(queue);
    let engine = engine.clone();
    std::thread::Builder::new()
        .name("rln-verify-0".into())
        .spawn(move || {
            let batcher = BatchVerifier::for_channel();
            while let Some(batch) = next_batch(&rx) {
                verify_batch(&engine, &batcher, batch);
            }
        })
        .expect("spawning the proof verifying thread");
    tx
}

/// Waits for a check, then takes those waiting behind it, up to [`MAX_BATCH`]; `None` when
/// every handle is gone.
fn next_batch(rx: &Receiver<Verification>) -> Option<Vec<Verification>> {
    let first = rx.recv().ok()?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(v) => batch.push(v),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Verifies `batch` together; if that fails, each alone. Each check's time is its share of the
/// batch, plus its own check when it had one.
fn verify_batch(engine: &Engine, batcher: &BatchVerifier, batch: Vec<Verification>) {
    let start = Instant::now();
    let pairs: Vec<(&Proof, &RLNProofValues)> =
        batch.iter().map(|v| (&*v.proof, &*v.values)).collect();
    let together = batch.len() > 1 && batcher.verify(&pairs, &mut rand::thread_rng());
    let share = start.elapsed() / batch.len() as u32;
    for v in batch {
        let alone = Instant::now();
        // A synthesis error means the values do not fit the circuit: not a valid proof.
        let value = together || engine.verify(&v.proof, &v.values).unwrap_or(false);
        let took = if together {
            share
        } else {
            share + alone.elapsed()
        };
        let _ = v.reply.send(Timed { value, took });
    }
}

impl ProofPool {
    /// `workers` proving threads and one verifying thread sharing one proving key; at most
    /// `queue` jobs wait in each lane.
    pub fn new(workers: usize, queue: usize) -> Self {
        let engine: Arc<Engine> = Arc::new(RLNBuilder::stateless().build());
        ProofPool {
            proving: lane("prove", workers, queue, &engine),
            verifying: verify_lane(queue, &engine),
            queue,
        }
    }

    fn busy<T>(&self, e: TrySendError<T>) -> PoolError {
        match e {
            TrySendError::Full(_) => PoolError::Busy(self.queue),
            TrySendError::Disconnected(_) => PoolError::Stopped,
        }
    }

    fn submit(&self, job: Job) -> Result<(), PoolError> {
        self.proving.try_send(job).map_err(|e| self.busy(e))
    }

    /// A full proof, or the rest of one when `partial` was computed for the same identity and path.
    pub async fn prove(
        &self,
        witness: RLNWitnessInput,
        partial: Option<Arc<PartialProof>>,
    ) -> Result<Timed<Proved>, PoolError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Prove {
            witness: Box::new(witness),
            partial,
            reply,
        })?;
        rx.await.map_err(|_| PoolError::Stopped)?
    }

    /// The message-independent part of a proof (identity and Merkle path), to finish later.
    pub async fn partial(
        &self,
        input: RLNPartialWitnessInput,
    ) -> Result<Timed<PartialProof>, PoolError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Partial {
            input: Box::new(input),
            reply,
        })?;
        rx.await.map_err(|_| PoolError::Stopped)?
    }

    /// The SNARK verdict for a proof and its public values. Signal, root and external nullifier
    /// are the caller's checks (cheap, done before queueing).
    pub async fn verify(
        &self,
        proof: Proof,
        values: RLNProofValues,
    ) -> Result<Timed<bool>, PoolError> {
        let (reply, rx) = oneshot::channel();
        self.verifying
            .try_send(Verification {
                proof: Box::new(proof),
                values: Box::new(values),
                reply,
            })
            .map_err(|e| self.busy(e))?;
        rx.await.map_err(|_| PoolError::Stopped)
    }
}

fn run(engine: &Engine, job: Job) {
    let start = Instant::now();
    match job {
        Job::Prove {
            witness,
            partial,
            reply,
        } => {
            let r = match partial {
                Some(p) => engine
                    .finish_proof(&p, &witness)
                    .map_err(|e| PoolError::Prove(e.to_string())),
                None => engine
                    .generate_proof(&witness)
                    .map_err(|e| PoolError::Prove(e.to_string())),
            };
            let _ = reply.send(r.map(|value| Timed {
                value,
                took: start.elapsed(),
            }));
        }
        Job::Partial { input, reply } => {
            let r = engine
                .generate_partial_proof(&input)
                .map_err(|e| PoolError::Prove(e.to_string()));
            let _ = reply.send(r.map(|value| Timed {
                value,
                took: start.elapsed(),
            }));
        }
    }
}
