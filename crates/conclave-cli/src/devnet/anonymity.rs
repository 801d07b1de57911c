//! `conclave devnet --scenario anonymity` (docs/ARCHITECTURE.md, "The stem"): members post
//! anonymously, each message by a member chosen at random, while the first `--spies` members
//! record where each message first reached them (`[rln] record_arrivals`). Afterwards the spies
//! pool what they saw and name authors with the [`estimate`](super::estimate) estimators; the
//! report holds their precision beside a random guess and the publish → all-delivered latency.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use conclave_api::{
    AnonymityReport, AnonymousDeliveryFrame, ArrivalPath, RlnArrivalsAnswer, RlnPublishAnswer,
    RlnStatusAnswer, StreamFrame,
};
use futures::StreamExt;
use rand::Rng;

use super::args::DevnetArgs;
use super::client::{self, expect, http_client, wait_ready};
use super::cluster::{self, await_api, member_keys, stop, NodeProc};
use super::common::{ANON_TOPIC, DRAIN};
use super::config;
use super::estimate::{first_sights, score, Case, Estimator, Sight};
use super::registry::{self, Entry};
use super::rln;

/// Messages per epoch each member may post: room for a random author to post several times
/// in one epoch.
const LIMIT: u32 = 20;
/// The mean gap between two posts (all members together): about what two cores prove while
/// fifteen nodes verify.
const MEAN_GAP_MS: f64 = 500.0;
/// How long one post may keep retrying while the mesh forms or a quota is spent.
const POST_PATIENCE: Duration = Duration::from_secs(30);

/// A message as posted: its author and when the author's node answered.
struct Posted {
    author: usize,
    message_id: String,
    answered: Instant,
}

/// When each node delivered each message (by message id).
type Deliveries = Arc<Mutex<HashMap<String, HashMap<usize, Instant>>>>;

pub async fn run(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<AnonymityReport> {
    let n = args.nodes;
    let spies = args.spies;
    if spies == 0 || spies + 2 > n {
        bail!("--spies must be between 1 and --nodes − 2 (got {spies} of {n})");
    }
    let epoch_secs = args.stem_epoch.as_secs().max(1);
    println!(
        "conclave devnet --scenario anonymity: {n} members, {spies} curious, {} messages, stem {}",
        args.messages,
        if args.stem { "on" } else { "off" }
    );
    let peers = member_keys(dir, n)?;
    let leaves = rln::identities(dir, n, LIMIT)?;
    let registry_file = dir.join("registry.toml");
    let bare: Vec<Entry> = (0..n).map(|i| Entry::bare(i, &peers[i])).collect();
    registry::write(&registry_file, &bare, &[], &leaves)?;
    let mut nodes = Vec::new();
    for i in 0..n {
        let name = format!("node-{i}");
        let mut cfg = config::node(&name);
        let record = if i < spies { 100_000 } else { 0 };
        config::anonymous(&mut cfg, i, args.stem, epoch_secs, record);
        let mut node = cluster::spawn(exe, dir, &name, &cfg)?;
        await_api(&mut node).await?;
        nodes.push(node);
    }
    let result = drive(args, &registry_file, &nodes, &peers, &leaves).await;
    for node in nodes.iter_mut() {
        stop(node).await;
    }
    let report = result?;
    println!();
    print!("{report}");
    Ok(report)
}

async fn drive(
    args: &DevnetArgs,
    registry_file: &Path,
    nodes: &[NodeProc],
    peers: &[String],
    leaves: &[conclave_registry::RlnEntry],
) -> anyhow::Result<AnonymityReport> {
    let (n, spies) = (nodes.len(), args.spies);
    let http = http_client()?;
    let entries = client::entries(&http, nodes, peers).await?;
    registry::write(registry_file, &entries, &[], leaves)?;
    wait_ready(&http, nodes).await?;
    for node in nodes {
        let url = node.url("/v1/rln/status");
        expect("every RLN leaf in the tree", || async {
            let (_, s) = client::get::<RlnStatusAnswer>(&http, &url).await?;
            Ok((s.members == n).then_some(()))
        })
        .await?;
    }
    let deliveries = subscribe(nodes).await?;

    // Posts at random times (exponential gaps), each by a random member; a member posts one at a
    // time (a post waits for its proof, up to the node's 30 s publish bound).
    let posting = reqwest::Client::builder()
        .timeout(Duration::from_secs(35))
        .build()?;
    let turns: Vec<Arc<tokio::sync::Mutex<()>>> = (0..n).map(|_| Arc::default()).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut at = Duration::ZERO;
    let mut rng = rand::thread_rng();
    for k in 0..args.messages {
        let u: f64 = rng.gen_range(f64::EPSILON..1.0);
        at += Duration::from_secs_f64(-u.ln() * MEAN_GAP_MS / 1000.0);
        let author = rng.gen_range(0..n);
        let (http, url, turn) = (
            posting.clone(),
            nodes[author].url(""),
            turns[author].clone(),
        );
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((started + at).into()).await;
            let _turn = turn.lock().await;
            post(&http, &url, author, k).await
        }));
    }
    let mut posted = Vec::new();
    for t in tasks {
        match t.await? {
            Ok(p) => posted.push(p),
            Err(e) => println!("  {e:#}"),
        }
    }
    println!(
        "  {} of {} posted in {:.1} s",
        posted.len(),
        args.messages,
        started.elapsed().as_secs_f64()
    );

    // Until every message reached every other member (or the drain is over).
    let everyone_else = |p: &Posted, got: &HashMap<String, HashMap<usize, Instant>>| {
        got.get(&p.message_id)
            .map_or(0, |by| by.keys().filter(|i| **i != p.author).count())
            == n - 1
    };
    let deadline = Instant::now() + DRAIN * 3;
    while Instant::now() < deadline {
        let all = {
            let got = deliveries.lock().expect("deliveries lock");
            posted.iter().all(|p| everyone_else(p, &got))
        };
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = deliveries.lock().expect("deliveries lock").clone();
    let mut latency_ms: Vec<u64> = posted
        .iter()
        .filter(|p| everyone_else(p, &got))
        .filter_map(|p| {
            let last = got[&p.message_id]
                .iter()
                .filter(|(i, _)| **i != p.author)
                .map(|(_, t)| *t)
                .max()?;
            Some(last.saturating_duration_since(p.answered).as_millis() as u64)
        })
        .collect();
    latency_ms.sort_unstable();

    // What the spies saw first of each message.
    let mut seen_first = Vec::new();
    for node in &nodes[..spies] {
        let (_, seen) =
            client::get::<RlnArrivalsAnswer>(&http, &node.url("/v1/rln/arrivals")).await?;
        let mut first: HashMap<String, Sight> = HashMap::new();
        for a in seen.arrivals {
            let sight = Sight {
                from: a.from,
                at_ms: a.at_ms,
                stem: a.via == ArrivalPath::Stem,
            };
            first
                .entry(a.message_id)
                .and_modify(|s| {
                    if sight.at_ms < s.at_ms {
                        *s = sight.clone();
                    }
                })
                .or_insert(sight);
        }
        seen_first.push(first);
    }
    let cases: Vec<Case> = posted
        .iter()
        .map(|p| Case {
            author: peers[p.author].clone(),
            sights: seen_first
                .iter()
                .map(|f| f.get(&p.message_id).cloned())
                .collect(),
        })
        .collect();
    let spy_ids = &peers[..spies];
    let mut guesses = vec![score(&cases, spy_ids, 1, Estimator::FirstSpy)];
    if spies > 1 {
        guesses.push(score(&cases, spy_ids, spies, Estimator::FirstSpy));
        guesses.push(score(&cases, spy_ids, spies, Estimator::Majority));
    }
    let delivered_to_all = latency_ms.len();
    Ok(AnonymityReport {
        // Every post went out and (all but a hundredth) reached every other member.
        ok: posted.len() == args.messages && delivered_to_all * 100 >= posted.len() * 99,
        members: n,
        stem: args.stem,
        stem_epoch_ms: args.stem_epoch.as_millis() as u64,
        published: posted.len(),
        delivered_to_all,
        latency_ms,
        guesses,
        first_sights: first_sights(&cases, spy_ids),
    })
}

/// Posts message `k` from `author` (whose API is at `base`), retrying while the anonymous mesh
/// forms (503) or the epoch's quota is spent (429).
async fn post(
    http: &reqwest::Client,
    base: &str,
    author: usize,
    k: usize,
) -> anyhow::Result<Posted> {
    let url = format!("{base}/v1/rln/publish/{ANON_TOPIC}");
    let body = format!("anonymous message {k}").into_bytes();
    let deadline = Instant::now() + POST_PATIENCE;
    loop {
        let (status, answer) = client::post::<RlnPublishAnswer>(http, &url, body.clone()).await?;
        match answer {
            Ok(RlnPublishAnswer::Published { message_id, .. }) => {
                return Ok(Posted {
                    author,
                    message_id,
                    answered: Instant::now(),
                })
            }
            Err(_) if (status == 503 || status == 429) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => bail!(
                "node-{author} could not post message {k}: {status} {}",
                e.error
            ),
        }
    }
}

/// Subscribes to the anonymous topic on every node; the map fills as they deliver.
async fn subscribe(nodes: &[NodeProc]) -> anyhow::Result<Deliveries> {
    let deliveries: Deliveries = Arc::default();
    for (i, node) in nodes.iter().enumerate() {
        let url = format!("ws://{}/v1/rln/subscribe/{ANON_TOPIC}", node.api());
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .with_context(|| format!("subscribing at {url}"))?;
        let deliveries = deliveries.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let Ok(StreamFrame::Item(frame)) = serde_json::from_str::<
                    StreamFrame<AnonymousDeliveryFrame>,
                >(msg.to_text().unwrap_or("")) else {
                    continue;
                };
                let now = Instant::now();
                let mut d = deliveries.lock().expect("deliveries lock");
                d.entry(frame.message_id)
                    .or_default()
                    .entry(i)
                    .or_insert(now);
            }
        });
    }
    Ok(deliveries)
}
