//! Node configuration: a TOML file, overridden by `CONCLAVE_*` environment variables, overridden
//! by `--set key=value` flags. Unknown keys and malformed values stop start-up with the key named.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conclave_coord::{ChecklistPolicy, WindowParams};
use conclave_core::{split_peer_id, Multiaddr, TopicName};
use conclave_registry::evm::{Address, EvmConfig};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Environment variables with the `CONCLAVE_` prefix that are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["config", "log", "eth_key"];

/// The node's configuration as written by the operator (see the README's operator guide).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node key file (`conclave keys generate`).
    pub key_file: PathBuf,
    /// Keys the node may rotate to (every `*.key` file here): when the registry delegates the
    /// node's operator to one of them and it outlives the current key, the node moves to it live.
    pub key_dir: Option<PathBuf>,
    /// Where membership comes from: `file` (`registry_file`) or `evm` (the ConclaveRegistry
    /// contract at `evm_contract`, read through `evm_rpc_url`).
    pub registry: String,
    /// The registry file (file backend).
    pub registry_file: PathBuf,
    /// JSON-RPC endpoint of the chain holding the registry (evm backend).
    pub evm_rpc_url: Option<String>,
    /// Address of the ConclaveRegistry contract (evm backend).
    pub evm_contract: Option<String>,
    /// Blocks on top of a registry change before it is applied (reorg safety).
    pub evm_confirmations: u64,
    pub evm_poll_ms: u64,
    /// Where the node keeps its state (peer store). Created 0700 if missing.
    pub state_dir: PathBuf,
    /// libp2p listen addresses (TCP and QUIC).
    pub listen: Vec<String>,
    /// Peers dialled at start, each `/…/p2p/<peer id>`.
    pub seeds: Vec<String>,
    /// Topics subscribed at start.
    pub topics: Vec<String>,
    /// The HTTP API's address (port 0: chosen by the OS; written to `<state_dir>/api.addr`).
    pub http_listen: String,
    /// Connected members needed for `/readyz`; default ⌈2/3⌉ of the other members.
    pub ready_quorum: Option<usize>,
    pub timestamp_tolerance_secs: u64,
    pub max_message_bytes: usize,
    pub publish_queue_capacity: usize,
    pub publish_queue_ttl_secs: u64,
    pub registry_poll_ms: u64,
    pub max_pending_incoming: u32,
    /// Relay circuits (libp2p circuit relay v2) for members that cannot reach each other
    /// directly: reservations and circuits only for members, each circuit bounded in time and
    /// bytes. Members use a relay by listening on `<relay address>/p2p-circuit`.
    pub relay_server: bool,
    pub relay_max_circuit_secs: u64,
    pub relay_max_circuit_bytes: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// Run coordination windows for the groups this node's operator sits in (topic `coord`).
    pub coordination: bool,
    pub coord_frequency: u64,
    pub coord_active: u64,
    pub coord_passive: u64,
    pub coord_safe_shift: u64,
    pub coord_sweep_every: u64,
    pub coord_heartbeat_probability: f64,
    /// With a registry file: the clock chain's genesis (unix ms), the same on every node.
    pub clock_chain_genesis_ms: Option<u64>,
    pub clock_chain_block_ms: u64,
    /// Run the anonymous RLN channel (needs the `rln-slash` scope for slashing evidence).
    pub rln: bool,
    /// This node's RLN identity (`conclave rln keygen`); without it the node validates and
    /// relays but cannot publish.
    pub rln_key: Option<PathBuf>,
    /// The network's RLN identifier: proofs made for another identifier are refused.
    pub rln_identifier: String,
    /// Anonymous topics subscribed at start.
    pub rln_topics: Vec<String>,
    pub rln_epoch_secs: u64,
    pub rln_max_epoch_gap: u64,
    pub rln_timestamp_tolerance_ms: u64,
    /// Recent tree roots accepted in proofs.
    pub rln_root_window: usize,
    /// Proof threads and the bound of their queue.
    pub rln_workers: usize,
    pub rln_queue: usize,
    /// How often a node re-announces the removed members it knows (for late joiners).
    pub rln_announce_removed_secs: u64,
    /// With the evm registry: a file holding an Ethereum private key (hex, mode 0600) this node
    /// signs on-chain removals of slashed members with. Without it the node removes them
    /// locally and leaves the chain to other nodes.
    pub rln_chain_key: Option<PathBuf>,
    /// Seconds each node waits per turn before submitting an on-chain removal itself (turns
    /// differ per slashed leaf), so normally one transaction is sent, not one per node.
    pub rln_chain_stagger_secs: u64,
    /// Run the chain-view watchdog (needs a chain source: the EVM registry or the clock chain).
    pub watchdog: bool,
    /// The chain's expected block interval and how much later a block may be before the source
    /// counts as stalled.
    pub watchdog_block_ms: u64,
    pub watchdog_variance_ms: u64,
    /// Member silence (no gossip at all) that raises an anomaly.
    pub watchdog_silence_secs: u64,
    /// Hysteresis: how long a condition must hold to raise, and be gone to clear.
    pub watchdog_raise_after_ms: u64,
    pub watchdog_clear_after_ms: u64,
    /// How often this node announces its chain tip on `chain-tip` (when granted that scope).
    pub watchdog_tip_secs: u64,
    /// Members this many blocks ahead of us (from a quorum of operators) raise `behind`.
    pub watchdog_ahead_blocks: u64,
    /// Distinct operators that must agree to raise `behind` or `forked`; 0 = f+1 of the
    /// registry's operators (f = ⌊(n-1)/3⌋). Also the distinct operators that must return the
    /// same headers before the node acts on them.
    pub watchdog_quorum: usize,
    /// While an anomaly holds (or the node is on fallback): how often headers are fetched from
    /// members, and how long each member has to answer.
    pub watchdog_fetch_ms: u64,
    pub watchdog_fetch_timeout_ms: u64,
    /// Members' HTTP APIs (`http://host:port`) the polled header driver asks for signed headers
    /// when p2p paths fail.
    pub altnet_http_peers: Vec<String>,
    /// A second, read-only HTTP listener serving only `GET /v1/altnet/headers` (signed headers
    /// for members' polled drivers), so members never need to reach the full API.
    pub altnet_http_listen: Option<String>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            key_file: "node.key".into(),
            key_dir: None,
            registry: "file".into(),
            registry_file: "registry.toml".into(),
            evm_rpc_url: None,
            evm_contract: None,
            evm_confirmations: 2,
            evm_poll_ms: 1000,
            state_dir: "state".into(),
            listen: vec![
                "/ip4/0.0.0.0/tcp/9000".into(),
                "/ip4/0.0.0.0/udp/9000/quic-v1".into(),
            ],
            seeds: Vec::new(),
            topics: Vec::new(),
            http_listen: "127.0.0.1:8080".into(),
            ready_quorum: None,
            timestamp_tolerance_secs: 30,
            max_message_bytes: 64 * 1024,
            publish_queue_capacity: 1024,
            publish_queue_ttl_secs: 120,
            registry_poll_ms: 250,
            max_pending_incoming: 64,
            relay_server: false,
            relay_max_circuit_secs: 600,
            relay_max_circuit_bytes: 64 * 1024 * 1024,
            log_format: "text".into(),
            coordination: false,
            coord_frequency: 900,
            coord_active: 80,
            coord_passive: 20,
            coord_safe_shift: 32,
            coord_sweep_every: 4,
            coord_heartbeat_probability: 0.0625,
            clock_chain_genesis_ms: None,
            clock_chain_block_ms: 1000,
            rln: false,
            rln_key: None,
            rln_identifier: "conclave".into(),
            rln_topics: Vec::new(),
            rln_epoch_secs: 10,
            rln_max_epoch_gap: 1,
            rln_timestamp_tolerance_ms: 20_000,
            rln_root_window: 5,
            rln_workers: 1,
            rln_queue: 64,
            rln_announce_removed_secs: 10,
            rln_chain_key: None,
            rln_chain_stagger_secs: 12,
            watchdog: true,
            watchdog_block_ms: 12_000,
            watchdog_variance_ms: 12_000,
            watchdog_silence_secs: 120,
            watchdog_raise_after_ms: 2_000,
            watchdog_clear_after_ms: 10_000,
            watchdog_tip_secs: 10,
            watchdog_ahead_blocks: 3,
            watchdog_quorum: 0,
            watchdog_fetch_ms: 2_000,
            watchdog_fetch_timeout_ms: 3_000,
            altnet_http_peers: Vec::new(),
            altnet_http_listen: None,
        }
    }
}

/// A configuration problem, naming the key, the value and the expected form.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} not found")]
    Missing(PathBuf),
    #[error("config: {0}")]
    Load(String),
    #[error("config key `{key}`: `{value}` is invalid: expected {expected}")]
    Invalid {
        key: String,
        value: String,
        expected: &'static str,
    },
}

/// Which registry backend the node follows.
#[derive(Debug, Clone)]
pub enum RegistryChoice {
    /// A TOML file, polled every `poll`.
    File { path: PathBuf, poll: Duration },
    /// The on-chain registry; block-limited delegations are judged against its chain head.
    Evm(EvmConfig),
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
    /// The key file on-chain removals are signed with (evm registry only).
    pub chain_key: Option<PathBuf>,
    pub chain_stagger: Duration,
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
    pub relay_server: Option<conclave_net::RelayLimits>,
    pub json_logs: bool,
    pub coordination: Option<CoordConfig>,
    /// (genesis unix ms, block interval ms) of the clock chain, when configured.
    pub clock_chain: Option<(u64, u64)>,
    pub rln: Option<RlnConfig>,
    pub watchdog: Option<WatchdogSettings>,
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

/// A member API's base URL for the polled header driver.
fn http_peer(url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(ConfigError::Invalid {
            key: "altnet_http_peers".into(),
            value: url.to_owned(),
            expected: "a member API base URL such as http://10.0.0.5:8080",
        }),
    }
}

impl NodeConfig {
    /// Layers defaults ← file ← environment ← `--set` overrides, refusing unknown keys.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<(Self, PathBuf), ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(NodeConfig::default()));
        let base = match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::Missing(path.to_owned()));
                }
                fig = fig.merge(Toml::file_exact(path));
                path.parent().map(Path::to_path_buf).unwrap_or_default()
            }
            None => PathBuf::from("."),
        };
        fig = fig.merge(Env::prefixed("CONCLAVE_").ignore(NON_CONFIG_ENV));
        for o in overrides {
            let (key, value) = o.split_once('=').ok_or_else(|| ConfigError::Invalid {
                key: o.clone(),
                value: o.clone(),
                expected: "--set KEY=VALUE",
            })?;
            let value: figment::value::Value =
                value.parse().expect("figment values parse infallibly");
            fig = fig.merge((key.trim(), value));
        }
        let config: NodeConfig = fig.extract().map_err(|e| {
            ConfigError::Load(
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Ok((config, base))
    }

    /// Checks every value and resolves relative paths against `base`.
    pub fn validate(&self, base: &Path) -> Result<ValidConfig, ConfigError> {
        let invalid = |key: String, value: &str, expected| ConfigError::Invalid {
            key,
            value: value.to_owned(),
            expected,
        };
        let multiaddrs = |key: &str, list: &[String]| -> Result<Vec<Multiaddr>, ConfigError> {
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
        };
        let listen = multiaddrs("listen", &self.listen)?;
        let seeds = multiaddrs("seeds", &self.seeds)?;
        for (i, seed) in seeds.iter().enumerate() {
            if split_peer_id(seed.clone()).1.is_none() {
                return Err(invalid(
                    format!("seeds[{i}]"),
                    &seed.to_string(),
                    "a multiaddr ending in /p2p/<peer id>",
                ));
            }
        }
        let topic_list = |key: &str, list: &[String]| -> Result<Vec<TopicName>, ConfigError> {
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
        };
        let topics = topic_list("topics", &self.topics)?;
        let http_listen = self.http_listen.parse().map_err(|_| {
            invalid(
                "http_listen".into(),
                &self.http_listen,
                "IP:PORT such as 127.0.0.1:8080",
            )
        })?;
        let altnet_http_listen = self
            .altnet_http_listen
            .as_ref()
            .map(|a| {
                a.parse().map_err(|_| {
                    invalid(
                        "altnet_http_listen".into(),
                        a,
                        "IP:PORT such as 0.0.0.0:8081",
                    )
                })
            })
            .transpose()?;
        let json_logs = match self.log_format.as_str() {
            "text" => false,
            "json" => true,
            other => return Err(invalid("log_format".into(), other, "`text` or `json`")),
        };
        if self.max_message_bytes < 256 || self.max_message_bytes > 4 * 1024 * 1024 {
            return Err(invalid(
                "max_message_bytes".into(),
                &self.max_message_bytes.to_string(),
                "between 256 and 4194304",
            ));
        }
        for (key, v) in [
            ("publish_queue_capacity", self.publish_queue_capacity as u64),
            ("registry_poll_ms", self.registry_poll_ms),
            ("timestamp_tolerance_secs", self.timestamp_tolerance_secs),
            ("publish_queue_ttl_secs", self.publish_queue_ttl_secs),
            ("evm_poll_ms", self.evm_poll_ms),
        ] {
            if v == 0 {
                return Err(invalid(key.into(), "0", "a positive number"));
            }
        }
        let registry = match self.registry.as_str() {
            "file" => RegistryChoice::File {
                path: base.join(&self.registry_file),
                poll: Duration::from_millis(self.registry_poll_ms),
            },
            "evm" => {
                let rpc_url = self.evm_rpc_url.as_deref().unwrap_or("");
                if !(rpc_url.starts_with("http://") || rpc_url.starts_with("https://")) {
                    return Err(invalid(
                        "evm_rpc_url".into(),
                        rpc_url,
                        "an http(s) JSON-RPC URL such as http://127.0.0.1:8545 (required with registry = \"evm\")",
                    ));
                }
                let contract = self.evm_contract.as_deref().unwrap_or("");
                let address = contract.parse::<Address>().map_err(|_| {
                    invalid(
                        "evm_contract".into(),
                        contract,
                        "the registry contract's 0x-prefixed 20-byte address (required with registry = \"evm\")",
                    )
                })?;
                let mut evm = EvmConfig::new(rpc_url, address);
                evm.confirmations = self.evm_confirmations;
                evm.poll_interval = Duration::from_millis(self.evm_poll_ms);
                RegistryChoice::Evm(evm)
            }
            other => return Err(invalid("registry".into(), other, "`file` or `evm`")),
        };
        if self.clock_chain_block_ms == 0 {
            return Err(invalid(
                "clock_chain_block_ms".into(),
                "0",
                "a positive number",
            ));
        }
        let clock_chain = self
            .clock_chain_genesis_ms
            .map(|g| (g, self.clock_chain_block_ms));
        let coordination = if self.coordination {
            let params = WindowParams {
                frequency: self.coord_frequency,
                active: self.coord_active,
                passive: self.coord_passive,
                safe_shift: self.coord_safe_shift,
            };
            params.validate().map_err(|e| ConfigError::Invalid {
                key: "coord_frequency/coord_active/coord_passive/coord_safe_shift".into(),
                value: format!("{params:?}"),
                expected: match e {
                    conclave_coord::WindowParamsError::ZeroFrequency => "a positive frequency",
                    conclave_coord::WindowParamsError::ZeroActive => "a positive active phase",
                    conclave_coord::WindowParamsError::Overlap { .. } => {
                        "active + passive <= frequency"
                    }
                    conclave_coord::WindowParamsError::ShiftTooLarge { .. } => {
                        "safe_shift < frequency"
                    }
                },
            })?;
            let p = self.coord_heartbeat_probability;
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(
                    "coord_heartbeat_probability".into(),
                    &p.to_string(),
                    "a probability between 0 and 1",
                ));
            }
            if matches!(registry, RegistryChoice::File { .. }) && clock_chain.is_none() {
                return Err(invalid(
                    "clock_chain_genesis_ms".into(),
                    "(unset)",
                    "a unix time in ms shared by every node: coordination with a registry file runs on the clock chain",
                ));
            }
            Some(CoordConfig {
                params,
                policy: ChecklistPolicy {
                    sweep_every: self.coord_sweep_every,
                    heartbeat_probability: p,
                },
            })
        } else {
            None
        };
        let rln = if self.rln {
            for (key, v) in [
                ("rln_epoch_secs", self.rln_epoch_secs),
                (
                    "rln_timestamp_tolerance_ms",
                    self.rln_timestamp_tolerance_ms,
                ),
                ("rln_root_window", self.rln_root_window as u64),
                ("rln_workers", self.rln_workers as u64),
                ("rln_queue", self.rln_queue as u64),
                ("rln_announce_removed_secs", self.rln_announce_removed_secs),
                ("rln_chain_stagger_secs", self.rln_chain_stagger_secs),
            ] {
                if v == 0 {
                    return Err(invalid(key.into(), "0", "a positive number"));
                }
            }
            if self.rln_identifier.is_empty() {
                return Err(invalid(
                    "rln_identifier".into(),
                    "",
                    "the network's name, the same on every node",
                ));
            }
            if self.rln_chain_key.is_some() && !matches!(registry, RegistryChoice::Evm(_)) {
                return Err(invalid(
                    "rln_chain_key".into(),
                    &self.registry,
                    "registry = \"evm\" (on-chain removal needs the registry contract)",
                ));
            }
            Some(RlnConfig {
                key_file: self.rln_key.as_ref().map(|k| base.join(k)),
                chain_key: self.rln_chain_key.as_ref().map(|k| base.join(k)),
                chain_stagger: Duration::from_secs(self.rln_chain_stagger_secs),
                identifier: self.rln_identifier.clone(),
                topics: topic_list("rln_topics", &self.rln_topics)?,
                rules: conclave_rln::EpochRules {
                    epoch_secs: self.rln_epoch_secs,
                    max_epoch_gap: self.rln_max_epoch_gap,
                    timestamp_tolerance_ms: self.rln_timestamp_tolerance_ms,
                },
                root_window: self.rln_root_window,
                workers: self.rln_workers,
                queue: self.rln_queue,
                announce_removed: Duration::from_secs(self.rln_announce_removed_secs),
            })
        } else {
            None
        };
        let watchdog = if self.watchdog {
            for (key, v) in [
                ("watchdog_block_ms", self.watchdog_block_ms),
                ("watchdog_silence_secs", self.watchdog_silence_secs),
                ("watchdog_tip_secs", self.watchdog_tip_secs),
                ("watchdog_fetch_ms", self.watchdog_fetch_ms),
                ("watchdog_fetch_timeout_ms", self.watchdog_fetch_timeout_ms),
            ] {
                if v == 0 {
                    return Err(invalid(key.into(), "0", "a positive number"));
                }
            }
            Some(WatchdogSettings {
                block_ms: self.watchdog_block_ms,
                variance_ms: self.watchdog_variance_ms,
                silence_ms: self.watchdog_silence_secs.saturating_mul(1000),
                raise_after_ms: self.watchdog_raise_after_ms,
                clear_after_ms: self.watchdog_clear_after_ms,
                tip_every: Duration::from_secs(self.watchdog_tip_secs),
                ahead_blocks: self.watchdog_ahead_blocks,
                quorum: self.watchdog_quorum,
                fetch_every: Duration::from_millis(self.watchdog_fetch_ms),
                fetch_timeout: Duration::from_millis(self.watchdog_fetch_timeout_ms),
                http_peers: self
                    .altnet_http_peers
                    .iter()
                    .map(|u| http_peer(u))
                    .collect::<Result<_, _>>()?,
            })
        } else {
            None
        };
        Ok(ValidConfig {
            key_file: base.join(&self.key_file),
            key_dir: self.key_dir.as_ref().map(|d| base.join(d)),
            registry,
            state_dir: base.join(&self.state_dir),
            listen,
            seeds,
            topics,
            http_listen,
            altnet_http_listen,
            ready_quorum: self.ready_quorum,
            timestamp_tolerance: Duration::from_secs(self.timestamp_tolerance_secs),
            max_message_bytes: self.max_message_bytes,
            publish_queue_capacity: self.publish_queue_capacity,
            publish_queue_ttl: Duration::from_secs(self.publish_queue_ttl_secs),
            max_pending_incoming: self.max_pending_incoming,
            relay_server: self.relay_server.then(|| conclave_net::RelayLimits {
                max_circuit_duration: Duration::from_secs(self.relay_max_circuit_secs),
                max_circuit_bytes: self.relay_max_circuit_bytes,
                ..Default::default()
            }),
            json_logs,
            coordination,
            clock_chain,
            rln,
            watchdog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, overrides: &[&str]) -> Result<ValidConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let (c, base) = NodeConfig::load(Some(&path), &overrides)?;
        c.validate(&base)
    }

    #[test]
    fn layers_and_resolves_paths() {
        let c = load_text(
            "key_file = \"k/node.key\"\ntopics = [\"signers\"]\n",
            &["http_listen=127.0.0.1:0", "ready_quorum=3"],
        )
        .unwrap();
        assert!(c.key_file.ends_with("k/node.key") && c.key_file.is_absolute());
        assert_eq!(c.http_listen.port(), 0);
        assert_eq!(c.ready_quorum, Some(3));
        assert_eq!(c.topics[0].as_str(), "signers");
        assert_eq!(c.listen.len(), 2);
    }

    #[test]
    fn malformed_values_name_the_key_and_the_expected_form() {
        let cases = [
            (
                "listen = [\"/ip4/1.2.3.4/tcp/1\", \"nonsense\"]\n",
                "listen[1]",
            ),
            ("seeds = [\"/ip4/127.0.0.1/tcp/1\"]\n", "/p2p/<peer id>"),
            ("http_listen = \"localhost\"\n", "IP:PORT"),
            ("altnet_http_listen = \"8081\"\n", "altnet_http_listen"),
            ("topics = [\"Bad\"]\n", "topics[0]"),
            ("log_format = \"xml\"\n", "log_format"),
            ("frobnicate = 1\n", "frobnicate"),
            ("max_message_bytes = \"big\"\n", "max_message_bytes"),
            ("registry = \"ldap\"\n", "`file` or `evm`"),
            ("coordination = true\n", "clock_chain_genesis_ms"),
            (
                "coordination = true\nclock_chain_genesis_ms = 1\ncoord_active = 950\n",
                "active + passive",
            ),
            (
                "coordination = true\nclock_chain_genesis_ms = 1\ncoord_heartbeat_probability = 2.0\n",
                "coord_heartbeat_probability",
            ),
            ("registry = \"evm\"\n", "evm_rpc_url"),
            (
                "altnet_http_peers = [\"ftp://10.0.0.5\"]\n",
                "altnet_http_peers",
            ),
            ("watchdog_fetch_ms = 0\n", "watchdog_fetch_ms"),
            (
                "registry = \"evm\"\nevm_rpc_url = \"http://127.0.0.1:8545\"\nevm_contract = \"0x12\"\n",
                "evm_contract",
            ),
        ];
        for (text, expected) in cases {
            let err = load_text(text, &[]).unwrap_err().to_string();
            assert!(err.contains(expected), "expected `{expected}` in: {err}");
        }
        let err = load_text("", &["nonsense"]).unwrap_err().to_string();
        assert!(err.contains("KEY=VALUE"), "{err}");
        let err = NodeConfig::load(Some(Path::new("/nonexistent/node.toml")), &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/node.toml"));
    }
}
