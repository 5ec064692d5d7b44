//! How fast this node reads what strangers send. Reading is where a flood costs the node
//! (decryption, demultiplexing, decoding, all before anything can judge a message), so each
//! inbound connection of a peer this node does not keep is read within a byte rate of its
//! own, and all of them within one rate together. A stranger that sends faster is simply read
//! more slowly: flow control (yamux's and QUIC's stream windows, then TCP's) keeps the rest on
//! the sender's side, where it costs this node nothing, and however many identities or
//! addresses an attacker brings, together they get no more of the node than the strangers'
//! rate. Connections this node dialled, and those of peers it keeps, are read at full speed,
//! and so are the streams this node opens on a stranger's connection (the answers to its own
//! sync requests, which it bounds itself): only what a stranger chooses to send is slowed.
//!
//! It owns the set of kept peers, which the gate fills, and the wrapper that transports put
//! around each connection's streams.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncWrite};
use libp2p::PeerId;
use libp2p::core::ConnectedPoint;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox, StreamMuxerEvent, SubstreamBox};

/// Bytes a connection is let read at once when it has the allowance; a stream waits until
/// this much (or what it asked for, if less) is allowed, so that a slow stream reads in
/// chunks rather than a byte at a time.
const CHUNK: usize = 4 << 10;

/// Read rates for strangers' connections (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Bytes per second read from one inbound connection of a stranger (a second's worth may
    /// come at once).
    pub per_connection: u32,
    /// Bytes per second read from all strangers' connections together.
    pub strangers: u32,
}

/// Peers this node keeps: shared by the gate, which decides them, and the read limits, which
/// do not apply to them.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeptPeers(Arc<Mutex<HashSet<PeerId>>>);

impl KeptPeers {
    fn lock(&self) -> MutexGuard<'_, HashSet<PeerId>> {
        lock(&self.0)
    }

    /// Adds `peer`; false if it was kept already.
    pub fn insert(&self, peer: PeerId) -> bool {
        self.lock().insert(peer)
    }

    pub fn remove(&self, peer: &PeerId) {
        self.lock().remove(peer);
    }

    pub fn contains(&self, peer: &PeerId) -> bool {
        self.lock().contains(peer)
    }
}

/// A byte allowance refilled at a rate, up to a second's worth. It may run below zero (a read
/// took more than was left); the debt is waited out.
#[derive(Debug)]
struct Bucket {
    per_second: f64,
    tokens: f64,
    filled: Instant,
}

impl Bucket {
    fn new(per_second: u32, now: Instant) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            tokens: f64::from(per_second.max(1)),
            filled: now,
        }
    }

    fn refill(&mut self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.filled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        self.filled = now;
        self.tokens
    }

    /// How long until `bytes` are allowed, from the tokens as last refilled.
    fn wait_for(&self, bytes: f64) -> Duration {
        Duration::from_secs_f64(((bytes - self.tokens) / self.per_second).max(0.0))
    }
}

/// The read limits of this node: the strangers' rate together, and the kept peers. Handed to
/// the transports, which wrap each inbound connection with [`Allowance::wrap`].
#[derive(Debug)]
pub(crate) struct Allowance {
    limits: ReadLimits,
    /// What a stream waits for: [`CHUNK`], or a whole second's worth where the rates are
    /// lower (a bucket never holds more).
    chunk: usize,
    kept: KeptPeers,
    strangers: Mutex<Bucket>,
    /// Times a stranger's stream had to wait, for the log.
    waits: AtomicU64,
}

impl Allowance {
    pub fn new(limits: ReadLimits, kept: KeptPeers) -> Arc<Self> {
        let smallest = limits.per_connection.min(limits.strangers).max(1);
        Arc::new(Self {
            limits,
            chunk: CHUNK.min(usize::try_from(smallest).unwrap_or(CHUNK)),
            kept,
            strangers: Mutex::new(Bucket::new(limits.strangers, Instant::now())),
            waits: AtomicU64::new(0),
        })
    }

    /// The connection's muxer, read within the limits if it is a stranger's inbound one.
    pub fn wrap(
        self: &Arc<Self>,
        peer: PeerId,
        endpoint: &ConnectedPoint,
        muxer: StreamMuxerBox,
    ) -> StreamMuxerBox {
        if endpoint.is_dialer() || self.kept.contains(&peer) {
            return muxer;
        }
        StreamMuxerBox::new(ThrottledMuxer {
            inner: muxer,
            connection: Arc::new(ConnectionAllowance {
                peer,
                node: Arc::clone(self),
                kept: AtomicBool::new(false),
                bucket: Mutex::new(Bucket::new(self.limits.per_connection, Instant::now())),
            }),
        })
    }

    /// Times strangers' streams waited since the last call.
    pub fn take_waits(&self) -> u64 {
        self.waits.swap(0, Ordering::Relaxed)
    }
}

/// One stranger's connection: its own bucket, and the node's.
#[derive(Debug)]
struct ConnectionAllowance {
    peer: PeerId,
    node: Arc<Allowance>,
    /// Set once the peer turns out to be kept: read at full speed from then on.
    kept: AtomicBool,
    bucket: Mutex<Bucket>,
}

impl ConnectionAllowance {
    /// How many bytes a read of up to `wanted` may take now, or how long to wait first.
    fn allow(&self, wanted: usize) -> Result<usize, Duration> {
        if self.kept.load(Ordering::Relaxed) {
            return Ok(wanted);
        }
        // Chunks, so that a slow stream is not read a byte at a time.
        let needed = wanted.min(self.node.chunk) as f64;
        let (allowed, wait) = {
            let now = Instant::now();
            let (mut own, mut all) = (lock(&self.bucket), lock(&self.node.strangers));
            let allowed = own.refill(now).min(all.refill(now));
            (allowed, own.wait_for(needed).max(all.wait_for(needed)))
        };
        if allowed >= needed {
            // `allowed` is at most a second's worth of a u32 rate.
            return Ok(wanted.min(allowed as usize));
        }
        if self.node.kept.contains(&self.peer) {
            self.kept.store(true, Ordering::Relaxed);
            return Ok(wanted);
        }
        self.node.waits.fetch_add(1, Ordering::Relaxed);
        Err(wait)
    }

    fn spend(&self, bytes: usize) {
        if bytes == 0 || self.kept.load(Ordering::Relaxed) {
            return;
        }
        let bytes = bytes as f64;
        lock(&self.bucket).tokens -= bytes;
        lock(&self.node.strangers).tokens -= bytes;
    }
}

/// A stranger's muxer whose streams read within its [`ConnectionAllowance`].
struct ThrottledMuxer {
    inner: StreamMuxerBox,
    connection: Arc<ConnectionAllowance>,
}

impl StreamMuxer for ThrottledMuxer {
    type Substream = ThrottledStream;
    type Error = io::Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        let stream = ready!(Pin::new(&mut this.inner).poll_inbound(cx))?;
        Poll::Ready(Ok(ThrottledStream::new(
            stream,
            Some(Arc::clone(&this.connection)),
        )))
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        let stream = ready!(Pin::new(&mut this.inner).poll_outbound(cx))?;
        // This node's own request: what comes back on it is what it asked for.
        Poll::Ready(Ok(ThrottledStream::new(stream, None)))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll(cx)
    }
}

/// A stream of a stranger's connection: reads of a stream the stranger opened wait for the
/// allowance; writes, and reads of streams this node opened, are untouched.
struct ThrottledStream {
    inner: SubstreamBox,
    /// None for a stream this node opened.
    connection: Option<Arc<ConnectionAllowance>>,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ThrottledStream {
    fn new(inner: SubstreamBox, connection: Option<Arc<ConnectionAllowance>>) -> Self {
        Self {
            inner,
            connection,
            wait: None,
        }
    }
}

impl AsyncRead for ThrottledStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(connection) = &this.connection else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        loop {
            if let Some(wait) = this.wait.as_mut() {
                ready!(wait.as_mut().poll(cx));
                this.wait = None;
            }
            match connection.allow(buf.len()) {
                Ok(allowed) => {
                    let read =
                        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf[..allowed]))?;
                    connection.spend(read);
                    return Poll::Ready(Ok(read));
                }
                Err(wait) => this.wait = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
    }
}

impl AsyncWrite for ThrottledStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stranger(node: &Arc<Allowance>) -> ConnectionAllowance {
        ConnectionAllowance {
            peer: PeerId::random(),
            node: Arc::clone(node),
            kept: AtomicBool::new(false),
            bucket: Mutex::new(Bucket::new(node.limits.per_connection, Instant::now())),
        }
    }

    /// Takes what a read of `wanted` bytes may take now, as a stream would.
    fn read(connection: &ConnectionAllowance, wanted: usize) -> Result<usize, Duration> {
        let allowed = connection.allow(wanted)?;
        connection.spend(allowed);
        Ok(allowed)
    }

    const LIMITS: ReadLimits = ReadLimits {
        per_connection: 8_000,
        strangers: 24_000,
    };

    #[test]
    fn a_strangers_connection_reads_a_seconds_worth_then_waits_for_its_rate() {
        let node = Allowance::new(LIMITS, KeptPeers::default());
        let connection = stranger(&node);
        assert_eq!(
            read(&connection, 1 << 20),
            Ok(8_000),
            "a second's worth at once"
        );
        let wait = read(&connection, 1 << 20).expect_err("the allowance is spent");
        // A chunk at 8 kB/s: about 512 ms, less the moment since the read.
        assert!(
            wait > Duration::from_millis(300) && wait <= Duration::from_millis(513),
            "{wait:?}"
        );
        assert_eq!(node.take_waits(), 1);
        assert_eq!(node.take_waits(), 0, "taking the count resets it");
    }

    #[test]
    fn all_strangers_together_share_one_rate() {
        let node = Allowance::new(LIMITS, KeptPeers::default());
        let connections: Vec<_> = (0..4).map(|_| stranger(&node)).collect();
        let read_at_once: usize = connections
            .iter()
            .map(|connection| read(connection, 1 << 20).unwrap_or(0))
            .sum();
        // Three connections' worth: the strangers' 24 kB, not 4 x 8 kB.
        assert!(
            (24_000..=24_000 + CHUNK).contains(&read_at_once),
            "{read_at_once}"
        );
        let fresh = stranger(&node);
        assert!(
            read(&fresh, 1 << 20).is_err(),
            "a new identity brings no new allowance"
        );
    }

    #[test]
    fn a_peer_that_turns_out_to_be_kept_reads_at_full_speed() {
        let kept = KeptPeers::default();
        let node = Allowance::new(LIMITS, kept.clone());
        let connection = stranger(&node);
        read(&connection, 1 << 20).expect("a second's worth");
        assert!(read(&connection, 1 << 20).is_err());
        kept.insert(connection.peer);
        assert_eq!(read(&connection, 1 << 20), Ok(1 << 20));
        assert_eq!(read(&connection, 1 << 20), Ok(1 << 20), "and stays so");
    }

    #[test]
    fn rates_below_a_chunk_still_read() {
        let slow = ReadLimits {
            per_connection: 1_000,
            strangers: 1_000,
        };
        let node = Allowance::new(slow, KeptPeers::default());
        let connection = stranger(&node);
        assert_eq!(read(&connection, 1 << 20), Ok(1_000), "a second's worth");
        let wait = read(&connection, 1 << 20).expect_err("then a wait");
        assert!(
            wait <= Duration::from_secs(1),
            "{wait:?}: never longer than a second"
        );
    }

    #[test]
    fn a_small_read_waits_for_no_more_than_it_asks() {
        let node = Allowance::new(LIMITS, KeptPeers::default());
        let connection = stranger(&node);
        read(&connection, 8_000 - 100).expect("nearly all of it");
        assert_eq!(read(&connection, 100), Ok(100), "what is left");
        assert!(read(&connection, 1).is_err(), "then nothing");
    }
}
