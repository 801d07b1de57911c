//! A cluster under test: N nodes in this process on TCP loopback, one publish handle per node
//! and one merged stream of deliveries. Each system (Conclave, the baselines) builds one.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bound of the merged delivery stream (deliveries beyond it wait: backpressure, not loss).
pub const DELIVERY_BUFFER: usize = 65_536;

pub struct Cluster {
    /// Publish handles, by node index.
    pub publish: Vec<mpsc::Sender<Vec<u8>>>,
    /// (receiver index, payload) for every message delivered to a node's application.
    pub deliveries: mpsc::Receiver<(usize, Vec<u8>)>,
    pub tasks: Vec<JoinHandle<()>>,
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
