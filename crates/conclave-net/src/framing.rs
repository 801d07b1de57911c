//! One protobuf message per stream, bounded: how the request-response protocols (headers,
//! stem) read and write. The writer closes its side after the message; the reader reads to the
//! end but never more than the limit, so a member cannot make us buffer more than we allow.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads one message of at most `limit` bytes; `what` names it in the error.
pub(crate) async fn read_bounded<T: AsyncRead + Unpin + Send, M: prost::Message + Default>(
    io: &mut T,
    limit: u64,
    what: &str,
) -> io::Result<M> {
    let mut buf = Vec::new();
    io.take(limit + 1).read_to_end(&mut buf).await?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} longer than {limit} bytes"),
        ));
    }
    M::decode(buf.as_slice()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes one encoded message and closes the writing side.
pub(crate) async fn write_all<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: Vec<u8>,
) -> io::Result<()> {
    io.write_all(&bytes).await?;
    io.close().await
}
