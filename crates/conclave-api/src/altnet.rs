//! The chain-view watchdog and the transport drivers.

use serde::{Deserialize, Serialize};

use crate::Following;

/// `GET /v1/altnet/watchdog`: raised anomalies, the head last seen, and the last header fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchdogAnswer {
    /// The head the node's chain source last reported.
    pub head: u64,
    /// Labels of the anomalies raised now (`stalled`, `behind`, `forked`, `silent`).
    pub raised: Vec<String>,
    pub following: Following,
    pub fallback_tip: Option<FallbackTip>,
    pub last_fetch: Option<HeaderFetch>,
}

/// The newest header accepted from other operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackTip {
    pub height: u64,
    /// `0x`-prefixed hex.
    pub hash: String,
}

/// One round of asking the drivers for headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderFetch {
    /// The block the range was asked from.
    pub anchor: u64,
    pub outcome: FetchOutcome,
    pub drivers: Vec<DriverFetch>,
}

/// Whether enough operators agreed on a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FetchOutcome {
    Accepted {
        /// Headers accepted.
        accepted: usize,
        /// Operators whose signed answers agreed.
        operators: usize,
        /// The newest accepted header's height.
        tip: Option<u64>,
    },
    Refused {
        refused: String,
    },
}

/// What one driver brought back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverFetch {
    pub driver: String,
    pub answers: usize,
    /// `member: reason` for each member that did not answer usefully.
    pub failures: Vec<String>,
    pub elapsed_ms: u64,
}

/// `GET /v1/altnet/drivers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriversAnswer {
    pub drivers: Vec<DriverAnswer>,
}

impl DriversAnswer {
    /// The driver with this name.
    pub fn driver(&self, name: &str) -> Option<&DriverAnswer> {
        self.drivers.iter().find(|d| d.name == name)
    }
}

/// One transport driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverAnswer {
    pub name: String,
    pub capabilities: Capabilities,
    pub health: DriverHealth,
}

/// What a driver can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub send: bool,
    pub receive: bool,
    pub delivery: DeliveryMode,
    /// Message kinds it carries (`gossip`, `headers`).
    pub carries: Vec<String>,
    pub path: PathKind,
}

/// Whether messages arrive on their own or are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    Push,
    Polled,
}

/// Whether a driver reaches members directly or through a third party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    Direct,
    Relayed,
}

/// A driver's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverHealth {
    /// `starting`, `up`, `down` or `stopped`.
    pub state: String,
    /// Why it is down.
    pub reason: Option<String>,
    pub endpoints: Vec<String>,
    pub peers: usize,
}

/// `POST /v1/altnet/drivers/{name}/{start|stop}`: the driver's state afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverChanged {
    pub driver: String,
    pub state: String,
}
