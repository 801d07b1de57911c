//! Helpers shared by the node's integration tests: start a node from a config text, query its
//! HTTP API, wait for a condition with a bounded timeout.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conclave_node::config::NodeConfig;
use conclave_node::{NodeHooks, RunningNode};
use serde_json::Value;

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

pub async fn get_json(node: &RunningNode, path: &str) -> Value {
    serde_json::from_str(&get(node, path).await.1).unwrap()
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

/// Polls a JSON endpoint until `pred` holds; returns that answer.
pub async fn until_json(
    node: &RunningNode,
    path: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let body = until(node, path, what, |_, body| {
        serde_json::from_str::<Value>(body).is_ok_and(|v| pred(&v))
    })
    .await;
    serde_json::from_str(&body).unwrap()
}

/// The node's listen addresses, once it reports at least `at_least`.
pub async fn listen_addrs(node: &RunningNode, at_least: usize) -> Vec<String> {
    let v = until_json(node, "/v1/peers", "listen addresses", |v| {
        v["listen"].as_array().is_some_and(|a| a.len() >= at_least)
    })
    .await;
    v["listen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
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
