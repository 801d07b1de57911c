//! Conclave as deployed: the production network service (gate, signed gossip, validation)
//! on TCP loopback, every node a registered member.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use conclave_core::{
    Multiaddr, NodeAuthorization, OperatorId, PeerId, TopicName, ViewBuilder, ViewSource,
};
use conclave_net::{Backoff, NetConfig, NetworkEvent, NetworkService, TransportKind};
use libp2p::identity::Keypair;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};

use crate::cluster::{connect_timeout, Cluster, DELIVERY_BUFFER};

pub const TOPIC: &str = "bench";

/// A view where every member may publish on [`TOPIC`], with `addrs[i]` as member i's hints.
pub(crate) fn view(
    members: &[(PeerId, OperatorId)],
    addrs: &[Vec<Multiaddr>],
) -> Arc<conclave_core::MembershipView> {
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

pub async fn start(n: usize, max_message_bytes: usize) -> anyhow::Result<Cluster> {
    let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate_ed25519()).collect();
    let members: Vec<(PeerId, OperatorId)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut op = [0u8; 20];
            op[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            (k.public().to_peer_id(), OperatorId(op))
        })
        .collect();
    let (view_tx, view_rx) = watch::channel(view(&members, &[]));
    let topic: TopicName = TOPIC.parse()?;
    let mut services = Vec::new();
    let mut events = Vec::new();
    let mut tasks = Vec::new();
    for k in &keys {
        let mut c = NetConfig::new(k.clone(), TransportKind::Network);
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        c.topics = vec![topic.clone()];
        c.max_message_bytes = max_message_bytes;
        c.redial = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let started = NetworkService::start(c, view_rx.clone(), &mut Registry::default())?;
        services.push(started.service);
        events.push(started.events);
        tasks.push(started.worker);
    }
    // Listen addresses go into the view; the redial loops connect everyone.
    let mut addrs = Vec::new();
    for s in &services {
        let mut peers = s.peers();
        let snap = tokio::time::timeout(
            Duration::from_secs(10),
            peers.wait_for(|p| !p.listen.is_empty()),
        )
        .await
        .context("a node never listened")??
        .clone();
        addrs.push(snap.listen.clone());
    }
    view_tx.send_replace(view(&members, &addrs));
    for s in &services {
        let mut peers = s.peers();
        let t = topic.clone();
        let ok = tokio::time::timeout(
            connect_timeout(n),
            peers.wait_for(|p| {
                p.peers.len() == n - 1 && p.peers.values().all(|i| i.topics.contains(&t))
            }),
        )
        .await;
        if ok.is_err() {
            bail!(
                "Conclave cluster of {n} did not connect within {:?}",
                connect_timeout(n)
            );
        }
    }
    // How the mesh came together: connections per pair and what was refused on the way.
    let connections: usize = services
        .iter()
        .map(|s| {
            s.peers()
                .borrow()
                .peers
                .values()
                .map(|p| p.connections)
                .sum::<usize>()
        })
        .sum();
    let mut denied: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for ev in events.iter_mut() {
        while let Ok(e) = ev.try_recv() {
            if let NetworkEvent::ConnectionDenied { reason, .. } = e {
                *denied.entry(reason).or_default() += 1;
            }
        }
    }
    eprintln!(
        "  conclave cluster of {n} ready: {:.2} connections per pair; refused on the way: {denied:?}",
        connections as f64 / (n * (n - 1)) as f64
    );
    let (dtx, deliveries) = mpsc::channel(DELIVERY_BUFFER);
    let mut publish = Vec::new();
    for (i, (service, mut ev)) in services.into_iter().zip(events).enumerate() {
        let dtx = dtx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(e) = ev.recv().await {
                if let NetworkEvent::Message(d) = e {
                    if dtx.send((i, d.payload)).await.is_err() {
                        return;
                    }
                }
            }
        }));
        let (ptx, mut prx) = mpsc::channel::<Vec<u8>>(1024);
        let t = topic.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                if let Err(e) = service.publish(t.clone(), p).await {
                    eprintln!("conclave publish failed: {e}");
                }
            }
            service.shutdown();
        }));
        publish.push(ptx);
    }
    // Keep the view sender alive as long as the cluster.
    tasks.push(tokio::spawn(async move {
        view_tx.closed().await;
    }));
    Ok(Cluster {
        publish,
        deliveries,
        tasks,
    })
}
