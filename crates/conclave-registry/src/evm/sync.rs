//! Following the contract: full sync by paged `eth_getLogs` from the deploy block, then new
//! blocks once they have the configured confirmations. The tip's hash is checked before every
//! step; on a mismatch the syncer rewinds to the newest checkpoint still on the canonical chain
//! (a full resync if none is) and replays from there. RPC failures keep the last view, mark the
//! status stale and back off with jitter.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEventInterface;
use conclave_core::{MembershipView, ViewSource};
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::bindings::ConclaveRegistry::{self, ConclaveRegistryEvents};
use super::state::ChainState;
use crate::{ChainHead, ChainSource, RegistrySource, RegistryStatus};

/// Checkpoints kept for reorg recovery (one per sync step, so about one per block when following).
const CHECKPOINTS: usize = 128;

/// How the EVM registry is read.
#[derive(Debug, Clone)]
pub struct EvmConfig {
    pub rpc_url: String,
    pub contract: Address,
    /// A block is applied once this many blocks sit on top of it.
    pub confirmations: u64,
    pub poll_interval: Duration,
    /// Blocks per `eth_getLogs` request.
    pub page_size: u64,
    pub max_backoff: Duration,
}

impl EvmConfig {
    /// Defaults: 2 confirmations, 1 s polls, 2000-block log pages, backoff up to 30 s.
    pub fn new(rpc_url: impl Into<String>, contract: Address) -> Self {
        EvmConfig {
            rpc_url: rpc_url.into(),
            contract,
            confirmations: 2,
            poll_interval: Duration::from_secs(1),
            page_size: 2000,
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Why the chain could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvmError {
    #[error("RPC URL `{0}` is invalid: {1}")]
    Url(String, String),
    #[error("RPC {url}: {message}")]
    Rpc { url: String, message: String },
    #[error("no ConclaveRegistry at {contract} via {url}: {message}")]
    NoContract {
        url: String,
        contract: Address,
        message: String,
    },
}

/// One header from the chain endpoint, checked against the hash it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHeader {
    pub hash: [u8; 32],
    pub parent: [u8; 32],
    /// The header's RLP encoding (keccak of it is `hash`).
    pub rlp: Vec<u8>,
}

/// The on-chain registry backend; also the chain source for the chain it reads.
pub struct EvmRegistry {
    provider: DynProvider,
    url: String,
    view: watch::Receiver<Arc<MembershipView>>,
    status: watch::Receiver<RegistryStatus>,
    heads: watch::Receiver<ChainHead>,
    task: JoinHandle<()>,
}

struct Checkpoint {
    height: u64,
    hash: B256,
    /// Shared with the neighbouring checkpoints until the state changes: a quiet registry costs
    /// one state, not one per checkpoint.
    state: Arc<ChainState>,
}

struct Syncer {
    provider: DynProvider,
    url: String,
    cfg: EvmConfig,
    chain_id: u64,
    deploy_block: u64,
    state: Arc<ChainState>,
    published: Option<Arc<ChainState>>,
    checkpoints: VecDeque<Checkpoint>,
    revision: u64,
    view_tx: watch::Sender<Arc<MembershipView>>,
    status_tx: watch::Sender<RegistryStatus>,
    heads_tx: watch::Sender<ChainHead>,
}

fn rpc_err(url: &str, e: impl std::fmt::Display) -> EvmError {
    EvmError::Rpc {
        url: url.to_owned(),
        message: e.to_string(),
    }
}

impl EvmRegistry {
    /// Connects, checks the contract, syncs to the confirmed tip, then follows the chain in a
    /// background task. Fails if the initial sync fails: a node must not start without a view.
    pub async fn spawn(cfg: EvmConfig) -> Result<Self, EvmError> {
        let url: url::Url = cfg
            .rpc_url
            .parse()
            .map_err(|e: url::ParseError| EvmError::Url(cfg.rpc_url.clone(), e.to_string()))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let u = cfg.rpc_url.clone();
        let chain_id = provider.get_chain_id().await.map_err(|e| rpc_err(&u, e))?;
        let deploy_block = ConclaveRegistry::new(cfg.contract, &provider)
            .deployBlock()
            .call()
            .await
            .map_err(|e| EvmError::NoContract {
                url: u.clone(),
                contract: cfg.contract,
                message: e.to_string(),
            })?;
        let (view_tx, view) = watch::channel(Arc::new(MembershipView::empty()));
        let (status_tx, status) = watch::channel(RegistryStatus::default());
        let (heads_tx, heads) = watch::channel(ChainHead::default());
        let state = Arc::new(ChainState::new(chain_id, cfg.contract));
        let mut syncer = Syncer {
            provider: provider.clone(),
            url: u.clone(),
            cfg,
            chain_id,
            deploy_block,
            state,
            published: None,
            checkpoints: VecDeque::new(),
            revision: 0,
            view_tx,
            status_tx,
            heads_tx,
        };
        while syncer.step().await? {}
        if syncer.published.is_none() {
            syncer.publish_current();
        }
        let task = tokio::spawn(syncer.run());
        Ok(EvmRegistry {
            provider,
            url: u,
            view,
            status,
            heads,
            task,
        })
    }
}

impl EvmRegistry {
    /// The header at `number` as the endpoint serves it — what this node serves members who
    /// ask for headers. Refused if the header does not hash to the hash the endpoint reported
    /// (the node would be passing on a lie).
    pub async fn header(&self, number: u64) -> Result<SourceHeader, EvmError> {
        use alloy::rlp::Encodable;
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(|e| rpc_err(&self.url, e))?
            .ok_or_else(|| rpc_err(&self.url, format!("block {number} not found")))?;
        let computed = block.header.inner.hash_slow();
        if computed != block.header.hash {
            return Err(rpc_err(
                &self.url,
                format!(
                    "block {number}: its header hashes to {computed}, the endpoint says {}",
                    block.header.hash
                ),
            ));
        }
        let mut rlp = Vec::new();
        block.header.inner.encode(&mut rlp);
        Ok(SourceHeader {
            hash: computed.0,
            parent: block.header.inner.parent_hash.0,
            rlp,
        })
    }
}

impl RegistrySource for EvmRegistry {
    fn view(&self) -> watch::Receiver<Arc<MembershipView>> {
        self.view.clone()
    }
    fn status(&self) -> watch::Receiver<RegistryStatus> {
        self.status.clone()
    }
}

impl ChainSource for EvmRegistry {
    fn heads(&self) -> watch::Receiver<ChainHead> {
        self.heads.clone()
    }

    async fn block_hash(&self, number: u64) -> Result<[u8; 32], EvmError> {
        block_hash(&self.provider, &self.url, number)
            .await
            .map(|h| h.0)
    }
}

impl Drop for EvmRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn block_hash(provider: &DynProvider, url: &str, number: u64) -> Result<B256, EvmError> {
    canonical_hash(provider, url, number)
        .await?
        .ok_or_else(|| rpc_err(url, format!("block {number} not found")))
}

/// The hash at `number` on the chain the endpoint follows now; `None` when the chain is shorter
/// (a reorg onto a shorter branch, or an endpoint that went back).
async fn canonical_hash(
    provider: &DynProvider,
    url: &str,
    number: u64,
) -> Result<Option<B256>, EvmError> {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Number(number))
        .await
        .map_err(|e| rpc_err(url, e))?;
    Ok(block.map(|b| b.header.hash))
}

impl Syncer {
    async fn run(mut self) {
        let mut backoff = self.cfg.poll_interval;
        loop {
            if self.view_tx.is_closed() {
                return;
            }
            match self.step().await {
                Ok(more) => {
                    if self.status_tx.borrow().stale {
                        tracing::info!(url = %self.url, "chain reachable again; registry view current");
                        self.status_tx.send_modify(|s| {
                            s.stale = false;
                            s.last_error = None;
                        });
                    }
                    backoff = self.cfg.poll_interval;
                    if !more {
                        tokio::time::sleep(self.cfg.poll_interval).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "registry sync failed; keeping the last view (stale)");
                    self.status_tx.send_modify(|s| {
                        s.stale = true;
                        s.last_error = Some(e.to_string());
                        s.rejected_updates += 1;
                    });
                    let jittered = backoff.mul_f64(rand::thread_rng().gen_range(0.75..1.25));
                    tokio::time::sleep(jittered).await;
                    backoff = (backoff * 2).min(self.cfg.max_backoff);
                }
            }
        }
    }

    /// One sync step; returns whether there is more to sync right away.
    async fn step(&mut self) -> Result<bool, EvmError> {
        let latest = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| rpc_err(&self.url, e))?
            .ok_or_else(|| rpc_err(&self.url, "no latest block"))?;
        let head = ChainHead {
            number: latest.header.number,
            hash: latest.header.hash.0,
        };
        self.heads_tx.send_if_modified(|h| {
            let changed = *h != head;
            *h = head;
            changed
        });

        if let Some(tip) = self.checkpoints.back() {
            let (height, hash) = (tip.height, tip.hash);
            if canonical_hash(&self.provider, &self.url, height).await? != Some(hash) {
                self.rewind(height).await?;
            }
        }
        let target = head.number.saturating_sub(self.cfg.confirmations);
        let from = self
            .checkpoints
            .back()
            .map(|c| c.height + 1)
            .unwrap_or(self.deploy_block);
        if target < from {
            return Ok(false);
        }
        let to = target.min(from + self.cfg.page_size - 1);
        let before = block_hash(&self.provider, &self.url, to).await?;
        let filter = Filter::new()
            .address(self.cfg.contract)
            .from_block(from)
            .to_block(to);
        let mut logs = self
            .provider
            .get_logs(&filter)
            .await
            .map_err(|e| rpc_err(&self.url, e))?;
        if block_hash(&self.provider, &self.url, to).await? != before {
            // The range was reorganized while we read it: read it again.
            return Ok(true);
        }
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        for log in &logs {
            match ConclaveRegistryEvents::decode_log(&log.inner) {
                Ok(ev) => Arc::make_mut(&mut self.state).apply(&ev.data),
                Err(e) => {
                    tracing::warn!(block = ?log.block_number, error = %e, "undecodable registry log skipped")
                }
            }
        }
        self.checkpoints.push_back(Checkpoint {
            height: to,
            hash: before,
            state: self.state.clone(),
        });
        if self.checkpoints.len() > CHECKPOINTS {
            self.checkpoints.pop_front();
        }
        self.status_tx.send_modify(|s| s.synced_block = Some(to));
        // Publish only once caught up: a half-replayed history (a resync) must not evict members.
        let unchanged = self
            .published
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &self.state) || **p == *self.state);
        if to == target && !unchanged {
            self.publish(to, before);
        }
        Ok(to < target)
    }

    /// Drops checkpoints no longer on the canonical chain and restores the newest one that is.
    async fn rewind(&mut self, tip: u64) -> Result<(), EvmError> {
        while let Some(cp) = self.checkpoints.back() {
            let (height, hash) = (cp.height, cp.hash);
            if canonical_hash(&self.provider, &self.url, height).await? == Some(hash) {
                self.state = cp.state.clone();
                tracing::warn!(
                    from = tip,
                    to = height,
                    "chain reorganized; registry rewound"
                );
                return Ok(());
            }
            self.checkpoints.pop_back();
        }
        tracing::warn!(
            from = tip,
            "chain reorganized beyond the kept checkpoints; full resync"
        );
        self.state = Arc::new(self.state.emptied());
        Ok(())
    }

    fn publish(&mut self, block: u64, hash: B256) {
        self.revision += 1;
        let source = ViewSource::Chain {
            chain_id: self.chain_id,
            block,
            hash: alloy::hex::encode(hash),
        };
        let (view, skipped) = self.state.to_view(source);
        for s in &skipped {
            tracing::warn!(entry = %s, "registry entry left out of the view");
        }
        tracing::info!(source = %view.source(), members = view.nodes().count(), "registry view updated");
        self.view_tx.send_replace(Arc::new(view));
        let revision = self.revision;
        self.status_tx.send_modify(|s| {
            s.revision = revision;
            s.skipped = skipped;
        });
        self.published = Some(self.state.clone());
    }

    /// Publishes the (empty) state when the contract has no events yet.
    fn publish_current(&mut self) {
        let (block, hash) = self
            .checkpoints
            .back()
            .map(|c| (c.height, c.hash))
            .unwrap_or((self.deploy_block, B256::ZERO));
        self.publish(block, hash);
    }
}
