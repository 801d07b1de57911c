//! The RLN phase of the devnet: members post anonymously, and one member's RLN identity — copied
//! onto a second node, as a careless operator's hot standby would be — sends twice in one epoch:
//! the double signal reveals its secret and every member removes it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use conclave_api::{
    AnonymousDeliveryFrame, OnchainRemovalReport, RlnPublishAnswer, RlnRemovedAnswer, RlnReport,
    StreamFrame,
};
use conclave_node::keys;
use conclave_registry::RlnEntry;
use futures::StreamExt;

use super::chain::ChainNet;
use super::client::{self, metric_sum};
use super::cluster::NodeProc;
use super::common::{now_ms, ANON_TOPIC, CHAIN_STAGGER_SECS, SPAMMER, TWIN};
use super::registry::operator;

/// Generates one RLN identity per member, `limit` messages per epoch each; returns their
/// registry entries (leaf `i` = member `i`).
pub fn identities(dir: &Path, n: usize, limit: u32) -> anyhow::Result<Vec<RlnEntry>> {
    (0..n)
        .map(|i| {
            let id = keys::generate_rln(&dir.join(format!("node-{i}.rln")))?;
            Ok(RlnEntry {
                operator: operator(i).to_string(),
                index: i as u32,
                rate_commitment: format!(
                    "0x{}",
                    conclave_rln::fr_to_hex(&id.rate_commitment(limit))
                ),
                limit,
                validator_pubkey: None,
                validator_signature: None,
            })
        })
        .collect()
}

/// Publishes `body` anonymously from `node`: the status (0 when the request failed) and the
/// answer or the refusal.
pub async fn post(
    http: &reqwest::Client,
    node: &NodeProc,
    body: &[u8],
) -> (u16, Result<RlnPublishAnswer, String>) {
    let url = node.url(&format!("/v1/rln/publish/{ANON_TOPIC}"));
    match client::post(http, &url, body.to_vec()).await {
        Ok((status, answer)) => (status, answer.map_err(|e| e.error)),
        Err(e) => (0, Err(format!("{e:#}"))),
    }
}

/// Runs the phase on members `0..members` (all still registered).
pub async fn run(
    http: &reqwest::Client,
    nodes: &[NodeProc],
    members: usize,
    secret_of_spammer: &str,
    chain: Option<&ChainNet>,
) -> anyhow::Result<RlnReport> {
    // Every member subscribes; each counts the posts it receives until told to stop.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut readers = Vec::new();
    for node in &nodes[..members] {
        let url = format!("ws://{}/v1/rln/subscribe/{ANON_TOPIC}", node.api());
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .with_context(|| format!("subscribing at {url}"))?;
        let mut stop = stop_rx.clone();
        readers.push(tokio::spawn(async move {
            let mut got = BTreeMap::<String, usize>::new();
            loop {
                let msg = tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(m)) => m,
                        _ => break,
                    },
                    _ = stop.changed() => break,
                };
                let Ok(StreamFrame::Item(frame)) = serde_json::from_str::<
                    StreamFrame<AnonymousDeliveryFrame>,
                >(msg.to_text().unwrap_or("")) else {
                    continue;
                };
                if let Ok(p) = frame.payload() {
                    *got.entry(String::from_utf8_lossy(&p).into_owned())
                        .or_default() += 1;
                }
            }
            got
        }));
    }

    // Honest posts: every member but the spammer and its twin, once each.
    let honest: Vec<usize> = (0..members)
        .filter(|i| *i != SPAMMER && *i != TWIN)
        .collect();
    let mut posted = Vec::new();
    let mut proof_ms = Vec::new();
    for &i in &honest {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match post(http, &nodes[i], format!("honest from node-{i}").as_bytes()).await {
                (_, Ok(RlnPublishAnswer::Published { proof_ms: ms, .. })) => {
                    posted.push(i);
                    proof_ms.push(ms);
                    break;
                }
                // 503: the anonymous mesh is still forming.
                (503, _) if Instant::now() <= deadline => {}
                (status, Err(e)) => {
                    println!("  rln: node-{i} could not post anonymously: {status} {e}");
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    // The spammer and its twin each post once, in the same epoch: the same message id twice.
    // The nodes run the default epochs.
    let epoch_secs = conclave_rln::EpochRules::default().epoch_secs;
    while (now_ms() / 1000) % epoch_secs >= epoch_secs - 4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = Instant::now();
    let (a, b) = tokio::join!(
        post(http, &nodes[SPAMMER], b"spam from node-1"),
        post(http, &nodes[TWIN], b"spam from node-1's twin"),
    );
    println!(
        "node-{SPAMMER} and node-{TWIN} (same RLN identity) posted: {} and {}",
        a.0, b.0
    );
    let mut removal = None;
    let mut removed_by = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        removed_by = 0;
        for node in &nodes[..members] {
            if let Ok((_, answer)) =
                client::get::<RlnRemovedAnswer>(http, &node.url("/v1/rln/removed")).await
            {
                if answer.removed.iter().any(|x| x.secret == secret_of_spammer) {
                    removed_by += 1;
                }
            }
        }
        if removed_by == members {
            removal = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(r) = removal {
        println!(
            "node-{SPAMMER}'s RLN identity removed by every member {} ms after its double signal",
            r.as_millis()
        );
    }
    let (after, _) = post(http, &nodes[SPAMMER], b"spam again").await;
    let onchain = match chain {
        Some(c) => Some(onchain_removal(http, &nodes[..members], c, started).await?),
        None => None,
    };
    // Let the last deliveries arrive, then read the tallies.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_tx.send_replace(true);

    // Authors receive their own posts too (in gossip, after the stem); only others count.
    let mut delivered = 0;
    for (reader, r) in readers.into_iter().enumerate() {
        let got = r.await.unwrap_or_default();
        delivered += posted
            .iter()
            .filter(|i| **i != reader && got.contains_key(&format!("honest from node-{i}")))
            .count();
    }
    Ok(RlnReport {
        spammer: SPAMMER,
        twin: TWIN,
        posted: posted.len(),
        // Every member but the poster receives each post.
        expected: posted.len() * (members - 1),
        delivered,
        removed_by,
        members,
        removal_ms: removal.map(|d| d.as_millis() as u64),
        refused_after: after == 409,
        proof_ms,
        onchain,
    })
}

/// Waits until the spammer's leaf is removed on-chain and every member's turn is over (each
/// node counts its outcome in `conclave_rln_onchain_removals_total`).
async fn onchain_removal(
    http: &reqwest::Client,
    members: &[NodeProc],
    chain: &ChainNet,
    started: Instant,
) -> anyhow::Result<OnchainRemovalReport> {
    // Every turn (one per registered node key), plus the transactions and the polls.
    let deadline = Instant::now() + Duration::from_secs(CHAIN_STAGGER_SECS * 20 + 30);
    let mut report = OnchainRemovalReport {
        removed: false,
        submitted: 0.0,
        already_removed: 0.0,
        removal_ms: None,
    };
    let mut removed_after = None;
    while Instant::now() < deadline {
        if !report.removed && chain.rln_removed(SPAMMER as u64).await? {
            report.removed = true;
            removed_after = Some(started.elapsed());
            report.removal_ms = removed_after.map(|d| d.as_millis() as u64);
        }
        let (mut submitted, mut already) = (0.0, 0.0);
        for node in members {
            let text = client::metrics(http, node).await;
            let name = "conclave_rln_onchain_removals_total";
            submitted += metric_sum(&text, name, &["reason=\"submitted\""]);
            already += metric_sum(&text, name, &["reason=\"already_removed\""]);
        }
        (report.submitted, report.already_removed) = (submitted, already);
        // Turns end within (node keys x stagger) after the removal; a node that learned of the
        // removal from the chain before the evidence reached it has no turn to count.
        let turns_over = removed_after.is_some_and(|a| {
            started.elapsed()
                > a + Duration::from_secs(CHAIN_STAGGER_SECS * (members.len() as u64 + 3))
        });
        if report.removed && (submitted + already >= members.len() as f64 || turns_over) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(report)
}
