//! `conclave devnet --chain anvil`: the same network with its membership on a real EVM chain.
//! anvil runs locally, the registry is deployed, every member's operator (a fresh funded
//! account) authorizes its node key, and a miner task produces a block every `block_time`.
//! The removal becomes an on-chain revocation (the removed node reads the chain through a proxy
//! that is cut first, so it keeps believing it belongs), and node-0's operator rotates its key.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use conclave_core::{GroupId, OperatorId, PeerId};
use conclave_node::keys::{self, KeyType};
use conclave_node::NodeConfig;
use conclave_registry::evm::admin::{self, PrivateKeySigner};
use conclave_registry::evm::anvil::{Anvil, RpcProxy, DEV_KEY_0};
use conclave_registry::evm::{RegistryAdmin, OPEN_ENDED};
use conclave_registry::RlnEntry;
use serde::Deserialize;

use super::common::{CONFIRMATIONS, ROTATION_KEY_DIR, TOPIC};
use super::config;
use super::registry::Entry;

/// Scope bits of every member's node key: the devnet topic, coordination, RLN slashing, chain
/// tips (the watchdog's announcements).
const SCOPES: u64 = 0b1111;

pub struct ChainNet {
    anvil: Anvil,
    gov: RegistryAdmin,
    operators: Vec<RegistryAdmin>,
    /// The removed member reads the chain through this; cut before its revocation.
    victim_proxy: RpcProxy,
    victim: usize,
    miner: Option<tokio::task::JoinHandle<()>>,
    pub block_time: Duration,
    /// node-0's next key (in its key directory) once generated.
    rotation_key: Option<PeerId>,
}

impl ChainNet {
    /// Starts anvil, deploys the registry, admits one operator per member and authorizes the
    /// members' node keys.
    pub async fn start(
        dir: &Path,
        peers: &[String],
        victim: usize,
        groups: &[(GroupId, Vec<usize>)],
        rln: &[RlnEntry],
        block_time: Duration,
    ) -> anyhow::Result<ChainNet> {
        let anvil = Anvil::spawn(&[]).context("starting anvil (run scripts/install-deps.sh)")?;
        let (gov, _) = RegistryAdmin::deploy(&anvil.url, admin::parse_eth_key(DEV_KEY_0)?).await?;
        gov.define_scope(0, TOPIC).await?;
        gov.define_scope(1, conclave_node::COORD_TOPIC).await?;
        gov.define_scope(2, conclave_node::SLASH_TOPIC).await?;
        gov.define_scope(3, conclave_altnet::TIP_TOPIC).await?;
        let mut operators = Vec::new();
        for peer in peers {
            let key = PrivateKeySigner::random();
            anvil.set_balance(key.address(), 10u128.pow(20)).await?;
            let op = RegistryAdmin::connect(&anvil.url, gov.contract(), key)?;
            gov.add_operator(OperatorId(op.signer().0 .0)).await?;
            op.authorize(&peer.parse()?, SCOPES, 0, OPEN_ENDED).await?;
            operators.push(op);
        }
        // Each member's operator registers its RLN membership: leaf i is member i's. Each node
        // gets a funded hot account to submit removals of slashed members with.
        for (i, e) in rln.iter().enumerate() {
            let rate =
                conclave_rln::fr_to_bytes(&conclave_rln::fr_from_hex(&e.rate_commitment).map_err(
                    |err| anyhow::anyhow!("rate commitment {}: {err}", e.rate_commitment),
                )?);
            let (_, index) = operators[i].register_rln(rate, e.limit).await?;
            anyhow::ensure!(
                index == i as u64,
                "RLN leaf {index} registered for member {i}"
            );
            let hot = keys::generate_eth(&dir.join(format!("node-{i}.eth")))?;
            anvil.set_balance(hot.address(), 10u128.pow(20)).await?;
        }
        for (id, seats) in groups {
            let seats: Vec<OperatorId> = seats
                .iter()
                .map(|i| OperatorId(operators[*i].signer().0 .0))
                .collect();
            gov.set_group(*id, &seats).await?;
        }
        // node-0 holds its next key from the start; its operator delegates to it mid-run.
        let key_dir = dir.join(ROTATION_KEY_DIR);
        std::fs::create_dir_all(&key_dir)?;
        let rotation_key = Some(keys::generate(&key_dir.join("next.key"), KeyType::Ed25519)?);
        let victim_proxy = RpcProxy::start(anvil.port).await?;
        let net = ChainNet {
            anvil,
            gov,
            operators,
            victim_proxy,
            victim,
            miner: None,
            block_time,
            rotation_key,
        };
        net.anvil.mine(CONFIRMATIONS).await?;
        println!(
            "anvil {} — ConclaveRegistry {} with {} operators",
            net.anvil.url,
            net.gov.contract(),
            peers.len()
        );
        Ok(net)
    }

    /// The chain's current block.
    pub async fn head(&self) -> anyhow::Result<u64> {
        Ok(self.gov.block().await?)
    }

    /// Member `i`'s operator, as coordination reports name leaders.
    pub fn operator(&self, i: usize) -> OperatorId {
        OperatorId(self.operators[i].signer().0 .0)
    }

    /// Member `i` reads the registry from the contract, the removed member through the proxy
    /// that gets cut; node-0 may rotate to the key it holds.
    pub fn configure(&self, cfg: &mut NodeConfig, i: usize) {
        let url = if i == self.victim {
            &self.victim_proxy.url
        } else {
            &self.anvil.url
        };
        config::evm_registry(cfg, url, &self.gov.contract().to_string());
        if i == 0 {
            cfg.key_dir = Some(ROTATION_KEY_DIR.into());
        }
    }

    /// Whether RLN leaf `index` is removed on-chain.
    pub async fn rln_removed(&self, index: u64) -> anyhow::Result<bool> {
        Ok(self.gov.rln_removed(index).await?)
    }

    /// Every operator publishes its node's addresses on-chain; they apply once confirmed.
    pub async fn set_addresses(&self, entries: &[Entry]) -> anyhow::Result<()> {
        for e in entries {
            self.operators[e.index]
                .set_node_addresses(&e.peer.parse()?, e.addrs.clone())
                .await?;
        }
        self.anvil.mine(CONFIRMATIONS).await?;
        Ok(())
    }

    /// Starts producing a block every `block_time` (transactions are still mined at once).
    pub fn start_mining(&mut self) {
        let (url, every) = (self.anvil.url.clone(), self.block_time);
        self.miner = Some(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0x1"]});
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let _ = http.post(&url).json(&body).send().await;
            }
        }));
    }

    /// node-0's operator rotates to the held key; the old key is revoked `grace` blocks later.
    pub async fn rotate_node0(&self, old: &str, grace: u64) -> anyhow::Result<PeerId> {
        let new = self.rotation_key.expect("generated at start");
        let head = self.operators[0].block().await?;
        let tx = self.operators[0]
            .rotate(&old.parse()?, &new, SCOPES, OPEN_ENDED, head + grace)
            .await?;
        println!(
            "rotated node-0 {old} -> {new} on-chain (tx {}, block {}; old key revoked from block {})",
            tx.tx_hash,
            tx.block,
            head + grace
        );
        Ok(new)
    }

    /// The victim's chain source freezes: its RPC path is cut while the chain moves on.
    pub fn freeze_victim(&self) {
        self.victim_proxy.cut();
    }

    /// The victim's chain source is back.
    pub fn restore_victim(&self) {
        self.victim_proxy.restore();
    }

    /// The hash of block `number` on the chain the members follow (hex, 0x-prefixed).
    pub async fn block_hash(&self, number: u64) -> anyhow::Result<String> {
        /// The part of `eth_getBlockByNumber`'s answer read here.
        #[derive(Deserialize)]
        struct BlockAnswer {
            result: Option<BlockHash>,
        }
        #[derive(Deserialize)]
        struct BlockHash {
            hash: String,
        }
        let answer: BlockAnswer = reqwest::Client::new()
            .post(&self.anvil.url)
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [format!("{number:#x}"), false]}))
            .send()
            .await?
            .json()
            .await
            .with_context(|| format!("anvil's answer for block {number}"))?;
        Ok(answer
            .result
            .with_context(|| format!("anvil has no block {number}"))?
            .hash)
    }

    /// Cuts the victim's RPC path (it keeps its last view), revokes its key and waits until the
    /// block that makes the revocation final is mined. Returns when that block was seen.
    pub async fn revoke_victim(&self, peer: &str) -> anyhow::Result<(u64, Instant)> {
        self.victim_proxy.cut();
        let tx = self.operators[self.victim]
            .revoke(&peer.parse()?, 0)
            .await?;
        let final_block = tx.block + CONFIRMATIONS;
        println!(
            "revoked node-{} on-chain (tx {}, block {}; final at block {final_block})",
            self.victim, tx.tx_hash, tx.block
        );
        loop {
            if self.operators[self.victim].block().await? >= final_block {
                return Ok((final_block, Instant::now()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for ChainNet {
    fn drop(&mut self) {
        if let Some(m) = self.miner.take() {
            m.abort();
        }
    }
}
