//! Who may make admin calls: the operator whose bearer token a call
//! carries (each operator has a name and a token, perhaps a read-only one),
//! compared in constant time, and a limit on refused attempts per source
//! address.
//!
//! A read-only operator may make the calls of [`READ_ONLY_COMMANDS`]; any
//! other call of theirs is refused with 403 naming them. Such a refusal is
//! not counted against the source: the caller holds a valid token.
//!
//! Both tokens are hashed with SHA-256 and the digests compared with
//! [`subtle::ConstantTimeEq`], so the time a comparison takes says nothing
//! about how much of a guess was right, not even its length.
//!
//! A call with the right token is always let through: the limit never
//! locks out an operator who shares an address with someone guessing (a
//! NAT, a TLS proxy). A source (an IP address) whose calls with a missing or
//! wrong token were refused [`REFUSALS_ALLOWED`] times within a window
//! (`admin.refusal_window`, [`DEFAULT_REFUSAL_WINDOW`] by default, counted
//! from its first refusal) gets 429 Too Many Requests instead of 401 for
//! every further bad call until that window has passed. The limit bounds
//! the log lines and the work a stranger causes; what makes guessing
//! hopeless is the token's length (32 random bytes in the examples).
//! Each refusal is logged (and recorded in the event history) with the
//! source's socket address, at most once per source per [`LOG_EVERY`], with
//! the number left unlogged since then: a stranger cannot flood the log or
//! push the operators' calls out of the bounded history. At most
//! [`MAX_SOURCES`] sources are remembered; when the map is full, sources
//! whose window and log interval are over go first, then the one whose
//! window started earliest.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Refusals a source may have within its window; the next call gets 429.
pub const REFUSALS_ALLOWED: u32 = 5;

/// The window over which refusals are counted, unless the config says
/// otherwise.
pub const DEFAULT_REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// At most one warning per source per this much time.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Sources remembered at once.
pub const MAX_SOURCES: usize = 4096;

/// Whether `given` is `expected`, in time that does not depend on where
/// they differ or on their lengths.
pub fn token_matches(expected: &str, given: &str) -> bool {
    let expected = Sha256::digest(expected.as_bytes());
    let given = Sha256::digest(given.as_bytes());
    expected.as_slice().ct_eq(given.as_slice()).into()
}

/// The token of an `Authorization: Bearer ...` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

/// Why an admin call is not let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or the wrong one: 401.
    BadToken,
    /// No token, or the wrong one, from a source refused too often lately:
    /// 429 until `retry_after` has passed.
    TooMany {
        /// Until the source's window ends.
        retry_after: Duration,
    },
}

/// What [`Refusals::judge`] decided, and whether to log it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// None: let through.
    pub refusal: Option<Refusal>,
    /// Some(n): log this refusal now; n earlier ones were not logged.
    pub log: Option<u32>,
}

/// What is remembered of one source.
#[derive(Clone, Copy, Debug)]
struct Source {
    window_start: Instant,
    refusals: u32,
    logged_at: Option<Instant>,
    unlogged: u32,
}

/// Refusals per source: a bounded map behind a mutex, held only to update
/// one entry (or to make room), never across an await.
#[derive(Debug)]
pub struct Refusals {
    window: Duration,
    sources: Mutex<HashMap<IpAddr, Source>>,
}

impl Refusals {
    /// Counts refusals over `window`.
    pub fn new(window: Duration) -> Refusals {
        Refusals { window, sources: Mutex::new(HashMap::new()) }
    }

    /// Judges a call from `source` at `now` whose token is good or not. A
    /// good token is always let through, whatever the source's record.
    pub fn judge(&self, source: IpAddr, token_ok: bool, now: Instant) -> Judgement {
        if token_ok {
            // Neither counted nor held back, and it costs no room.
            return Judgement { refusal: None, log: None };
        }
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        let known = sources.contains_key(&source);
        if !known && sources.len() >= MAX_SOURCES {
            self.make_room(&mut sources, now);
        }
        let entry =
            sources.entry(source).or_insert(Source { window_start: now, refusals: 0, logged_at: None, unlogged: 0 });
        if now.saturating_duration_since(entry.window_start) >= self.window {
            entry.window_start = now;
            entry.refusals = 0;
        }
        let refusal = if entry.refusals >= REFUSALS_ALLOWED {
            Refusal::TooMany {
                retry_after: self.window.saturating_sub(now.saturating_duration_since(entry.window_start)),
            }
        } else {
            entry.refusals += 1;
            Refusal::BadToken
        };
        let log = if entry.logged_at.is_some_and(|at| now.saturating_duration_since(at) < LOG_EVERY) {
            entry.unlogged += 1;
            None
        } else {
            entry.logged_at = Some(now);
            Some(std::mem::take(&mut entry.unlogged))
        };
        Judgement { refusal: Some(refusal), log }
    }

    fn make_room(&self, sources: &mut HashMap<IpAddr, Source>, now: Instant) {
        let window = self.window;
        sources.retain(|_, s| {
            now.saturating_duration_since(s.window_start) < window
                || s.logged_at.is_some_and(|at| now.saturating_duration_since(at) < LOG_EVERY)
        });
        if sources.len() >= MAX_SOURCES {
            if let Some(oldest) = sources.iter().min_by_key(|(_, s)| s.window_start).map(|(ip, _)| *ip) {
                sources.remove(&oldest);
            }
        }
    }

    /// Sources remembered now.
    pub fn remembered(&self) -> usize {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The admin calls a read-only operator may make.
pub const READ_ONLY_COMMANDS: [&str; 1] = ["whoami"];

/// The operator of calls to a node that needs no token.
pub const ANONYMOUS: &str = "anonymous";

/// One operator: a name for the audit history and a token.
#[derive(Clone, PartialEq, Eq)]
pub struct Operator {
    /// Shown in the history and the log.
    pub name: String,
    /// The bearer token.
    pub token: String,
    /// Whether only [`READ_ONLY_COMMANDS`] are let through.
    pub read_only: bool,
}

/// Never shows the token.
impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator").field("name", &self.name).field("read_only", &self.read_only).finish()
    }
}

/// Who made a call that was let through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The operator's name ([`ANONYMOUS`] when no token is needed).
    pub operator: String,
    /// Whether the operator's token is read-only.
    pub read_only: bool,
}

impl Caller {
    /// Why `command` is refused to this caller, if it is.
    pub fn forbidden(&self, command: &str) -> Option<String> {
        (self.read_only && !READ_ONLY_COMMANDS.contains(&command)).then(|| {
            format!(
                "operator {:?} has a read-only token (read_only = true): {command:?} would change the cluster; \
                 use a token without read_only",
                self.operator
            )
        })
    }
}

/// A call that is not let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub refusal: Refusal,
    /// Some(n): log and record this refusal; n earlier ones were not.
    pub record: Option<u32>,
}

/// The admin gate: the operators (none: admin calls need no token), which
/// a reload replaces, and the refusals.
#[derive(Debug)]
pub struct AdminGate {
    operators: std::sync::RwLock<Vec<Operator>>,
    refusals: Refusals,
}

impl AdminGate {
    /// A gate for `operators`, counting refusals over `window`.
    pub fn new(operators: Vec<Operator>, window: Duration) -> AdminGate {
        AdminGate { operators: std::sync::RwLock::new(operators), refusals: Refusals::new(window) }
    }

    /// From now on calls need one of `operators`' tokens (a reload); a
    /// token no longer among them is refused.
    pub fn set_operators(&self, operators: Vec<Operator>) {
        *self.operators.write().unwrap_or_else(PoisonError::into_inner) = operators;
    }

    /// The operator whose token `given` is: every token is compared, so
    /// the time taken does not say which matched.
    fn identify(operators: &[Operator], given: &str) -> Option<Caller> {
        let mut found = None;
        for o in operators {
            if token_matches(&o.token, given) && found.is_none() {
                found = Some(Caller { operator: o.name.clone(), read_only: o.read_only });
            }
        }
        found
    }

    /// Who makes a call with `headers` from `peer`, if it may go on; logs
    /// refusals (at most one line per source per [`LOG_EVERY`]).
    pub fn check(&self, headers: &HeaderMap, peer: SocketAddr, command: &str) -> Result<Caller, Refused> {
        let guard = self.operators.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_empty() {
            return Ok(Caller { operator: ANONYMOUS.to_owned(), read_only: false });
        }
        let caller = bearer(headers).and_then(|given| Self::identify(&guard, given));
        drop(guard);
        let judgement = self.refusals.judge(peer.ip(), caller.is_some(), Instant::now());
        let Some(refusal) = judgement.refusal else {
            return caller.ok_or(Refused { refusal: Refusal::BadToken, record: None });
        };
        if let Some(unlogged) = judgement.log {
            let why = match refusal {
                Refusal::BadToken => "missing or wrong token",
                Refusal::TooMany { .. } => "too many refusals from this source; answering 429",
            };
            tracing::warn!(
                source = %peer,
                command = ?command,
                not_logged_since_last = unlogged,
                "admin call refused: {why}"
            );
        }
        Err(Refused { refusal, record: judgement.log })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const WINDOW: Duration = Duration::from_secs(60);

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches("s3cret-token", "s3cret-token"));
        assert!(!token_matches("s3cret-token", "s3cret-tokeN"));
        assert!(!token_matches("s3cret-token", "s3cret-token "));
        assert!(!token_matches("s3cret-token", "s3cret"));
        assert!(!token_matches("s3cret-token", ""));
        assert!(token_matches("", ""));
    }

    #[test]
    fn bearer_reads_only_a_bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Basic abc".parse().expect("header"));
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer abc".parse().expect("header"));
        assert_eq!(bearer(&h), Some("abc"));
    }

    #[test]
    fn after_the_allowed_refusals_bad_tokens_from_a_source_get_429_until_the_window_passes() {
        let r = Refusals::new(WINDOW);
        let t0 = Instant::now();
        for i in 0..REFUSALS_ALLOWED {
            let j = r.judge(IP, false, t0 + Duration::from_secs(u64::from(i)));
            assert_eq!(j.refusal, Some(Refusal::BadToken), "refusal {i}");
        }
        let later = t0 + Duration::from_secs(20);
        assert_eq!(r.judge(IP, false, later).refusal, Some(Refusal::TooMany { retry_after: Duration::from_secs(40) }));
        // Another source is not held back.
        let other = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(r.judge(other, false, later).refusal, Some(Refusal::BadToken));
        // Once the window has passed a bad token gets 401 again.
        assert_eq!(r.judge(IP, false, t0 + WINDOW).refusal, Some(Refusal::BadToken));
    }

    #[test]
    fn a_good_token_is_let_through_after_many_bad_ones_from_the_same_address() {
        let r = Refusals::new(WINDOW);
        let t0 = Instant::now();
        for i in 0..100u64 {
            let j = r.judge(IP, false, t0 + Duration::from_millis(i));
            assert!(j.refusal.is_some(), "bad call {i} let through");
        }
        assert!(matches!(r.judge(IP, false, t0 + Duration::from_secs(1)).refusal, Some(Refusal::TooMany { .. })));
        assert_eq!(r.judge(IP, true, t0 + Duration::from_secs(1)).refusal, None);
        // And the good call does not reset the bad ones' count.
        assert!(matches!(r.judge(IP, false, t0 + Duration::from_secs(2)).refusal, Some(Refusal::TooMany { .. })));
    }

    #[test]
    fn the_gate_lets_the_right_token_through_from_an_address_that_sent_many_wrong_ones() {
        let gate = AdminGate::new(vec![operator("admin", "s3cret-token", false)], WINDOW);
        let peer = SocketAddr::new(IP, 40_000);
        let mut wrong = HeaderMap::new();
        wrong.insert("authorization", "Bearer guess".parse().expect("header"));
        for _ in 0..(REFUSALS_ALLOWED * 4) {
            assert!(gate.check(&wrong, peer, "pause").is_err());
        }
        let too_many = |r: Result<Caller, Refused>| matches!(r, Err(Refused { refusal: Refusal::TooMany { .. }, .. }));
        assert!(too_many(gate.check(&wrong, peer, "pause")));
        assert!(too_many(gate.check(&HeaderMap::new(), peer, "pause")));
        let right = bearing("s3cret-token");
        assert_eq!(gate.check(&right, peer, "pause").map(|c| c.operator), Ok("admin".to_owned()));
    }

    fn operator(name: &str, token: &str, read_only: bool) -> Operator {
        Operator { name: name.into(), token: token.into(), read_only }
    }

    fn bearing(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().expect("header"));
        h
    }

    #[test]
    fn each_token_names_its_operator_and_a_read_only_one_may_only_read() {
        let gate = AdminGate::new(
            vec![operator("alice", "alice-token", false), operator("auditor", "auditor-token", true)],
            WINDOW,
        );
        let peer = SocketAddr::new(IP, 40_000);
        let alice = gate.check(&bearing("alice-token"), peer, "pause").expect("alice let through");
        assert_eq!(alice, Caller { operator: "alice".into(), read_only: false });
        assert_eq!(alice.forbidden("pause"), None);
        let auditor = gate.check(&bearing("auditor-token"), peer, "pause").expect("auditor let through");
        assert_eq!(auditor.operator, "auditor");
        assert_eq!(auditor.forbidden("whoami"), None);
        let why = auditor.forbidden("switchover").expect("a read-only token switched over");
        assert!(why.contains("\"auditor\"") && why.contains("read-only") && why.contains("\"switchover\""), "{why}");
        let refused = gate.check(&bearing("alice-token "), peer, "pause").expect_err("a wrong token let through");
        assert_eq!(refused, Refused { refusal: Refusal::BadToken, record: Some(0) });
        // A reload that drops alice's token refuses it from then on.
        gate.set_operators(vec![operator("auditor", "auditor-token", true)]);
        assert!(gate.check(&bearing("alice-token"), peer, "pause").is_err());
        // No operator at all: anyone, as the anonymous operator.
        gate.set_operators(Vec::new());
        assert_eq!(gate.check(&HeaderMap::new(), peer, "pause").map(|c| c.operator), Ok(ANONYMOUS.to_owned()));
    }

    #[test]
    fn good_calls_are_never_counted() {
        let r = Refusals::new(WINDOW);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(r.judge(IP, true, t0).refusal, None);
        }
        assert_eq!(r.remembered(), 0);
    }

    #[test]
    fn one_log_line_per_source_per_interval_with_the_count_of_the_others() {
        let r = Refusals::new(WINDOW);
        let t0 = Instant::now();
        let logs: Vec<Option<u32>> =
            (0..10).map(|i| r.judge(IP, false, t0 + Duration::from_millis(100 * i)).log).collect();
        assert_eq!(logs[0], Some(0));
        assert!(logs[1..].iter().all(Option::is_none), "{logs:?}");
        // After the interval, the next refusal is logged with the nine before it.
        assert_eq!(r.judge(IP, false, t0 + LOG_EVERY).log, Some(9));
    }

    #[test]
    fn the_map_stays_bounded() {
        let r = Refusals::new(WINDOW);
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 100) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            r.judge(ip, false, t0 + Duration::from_millis(u64::from(i)));
        }
        assert!(r.remembered() <= MAX_SOURCES, "{} sources remembered", r.remembered());
        // Room is made for a new source, which is counted like any other.
        assert_eq!(r.judge(IP, false, t0 + Duration::from_secs(5)).refusal, Some(Refusal::BadToken));
    }
}
