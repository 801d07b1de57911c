//! Length-prefixed frames: how the central relay's clients talk to its server, and how the
//! harness talks to its node processes (a tag byte, then the body; [`crate::process`] describes
//! that protocol).

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

/// Harness → child: the node's [`crate::process`] setup (JSON).
pub(crate) const SETUP: u8 = 1;
/// Harness → child: every node's listen addresses by index, or the relay server's (JSON).
pub(crate) const ADDRS: u8 = 2;
/// Harness → child: a payload to publish.
pub(crate) const PUBLISH: u8 = 3;
/// Harness → child: a usage request (empty); child → harness: its [`crate::stats::Usage`] (JSON).
pub(crate) const USAGE: u8 = 4;
/// Child → harness: the node's listen addresses (JSON; none for a relay client).
pub(crate) const LISTENING: u8 = 5;
/// Child → harness: the node is connected to and subscribed with every other node.
pub(crate) const READY: u8 = 6;
/// Child → harness: a delivery — its stamp (8 bytes), then the payload's header.
pub(crate) const DELIVERED: u8 = 7;

/// Frames carry at most a payload and its framing.
pub(crate) const MAX_FRAME: usize = crate::MAX_MESSAGE + 4096;

/// A frame of the harness–child protocol: the tag, then the body.
pub(crate) fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(1 + body.len());
    frame.push(tag);
    frame.extend_from_slice(body);
    frame
}

pub(crate) async fn read_frame(
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

pub(crate) async fn write_frame(
    w: &mut (impl AsyncWriteExt + Unpin),
    frame: &[u8],
) -> std::io::Result<()> {
    w.write_all(&(frame.len() as u32).to_be_bytes()).await?;
    w.write_all(frame).await
}

/// Writes each frame `rx` yields, flushing once nothing else is queued: batches under load, no
/// delay when idle. Every framed pipe of the harness (relay clients, node processes) uses it.
pub(crate) async fn write_frames(w: impl AsyncWriteExt + Unpin, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut w = BufWriter::new(w);
    while let Some(frame) = rx.recv().await {
        if write_frame(&mut w, &frame).await.is_err() {
            return;
        }
        if rx.is_empty() && w.flush().await.is_err() {
            return;
        }
    }
}
