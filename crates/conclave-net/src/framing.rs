//! One protobuf message per stream, bounded: how the request-response protocols (headers,
//! stem) read and write. The writer closes its side after the message; the reader reads to the
//! end but never more than the limit, so a member cannot make us buffer more than we allow.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// Reads one message of at most `limit` bytes; `what` names it in the error. Public so the fuzz
/// targets can drive it with hostile streams.
pub async fn read_bounded<T: AsyncRead + Unpin + Send, M: prost::Message + Default>(
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

/// A request-response codec of one protobuf request and one protobuf response, each bounded.
pub(crate) struct ProtoCodec<Req, Res> {
    max_request: u64,
    max_response: u64,
    /// What the two messages are called in errors.
    names: (&'static str, &'static str),
    _messages: PhantomData<fn() -> (Req, Res)>,
}

impl<Req, Res> ProtoCodec<Req, Res> {
    pub fn new(max_request: u64, max_response: u64, names: (&'static str, &'static str)) -> Self {
        ProtoCodec {
            max_request,
            max_response,
            names,
            _messages: PhantomData,
        }
    }
}

impl<Req, Res> Clone for ProtoCodec<Req, Res> {
    fn clone(&self) -> Self {
        ProtoCodec::new(self.max_request, self.max_response, self.names)
    }
}

impl<Req, Res> libp2p::request_response::Codec for ProtoCodec<Req, Res>
where
    Req: prost::Message + Default + Send + 'static,
    Res: prost::Message + Default + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Res;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Req> {
        read_bounded(io, self.max_request, self.names.0).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Res> {
        read_bounded(io, self.max_response, self.names.1).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Req,
    ) -> io::Result<()> {
        write_all(io, req.encode_to_vec()).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Res,
    ) -> io::Result<()> {
        write_all(io, res.encode_to_vec()).await
    }
}
