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
    Capabilities, Driver, DriverHealth, DriverState, FetchReport, HeaderResponse, PathKind, B256,
};
use conclave_core::{MembershipView, Multiaddr, PeerId};
use conclave_net::{HeaderEntry, PeerSnapshot};
use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use libp2p::multiaddr::Protocol;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

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
                            decode_entries(&entries).map(|h| (h, bytes as u64))
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

/// Entries as (claimed hash, RLP); a hash that is not 32 bytes fails the whole answer.
fn decode_entries(entries: &[HeaderEntry]) -> Result<Vec<(B256, Vec<u8>)>, String> {
    entries
        .iter()
        .map(|e| {
            let hash: [u8; 32] = e
                .hash
                .as_slice()
                .try_into()
                .map_err(|_| format!("a header hash of {} bytes, not 32", e.hash.len()))?;
            Ok((B256::from(hash), e.rlp.clone()))
        })
        .collect()
}

/// The body of `GET /v1/altnet/headers`: a member's recent headers, signed by its node key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SignedHeaders {
    pub peer_id: String,
    /// The node's public key (libp2p protobuf encoding), hex.
    pub public_key: String,
    pub from: u64,
    /// `[hash, rlp]` pairs, hex.
    pub headers: Vec<[String; 2]>,
    /// The node key's signature over [`SignedHeaders::digest`], hex.
    pub signature: String,
}

impl SignedHeaders {
    /// What the signature covers: a domain tag, the start height and every hash and RLP.
    fn digest(from: u64, entries: &[HeaderEntry]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"conclave/altnet/headers/1");
        h.update(from.to_be_bytes());
        for e in entries {
            h.update((e.hash.len() as u64).to_be_bytes());
            h.update(&e.hash);
            h.update((e.rlp.len() as u64).to_be_bytes());
            h.update(&e.rlp);
        }
        h.finalize().into()
    }

    pub fn sign(net: &conclave_net::NetworkService, from: u64, entries: &[HeaderEntry]) -> Self {
        Self::build(&net.public_key(), from, entries, |d| net.sign(d))
    }

    fn build(
        key: &libp2p::identity::PublicKey,
        from: u64,
        entries: &[HeaderEntry],
        sign: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Self {
        SignedHeaders {
            peer_id: key.to_peer_id().to_string(),
            public_key: hex::encode(key.encode_protobuf()),
            from,
            headers: entries
                .iter()
                .map(|e| [hex::encode(&e.hash), hex::encode(&e.rlp)])
                .collect(),
            signature: hex::encode(sign(&Self::digest(from, entries))),
        }
    }

    /// Checks the signature and the signer's membership; the answer as a member's response.
    pub fn verify(
        &self,
        view: &MembershipView,
        from: u64,
    ) -> Result<(PeerId, HeaderResponse), String> {
        if self.from != from {
            return Err(format!("answer starts at {}, asked for {from}", self.from));
        }
        let key_bytes =
            hex::decode(&self.public_key).map_err(|e| format!("public_key is not hex: {e}"))?;
        let key = libp2p::identity::PublicKey::try_decode_protobuf(&key_bytes)
            .map_err(|e| format!("public_key is not a libp2p key: {e}"))?;
        let peer = key.to_peer_id();
        if peer.to_string() != self.peer_id {
            return Err(format!(
                "public_key belongs to {peer}, not the claimed {}",
                self.peer_id
            ));
        }
        let entries = self
            .headers
            .iter()
            .map(|[hash, rlp]| {
                Ok(HeaderEntry {
                    hash: hex::decode(hash).map_err(|e| format!("hash is not hex: {e}"))?,
                    rlp: hex::decode(rlp).map_err(|e| format!("rlp is not hex: {e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let signature =
            hex::decode(&self.signature).map_err(|e| format!("signature is not hex: {e}"))?;
        if !key.verify(&Self::digest(from, &entries), &signature) {
            return Err(format!("signature by {peer} does not verify"));
        }
        let operator = view
            .node(&peer)
            .map(|a| a.operator)
            .ok_or_else(|| format!("{peer} is not a member"))?;
        let headers = decode_entries(&entries)?;
        Ok((peer, HeaderResponse { operator, headers }))
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
    /// Outcome of the last poll of each URL (true = answered).
    last: Mutex<Vec<Option<bool>>>,
}

impl HttpDriver {
    pub fn new(urls: Vec<String>, view: watch::Receiver<Arc<MembershipView>>) -> Self {
        HttpDriver {
            capabilities: Capabilities::polled_headers(),
            last: Mutex::new(vec![None; urls.len()]),
            urls,
            client: reqwest::Client::new(),
            view,
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
        let (_, response) = signed.verify(&view, from)?;
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
    use conclave_core::{NodeAuthorization, OperatorId, ViewBuilder, ViewSource};
    use libp2p::identity::Keypair;

    fn signed_by(key: &Keypair, from: u64, entries: &[HeaderEntry]) -> SignedHeaders {
        SignedHeaders::build(&key.public(), from, entries, |d| key.sign(d).unwrap())
    }

    fn view_with(peer: PeerId, operator: OperatorId) -> MembershipView {
        let mut b = ViewBuilder::new(ViewSource::Empty);
        let _ = b.operator(operator);
        b.node(
            peer,
            NodeAuthorization {
                operator,
                scopes: Default::default(),
                valid_from_block: None,
                expiry: None,
                addresses: vec![],
            },
        )
        .unwrap();
        b.build()
    }

    #[test]
    fn signed_answers_name_their_operator_and_refuse_tampering_and_strangers() {
        let key = Keypair::generate_ed25519();
        let op = OperatorId([7; 20]);
        let view = view_with(key.public().to_peer_id(), op);
        let entries = vec![HeaderEntry {
            hash: vec![1; 32],
            rlp: vec![0xc0],
        }];
        let good = signed_by(&key, 10, &entries);
        let (peer, answer) = good.verify(&view, 10).unwrap();
        assert_eq!(peer, key.public().to_peer_id());
        assert_eq!(answer.operator, op);
        assert_eq!(answer.headers[0].0, B256::repeat_byte(1));

        let mut tampered = good.clone();
        tampered.headers[0][1] = "c1".into();
        assert!(tampered
            .verify(&view, 10)
            .unwrap_err()
            .contains("does not verify"));
        assert!(good.verify(&view, 11).unwrap_err().contains("asked for 11"));
        let stranger = Keypair::generate_ed25519();
        let theirs = signed_by(&stranger, 10, &entries);
        assert!(theirs
            .verify(&view, 10)
            .unwrap_err()
            .contains("is not a member"));
        let mut lying = good.clone();
        lying.peer_id = stranger.public().to_peer_id().to_string();
        assert!(lying
            .verify(&view, 10)
            .unwrap_err()
            .contains("not the claimed"));
        let mut short = signed_by(
            &key,
            10,
            &[HeaderEntry {
                hash: vec![1; 31],
                rlp: vec![0xc0],
            }],
        );
        assert!(short.verify(&view, 10).unwrap_err().contains("not 32"));
        short.signature = "zz".into();
        assert!(short.verify(&view, 10).unwrap_err().contains("not hex"));
    }

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
