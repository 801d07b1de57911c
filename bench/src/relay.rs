//! Baseline (c): a central relay — what signer networks used before p2p. One TCP server; every node
//! keeps one connection to it and sends length-prefixed frames; the relay writes each frame to
//! every other connection. No encryption, no signatures, no gate: the cheapest possible fan-out,
//! and a single point of failure and of trust.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, Delivery, DELIVERY_BUFFER};
use crate::frames::{read_frame, write_frame, write_frames};
use crate::stats::mono_ns;

/// Frames a slow connection may fall behind by before the relay drops it (bounded, like
/// everything else: a relay cannot buffer forever).
const RELAY_LAG: usize = 4096;

/// The relay: each connection's frames go to every other connection, in order.
async fn serve(listener: TcpListener, max: usize) {
    let (fanout, _) = broadcast::channel::<(usize, std::sync::Arc<Vec<u8>>)>(RELAY_LAG);
    let mut next_id = 0usize;
    while let Ok((sock, _)) = listener.accept().await {
        let _ = sock.set_nodelay(true);
        let id = next_id;
        next_id += 1;
        let (r, w) = sock.into_split();
        let tx = fanout.clone();
        let mut rx = fanout.subscribe();
        tokio::spawn(async move {
            let mut w = BufWriter::new(w);
            while let Ok((from, frame)) = rx.recv().await {
                if from == id {
                    continue;
                }
                if write_frame(&mut w, &frame).await.is_err() {
                    return;
                }
                // Flush once nothing else is queued: batches under load, no delay when idle.
                if rx.is_empty() && w.flush().await.is_err() {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            let mut r = BufReader::new(r);
            while let Ok(Some(frame)) = read_frame(&mut r, max).await {
                let _ = tx.send((id, std::sync::Arc::new(frame)));
            }
        });
    }
}

/// Starts the relay server on loopback.
pub async fn listen(max_message_bytes: usize) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((
        addr,
        tokio::spawn(serve(listener, max_message_bytes + 4096)),
    ))
}

/// A node's connection to the relay: its publish handle; what the relay sends it goes to
/// `deliveries`, stamped.
pub async fn client(
    relay: SocketAddr,
    max_message_bytes: usize,
    deliveries: mpsc::Sender<Delivery>,
) -> anyhow::Result<(mpsc::Sender<Vec<u8>>, Vec<JoinHandle<()>>)> {
    let max = max_message_bytes + 4096;
    let sock = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(relay))
        .await
        .context("connecting to the relay")??;
    sock.set_nodelay(true)?;
    let (r, w) = sock.into_split();
    let (ptx, prx) = mpsc::channel::<Vec<u8>>(1024);
    let send = tokio::spawn(write_frames(w, prx));
    let receive = tokio::spawn(async move {
        let mut r = BufReader::new(r);
        while let Ok(Some(payload)) = read_frame(&mut r, max).await {
            let d = Delivery {
                payload,
                at_ns: mono_ns(),
            };
            if deliveries.send(d).await.is_err() {
                return;
            }
        }
    });
    Ok((ptx, vec![send, receive]))
}

/// The relay and `n` nodes connected to it, in this process.
pub async fn start(n: usize, max_message_bytes: usize) -> anyhow::Result<Cluster> {
    let (addr, server) = listen(max_message_bytes).await?;
    let mut tasks = vec![server];
    let (dtx, deliveries) = mpsc::channel(DELIVERY_BUFFER);
    let mut publish = Vec::new();
    for _ in 0..n {
        let (ptx, t) = client(addr, max_message_bytes, dtx.clone()).await?;
        publish.push(ptx);
        tasks.extend(t);
    }
    Ok(Cluster {
        publish,
        deliveries,
        tasks,
        processes: Vec::new(),
    })
}
