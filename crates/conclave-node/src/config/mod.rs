//! Node configuration: a TOML file in sections, overridden by `CONCLAVE_*` environment
//! variables, overridden by `--set key=value` flags. Unknown keys and malformed values stop
//! start-up with the key named.
//!
//! Every key has a flat name (`evm_rpc_url`) besides its place in a section (`[evm] rpc_url`):
//! environment variables use it (`CONCLAVE_EVM_RPC_URL`), and `--set` takes either form. A
//! file that still uses a flat name gets an error naming where the key moved.

mod sections;
mod valid;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use sections::{
    AltnetSection, CatchUpSection, ClockChainSection, CoordinationSection, EvmSection,
    LimitsSection, RegistrySection, RelaySection, RlnSection, StacksSection, WatchdogSection,
};
pub use valid::{CoordConfig, RegistryChoice, RlnConfig, ValidConfig, WatchdogSettings};

/// Environment variables with the `CONCLAVE_` prefix that are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["config", "log", "eth_key", "password_file"];

/// Every key in a section, by its flat name (environment variables, `--set`) and its place.
/// Top-level keys (`key_file`, `listen`, …) are their own flat name.
pub const FLAT_KEYS: &[(&str, &str)] = &[
    ("registry", "registry.source"),
    ("registry_file", "registry.file"),
    ("registry_poll_ms", "registry.poll_ms"),
    ("evm_rpc_url", "evm.rpc_url"),
    ("evm_contract", "evm.contract"),
    ("evm_confirmations", "evm.confirmations"),
    ("evm_poll_ms", "evm.poll_ms"),
    ("stacks_node_url", "stacks.node_url"),
    ("stacks_registry_contract", "stacks.registry_contract"),
    ("stacks_poll_ms", "stacks.poll_ms"),
    ("stacks_request_timeout_ms", "stacks.request_timeout_ms"),
    ("stacks_member_scopes", "stacks.member_scopes"),
    ("stacks_candidates", "stacks.candidates"),
    ("stacks_candidate_scopes", "stacks.candidate_scopes"),
    (
        "timestamp_tolerance_secs",
        "limits.timestamp_tolerance_secs",
    ),
    ("max_message_bytes", "limits.max_message_bytes"),
    ("publish_queue_capacity", "limits.publish_queue_capacity"),
    ("publish_queue_ttl_secs", "limits.publish_queue_ttl_secs"),
    ("max_pending_incoming", "limits.max_pending_incoming"),
    ("max_pending_per_ip", "limits.max_pending_per_ip"),
    ("catchup_retention_secs", "catch_up.retention_secs"),
    ("catchup_retention_bytes", "catch_up.retention_bytes"),
    ("catchup_anti_entropy_secs", "catch_up.anti_entropy_secs"),
    ("relay_server", "relay.server"),
    ("relay_max_circuit_secs", "relay.max_circuit_secs"),
    ("relay_max_circuit_bytes", "relay.max_circuit_bytes"),
    ("coordination", "coordination.enabled"),
    ("coord_frequency", "coordination.frequency"),
    ("coord_active", "coordination.active"),
    ("coord_passive", "coordination.passive"),
    ("coord_safe_shift", "coordination.safe_shift"),
    ("coord_sweep_every", "coordination.sweep_every"),
    (
        "coord_heartbeat_probability",
        "coordination.heartbeat_probability",
    ),
    ("clock_chain_genesis_ms", "clock_chain.genesis_ms"),
    ("clock_chain_block_ms", "clock_chain.block_ms"),
    ("rln", "rln.enabled"),
    ("rln_key", "rln.key"),
    ("rln_identifier", "rln.identifier"),
    ("rln_topics", "rln.topics"),
    ("rln_epoch_secs", "rln.epoch_secs"),
    ("rln_max_epoch_gap", "rln.max_epoch_gap"),
    ("rln_root_window", "rln.root_window"),
    ("rln_workers", "rln.workers"),
    ("rln_queue", "rln.queue"),
    ("rln_announce_removed_secs", "rln.announce_removed_secs"),
    ("rln_release_jitter_ms", "rln.release_jitter_ms"),
    ("rln_stem", "rln.stem"),
    ("rln_stem_fluff_probability", "rln.stem_fluff_probability"),
    ("rln_stem_hop_delay_ms", "rln.stem_hop_delay_ms"),
    ("rln_stem_failsafe_ms", "rln.stem_failsafe_ms"),
    ("rln_stem_epoch_secs", "rln.stem_epoch_secs"),
    ("rln_record_arrivals", "rln.record_arrivals"),
    ("rln_chain_key", "rln.chain_key"),
    ("rln_chain_stagger_secs", "rln.chain_stagger_secs"),
    ("watchdog", "watchdog.enabled"),
    ("watchdog_block_ms", "watchdog.block_ms"),
    ("watchdog_variance_ms", "watchdog.variance_ms"),
    ("watchdog_silence_secs", "watchdog.silence_secs"),
    ("watchdog_raise_after_ms", "watchdog.raise_after_ms"),
    ("watchdog_clear_after_ms", "watchdog.clear_after_ms"),
    ("watchdog_tip_secs", "watchdog.tip_secs"),
    ("watchdog_ahead_blocks", "watchdog.ahead_blocks"),
    ("watchdog_quorum", "watchdog.quorum"),
    ("watchdog_fetch_ms", "watchdog.fetch_ms"),
    ("watchdog_fetch_timeout_ms", "watchdog.fetch_timeout_ms"),
    ("altnet_http_peers", "altnet.http_peers"),
    ("altnet_http_listen", "altnet.http_listen"),
];

/// The place of a key given by its flat name, or the key itself (top-level keys and keys
/// already given by place).
fn place_of(key: &str) -> &str {
    FLAT_KEYS
        .iter()
        .find(|(flat, _)| *flat == key)
        .map_or(key, |(_, place)| place)
}

/// The node's configuration as written by the operator (see the README's operator guide).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The node key file (`conclave keys generate`).
    pub key_file: PathBuf,
    /// Keys the node may rotate to (every `*.key` file here): when the registry delegates the
    /// node's operator to one of them and it outlives the current key, the node moves to it live.
    pub key_dir: Option<PathBuf>,
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
    /// `text` or `json`.
    pub log_format: String,
    pub registry: RegistrySection,
    pub evm: EvmSection,
    pub stacks: StacksSection,
    pub limits: LimitsSection,
    pub catch_up: CatchUpSection,
    pub relay: RelaySection,
    pub coordination: CoordinationSection,
    pub clock_chain: ClockChainSection,
    pub rln: RlnSection,
    pub watchdog: WatchdogSection,
    pub altnet: AltnetSection,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            key_file: "node.key".into(),
            key_dir: None,
            state_dir: "state".into(),
            listen: vec![
                "/ip4/0.0.0.0/tcp/9000".into(),
                "/ip4/0.0.0.0/udp/9000/quic-v1".into(),
            ],
            seeds: Vec::new(),
            topics: Vec::new(),
            http_listen: "127.0.0.1:8080".into(),
            ready_quorum: None,
            log_format: "text".into(),
            registry: RegistrySection::default(),
            evm: EvmSection::default(),
            stacks: StacksSection::default(),
            limits: LimitsSection::default(),
            catch_up: CatchUpSection::default(),
            relay: RelaySection::default(),
            coordination: CoordinationSection::default(),
            clock_chain: ClockChainSection::default(),
            rln: RlnSection::default(),
            watchdog: WatchdogSection::default(),
            altnet: AltnetSection::default(),
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
    #[error("config file {file}: key `{key}` is now `{place}` (section [{section}])")]
    Moved {
        file: PathBuf,
        key: String,
        place: &'static str,
        section: &'static str,
    },
}

/// Refuses top-level keys of `path` that are flat names of section keys, naming their place.
fn refuse_flat_keys(path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Load(format!("{}: {e}", path.display())))?;
    // Syntax errors are left to figment, which reports them with their position.
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    for (key, value) in &table {
        let moved = FLAT_KEYS.iter().find(|(flat, _)| flat == key);
        if let Some((_, place)) = moved {
            // `[registry]`, `[rln]`, … are the sections themselves.
            if value.is_table() {
                continue;
            }
            let section = place.split_once('.').map_or(*place, |(s, _)| s);
            return Err(ConfigError::Moved {
                file: path.to_owned(),
                key: key.clone(),
                place,
                section,
            });
        }
    }
    Ok(())
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
                refuse_flat_keys(path)?;
                fig = fig.merge(Toml::file_exact(path));
                path.parent().map(Path::to_path_buf).unwrap_or_default()
            }
            None => PathBuf::from("."),
        };
        fig = fig.merge(
            Env::prefixed("CONCLAVE_")
                .ignore(NON_CONFIG_ENV)
                // figment lowercases keys only after mapping them.
                .map(|k| place_of(&k.as_str().to_ascii_lowercase()).to_owned().into()),
        );
        for o in overrides {
            let (key, value) = o.split_once('=').ok_or_else(|| ConfigError::Invalid {
                key: o.clone(),
                value: o.clone(),
                expected: "--set KEY=VALUE",
            })?;
            let value: figment::value::Value = match value.parse() {
                Ok(v) => v,
                Err(never) => match never {},
            };
            fig = fig.merge((place_of(key.trim()), value));
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
}

#[cfg(test)]
mod tests;
