//! `conclave_net::read_bounded`, how every request-response protocol (headers, stem, catch-up)
//! reads a member's message: a hostile stream, delivered in pieces of any size, under a limit.
//!
//! Input: a big-endian u16 limit, a byte giving the largest piece a read returns (0 = 1), then
//! the stream. Properties: nothing panics; a stream longer than the limit is refused as too long
//! (never buffered past limit + 1); one within it decodes exactly as `HeaderReply::decode` does.
#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use conclave_net::{read_bounded, HeaderReply};
use futures::AsyncRead;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// A stream that hands out at most `piece` bytes per read.
struct Pieces<'a> {
    rest: &'a [u8],
    piece: usize,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = self.piece.min(buf.len()).min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Poll::Ready(Ok(n))
    }
}

fuzz_target!(|data: &[u8]| {
    let [a, b, piece, stream @ ..] = data else {
        return;
    };
    let limit = u64::from(u16::from_be_bytes([*a, *b]));
    let mut reader = Pieces {
        rest: stream,
        piece: usize::from(*piece).max(1),
    };
    let read =
        futures::executor::block_on(read_bounded::<_, HeaderReply>(&mut reader, limit, "reply"));
    let within = stream.len() as u64 <= limit;
    match read {
        Ok(reply) => {
            assert!(within, "read past the limit");
            assert_eq!(Ok(reply), HeaderReply::decode(stream));
        }
        Err(e) if within => assert!(HeaderReply::decode(stream).is_err(), "{e}"),
        Err(e) => assert!(e.to_string().contains("longer than"), "{e}"),
    }
    let consumed = (stream.len() - reader.rest.len()) as u64;
    assert!(
        consumed <= limit + 1,
        "read {consumed} bytes under a limit of {limit}"
    );
});
