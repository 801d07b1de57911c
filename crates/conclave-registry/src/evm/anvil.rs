//! A local anvil chain as a child process (tests and `conclave devnet --chain anvil`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// anvil's first well-known development key (funded on every anvil chain; never use elsewhere).
pub const DEV_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// The first ten well-known development keys, for operator accounts in tests and devnets.
pub const DEV_KEYS: [&str; 10] = [
    DEV_KEY_0,
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// A running anvil, killed on drop.
pub struct Anvil {
    child: Child,
    pub port: u16,
    pub url: String,
    args: Vec<String>,
}

/// Where the anvil binary is: `$CONCLAVE_ANVIL`, else the repo's `bin/anvil` (installed by
/// `scripts/install-deps.sh`), else `anvil` on the PATH.
pub fn locate() -> PathBuf {
    if let Some(p) = std::env::var_os("CONCLAVE_ANVIL") {
        return p.into();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bin/anvil");
    if repo.exists() {
        return repo;
    }
    "anvil".into()
}

impl Anvil {
    /// Starts anvil on 127.0.0.1 with a port chosen by the OS. `args` go to anvil (e.g.
    /// `["--block-time", "1"]`).
    pub fn spawn(args: &[&str]) -> std::io::Result<Self> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (child, port) = Self::start(0, &args)?;
        Ok(Anvil {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            args,
        })
    }

    /// Stops anvil gracefully (SIGTERM: with `--state FILE` it writes its chain there) and waits.
    pub fn stop(&mut self) -> std::io::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .map_err(std::io::Error::other)?;
        self.child.wait().map(|_| ())
    }

    /// Starts anvil again on the same port with the same arguments (an endpoint coming back).
    pub fn restart(&mut self) -> std::io::Result<()> {
        let (child, _) = Self::start(self.port, &self.args)?;
        self.child = child;
        Ok(())
    }

    fn start(port: u16, args: &[String]) -> std::io::Result<(Child, u16)> {
        let bin = locate();
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "starting {}: {e} (run scripts/install-deps.sh)",
                        bin.display()
                    ),
                )
            })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining anvil's output so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .strip_prefix("Listening on 127.0.0.1:")
                    .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(port) => break port,
                Err(_) if Instant::now() < deadline => {
                    if let Some(status) = child.try_wait()? {
                        return Err(std::io::Error::other(format!(
                            "anvil exited at start ({status})"
                        )));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    return Err(std::io::Error::other(
                        "anvil did not report its port within 30 s",
                    ));
                }
            }
        };
        Ok((child, port))
    }

    /// Calls one of anvil's JSON-RPC methods (`anvil_*`, `evm_*`, or any other).
    pub async fn rpc<P, R>(&self, method: &'static str, params: P) -> Result<R, super::EvmError>
    where
        P: serde::Serialize + Clone + Send + Sync + Unpin + std::fmt::Debug,
        R: serde::de::DeserializeOwned + Send + Sync + Unpin + std::fmt::Debug + 'static,
    {
        use alloy::providers::{Provider, ProviderBuilder};
        let url = self.url.parse().expect("anvil's own URL parses");
        ProviderBuilder::new()
            .connect_http(url)
            .raw_request::<P, R>(method.into(), params)
            .await
            .map_err(|e| super::EvmError::Rpc {
                url: self.url.clone(),
                message: e.to_string(),
            })
    }

    /// Mines `blocks` empty blocks at once (`anvil_mine`).
    pub async fn mine(&self, blocks: u64) -> Result<(), super::EvmError> {
        self.rpc("anvil_mine", (format!("0x{blocks:x}"),)).await
    }

    /// Gives `address` a balance (wei), e.g. to fund a fresh operator account.
    pub async fn set_balance(
        &self,
        address: alloy::primitives::Address,
        wei: u128,
    ) -> Result<(), super::EvmError> {
        self.rpc("anvil_setBalance", (address, format!("0x{wei:x}")))
            .await
    }

    /// Stops the chain now (an RPC outage, as the node sees it).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback TCP forwarder in front of anvil that can be cut and restored: an RPC outage as a
/// node sees it (refused connections, open ones closed), while the chain itself runs on.
pub struct RpcProxy {
    pub url: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl RpcProxy {
    /// Forwards a fresh loopback port to `target_port` (anvil's).
    pub async fn start(target_port: u16) -> std::io::Result<RpcProxy> {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection closed at once
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(task);
            }
        });
        Ok(RpcProxy {
            url: format!("http://127.0.0.1:{port}"),
            up,
            conns,
            accept,
        })
    }

    /// Refuses new connections and closes the open ones.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        let mut conns = self
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for t in conns.drain(..) {
            t.abort();
        }
    }

    /// Accepts connections again (the endpoint is back).
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
