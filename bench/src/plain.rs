//! Baseline (a): plain rust-libp2p gossipsub — the same transport (TCP + Noise + Yamux), the same
//! mesh degrees and heartbeat, but no membership gate and no application validation. What Conclave
//! costs on top of gossipsub is the difference.

use std::time::Duration;

use anyhow::{bail, Context};
use conclave_net::MeshParams;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, SwarmBuilder};
use tokio::sync::{mpsc, oneshot, watch};

use crate::cluster::{Cluster, DELIVERY_BUFFER};

enum Command {
    Dial(Multiaddr),
    Publish(Vec<u8>),
}

pub async fn start(n: usize, max_message_bytes: usize) -> anyhow::Result<Cluster> {
    let mesh = MeshParams::for_members(n);
    let (dtx, deliveries) = mpsc::channel(DELIVERY_BUFFER);
    let mut commands = Vec::new();
    let mut subscribed = Vec::new();
    let mut addrs = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..n {
        let mut builder = gossipsub::ConfigBuilder::default();
        let config = mesh
            .configure(&mut builder)
            .max_transmit_size(max_message_bytes + 4096)
            .build()
            .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))?;
        let mut swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|k| {
                gossipsub::Behaviour::<
                    gossipsub::IdentityTransform,
                    gossipsub::AllowAllSubscriptionFilter,
                >::new(MessageAuthenticity::Signed(k.clone()), config)
                .expect("valid gossipsub config")
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let topic = IdentTopic::new("bench");
        swarm.behaviour_mut().subscribe(&topic)?;
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
        let (ctx, mut crx) = mpsc::channel::<Command>(1024);
        let (addr_tx, addr_rx) = oneshot::channel();
        let (sub_tx, sub_rx) = watch::channel(0usize);
        let dtx = dtx.clone();
        tasks.push(tokio::spawn(async move {
            let mut addr_tx = Some(addr_tx);
            loop {
                tokio::select! {
                    ev = swarm.select_next_some() => match ev {
                        SwarmEvent::NewListenAddr { address, .. } => {
                            if let Some(tx) = addr_tx.take() {
                                let _ = tx.send(address);
                            }
                        }
                        SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) => {
                            let sent = dtx.send((i, message.data)).await;
                            if sent.is_err() {
                                return;
                            }
                        }
                        SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. })
                        | SwarmEvent::ConnectionClosed { .. } => {
                            let count = swarm.behaviour().all_peers().filter(|(_, t)| !t.is_empty()).count();
                            sub_tx.send_replace(count);
                        }
                        _ => {}
                    },
                    cmd = crx.recv() => match cmd {
                        Some(Command::Dial(a)) => {
                            let _ = swarm.dial(a);
                        }
                        Some(Command::Publish(p)) => {
                            if let Err(e) = swarm.behaviour_mut().publish(topic.clone(), p) {
                                eprintln!("gossipsub publish failed: {e}");
                            }
                        }
                        None => return,
                    },
                }
            }
        }));
        addrs.push(
            tokio::time::timeout(Duration::from_secs(10), addr_rx)
                .await
                .context("a plain node never listened")??,
        );
        commands.push(ctx);
        subscribed.push(sub_rx);
    }
    // Everyone dials everyone with a lower index: a full set of connections, like Conclave's.
    for i in 0..n {
        for a in &addrs[..i] {
            commands[i].send(Command::Dial(a.clone())).await?;
        }
    }
    for s in subscribed.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(30), s.wait_for(|c| *c >= n - 1))
            .await
            .is_err()
        {
            bail!("plain gossipsub cluster of {n} did not connect within 30 s");
        }
    }
    let mut publish = Vec::new();
    for c in commands {
        let (ptx, mut prx) = mpsc::channel::<Vec<u8>>(1024);
        tasks.push(tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                if c.send(Command::Publish(p)).await.is_err() {
                    return;
                }
            }
        }));
        publish.push(ptx);
    }
    Ok(Cluster {
        publish,
        deliveries,
        tasks,
    })
}
