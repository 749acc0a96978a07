//! A split-brain prober for end-to-end tests: while a scenario runs, it asks
//! every site's "am I active?" HTTP endpoint, all at once, at a fixed
//! interval, and records per round which sites answered `200 OK`. A round in
//! which more than one site answered 200 is a witnessed split brain, the one
//! outcome the failover controller must never produce.
//!
//! It must never run unbounded: its sampling loop ends when the [`Prober`] is
//! stopped or dropped, and in any case after a hard cap
//! ([`DEFAULT_MAX_RUN`] unless set), and each probe has a short timeout. It
//! must never probe anything but the test's own hosts (loopback, or a network
//! namespace the test created), and it never retries: a probe that fails or
//! times out simply did not answer 200 in that round.
//!
//! # Resolution
//!
//! Probes of one round are sent together, on fresh connections (no pooling,
//! so a cut link shows at once), but they reach their servers a few
//! milliseconds apart. A hand-over faster than that spread can therefore show
//! as a both-active round although the two sites never overlapped; a real
//! overlap shorter than the interval can go unseen. The report keeps each
//! probe's outcome and latency so a failure can be judged.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::Uri;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{interval, sleep_until, Instant, MissedTickBehavior};

use crate::http_client::{self, HttpClient, HttpError};

/// Timeout of one probe, as used by [`Prober::start`].
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a prober samples at most, as used by [`Prober::start`].
pub const DEFAULT_MAX_RUN: Duration = Duration::from_secs(30 * 60);
/// Shortest sampling interval; shorter ones are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// What one URL answered in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `200 OK`: the site says it is active.
    Active,
    /// Any other HTTP status.
    Status(u16),
    /// No response within the probe timeout.
    Timeout,
    /// The request failed (refused, reset, invalid URL, ...).
    Error(String),
}

/// One probe's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The URL probed.
    pub url: String,
    /// What it answered.
    pub outcome: Outcome,
    /// Time from the start of the round to the answer (or the failure).
    pub latency: Duration,
}

/// One sampling round: every URL probed once, concurrently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRound {
    /// Round number, from 0.
    pub index: u64,
    /// Wall-clock time the round started.
    pub at: SystemTime,
    /// Time from the prober's start to the round's start.
    pub since_start: Duration,
    /// One probe per URL, in the order the URLs were given.
    pub probes: Vec<Probe>,
}

impl ProbeRound {
    /// The URLs that answered 200 in this round, in the order given.
    pub fn active(&self) -> Vec<&str> {
        self.probes.iter().filter(|p| p.outcome == Outcome::Active).map(|p| p.url.as_str()).collect()
    }

    /// Whether more than one URL answered 200 in this round.
    pub fn several_active(&self) -> bool {
        self.probes.iter().filter(|p| p.outcome == Outcome::Active).count() > 1
    }
}

impl fmt::Display for ProbeRound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unix = self.at.duration_since(UNIX_EPOCH).unwrap_or_default();
        write!(
            f,
            "round {} at +{:.3}s (unix {}.{:03}): active {:?}",
            self.index,
            self.since_start.as_secs_f64(),
            unix.as_secs(),
            unix.subsec_millis(),
            self.active()
        )
    }
}

/// What a prober saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// The URLs probed, in the order given.
    pub urls: Vec<String>,
    /// Every completed round, in order.
    pub rounds: Vec<ProbeRound>,
    /// The rounds in which more than one URL answered 200.
    pub both_active_rounds: Vec<ProbeRound>,
    /// Whether sampling ended because it hit its hard cap.
    pub hit_cap: bool,
}

impl ProbeReport {
    fn new(urls: Vec<String>, rounds: Vec<ProbeRound>, hit_cap: bool) -> ProbeReport {
        let both_active_rounds = rounds.iter().filter(|r| r.several_active()).cloned().collect();
        ProbeReport { urls, rounds, both_active_rounds, hit_cap }
    }

    /// Panics, naming the offending rounds, if any round saw more than one
    /// URL answer 200. Also panics if no round was sampled at all, since a
    /// check over nothing would pass without having looked.
    pub fn assert_never_two_active(&self) {
        assert!(
            !self.rounds.is_empty(),
            "split-brain check is vacuous: the prober completed no round over {:?}",
            self.urls
        );
        if self.both_active_rounds.is_empty() {
            return;
        }
        const SHOWN: usize = 10;
        let shown: Vec<String> = self.both_active_rounds.iter().take(SHOWN).map(|r| format!("  {r}")).collect();
        panic!(
            "split brain: {} of {} rounds had more than one URL answering 200 (of {:?}); {}:\n{}",
            self.both_active_rounds.len(),
            self.rounds.len(),
            self.urls,
            if self.both_active_rounds.len() > SHOWN { "first ones" } else { "all of them" },
            shown.join("\n")
        );
    }
}

impl ProbeReport {
    /// Panics, naming the offending rounds, unless `url` answered 200 in
    /// every round (and some round was sampled): nothing interrupted it.
    pub fn assert_always_active(&self, url: &str) {
        assert!(!self.rounds.is_empty(), "check is vacuous: the prober completed no round over {:?}", self.urls);
        let gaps: Vec<String> =
            self.rounds.iter().filter(|r| !r.active().contains(&url)).take(10).map(|r| format!("  {r}")).collect();
        assert!(gaps.is_empty(), "{url} did not answer 200 in every round; first gaps:\n{}", gaps.join("\n"));
    }

    /// Panics, naming the offending rounds, if any round saw a URL outside
    /// `allowed` answer 200: the check that "nothing moved" over the whole
    /// window the prober ran, not one look at its end. Panics too if no
    /// round was sampled.
    pub fn assert_only_active(&self, allowed: &[String]) {
        assert!(!self.rounds.is_empty(), "check is vacuous: the prober completed no round over {:?}", self.urls);
        let moved: Vec<String> = self
            .rounds
            .iter()
            .filter(|r| r.active().iter().any(|url| !allowed.iter().any(|a| a == url)))
            .take(10)
            .map(|r| format!("  {r}"))
            .collect();
        assert!(
            moved.is_empty(),
            "a URL outside {allowed:?} answered 200 in {} rounds; first ones:\n{}",
            moved.len(),
            moved.join("\n")
        );
    }
}

/// Rounds recorded so far, shared between the sampling task and the handle.
type Rounds = Arc<Mutex<Vec<ProbeRound>>>;

/// How the sampling loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Stopped,
    HitCap,
}

/// Handle to a running prober. Dropping it stops the sampling loop.
#[derive(Debug)]
pub struct Prober {
    urls: Vec<String>,
    rounds: Rounds,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Ending>>,
}

impl Prober {
    /// Starts sampling every URL each `interval`, with a
    /// [`DEFAULT_PROBE_TIMEOUT`] per probe and a [`DEFAULT_MAX_RUN`] cap.
    /// Must be called inside a tokio runtime. A URL that does not parse is
    /// recorded as an [`Outcome::Error`] in every round.
    pub fn start(urls: Vec<String>, interval: Duration) -> Prober {
        Prober::start_with(urls, interval, DEFAULT_PROBE_TIMEOUT, DEFAULT_MAX_RUN)
    }

    /// Like [`Prober::start`], with the probe timeout and the hard cap on the
    /// sampling time given.
    pub fn start_with(urls: Vec<String>, interval: Duration, probe_timeout: Duration, max_run: Duration) -> Prober {
        let rounds: Rounds = Arc::default();
        let kept = Arc::clone(&rounds);
        let mut prober = Prober::watch(urls, interval, probe_timeout, max_run, move |round| lock(&kept).push(round));
        prober.rounds = rounds;
        prober
    }

    /// Like [`Prober::start_with`], but hands every round to `on_round`
    /// instead of keeping it: for long runs that only need what changed.
    /// The handle's reports then hold no rounds.
    pub fn watch(
        urls: Vec<String>,
        interval: Duration,
        probe_timeout: Duration,
        max_run: Duration,
        on_round: impl FnMut(ProbeRound) + Send + 'static,
    ) -> Prober {
        let (stop, stop_rx) = oneshot::channel();
        let targets = urls.iter().map(|url| (url.clone(), http_client::parse(url))).collect();
        let task =
            tokio::spawn(sample_loop(targets, interval.max(MIN_INTERVAL), probe_timeout, max_run, on_round, stop_rx));
        Prober { urls, rounds: Arc::default(), stop: Some(stop), task: Some(task) }
    }

    /// The rounds completed so far, without stopping. `hit_cap` tells
    /// whether sampling has already ended by itself.
    pub fn snapshot(&self) -> ProbeReport {
        let hit_cap = self.task.as_ref().is_some_and(|t| t.is_finished());
        ProbeReport::new(self.urls.clone(), lock(&self.rounds).clone(), hit_cap)
    }

    /// Whether the sampling loop has ended (only by its cap, before `stop`).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops sampling, waits for the loop to end (a round in progress is
    /// discarded), and returns every completed round.
    pub async fn stop(mut self) -> ProbeReport {
        if let Some(stop) = self.stop.take() {
            // The loop may have ended at its cap already; nothing to tell then.
            let _ = stop.send(());
        }
        let hit_cap = match self.task.take() {
            Some(task) => matches!(task.await, Ok(Ending::HitCap)),
            None => false,
        };
        let rounds = std::mem::take(&mut *lock(&self.rounds));
        ProbeReport::new(std::mem::take(&mut self.urls), rounds, hit_cap)
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        // Dropping `stop` already ends the loop at its next await; abort makes
        // sure, and drops the probes of a round in progress with it.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn lock(rounds: &Rounds) -> std::sync::MutexGuard<'_, Vec<ProbeRound>> {
    // A panic while holding the lock cannot leave a half-pushed round behind.
    rounds.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn sample_loop(
    targets: Vec<(String, Result<Uri, HttpError>)>,
    period: Duration,
    probe_timeout: Duration,
    max_run: Duration,
    mut on_round: impl FnMut(ProbeRound),
    mut stop: oneshot::Receiver<()>,
) -> Ending {
    let client = HttpClient::new();
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let cap = started.checked_add(max_run).unwrap_or_else(|| started + DEFAULT_MAX_RUN);
    let mut ticker = interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut index = 0u64;
    loop {
        // `stop` resolves on `Prober::stop` and also when the handle is dropped.
        tokio::select! {
            _ = &mut stop => return Ending::Stopped,
            _ = sleep_until(cap) => return Ending::HitCap,
            _ = ticker.tick() => {}
        }
        let round_start = Instant::now();
        let since_start = round_start.duration_since(started);
        let round = tokio::select! {
            _ = &mut stop => return Ending::Stopped,
            _ = sleep_until(cap) => return Ending::HitCap,
            probes = sample(&client, &targets, probe_timeout) => ProbeRound {
                index,
                at: started_wall + since_start,
                since_start,
                probes,
            },
        };
        on_round(round);
        index += 1;
    }
}

/// Probes every target concurrently; results in the targets' order.
async fn sample(
    client: &HttpClient,
    targets: &[(String, Result<Uri, HttpError>)],
    probe_timeout: Duration,
) -> Vec<Probe> {
    let round_start = Instant::now();
    let mut probes = JoinSet::new();
    for (i, (_, uri)) in targets.iter().enumerate() {
        let client = client.clone();
        let uri = uri.as_ref().map_err(ToString::to_string).cloned();
        probes.spawn(async move { (i, probe(&client, uri, probe_timeout).await, round_start.elapsed()) });
    }
    let mut outcomes: Vec<Option<(Outcome, Duration)>> = vec![None; targets.len()];
    while let Some(joined) = probes.join_next().await {
        // A probe task cannot panic short of a bug in the client; if it does,
        // its URL is recorded as an error below.
        if let Ok((i, outcome, latency)) = joined {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some((outcome, latency));
            }
        }
    }
    targets
        .iter()
        .zip(outcomes)
        .map(|((url, _), outcome)| {
            let (outcome, latency) =
                outcome.unwrap_or_else(|| (Outcome::Error("probe task failed".into()), round_start.elapsed()));
            Probe { url: url.clone(), outcome, latency }
        })
        .collect()
}

async fn probe(client: &HttpClient, uri: Result<Uri, String>, probe_timeout: Duration) -> Outcome {
    let uri = match uri {
        Ok(uri) => uri,
        Err(e) => return Outcome::Error(e),
    };
    match client.status(&uri, probe_timeout).await {
        Err(HttpError::TimedOut(_)) => Outcome::Timeout,
        Err(e) => Outcome::Error(e.to_string()),
        Ok(200) => Outcome::Active,
        Ok(code) => Outcome::Status(code),
    }
}
