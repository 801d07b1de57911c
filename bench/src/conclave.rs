//! Conclave as deployed: the production network service (gate, signed gossip, validation)
//! on TCP loopback, every node a registered member.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use conclave_core::MembershipView;
use conclave_core::{
    Multiaddr, NodeAuthorization, OperatorId, PeerId, TopicName, ViewBuilder, ViewSource,
};
use conclave_net::{Backoff, NetConfig, NetworkEvent, NetworkService, TransportKind};
use libp2p::identity::Keypair;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cluster::{connect_timeout, Cluster, Delivery, DELIVERY_BUFFER};
use crate::stats::mono_ns;

pub const TOPIC: &str = "bench";

/// A view where every member may publish on [`TOPIC`], with `addrs[i]` as member i's hints.
pub(crate) fn view(
    members: &[(PeerId, OperatorId)],
    addrs: &[Vec<Multiaddr>],
) -> Arc<MembershipView> {
    let mut b = ViewBuilder::new(ViewSource::Empty);
    for (i, (peer, op)) in members.iter().enumerate() {
        let _ = b.operator(*op);
        let auth = NodeAuthorization {
            operator: *op,
            scopes: [TOPIC.parse::<TopicName>().expect("valid topic")].into(),
            valid_from_block: None,
            expiry: None,
            addresses: addrs.get(i).cloned().unwrap_or_default(),
        };
        b.node(*peer, auth).expect("distinct bench members");
    }
    Arc::new(b.build())
}

/// The members of a bench network: node i's operator is i + 1.
pub(crate) fn members(peers: &[PeerId]) -> Vec<(PeerId, OperatorId)> {
    peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut op = [0u8; 20];
            op[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            (*p, OperatorId(op))
        })
        .collect()
}

/// One Conclave node (the production network service), the same in a cluster in this process
/// and alone in a node process.
pub struct ConclaveNode {
    service: NetworkService,
    events: mpsc::Receiver<NetworkEvent>,
    /// Where it listens: what the others' view lists for it.
    pub listen: Vec<Multiaddr>,
    /// The network service's worker, aborted with the cluster.
    pub worker: JoinHandle<()>,
}

impl ConclaveNode {
    /// Starts a node listening on loopback; it connects to the members `view` lists, at the
    /// addresses it gives.
    pub async fn spawn(
        key: Keypair,
        view: watch::Receiver<Arc<MembershipView>>,
        max_message_bytes: usize,
    ) -> anyhow::Result<ConclaveNode> {
        let mut c = NetConfig::new(key, TransportKind::Network);
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        c.topics = vec![TOPIC.parse()?];
        c.max_message_bytes = max_message_bytes;
        c.redial = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let started = NetworkService::start(c, view, &mut Registry::default())?;
        let listen = tokio::time::timeout(
            Duration::from_secs(10),
            started.service.peers().wait_for(|p| !p.listen.is_empty()),
        )
        .await
        .context("a node never listened")??
        .listen
        .clone();
        Ok(ConclaveNode {
            service: started.service,
            events: started.events,
            listen,
            worker: started.worker,
        })
    }

    /// Waits until the other `n - 1` members are connected and subscribed; says how the mesh
    /// came together: connections (to this node) and what its gate refused on the way.
    pub async fn wait_mesh(
        &mut self,
        n: usize,
    ) -> anyhow::Result<(usize, std::collections::BTreeMap<&'static str, usize>)> {
        let topic: TopicName = TOPIC.parse()?;
        let mut peers = self.service.peers();
        let ok = tokio::time::timeout(
            connect_timeout(n),
            peers.wait_for(|p| {
                p.peers.len() == n - 1 && p.peers.values().all(|i| i.topics.contains(&topic))
            }),
        )
        .await
        .is_ok();
        if !ok {
            bail!(
                "Conclave cluster of {n} did not connect within {:?}",
                connect_timeout(n)
            );
        }
        let connections = self
            .service
            .peers()
            .borrow()
            .peers
            .values()
            .map(|p| p.connections)
            .sum();
        let mut denied = std::collections::BTreeMap::new();
        while let Ok(e) = self.events.try_recv() {
            if let NetworkEvent::ConnectionDenied { reason, .. } = e {
                *denied.entry(reason).or_default() += 1;
            }
        }
        Ok((connections, denied))
    }

    /// Hands the node to its application: deliveries go to `deliveries`, stamped; the returned
    /// handle publishes on the bench topic.
    pub fn run(
        self,
        deliveries: mpsc::Sender<Delivery>,
    ) -> (mpsc::Sender<Vec<u8>>, Vec<JoinHandle<()>>) {
        let mut events = self.events;
        let receive = tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let NetworkEvent::Message(d) = e {
                    let d = Delivery {
                        payload: d.payload,
                        at_ns: mono_ns(),
                    };
                    if deliveries.send(d).await.is_err() {
                        return;
                    }
                }
            }
        });
        let (ptx, mut prx) = mpsc::channel::<Vec<u8>>(1024);
        let service = self.service;
        let publish = tokio::spawn(async move {
            let t: TopicName = TOPIC.parse().expect("valid topic");
            while let Some(p) = prx.recv().await {
                if let Err(e) = service.publish(t.clone(), p).await {
                    eprintln!("conclave publish failed: {e}");
                }
            }
            service.shutdown();
        });
        (ptx, vec![receive, publish, self.worker])
    }
}

/// `n` Conclave members in this process, fully connected.
pub async fn start(n: usize, max_message_bytes: usize) -> anyhow::Result<Cluster> {
    let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate_ed25519()).collect();
    let members = members(
        &keys
            .iter()
            .map(|k| k.public().to_peer_id())
            .collect::<Vec<_>>(),
    );
    let (view_tx, view_rx) = watch::channel(view(&members, &[]));
    let mut nodes = Vec::new();
    for k in &keys {
        nodes.push(ConclaveNode::spawn(k.clone(), view_rx.clone(), max_message_bytes).await?);
    }
    // Listen addresses go into the view; the redial loops connect everyone.
    let addrs: Vec<Vec<Multiaddr>> = nodes.iter().map(|x| x.listen.clone()).collect();
    view_tx.send_replace(view(&members, &addrs));
    let mut connections = 0;
    let mut denied: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for node in nodes.iter_mut() {
        let (c, d) = node.wait_mesh(n).await?;
        connections += c;
        for (reason, k) in d {
            *denied.entry(reason).or_default() += k;
        }
    }
    eprintln!(
        "  conclave cluster of {n} ready: {:.2} connections per pair; refused on the way: {denied:?}",
        connections as f64 / (n * (n - 1)) as f64
    );
    let (dtx, deliveries) = mpsc::channel(DELIVERY_BUFFER);
    let mut publish = Vec::new();
    let mut tasks = Vec::new();
    for node in nodes {
        let (ptx, t) = node.run(dtx.clone());
        publish.push(ptx);
        tasks.extend(t);
    }
    // Keep the view sender alive as long as the cluster.
    tasks.push(tokio::spawn(async move {
        view_tx.closed().await;
    }));
    Ok(Cluster {
        publish,
        deliveries,
        tasks,
        processes: Vec::new(),
    })
}
