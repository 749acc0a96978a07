//! Connection floods from one loopback source address, as a hostile host
//! would send them at a node's ports: keep-alive HTTP clients that each
//! hold a connection and refresh it with a request every few seconds,
//! reconnecting whenever it is closed ([`Flood::keep_alive`]), and a steady
//! stream of connections that send a few opening bytes (or none) and then
//! nothing, held open until the server closes them ([`Flood::silent`]). Each source address is its own
//! host to the server (127.0.0.2, 127.0.0.4, ...: all of 127.0.0.0/8 is
//! loopback on Linux).
//!
//! It must only be pointed at the test's own loopback hosts. Every task
//! ends when the flood is stopped or after its `max_run`, whichever comes
//! first; every wait inside is bounded.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

/// How long one connect, one request or one response may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a silent connection is held at most when the server never
/// closes it.
const SILENT_HOLD: Duration = Duration::from_secs(30);
/// Largest response head read.
const HEAD_MAX: usize = 16 * 1024;

/// What a flood has done so far.
#[derive(Debug, Default)]
pub struct Tally {
    /// Connections established (TCP handshake done).
    pub opened: AtomicU64,
    /// Connections the server closed (or reset).
    pub closed_by_server: AtomicU64,
    /// Requests answered (keep-alive floods).
    pub answered: AtomicU64,
    /// Connections open now that the server has not closed (keep-alive:
    /// ones that have had a request answered).
    pub held: AtomicUsize,
    /// The most held at once.
    pub held_most: AtomicUsize,
}

impl Tally {
    fn hold(&self) {
        let now = self.held.fetch_add(1, Ordering::Relaxed) + 1;
        self.held_most.fetch_max(now, Ordering::Relaxed);
    }

    fn release(&self) {
        self.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A running flood; stop it with [`Flood::stop`] (dropping it stops its
/// tasks too).
pub struct Flood {
    tally: Arc<Tally>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Flood {
    /// `clients` keep-alive clients from `source` to the HTTP server at
    /// `addr`, each sending `GET /healthz` every `refresh` on its own
    /// connection, and opening a new one `refresh` after the server closed
    /// the last. They start spread over one `refresh`.
    pub fn keep_alive(addr: SocketAddr, source: IpAddr, clients: usize, refresh: Duration, max_run: Duration) -> Flood {
        let (stop, stopped) = watch::channel(false);
        let tally = Arc::new(Tally::default());
        let deadline = Instant::now() + max_run;
        let mut tasks = JoinSet::new();
        for i in 0..clients {
            let offset = refresh.mul_f64(i as f64 / clients.max(1) as f64);
            let (tally, stopped) = (Arc::clone(&tally), stopped.clone());
            tasks.spawn(async move {
                if pause(offset, deadline, stopped.clone()).await {
                    keep_alive_client(addr, source, refresh, deadline, &tally, stopped).await;
                }
            });
        }
        Flood { tally, stop, tasks }
    }

    /// A new connection from `source` to `addr` every `every`, each sending
    /// `opening` (e.g. the first byte of a TLS handshake, so a server waits
    /// for the rest) and then nothing, held until the server closes it.
    pub fn silent(
        addr: SocketAddr,
        source: IpAddr,
        opening: &'static [u8],
        every: Duration,
        max_run: Duration,
    ) -> Flood {
        let (stop, stopped) = watch::channel(false);
        let tally = Arc::new(Tally::default());
        let deadline = Instant::now() + max_run;
        let mut tasks = JoinSet::new();
        let (counted, stopping) = (Arc::clone(&tally), stopped.clone());
        tasks.spawn(async move {
            let mut held = JoinSet::new();
            while pause(every, deadline, stopping.clone()).await {
                let (tally, stopped) = (Arc::clone(&counted), stopping.clone());
                held.spawn(async move { silent_connection(addr, source, opening, deadline, &tally, stopped).await });
                // Reap the finished ones so the set stays as large as what
                // is held.
                while held.try_join_next().is_some() {}
            }
            // Each ends at once when stopped, else by the deadline.
            while held.join_next().await.is_some() {}
        });
        Flood { tally, stop, tasks }
    }

    /// What the flood has done so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Stops every client, waits for them to end and closes their
    /// connections.
    pub async fn stop(mut self) -> Arc<Tally> {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        Arc::clone(&self.tally)
    }
}

/// Waits `d`; false if the flood was stopped or `deadline` passed meanwhile.
async fn pause(d: Duration, deadline: Instant, mut stopped: watch::Receiver<bool>) -> bool {
    let until = (Instant::now() + d).min(deadline);
    tokio::select! {
        _ = stopped.wait_for(|s| *s) => false,
        () = tokio::time::sleep_until(until) => Instant::now() < deadline,
    }
}

/// A TCP connection to `addr` from `source`, within [`STEP_TIMEOUT`].
pub async fn connect_from(source: IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = if source.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(source, 0))?;
    timeout(STEP_TIMEOUT, socket.connect(addr)).await.map_err(|_| io::ErrorKind::TimedOut)?
}

async fn keep_alive_client(
    addr: SocketAddr,
    source: IpAddr,
    refresh: Duration,
    deadline: Instant,
    tally: &Tally,
    stopped: watch::Receiver<bool>,
) {
    loop {
        if let Ok(mut stream) = connect_from(source, addr).await {
            tally.opened.fetch_add(1, Ordering::Relaxed);
            let mut holding = false;
            // One request per refresh until the server closes the
            // connection, the flood stops or its time is up.
            loop {
                if request_healthz(&mut stream).await.is_err() {
                    tally.closed_by_server.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                tally.answered.fetch_add(1, Ordering::Relaxed);
                if !holding {
                    holding = true;
                    tally.hold();
                }
                if !pause(refresh, deadline, stopped.clone()).await {
                    break;
                }
            }
            if holding {
                tally.release();
            }
        }
        if !pause(refresh, deadline, stopped.clone()).await {
            return;
        }
    }
}

/// Sends `GET /healthz` on a kept-alive connection and reads the whole
/// answer (head, then as many body bytes as it announces).
async fn request_healthz(stream: &mut TcpStream) -> io::Result<()> {
    let request = b"GET /healthz HTTP/1.1\r\nHost: flood\r\n\r\n";
    timeout(STEP_TIMEOUT, stream.write_all(request)).await.map_err(|_| io::ErrorKind::TimedOut)??;
    timeout(STEP_TIMEOUT, read_response(stream)).await.map_err(|_| io::ErrorKind::TimedOut)?
}

async fn read_response(stream: &mut TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > HEAD_MAX {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut missing = (head_end + length).saturating_sub(buf.len());
    while missing > 0 {
        let n = stream.read(&mut chunk[..missing.min(1024)]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        missing -= n;
    }
    Ok(())
}

async fn silent_connection(
    addr: SocketAddr,
    source: IpAddr,
    opening: &[u8],
    deadline: Instant,
    tally: &Tally,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(mut stream) = connect_from(source, addr).await else { return };
    tally.opened.fetch_add(1, Ordering::Relaxed);
    if timeout(STEP_TIMEOUT, stream.write_all(opening)).await.is_err() {
        return;
    }
    tally.hold();
    let until = (Instant::now() + SILENT_HOLD).min(deadline);
    let mut byte = [0u8; 1];
    tokio::select! {
        _ = stopped.wait_for(|s| *s) => {}
        () = tokio::time::sleep_until(until) => {}
        _ = stream.read(&mut byte) => {
            tally.closed_by_server.fetch_add(1, Ordering::Relaxed);
        }
    }
    tally.release();
}
