//! A fault-injecting TCP proxy for end-to-end tests: it sits between two real
//! processes on this machine (usually both on 127.0.0.1) and, on command from
//! the test, adds latency, refuses new connections at random, holds back one
//! direction of traffic, or cuts the link entirely, then heals it. This machine
//! has no `netem`, so this is how the tests emulate slow and broken links.
//!
//! It must never corrupt a byte stream: inside a connection no byte is dropped,
//! duplicated or reordered, so a gRPC/HTTP/2 connection through it is always
//! parseable. Faults act on whole connections (refusal, reset) or on time
//! (latency, a one-way cut that holds bytes back until healed). It must never
//! outlive its handle: dropping the [`FaultProxy`] (or calling
//! [`FaultProxy::stop`]) closes the listener and every connection, and ends
//! every task it spawned. It must never be pointed at anything but the test's
//! own hosts (loopback, or a network namespace the test created).
//!
//! # Fault semantics
//!
//! - **Latency** ([`FaultProxy::set_latency`]): each chunk read from one side is
//!   written to the other side no earlier than `latency` after it was read, in
//!   each direction independently (a request/response round trip pays it
//!   twice). Chunks are pipelined: latency delays data, it does not divide
//!   throughput.
//! - **Drop rate** ([`FaultProxy::set_drop_rate`]): a probability in `0..=1`
//!   that a *new* connection is refused: it is accepted and reset at once
//!   (TCP RST), before any byte is forwarded and before the upstream is
//!   dialled. Existing connections are never affected. Dropping chunks inside
//!   a connection would corrupt HTTP/2 framing, so this proxy never does it.
//! - **One-way cut** ([`FaultProxy::cut`]): bytes in that direction stop being
//!   forwarded; the connection stays open and the other direction keeps
//!   flowing. Bytes sent meanwhile are held (in the proxy and, once its small
//!   buffer fills, in the kernel's socket buffers, so the sender eventually
//!   blocks as it would behind a real partition); [`FaultProxy::heal`] lets
//!   them through intact and in order. Cutting both directions one at a time
//!   gives a black hole that keeps connections open.
//! - **Full cut** ([`FaultProxy::cut_both`]): every existing connection is
//!   reset (RST on both sides), and every new connection is refused (accepted
//!   and reset at once; the listening port stays bound so that it is still
//!   ours after [`FaultProxy::heal`]).
//! - **Heal** ([`FaultProxy::heal`]): clears one-way and full cuts. Latency and
//!   drop rate are separate knobs and stay as set.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, sleep_until, timeout, Instant};

/// Largest chunk read from a socket in one go.
const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks a direction may hold in flight (read, not yet written) before it
/// stops reading, leaving the rest to the kernel's buffers.
const IN_FLIGHT_CHUNKS: usize = 64;
/// How long the proxy waits to reach the upstream for a new connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`FaultProxy::stop`] waits for connections to close themselves
/// before aborting them.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors), so that the
/// accept loop never spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// One direction of a proxied connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Bytes from the connecting client to the upstream server.
    ClientToServer,
    /// Bytes from the upstream server back to the client.
    ServerToClient,
}

/// The faults currently in force; a snapshot is returned by
/// [`FaultProxy::faults`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Delay added to every chunk, in each direction.
    pub latency: Duration,
    /// Probability that a new connection is refused (reset at once).
    pub drop_rate: f64,
    /// Client-to-server bytes are held back.
    pub cut_client_to_server: bool,
    /// Server-to-client bytes are held back.
    pub cut_server_to_client: bool,
    /// Full cut: existing connections were reset and new ones are refused.
    pub cut_both: bool,
    /// Bumped by every full cut (stop is one too); a connection accepted under
    /// one value is reset as soon as the value changes.
    epoch: u64,
}

impl Faults {
    fn holds(&self, direction: Direction) -> bool {
        match direction {
            Direction::ClientToServer => self.cut_client_to_server,
            Direction::ServerToClient => self.cut_server_to_client,
        }
    }
}

/// Handle to a running fault-injecting proxy. Dropping it stops the proxy.
#[derive(Debug)]
pub struct FaultProxy {
    local_addr: SocketAddr,
    upstream: SocketAddr,
    faults: watch::Sender<Faults>,
    live: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Binds `listen` (usually `127.0.0.1:0`) and starts forwarding every
    /// accepted connection to `upstream`, with no faults. Must be called
    /// inside a tokio runtime. The upstream is dialled once per accepted
    /// connection; if it cannot be reached the client's connection is reset.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let (faults, faults_rx) = watch::channel(Faults::default());
        let live = Arc::new(AtomicUsize::new(0));
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, upstream, faults_rx, Arc::clone(&live), shutdown_rx));
        Ok(FaultProxy { local_addr, upstream, faults, live, shutdown: Some(shutdown), task: Some(task) })
    }

    /// The address clients should connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address every connection is forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Connections currently open through the proxy (accepted and not yet
    /// closed; refused connections are never counted).
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// A snapshot of the faults in force.
    pub fn faults(&self) -> Faults {
        self.faults.borrow().clone()
    }

    /// Delays every chunk by `latency` in each direction, from now on (chunks
    /// already in flight keep the latency they were read under).
    pub fn set_latency(&self, latency: Duration) {
        self.faults.send_modify(|f| f.latency = latency);
    }

    /// Refuses each new connection with probability `rate`, clamped to
    /// `0..=1` (NaN counts as 0). Existing connections are unaffected.
    pub fn set_drop_rate(&self, rate: f64) {
        let rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        self.faults.send_modify(|f| f.drop_rate = rate);
    }

    /// Holds back bytes in `direction` on every connection, existing and new,
    /// without closing anything, until [`FaultProxy::heal`].
    pub fn cut(&self, direction: Direction) {
        self.faults.send_modify(|f| match direction {
            Direction::ClientToServer => f.cut_client_to_server = true,
            Direction::ServerToClient => f.cut_server_to_client = true,
        });
    }

    /// Full cut: resets every existing connection and refuses new ones until
    /// [`FaultProxy::heal`].
    pub fn cut_both(&self) {
        self.faults.send_modify(|f| {
            f.cut_both = true;
            f.epoch = f.epoch.wrapping_add(1);
        });
    }

    /// Clears every cut (one-way and full); held bytes flow again. Latency
    /// and drop rate stay as set.
    pub fn heal(&self) {
        self.faults.send_modify(|f| {
            f.cut_client_to_server = false;
            f.cut_server_to_client = false;
            f.cut_both = false;
        });
    }

    /// Stops the proxy and waits until it has: the listener is closed (new
    /// connections are refused by the kernel) and every connection has been
    /// reset, when this returns.
    pub async fn stop(mut self) {
        // A full cut: open connections reset themselves, and one accepted
        // before the loop sees the shutdown is refused rather than served.
        self.cut_both();
        if let Some(shutdown) = self.shutdown.take() {
            // The accept loop may already be gone; then there is nothing to tell.
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            // A JoinError here means the task panicked or was aborted: it has
            // ended either way, which is all stop promises.
            let _ = task.await;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Dropping `shutdown` and `faults` (with the struct) already tells
        // every task to finish; aborting the accept loop also drops its
        // JoinSet, which aborts every connection task, so nothing can linger
        // even if a task is stuck in a write.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections until told to shut down (or its handle is dropped),
/// refusing those the faults say to refuse.
async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    faults: watch::Receiver<Faults>,
    live: Arc<AtomicUsize>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // Resolves on `stop` and also when the handle is dropped.
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(_) => {
                        sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let (refuse, epoch) = {
                    let f = faults.borrow();
                    (f.cut_both || (f.drop_rate > 0.0 && rand::random::<f64>() < f.drop_rate), f.epoch)
                };
                if refuse {
                    reset(stream);
                    continue;
                }
                let guard = LiveGuard::new(Arc::clone(&live));
                connections.spawn(serve_connection(stream, upstream, faults.clone(), epoch, guard));
            }
        }
    }
    drop(listener);
    // Connections see the epoch change (or the closed channel) and reset
    // themselves; whatever has not finished within the grace is aborted.
    let drained = timeout(STOP_GRACE, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

/// Counts a live connection for as long as it exists.
struct LiveGuard(Arc<AtomicUsize>);

impl LiveGuard {
    fn new(live: Arc<AtomicUsize>) -> LiveGuard {
        live.fetch_add(1, Ordering::SeqCst);
        LiveGuard(live)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Closes `stream` with a TCP reset rather than an orderly FIN, so the peer
/// sees a broken connection, not a graceful end of stream.
fn reset(stream: TcpStream) {
    // If SO_LINGER cannot be set the close is an ordinary FIN: still closed.
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// How a connection ended.
enum Ending {
    /// Both directions reached end of stream and were shut down in order.
    Clean,
    /// A socket failed, or the proxy was cut or stopped: reset both sides.
    Broken,
}

/// Dials the upstream and forwards both directions until both end, or until
/// a full cut (epoch change) or the proxy's end.
async fn serve_connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    faults: watch::Receiver<Faults>,
    epoch: u64,
    _guard: LiveGuard,
) {
    let mut watch_cut = faults.clone();
    // Ok when the epoch moved on (full cut or stop); Err when the handle is
    // gone. Either way the connection must end.
    let cut = async move {
        let _ = watch_cut.wait_for(|f| f.epoch != epoch).await;
    };
    tokio::pin!(cut);

    let mut server = tokio::select! {
        _ = &mut cut => {
            reset(client);
            return;
        }
        dialled = timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)) => match dialled {
            Ok(Ok(server)) => server,
            Ok(Err(_)) | Err(_) => {
                reset(client);
                return;
            }
        },
    };
    // Small gRPC frames should not wait on Nagle; failure only costs speed.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let ending = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let both = async {
            tokio::try_join!(
                pipe(Direction::ClientToServer, client_read, server_write, faults.clone()),
                pipe(Direction::ServerToClient, server_read, client_write, faults.clone()),
            )
        };
        tokio::select! {
            _ = &mut cut => Ending::Broken,
            result = both => match result {
                Ok(_) => Ending::Clean,
                Err(_) => Ending::Broken,
            },
        }
    };
    match ending {
        Ending::Clean => {}
        Ending::Broken => {
            reset(client);
            reset(server);
        }
    }
}

/// Forwards one direction: reads chunks from `from`, and writes each to `to`
/// once its latency has passed and the direction is not cut. Ends after
/// forwarding end of stream (shutting `to` down for writing), or on error.
async fn pipe<R, W>(direction: Direction, from: R, to: W, faults: watch::Receiver<Faults>) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (chunks, pending) = mpsc::channel(IN_FLIGHT_CHUNKS);
    tokio::try_join!(
        read_chunks(direction, from, chunks, faults.clone()),
        write_chunks(direction, to, pending, faults),
    )?;
    Ok(())
}

/// A chunk read from one side, and when it may be written to the other.
type Chunk = (Instant, Vec<u8>);

async fn read_chunks<R>(
    direction: Direction,
    mut from: R,
    chunks: mpsc::Sender<Chunk>,
    mut faults: watch::Receiver<Faults>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
{
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        // While the direction is cut, leave bytes in the kernel's buffers.
        wait_open(&mut faults, direction).await?;
        let n = from.read(&mut buf).await?;
        if n == 0 {
            // End of stream: dropping `chunks` tells the writer.
            return Ok(());
        }
        let latency = faults.borrow().latency;
        if chunks.send((Instant::now() + latency, buf[..n].to_vec())).await.is_err() {
            // The writer is gone, so the connection is ending.
            return Ok(());
        }
    }
}

async fn write_chunks<W>(
    direction: Direction,
    mut to: W,
    mut pending: mpsc::Receiver<Chunk>,
    mut faults: watch::Receiver<Faults>,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    while let Some((due, chunk)) = pending.recv().await {
        sleep_until(due).await;
        // A chunk read before a cut began is held too, like a packet in flight.
        wait_open(&mut faults, direction).await?;
        to.write_all(&chunk).await?;
    }
    to.shutdown().await
}

/// Returns once `direction` is not cut; fails once the proxy is gone.
async fn wait_open(faults: &mut watch::Receiver<Faults>, direction: Direction) -> io::Result<()> {
    match faults.wait_for(|f| !f.holds(direction)).await {
        Ok(_) => Ok(()),
        Err(_) => Err(io::Error::other("fault proxy stopped")),
    }
}
