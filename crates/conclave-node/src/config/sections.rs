//! The configuration file's sections, as the operator writes them. Each section is its own
//! table (`[evm]`, `[coordination]`, …) with every key defaulted, so a file names only what it
//! changes; unknown keys are refused.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[registry]`: where membership comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySection {
    /// `file` (the registry file), `evm` (the ConclaveRegistry contract, `[evm]`) or `stacks`
    /// (a Stacks registry contract's signer set, `[stacks]`).
    pub source: String,
    /// The registry file (file source).
    pub file: PathBuf,
    /// How often the file is checked for edits.
    pub poll_ms: u64,
}

impl Default for RegistrySection {
    fn default() -> Self {
        RegistrySection {
            source: "file".into(),
            file: "registry.toml".into(),
            poll_ms: 250,
        }
    }
}

/// `[evm]`: the on-chain registry (with `[registry] source = "evm"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EvmSection {
    /// JSON-RPC endpoint of the chain holding the registry.
    pub rpc_url: Option<String>,
    /// Address of the ConclaveRegistry contract.
    pub contract: Option<String>,
    /// Blocks on top of a registry change before it is applied (reorg safety).
    pub confirmations: u64,
    pub poll_ms: u64,
}

impl Default for EvmSection {
    fn default() -> Self {
        EvmSection {
            rpc_url: None,
            contract: None,
            confirmations: 2,
            poll_ms: 1000,
        }
    }
}

/// `[stacks]`: sBTC's registry on Stacks (with `[registry] source = "stacks"`): the signer set
/// in the registry contract's `current-signer-set`, read from a Stacks node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StacksSection {
    /// The Stacks node's RPC URL, e.g. http://127.0.0.1:20443.
    pub node_url: Option<String>,
    /// `<address>.<name>` of the registry contract (sBTC's: `<deployer>.sbtc-registry`).
    pub registry_contract: Option<String>,
    pub poll_ms: u64,
    /// A request to the node taking longer counts as the node being unreachable.
    pub request_timeout_ms: u64,
    /// Topics every signer in the set may sign (the contract has no scopes).
    pub member_scopes: Vec<String>,
    /// Compressed secp256k1 keys (hex) admitted beside the set: signers joining the next one.
    pub candidates: Vec<String>,
    /// Topics candidates may sign, usually fewer than members'.
    pub candidate_scopes: Vec<String>,
}

impl Default for StacksSection {
    fn default() -> Self {
        StacksSection {
            node_url: None,
            registry_contract: None,
            poll_ms: 2000,
            request_timeout_ms: 5000,
            member_scopes: Vec::new(),
            candidates: Vec::new(),
            candidate_scopes: Vec::new(),
        }
    }
}

/// `[limits]`: what one message, one peer and the publish queue may cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// How far a message's timestamp may be from this node's clock.
    pub timestamp_tolerance_secs: u64,
    pub max_message_bytes: usize,
    /// Publishes held while no member is connected, and for how long.
    pub publish_queue_capacity: usize,
    pub publish_queue_ttl_secs: u64,
    /// Inbound connections in their handshake at once from IPs no member lists (members' listed
    /// IPs are always admitted).
    pub max_pending_incoming: u32,
    /// Handshakes in progress at once from any one IP no member lists.
    pub max_pending_per_ip: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            timestamp_tolerance_secs: 30,
            max_message_bytes: 64 * 1024,
            publish_queue_capacity: 1024,
            publish_queue_ttl_secs: 120,
            max_pending_incoming: 64,
            max_pending_per_ip: 8,
        }
    }
}

/// `[catch_up]`: signed messages kept for members that missed them (partitioned, restarting),
/// and how often this node reconciles with a member to find what it missed itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CatchUpSection {
    /// How long accepted messages are kept and can be caught up (also how long a fetched
    /// message may be old).
    pub retention_secs: u64,
    /// The most bytes of messages kept (memory and state store); the oldest go first.
    pub retention_bytes: usize,
    /// How often to reconcile with one connected member at random.
    pub anti_entropy_secs: u64,
}

impl Default for CatchUpSection {
    fn default() -> Self {
        CatchUpSection {
            retention_secs: 600,
            retention_bytes: 64 * 1024 * 1024,
            anti_entropy_secs: 5,
        }
    }
}

impl CatchUpSection {
    pub(crate) fn validate(
        &self,
        tolerance_secs: u64,
        max_message_bytes: usize,
    ) -> Result<conclave_net::CatchUpConfig, super::ConfigError> {
        let invalid = |key: &str, value: u64, expected| super::ConfigError::Invalid {
            key: key.into(),
            value: value.to_string(),
            expected,
        };
        if !(tolerance_secs..=86_400).contains(&self.retention_secs) {
            return Err(invalid(
                "catch_up.retention_secs",
                self.retention_secs,
                "from limits.timestamp_tolerance_secs up to 86400 (a day)",
            ));
        }
        if self.retention_bytes < 16 * max_message_bytes {
            return Err(invalid(
                "catch_up.retention_bytes",
                self.retention_bytes as u64,
                "at least 16 × limits.max_message_bytes",
            ));
        }
        if !(1..=3600).contains(&self.anti_entropy_secs) {
            return Err(invalid(
                "catch_up.anti_entropy_secs",
                self.anti_entropy_secs,
                "between 1 and 3600",
            ));
        }
        Ok(conclave_net::CatchUpConfig {
            retention: std::time::Duration::from_secs(self.retention_secs),
            max_bytes: self.retention_bytes,
            anti_entropy: std::time::Duration::from_secs(self.anti_entropy_secs),
            ..Default::default()
        })
    }
}

/// `[relay]`: relay circuits (libp2p circuit relay v2) for members that cannot reach each
/// other directly: reservations and circuits only for members, each bounded in time and bytes.
/// Members use a relay by listening on `<relay address>/p2p-circuit`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySection {
    pub server: bool,
    pub max_circuit_secs: u64,
    pub max_circuit_bytes: u64,
}

impl Default for RelaySection {
    fn default() -> Self {
        RelaySection {
            server: false,
            max_circuit_secs: 600,
            max_circuit_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[coordination]`: coordination windows (tBTC RFC 12) for the groups this node's operator
/// sits in, on the `coord` topic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinationSection {
    pub enabled: bool,
    pub frequency: u64,
    pub active: u64,
    pub passive: u64,
    pub safe_shift: u64,
    pub sweep_every: u64,
    pub heartbeat_probability: f64,
}

impl Default for CoordinationSection {
    fn default() -> Self {
        CoordinationSection {
            enabled: false,
            frequency: 900,
            active: 80,
            passive: 20,
            safe_shift: 32,
            sweep_every: 4,
            heartbeat_probability: 0.0625,
        }
    }
}

/// `[clock_chain]`: with a registry file, a chain of blocks derived from the clock (the same
/// genesis on every node), for coordination and the watchdog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClockChainSection {
    /// Unix ms; unset: no clock chain.
    pub genesis_ms: Option<u64>,
    pub block_ms: u64,
}

impl Default for ClockChainSection {
    fn default() -> Self {
        ClockChainSection {
            genesis_ms: None,
            block_ms: 1000,
        }
    }
}

/// `[rln]`: the anonymous channel (needs the `rln-slash` scope for slashing evidence).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RlnSection {
    pub enabled: bool,
    /// This node's RLN identity (`conclave rln keygen`); without it the node validates and
    /// relays but cannot publish.
    pub key: Option<PathBuf>,
    /// The network's RLN identifier: proofs made for another identifier are refused.
    pub identifier: String,
    /// Anonymous topics subscribed at start.
    pub topics: Vec<String>,
    pub epoch_secs: u64,
    pub max_epoch_gap: u64,
    /// Recent tree roots accepted in proofs.
    pub root_window: usize,
    /// Proving threads (verification has a thread of its own, so relaying never waits behind
    /// an own proof) and the bound of each queue.
    pub workers: usize,
    pub queue: usize,
    /// How often a node re-announces the removed members it knows (for late joiners).
    pub announce_removed_secs: u64,
    /// Own messages are released after a random delay up to this, not the instant their proof
    /// is ready (so the proof time does not date them). 0: at once.
    pub release_jitter_ms: u64,
    /// Own messages start on the stem (Dandelion++): single hops among members, each verified,
    /// before gossip. Off, they are gossiped at once; relaying others' stems stays on.
    pub stem: bool,
    /// The chance that a stem hop moves a message to gossip: the stem is 1/q hops on average.
    pub stem_fluff_probability: f64,
    /// A relayed stem message waits a random time up to this before the next hop.
    pub stem_hop_delay_ms: u64,
    /// A stem message not seen in gossip after this (plus a random extra) is gossiped by the
    /// node holding it.
    pub stem_failsafe_ms: u64,
    /// How long one choice of stem successors lasts.
    pub stem_epoch_secs: u64,
    /// Keep the last N arrivals (message id, the member it came from, stem or gossip, when) at
    /// `/v1/rln/arrivals`. What any member's node sees anyway, recorded so the anonymity
    /// benchmark can measure what a curious member learns; 0 (the default): off.
    pub record_arrivals: usize,
    /// With the evm registry: a file holding an Ethereum private key (hex, mode 0600) this node
    /// signs on-chain removals of slashed members with. Without it the node removes them
    /// locally and leaves the chain to other nodes.
    pub chain_key: Option<PathBuf>,
    /// Seconds each node waits per turn before submitting an on-chain removal itself (turns
    /// differ per slashed leaf), so normally one transaction is sent, not one per node.
    pub chain_stagger_secs: u64,
}

impl Default for RlnSection {
    fn default() -> Self {
        RlnSection {
            enabled: false,
            key: None,
            identifier: "conclave".into(),
            topics: Vec::new(),
            epoch_secs: 10,
            max_epoch_gap: 1,
            root_window: 5,
            workers: 1,
            queue: 64,
            announce_removed_secs: 10,
            release_jitter_ms: 250,
            stem: true,
            stem_fluff_probability: 0.2,
            stem_hop_delay_ms: 50,
            stem_failsafe_ms: 2000,
            stem_epoch_secs: 600,
            record_arrivals: 0,
            chain_key: None,
            chain_stagger_secs: 12,
        }
    }
}

/// `[watchdog]`: the chain-view watchdog (needs a chain source: the EVM registry or the clock
/// chain).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WatchdogSection {
    pub enabled: bool,
    /// The chain's expected block interval and how much later a block may be before the source
    /// counts as stalled.
    pub block_ms: u64,
    pub variance_ms: u64,
    /// Member silence (no gossip at all) that raises an anomaly.
    pub silence_secs: u64,
    /// Hysteresis: how long a condition must hold to raise, and be gone to clear.
    pub raise_after_ms: u64,
    pub clear_after_ms: u64,
    /// How often this node announces its chain tip on `chain-tip` (when granted that scope).
    pub tip_secs: u64,
    /// Members this many blocks ahead of us (from a quorum of operators) raise `behind`.
    pub ahead_blocks: u64,
    /// Distinct operators that must agree to raise `behind` or `forked`; 0 = f+1 of the
    /// registry's operators (f = ⌊(n-1)/3⌋). Also the distinct operators that must return the
    /// same headers before the node acts on them.
    pub quorum: usize,
    /// While an anomaly holds (or the node is on fallback): how often headers are fetched from
    /// members, and how long each member has to answer.
    pub fetch_ms: u64,
    pub fetch_timeout_ms: u64,
}

impl Default for WatchdogSection {
    fn default() -> Self {
        WatchdogSection {
            enabled: true,
            block_ms: 12_000,
            variance_ms: 12_000,
            silence_secs: 120,
            raise_after_ms: 2_000,
            clear_after_ms: 10_000,
            tip_secs: 10,
            ahead_blocks: 3,
            quorum: 0,
            fetch_ms: 2_000,
            fetch_timeout_ms: 3_000,
        }
    }
}

/// `[altnet]`: the HTTP paths for headers when p2p paths fail.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AltnetSection {
    /// Members' HTTP APIs (`http://host:port`) the polled header driver asks for signed headers.
    pub http_peers: Vec<String>,
    /// A second, read-only HTTP listener serving only `GET /v1/altnet/headers`, so members
    /// never need to reach the full API.
    pub http_listen: Option<String>,
}
