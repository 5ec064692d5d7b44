//! The byte codec of Cairn's request-response protocols (sync and hello): each message is a
//! u32 big-endian length and that many bytes, refused before reading if over its limit. What
//! the bytes mean is the node's business (`cairn-sync`, the node's hello).

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

/// Length-prefixed byte messages with a limit for each direction.
#[derive(Debug, Clone)]
pub struct BytesCodec {
    pub request_limit: usize,
    pub response_limit: usize,
}

async fn read_message<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    io.read_exact(&mut length).await?;
    let length = u32::from_be_bytes(length) as usize;
    if length > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {length} bytes is over the {limit}-byte limit"),
        ));
    }
    // Grown as bytes arrive, never allocated at the declared length up front: a peer that
    // declares the limit and sends nothing costs a small buffer, not the limit.
    let mut message = Vec::with_capacity(length.min(FIRST_READ));
    io.take(length as u64).read_to_end(&mut message).await?;
    if message.len() < length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "a message declared {length} bytes and ended after {}",
                message.len()
            ),
        ));
    }
    Ok(message)
}

/// The buffer a message is read into at first.
const FIRST_READ: usize = 64 * 1024;

async fn write_message<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    message: &[u8],
    limit: usize,
) -> io::Result<()> {
    if message.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a message over its limit",
        ));
    }
    io.write_all(&(message.len() as u32).to_be_bytes()).await?;
    io.write_all(message).await?;
    io.close().await
}

impl Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_message(io, self.request_limit).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_message(io, self.response_limit).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()> {
        write_message(io, &request, self.request_limit).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()> {
        write_message(io, &response, self.response_limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_read_whole_and_a_short_one_is_an_error() {
        futures::executor::block_on(async {
            let mut whole = Vec::new();
            whole.extend_from_slice(&5u32.to_be_bytes());
            whole.extend_from_slice(b"hello");
            let read = read_message(&mut &whole[..], 1 << 20).await.expect("read");
            assert_eq!(read, b"hello");

            // Declares 8 MiB, sends ten bytes: an error, after reading only what came.
            let mut short = Vec::new();
            short.extend_from_slice(&(8u32 << 20).to_be_bytes());
            short.extend_from_slice(&[7; 10]);
            let err = read_message(&mut &short[..], 16 << 20)
                .await
                .expect_err("short");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

            let mut over = Vec::new();
            over.extend_from_slice(&(2u32 << 20).to_be_bytes());
            let err = read_message(&mut &over[..], 1 << 20)
                .await
                .expect_err("over");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        });
    }
}
