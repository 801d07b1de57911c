//! Baselines (a) and (b) on rust-libp2p gossipsub — the same transport (TCP + Noise + Yamux), the
//! same mesh degrees and heartbeat as Conclave, no membership gate.
//!
//! (a) **plain**: ed25519 node keys, gossipsub's own signatures, no application validation. What
//! Conclave costs on top of gossipsub is the difference.
//! (b) **sBTC profile**: what sBTC signers run today — secp256k1 node keys for gossipsub's Strict
//! signing, plus a second, application-level secp256k1 ECDSA signature (over SHA-256 of the
//! payload, with the signer's compressed public key) that every receiver verifies against the
//! known signer set before it hands the message to the application.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use conclave_net::MeshParams;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, SwarmBuilder};
use secp256k1::ecdsa::Signature;
use secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::cluster::{connect_timeout, Cluster, Delivery, DELIVERY_BUFFER};
use crate::stats::mono_ns;

enum Command {
    Dial(Multiaddr),
    Publish(Vec<u8>),
}

/// Which gossipsub baseline.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Profile {
    Plain,
    Sbtc,
}

/// The application-level signature of the sBTC profile: public key (33) ‖ compact ECDSA (64).
const APP_SIG: usize = 33 + 64;

/// Signs `payload` as an sBTC signer does: ECDSA over SHA-256, key and signature in front.
fn app_sign(key: &SecretKey, payload: Vec<u8>) -> Vec<u8> {
    let secp = Secp256k1::signing_only();
    let digest = Message::from_digest(Sha256::digest(&payload).into());
    let sig = secp.sign_ecdsa(&digest, key).serialize_compact();
    let mut out = Vec::with_capacity(APP_SIG + payload.len());
    out.extend(PublicKey::from_secret_key(&secp, key).serialize());
    out.extend(sig);
    out.extend(payload);
    out
}

/// The payload of a frame whose key is a known signer's and whose signature verifies.
fn app_verify(signers: &HashSet<PublicKey>, frame: &[u8]) -> Option<Vec<u8>> {
    let key = PublicKey::from_slice(frame.get(..33)?).ok()?;
    if !signers.contains(&key) {
        return None;
    }
    let sig = Signature::from_compact(frame.get(33..APP_SIG)?).ok()?;
    let payload = &frame[APP_SIG..];
    let digest = Message::from_digest(Sha256::digest(payload).into());
    Secp256k1::verification_only()
        .verify_ecdsa(&digest, &sig, &key)
        .ok()?;
    Some(payload.to_vec())
}

/// A node's keys: its libp2p identity (ed25519 for plain, secp256k1 for the sBTC profile) and
/// the sBTC profile's application signing key.
pub fn keys(profile: Profile) -> (Keypair, SecretKey) {
    let identity = match profile {
        Profile::Plain => Keypair::generate_ed25519(),
        Profile::Sbtc => Keypair::generate_secp256k1(),
    };
    let app = loop {
        // Nearly every 32 random bytes are a valid key; retry the rare one that is not.
        if let Ok(k) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            break k;
        }
    };
    (identity, app)
}

/// The sBTC profile's signer set: the public keys of every node's application key.
pub fn signers(app_keys: impl IntoIterator<Item = SecretKey>) -> Arc<HashSet<PublicKey>> {
    let secp = Secp256k1::signing_only();
    Arc::new(
        app_keys
            .into_iter()
            .map(|k| PublicKey::from_secret_key(&secp, &k))
            .collect(),
    )
}

/// One gossipsub node of a baseline, running as a task; the same in a cluster in this process
/// and alone in a node process.
pub struct GossipNode {
    commands: mpsc::Sender<Command>,
    /// Where it listens: what higher-index nodes dial.
    pub listen: Multiaddr,
    subscribed: watch::Receiver<usize>,
    /// The swarm's task, aborted with the cluster.
    pub task: JoinHandle<()>,
}

impl GossipNode {
    /// Starts a node of an `n`-node network listening on loopback; every message it receives (verified,
    /// for the sBTC profile) goes to `deliveries`, stamped.
    pub async fn spawn(
        profile: Profile,
        identity: Keypair,
        signers: Arc<HashSet<PublicKey>>,
        n: usize,
        max_message_bytes: usize,
        deliveries: mpsc::Sender<Delivery>,
    ) -> anyhow::Result<GossipNode> {
        let mut builder = gossipsub::ConfigBuilder::default();
        let config = MeshParams::for_members(n)
            .configure(&mut builder)
            .max_transmit_size(max_message_bytes + 4096)
            .build()
            .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))?;
        let mut swarm = SwarmBuilder::with_existing_identity(identity)
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
        let (commands, mut crx) = mpsc::channel::<Command>(1024);
        let (addr_tx, addr_rx) = oneshot::channel();
        let (sub_tx, subscribed) = watch::channel(0usize);
        let task = tokio::spawn(async move {
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
                            let payload = match profile {
                                Profile::Plain => message.data,
                                Profile::Sbtc => match app_verify(&signers, &message.data) {
                                    Some(p) => p,
                                    None => {
                                        eprintln!("sbtc profile: a message failed verification");
                                        continue;
                                    }
                                },
                            };
                            let d = Delivery { payload, at_ns: mono_ns() };
                            if deliveries.send(d).await.is_err() {
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
        });
        let listen = tokio::time::timeout(Duration::from_secs(10), addr_rx)
            .await
            .context("a gossipsub node never listened")??;
        Ok(GossipNode {
            commands,
            listen,
            subscribed,
            task,
        })
    }

    /// Dials another node of the baseline (no gate: any node may).
    pub async fn dial(&self, addr: Multiaddr) -> anyhow::Result<()> {
        self.commands
            .send(Command::Dial(addr))
            .await
            .map_err(|_| anyhow::anyhow!("the gossipsub node stopped"))
    }

    /// Waits until `peers` peers are connected and subscribed to the topic.
    pub async fn wait_subscribed(&mut self, peers: usize) -> anyhow::Result<()> {
        let n = peers + 1;
        if tokio::time::timeout(
            connect_timeout(n),
            self.subscribed.wait_for(|c| *c >= peers),
        )
        .await
        .is_err()
        {
            bail!(
                "gossipsub baseline cluster of {n} did not connect within {:?}",
                connect_timeout(n)
            );
        }
        Ok(())
    }

    /// The node's publish handle: the sBTC profile signs each payload with `app_key` first.
    pub fn publisher(
        &self,
        profile: Profile,
        app_key: SecretKey,
    ) -> (mpsc::Sender<Vec<u8>>, JoinHandle<()>) {
        let (ptx, mut prx) = mpsc::channel::<Vec<u8>>(1024);
        let c = self.commands.clone();
        let task = tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                let p = match profile {
                    Profile::Plain => p,
                    Profile::Sbtc => app_sign(&app_key, p),
                };
                if c.send(Command::Publish(p)).await.is_err() {
                    return;
                }
            }
        });
        (ptx, task)
    }
}

/// `n` nodes of a baseline in this process, fully connected.
pub async fn start(
    profile: Profile,
    n: usize,
    max_message_bytes: usize,
) -> anyhow::Result<Cluster> {
    let keys: Vec<(Keypair, SecretKey)> = (0..n).map(|_| keys(profile)).collect();
    let signers = signers(keys.iter().map(|(_, a)| *a));
    let (dtx, deliveries) = mpsc::channel(DELIVERY_BUFFER);
    let mut nodes = Vec::new();
    for (identity, _) in &keys {
        let node = GossipNode::spawn(
            profile,
            identity.clone(),
            signers.clone(),
            n,
            max_message_bytes,
            dtx.clone(),
        )
        .await?;
        nodes.push(node);
    }
    // Everyone dials everyone with a lower index: a full set of connections, like Conclave's.
    for i in 0..n {
        for j in 0..i {
            nodes[i].dial(nodes[j].listen.clone()).await?;
        }
    }
    for node in nodes.iter_mut() {
        node.wait_subscribed(n - 1).await?;
    }
    let mut publish = Vec::new();
    let mut tasks = Vec::new();
    for (node, (_, app_key)) in nodes.into_iter().zip(keys) {
        let (ptx, task) = node.publisher(profile, app_key);
        publish.push(ptx);
        tasks.push(task);
        tasks.push(node.task);
    }
    Ok(Cluster {
        publish,
        deliveries,
        tasks,
        processes: Vec::new(),
    })
}
