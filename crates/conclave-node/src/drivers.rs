//! The node's transport drivers (feature `altnet`): the libp2p transports it listens on, and the
//! polled HTTP header driver
//! (docs/ARCHITECTURE.md, "Alternative paths: watchdog, drivers, header fallback").
//!
//! Place in the data flow: **the chain watch task asks every driver whose capabilities carry
//! headers, in parallel → members' header answers → `accept_range`**; `GET /v1/altnet/drivers`
//! and the `conclave_altnet_driver_*` metrics show each driver's health and traffic.
//!
//! The libp2p transports share one swarm: a member is asked once, over the transport of its
//! first connection (the redial tie-break keeps one connection per pair, so that is normally its
//! only one). The HTTP driver asks members' APIs (`[altnet] http_peers`) for signed headers at
//! `GET /v1/altnet/headers`: the signature by the member's node key names the operator, so an
//! HTTP answer counts towards f+1 like a p2p one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conclave_altnet::{
    Capabilities, Driver, DriverHealth, DriverState, FetchReport, HeaderResponse, PathKind,
};
use conclave_core::{Clock, MembershipView, Multiaddr, PeerId};
use conclave_net::PeerSnapshot;
use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use libp2p::multiaddr::Protocol;
use tokio::sync::watch;

use crate::header_answers::SignedHeaders;
use crate::network::NodeNetwork;

/// Which libp2p transport an address uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    Tcp,
    Quic,
    WebSocket,
    Relay,
}

impl TransportKind {
    pub const ALL: [TransportKind; 4] = [
        TransportKind::Tcp,
        TransportKind::Quic,
        TransportKind::WebSocket,
        TransportKind::Relay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Quic => "quic",
            TransportKind::WebSocket => "ws",
            TransportKind::Relay => "relay",
        }
    }

    /// The transport an address goes over (a relayed address is relayed whatever carries it).
    pub fn of(addr: &Multiaddr) -> Option<TransportKind> {
        let mut kind = None;
        for p in addr.iter() {
            match p {
                Protocol::P2pCircuit => return Some(TransportKind::Relay),
                Protocol::Ws(_) | Protocol::Wss(_) => kind = Some(TransportKind::WebSocket),
                Protocol::QuicV1 => kind = Some(TransportKind::Quic),
                Protocol::Tcp(_) if kind.is_none() => kind = Some(TransportKind::Tcp),
                _ => {}
            }
        }
        kind
    }
}

/// One libp2p transport as a driver: listens on its configured addresses, reports the member
/// connections it carries, and asks those members for headers.
pub(crate) struct TransportDriver {
    kind: TransportKind,
    capabilities: Capabilities,
    net: NodeNetwork,
    listen: Vec<Multiaddr>,
    state: Mutex<DriverState>,
}

impl TransportDriver {
    pub fn new(kind: TransportKind, net: NodeNetwork, listen: Vec<Multiaddr>) -> Self {
        let path = if kind == TransportKind::Relay {
            PathKind::Relayed
        } else {
            PathKind::Direct
        };
        TransportDriver {
            kind,
            capabilities: Capabilities::libp2p(path),
            net,
            listen,
            state: Mutex::new(DriverState::Starting),
        }
    }

    fn set_state(&self, state: DriverState) {
        *crate::lock(&self.state) = state;
    }

    /// Members whose first connection goes over this transport.
    fn members(&self, peers: &PeerSnapshot) -> Vec<(PeerId, conclave_core::OperatorId)> {
        peers
            .peers
            .iter()
            .filter(|(_, info)| {
                info.addresses
                    .first()
                    .is_some_and(|a| TransportKind::of(a) == Some(self.kind))
            })
            .filter_map(|(peer, info)| info.operator.map(|op| (*peer, op)))
            .collect()
    }
}

impl Driver for TransportDriver {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn start(&self) -> BoxFuture<'_, Result<(), String>> {
        async move {
            let net = self.net.current();
            // The swarm was started with the configured addresses; after a stop, start
            // listens on them again.
            let listening = net
                .peers()
                .borrow()
                .listen
                .iter()
                .any(|a| TransportKind::of(a) == Some(self.kind));
            if !listening {
                for addr in &self.listen {
                    if let Err(e) = net.listen_on(addr.clone()).await {
                        self.set_state(DriverState::Down(e.to_string()));
                        return Err(e.to_string());
                    }
                }
            }
            self.set_state(DriverState::Up);
            Ok(())
        }
        .boxed()
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        async move {
            let kind = self.kind;
            let _ = self
                .net
                .current()
                .close_listeners(move |a| TransportKind::of(a) == Some(kind))
                .await;
            self.set_state(DriverState::Stopped);
        }
        .boxed()
    }

    fn health(&self) -> DriverHealth {
        let peers = self.net.peers();
        let endpoints: Vec<String> = peers
            .listen
            .iter()
            .filter(|a| TransportKind::of(a) == Some(self.kind))
            .map(ToString::to_string)
            .collect();
        let connected = peers
            .peers
            .values()
            .filter(|i| {
                i.addresses
                    .iter()
                    .any(|a| TransportKind::of(a) == Some(self.kind))
            })
            .count();
        let mut state = crate::lock(&self.state).clone();
        if state == DriverState::Up && endpoints.is_empty() && connected == 0 {
            state = DriverState::Down("no listener and no connection".into());
        }
        DriverHealth {
            state,
            endpoints,
            peers: connected,
        }
    }

    fn fetch_headers(
        &self,
        from: u64,
        count: u32,
        timeout: Duration,
    ) -> BoxFuture<'_, FetchReport> {
        async move {
            let net = self.net.current();
            let members = self.members(&net.peers().borrow());
            let started = Instant::now();
            let asks = members.into_iter().map(|(peer, operator)| {
                let net = net.clone();
                async move {
                    let r = tokio::time::timeout(timeout, net.fetch_headers(peer, from, count))
                        .await
                        .map_err(|_| format!("no answer within {timeout:?}"))
                        .and_then(|r| r.map_err(|e| e.to_string()))
                        .and_then(|entries| {
                            let bytes: usize =
                                entries.iter().map(|e| e.hash.len() + e.rlp.len()).sum();
                            crate::header_answers::decode_entries(&entries)
                                .map(|h| (h, bytes as u64))
                        });
                    (peer, operator, r)
                }
            });
            let mut report = FetchReport::default();
            for (peer, operator, r) in join_all(asks).await {
                let answer =
                    r.map(|(headers, bytes)| (HeaderResponse { operator, headers }, bytes));
                report.record(peer.to_string(), answer);
            }
            report.elapsed = started.elapsed();
            report
        }
        .boxed()
    }
}

/// The largest signed header answer read over HTTP: 128 headers of up to 4 KiB, hex-encoded,
/// with room for the JSON around them.
const MAX_HTTP_ANSWER: usize = 2 * 1024 * 1024;

/// The polled driver: asks members' HTTP APIs for signed headers.
pub(crate) struct HttpDriver {
    capabilities: Capabilities,
    urls: Vec<String>,
    client: reqwest::Client,
    view: watch::Receiver<Arc<MembershipView>>,
    /// The moment a signer's authorization is judged at.
    clock: Arc<dyn Clock>,
    /// Outcome of the last poll of each URL (true = answered).
    last: Mutex<Vec<Option<bool>>>,
}

impl HttpDriver {
    pub fn new(
        urls: Vec<String>,
        view: watch::Receiver<Arc<MembershipView>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        HttpDriver {
            capabilities: Capabilities::polled_headers(),
            last: Mutex::new(vec![None; urls.len()]),
            urls,
            client: reqwest::Client::new(),
            view,
            clock,
        }
    }

    async fn ask(&self, url: &str, from: u64, count: u32) -> Result<(HeaderResponse, u64), String> {
        let mut answer = self
            .client
            .get(format!("{url}/v1/altnet/headers?from={from}&count={count}"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?;
        // A member's answer is bounded like a p2p one: read no more than the largest honest one.
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_HTTP_ANSWER {
                return Err(format!("answer longer than {MAX_HTTP_ANSWER} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let signed: SignedHeaders = serde_json::from_slice(&body)
            .map_err(|e| format!("not a signed header answer: {e}"))?;
        let view = self.view.borrow().clone();
        let (_, response) = signed.verify(&view, self.clock.moment(), from)?;
        Ok((response, body.len() as u64))
    }
}

impl Driver for HttpDriver {
    fn name(&self) -> &'static str {
        "http"
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn start(&self) -> BoxFuture<'_, Result<(), String>> {
        async { Ok(()) }.boxed()
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }

    fn health(&self) -> DriverHealth {
        let last = crate::lock(&self.last);
        let answered = last.iter().filter(|l| **l == Some(true)).count();
        let state = if self.urls.is_empty() {
            DriverState::Down("no altnet_http_peers configured".into())
        } else if last.iter().all(Option::is_none) {
            // Polled only when the watchdog needs headers: nothing known until then.
            DriverState::Starting
        } else if last.iter().all(|l| *l == Some(false)) {
            DriverState::Down("no member answered the last poll".into())
        } else {
            DriverState::Up
        };
        DriverHealth {
            state,
            endpoints: self.urls.clone(),
            peers: answered,
        }
    }

    fn fetch_headers(
        &self,
        from: u64,
        count: u32,
        timeout: Duration,
    ) -> BoxFuture<'_, FetchReport> {
        async move {
            let started = Instant::now();
            let asks = self.urls.iter().map(|url| async move {
                let r = tokio::time::timeout(timeout, self.ask(url, from, count))
                    .await
                    .map_err(|_| format!("no answer within {timeout:?}"))
                    .and_then(|r| r);
                (url, r)
            });
            let results = join_all(asks).await;
            let mut report = FetchReport::default();
            let mut last = Vec::with_capacity(results.len());
            for (url, r) in results {
                last.push(Some(r.is_ok()));
                report.record(url.clone(), r);
            }
            *crate::lock(&self.last) = last;
            report.elapsed = started.elapsed();
            report
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_map_to_their_transport() {
        let kind = |s: &str| TransportKind::of(&s.parse().unwrap());
        assert_eq!(kind("/ip4/127.0.0.1/tcp/1"), Some(TransportKind::Tcp));
        assert_eq!(
            kind("/ip4/127.0.0.1/udp/1/quic-v1"),
            Some(TransportKind::Quic)
        );
        assert_eq!(
            kind("/ip4/127.0.0.1/tcp/1/ws"),
            Some(TransportKind::WebSocket)
        );
        let relay = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit";
        assert_eq!(kind(relay), Some(TransportKind::Relay));
        assert_eq!(kind("/memory/5"), None);
    }
}
