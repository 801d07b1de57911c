//! The main job (`--scenario full`): members publishing to each other, an intruder with a valid
//! key that no registry names, a member removed mid-run (on a chain: revoked, and node-0 rotating
//! its key), coordination windows and the anonymous channel. Its books are a `TrafficReport`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use conclave_api::{
    ChainSetup, ColdKeysReport, IntruderReport, NodeUsage, RemovalReport, RlnReport, TrafficReport,
    TrafficSetup, ValidatorsReport,
};
use conclave_core::{GroupId, OperatorId};
use conclave_node::keys::{self, KeyType};
use conclave_node::NodeConfig;
use conclave_registry::RlnEntry;

use super::args::{ChainKind, DevnetArgs};
use super::chain::{ChainNet, ChainPlan};
use super::client::{self, http_client, metric_sum, peer_ids, wait_ready};
use super::cluster::{self, await_api, member_keys, stop, NodeProc};
use super::common::{
    now_ms, CHAIN_WINDOWS, CLOCK_BLOCK_MS, CLOCK_WINDOWS, CONFIRMATIONS, DRAIN, RLN_LIMIT, SPAMMER,
};
use super::registry::{self, Entry};
use super::timeline::{Course, Registry};
use super::traffic::{self, Publishers, Tally};
use super::{config, coord, rln, validators};

/// The members' registry file.
const REGISTRY: &str = "registry.toml";
/// The removed member's own copy, never edited: it plays a node that ignores its removal.
const VICTIM_REGISTRY: &str = "victim-registry.toml";
/// The intruder's: every member and itself.
const INTRUDER_REGISTRY: &str = "intruder-registry.toml";

/// Everything a run is set up with.
struct Run<'a> {
    args: &'a DevnetArgs,
    dir: &'a Path,
    exe: &'a Path,
    http: reqwest::Client,
    peers: Vec<String>,
    intruder_peer: String,
    groups: Vec<(GroupId, Vec<usize>)>,
    /// Empty with fewer than 4 members: the anonymous channel is not run.
    rln: Vec<RlnEntry>,
    /// With `--rln-validators` on a registry file: the registrations and forgeries in it.
    validators: Option<ValidatorsReport>,
    chain: Option<ChainNet>,
    /// The clock chain's genesis (file registry).
    genesis_ms: u64,
    started: Instant,
}

/// Sets the network up, drives it, stops it and prints the summary.
pub async fn run(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<TrafficReport> {
    let n = args.nodes;
    let victim = n - 1;
    println!(
        "conclave devnet: {n} members + 1 intruder in {}",
        dir.display()
    );

    // Keys and an address-less registry: nodes start, report their OS-chosen ports, and a
    // registry edit (hot-reloaded) tells everyone where to dial.
    let peers = member_keys(dir, n)?;
    let intruder_peer = keys::generate(&dir.join("intruder.key"), KeyType::Ed25519)?.to_string();
    let groups = coord::groups(victim, args.group_seats);
    // The anonymous channel: memberships in the registry file or registered on-chain, with a
    // spammer and its twin besides the member that gets removed.
    let mut rln = if n >= 4 {
        rln::identities(dir, n, RLN_LIMIT)?
    } else {
        Vec::new()
    };
    let secrets = match (args.rln_validators, rln.is_empty()) {
        (false, _) => None,
        (true, true) => {
            anyhow::bail!("--rln-validators needs at least 4 nodes (the anonymous channel)")
        }
        (true, false) => Some(validators::keystores(dir, n)?),
    };
    let file_validators = match (&secrets, args.chain) {
        (Some(s), ChainKind::File) => Some(validators::sign_file_entries(dir, &mut rln, s)?),
        _ => None,
    };
    let bare: Vec<Entry> = (0..n).map(|i| Entry::bare(i, &peers[i])).collect();
    for file in [REGISTRY, VICTIM_REGISTRY] {
        registry::write(&dir.join(file), &bare, &groups, &rln)?;
    }
    let chain = match args.chain {
        ChainKind::File => None,
        ChainKind::Anvil => Some(
            ChainNet::start(
                dir,
                &peers,
                victim,
                &groups,
                &rln,
                ChainPlan {
                    block_time: args.block_time,
                    cold: args.cold_keys,
                    validator_keys: secrets.as_deref(),
                },
            )
            .await?,
        ),
    };
    let mut run = Run {
        args,
        dir,
        exe,
        http: http_client()?,
        peers,
        intruder_peer,
        groups,
        rln,
        validators: file_validators,
        chain,
        genesis_ms: now_ms(),
        started: Instant::now(),
    };
    let mut nodes = Vec::new();
    for i in 0..n {
        let cfg = run.member_config(i);
        nodes.push(cluster::spawn(exe, dir, &format!("node-{i}"), &cfg)?);
    }
    let result = run.drive(&mut nodes).await;
    for node in nodes.iter_mut() {
        stop(node).await;
    }
    let report = result?;
    println!();
    print!("{report}");
    if !report.ok {
        println!(
            "  node logs are in {} (use --keep to retain them)",
            dir.display()
        );
    }
    Ok(report)
}

impl Run<'_> {
    fn victim(&self) -> usize {
        self.args.nodes - 1
    }

    /// Member `i`'s configuration: its registry, coordination and the anonymous channel.
    fn member_config(&self, i: usize) -> NodeConfig {
        let mut cfg = config::node(&format!("node-{i}"));
        match &self.chain {
            Some(c) => {
                c.configure(&mut cfg, i);
                config::coordination(&mut cfg, CHAIN_WINDOWS, None);
                if !self.rln.is_empty() {
                    config::rln_on_chain(&mut cfg, i);
                }
            }
            None => {
                if i == self.victim() {
                    cfg.registry.file = VICTIM_REGISTRY.into();
                }
                config::coordination(&mut cfg, CLOCK_WINDOWS, Some(self.genesis_ms));
            }
        }
        if !self.rln.is_empty() {
            config::rln(&mut cfg, i);
        }
        cfg
    }

    /// The chain's current block: anvil's, or the clock chain's.
    async fn head_block(&self) -> anyhow::Result<u64> {
        Ok(match &self.chain {
            Some(c) => c.head().await?,
            None => now_ms().saturating_sub(self.genesis_ms) / CLOCK_BLOCK_MS,
        })
    }

    /// The intruder: a valid node key that is not in the registry. Its own registry lists
    /// itself and every member (with addresses), and it seeds every member: it tries everything.
    async fn start_intruder(&self, entries: &[Entry]) -> anyhow::Result<NodeProc> {
        let mut with_intruder = entries.to_vec();
        with_intruder.push(Entry::bare(self.args.nodes, &self.intruder_peer));
        registry::write(
            &self.dir.join(INTRUDER_REGISTRY),
            &with_intruder,
            &self.groups,
            &self.rln,
        )?;
        let mut cfg = config::node("intruder");
        cfg.registry.file = INTRUDER_REGISTRY.into();
        cfg.seeds = entries
            .iter()
            .map(|e| format!("{}/p2p/{}", e.addrs[0], e.peer))
            .collect();
        let mut intruder = cluster::spawn(self.exe, self.dir, "intruder", &cfg)?;
        await_api(&mut intruder).await?;
        Ok(intruder)
    }

    async fn drive(&mut self, nodes: &mut [NodeProc]) -> anyhow::Result<TrafficReport> {
        let (n, victim) = (self.args.nodes, self.victim());
        let http = self.http.clone();
        for node in nodes.iter_mut() {
            await_api(node).await?;
        }
        let nodes: &[NodeProc] = nodes;
        let entries = client::entries(&http, nodes, &self.peers).await?;
        match &self.chain {
            Some(c) => c.set_addresses(&entries).await?,
            None => {
                for file in [REGISTRY, VICTIM_REGISTRY] {
                    registry::write(&self.dir.join(file), &entries, &self.groups, &self.rln)?;
                }
            }
        }

        wait_ready(&http, nodes).await?;
        let mesh_ready = self.started.elapsed();
        println!("mesh ready {:.1} s after start", mesh_ready.as_secs_f64());

        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut readers = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            readers.push(traffic::subscribe(node, Some(i), tally.clone()).await?);
        }
        let mut intruder = self.start_intruder(&entries).await?;
        readers.push(traffic::subscribe(&intruder, None, tally.clone()).await?);

        let publishers = Publishers::start(
            &http,
            nodes,
            victim,
            Some(&intruder),
            self.args.rate,
            self.args.size,
        );
        if let Some(c) = self.chain.as_mut() {
            c.start_mining();
        }
        let first_block = self.head_block().await?;
        let registry_path = self.dir.join(REGISTRY);
        let outcome = Course {
            http: &http,
            nodes,
            intruder: &intruder,
            peers: &self.peers,
            registry: match &self.chain {
                Some(c) => Registry::Chain(c),
                None => Registry::File {
                    path: &registry_path,
                    entries: &entries,
                    groups: &self.groups,
                    rln: &self.rln,
                },
            },
            publishers: &publishers,
            tally: &tally,
            duration: self.args.duration,
        }
        .run()
        .await?;
        let (sent, intruder_attempts) = (
            publishers.sent.clone(),
            publishers.intruder_attempts.clone(),
        );
        publishers.stop().await;
        tokio::time::sleep(DRAIN).await;

        // The anonymous channel, on the members still registered (by validators, if asked).
        let validators = self.validators_phase(nodes).await?;
        let rln = self.rln_phase(nodes).await?;
        let coordination = self.coordination(nodes, first_block).await?;
        // After the anonymous channel: its on-chain removal may go out from the relayer too.
        let cold_keys = match &self.chain {
            Some(c) => c.audit().await?,
            None => None,
        };
        let mut refused = 0.0;
        for node in &nodes[..victim] {
            refused += metric_sum(
                &client::metrics(&http, node).await,
                "conclave_connections_denied_total",
                &["reason=\"not_member\""],
            );
        }
        let intruder_peers = peer_ids(&http, &intruder).await.len();
        let victim_peers = peer_ids(&http, &nodes[victim]).await.len();
        stop(&mut intruder).await;
        for r in readers {
            r.abort();
        }

        let tally = tally.lock().expect("tally lock");
        let books = traffic::books(
            &sent.lock().expect("sent lock"),
            &tally,
            n,
            victim,
            outcome.quiet_at_ms,
        );
        // What each member process cost, read while they still run.
        let usage: Vec<NodeUsage> = nodes.iter().filter_map(cluster::usage).collect();
        let mut report = TrafficReport {
            ok: false,
            setup: TrafficSetup {
                members: n,
                chain: self.chain.as_ref().map(|c| ChainSetup {
                    block_ms: c.block_time.as_millis() as u64,
                    confirmations: CONFIRMATIONS,
                }),
                duration_ms: self.args.duration.as_millis() as u64,
                rate: self.args.rate,
                size: self.args.size,
            },
            mesh_ready_ms: mesh_ready.as_millis() as u64,
            delivery: books.delivery,
            intruder: IntruderReport {
                refused: refused as u64,
                peers: intruder_peers,
                received: tally.intruder_received,
                delivered: tally.intruder_delivered(),
                attempts: *intruder_attempts.lock().expect("attempts lock"),
            },
            rotation: outcome.rotation,
            removal: RemovalReport {
                victim,
                on_chain: self.chain.is_some(),
                eviction_ms: outcome.eviction.map(|d| d.as_millis() as u64),
                later_delivered: books.later_delivered,
                later_sent: books.later_sent,
                peers: victim_peers,
            },
            coordination,
            rln,
            nodes: usage,
            cold_keys,
            validators,
        };
        report.ok = passed(&report);
        Ok(report)
    }

    /// The validators' registrations: refused on-chain already, or (file) asked of every member
    /// still registered.
    async fn validators_phase(
        &self,
        nodes: &[NodeProc],
    ) -> anyhow::Result<Option<ValidatorsReport>> {
        if let Some(c) = &self.chain {
            return Ok(c.validators.clone());
        }
        let Some(report) = &self.validators else {
            return Ok(None);
        };
        let mut report = report.clone();
        validators::check_nodes(&self.http, &nodes[..self.victim()], &mut report).await?;
        Ok(Some(report))
    }

    /// The anonymous channel's phase, when the members hold RLN identities.
    async fn rln_phase(&self, nodes: &[NodeProc]) -> anyhow::Result<Option<RlnReport>> {
        if self.rln.is_empty() {
            return Ok(None);
        }
        let spammer = keys::load_rln(&self.dir.join(format!("node-{SPAMMER}.rln")))?;
        let secret = hex::encode(spammer.secret_bytes());
        let report = rln::run(
            &self.http,
            nodes,
            self.victim(),
            &secret,
            self.chain.as_ref(),
        )
        .await?;
        Ok(Some(report))
    }

    /// The windows the members settled from `first_block` until those still settling.
    async fn coordination(
        &self,
        nodes: &[NodeProc],
        first_block: u64,
    ) -> anyhow::Result<conclave_api::CoordinationReport> {
        let settle = match self.chain {
            Some(_) => CHAIN_WINDOWS.settle(),
            None => CLOCK_WINDOWS.settle(),
        };
        let last_block = self.head_block().await?.saturating_sub(settle);
        let operators: Vec<OperatorId> = (0..self.args.nodes)
            .map(|i| match &self.chain {
                Some(c) => c.operator(i),
                None => registry::operator(i),
            })
            .collect();
        let genesis_ms = self.genesis_ms;
        let clock_block_start = move |b: u64| genesis_ms + b * CLOCK_BLOCK_MS;
        let books = coord::Books {
            groups: &self.groups,
            operators: &operators,
            first_block,
            last_block,
            block_start_ms: match self.chain {
                None => Some(&clock_block_start),
                Some(_) => None,
            },
        };
        Ok(coord::report(&self.http, &nodes[..self.victim()], &books).await)
    }
}

/// Whether the run met every expectation, judged from its report alone.
fn passed(r: &TrafficReport) -> bool {
    let (d, i, m) = (&r.delivery, &r.intruder, &r.removal);
    let delivered_all = d.expected > 0 && d.delivered == d.expected && d.duplicates == 0;
    let intruder_kept_out = i.received == 0 && i.delivered == 0 && i.peers == 0 && i.refused > 0;
    let removed = m.eviction_ms.is_some() && m.later_delivered == 0 && m.peers == 0;
    let rotated = r.setup.chain.is_none()
        || r.rotation
            .as_ref()
            .is_some_and(|rot| rot.after_ms.is_some());
    delivered_all
        && intruder_kept_out
        && removed
        && rotated
        && r.coordination.ok()
        && r.rln.as_ref().is_none_or(RlnReport::ok)
        && r.cold_keys.as_ref().is_none_or(ColdKeysReport::ok)
        && r.validators.as_ref().is_none_or(ValidatorsReport::ok)
}
