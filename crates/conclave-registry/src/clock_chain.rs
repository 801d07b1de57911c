//! A chain made of the clock: block n starts at `genesis + n × interval`, and its hash is derived
//! from the genesis and the height. Every node configured with the same genesis and interval sees
//! the same chain, so devnets and file-registry deployments can run block-based logic
//! (coordination windows, block-limited delegations) without an EVM endpoint.

use std::time::Duration;

use conclave_core::{Clock, SystemClock};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::evm::EvmError;
use crate::{ChainHead, ChainSource};

/// The clock chain; its head advances in a background task.
pub struct ClockChain {
    genesis_ms: u64,
    heads: watch::Receiver<ChainHead>,
    task: JoinHandle<()>,
}

/// The hash of block `n` of the clock chain that started at `genesis_ms`.
pub fn clock_block_hash(genesis_ms: u64, n: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"conclave clock chain");
    h.update(genesis_ms.to_be_bytes());
    h.update(n.to_be_bytes());
    h.finalize().into()
}

fn height(genesis_ms: u64, interval_ms: u64, now_ms: u64) -> u64 {
    now_ms.saturating_sub(genesis_ms) / interval_ms
}

impl ClockChain {
    /// Starts following the clock. `interval_ms` must be positive.
    pub fn spawn(genesis_ms: u64, interval_ms: u64) -> Self {
        assert!(interval_ms > 0, "clock chain interval must be positive");
        let head = move |n| ChainHead {
            number: n,
            hash: clock_block_hash(genesis_ms, n),
        };
        let first = height(genesis_ms, interval_ms, SystemClock.now_ms());
        let (tx, heads) = watch::channel(head(first));
        let task = tokio::spawn(async move {
            loop {
                let now = SystemClock.now_ms();
                let n = height(genesis_ms, interval_ms, now);
                tx.send_if_modified(|h| {
                    let changed = h.number != n;
                    *h = head(n);
                    changed
                });
                if tx.is_closed() {
                    return;
                }
                let next = genesis_ms + (n + 1) * interval_ms;
                tokio::time::sleep(Duration::from_millis(next.saturating_sub(now).max(1))).await;
            }
        });
        ClockChain {
            genesis_ms,
            heads,
            task,
        }
    }
}

impl ChainSource for ClockChain {
    fn heads(&self) -> watch::Receiver<ChainHead> {
        self.heads.clone()
    }

    async fn block_hash(&self, number: u64) -> Result<[u8; 32], EvmError> {
        if number > self.heads.borrow().number {
            return Err(EvmError::Rpc {
                url: "clock chain".into(),
                message: format!("block {number} is in the future"),
            });
        }
        Ok(clock_block_hash(self.genesis_ms, number))
    }
}

impl Drop for ClockChain {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocks_follow_the_clock_and_hashes_the_genesis() {
        let genesis = SystemClock.now_ms() - 10_050;
        let chain = ClockChain::spawn(genesis, 1000);
        let mut heads = chain.heads();
        assert_eq!(heads.borrow().number, 10);
        assert_eq!(heads.borrow().hash, clock_block_hash(genesis, 10));
        assert_ne!(
            clock_block_hash(genesis, 10),
            clock_block_hash(genesis + 1, 10)
        );
        tokio::time::timeout(Duration::from_secs(3), heads.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(heads.borrow().number, 11);
        assert_eq!(
            chain.block_hash(5).await.unwrap(),
            clock_block_hash(genesis, 5)
        );
        assert!(chain.block_hash(1000).await.is_err());
    }
}
