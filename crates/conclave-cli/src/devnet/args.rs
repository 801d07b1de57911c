//! `conclave devnet`'s command line.

use std::path::PathBuf;
use std::time::Duration;

/// Where the devnet's membership lives.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChainKind {
    /// A registry file, hot-reloaded.
    File,
    /// The ConclaveRegistry contract on a local anvil chain.
    Anvil,
}

/// Where operators' keys are when they act on the on-chain registry.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColdKeys {
    /// Each operator sends its own transactions from a funded account.
    Online,
    /// Each operator signs offline (EIP-712; one is a 2-of-3 Safe, ERC-1271) and one relayer
    /// submits everything; no operator key ever sends a transaction or holds ETH.
    Offline,
}

/// A registry other than the one `--chain` brings.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistryKind {
    /// sBTC's registry: a signer-set contract in a Clarity VM behind a Stacks node's RPC;
    /// the set rotates mid-run (one signer out, one in).
    Stacks,
}

/// What the devnet runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Traffic, an intruder, a removal (and on anvil a rotation), coordination, RLN.
    Full,
    /// One member's chain source freezes: it follows members' headers and keeps coordinating,
    /// then returns to its source (always on anvil).
    StaleChain,
    /// One member takes its TCP transport out: members reach it over QUIC.
    TcpCut,
    /// Members post anonymously at random while `--spies` of them record where each message
    /// first reached them; reports how well they name the authors.
    Anonymity,
    /// Each member on a host of its own (network namespaces; needs root): the network splits
    /// in two for `--duration` under traffic and heals; everything published meanwhile must
    /// reach everyone once, within seconds of the heal.
    Partition,
    /// One member is killed with SIGKILL under traffic for `--duration` and restarted on its
    /// state: it catches up once, is replayed to its resubscribing app, and never signals twice.
    Restart,
    /// 1000 stranger connections in a few seconds at one member (half full handshakes, half
    /// stalled) while members keep up traffic and one restarts.
    Flood,
    /// Each member on a host of its own (network namespaces; needs root), `--cut-pairs` of the
    /// member pairs unable to reach each other for the whole run: every message must still
    /// reach every member once, through the others.
    LinkCuts,
}

#[derive(clap::Args)]
pub struct DevnetArgs {
    /// What to run.
    #[arg(long, value_enum, default_value = "full")]
    pub scenario: Scenario,
    /// Registry backend.
    #[arg(long, value_enum, default_value = "file")]
    pub chain: ChainKind,
    /// Run on this registry instead (`stacks`: its own scenario, the rotation of the set).
    #[arg(long, value_enum)]
    pub registry: Option<RegistryKind>,
    /// With `--chain anvil`: whether operators send their own transactions or sign offline.
    #[arg(long, value_enum, default_value = "online")]
    pub cold_keys: ColdKeys,
    /// Register every member's RLN membership through an Ethereum validator's BLS key (EIP-2335
    /// keystores in the devnet directory), then try a forged registration and a validator's
    /// second one: refused on-chain (`--chain anvil`), or left out by every member (file).
    #[arg(long)]
    pub rln_validators: bool,
    /// Block interval of the anvil chain (`--chain anvil`).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub block_time: Duration,
    /// Number of member nodes (at least 3).
    #[arg(long, default_value_t = 7)]
    pub nodes: usize,
    /// How long to drive traffic.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Messages per second published by each member (1 to 1000).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rate: u32,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Seats of the first coordination group, dealt to the members in turn (e.g. 100 seats on 15
    /// members, as tBTC wallets have).
    #[arg(long, default_value_t = 5)]
    pub group_seats: usize,
    /// Working directory (default: a fresh temporary directory, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the working directory (keys, registry, configs, node logs).
    #[arg(long)]
    pub keep: bool,
    /// Anonymity: own anonymous messages start on the stem (`false`: straight to gossip).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub stem: bool,
    /// Anonymity: how many messages are posted, each by a member chosen at random.
    #[arg(long, default_value_t = 150)]
    pub messages: usize,
    /// Anonymity: how many members are curious (they record arrivals and collude).
    #[arg(long, default_value_t = 3)]
    pub spies: usize,
    /// Anonymity: the stem epoch (how long one choice of successors lasts). Short, so one run
    /// averages over many choices; production uses 10 minutes.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub stem_epoch: Duration,
    /// Link-cuts: the share of member pairs cut apart (0 to 0.5; each member keeps two links
    /// and the network stays connected).
    #[arg(long, default_value_t = 0.3)]
    pub cut_pairs: f64,
    /// Also write the final report as JSON (a `conclave_api::DevnetReport`) to this file; the
    /// benchmark harness reads it.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The CPU the flood scenario's strangers run on (set at start-up, before any thread: see
    /// `strangers::leave_last_cpu`); none on a machine of one CPU.
    #[arg(skip)]
    pub attacker_cpu: Option<usize>,
}
