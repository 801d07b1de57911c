//! The proof worker pool: Groth16 proving (~0.6 s) and verification (a few ms) run on dedicated
//! threads, never on the async runtime. Verification has a lane of its own: a relay's check of
//! someone else's message (on every stem hop and gossip delivery) never waits behind this node's
//! own proof. Both queues are bounded; a full queue is an error the caller turns into "ignore
//! this message" or "try later", never an unbounded backlog.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rln::prelude::{
    ArkGroth16Backend, PartialProof, PoseidonHash, Proof, RLNBuilder, RLNPartialWitnessInput,
    RLNProofValues, RLNWitnessInput, Stateless, RLN,
};
use thiserror::Error;
use tokio::sync::oneshot;

type Engine = RLN<Stateless, ArkGroth16Backend<PoseidonHash>>;

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
    Verify {
        proof: Box<Proof>,
        values: Box<RLNProofValues>,
        reply: oneshot::Sender<Timed<bool>>,
    },
}

/// Handle to the pool; cheap to clone. Workers stop when the last handle is dropped.
#[derive(Clone)]
pub struct ProofPool {
    /// Proofs and partial proofs.
    proving: SyncSender<Job>,
    /// Verifications, on their own thread.
    verifying: SyncSender<Job>,
    queue: usize,
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

impl ProofPool {
    /// `workers` proving threads and one verifying thread sharing one proving key; at most
    /// `queue` jobs wait in each lane.
    pub fn new(workers: usize, queue: usize) -> Self {
        let engine: Arc<Engine> = Arc::new(RLNBuilder::stateless().build());
        ProofPool {
            proving: lane("prove", workers, queue, &engine),
            verifying: lane("verify", 1, queue, &engine),
            queue,
        }
    }

    fn submit(&self, job: Job) -> Result<(), PoolError> {
        let lane = match job {
            Job::Verify { .. } => &self.verifying,
            Job::Prove { .. } | Job::Partial { .. } => &self.proving,
        };
        lane.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Busy(self.queue),
            TrySendError::Disconnected(_) => PoolError::Stopped,
        })
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
        self.submit(Job::Verify {
            proof: Box::new(proof),
            values: Box::new(values),
            reply,
        })?;
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
        Job::Verify {
            proof,
            values,
            reply,
        } => {
            // A synthesis error means the values do not fit the circuit: not a valid proof.
            let value = engine.verify(&proof, &values).unwrap_or(false);
            let _ = reply.send(Timed {
                value,
                took: start.elapsed(),
            });
        }
    }
}
