//! The node processes: spawning one from its configuration, waiting for its API, stopping it,
//! and what it cost (from /proc).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use conclave_api::NodeUsage;
use conclave_node::keys::{self, KeyType};
use conclave_node::NodeConfig;
use tokio::process::{Child, Command};

use super::common::STARTUP;
use super::config;

/// A running `conclave node run`.
pub struct NodeProc {
    pub name: String,
    child: Child,
    log: PathBuf,
    /// Its state directory, where it writes `api.addr` and `altnet.addr`.
    pub state: PathBuf,
    api: Option<SocketAddr>,
}

impl NodeProc {
    /// The API address; known once [`await_api`] returned.
    pub fn api(&self) -> SocketAddr {
        self.api.expect("api address known after start")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Node keys `node-<i>.key` for `n` members; their PeerIds.
pub fn member_keys(dir: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    (0..n)
        .map(|i| {
            Ok(keys::generate(&dir.join(format!("node-{i}.key")), KeyType::Ed25519)?.to_string())
        })
        .collect()
}

/// Writes `<name>.toml` into `dir` and starts a node on it, logging to `<name>.log`.
pub fn spawn(exe: &Path, dir: &Path, name: &str, cfg: &NodeConfig) -> anyhow::Result<NodeProc> {
    spawn_with(Command::new(exe), dir, name, cfg)
}

/// [`spawn`] with the program already in `cmd` (e.g. run inside a network namespace).
pub fn spawn_with(
    mut cmd: Command,
    dir: &Path,
    name: &str,
    cfg: &NodeConfig,
) -> anyhow::Result<NodeProc> {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config::to_toml(cfg)?)?;
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log)?;
    cmd.arg("node").arg("run").arg("--config").arg(&file);
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
        state: dir.join(&cfg.state_dir),
        api: None,
    })
}

/// Waits for the node to write its API address, failing early if it exits.
pub async fn await_api(node: &mut NodeProc) -> anyhow::Result<()> {
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

/// SIGKILL: no shutdown, nothing flushed — a crash.
pub async fn kill9(node: &mut NodeProc) {
    let _ = node.child.kill().await;
}

/// SIGTERM (graceful), then SIGKILL after 10 s.
pub async fn stop(node: &mut NodeProc) {
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

/// Reads a running node's peak RSS and CPU time from /proc (Linux); `None` elsewhere or once
/// it exited.
pub fn usage(node: &NodeProc) -> Option<NodeUsage> {
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
    Some(NodeUsage {
        peak_rss_kib,
        cpu_s: ticks as f64 / 100.0,
    })
}
