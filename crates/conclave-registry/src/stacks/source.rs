//! Polling a Stacks node for the signer set: `GET /v2/info` for the tip, then the three data
//! variables by `GET /v2/data_var/{address}/{contract}/{var}?proof=0`. A read is accepted only
//! whole; a refused snapshot is reported once per distinct content, like a refused file edit.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use conclave_core::{MembershipView, TopicName, ViewSource};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{
    clarity, ContractId, SignerKey, SignerSet, StacksError, AGGREGATE_VAR, SIGNER_SET_VAR,
    THRESHOLD_VAR,
};
use crate::{RegistrySource, RegistryStatus};

/// The largest answer read from the node: a full set of 128 keys is about 9 KB of JSON.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How the Stacks registry is read.
#[derive(Debug, Clone)]
pub struct StacksConfig {
    /// The Stacks node's RPC base URL, without a trailing slash.
    pub node_url: String,
    pub contract: ContractId,
    pub poll_interval: Duration,
    /// Each request's limit: a node that hangs counts as unreachable.
    pub request_timeout: Duration,
    /// What signers in the set may sign (the contract has no scopes).
    pub member_scopes: BTreeSet<TopicName>,
    /// Keys admitted beside the set (signers joining the next one), with their own scopes.
    pub candidates: Vec<SignerKey>,
    pub candidate_scopes: BTreeSet<TopicName>,
}

/// The Stacks registry backend.
pub struct StacksRegistry {
    view: watch::Receiver<Arc<MembershipView>>,
    status: watch::Receiver<RegistryStatus>,
    task: JoinHandle<()>,
}

#[derive(Deserialize)]
struct InfoAnswer {
    stacks_tip_height: u64,
}

#[derive(Deserialize)]
struct DataVarAnswer {
    data: String,
}

/// One read of the node: the tip it answered at and the three values as serialized.
struct Snapshot {
    tip_height: u64,
    set: Vec<u8>,
    threshold: Vec<u8>,
    aggregate: Vec<u8>,
}

impl Snapshot {
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.set, &self.threshold, &self.aggregate] {
            h.update((part.len() as u32).to_be_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    }
}

struct Reader {
    client: reqwest::Client,
    cfg: StacksConfig,
}

impl Reader {
    fn node_err(&self, message: impl std::fmt::Display) -> StacksError {
        StacksError::Node {
            url: self.cfg.node_url.clone(),
            message: message.to_string(),
        }
    }

    async fn get(&self, path: &str) -> Result<(reqwest::StatusCode, Vec<u8>), StacksError> {
        let mut answer = self
            .client
            .get(format!("{}{path}", self.cfg.node_url))
            .send()
            .await
            .map_err(|e| self.node_err(format!("GET {path}: {e}")))?;
        let status = answer.status();
        let mut body = Vec::new();
        while let Some(chunk) = answer
            .chunk()
            .await
            .map_err(|e| self.node_err(format!("GET {path}: {e}")))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(self.node_err(format!(
                    "GET {path}: answer longer than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    async fn tip_height(&self) -> Result<u64, StacksError> {
        let (status, body) = self.get("/v2/info").await?;
        if !status.is_success() {
            return Err(self.node_err(format!("GET /v2/info answered {status}")));
        }
        serde_json::from_slice::<InfoAnswer>(&body)
            .map(|i| i.stacks_tip_height)
            .map_err(|e| self.node_err(format!("GET /v2/info: not a node info answer: {e}")))
    }

    async fn data_var(&self, var: &'static str) -> Result<Vec<u8>, StacksError> {
        let c = &self.cfg.contract;
        let path = format!("/v2/data_var/{}/{}/{var}?proof=0", c.address, c.name);
        let (status, body) = self.get(&path).await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(StacksError::NoVar {
                url: self.cfg.node_url.clone(),
                contract: c.to_string(),
                var,
            });
        }
        if !status.is_success() {
            return Err(self.node_err(format!("GET {path} answered {status}")));
        }
        let answer: DataVarAnswer = serde_json::from_slice(&body).map_err(|e| {
            self.node_err(format!(
                "GET {path}: not a data var answer ({{\"data\": \"0x…\"}}): {e}"
            ))
        })?;
        clarity::from_hex(&answer.data).map_err(|source| StacksError::Value { var, source })
    }

    async fn snapshot(&self) -> Result<Snapshot, StacksError> {
        Ok(Snapshot {
            tip_height: self.tip_height().await?,
            set: self.data_var(SIGNER_SET_VAR).await?,
            threshold: self.data_var(THRESHOLD_VAR).await?,
            aggregate: self.data_var(AGGREGATE_VAR).await?,
        })
    }

    /// The view of a snapshot, and what operators should know about it.
    fn build(
        &self,
        snap: &Snapshot,
        revision: u64,
    ) -> Result<(MembershipView, Vec<String>), StacksError> {
        let set = SignerSet::decode(&snap.set, &snap.threshold, &snap.aggregate)?;
        let mut warnings = Vec::new();
        if set.signers.is_empty() {
            tracing::warn!(contract = %self.cfg.contract, "{EMPTY_SET}");
            warnings.push(EMPTY_SET.to_owned());
        }
        tracing::info!(
            contract = %self.cfg.contract,
            signers = set.signers.len(),
            threshold = %set.threshold,
            tip = snap.tip_height,
            "signer set read"
        );
        let source = ViewSource::Stacks {
            contract: self.cfg.contract.to_string(),
            tip_height: snap.tip_height,
            revision,
            sha256: snap.digest(),
        };
        let view = set.to_view(
            &self.cfg.candidates,
            &self.cfg.member_scopes,
            &self.cfg.candidate_scopes,
            source,
        );
        Ok((view, warnings))
    }
}

/// What the task remembers between polls.
struct Poller {
    reader: Reader,
    /// The content last looked at, accepted or refused, so a refused set is reported once.
    seen_digest: String,
    /// Why the content last looked at was refused, while it stays the same.
    refused: Option<String>,
    revision: u64,
    view_tx: watch::Sender<Arc<MembershipView>>,
    status_tx: watch::Sender<RegistryStatus>,
}

const EMPTY_SET: &str = "the registry's signer set is empty: no signer is admitted";

impl StacksRegistry {
    /// Reads the registry once, then polls it every interval. Fails if the first read fails or
    /// is refused: a node must not start on a registry it cannot read.
    pub async fn spawn(cfg: StacksConfig) -> Result<Self, StacksError> {
        let client = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .build()
            .map_err(|e| StacksError::Node {
                url: cfg.node_url.clone(),
                message: e.to_string(),
            })?;
        let reader = Reader { client, cfg };
        let snap = reader.snapshot().await?;
        let (view, warnings) = reader.build(&snap, 1)?;
        let (status_tx, status) = watch::channel(RegistryStatus {
            revision: 1,
            synced_block: Some(snap.tip_height),
            warnings,
            ..Default::default()
        });
        let (view_tx, view) = watch::channel(Arc::new(view));
        let poll = reader.cfg.poll_interval;
        let poller = Poller {
            reader,
            seen_digest: snap.digest(),
            refused: None,
            revision: 1,
            view_tx,
            status_tx,
        };
        Ok(StacksRegistry {
            view,
            status,
            task: tokio::spawn(poller.run(poll)),
        })
    }
}

impl Poller {
    async fn run(mut self, poll: Duration) {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if self.view_tx.is_closed() {
                return;
            }
            self.poll().await;
        }
    }

    async fn poll(&mut self) {
        let snap = match self.reader.snapshot().await {
            Ok(s) => s,
            Err(e) if matches!(e, StacksError::Value { .. }) => return self.refuse(e),
            Err(e) => {
                if !self.status_tx.borrow().stale {
                    tracing::error!(error = %e, "Stacks node unreachable; the signer set in force may be out of date");
                }
                return self.status_tx.send_modify(|s| {
                    s.stale = true;
                    s.last_error = Some(e.to_string());
                    s.rejected_updates += 1;
                });
            }
        };
        let digest = snap.digest();
        if digest == self.seen_digest {
            // Unchanged: only the tip moved, and a stale mark or a read error clears.
            self.status_tx.send_if_modified(|s| {
                let was_unreachable = s.stale;
                if was_unreachable {
                    tracing::info!("Stacks node reachable again");
                    s.last_error = self.refused.clone();
                }
                s.stale = false;
                let moved = s.synced_block != Some(snap.tip_height);
                s.synced_block = Some(snap.tip_height);
                was_unreachable || moved
            });
            return;
        }
        self.seen_digest = digest;
        match self.reader.build(&snap, self.revision + 1) {
            Ok((view, warnings)) => {
                self.revision += 1;
                self.refused = None;
                tracing::info!(source = %view.source(), members = view.nodes().count(), "registry updated");
                self.view_tx.send_replace(Arc::new(view));
                self.status_tx.send_modify(|s| {
                    s.revision = self.revision;
                    s.last_error = None;
                    s.stale = false;
                    s.synced_block = Some(snap.tip_height);
                    s.warnings = warnings;
                });
            }
            Err(e) => self.refuse(e),
        }
    }

    /// Keeps the view in force and reports why, once per distinct refusal.
    fn refuse(&mut self, e: StacksError) {
        let reason = e.to_string();
        let again = self.refused.as_ref() == Some(&reason);
        if !again {
            tracing::error!(error = %e, "signer set refused; the previous set stays in force");
        }
        self.refused = Some(reason.clone());
        self.status_tx.send_modify(|s| {
            s.stale = false;
            s.last_error = Some(reason);
            s.rejected_updates += u64::from(!again);
        });
    }
}

impl RegistrySource for StacksRegistry {
    fn view(&self) -> watch::Receiver<Arc<MembershipView>> {
        self.view.clone()
    }

    fn status(&self) -> watch::Receiver<RegistryStatus> {
        self.status.clone()
    }
}

impl Drop for StacksRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}
