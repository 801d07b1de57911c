//! Nodes as separate processes: each node of a system under test runs alone in a
//! `conclave-bench --node-process <system>` child, as an operator would run it, so every node
//! has its own runtime, allocator and address space, and its CPU time and peak RSS are its own.
//!
//! The harness talks to each child over its stdin/stdout in length-prefixed frames (a tag byte,
//! then the body): it hands the child its keys and the other nodes' addresses, waits until the
//! child's node has its mesh, then sends it payloads to publish; the child reports each delivery
//! by the payload's header and its own CLOCK_MONOTONIC stamp, and answers usage requests. The
//! central relay's server is a process of its own too.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use conclave_core::{MembershipView, Multiaddr, PeerId};
use libp2p::identity::Keypair;
use secp256k1::SecretKey;
use serde::{Deserialize, Serialize};
use tokio::io::BufReader;
use tokio::sync::{mpsc, watch};

use crate::broadcast::HEADER;
use crate::cluster::{connect_timeout, Cluster, Delivery, NodeProcess, DELIVERY_BUFFER};
use crate::conclave::{self, ConclaveNode};
use crate::frames::{
    read_frame, tagged, write_frames, ADDRS, DELIVERED, LISTENING, MAX_FRAME, PUBLISH, READY,
    SETUP, USAGE,
};
use crate::gossip::{self, GossipNode, Profile};
use crate::relay;
use crate::stats::own_usage;
use crate::System;

/// What a node process is told before it starts its node.
#[derive(Serialize, Deserialize)]
struct Setup {
    /// The node's index; none for the central relay's server.
    index: Option<usize>,
    nodes: usize,
    /// The node's libp2p identity (protobuf encoding).
    identity: Vec<u8>,
    /// The node's application signing key (the sBTC profile).
    app_key: Vec<u8>,
    /// Every node's PeerId by index: Conclave's members.
    peers: Vec<String>,
    /// Every node's application public key (compressed): the sBTC profile's signer set.
    signers: Vec<Vec<u8>>,
}

/// `n` nodes of `system`, each in its own process, fully connected (the central relay: each
/// connected to a relay server process).
pub async fn start(system: System, n: usize) -> anyhow::Result<Cluster> {
    let (dtx, deliveries) = mpsc::channel(DELIVERY_BUFFER);
    let mut processes = Vec::new();
    let mut server_addrs = Vec::new();
    if system == System::CentralRelay {
        let setup = Setup {
            index: None,
            nodes: n,
            identity: Vec::new(),
            app_key: Vec::new(),
            peers: Vec::new(),
            signers: Vec::new(),
        };
        let mut server =
            NodeProcess::spawn(system, None, &serde_json::to_vec(&setup)?, dtx.clone())?;
        let listen: Vec<String> =
            serde_json::from_slice(&server.expect(LISTENING, Duration::from_secs(30)).await?)?;
        server_addrs.push(listen);
        processes.push(server);
    }
    // The gossipsub baselines' nodes also carry an application key (the sBTC profile signs with
    // it; plain gossipsub ignores it).
    let keys: Vec<(Keypair, Option<SecretKey>)> = (0..n)
        .map(|_| match system {
            System::Conclave | System::CentralRelay => (Keypair::generate_ed25519(), None),
            System::PlainGossipsub => {
                let (k, a) = gossip::keys(Profile::Plain);
                (k, Some(a))
            }
            System::SbtcProfile => {
                let (k, a) = gossip::keys(Profile::Sbtc);
                (k, Some(a))
            }
        })
        .collect();
    let peers: Vec<String> = keys
        .iter()
        .map(|(k, _)| k.public().to_peer_id().to_string())
        .collect();
    let signers: Vec<Vec<u8>> = gossip::signers(keys.iter().filter_map(|(_, a)| *a))
        .iter()
        .map(|k| k.serialize().to_vec())
        .collect();
    let mut nodes = Vec::new();
    for (i, (identity, app_key)) in keys.into_iter().enumerate() {
        let setup = Setup {
            index: Some(i),
            nodes: n,
            identity: identity.to_protobuf_encoding()?,
            app_key: app_key
                .map(|a| a.secret_bytes().to_vec())
                .unwrap_or_default(),
            peers: peers.clone(),
            signers: signers.clone(),
        };
        nodes.push(NodeProcess::spawn(
            system,
            setup.index,
            &serde_json::to_vec(&setup)?,
            dtx.clone(),
        )?);
    }
    let mut listen: Vec<Vec<String>> = Vec::new();
    for p in nodes.iter_mut() {
        listen.push(serde_json::from_slice(
            &p.expect(LISTENING, Duration::from_secs(30)).await?,
        )?);
    }
    let addrs = if system == System::CentralRelay {
        server_addrs
    } else {
        listen
    };
    let addrs = serde_json::to_vec(&addrs)?;
    for p in &nodes {
        p.send(ADDRS, addrs.clone()).await?;
    }
    for p in nodes.iter_mut() {
        p.expect(READY, connect_timeout(n)).await?;
    }
    let mut publish = Vec::new();
    let mut tasks = Vec::new();
    for p in &nodes {
        let (ptx, mut prx) = mpsc::channel::<Vec<u8>>(1024);
        let to_child = p.to_child.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(payload) = prx.recv().await {
                if to_child.send(tagged(PUBLISH, &payload)).await.is_err() {
                    return;
                }
            }
        }));
        publish.push(ptx);
    }
    processes.extend(nodes);
    Ok(Cluster {
        publish,
        deliveries,
        tasks,
        processes,
    })
}

/// A node process's main: runs one node of `system` as the harness directs over stdin/stdout,
/// until its stdin closes.
pub async fn child(system: System) -> anyhow::Result<()> {
    let mut input = BufReader::new(tokio::io::stdin());
    let (out, rx) = mpsc::channel::<Vec<u8>>(DELIVERY_BUFFER);
    let writer = tokio::spawn(write_frames(tokio::io::stdout(), rx));
    let mut next = async |want: u8| -> anyhow::Result<Vec<u8>> {
        match read_frame(&mut input, MAX_FRAME).await? {
            Some(f) if f.first() == Some(&want) => Ok(f[1..].to_vec()),
            Some(f) => bail!("frame {:?} where {want} was expected", f.first()),
            None => bail!("the harness closed the pipe"),
        }
    };
    let setup: Setup = serde_json::from_slice(&next(SETUP).await?).context("setup frame")?;
    let max = crate::MAX_MESSAGE;
    let say = async |tag: u8, body: Vec<u8>| {
        out.send(tagged(tag, &body))
            .await
            .map_err(|_| anyhow::anyhow!("stdout closed"))
    };
    let (dtx, mut drx) = mpsc::channel::<Delivery>(DELIVERY_BUFFER);
    let reports = out.clone();
    tokio::spawn(async move {
        while let Some(d) = drx.recv().await {
            let mut frame = Vec::with_capacity(1 + 8 + HEADER);
            frame.push(DELIVERED);
            frame.extend(d.at_ns.to_be_bytes());
            frame.extend(&d.payload[..d.payload.len().min(HEADER)]);
            if reports.send(frame).await.is_err() {
                return;
            }
        }
    });
    // Held for the node's life: Conclave's view sender, the relay server's task.
    let mut _view: Option<watch::Sender<Arc<MembershipView>>> = None;
    let mut _server = None;
    let publish: Option<mpsc::Sender<Vec<u8>>> = match (system, setup.index) {
        (System::CentralRelay, None) => {
            let (addr, server) = relay::listen(max).await?;
            _server = Some(server);
            say(LISTENING, serde_json::to_vec(&[addr.to_string()])?).await?;
            None
        }
        (_, None) => bail!("only the central relay has a server process"),
        (_, Some(index)) => {
            let identity = Keypair::from_protobuf_encoding(&setup.identity)
                .context("setup: the node identity")?;
            let n = setup.nodes;
            let ptx = match system {
                System::Conclave => {
                    let peers = setup
                        .peers
                        .iter()
                        .map(|p| p.parse::<PeerId>())
                        .collect::<Result<Vec<_>, _>>()
                        .context("setup: the members' PeerIds")?;
                    let members = conclave::members(&peers);
                    let (view_tx, view_rx) = watch::channel(conclave::view(&members, &[]));
                    let mut node = ConclaveNode::spawn(identity, view_rx, max).await?;
                    let listen: Vec<String> = node.listen.iter().map(|a| a.to_string()).collect();
                    say(LISTENING, serde_json::to_vec(&listen)?).await?;
                    let addrs: Vec<Vec<Multiaddr>> = serde_json::from_slice(&next(ADDRS).await?)?;
                    view_tx.send_replace(conclave::view(&members, &addrs));
                    _view = Some(view_tx);
                    node.wait_mesh(n).await?;
                    node.run(dtx).0
                }
                System::PlainGossipsub | System::SbtcProfile => {
                    let profile = if system == System::SbtcProfile {
                        Profile::Sbtc
                    } else {
                        Profile::Plain
                    };
                    let app_key =
                        SecretKey::from_slice(&setup.app_key).context("setup: the app key")?;
                    let signers = setup
                        .signers
                        .iter()
                        .map(|k| secp256k1::PublicKey::from_slice(k))
                        .collect::<Result<_, _>>()
                        .context("setup: the signers' public keys")?;
                    let mut node =
                        GossipNode::spawn(profile, identity, Arc::new(signers), n, max, dtx)
                            .await?;
                    say(LISTENING, serde_json::to_vec(&[node.listen.to_string()])?).await?;
                    let addrs: Vec<Vec<Multiaddr>> = serde_json::from_slice(&next(ADDRS).await?)?;
                    for a in addrs.iter().take(index).flatten() {
                        node.dial(a.clone()).await?;
                    }
                    node.wait_subscribed(n - 1).await?;
                    node.publisher(profile, app_key).0
                }
                System::CentralRelay => {
                    say(LISTENING, b"[]".to_vec()).await?;
                    let addrs: Vec<Vec<String>> = serde_json::from_slice(&next(ADDRS).await?)?;
                    let server = addrs
                        .first()
                        .and_then(|a| a.first())
                        .context("setup: no relay server address")?
                        .parse()
                        .context("setup: the relay server address")?;
                    relay::client(server, max, dtx).await?.0
                }
            };
            say(READY, Vec::new()).await?;
            Some(ptx)
        }
    };
    loop {
        let Some(frame) = read_frame(&mut input, MAX_FRAME).await? else {
            break;
        };
        match frame.split_first() {
            Some((&PUBLISH, payload)) => match &publish {
                Some(p) => p
                    .send(payload.to_vec())
                    .await
                    .map_err(|_| anyhow::anyhow!("the node stopped"))?,
                None => bail!("the relay server has nothing to publish"),
            },
            Some((&USAGE, _)) => say(USAGE, serde_json::to_vec(&own_usage())?).await?,
            other => bail!("unexpected frame {:?}", other.map(|(t, _)| t)),
        }
    }
    drop(out);
    writer.abort();
    Ok(())
}
