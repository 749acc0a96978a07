//! `etcd-elector`: the leader election an operator would otherwise build
//! on a consensus store, the way Patroni, Stolon and many in-house tools
//! do, written the way a careful user would with the maintained
//! `etcd-client` crate. The benchmark runs one per site next to our
//! controller and keepalived, as the anchor of a comparison; it is not
//! part of the product and must never be run as one.
//!
//! What it does, exactly:
//! - **Session.** It grants a lease with the TTL it is given (etcd raises
//!   a TTL below its minimum, `1.5 × election timeout` rounded up to whole
//!   seconds, and the TTL the grant returns is the one used) and keeps it
//!   alive on one stream, a keep-alive every third of the TTL, as etcd's
//!   Go client does.
//! - **Its own view of the lease.** The lease is valid until *the moment
//!   the last answered keep-alive was sent* plus the TTL that answer gave:
//!   counted from the send, not the answer, so it never believes in the
//!   lease longer than the server does. (The Go client counts from the
//!   answer.)
//! - **Campaign.** It campaigns on one election name with its site name
//!   as the value and that lease (etcd's v3election service), and leads
//!   once the campaign returns.
//! - **`GET /active`** answers 200 while it leads and its view of the
//!   lease is valid, 503 otherwise. The moment the lease runs out in its
//!   view, or the server says the lease is gone, it stops leading: the
//!   session is lost. It then revokes the lease (best effort, so the other
//!   site need not wait for the TTL) and starts a new session 100 ms
//!   later. A keep-alive stream that fails meanwhile (an endpoint went
//!   away) is opened again, on another endpoint if need be: a lease still
//!   valid is not given up for one lost connection. A campaign that fails
//!   ends the session instead (a new lease, a new candidate key): etcd
//!   deletes a cancelled campaign's key when it notices the cancel, which
//!   may be after a second campaign on the same lease reused that key.
//! - **Dead connections.** HTTP/2 keep-alive pings every 5 s (etcd's
//!   least, `--grpc-keepalive-min-time`), each awaited 1 s, so a call on a
//!   connection whose packets are dropped fails within about 6 s rather
//!   than waiting on TCP.
//!   Not leading, the 503's body says `standby` while it holds a session
//!   (it campaigns) and `no session` otherwise.
//! - **`POST /resign`** (a planned switchover) resigns the leadership,
//!   keeps the session and campaigns again behind whoever is waiting.
//! - **`GET /stats`** counts, as JSON, the times it started leading
//!   (`elected`), the keep-alives answered (`renewals`) and those answered
//!   with less than a third of the TTL left in its view (`near_misses`):
//!   the same near-miss our controller exports.
//!
//! Every loop is bounded: the process exits by itself after
//! `--max-seconds`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use axum::http::StatusCode;
use axum::routing::{get, post};
use clap::Parser;
use etcd_client::{
    Client, ConnectOptions, LeaderKey, LeaseKeepAliveResponse, LeaseKeepAliveStream, LeaseKeeper, ResignOptions,
};
use tokio::sync::Notify;
use tokio::time::{timeout, Instant};

#[derive(Parser)]
#[command(name = "etcd-elector", about = "A leader election on etcd, for the failover benchmark")]
struct Args {
    /// This site's name: the campaign's value.
    #[arg(long)]
    name: String,
    /// etcd client endpoints, comma-separated (host:port).
    #[arg(long, value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// The lease TTL asked for, in whole seconds (etcd's unit).
    #[arg(long, default_value_t = 3)]
    ttl: i64,
    /// The election's name.
    #[arg(long, default_value = "failover-bench")]
    election: String,
    /// Where `/active` and `/resign` are served.
    #[arg(long)]
    listen: SocketAddr,
    /// Exit after this many seconds.
    #[arg(long, default_value_t = 6 * 3600)]
    max_seconds: u64,
}

/// Whether this elector leads, as `/active` reports it.
#[derive(Default)]
struct Leadership {
    /// Leading until then (this elector's view of its lease), or not.
    until: Mutex<Option<Instant>>,
    /// A `POST /resign` arrived.
    resign: Notify,
    /// A session (a lease kept alive) is held.
    in_session: AtomicBool,
    elected: AtomicU64,
    renewals: AtomicU64,
    near_misses: AtomicU64,
}

impl Leadership {
    fn lead_until(&self, deadline: Instant) {
        if let Ok(mut u) = self.until.lock() {
            *u = Some(deadline);
        }
    }

    fn step_down(&self) {
        if let Ok(mut u) = self.until.lock() {
            *u = None;
        }
    }

    fn leads(&self) -> bool {
        self.until.lock().is_ok_and(|u| u.is_some_and(|d| Instant::now() < d))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.ttl >= 1, "--ttl must be at least 1 second (etcd's TTLs are whole seconds)");
    let leadership = Arc::new(Leadership::default());
    let app = axum::Router::new()
        .route(
            "/active",
            get({
                let l = leadership.clone();
                move || async move {
                    if l.leads() {
                        (StatusCode::OK, "active\n")
                    } else if l.in_session.load(Ordering::Relaxed) {
                        (StatusCode::SERVICE_UNAVAILABLE, "standby\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "no session\n")
                    }
                }
            }),
        )
        .route(
            "/resign",
            post({
                let l = leadership.clone();
                move || async move {
                    if l.leads() {
                        l.resign.notify_one();
                        (StatusCode::OK, "resigning\n")
                    } else {
                        (StatusCode::CONFLICT, "not leading\n")
                    }
                }
            }),
        )
        .route(
            "/stats",
            get({
                let l = leadership.clone();
                move || async move {
                    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
                    let (elected, renewals, near) = (count(&l.elected), count(&l.renewals), count(&l.near_misses));
                    format!("{{\"elected\":{elected},\"near_misses\":{near},\"renewals\":{renewals}}}\n")
                }
            }),
        );
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let stop = Instant::now() + Duration::from_secs(args.max_seconds);
    while Instant::now() < stop {
        let outcome = tokio::time::timeout_at(stop, session(&args, &leadership)).await;
        leadership.step_down();
        match outcome {
            Err(_) => break,
            Ok(Err(e)) => eprintln!("etcd-elector {}: session lost: {e:#}", args.name),
            Ok(Ok(())) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// One session: a lease, kept alive while it campaigns and leads. Returns
/// (an error saying why) when the session is lost, having stepped down and
/// tried to revoke the lease.
async fn session(args: &Args, leadership: &Leadership) -> anyhow::Result<()> {
    let asked = Duration::from_secs(args.ttl.unsigned_abs());
    // HTTP/2 pings find a connection whose packets are dropped (an isolated
    // member), which TCP alone would not for minutes: a call stuck on it
    // then fails and is made again elsewhere. Every 5 s is the most etcd
    // allows (`--grpc-keepalive-min-time`); an answer is awaited 1 s.
    let options = ConnectOptions::new()
        .with_connect_timeout(asked)
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(1))
        .with_keep_alive_while_idle(true);
    let mut client =
        timeout(asked, Client::connect(args.endpoints.clone(), Some(options))).await.context("connecting")??;
    let sent = Instant::now();
    let grant = timeout(asked, client.lease_grant(args.ttl, None)).await.context("granting a lease")??;
    let lease = grant.id();
    let ttl = Duration::from_secs(u64::try_from(grant.ttl()).context("a negative TTL granted")?);
    eprintln!("etcd-elector {}: lease {lease:x} granted, TTL {} s (asked {})", args.name, grant.ttl(), args.ttl);
    let result = keep_and_lead(args, leadership, &mut client, lease, ttl, sent + ttl).await;
    leadership.step_down();
    leadership.in_session.store(false, Ordering::Relaxed);
    let _ = timeout(Duration::from_secs(1), client.lease_revoke(lease)).await;
    result
}

/// Keeps `lease` (of `ttl`) alive, valid until `deadline` so far, campaigns,
/// leads, resigns when asked and campaigns again; returns when the lease is
/// lost. A failed keep-alive stream or campaign (an endpoint that went
/// away, say) is opened again, on another endpoint if need be, for as long
/// as the lease is valid in this elector's view: only the lease running
/// out, or etcd saying it is gone, ends the session.
async fn keep_and_lead(
    args: &Args,
    leadership: &Leadership,
    client: &mut Client,
    lease: i64,
    ttl: Duration,
    mut deadline: Instant,
) -> anyhow::Result<()> {
    let mut stream = Some(
        timeout(deadline - Instant::now(), client.lease_keep_alive(lease))
            .await
            .context("opening the keep-alive stream")??,
    );
    leadership.in_session.store(true, Ordering::Relaxed);
    let campaign = |mut c: Client| {
        let (election, name) = (args.election.clone(), args.name.clone());
        Box::pin(async move { c.campaign(election, name, lease).await })
    };
    let mut campaigning = campaign(client.clone());
    let mut leader: Option<LeaderKey> = None;
    let period = ttl / 3;
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(10)));
    // When each unanswered keep-alive was sent: answers come in order.
    let mut sent: VecDeque<Instant> = VecDeque::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => bail!("the lease ran out with no keep-alive answered"),
            _ = tick.tick(), if stream.is_some() => {
                if let Some((keeper, _)) = stream.as_mut() {
                    sent.push_back(Instant::now());
                    if let Err(e) = keeper.keep_alive().await {
                        eprintln!("etcd-elector {}: sending a keep-alive failed, reopening: {e}", args.name);
                        (stream, sent) = (None, VecDeque::new());
                    }
                }
            }
            // No stream: open one again every 50 ms, each try on the next
            // endpoint, and keep the lease alive on it at once.
            _ = tokio::time::sleep(Duration::from_millis(50)), if stream.is_none() => {
                match timeout(deadline - Instant::now(), client.lease_keep_alive(lease)).await {
                    Ok(Ok(reopened)) => {
                        stream = Some(reopened);
                        tick.reset_immediately();
                    }
                    Ok(Err(e)) => eprintln!("etcd-elector {}: reopening the keep-alive stream: {e}", args.name),
                    Err(_) => {}
                }
            }
            answer = next_answer(&mut stream) => match answer {
                Ok(Some(answer)) => {
                    if answer.ttl() <= 0 {
                        bail!("etcd says the lease is gone");
                    }
                    let at = sent.pop_front().context("a keep-alive answer nobody asked for")?;
                    leadership.renewals.fetch_add(1, Ordering::Relaxed);
                    if deadline.saturating_duration_since(Instant::now()) < ttl / 3 {
                        leadership.near_misses.fetch_add(1, Ordering::Relaxed);
                    }
                    deadline = deadline.max(at + Duration::from_secs(answer.ttl().unsigned_abs()));
                    if leader.is_some() {
                        leadership.lead_until(deadline);
                    }
                }
                failed => {
                    let why = failed.err().map_or("it ended".to_owned(), |e| e.to_string());
                    eprintln!("etcd-elector {}: the keep-alive stream failed, reopening: {why}", args.name);
                    (stream, sent) = (None, VecDeque::new());
                }
            },
            won = &mut campaigning, if leader.is_none() => match won {
                Ok(won) => {
                    leader = Some(won.leader().cloned().context("a campaign answer without a leader key")?);
                    leadership.lead_until(deadline);
                    leadership.elected.fetch_add(1, Ordering::Relaxed);
                    eprintln!("etcd-elector {}: leading", args.name);
                }
                // Not campaigned again on this lease: the failed call may
                // live on at its member, and when that member sees it
                // cancelled it deletes this lease's candidate key, which a
                // second campaign on the same lease would reuse. A new
                // session campaigns under a new key.
                Err(e) => bail!("campaigning failed: {e}"),
            },
            _ = leadership.resign.notified(), if leader.is_some() => {
                leadership.step_down();
                let options = ResignOptions::new().with_leader(leader.take().context("leading without a key")?);
                timeout(deadline - Instant::now(), client.resign(Some(options))).await.context("resigning")??;
                eprintln!("etcd-elector {}: resigned", args.name);
                campaigning = campaign(client.clone());
            }
        }
    }
}

/// The next keep-alive answer of `stream`; never, while there is none.
async fn next_answer(
    stream: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
) -> Result<Option<LeaseKeepAliveResponse>, etcd_client::Error> {
    match stream {
        Some((_, answers)) => answers.message().await,
        None => std::future::pending().await,
    }
}
