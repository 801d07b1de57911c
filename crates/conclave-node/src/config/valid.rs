//! The configuration after validation: every value checked, every path resolved against the
//! config file's folder, each section turned into what the subsystem it configures takes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conclave_coord::{ChecklistPolicy, WindowParams, WindowParamsError};
use conclave_core::{split_peer_id, Multiaddr, TopicName};
use conclave_registry::evm::{Address, EvmConfig};
use conclave_registry::stacks::{ContractId, SignerKey, StacksConfig};

use super::sections::{
    AltnetSection, CoordinationSection, EvmSection, RegistrySection, RlnSection, StacksSection,
    WatchdogSection,
};
use super::{ConfigError, NodeConfig};

/// Which registry backend the node follows.
#[derive(Debug, Clone)]
pub enum RegistryChoice {
    /// A TOML file, polled every `poll`.
    File { path: PathBuf, poll: Duration },
    /// The on-chain registry; block-limited delegations are judged against its chain head.
    Evm(EvmConfig),
    /// A Stacks registry contract's signer set, polled from a Stacks node.
    Stacks(StacksConfig),
}

/// Coordination settings after validation.
#[derive(Debug, Clone, Copy)]
pub struct CoordConfig {
    pub params: WindowParams,
    pub policy: ChecklistPolicy,
}

/// Anonymous-channel settings after validation.
#[derive(Debug, Clone)]
pub struct RlnConfig {
    pub key_file: Option<PathBuf>,
    pub identifier: String,
    pub topics: Vec<TopicName>,
    pub rules: conclave_rln::EpochRules,
    pub root_window: usize,
    pub workers: usize,
    pub queue: usize,
    pub announce_removed: Duration,
    /// The largest random delay before an own message is released.
    pub release_jitter: Duration,
    pub stem: conclave_net::StemConfig,
    /// Arrivals kept for `/v1/rln/arrivals` (0: none).
    pub record_arrivals: usize,
    /// The key file on-chain removals are signed with (evm registry only).
    pub chain_key: Option<PathBuf>,
    pub chain_stagger: Duration,
}

/// Watchdog thresholds after validation (milliseconds).
#[derive(Debug, Clone)]
pub struct WatchdogSettings {
    pub block_ms: u64,
    pub variance_ms: u64,
    pub silence_ms: u64,
    pub raise_after_ms: u64,
    pub clear_after_ms: u64,
    pub tip_every: Duration,
    pub ahead_blocks: u64,
    /// 0: f+1 of the registry's operators at start.
    pub quorum: usize,
    pub fetch_every: Duration,
    pub fetch_timeout: Duration,
    /// Base URLs of members' APIs, without a trailing slash.
    pub http_peers: Vec<String>,
}

/// The configuration after validation, with paths resolved against the config file's folder.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    pub key_file: PathBuf,
    pub key_dir: Option<PathBuf>,
    pub registry: RegistryChoice,
    pub state_dir: PathBuf,
    pub listen: Vec<Multiaddr>,
    pub seeds: Vec<Multiaddr>,
    pub topics: Vec<TopicName>,
    pub http_listen: SocketAddr,
    pub altnet_http_listen: Option<SocketAddr>,
    pub ready_quorum: Option<usize>,
    pub timestamp_tolerance: Duration,
    pub max_message_bytes: usize,
    pub publish_queue_capacity: usize,
    pub publish_queue_ttl: Duration,
    pub max_pending_incoming: u32,
    pub max_pending_per_ip: u32,
    pub catch_up: conclave_net::CatchUpConfig,
    pub relay_server: Option<conclave_net::RelayLimits>,
    pub json_logs: bool,
    pub coordination: Option<CoordConfig>,
    /// (genesis unix ms, block interval ms) of the clock chain, when configured.
    pub clock_chain: Option<(u64, u64)>,
    pub rln: Option<RlnConfig>,
    pub watchdog: Option<WatchdogSettings>,
}

fn invalid(key: impl Into<String>, value: impl ToString, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        expected,
    }
}

/// Refuses the first of `values` that is zero, naming its key.
fn positive(values: &[(&str, u64)]) -> Result<(), ConfigError> {
    match values.iter().find(|(_, v)| *v == 0) {
        Some((key, _)) => Err(invalid(*key, 0, "a positive number")),
        None => Ok(()),
    }
}

fn multiaddrs(key: &str, list: &[String]) -> Result<Vec<Multiaddr>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<Multiaddr>().map_err(|_| {
                invalid(
                    format!("{key}[{i}]"),
                    s,
                    "a multiaddr such as /ip4/0.0.0.0/tcp/9000",
                )
            })
        })
        .collect()
}

fn topics(key: &str, list: &[String]) -> Result<Vec<TopicName>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            t.parse::<TopicName>().map_err(|_| {
                invalid(
                    format!("{key}[{i}]"),
                    t,
                    "a topic name: 1-64 of a-z 0-9 . _ -",
                )
            })
        })
        .collect()
}

fn socket(key: &str, value: &str, expected: &'static str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| invalid(key, value, expected))
}

/// A member API's base URL for the polled header driver.
fn http_peer(url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(invalid(
            "altnet.http_peers",
            url,
            "a member API base URL such as http://10.0.0.5:8080",
        )),
    }
}

fn http_url(key: &str, url: Option<&str>, expected: &'static str) -> Result<String, ConfigError> {
    let url = url.unwrap_or("");
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(key, url, expected));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl StacksSection {
    fn validate(&self) -> Result<StacksConfig, ConfigError> {
        positive(&[
            ("stacks.poll_ms", self.poll_ms),
            ("stacks.request_timeout_ms", self.request_timeout_ms),
        ])?;
        let node_url = http_url(
            "stacks.node_url",
            self.node_url.as_deref(),
            "the Stacks node's RPC URL such as http://127.0.0.1:20443 (required with registry.source = \"stacks\")",
        )?;
        let contract = self.registry_contract.as_deref().unwrap_or("");
        let contract: ContractId = contract.parse().map_err(|_| {
            invalid(
                "stacks.registry_contract",
                contract,
                "<address>.<contract name> of the registry contract, e.g. SP….sbtc-registry, with a valid address checksum (required with registry.source = \"stacks\")",
            )
        })?;
        if self.member_scopes.is_empty() {
            return Err(invalid(
                "stacks.member_scopes",
                "[]",
                "the topics signers in the set may sign (the contract has no scopes)",
            ));
        }
        let mut candidates: Vec<SignerKey> = Vec::new();
        for (i, c) in self.candidates.iter().enumerate() {
            let key = SignerKey::from_hex(c).map_err(|_| {
                invalid(
                    format!("stacks.candidates[{i}]"),
                    c,
                    "a compressed secp256k1 public key: 66 hex digits starting 02 or 03, a point on the curve",
                )
            })?;
            if candidates.iter().any(|k| k.compressed == key.compressed) {
                return Err(invalid(
                    format!("stacks.candidates[{i}]"),
                    c,
                    "a key not already listed among the candidates",
                ));
            }
            candidates.push(key);
        }
        Ok(StacksConfig {
            node_url,
            contract,
            poll_interval: Duration::from_millis(self.poll_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            member_scopes: topics("stacks.member_scopes", &self.member_scopes)?
                .into_iter()
                .collect(),
            candidates,
            candidate_scopes: topics("stacks.candidate_scopes", &self.candidate_scopes)?
                .into_iter()
                .collect(),
        })
    }
}

impl RegistrySection {
    fn validate(
        &self,
        evm: &EvmSection,
        stacks: &StacksSection,
        base: &Path,
    ) -> Result<RegistryChoice, ConfigError> {
        positive(&[
            ("registry.poll_ms", self.poll_ms),
            ("evm.poll_ms", evm.poll_ms),
        ])?;
        match self.source.as_str() {
            "file" => Ok(RegistryChoice::File {
                path: base.join(&self.file),
                poll: Duration::from_millis(self.poll_ms),
            }),
            "stacks" => Ok(RegistryChoice::Stacks(stacks.validate()?)),
            "evm" => {
                let rpc_url = evm.rpc_url.as_deref().unwrap_or("");
                if !(rpc_url.starts_with("http://") || rpc_url.starts_with("https://")) {
                    return Err(invalid(
                        "evm.rpc_url",
                        rpc_url,
                        "an http(s) JSON-RPC URL such as http://127.0.0.1:8545 (required with registry.source = \"evm\")",
                    ));
                }
                let contract = evm.contract.as_deref().unwrap_or("");
                let address = contract.parse::<Address>().map_err(|_| {
                    invalid(
                        "evm.contract",
                        contract,
                        "the registry contract's 0x-prefixed 20-byte address (required with registry.source = \"evm\")",
                    )
                })?;
                let mut cfg = EvmConfig::new(rpc_url, address);
                cfg.confirmations = evm.confirmations;
                cfg.poll_interval = Duration::from_millis(evm.poll_ms);
                Ok(RegistryChoice::Evm(cfg))
            }
            other => Err(invalid(
                "registry.source",
                other,
                "`file`, `evm` or `stacks`",
            )),
        }
    }
}

impl CoordinationSection {
    fn validate(
        &self,
        registry: &RegistryChoice,
        clock_chain: Option<(u64, u64)>,
    ) -> Result<Option<CoordConfig>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let params = WindowParams {
            frequency: self.frequency,
            active: self.active,
            passive: self.passive,
            safe_shift: self.safe_shift,
        };
        params.validate().map_err(|e| {
            invalid(
                "coordination.frequency/active/passive/safe_shift",
                format!("{params:?}"),
                match e {
                    WindowParamsError::ZeroFrequency => "a positive frequency",
                    WindowParamsError::ZeroActive => "a positive active phase",
                    WindowParamsError::Overlap { .. } => "active + passive <= frequency",
                    WindowParamsError::ShiftTooLarge { .. } => "safe_shift < frequency",
                },
            )
        })?;
        let p = self.heartbeat_probability;
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(
                "coordination.heartbeat_probability",
                p,
                "a probability between 0 and 1",
            ));
        }
        if !matches!(registry, RegistryChoice::Evm(_)) && clock_chain.is_none() {
            return Err(invalid(
                "clock_chain.genesis_ms",
                "(unset)",
                "a unix time in ms shared by every node: coordination without the EVM registry runs on the clock chain",
            ));
        }
        Ok(Some(CoordConfig {
            params,
            policy: ChecklistPolicy {
                sweep_every: self.sweep_every,
                heartbeat_probability: p,
            },
        }))
    }
}

/// The widest timestamp window: what a node must remember (and persist) to refuse replays.
const MAX_TIMESTAMP_TOLERANCE_SECS: u64 = 300;

/// The most arrivals `/v1/rln/arrivals` keeps, whatever the configuration asks.
const MAX_RECORDED_ARRIVALS: usize = 100_000;

impl RlnSection {
    fn validate(
        &self,
        registry: &RegistryChoice,
        base: &Path,
    ) -> Result<Option<RlnConfig>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        positive(&[
            ("rln.epoch_secs", self.epoch_secs),
            ("rln.root_window", self.root_window as u64),
            ("rln.workers", self.workers as u64),
            ("rln.queue", self.queue as u64),
            ("rln.announce_removed_secs", self.announce_removed_secs),
            ("rln.chain_stagger_secs", self.chain_stagger_secs),
            ("rln.stem_failsafe_ms", self.stem_failsafe_ms),
            ("rln.stem_epoch_secs", self.stem_epoch_secs),
        ])?;
        let q = self.stem_fluff_probability;
        if !(q > 0.0 && q <= 1.0) {
            return Err(invalid(
                "rln.stem_fluff_probability",
                q,
                "a probability above 0 and at most 1 (0.2: stems of 5 hops on average)",
            ));
        }
        if self.stem_hop_delay_ms >= self.stem_failsafe_ms {
            return Err(invalid(
                "rln.stem_hop_delay_ms",
                self.stem_hop_delay_ms,
                "less than rln.stem_failsafe_ms (or every hop would look lost)",
            ));
        }
        if self.identifier.is_empty() {
            return Err(invalid(
                "rln.identifier",
                "",
                "the network's name, the same on every node",
            ));
        }
        if self.chain_key.is_some() && !matches!(registry, RegistryChoice::Evm(_)) {
            return Err(invalid(
                "rln.chain_key",
                "(set)",
                "registry.source = \"evm\" (on-chain removal needs the registry contract)",
            ));
        }
        Ok(Some(RlnConfig {
            key_file: self.key.as_ref().map(|k| base.join(k)),
            chain_key: self.chain_key.as_ref().map(|k| base.join(k)),
            chain_stagger: Duration::from_secs(self.chain_stagger_secs),
            identifier: self.identifier.clone(),
            topics: topics("rln.topics", &self.topics)?,
            rules: conclave_rln::EpochRules {
                epoch_secs: self.epoch_secs,
                max_epoch_gap: self.max_epoch_gap,
            },
            root_window: self.root_window,
            workers: self.workers,
            queue: self.queue,
            announce_removed: Duration::from_secs(self.announce_removed_secs),
            release_jitter: Duration::from_millis(self.release_jitter_ms),
            stem: conclave_net::StemConfig {
                enabled: self.stem,
                fluff_probability: q,
                hop_delay: Duration::from_millis(self.stem_hop_delay_ms),
                failsafe: Duration::from_millis(self.stem_failsafe_ms),
                epoch: Duration::from_secs(self.stem_epoch_secs),
                ..conclave_net::StemConfig::default()
            },
            record_arrivals: self.record_arrivals.min(MAX_RECORDED_ARRIVALS),
        }))
    }
}

impl WatchdogSection {
    fn validate(&self, altnet: &AltnetSection) -> Result<Option<WatchdogSettings>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        positive(&[
            ("watchdog.block_ms", self.block_ms),
            ("watchdog.silence_secs", self.silence_secs),
            ("watchdog.tip_secs", self.tip_secs),
            ("watchdog.fetch_ms", self.fetch_ms),
            ("watchdog.fetch_timeout_ms", self.fetch_timeout_ms),
        ])?;
        Ok(Some(WatchdogSettings {
            block_ms: self.block_ms,
            variance_ms: self.variance_ms,
            silence_ms: self.silence_secs.saturating_mul(1000),
            raise_after_ms: self.raise_after_ms,
            clear_after_ms: self.clear_after_ms,
            tip_every: Duration::from_secs(self.tip_secs),
            ahead_blocks: self.ahead_blocks,
            quorum: self.quorum,
            fetch_every: Duration::from_millis(self.fetch_ms),
            fetch_timeout: Duration::from_millis(self.fetch_timeout_ms),
            http_peers: altnet
                .http_peers
                .iter()
                .map(|u| http_peer(u))
                .collect::<Result<_, _>>()?,
        }))
    }
}

impl NodeConfig {
    /// Checks every value and resolves relative paths against `base`.
    pub fn validate(&self, base: &Path) -> Result<ValidConfig, ConfigError> {
        let listen = multiaddrs("listen", &self.listen)?;
        let seeds = multiaddrs("seeds", &self.seeds)?;
        if let Some((i, seed)) = seeds
            .iter()
            .enumerate()
            .find(|(_, s)| split_peer_id((*s).clone()).1.is_none())
        {
            return Err(invalid(
                format!("seeds[{i}]"),
                seed,
                "a multiaddr ending in /p2p/<peer id>",
            ));
        }
        let json_logs = match self.log_format.as_str() {
            "text" => false,
            "json" => true,
            other => return Err(invalid("log_format", other, "`text` or `json`")),
        };
        let limits = &self.limits;
        if !(256..=4 * 1024 * 1024).contains(&limits.max_message_bytes) {
            return Err(invalid(
                "limits.max_message_bytes",
                limits.max_message_bytes,
                "between 256 and 4194304",
            ));
        }
        positive(&[
            (
                "limits.publish_queue_capacity",
                limits.publish_queue_capacity as u64,
            ),
            (
                "limits.timestamp_tolerance_secs",
                limits.timestamp_tolerance_secs,
            ),
            (
                "limits.publish_queue_ttl_secs",
                limits.publish_queue_ttl_secs,
            ),
            (
                "limits.max_pending_incoming",
                u64::from(limits.max_pending_incoming),
            ),
            (
                "limits.max_pending_per_ip",
                u64::from(limits.max_pending_per_ip),
            ),
            ("clock_chain.block_ms", self.clock_chain.block_ms),
        ])?;
        if limits.timestamp_tolerance_secs > MAX_TIMESTAMP_TOLERANCE_SECS {
            return Err(invalid(
                "limits.timestamp_tolerance_secs",
                limits.timestamp_tolerance_secs,
                "at most 300 seconds (delivered ids are remembered, and replays refused, for this window)",
            ));
        }
        let registry = self.registry.validate(&self.evm, &self.stacks, base)?;
        let clock_chain = self
            .clock_chain
            .genesis_ms
            .map(|g| (g, self.clock_chain.block_ms));
        Ok(ValidConfig {
            key_file: base.join(&self.key_file),
            key_dir: self.key_dir.as_ref().map(|d| base.join(d)),
            state_dir: base.join(&self.state_dir),
            listen,
            seeds,
            topics: topics("topics", &self.topics)?,
            http_listen: socket(
                "http_listen",
                &self.http_listen,
                "IP:PORT such as 127.0.0.1:8080",
            )?,
            altnet_http_listen: self
                .altnet
                .http_listen
                .as_deref()
                .map(|a| socket("altnet.http_listen", a, "IP:PORT such as 0.0.0.0:8081"))
                .transpose()?,
            ready_quorum: self.ready_quorum,
            timestamp_tolerance: Duration::from_secs(limits.timestamp_tolerance_secs),
            max_message_bytes: limits.max_message_bytes,
            publish_queue_capacity: limits.publish_queue_capacity,
            publish_queue_ttl: Duration::from_secs(limits.publish_queue_ttl_secs),
            max_pending_incoming: limits.max_pending_incoming,
            max_pending_per_ip: limits.max_pending_per_ip,
            catch_up: self
                .catch_up
                .validate(limits.timestamp_tolerance_secs, limits.max_message_bytes)?,
            relay_server: self.relay.server.then(|| conclave_net::RelayLimits {
                max_circuit_duration: Duration::from_secs(self.relay.max_circuit_secs),
                max_circuit_bytes: self.relay.max_circuit_bytes,
                ..Default::default()
            }),
            json_logs,
            coordination: self.coordination.validate(&registry, clock_chain)?,
            rln: self.rln.validate(&registry, base)?,
            watchdog: self.watchdog.validate(&self.altnet)?,
            clock_chain,
            registry,
        })
    }
}
