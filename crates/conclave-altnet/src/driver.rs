//! Transports as drivers with declared capabilities, so a deployment can add redundant paths and
//! the watchdog knows which of them can carry a header request (see docs/ARCHITECTURE.md,
//! "Alternative paths: watchdog, drivers, header fallback").
//!
//! A driver has a lifecycle — [`Driver::start`] (listen, warm up), [`Driver::stop`] — and
//! reports its [`DriverHealth`]. What it carries is in its [`Capabilities`]: the libp2p
//! transports (TCP, QUIC, WebSocket, relayed circuits) push gossip and answer header requests
//! over whatever member connection they hold; the HTTP driver only polls members' recent signed
//! headers, a path that works where no p2p connection does. Every driver that carries
//! [`MessageKind::Headers`] is asked in parallel by [`Driver::fetch_headers`].

use std::time::Duration;

use futures::future::BoxFuture;

use crate::HeaderResponse;

/// What a driver can move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// The signed and anonymous gossip channels.
    Gossip,
    /// Chain header ranges, on request.
    Headers,
}

impl MessageKind {
    /// The name the API and metrics use.
    pub fn label(self) -> &'static str {
        match self {
            MessageKind::Gossip => "gossip",
            MessageKind::Headers => "headers",
        }
    }
}

/// Whether messages arrive on their own or must be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Push,
    Polled,
}

/// Whether traffic goes straight to the member or through a third node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Direct,
    Relayed,
}

/// What a driver declares it can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// It can carry our messages out (a polled driver only asks).
    pub send: bool,
    /// It brings members' messages or answers in.
    pub receive: bool,
    pub delivery: Delivery,
    pub carries: Vec<MessageKind>,
    pub path: PathKind,
}

impl Capabilities {
    /// A libp2p transport: pushes gossip and answers header requests both ways.
    pub fn libp2p(path: PathKind) -> Self {
        Capabilities {
            send: true,
            receive: true,
            delivery: Delivery::Push,
            carries: vec![MessageKind::Gossip, MessageKind::Headers],
            path,
        }
    }

    /// A query-only path: we ask, members answer; nothing arrives unasked.
    pub fn polled_headers() -> Self {
        Capabilities {
            send: false,
            receive: true,
            delivery: Delivery::Polled,
            carries: vec![MessageKind::Headers],
            path: PathKind::Direct,
        }
    }

    /// Whether the watchdog may ask this driver for `kind` (headers) at all.
    pub fn carries(&self, kind: MessageKind) -> bool {
        self.carries.contains(&kind)
    }
}

/// Where a driver is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverState {
    /// Configured, not started, warming up — or, for a polled driver, not asked yet.
    Starting,
    Up,
    /// Started but not usable now, and why.
    Down(String),
    Stopped,
}

impl DriverState {
    /// The name the API and metrics use.
    pub fn label(&self) -> &'static str {
        match self {
            DriverState::Starting => "starting",
            DriverState::Up => "up",
            DriverState::Down(_) => "down",
            DriverState::Stopped => "stopped",
        }
    }
}

/// A driver's health as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverHealth {
    pub state: DriverState,
    /// Where it listens or whom it polls.
    pub endpoints: Vec<String>,
    /// Member connections (or polled members) it holds now.
    pub peers: usize,
}

/// One member's failure to answer a header request over a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// Whom we asked (a PeerId or a URL).
    pub member: String,
    pub reason: String,
}

/// What one driver's parallel header request brought back.
#[derive(Debug, Clone, Default)]
pub struct FetchReport {
    pub answers: Vec<HeaderResponse>,
    pub failures: Vec<FetchFailure>,
    /// Bytes received in answers.
    pub bytes: u64,
    /// How long the slowest member took (bounded by the timeout).
    pub elapsed: Duration,
}

impl FetchReport {
    /// Adds one member's outcome: its answer and the bytes it took, or why it gave none.
    pub fn record(&mut self, member: String, outcome: Result<(HeaderResponse, u64), String>) {
        match outcome {
            Ok((answer, bytes)) => {
                self.bytes += bytes;
                self.answers.push(answer);
            }
            Err(reason) => self.failures.push(FetchFailure { member, reason }),
        }
    }
}

/// A transport the node can run and ask.
pub trait Driver: Send + Sync {
    /// A short stable name (`tcp`, `quic`, `ws`, `relay`, `http`): metric label and API key.
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> &Capabilities;
    /// Listens / warms up. Idempotent.
    fn start(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Stops listening; connections over it close with it.
    fn stop(&self) -> BoxFuture<'_, ()>;
    fn health(&self) -> DriverHealth;
    /// Asks every member reachable over this driver for `count` headers from `from`, in
    /// parallel, each bounded by `timeout`. Only called when the capabilities carry headers.
    fn fetch_headers(&self, from: u64, count: u32, timeout: Duration)
        -> BoxFuture<'_, FetchReport>;
}
