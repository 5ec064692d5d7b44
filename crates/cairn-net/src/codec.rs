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
    let mut message = vec![0u8; length];
    io.read_exact(&mut message).await?;
    Ok(message)
}

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
