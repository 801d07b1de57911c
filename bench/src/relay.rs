//! Baseline (c): a central relay — what signer networks used before p2p. One TCP server; every node
//! keeps one connection to it and sends length-prefixed frames; the relay writes each frame to
//! every other connection. No encryption, no signatures, no gate: the cheapest possible fan-out,
//! and a single point of failure and of trust.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

use crate::cluster::{Cluster, DELIVERY_BUFFER};

/// Frames a slow connection may fall behind by before the relay drops it (bounded, like
/// everything else: a relay cannot buffer forever).
const RELAY_LAG: usize = 4096;

async fn read_frame(
    r: &mut (impl AsyncReadExt + Unpin),
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes exceeds {max}"
        )));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

async fn write_frame(w: &mut (impl AsyncWriteExt + Unpin), frame: &[u8]) -> std::io::Result<()> {
    w.write_all(&(frame.len() as u32).to_be_bytes()).await?;
    w.write_all(frame).await
}

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

pub async fn start(n: usize, max_message_bytes: usize) -> anyhow::Result<Cluster> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let max = max_message_bytes + 4096;
    let mut tasks = vec![tokio::spawn(serve(listener, max))];
    let (dtx, deliveries) = mpsc::channel(DELIVERY_BUFFER);
    let mut publish = Vec::new();
    for i in 0..n {
        let sock = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .context("connecting to the relay")??;
        sock.set_nodelay(true)?;
        let (r, w) = sock.into_split();
        let (ptx, mut prx) = mpsc::channel::<Vec<u8>>(1024);
        tasks.push(tokio::spawn(async move {
            let mut w = BufWriter::new(w);
            while let Some(p) = prx.recv().await {
                if write_frame(&mut w, &p).await.is_err() {
                    return;
                }
                if prx.is_empty() && w.flush().await.is_err() {
                    return;
                }
            }
        }));
        let dtx = dtx.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = BufReader::new(r);
            while let Ok(Some(frame)) = read_frame(&mut r, max).await {
                if dtx.send((i, frame)).await.is_err() {
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
