//! A Stacks node stand-in as a child process (tests and `conclave devnet --registry stacks`):
//! `scripts/stacks-simnet.mjs` runs the registry contract in the real Clarity VM of
//! `@stacks/clarinet-sdk` and answers the node endpoints the backend reads. Rotations are
//! contract calls in that VM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ContractId;

/// A running simnet endpoint, killed on drop.
pub struct StacksSimnet {
    child: Child,
    client: reqwest::Client,
    /// The node RPC base URL (`http://127.0.0.1:<port>`).
    pub url: String,
    pub contract: ContractId,
}

/// The outcome of a `rotate-keys` call in the VM.
#[derive(Debug, Clone, Deserialize)]
pub struct Rotation {
    /// Whether the call returned `(ok true)`.
    pub ok: bool,
    /// The call's result as Clarity prints it, e.g. `(err u401)`.
    pub result: String,
    /// The block the call was mined in.
    pub height: u64,
    /// The events it printed (`key-rotation`).
    pub events: Vec<String>,
}

#[derive(Deserialize)]
struct Ready {
    port: u16,
    contract: String,
}

/// Where the server script is: `$CONCLAVE_STACKS_SIMNET`, else the repository's.
pub fn locate() -> PathBuf {
    if let Some(p) = std::env::var_os("CONCLAVE_STACKS_SIMNET") {
        return p.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/stacks-simnet.mjs")
}

fn other(message: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(message.to_string())
}

impl StacksSimnet {
    /// Starts the server on a port the OS picks and waits until it listens (the VM's start
    /// takes a few seconds).
    pub fn spawn() -> std::io::Result<Self> {
        let script = locate();
        let mut child = Command::new("node")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                other(format!(
                    "starting node {}: {e} (run scripts/install-deps.sh)",
                    script.display()
                ))
            })?;
        let stdout = child.stdout.take().ok_or_else(|| other("no stdout pipe"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining the server's output so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(ready) = serde_json::from_str::<Ready>(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(ready);
                    }
                }
            }
        });
        let ready = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(r) => r,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(other(format!(
                    "{} did not start listening within 60 s (is @stacks/clarinet-sdk installed? run scripts/install-deps.sh)",
                    script.display()
                )));
            }
        };
        let contract = ready.contract.parse().map_err(other)?;
        Ok(StacksSimnet {
            child,
            client: reqwest::Client::new(),
            url: format!("http://127.0.0.1:{}", ready.port),
            contract,
        })
    }

    async fn control<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> std::io::Result<T> {
        let answer = self
            .client
            .post(format!("{}/control/{path}", self.url))
            .json(body)
            .send()
            .await
            .map_err(other)?;
        let status = answer.status();
        let text = answer.text().await.map_err(other)?;
        if !status.is_success() {
            return Err(other(format!("simnet {path}: {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| other(format!("simnet {path}: {e}: {text}")))
    }

    /// Calls `rotate-keys` as the deployer. The contract checks only the keys' lengths, so any
    /// 33 bytes go in; a call it refuses comes back with `ok: false`.
    pub async fn rotate(
        &self,
        keys: &[[u8; 33]],
        aggregate: &[u8],
        threshold: u64,
    ) -> std::io::Result<Rotation> {
        #[derive(Serialize)]
        struct Rotate {
            keys: Vec<String>,
            aggregate: String,
            threshold: u64,
        }
        let body = Rotate {
            keys: keys.iter().map(hex::encode).collect(),
            aggregate: hex::encode(aggregate),
            threshold,
        };
        self.control("rotate", &body).await
    }

    /// While on, the node endpoints drop every connection unanswered.
    pub async fn set_outage(&self, on: bool) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Switch {
            on: bool,
        }
        #[derive(Deserialize)]
        struct Outage {
            outage: bool,
        }
        let o: Outage = self.control("outage", &Switch { on }).await?;
        if o.outage != on {
            return Err(other("simnet did not switch its outage"));
        }
        Ok(())
    }
}

impl Drop for StacksSimnet {
    fn drop(&mut self) {
        // SIGTERM lets the server remove its private copy of the project.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}
