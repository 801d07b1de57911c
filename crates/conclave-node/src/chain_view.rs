//! The chain as the node acts on it: its chain source's head — or, while the watchdog finds the
//! source wrong and members of f+1 operators agree on newer headers, a fallback tip made of
//! those headers (docs/ARCHITECTURE.md, "Alternative paths: watchdog, drivers, header fallback").
//!
//! Place in the data flow: **chain source → the chain watch task (the one writer, feature
//! `altnet`) → [`ChainView`] → coordination windows, block-limited delegations, `/readyz`**.
//! Without the watch task the view is the source itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use conclave_net::RecentHeaders;
use conclave_registry::clock_chain::ClockChain;
use conclave_registry::evm::{EvmError, EvmRegistry};
use conclave_registry::{ChainHead, ChainSource};
use tokio::sync::watch;

/// The chain a node follows: the EVM registry's, or the clock chain.
#[derive(Clone)]
pub(crate) enum NodeChain {
    Evm(Arc<EvmRegistry>),
    Clock(Arc<ClockChain>),
}

impl NodeChain {
    pub fn heads(&self) -> watch::Receiver<ChainHead> {
        match self {
            NodeChain::Evm(c) => c.heads(),
            NodeChain::Clock(c) => c.heads(),
        }
    }

    pub async fn block_hash(&self, n: u64) -> Result<[u8; 32], EvmError> {
        match self {
            NodeChain::Evm(c) => c.block_hash(n).await,
            NodeChain::Clock(c) => c.block_hash(n).await,
        }
    }
}

/// Headers accepted from members while the source is not trusted: hashes by height.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fallback {
    pub hashes: BTreeMap<u64, [u8; 32]>,
}

impl Fallback {
    /// The newest accepted header; `None` while the node follows its own source.
    pub fn tip(&self) -> Option<ChainHead> {
        self.hashes.last_key_value().map(|(n, h)| ChainHead {
            number: *n,
            hash: *h,
        })
    }
}

/// What the node's tasks read: the head they act on and the hashes behind it.
#[derive(Clone)]
pub(crate) struct ChainView {
    source: NodeChain,
    head: watch::Receiver<ChainHead>,
    fallback: watch::Receiver<Arc<Fallback>>,
    /// Headers the source gave us (written by the chain watch task): answers hash lookups
    /// while the source cannot be reached.
    recent: watch::Receiver<Arc<RecentHeaders>>,
}

/// The chain watch task's side of a [`ChainView`].
#[cfg(feature = "altnet")]
pub(crate) struct ChainViewWriter {
    pub head: watch::Sender<ChainHead>,
    pub fallback: watch::Sender<Arc<Fallback>>,
    pub recent: watch::Sender<Arc<RecentHeaders>>,
}

impl ChainView {
    /// The source itself, with nobody deciding otherwise.
    pub fn of_source(source: NodeChain) -> Self {
        ChainView {
            head: source.heads(),
            source,
            fallback: watch::channel(Arc::default()).1,
            recent: watch::channel(Arc::default()).1,
        }
    }

    /// A view whose head, fallback and recent headers a chain watch task writes.
    #[cfg(feature = "altnet")]
    pub fn with_writer(source: NodeChain, recent_capacity: usize) -> (Self, ChainViewWriter) {
        let (head_tx, head) = watch::channel(*source.heads().borrow());
        let (fallback_tx, fallback) = watch::channel(Arc::default());
        let (recent_tx, recent) = watch::channel(Arc::new(RecentHeaders::new(recent_capacity)));
        (
            ChainView {
                source,
                head,
                fallback,
                recent,
            },
            ChainViewWriter {
                head: head_tx,
                fallback: fallback_tx,
                recent: recent_tx,
            },
        )
    }

    /// The head the node acts on.
    pub fn heads(&self) -> watch::Receiver<ChainHead> {
        self.head.clone()
    }

    /// The fallback tip, while the node follows members' headers instead of its source.
    pub fn fallback_tip(&self) -> Option<ChainHead> {
        self.fallback.borrow().tip()
    }

    /// The headers this node serves to members.
    pub fn recent(&self) -> watch::Receiver<Arc<RecentHeaders>> {
        self.recent.clone()
    }

    /// The hash at `number`: from accepted fallback headers, then the source's recent
    /// headers, then the source.
    pub async fn block_hash(&self, number: u64) -> Result<[u8; 32], EvmError> {
        if let Some(h) = self.fallback.borrow().hashes.get(&number) {
            return Ok(*h);
        }
        let cached = self
            .recent
            .borrow()
            .get(number)
            .and_then(|e| <[u8; 32]>::try_from(e.hash.as_slice()).ok());
        match cached {
            Some(h) => Ok(h),
            None => self.source.block_hash(number).await,
        }
    }
}
