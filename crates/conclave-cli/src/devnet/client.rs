//! Talking to the nodes' HTTP APIs: every answer is read as its `conclave_api` type, so a field
//! the node renamed fails loudly here instead of reading as nothing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use conclave_api::{ErrorAnswer, PeersAnswer, ReadyAnswer};
use serde::de::DeserializeOwned;

use super::cluster::NodeProc;
use super::common::{EXPECT, STARTUP};
use super::registry::Entry;

/// The devnet's HTTP client: every call to a node's API is bounded.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?)
}

/// Reads `body` as a `T`, naming the request and the type when it is not one.
fn parse<T: DeserializeOwned>(what: &str, status: u16, body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).with_context(|| {
        format!(
            "{what} answered {status} with no {}: {}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )
    })
}

/// `GET url`: the status and the body as a `T`, whatever the status (`/readyz` answers 503
/// with the same body as 200).
pub async fn get<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<(u16, T)> {
    let what = format!("GET {url}");
    let r = http.get(url).send().await.context(what.clone())?;
    let status = r.status().as_u16();
    let body = r.bytes().await.context(what.clone())?;
    Ok((status, parse(&what, status, &body)?))
}

/// `POST url` with `body`: the status and the answer, a `T` when 2xx and otherwise the node's
/// refusal (as text when the HTTP layer refused before the node did).
pub async fn post<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, Result<T, ErrorAnswer>)> {
    let what = format!("POST {url}");
    let r = http
        .post(url)
        .body(body)
        .send()
        .await
        .context(what.clone())?;
    let status = r.status();
    let body = r.bytes().await.context(what.clone())?;
    let answer = if status.is_success() {
        Ok(parse(&what, status.as_u16(), &body)?)
    } else {
        Err(
            serde_json::from_slice(&body).unwrap_or_else(|_| ErrorAnswer {
                error: String::from_utf8_lossy(&body).into_owned(),
            }),
        )
    };
    Ok((status.as_u16(), answer))
}

/// The node's Prometheus text (empty when it does not answer).
pub async fn metrics(http: &reqwest::Client, node: &NodeProc) -> String {
    match http.get(node.url("/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Sum of a counter family's samples whose line contains every one of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The node's listen addresses, once it has both (TCP and QUIC).
pub async fn listen_addrs(http: &reqwest::Client, node: &NodeProc) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + STARTUP;
    loop {
        let (_, peers) = get::<PeersAnswer>(http, &node.url("/v1/peers")).await?;
        if peers.listen.len() >= 2 {
            return Ok(peers.listen);
        }
        if Instant::now() > deadline {
            bail!("{} never reported its listen addresses", node.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each member's registry entry with the addresses its node reported (`nodes[i]` runs under
/// `peers[i]`).
pub async fn entries(
    http: &reqwest::Client,
    nodes: &[NodeProc],
    peers: &[String],
) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        entries.push(Entry {
            index: i,
            peer: peers[i].clone(),
            addrs: listen_addrs(http, node).await?,
        });
    }
    Ok(entries)
}

/// The node's own PeerId.
pub async fn peer_id_of(http: &reqwest::Client, node: &NodeProc) -> anyhow::Result<libp2p::PeerId> {
    let (_, answer) = get::<PeersAnswer>(http, &node.url("/v1/peers")).await?;
    answer
        .local
        .parse()
        .with_context(|| format!("{} names no PeerId: {}", node.name, answer.local))
}

/// The peers the node is connected to (none when it does not answer).
pub async fn peer_ids(http: &reqwest::Client, node: &NodeProc) -> HashSet<String> {
    match get::<PeersAnswer>(http, &node.url("/v1/peers")).await {
        Ok((_, answer)) => answer.peers.into_iter().map(|p| p.peer_id).collect(),
        Err(_) => HashSet::new(),
    }
}

/// Waits until every node's `/readyz` answers 200 (a quorum of members connected).
pub async fn wait_ready(http: &reqwest::Client, nodes: &[NodeProc]) -> anyhow::Result<()> {
    let deadline = Instant::now() + STARTUP;
    loop {
        let mut ready = 0;
        for node in nodes {
            if let Ok((200, _)) = get::<ReadyAnswer>(http, &node.url("/readyz")).await {
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

/// Polls `f` every 20 ms until it yields a value, for at most [`EXPECT`].
pub async fn expect<T, F>(what: &str, mut f: impl FnMut() -> F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + EXPECT;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {EXPECT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
