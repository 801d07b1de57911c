//! `conclave devnet`: a whole signer network on this machine, as separate node processes on
//! loopback, exercised the way production would be: member traffic through the HTTP API, an
//! intruder that is not in the registry, and a member removed from the registry mid-run.
//! With `--chain anvil` the registry is the on-chain contract ([`chain`]): the removal is a
//! revocation, and a member rotates its node key live.

mod chain;
mod coord;
mod rln;
mod scenarios;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use base64::Engine;
use conclave_core::{GroupId, OperatorId};
use conclave_node::keys::{self, KeyType};
use conclave_registry::{NodeEntry, OperatorEntry, RegistryDocument};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha3::{Digest, Keccak256};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const TOPIC: &str = "devnet";
const STARTUP: Duration = Duration::from_secs(60);
/// Time in-flight messages get to arrive before the books are closed.
const DRAIN: Duration = Duration::from_secs(3);

/// Where the devnet's membership lives.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChainKind {
    /// A registry file, hot-reloaded.
    File,
    /// The ConclaveRegistry contract on a local anvil chain.
    Anvil,
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
}

#[derive(clap::Args)]
pub struct DevnetArgs {
    /// What to run.
    #[arg(long, value_enum, default_value = "full")]
    scenario: Scenario,
    /// Registry backend.
    #[arg(long, value_enum, default_value = "file")]
    chain: ChainKind,
    /// Block interval of the anvil chain (`--chain anvil`).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    block_time: Duration,
    /// Number of member nodes (at least 3).
    #[arg(long, default_value_t = 7)]
    nodes: usize,
    /// How long to drive traffic.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Messages per second published by each member.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Seats of the first coordination group, dealt to the members in turn (e.g. 100 seats on 15
    /// members, as tBTC wallets have).
    #[arg(long, default_value_t = 5)]
    group_seats: usize,
    /// Working directory (default: a fresh temporary directory, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the working directory (keys, registry, configs, node logs).
    #[arg(long)]
    keep: bool,
    /// Also write the final report as JSON to this file (the benchmark harness reads it).
    #[arg(long)]
    report: Option<PathBuf>,
}

/// What every devnet payload carries, so receivers can account for it.
#[derive(Serialize, Deserialize)]
struct Probe {
    /// Sender index.
    n: usize,
    /// Sequence number per sender.
    s: u64,
    /// Send time, ms since the Unix epoch.
    t: u64,
    /// Padding up to the requested size.
    p: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A deterministic operator address per member, so runs are comparable.
fn operator(i: usize) -> OperatorId {
    let h = Keccak256::digest(format!("conclave devnet operator {i}"));
    OperatorId(h[12..].try_into().unwrap())
}

struct NodeProc {
    name: String,
    child: Child,
    log: PathBuf,
    state: PathBuf,
    api: Option<SocketAddr>,
}

impl NodeProc {
    fn api(&self) -> SocketAddr {
        self.api.expect("api address known after start")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

fn registry_doc(
    entries: &[(usize, &str, Vec<String>)],
    groups: &[(GroupId, Vec<usize>)],
    rln: &[conclave_registry::RlnEntry],
) -> String {
    let present = |i: &usize| entries.iter().any(|(j, _, _)| j == i);
    let doc = RegistryDocument {
        operators: entries
            .iter()
            .map(|(i, peer, addrs)| OperatorEntry {
                address: operator(*i).to_string(),
                name: Some(format!("devnet operator {i}")),
                nodes: vec![NodeEntry {
                    peer_id: peer.to_string(),
                    scopes: vec![
                        TOPIC.into(),
                        coord::COORD_SCOPE.into(),
                        conclave_node::SLASH_TOPIC.into(),
                    ],
                    valid_until: None,
                    valid_until_block: None,
                    addresses: addrs.clone(),
                }],
            })
            .collect(),
        groups: groups
            .iter()
            .filter(|(_, seats)| seats.iter().all(present))
            .map(|(id, seats)| conclave_registry::GroupEntry {
                id: id.to_string(),
                seats: seats.iter().map(|i| operator(*i).to_string()).collect(),
            })
            .collect(),
        // A member's RLN leaf goes with its registration.
        rln: rln
            .iter()
            .filter(|r| present(&(r.index as usize)))
            .cloned()
            .collect(),
    };
    toml::to_string(&doc).expect("registry serializes")
}

/// Writes atomically (write + rename) so a node never reads half a file.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The configuration lines selecting a registry file.
fn file_registry(file: &str) -> String {
    format!("registry_file = \"{file}\"\nregistry_poll_ms = 100\n")
}

fn spawn_node(
    exe: &Path,
    dir: &Path,
    name: &str,
    registry: &str,
    extra: &[String],
) -> anyhow::Result<NodeProc> {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "key_file = \"{name}.key\"\n{registry}state_dir = \"{name}\"\n\
             listen = [\"/ip4/127.0.0.1/tcp/0\", \"/ip4/127.0.0.1/udp/0/quic-v1\"]\n\
             http_listen = \"127.0.0.1:0\"\ntopics = [\"{TOPIC}\"]\n"
        ),
    )?;
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log)?;
    let mut cmd = Command::new(exe);
    cmd.arg("node").arg("run").arg("--config").arg(&config);
    for e in extra {
        cmd.arg("--set").arg(e);
    }
    if std::env::var_os("CONCLAVE_LOG").is_none() {
        cmd.env("CONCLAVE_LOG", "info,libp2p_gossipsub=warn");
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(NodeProc {
        name: name.into(),
        child,
        log,
        state: dir.join(name),
        api: None,
    })
}

/// Waits for the node to write its API address, failing early if it exits.
async fn await_api(node: &mut NodeProc) -> anyhow::Result<()> {
    let deadline = Instant::now() + STARTUP;
    let file = node.state.join("api.addr");
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Ok(addr) = text.trim().parse() {
                node.api = Some(addr);
                return Ok(());
            }
        }
        if let Some(status) = node.child.try_wait()? {
            bail!(
                "{} exited during start-up ({status}):\n{}",
                node.name,
                node.log_tail()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not start within {STARTUP:?}:\n{}",
                node.name,
                node.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<(u16, Value)> {
    let r = http.get(url).send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

async fn listen_addrs(http: &reqwest::Client, node: &NodeProc) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + STARTUP;
    loop {
        let (_, v) = get_json(http, &node.url("/v1/peers")).await?;
        let addrs: Vec<String> = v["listen"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        if addrs.len() >= 2 {
            return Ok(addrs);
        }
        if Instant::now() > deadline {
            bail!("{} never reported its listen addresses", node.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn peer_ids(http: &reqwest::Client, node: &NodeProc) -> HashSet<String> {
    match get_json(http, &node.url("/v1/peers")).await {
        Ok((_, v)) => v["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["peer_id"].as_str().map(String::from))
            .collect(),
        Err(_) => HashSet::new(),
    }
}

/// Sum of a counter family's samples whose line contains every one of `labels`.
fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Everything the subscribers saw.
#[derive(Default)]
struct Tally {
    /// (receiver, sender, seq) → latency in ms.
    delivered: HashMap<(usize, usize, u64), u64>,
    duplicates: u64,
    intruder_received: u64,
    lagged: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    /// Published by the removed member after its removal: must reach nobody.
    Rogue,
}

struct Sent {
    sender: usize,
    seq: u64,
    at_ms: u64,
    kind: Kind,
}

async fn subscribe(
    node: &NodeProc,
    receiver: Option<usize>,
    tally: Arc<Mutex<Tally>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let url = format!("ws://{}/v1/subscribe/{TOPIC}", node.api());
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .with_context(|| format!("subscribing at {url}"))?;
    Ok(tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let Ok(text) = msg.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            let mut t = tally.lock().unwrap();
            if let Some(n) = v["lagged"].as_u64() {
                t.lagged += n;
                continue;
            }
            let Some(receiver) = receiver else {
                t.intruder_received += 1;
                continue;
            };
            let payload = v["payload_base64"]
                .as_str()
                .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
                .and_then(|b| serde_json::from_slice::<Probe>(&b).ok());
            if let Some(p) = payload {
                let latency = now_ms().saturating_sub(p.t);
                if t.delivered.insert((receiver, p.n, p.s), latency).is_some() {
                    t.duplicates += 1;
                }
            }
        }
    }))
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Publisher state of the member that will be removed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum VictimMode {
    Normal,
    Quiet,
    Rogue,
}

pub async fn run(args: DevnetArgs) -> anyhow::Result<bool> {
    if args.nodes < 3 {
        bail!("--nodes must be at least 3 (got {})", args.nodes);
    }
    if !(args.rate > 0.0 && args.rate <= 1000.0) {
        bail!(
            "--rate must be in (0, 1000] messages per second (got {})",
            args.rate
        );
    }
    let tmp = match &args.dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("conclave-devnet-")
                .tempdir()?,
        ),
    };
    let dir = match (&args.dir, &tmp) {
        (Some(d), _) => {
            std::fs::create_dir_all(d)?;
            d.canonicalize()?
        }
        (None, Some(t)) => t.path().to_path_buf(),
        _ => unreachable!(),
    };
    let exe = std::env::current_exe()?;
    let scenario = match args.scenario {
        Scenario::Full => None,
        Scenario::StaleChain => Some(scenarios::stale_chain(&args, &dir, &exe).await),
        Scenario::TcpCut => Some(scenarios::tcp_cut(&args, &dir, &exe).await),
    };
    if let Some(result) = scenario {
        if args.keep || args.dir.is_some() {
            if let Some(t) = tmp {
                println!("kept {}", t.keep().display());
            }
        }
        return result;
    }
    let n = args.nodes;
    let victim = n - 1;
    println!(
        "conclave devnet: {n} members + 1 intruder in {}",
        dir.display()
    );

    // Keys and an address-less registry: nodes start, report their OS-chosen ports, and a
    // registry edit (hot-reloaded) tells everyone where to dial.
    let peers = member_keys(&dir, n)?;
    let intruder_peer = keys::generate(&dir.join("intruder.key"), KeyType::Ed25519)?.to_string();
    let groups = coord::groups(victim, args.group_seats);
    // The anonymous channel: memberships in the registry file or registered on-chain, with a
    // spammer and its twin besides the member that gets removed.
    let rln_entries = if n >= 4 {
        rln::identities(&dir, n)?
    } else {
        Vec::new()
    };
    let bare: Vec<(usize, &str, Vec<String>)> =
        (0..n).map(|i| (i, peers[i].as_str(), vec![])).collect();
    write_atomic(
        &dir.join("registry.toml"),
        &registry_doc(&bare, &groups, &rln_entries),
    )?;
    // The member to be removed reads its own stale copy: it plays a node that ignores its removal.
    write_atomic(
        &dir.join("victim-registry.toml"),
        &registry_doc(&bare, &groups, &rln_entries),
    )?;

    let mut chain = match args.chain {
        ChainKind::File => None,
        ChainKind::Anvil => Some(
            chain::ChainNet::start(&dir, &peers, victim, &groups, &rln_entries, args.block_time)
                .await?,
        ),
    };

    let started = Instant::now();
    let genesis_ms = now_ms();
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut reg = match &chain {
            Some(c) => c.node_config(i),
            None if i == victim => file_registry("victim-registry.toml"),
            None => file_registry("registry.toml"),
        };
        reg.push_str(&coord::node_config(chain.is_some(), genesis_ms));
        if !rln_entries.is_empty() {
            reg.push_str(&rln::node_config(i));
        }
        nodes.push(spawn_node(&exe, &dir, &format!("node-{i}"), &reg, &[])?);
    }
    let result = drive(
        &args,
        &dir,
        &exe,
        &mut nodes,
        &peers,
        &intruder_peer,
        started,
        chain.as_mut(),
        genesis_ms,
        &rln_entries,
    )
    .await;
    for node in nodes.iter_mut() {
        stop(node).await;
    }
    if args.keep || args.dir.is_some() {
        if let Some(t) = tmp {
            let kept = t.keep();
            println!("kept {}", kept.display());
        }
    }
    result
}

/// What a node process has cost so far.
struct ProcUsage {
    /// Peak resident set (VmHWM).
    peak_rss_kib: u64,
    /// User + system CPU time.
    cpu_s: f64,
}

/// Reads a running node's peak RSS and CPU time from /proc (Linux); `None` elsewhere or once
/// it exited.
fn proc_usage(node: &NodeProc) -> Option<ProcUsage> {
    let pid = node.child.id()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    // After the parenthesised command name come the fields from `state` (3rd) on: utime and
    // stime are the 14th and 15th, in clock ticks (USER_HZ, 100 on Linux).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ProcUsage {
        peak_rss_kib,
        cpu_s: ticks as f64 / 100.0,
    })
}

/// Node keys `node-<i>.key` for `n` members; their PeerIds.
fn member_keys(dir: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    (0..n)
        .map(|i| {
            Ok(keys::generate(&dir.join(format!("node-{i}.key")), KeyType::Ed25519)?.to_string())
        })
        .collect()
}

/// The devnet's HTTP client: every call to a node's API is bounded.
fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?)
}

/// Waits until every node's `/readyz` answers 200 (a quorum of members connected).
async fn wait_ready(http: &reqwest::Client, nodes: &[NodeProc]) -> anyhow::Result<()> {
    let deadline = Instant::now() + STARTUP;
    loop {
        let mut ready = 0;
        for node in nodes {
            if let Ok((200, _)) = get_json(http, &node.url("/readyz")).await {
                ready += 1;
            }
        }
        if ready == nodes.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {ready} of {} nodes became ready within {STARTUP:?}",
                nodes.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM (graceful), then SIGKILL after 10 s.
async fn stop(node: &mut NodeProc) {
    if let Some(pid) = node.child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(Duration::from_secs(10), node.child.wait())
        .await
        .is_err()
    {
        let _ = node.child.kill().await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    args: &DevnetArgs,
    dir: &Path,
    exe: &Path,
    nodes: &mut [NodeProc],
    peers: &[String],
    intruder_peer: &str,
    started: Instant,
    mut chain: Option<&mut chain::ChainNet>,
    genesis_ms: u64,
    rln_entries: &[conclave_registry::RlnEntry],
) -> anyhow::Result<bool> {
    let n = args.nodes;
    let victim = n - 1;
    let groups = coord::groups(victim, args.group_seats);
    let http = http_client()?;
    for node in nodes.iter_mut() {
        await_api(node).await?;
    }
    let mut entries = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        entries.push((i, peers[i].as_str(), listen_addrs(&http, node).await?));
    }
    match chain.as_deref() {
        Some(c) => c.set_addresses(&entries).await?,
        None => {
            write_atomic(
                &dir.join("registry.toml"),
                &registry_doc(&entries, &groups, rln_entries),
            )?;
            write_atomic(
                &dir.join("victim-registry.toml"),
                &registry_doc(&entries, &groups, rln_entries),
            )?;
        }
    }

    wait_ready(&http, nodes).await?;
    let mesh_ready = started.elapsed();
    println!("mesh ready {:.1} s after start", mesh_ready.as_secs_f64());

    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut readers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        readers.push(subscribe(node, Some(i), tally.clone()).await?);
    }

    // The intruder: a valid node key that is not in the registry. Its own registry lists itself
    // and every member (with addresses), and it seeds every member: it tries everything.
    let mut with_intruder = entries.clone();
    with_intruder.push((n, intruder_peer, vec![]));
    write_atomic(
        &dir.join("intruder-registry.toml"),
        &registry_doc(&with_intruder, &groups, rln_entries),
    )?;
    let seeds: Vec<String> = entries
        .iter()
        .map(|(_, p, addrs)| format!("\"{}/p2p/{p}\"", addrs[0]))
        .collect();
    let mut intruder = spawn_node(
        exe,
        dir,
        "intruder",
        &file_registry("intruder-registry.toml"),
        &[format!("seeds=[{}]", seeds.join(","))],
    )?;
    await_api(&mut intruder).await?;
    readers.push(subscribe(&intruder, None, tally.clone()).await?);

    // Traffic.
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let (mode_tx, mode_rx) = watch::channel(VictimMode::Normal);
    let (stop_tx, stop_rx) = watch::channel(false);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut publishers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let (http, url, sent, mode, mut stop) = (
            http.clone(),
            node.url(&format!("/v1/publish/{TOPIC}")),
            sent.clone(),
            mode_rx.clone(),
            stop_rx.clone(),
        );
        let pad = "x".repeat(args.size.saturating_sub(60));
        publishers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let kind = match (i == victim, *mode.borrow()) {
                    (true, VictimMode::Quiet) => continue,
                    (true, VictimMode::Rogue) => Kind::Rogue,
                    _ => Kind::Normal,
                };
                let at_ms = now_ms();
                let body = serde_json::to_vec(&Probe {
                    n: i,
                    s: seq,
                    t: at_ms,
                    p: pad.clone(),
                })
                .unwrap();
                if let Ok(r) = http.post(&url).body(body).send().await {
                    if r.status().is_success() {
                        sent.lock().unwrap().push(Sent {
                            sender: i,
                            seq,
                            at_ms,
                            kind,
                        });
                    }
                }
                seq += 1;
            }
        }));
    }
    let intruder_attempts = Arc::new(Mutex::new(0u64));
    {
        let (http, url, attempts, mut stop) = (
            http.clone(),
            intruder.url(&format!("/v1/publish/{TOPIC}")),
            intruder_attempts.clone(),
            stop_rx.clone(),
        );
        publishers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let probe = Probe {
                    n: usize::MAX,
                    s: 0,
                    t: now_ms(),
                    p: String::new(),
                };
                let _ = http
                    .post(&url)
                    .body(serde_json::to_vec(&probe).unwrap())
                    .send()
                    .await;
                *attempts.lock().unwrap() += 1;
            }
        }));
    }

    if let Some(c) = chain.as_deref_mut() {
        c.start_mining();
    }
    let first_block = head_block(chain.as_deref(), genesis_ms).await?;
    let traffic_start = Instant::now();
    let half = args.duration / 2;
    let mut quiet_at_ms = u64::MAX;
    let mut eviction: Option<Duration> = None;
    let mut removal_started: Option<Instant> = None;
    let mut phase = 0;
    let mut rotation: Option<Rotation> = None;
    let mut next_status = traffic_start + Duration::from_secs(1);
    while traffic_start.elapsed() < args.duration {
        let t = traffic_start.elapsed();
        if let (Some(c), None) = (chain.as_deref(), &rotation) {
            if t >= args.duration / 4 {
                // A grace of 10 blocks: node-0 moves to its new key before the old one stops.
                let to = c.rotate_node0(&peers[0], 10).await?;
                rotation = Some(Rotation {
                    to,
                    at: Instant::now(),
                    done: None,
                });
            }
        }
        if let Some(r) = rotation.as_mut().filter(|r| r.done.is_none()) {
            if let Ok((_, v)) = get_json(&http, &nodes[0].url("/v1/peers")).await {
                if v["local"] == r.to.to_string() {
                    r.done = Some(r.at.elapsed());
                    println!(
                        "node-0 now runs under {} ({} ms after the rotation was mined)",
                        r.to,
                        r.at.elapsed().as_millis()
                    );
                }
            }
        }
        if phase == 0 && t >= half {
            // Quiesce the victim so nothing of its own is in flight, then remove it.
            mode_tx.send_replace(VictimMode::Quiet);
            quiet_at_ms = now_ms();
            tokio::time::sleep(Duration::from_secs(1)).await;
            match chain.as_deref() {
                Some(c) => {
                    let (block, seen) = c.revoke_victim(&peers[victim]).await?;
                    println!("block {block} makes the revocation final");
                    removal_started = Some(seen);
                }
                None => {
                    let remaining: Vec<_> = entries
                        .iter()
                        .filter(|(i, _, _)| *i != victim)
                        .cloned()
                        .collect();
                    write_atomic(
                        &dir.join("registry.toml"),
                        &registry_doc(&remaining, &groups, rln_entries),
                    )?;
                    removal_started = Some(Instant::now());
                    println!(
                        "removed node-{victim} ({}) from the registry",
                        peers[victim]
                    );
                }
            }
            phase = 1;
        }
        if phase == 1 {
            let mut still = 0;
            for node in nodes[..victim].iter() {
                if peer_ids(&http, node).await.contains(&peers[victim]) {
                    still += 1;
                }
            }
            if still == 0 {
                let took = removal_started.unwrap().elapsed();
                println!(
                    "node-{victim} evicted by every member {} ms after {}",
                    took.as_millis(),
                    removal_cause(chain.is_some())
                );
                eviction = Some(took);
                mode_tx.send_replace(VictimMode::Rogue);
                phase = 2;
            } else if removal_started.unwrap().elapsed() > Duration::from_secs(10) {
                println!("node-{victim} still connected to {still} members 10 s after removal");
                phase = 2;
            }
        }
        if Instant::now() >= next_status {
            next_status += Duration::from_secs(1);
            print_status(&http, nodes, &intruder, &tally, &sent, t).await;
        }
        tokio::time::sleep(Duration::from_millis(if phase == 1 { 10 } else { 50 })).await;
    }
    stop_tx.send_replace(true);
    for p in publishers {
        let _ = p.await;
    }
    tokio::time::sleep(DRAIN).await;

    // The anonymous channel, on the members still registered.
    let rln_report = if rln_entries.is_empty() {
        None
    } else {
        let spammer = keys::load_rln(&dir.join(format!("node-{}.rln", rln::SPAMMER)))?;
        Some(
            rln::run(
                &http,
                nodes,
                victim,
                &hex::encode(spammer.secret_bytes()),
                chain.as_deref(),
            )
            .await?,
        )
    };

    // Books.
    let settle = if chain.is_some() {
        10 + 6 + 2
    } else {
        20 + 10 + 5
    };
    let last_block = head_block(chain.as_deref(), genesis_ms)
        .await?
        .saturating_sub(settle);
    let coord_operators: Vec<String> = (0..n)
        .map(|i| match chain.as_deref() {
            Some(c) => c.operator_address(i),
            None => operator(i).to_string(),
        })
        .collect();
    let clock_block_start = move |b: u64| genesis_ms + b * 100;
    let coordination = coord::report(
        &http,
        nodes,
        victim,
        &groups,
        &coord_operators,
        first_block,
        last_block,
        match chain {
            None => Some(&clock_block_start),
            Some(_) => None,
        },
    )
    .await;
    let mut denied = 0.0;
    for node in nodes[..victim].iter() {
        if let Ok(r) = http.get(node.url("/metrics")).send().await {
            let text = r.text().await.unwrap_or_default();
            denied += metric_sum(
                &text,
                "conclave_connections_denied_total",
                &["reason=\"not_member\""],
            );
        }
    }
    let intruder_peers = peer_ids(&http, &intruder).await.len();
    let victim_peers = peer_ids(&http, &nodes[victim]).await.len();
    stop(&mut intruder).await;
    for r in readers {
        r.abort();
    }
    let tally = tally.lock().unwrap();
    let sent = sent.lock().unwrap();
    let mut expected = 0u64;
    let mut delivered = 0u64;
    let mut rogue_sent = 0u64;
    let mut rogue_delivered = 0u64;
    let mut latencies = Vec::new();
    let mut missing = Vec::new();
    for s in sent.iter() {
        for r in 0..n {
            if r == s.sender {
                continue;
            }
            let got = tally.delivered.get(&(r, s.sender, s.seq));
            match s.kind {
                Kind::Rogue => {
                    rogue_delivered += u64::from(got.is_some() && r != victim);
                }
                Kind::Normal => {
                    // The removed member stops being a receiver once it is quiesced.
                    if r == victim && s.at_ms >= quiet_at_ms {
                        continue;
                    }
                    expected += 1;
                    if let Some(l) = got {
                        delivered += 1;
                        latencies.push(*l);
                    } else if missing.len() < 10 {
                        missing.push(format!(
                            "node-{}#{} (sent {} ms before the end) at node-{r}",
                            s.sender,
                            s.seq,
                            now_ms().saturating_sub(s.at_ms)
                        ));
                    }
                }
            }
        }
        rogue_sent += u64::from(s.kind == Kind::Rogue);
    }
    latencies.sort_unstable();
    let intruder_delivered = tally
        .delivered
        .keys()
        .filter(|(_, s, _)| *s == usize::MAX)
        .count();

    // What each member process cost, read while they still run.
    let usage: Vec<ProcUsage> = nodes.iter().filter_map(proc_usage).collect();
    let full = expected > 0 && delivered == expected;
    let intruder_clean = tally.intruder_received == 0
        && intruder_delivered == 0
        && intruder_peers == 0
        && denied > 0.0;
    let removal_ok = eviction.is_some() && rogue_delivered == 0 && victim_peers == 0;
    let rotation_ok = match (&chain, &rotation) {
        (None, _) => true,
        (Some(_), Some(r)) => r.done.is_some(),
        (Some(_), None) => false,
    };
    let ok = full
        && tally.duplicates == 0
        && intruder_clean
        && removal_ok
        && rotation_ok
        && coordination.ok()
        && rln_report.as_ref().is_none_or(|r| r.ok());

    if let Some(path) = &args.report {
        let report = serde_json::json!({
            "ok": ok,
            "members": n,
            "chain": chain.is_some(),
            "duration_s": args.duration.as_secs_f64(),
            "rate": args.rate,
            "size": args.size,
            "mesh_ready_s": mesh_ready.as_secs_f64(),
            "nodes_peak_rss_kib": usage.iter().map(|u| u.peak_rss_kib).collect::<Vec<_>>(),
            "nodes_cpu_s": usage.iter().map(|u| u.cpu_s).collect::<Vec<_>>(),
            "delivery": {
                "expected": expected,
                "delivered": delivered,
                "duplicates": tally.duplicates,
                "latency_ms": latencies,
            },
            "eviction_ms": eviction.map(|e| e.as_millis() as u64),
            "rln": rln_report.as_ref().map(|r| serde_json::json!({
                "posted": r.posted,
                "expected": r.expected,
                "delivered": r.delivered,
                "removed_by": r.removed_by,
                "members": r.members,
                "removal_ms": r.removal.map(|d| d.as_millis() as u64),
                "refused_after": r.refused_after,
                "proof_ms": r.proof_ms,
                "onchain": r.onchain.as_ref().map(|c| serde_json::json!({
                    "removed": c.removed,
                    "submitted": c.submitted,
                    "already_removed": c.already_removed,
                    "removal_ms": c.after.map(|d| d.as_millis() as u64),
                })),
            })),
            "coordination": {
                "group_seats": groups[0].1.len(),
                "windows": coordination.windows,
                "acceptances": coordination.acceptances,
                "expected_acceptances": coordination.expected_acceptances,
                "faults": coordination.faults,
                "last_acceptance_ms": coordination.last_acceptance_ms,
                "acceptance_ms": coordination.acceptance_ms,
            },
        });
        write_atomic(path, &serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }

    println!();
    let backend = match chain.as_deref() {
        Some(c) => format!(
            "on-chain registry (anvil, {} ms blocks, {} confirmations)",
            c.block_time.as_millis(),
            chain::CONFIRMATIONS
        ),
        None => "registry file".to_owned(),
    };
    println!("Conclave devnet summary — {n} members, {backend}, {:?} of traffic, {} msg/s per member, {} B payloads", args.duration, args.rate, args.size);
    println!(
        "  mesh ready        {:.1} s after start",
        mesh_ready.as_secs_f64()
    );
    println!(
        "  delivery          {delivered} / {expected} ({:.2} %), {} duplicates, {} lagged",
        if expected == 0 {
            0.0
        } else {
            delivered as f64 * 100.0 / expected as f64
        },
        tally.duplicates,
        tally.lagged
    );
    println!(
        "  latency           p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0)
    );
    println!(
        "  intruder          refused {denied} times by members; connected peers {intruder_peers}; received {}; delivered {intruder_delivered} of {} attempts",
        tally.intruder_received,
        intruder_attempts.lock().unwrap()
    );
    if chain.is_some() {
        match &rotation {
            Some(Rotation { to, done: Some(d), .. }) => println!(
                "  rotation          node-0 moved to {to} {} ms after the rotation was mined; its messages are in the delivery count",
                d.as_millis()
            ),
            _ => println!("  rotation          node-0 did NOT move to its new key"),
        }
    }
    let what = if chain.is_some() {
        "revocation"
    } else {
        "removal"
    };
    match eviction {
        Some(e) => println!(
            "  {what:<17} node-{victim} evicted by all members {} ms after {}",
            e.as_millis(),
            removal_cause(chain.is_some())
        ),
        None => println!("  {what:<17} node-{victim} was NOT evicted"),
    }
    println!("  removed node      {rogue_delivered} of {rogue_sent} later messages delivered; connected peers {victim_peers}");
    let leaders: Vec<String> = coordination
        .leaders
        .iter()
        .map(|(i, k)| format!("node-{i}×{k}"))
        .collect();
    let actions: Vec<String> = coordination
        .actions
        .iter()
        .map(|(a, k)| format!("{a}×{k}"))
        .collect();
    println!(
        "  coordination      {} windows in 2 groups; leaders {}; proposals {}; settled with the proposal {} / {}; faults {}",
        coordination.windows,
        leaders.join(" "),
        actions.join(" "),
        coordination.acceptances,
        coordination.expected_acceptances,
        coordination.faults
    );
    if !coordination.last_acceptance_ms.is_empty() {
        let (last, all) = (
            &coordination.last_acceptance_ms,
            &coordination.acceptance_ms,
        );
        println!(
            "  coord. latency    block start → last follower's acceptance p50 {} ms, p99 {} ms, max {} ms; any follower p50 {} ms, p99 {} ms ({} acceptances; group 1 has {} seats)",
            percentile(last, 0.5),
            percentile(last, 0.99),
            last.last().copied().unwrap_or(0),
            percentile(all, 0.5),
            percentile(all, 0.99),
            all.len(),
            groups[0].1.len()
        );
    }
    match &rln_report {
        Some(r) => {
            println!(
                "  rln               anonymous posts delivered {} / {}; proofs {} ms each (median)",
                r.delivered,
                r.expected,
                {
                    let mut p = r.proof_ms.clone();
                    p.sort_unstable();
                    percentile(&p, 0.5)
                }
            );
            println!(
                "  rln slashing      node-{}'s identity (also on node-{}) double signalled: removed by {} / {} members{}; its next post {}",
                rln::SPAMMER,
                rln::TWIN,
                r.removed_by,
                r.members,
                r.removal
                    .map(|d| format!(" {} ms after", d.as_millis()))
                    .unwrap_or_default(),
                if r.refused_after { "refused" } else { "NOT refused" }
            );
            if let Some(c) = &r.onchain {
                println!(
                    "  rln on-chain      slashRln {}{}: {} node submitted, {} found it done",
                    if c.removed { "landed" } else { "NOT landed" },
                    c.after
                        .map(|d| format!(" {} ms after the double signal", d.as_millis()))
                        .unwrap_or_default(),
                    c.submitted,
                    c.already_removed
                );
            }
        }
        None => println!("  rln               not run (needs at least 4 nodes)"),
    }
    if !usage.is_empty() {
        let mut rss: Vec<u64> = usage.iter().map(|u| u.peak_rss_kib).collect();
        rss.sort_unstable();
        let mut cpu: Vec<u64> = usage.iter().map(|u| (u.cpu_s * 1000.0) as u64).collect();
        cpu.sort_unstable();
        println!(
            "  per node          peak RSS p50 {:.1} MiB, max {:.1} MiB; CPU p50 {:.2} s, max {:.2} s (whole run, {} processes)",
            percentile(&rss, 0.5) as f64 / 1024.0,
            *rss.last().unwrap_or(&0) as f64 / 1024.0,
            percentile(&cpu, 0.5) as f64 / 1000.0,
            *cpu.last().unwrap_or(&0) as f64 / 1000.0,
            usage.len()
        );
    }
    for m in &missing {
        println!("  missing           {m}");
    }
    println!("  result            {}", if ok { "PASS" } else { "FAIL" });
    if !ok {
        println!(
            "  node logs are in {} (use --keep to retain them)",
            dir.display()
        );
    }
    Ok(ok)
}

/// The chain's current block: anvil's, or the clock chain's (100 ms blocks from `genesis_ms`).
async fn head_block(chain: Option<&chain::ChainNet>, genesis_ms: u64) -> anyhow::Result<u64> {
    Ok(match chain {
        Some(c) => c.head().await?,
        None => now_ms().saturating_sub(genesis_ms) / 100,
    })
}

/// A key rotation in progress or done.
struct Rotation {
    to: conclave_core::PeerId,
    at: Instant,
    done: Option<Duration>,
}

fn removal_cause(chain: bool) -> &'static str {
    if chain {
        "the block that made the revocation final"
    } else {
        "the registry edit"
    }
}

async fn print_status(
    http: &reqwest::Client,
    nodes: &[NodeProc],
    intruder: &NodeProc,
    tally: &Arc<Mutex<Tally>>,
    sent: &Arc<Mutex<Vec<Sent>>>,
    t: Duration,
) {
    let mut counts = Vec::new();
    for node in nodes {
        counts.push(peer_ids(http, node).await.len().to_string());
    }
    let intruder_peers = peer_ids(http, intruder).await.len();
    let (delivered, mut lat) = {
        let t = tally.lock().unwrap();
        (
            t.delivered.len(),
            t.delivered.values().copied().collect::<Vec<_>>(),
        )
    };
    lat.sort_unstable();
    let published = sent.lock().unwrap().len();
    println!(
        "t={:>3}s peers=[{}] published {published} deliveries {delivered} p50 {} ms p99 {} ms intruder peers {intruder_peers}",
        t.as_secs(),
        counts.join(","),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
    );
}
