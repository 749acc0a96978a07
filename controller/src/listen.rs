//! Admission of TCP connections for the HTTP and gRPC servers alike. Each
//! connection holds a slot of [`Admission::slots`] from accept until it
//! closes (how slots are shared out among sources is
//! [`crate::slots`]'s); one accepted without a slot for its source is
//! closed at once. A connection that sends nothing within
//! [`Admission::first_byte_within`] is closed before a server sees it, so
//! idle connections free their place within seconds and a fresh request
//! finds room. Accepting never stops: when the process is out of
//! descriptors it logs, waits a moment and tries again.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::slots::{ConnectionSlots, Refusal, Slot};

/// Pause after a failed `accept` (out of descriptors, most likely) before
/// the next one, so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// At most one warning about refused connections or failed accepts per
/// this much time, with the count since the last one.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How connections to one server are admitted.
#[derive(Clone, Debug)]
pub struct Admission {
    /// The port's slots: one for each open connection.
    pub slots: ConnectionSlots,
    /// A connection that has sent nothing by then is closed.
    pub first_byte_within: Duration,
}

/// An admitted connection: the stream and its slot, given back when it is
/// dropped.
#[derive(Debug)]
pub struct Admitted {
    stream: TcpStream,
    _slot: Slot,
}

/// Accepts connections on `listener` (for the server named `server`, in
/// logs) and hands over the admitted ones, until the receiver is dropped;
/// the listening socket closes then.
pub fn admit(listener: TcpListener, admission: Admission, server: &'static str) -> mpsc::Receiver<Admitted> {
    // Room for every admitted connection, so handing one over never waits.
    let (tx, rx) = mpsc::channel(admission.slots.total().max(1));
    tokio::spawn(accept_loop(listener, admission, server, tx));
    rx
}

async fn accept_loop(listener: TcpListener, admission: Admission, server: &'static str, tx: mpsc::Sender<Admitted>) {
    let mut refused = [Tally::default(), Tally::default()];
    let mut failed = Tally::default();
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                if let Some(n) = failed.count() {
                    tracing::warn!(server, error = %e, failures = n, "cannot accept connections");
                }
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let slot = match admission.slots.admit(remote.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                drop(stream);
                warn_refused(server, &admission.slots, refusal, remote, &mut refused);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tx = tx.clone();
        tokio::spawn(async move {
            // Peek: what arrives stays in the socket for the server to read.
            let mut first = [0u8; 1];
            let sent = tokio::time::timeout(admission.first_byte_within, stream.peek(&mut first)).await;
            if matches!(sent, Ok(Ok(n)) if n > 0) {
                let _ = tx.send(Admitted { stream, _slot: slot }).await;
            }
        });
    }
}

/// Logs a refused connection, at most once per [`WARN_EVERY`] for each
/// reason, with the number refused since the last log.
fn warn_refused(
    server: &'static str,
    slots: &ConnectionSlots,
    refusal: Refusal,
    remote: std::net::SocketAddr,
    tallies: &mut [Tally; 2],
) {
    let (tally, what) = match refusal {
        Refusal::Full => (&mut tallies[0], "at the connection cap: closed new connections at once"),
        Refusal::SourceShare => {
            (&mut tallies[1], "a source at its share of connections: closed its new connections at once")
        }
    };
    if let Some(n) = tally.count() {
        let source = remote.ip();
        tracing::warn!(server, max_connections = slots.total(), %source, refused = n, "{what}");
    }
}

/// Counts occurrences and says when to log them: the first time, then at
/// most once per [`WARN_EVERY`], with the number since the last log.
#[derive(Default)]
struct Tally {
    since_log: u64,
    logged: Option<Instant>,
}

impl Tally {
    fn count(&mut self) -> Option<u64> {
        self.since_log += 1;
        if self.logged.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return None;
        }
        self.logged = Some(Instant::now());
        Some(std::mem::take(&mut self.since_log))
    }
}

impl Admitted {
    /// The address of the other end, when the socket still knows it.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.stream.peer_addr().ok()
    }
}

impl AsyncRead for Admitted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Connected for Admitted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::SlotPolicy;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn one_slot() -> ConnectionSlots {
        ConnectionSlots::new(&SlotPolicy::shared(1, 1))
    }

    /// A connection to `addr` from the loopback address `source`.
    async fn connect_from(source: [u8; 4], addr: std::net::SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(std::net::SocketAddr::from((source, 0))).expect("bind the source");
        socket.connect(addr).await.expect("connect")
    }

    async fn listening(admission: Admission) -> (std::net::SocketAddr, mpsc::Receiver<Admitted>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        (addr, admit(listener, admission, "test"))
    }

    /// Waits (bounded) until the peer closes `stream`; true if it did.
    async fn closed_by_peer(stream: &mut TcpStream) -> bool {
        let mut buf = [0u8; 8];
        matches!(tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_and_frees_its_place() {
        let admission = Admission { slots: one_slot(), first_byte_within: Duration::from_millis(200) };
        let (addr, mut rx) = listening(admission).await;
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        assert!(closed_by_peer(&mut idle).await, "the idle connection was not closed");
        // Its place is free again: a connection that speaks is admitted.
        let mut speaking = TcpStream::connect(addr).await.expect("connect");
        speaking.write_all(b"x").await.expect("write");
        let admitted = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(matches!(admitted, Ok(Some(_))), "the speaking connection was not admitted");
    }

    #[tokio::test]
    async fn beyond_the_cap_a_connection_is_closed_at_once() {
        let admission = Admission { slots: one_slot(), first_byte_within: Duration::from_secs(30) };
        let (addr, mut rx) = listening(admission).await;
        let mut first = TcpStream::connect(addr).await.expect("connect");
        first.write_all(b"x").await.expect("write");
        let held = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("admitted").expect("open");
        let mut second = TcpStream::connect(addr).await.expect("connect");
        assert!(closed_by_peer(&mut second).await, "a connection beyond the cap stayed open");
        drop(held);
    }

    #[tokio::test]
    async fn a_source_at_its_share_is_closed_at_once_and_another_source_is_admitted() {
        let admission = Admission {
            slots: ConnectionSlots::new(&SlotPolicy::shared(4, 1)),
            first_byte_within: Duration::from_secs(30),
        };
        let (addr, mut rx) = listening(admission.clone()).await;
        let mut first = connect_from([127, 0, 0, 2], addr).await;
        first.write_all(b"x").await.expect("write");
        let held = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("admitted").expect("open");
        let mut second = connect_from([127, 0, 0, 2], addr).await;
        assert!(closed_by_peer(&mut second).await, "a second connection from the same source stayed open");
        let mut other = connect_from([127, 0, 0, 3], addr).await;
        other.write_all(b"x").await.expect("write");
        let admitted = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(matches!(admitted, Ok(Some(_))), "a connection from another source was not admitted");
        assert_eq!(admission.slots.refused().source_share, 1);
        drop(held);
    }
}
