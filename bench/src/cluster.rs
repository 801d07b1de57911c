//! A cluster under test: N nodes on TCP loopback — in this process, or each in its own process
//! ([`crate::process`]) — one publish handle per node and one merged stream of deliveries. Each
//! system (Conclave, the baselines) builds one either way from the same node code.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::process::NodeProcess;
use crate::stats::{own_usage, Usage};

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
