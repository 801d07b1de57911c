//! A cluster under test: N nodes on TCP loopback — in this process, or each in its own process
//! ([`crate::process`]) — one publish handle per node and one merged stream of deliveries. Each
//! system (Conclave, the baselines) builds one either way from the same node code.
//! [`NodeProcess`] is the harness's end of one node process.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::BufReader;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::frames::{read_frame, tagged, write_frames, DELIVERED, MAX_FRAME, SETUP, USAGE};
use crate::stats::{own_usage, Usage};
use crate::System;

/// Bound of the merged delivery stream (deliveries beyond it wait: backpressure, not loss).
pub const DELIVERY_BUFFER: usize = 65_536;

/// A message handed to a node's application, stamped there with [`crate::stats::mono_ns`]: the
/// clock every process on the machine shares, so the latency is the receiver's stamp minus the
/// sender's, wherever each runs.
pub struct Delivery {
    /// The payload, or only its header when a node process reported it.
    pub payload: Vec<u8>,
    pub at_ns: u64,
}

pub struct Cluster {
    /// Publish handles, by node index.
    pub publish: Vec<mpsc::Sender<Vec<u8>>>,
    pub deliveries: mpsc::Receiver<Delivery>,
    pub tasks: Vec<JoinHandle<()>>,
    /// The node processes when every node runs in its own (empty: all in this one).
    pub processes: Vec<NodeProcess>,
}

impl Cluster {
    /// CPU time the nodes used so far (µs): the sum over the node processes, or this whole
    /// process (every node and the harness) when the nodes run in it.
    pub async fn cpu_us(&mut self) -> anyhow::Result<u64> {
        if self.processes.is_empty() {
            return Ok(own_usage().cpu_us);
        }
        Ok(self.usage().await?.iter().map(|u| u.cpu_us).sum())
    }

    /// Each node process's usage so far (empty when the nodes run in this process).
    pub async fn usage(&mut self) -> anyhow::Result<Vec<Usage>> {
        let mut out = Vec::with_capacity(self.processes.len());
        for p in &mut self.processes {
            out.push(p.usage().await?);
        }
        Ok(out)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How long a cluster may take to connect fully: more nodes, more connections to set up.
pub fn connect_timeout(n: usize) -> Duration {
    Duration::from_secs(30 + n as u64)
}

/// The harness's end of one node process.
pub struct NodeProcess {
    /// Killed when dropped: a cluster leaves no process behind.
    _child: Child,
    /// Tagged frames to the child's stdin.
    pub(crate) to_child: mpsc::Sender<Vec<u8>>,
    /// Frames other than deliveries and usage answers (listening, ready).
    control: mpsc::Receiver<(u8, Vec<u8>)>,
    usage: mpsc::Receiver<Usage>,
}

/// For profiling (bench/README.md): with `CONCLAVE_BENCH_PROFILE_NODE=<i>` and
/// `CONCLAVE_BENCH_PROFILER="<command and arguments>"`, node `i`'s process runs under that
/// command (e.g. `valgrind --tool=callgrind`). Its own figures are then the profiler's, not a
/// measurement.
fn profiled(index: Option<usize>) -> Option<Command> {
    let node: usize = std::env::var("CONCLAVE_BENCH_PROFILE_NODE")
        .ok()?
        .parse()
        .ok()?;
    let profiler = std::env::var("CONCLAVE_BENCH_PROFILER").ok()?;
    let mut words = profiler.split_whitespace();
    let mut cmd = Command::new(words.next()?);
    cmd.args(words);
    (index == Some(node)).then_some(cmd)
}

impl NodeProcess {
    /// Starts a child for `system` and sends it `setup`; its deliveries go to `deliveries`.
    pub(crate) fn spawn(
        system: System,
        index: Option<usize>,
        setup: &[u8],
        deliveries: mpsc::Sender<Delivery>,
    ) -> anyhow::Result<NodeProcess> {
        let exe = std::env::current_exe().context("locating conclave-bench")?;
        let wrapper = profiled(index);
        // A profiled node is not killed with the cluster: it exits when its stdin closes, so
        // the profiler writes its output.
        let kill = wrapper.is_none();
        let mut child = wrapper
            .map_or_else(
                || Command::new(&exe),
                |mut wrapper| {
                    wrapper.arg(&exe);
                    wrapper
                },
            )
            .args(["--node-process", system.name()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(kill)
            .spawn()
            .context("starting a node process")?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (to_child, rx) = mpsc::channel(1024);
        tokio::spawn(write_frames(stdin, rx));
        let (control_tx, control) = mpsc::channel(4);
        let (usage_tx, usage) = mpsc::channel(4);
        let index = index.unwrap_or(usize::MAX);
        tokio::spawn(read_child(stdout, index, deliveries, control_tx, usage_tx));
        to_child
            .try_send(tagged(SETUP, setup))
            .expect("a fresh channel has room");
        Ok(NodeProcess {
            _child: child,
            to_child,
            control,
            usage,
        })
    }

    pub(crate) async fn send(&self, tag: u8, body: Vec<u8>) -> anyhow::Result<()> {
        self.to_child
            .send(tagged(tag, &body))
            .await
            .map_err(|_| anyhow::anyhow!("a node process exited"))
    }

    /// The next control frame, which must be `tag`, within `within`.
    pub(crate) async fn expect(&mut self, tag: u8, within: Duration) -> anyhow::Result<Vec<u8>> {
        match tokio::time::timeout(within, self.control.recv()).await {
            Ok(Some((t, body))) if t == tag => Ok(body),
            Ok(Some((t, _))) => bail!("a node process sent frame {t} where {tag} was expected"),
            Ok(None) => bail!("a node process exited (see its stderr above)"),
            Err(_) => bail!("a node process sent no frame {tag} within {within:?}"),
        }
    }

    /// The process's CPU time and peak RSS so far, as it reports them.
    pub async fn usage(&mut self) -> anyhow::Result<Usage> {
        self.send(USAGE, Vec::new()).await?;
        tokio::time::timeout(Duration::from_secs(10), self.usage.recv())
            .await
            .context("a node process did not report its usage within 10 s")?
            .context("a node process exited")
    }
}

/// Splits a child's output: deliveries to the cluster's stream, usage answers and control
/// frames to their own channels.
async fn read_child(
    stdout: ChildStdout,
    index: usize,
    deliveries: mpsc::Sender<Delivery>,
    control: mpsc::Sender<(u8, Vec<u8>)>,
    usage: mpsc::Sender<Usage>,
) {
    let mut r = BufReader::new(stdout);
    while let Ok(Some(frame)) = read_frame(&mut r, MAX_FRAME).await {
        let Some((&tag, body)) = frame.split_first() else {
            continue;
        };
        let sent = match tag {
            DELIVERED if body.len() >= 8 => {
                let at_ns = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
                let d = Delivery {
                    payload: body[8..].to_vec(),
                    at_ns,
                };
                deliveries.send(d).await.is_ok()
            }
            USAGE => match serde_json::from_slice(body) {
                Ok(u) => usage.send(u).await.is_ok(),
                Err(e) => {
                    eprintln!("node process {index}: unreadable usage answer: {e}");
                    false
                }
            },
            _ => control.send((tag, body.to_vec())).await.is_ok(),
        };
        if !sent {
            return;
        }
    }
}
