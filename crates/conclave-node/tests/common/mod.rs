//! Helpers shared by the node's integration tests: start a node from a config text, query its
//! HTTP API, wait for a condition with a bounded timeout.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conclave_api::PeersAnswer;
use conclave_node::config::NodeConfig;
use conclave_node::{NodeHooks, RunningNode};
use serde::de::DeserializeOwned;

pub const WAIT: Duration = Duration::from_secs(60);

/// Writes `<dir>/<name>.toml` with `config`, then starts the node with `overrides` (`key=value`)
/// and `hooks`.
pub async fn start_node(
    dir: &Path,
    name: &str,
    config: &str,
    overrides: &[String],
    hooks: NodeHooks,
) -> RunningNode {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let (c, base) = NodeConfig::load(Some(&path), overrides).unwrap();
    RunningNode::start_with(c.validate(&base).unwrap(), hooks)
        .await
        .unwrap()
}

pub async fn get(node: &RunningNode, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{}{path}", node.http_addr))
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `path`'s answer as `T`, whatever the status; a body that is not a `T` fails the test.
pub async fn get_json<T: DeserializeOwned>(node: &RunningNode, path: &str) -> T {
    let (status, body) = get(node, path).await;
    serde_json::from_str(&body).unwrap_or_else(|e| {
        panic!(
            "{path} answered {status} with a body that is not a {}: {e}\n{body}",
            std::any::type_name::<T>()
        )
    })
}

/// Polls `path` until `pred(status, body)` holds; returns that body.
pub async fn until(
    node: &RunningNode,
    path: &str,
    what: &str,
    pred: impl Fn(u16, &str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = get(node, path).await;
        if pred(status, &body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last {path}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `path` until its status and its answer, read as `T`, satisfy `pred`; returns that
/// answer. A body that is not a `T` counts as "not yet".
pub async fn until_answer<T: DeserializeOwned>(
    node: &RunningNode,
    path: &str,
    what: &str,
    pred: impl Fn(u16, &T) -> bool,
) -> T {
    let body = until(node, path, what, |status, body| {
        serde_json::from_str::<T>(body).is_ok_and(|v| pred(status, &v))
    })
    .await;
    serde_json::from_str(&body).unwrap()
}

/// Polls a JSON endpoint until its answer, read as `T`, satisfies `pred`; returns that answer.
/// A body that is not a `T` counts as "not yet".
pub async fn until_json<T: DeserializeOwned>(
    node: &RunningNode,
    path: &str,
    what: &str,
    pred: impl Fn(&T) -> bool,
) -> T {
    until_answer(node, path, what, |_, v: &T| pred(v)).await
}

/// The node's listen addresses, once it reports at least `at_least`.
pub async fn listen_addrs(node: &RunningNode, at_least: usize) -> Vec<String> {
    until_json(node, "/v1/peers", "listen addresses", |v: &PeersAnswer| {
        v.listen.len() >= at_least
    })
    .await
    .listen
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `[[operators]]` entries: operator `op(i)` authorizes node key `peers[i]` for `scopes`, with
/// `addrs[i]` (if known yet) as dial hints.
pub fn operators_toml(
    peers: &[String],
    addrs: &[Vec<String>],
    scopes: &[&str],
    op: impl Fn(usize) -> conclave_core::OperatorId,
) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| format!("\"{s}\"")).collect();
    let mut s = String::new();
    for (i, p) in peers.iter().enumerate() {
        let a: Vec<String> = addrs
            .get(i)
            .map(|v| v.iter().map(|x| format!("\"{x}\"")).collect())
            .unwrap_or_default();
        s.push_str(&format!(
            "[[operators]]\naddress = \"{}\"\n[[operators.nodes]]\npeer_id = \"{p}\"\nscopes = [{}]\naddresses = [{}]\n",
            op(i),
            scopes.join(", "),
            a.join(", ")
        ));
    }
    s
}
