//! `conclave devnet --chain anvil`: the same network with its membership on a real EVM chain.
//! anvil runs locally, the registry is deployed, every member's operator (a fresh funded
//! account) authorizes its node key, and a miner task produces a block every `block_time`.
//! The removal becomes an on-chain revocation (the removed node reads the chain through a proxy
//! that is cut first, so it keeps believing it belongs), and node-0's operator rotates its key.
//! With `--cold-keys offline` no operator sends a transaction: each signs its actions offline
//! and one relayer submits them ([`super::operators`]); member 1's operator is a 2-of-3 Safe.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use conclave_api::{ColdKeysReport, ValidatorsReport};
use conclave_bls::ValidatorSecret;
use conclave_core::{GroupId, OperatorId, PeerId};
use conclave_node::keys::{self, KeyType};
use conclave_node::NodeConfig;
use conclave_registry::evm::admin::{self, PrivateKeySigner};
use conclave_registry::evm::anvil::{Anvil, RpcProxy, DEV_KEY_0};
use conclave_registry::evm::safe::SafeDeployment;
use conclave_registry::evm::signed::{ActionDomain, OperatorAction};
use conclave_registry::evm::{RegistryAdmin, OPEN_ENDED};
use conclave_registry::RlnEntry;
use serde::Deserialize;

use super::args::ColdKeys;
use super::common::{CONFIRMATIONS, ROTATION_KEY_DIR, TOPIC};
use super::config;
use super::operators::{Operator, Relayer};
use super::registry::Entry;
use super::validators;

/// With offline cold keys, member 1's operator is a 2-of-3 Safe (not node-0, which rotates,
/// nor the member that gets revoked: both go through ordinary cold keys).
const SAFE_MEMBER: usize = 1;

/// Scope bits of every member's node key: the devnet topic, coordination, RLN slashing, chain
/// tips (the watchdog's announcements).
const SCOPES: u64 = 0b1111;

/// How the devnet's chain runs: its block interval, where operators' keys are, and whether
/// validators register the RLN memberships.
pub struct ChainPlan<'a> {
    pub block_time: Duration,
    pub cold: ColdKeys,
    pub validator_keys: Option<&'a [ValidatorSecret]>,
}

pub struct ChainNet {
    anvil: Anvil,
    gov: RegistryAdmin,
    operators: Vec<Operator>,
    /// With offline cold keys: the account that submits every operator's signed actions.
    relayer: Option<Relayer>,
    /// The removed member reads the chain through this; cut before its revocation.
    victim_proxy: RpcProxy,
    victim: usize,
    miner: Option<tokio::task::JoinHandle<()>>,
    pub block_time: Duration,
    /// node-0's next key (in its key directory) once generated.
    rotation_key: Option<PeerId>,
    /// With `--rln-validators`: the memberships validators registered, and the refusals.
    pub validators: Option<ValidatorsReport>,
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
        how: ChainPlan<'_>,
    ) -> anyhow::Result<ChainNet> {
        let ChainPlan {
            block_time,
            cold,
            validator_keys,
        } = how;
        let anvil = Anvil::spawn(&[]).context("starting anvil (run scripts/install-deps.sh)")?;
        let (gov, _) = RegistryAdmin::deploy(&anvil.url, admin::parse_eth_key(DEV_KEY_0)?).await?;
        gov.define_scope(0, TOPIC).await?;
        gov.define_scope(1, conclave_node::COORD_TOPIC).await?;
        gov.define_scope(2, conclave_node::SLASH_TOPIC).await?;
        gov.define_scope(3, conclave_altnet::TIP_TOPIC).await?;
        let relayer = match cold {
            ColdKeys::Online => None,
            ColdKeys::Offline => {
                let key = PrivateKeySigner::random();
                anvil.set_balance(key.address(), 10u128.pow(21)).await?;
                let admin = RegistryAdmin::connect(&anvil.url, gov.contract(), key.clone())?;
                let domain = ActionDomain {
                    chain_id: admin.chain_id().await?,
                    registry: gov.contract(),
                };
                Some(Relayer {
                    admin,
                    key,
                    domain,
                    last: Default::default(),
                })
            }
        };
        let safes = match &relayer {
            Some(r) => Some(SafeDeployment::deploy(&anvil.url, r.admin_key()).await?),
            None => None,
        };
        let mut operators = Vec::new();
        for (i, peer) in peers.iter().enumerate() {
            let op = match (&relayer, &safes) {
                (Some(r), Some(s)) if i == SAFE_MEMBER => {
                    let owners = [(); 3].map(|_| PrivateKeySigner::random());
                    let addresses: Vec<_> = owners.iter().map(|k| k.address()).collect();
                    let safe = s
                        .create_safe(&anvil.url, r.admin_key(), &addresses, 2, i as u64)
                        .await?;
                    Operator::safe(safe, owners)
                }
                (Some(_), _) => Operator::cold(PrivateKeySigner::random()),
                (None, _) => {
                    let key = PrivateKeySigner::random();
                    anvil.set_balance(key.address(), 10u128.pow(20)).await?;
                    Operator::sends(RegistryAdmin::connect(&anvil.url, gov.contract(), key)?)
                }
            };
            gov.add_operator(op.id()).await?;
            let authorize = OperatorAction::Authorize {
                peer_id: peer.parse()?,
                scopes: SCOPES,
                valid_from: 0,
                valid_until: OPEN_ENDED,
            };
            op.act(authorize, relayer.as_ref()).await?;
            operators.push(op);
        }
        // Each member's operator registers its RLN membership: leaf i is member i's. Each node
        // gets a funded hot account to submit removals of slashed members with (offline: the
        // relayer's, so every transaction comes from the relayer or governance).
        // With validator keys, each validator signs its member's registration instead and the
        // relayer (or governance) submits it.
        let validators = match validator_keys {
            Some(keys) => {
                let ids: Vec<OperatorId> = operators.iter().map(Operator::id).collect();
                let submitter = relayer.as_ref().map_or(&gov, |r| &r.admin);
                Some(validators::register_on_chain(dir, &gov, submitter, &ids, rln, keys).await?)
            }
            None => None,
        };
        for (i, e) in rln.iter().enumerate() {
            if validators.is_none() {
                let rate = conclave_rln::fr_to_bytes(
                    &conclave_rln::fr_from_hex(&e.rate_commitment).map_err(|err| {
                        anyhow::anyhow!("rate commitment {}: {err}", e.rate_commitment)
                    })?,
                );
                let register = OperatorAction::RegisterRln {
                    rate_commitment: rate.into(),
                    limit: e.limit,
                };
                operators[i].act(register, relayer.as_ref()).await?;
            }
            let hot_file = dir.join(format!("node-{i}.eth"));
            match &relayer {
                Some(r) => r.write_key(&hot_file)?,
                None => {
                    let hot = keys::generate_eth(&hot_file)?;
                    anvil.set_balance(hot.address(), 10u128.pow(20)).await?;
                }
            }
        }
        for (id, seats) in groups {
            let seats: Vec<OperatorId> = seats.iter().map(|i| operators[*i].id()).collect();
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
            relayer,
            victim_proxy,
            victim,
            miner: None,
            block_time,
            rotation_key,
            validators,
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
        self.operators[i].id()
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
            let set = OperatorAction::SetNodeAddresses {
                peer_id: e.peer.parse()?,
                addresses: e.addrs.clone(),
            };
            self.operators[e.index]
                .act(set, self.relayer.as_ref())
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
        let head = self.head().await?;
        let rotate = OperatorAction::Rotate {
            old_peer_id: old.parse()?,
            new_peer_id: new,
            scopes: SCOPES,
            valid_until: OPEN_ENDED,
            revoke_old_at: head + grace,
        };
        let tx = self.operators[0].act(rotate, self.relayer.as_ref()).await?;
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
        struct BlockHash {
            hash: String,
        }
        Ok(self.block::<BlockHash>(number, false).await?.hash)
    }

    /// Block `number` from anvil (`eth_getBlockByNumber`; with `full`, its transactions), as
    /// much of it as `T` reads.
    async fn block<T: serde::de::DeserializeOwned>(
        &self,
        number: u64,
        full: bool,
    ) -> anyhow::Result<T> {
        #[derive(Deserialize)]
        struct BlockAnswer<T> {
            result: Option<T>,
        }
        let answer: BlockAnswer<T> = reqwest::Client::new()
            .post(&self.anvil.url)
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [format!("{number:#x}"), full]}))
            .send()
            .await?
            .json()
            .await
            .with_context(|| format!("anvil's answer for block {number}"))?;
        answer
            .result
            .with_context(|| format!("anvil has no block {number}"))
    }

    /// Cuts the victim's RPC path (it keeps its last view), revokes its key and waits until the
    /// block that makes the revocation final is mined. Returns when that block was seen.
    pub async fn revoke_victim(&self, peer: &str) -> anyhow::Result<(u64, Instant)> {
        self.victim_proxy.cut();
        let revoke = OperatorAction::Revoke {
            peer_id: peer.parse()?,
            effective_block: 0,
        };
        let tx = self.operators[self.victim]
            .act(revoke, self.relayer.as_ref())
            .await?;
        let final_block = tx.block + CONFIRMATIONS;
        println!(
            "revoked node-{} on-chain (tx {}, block {}; final at block {final_block})",
            self.victim, tx.tx_hash, tx.block
        );
        loop {
            if self.head().await? >= final_block {
                return Ok((final_block, Instant::now()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl ChainNet {
    /// With offline cold keys: a replay of the last signed action and an action whose deadline
    /// passed are submitted (both must be refused), then every block is read back to check who
    /// sent each transaction. None with online operators.
    pub async fn audit(&self) -> anyhow::Result<Option<ColdKeysReport>> {
        let Some(r) = &self.relayer else {
            return Ok(None);
        };
        let refusal = |result: Result<_, admin::AdminError>| match result {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        let last = r.last.lock().expect("last lock").clone();
        let replay_refusal = match last {
            Some(a) => refusal(r.admin.submit(&a).await),
            None => None,
        };
        let stale = OperatorAction::Revoke {
            peer_id: PeerId::random(),
            effective_block: 0,
        };
        let expired = self.operators[0].expired(stale, r.domain)?;
        let expired_refusal = refusal(r.admin.submit(&expired).await);
        let (relayer, governance) = (r.admin.signer(), self.gov.signer());
        let mut transactions = 0;
        let mut other_senders = Vec::new();
        for number in 0..=self.head().await? {
            for from in self.senders(number).await? {
                transactions += 1;
                if from != relayer && from != governance && !other_senders.contains(&from) {
                    other_senders.push(from);
                }
            }
        }
        let relayer = relayer.to_string();
        Ok(Some(ColdKeysReport {
            operators: self
                .operators
                .iter()
                .map(|o| o.signatures(&relayer))
                .collect(),
            relayer,
            governance: governance.to_string(),
            transactions,
            other_senders: other_senders.iter().map(|a| a.to_string()).collect(),
            replay_refusal,
            expired_refusal,
        }))
    }

    /// The senders of block `number`'s transactions.
    async fn senders(&self, number: u64) -> anyhow::Result<Vec<conclave_registry::evm::Address>> {
        #[derive(Deserialize)]
        struct Block {
            transactions: Vec<Tx>,
        }
        #[derive(Deserialize)]
        struct Tx {
            from: conclave_registry::evm::Address,
        }
        let block: Block = self.block(number, true).await?;
        Ok(block.transactions.into_iter().map(|t| t.from).collect())
    }
}

impl Drop for ChainNet {
    fn drop(&mut self) {
        if let Some(m) = self.miner.take() {
            m.abort();
        }
    }
}
