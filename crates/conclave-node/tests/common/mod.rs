//! Helpers shared by the node's integration tests: start a node from a typed config, query its
//! HTTP API, wait for a condition (with the testkit's one bounded wait), build registry files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use conclave_api::PeersAnswer;
use conclave_core::OperatorId;
use conclave_node::config::NodeConfig;
use conclave_node::{NodeHooks, RunningNode};
use conclave_testkit::{eventually, node, RegistryDoc};
use serde::de::DeserializeOwned;

/// Node `name` on loopback: key `<name>.key`, state in `<name>-state`, one TCP listener and the
/// HTTP API on OS-chosen ports; everything else at the node's defaults.
pub fn node_config(name: &str) -> NodeConfig {
    NodeConfig {
        key_file: format!("{name}.key").into(),
        state_dir: format!("{name}-state").into(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        http_listen: "127.0.0.1:0".into(),
        ..NodeConfig::default()
    }
}

/// Membership from the registry file `file`, checked for edits every 50 ms.
pub fn file_registry(cfg: &mut NodeConfig, file: impl Into<PathBuf>) {
    cfg.registry.source = "file".into();
    cfg.registry.file = file.into();
    cfg.registry.poll_ms = 50;
}

/// Writes `<dir>/<name>.toml` with `config`, then starts the node with `overrides` (`key=value`)
/// and `hooks`.
pub async fn start_node(
    dir: &Path,
    name: &str,
    config: &NodeConfig,
    overrides: &[String],
    hooks: NodeHooks,
) -> RunningNode {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
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
    eventually(what, || async {
        let (status, body) = get(node, path).await;
        if pred(status, &body) {
            Ok(body)
        } else {
            Err(format!("{path} answered {status}: {body}"))
        }
    })
    .await
}

/// Polls `path` until its status and its answer, read as `T`, satisfy `pred`; returns that
/// answer. A body that is not a `T` counts as "not yet".
pub async fn until_answer<T: DeserializeOwned>(
    node: &RunningNode,
    path: &str,
    what: &str,
    pred: impl Fn(u16, &T) -> bool,
) -> T {
    eventually(what, || async {
        let (status, body) = get(node, path).await;
        match serde_json::from_str::<T>(&body) {
            Ok(v) if pred(status, &v) => Ok(v),
            Ok(_) => Err(format!("{path} answered {status}: {body}")),
            Err(e) => Err(format!(
                "{path} answered {status} with no {}: {e}: {body}",
                std::any::type_name::<T>()
            )),
        }
    })
    .await
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

/// A registry where operator `op(i)` authorizes node key `peers[i]` for `scopes`, with
/// `addrs[i]` (if known yet) as dial hints.
pub fn members(
    peers: &[String],
    addrs: &[Vec<String>],
    scopes: &[&str],
    op: impl Fn(usize) -> OperatorId,
) -> RegistryDoc {
    peers
        .iter()
        .enumerate()
        .fold(RegistryDoc::new(), |doc, (i, peer)| {
            let mut entry = node(peer, scopes);
            entry.addresses = addrs.get(i).cloned().unwrap_or_default();
            doc.operator(op(i), vec![entry])
        })
}
