//! Test harness: in-process nodes on the memory transport (real Noise + Yamux handshakes).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use conclave_core::{
    Clock, MembershipView, Multiaddr, NodeAuthorization, OperatorId, PeerId, SystemClock,
    TopicName, ViewBuilder, ViewSource,
};
use conclave_net::{
    AnonymousMessage, Backoff, NetConfig, NetworkEvent, NetworkService, TransportKind,
};
use libp2p::identity::Keypair;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};

/// Every bounded wait is the testkit's: [`eventually`] polls a condition, [`WAIT`] bounds an
/// event that is awaited directly.
pub use conclave_testkit::{eventually, WAIT};

/// A node's identity and where it listens, before it runs.
#[derive(Clone)]
pub struct Member {
    pub key: Keypair,
    pub peer: PeerId,
    pub operator: OperatorId,
    pub addr: Multiaddr,
}

impl Member {
    pub fn new(i: u8) -> Self {
        Self::with_key(i, Keypair::generate_ed25519())
    }

    /// Member `i` with a node key of the caller's choosing (e.g. secp256k1).
    pub fn with_key(i: u8, key: Keypair) -> Self {
        let peer = key.public().to_peer_id();
        Member {
            key,
            peer,
            operator: OperatorId([i; 20]),
            addr: format!("/memory/{}", rand::random::<u64>() >> 1)
                .parse()
                .unwrap(),
        }
    }
}

pub fn topic(s: &str) -> TopicName {
    s.parse().unwrap()
}

/// A view authorizing `members`, each with `scopes`.
pub fn view_of(members: &[&Member], scopes: &[&str]) -> Arc<MembershipView> {
    let mut b = ViewBuilder::new(ViewSource::Empty);
    for m in members {
        let _ = b.operator(m.operator);
        b.node(
            m.peer,
            NodeAuthorization {
                operator: m.operator,
                scopes: scopes.iter().map(|s| topic(s)).collect(),
                valid_from_block: None,
                expiry: None,
                addresses: vec![m.addr.clone()],
            },
        )
        .unwrap();
    }
    Arc::new(b.build())
}

pub struct Node {
    pub member: Member,
    pub service: NetworkService,
    pub events: mpsc::Receiver<NetworkEvent>,
    pub anonymous: mpsc::Receiver<AnonymousMessage>,
    pub metrics: Registry,
}

pub fn config(m: &Member, topics: &[&str]) -> NetConfig {
    let mut c = NetConfig::new(m.key.clone(), TransportKind::Memory);
    c.listen = vec![m.addr.clone()];
    c.topics = topics.iter().map(|t| topic(t)).collect();
    c.redial = Backoff {
        min: Duration::from_millis(100),
        max: Duration::from_secs(2),
    };
    c
}

pub fn start(
    config: NetConfig,
    view: watch::Receiver<Arc<MembershipView>>,
    member: &Member,
) -> Node {
    let mut metrics = Registry::default();
    let started = conclave_net::NetworkService::start(config, view, &mut metrics).unwrap();
    Node {
        member: member.clone(),
        service: started.service,
        events: started.events,
        anonymous: started.anonymous,
        metrics,
    }
}

/// Starts every member with the same fixed view.
pub fn start_all(
    members: &[Member],
    view: Arc<MembershipView>,
    topics: &[&str],
) -> (Vec<Node>, watch::Sender<Arc<MembershipView>>) {
    let (tx, rx) = watch::channel(view);
    let nodes = members
        .iter()
        .map(|m| start(config(m, topics), rx.clone(), m))
        .collect();
    (nodes, tx)
}

/// Waits until every node is connected to `n` peers and sees them subscribed to `t`.
pub async fn wait_for_mesh(nodes: &[Node], n: usize, t: &str) {
    let t = topic(t);
    for node in nodes {
        let peers = node.service.peers();
        eventually(&format!("{}'s mesh on {t}", node.member.peer), || {
            let snap = peers.borrow().clone();
            let t = t.clone();
            async move {
                let subscribed = snap
                    .peers
                    .values()
                    .filter(|p| p.topics.contains(&t))
                    .count();
                if snap.peers.len() == n && subscribed == n {
                    Ok(())
                } else {
                    Err(format!(
                        "{} peers of {n}, {subscribed} subscribed",
                        snap.peers.len()
                    ))
                }
            }
        })
        .await;
    }
}

/// A view where only `hub` has a registry address: the others dial it and nobody else, so the
/// meshes form a line through the hub.
pub fn line_view(members: &[&Member], hub: &Member) -> Arc<MembershipView> {
    let mut b = ViewBuilder::new(ViewSource::Empty);
    for m in members {
        b.operator(m.operator).unwrap();
        b.node(
            m.peer,
            NodeAuthorization {
                operator: m.operator,
                scopes: Default::default(),
                valid_from_block: None,
                expiry: None,
                addresses: if m.peer == hub.peer {
                    vec![m.addr.clone()]
                } else {
                    vec![]
                },
            },
        )
        .unwrap();
    }
    Arc::new(b.build())
}

pub async fn next_anonymous(
    rx: &mut mpsc::Receiver<AnonymousMessage>,
    within: Duration,
) -> Option<AnonymousMessage> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

/// Receives events until `pred` picks one, or fails after `WAIT`.
pub async fn next_matching<T>(
    events: &mut mpsc::Receiver<NetworkEvent>,
    mut pred: impl FnMut(&NetworkEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = events.recv().await.expect("event stream ended");
            if let Some(t) = pred(&ev) {
                return t;
            }
        }
    })
    .await
    .expect("expected event did not arrive")
}

/// Every event that arrives within `d`.
pub async fn drain_for(
    events: &mut mpsc::Receiver<NetworkEvent>,
    d: Duration,
) -> Vec<NetworkEvent> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + d;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await {
        out.push(ev);
    }
    out
}

/// A clock running `offset_ms` behind real time: a node whose envelopes look like old replays.
pub struct LaggingClock(pub u64);

impl Clock for LaggingClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms() - self.0
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
