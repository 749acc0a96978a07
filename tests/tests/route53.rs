//! The Route 53 actuator against moto, an AWS emulator (PyPI `moto[server]`,
//! written independently of this project; not AWS), installed by `scripts/setup.sh`
//! and started on loopback: records created and moved, the fence checked
//! before every write and after a refused batch, credentials from the
//! environment and from a shared credentials file, errors naming the
//! setting at fault, nothing sent without the lease; a stub of this test
//! (not the emulator) for changes that stay `PENDING`; and a local cluster whose two sites both drive the
//! emulator's zone through a kill -9 of the active site. Waits are
//! conditions with generous deadlines; nothing is timed.
//!
//! What the emulator checks of a batch (moto 5.2.5, its Route 53 model):
//! a `DELETE` is refused only if no earlier `CREATE`/`UPSERT` in the zone's
//! journal had the same name, type, TTL and values; it is not compared with
//! the record set as it stands now (Route 53 does compare, and refuses a
//! stale one). A `CREATE` is refused when the very same `CREATE` was made
//! before and a record set is still there. So a stale batch that rewrites
//! the epoch the deposed site wrote before is refused by the emulator too
//! (for its `CREATE`), while the `DELETE` comparison itself is shown by the
//! batch construction's unit test, not here.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use failover_controller::actuate::route53::credentials::Environment;
use failover_controller::actuate::route53::{Route53Actuator, Route53Section};
use failover_controller::actuate::{ActuateError, Actuator, Goal, LeaseGuard, Outcome};
use failover_controller::snapshot::{Lease, NodeSnapshot, Step};
use failover_core::{ClusterConfig, Instant as CoreInstant, Member, MemberKind, Node, NodeId, Timers};
use failover_tests::cluster::{Spec, TestCluster};
use failover_tests::moto::{Listed, Moto};

const LONG: Duration = Duration::from_secs(60);
const ZONE: &str = "example.test.";
const APP: &str = "app.example.test.";
const FENCE: &str = "_failover.example.test.";

/// Each site's service address.
fn address(site: &str) -> &'static str {
    if site == "site-a" {
        "127.0.0.10"
    } else {
        "127.0.0.20"
    }
}

/// A `[[actuators.route53]]` section (without its header) for the zone.
fn section_text(endpoint: &str, zone: &str) -> String {
    format!(
        "name = \"route53\"\nhosted_zone_id = \"{zone}\"\nnames = [\"{APP}\"]\nfence_name = \"{FENCE}\"\n\
         ttl = \"5s\"\nendpoint = \"{endpoint}\"\ntimeout = \"5s\"\nsync_timeout = \"30s\"\n"
    )
}

fn section(endpoint: &str, zone: &str) -> Route53Section {
    config::Config::builder()
        .add_source(config::File::from_str(&section_text(endpoint, zone), config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .expect("a valid route53 section")
}

fn env_keys(id: &str) -> Environment {
    Environment::from_pairs([("AWS_ACCESS_KEY_ID", id.to_owned()), ("AWS_SECRET_ACCESS_KEY", "secret".to_owned())])
}

fn actuator(site: &str, endpoint: &str, zone: &str, env: Environment) -> Route53Actuator {
    Route53Actuator::build_with(&section(endpoint, zone), site, &[address(site).parse().expect("ip")], env)
        .expect("build")
}

/// A lease guard that holds for ten minutes from now.
fn held_lease() -> LeaseGuard {
    let guard = no_lease();
    let until = failover_controller::clock::now() + Duration::from_secs(600);
    guard.0.publish_step(Step {
        status: guard.0.status(),
        lease: Lease::until(Some(until)),
        events: Vec::new(),
        raised: Vec::new(),
    });
    guard
}

/// A lease guard of a node that never held a lease.
fn no_lease() -> LeaseGuard {
    let cluster = ClusterConfig {
        members: vec![
            Member { name: "a".into(), kind: MemberKind::Site { priority: 2 }, votes: 1 },
            Member { name: "w".into(), kind: MemberKind::Witness, votes: 1 },
        ],
        timers: Timers::default(),
        policy: Default::default(),
    };
    let node = Node::new(std::sync::Arc::new(cluster), NodeId(0), Default::default(), CoreInstant::from_millis(0), 1)
        .expect("node");
    LeaseGuard(NodeSnapshot::new(node.status(CoreInstant::from_millis(0))))
}

fn active(epoch: u64) -> Goal {
    Goal::Active { epoch, reason: "test".into() }
}

/// The app record and the fence as the emulator holds them.
fn zone_state(moto: &Moto, zone: &str) -> Vec<Listed> {
    moto.record_sets(zone, &[APP, FENCE])
}

fn points_at(site: &str, epoch: u64) -> Vec<Listed> {
    vec![
        (FENCE.into(), "TXT".into(), 5, vec![format!("\"epoch={epoch} site={site}\"")]),
        (APP.into(), "A".into(), 5, vec![address(site).into()]),
    ]
}

/// Change batches the emulator has taken so far (its request log).
fn batches_sent(moto: &Moto) -> usize {
    moto.log().lines().filter(|l| l.contains("POST /2013-04-01/hostedzone/") && l.contains("/rrset/")).count()
}

async fn converged(a: &Route53Actuator, goal: &Goal, lease: &LeaseGuard) -> String {
    match a.apply(goal, lease).await {
        Ok(Outcome::Converged(applied)) => applied.detail,
        other => panic!("{goal:?}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_are_created_then_moved_and_a_stale_batch_is_refused() {
    let moto = Moto::start();
    let zone = moto.create_zone(ZONE);
    let endpoint = moto.endpoint();
    let lease = held_lease();
    let a = actuator("site-a", &endpoint, &zone, env_keys("AKIDSITEA"));
    let b = actuator("site-b", &endpoint, &zone, env_keys("AKIDSITEB"));

    // Without the lease, a pass reads but sends nothing.
    match a.apply(&active(1), &no_lease()).await {
        Err(ActuateError::LeaseLost) => {}
        other => panic!("a pass without the lease: {other:?}"),
    }
    assert_eq!(batches_sent(&moto), 0);
    assert_eq!(zone_state(&moto, &zone), []);

    // Election: site-a creates the records and the fence.
    let detail = converged(&a, &active(1), &lease).await;
    assert!(detail.contains("INSYNC"), "{detail}");
    assert_eq!(zone_state(&moto, &zone), points_at("site-a", 1));
    // A pass that finds everything in place writes nothing.
    let before = batches_sent(&moto);
    let detail = converged(&a, &active(1), &lease).await;
    assert!(detail.contains("already point here"), "{detail}");
    assert_eq!(batches_sent(&moto), before);

    // Failover: site-b, epoch 2, moves them.
    converged(&b, &active(2), &lease).await;
    assert_eq!(zone_state(&moto, &zone), points_at("site-b", 2));

    // The deposed site-a, on its next pass, reads the newer fence and
    // writes nothing: the fence alarm with the stored epoch.
    let before = batches_sent(&moto);
    match a.apply(&active(1), &lease).await {
        Err(ActuateError::Fenced { by: Some(2), detail }) => assert!(detail.contains("site-b"), "{detail}"),
        other => panic!("site-a was not fenced: {other:?}"),
    }
    assert_eq!(batches_sent(&moto), before, "nothing was sent over a newer fence");

    // The race: site-a read its own fence (epoch 1) and a hand-edited app
    // record, then site-b wrote epoch 2, then site-a's batch arrives. The
    // emulator refuses it; site-a reads the fence back and raises the
    // alarm with the epoch stored there.
    let creds =
        failover_controller::actuate::route53::credentials::resolve(&env_keys("AKIDSITEA"), None).expect("credentials");
    let read_then = points_at("site-a", 1);
    let fence_then = [failover_controller::actuate::route53::batch::RecordSet {
        name: FENCE.into(),
        rtype: "TXT".into(),
        ttl: 5,
        values: read_then[0].3.clone(),
    }];
    let app_then = [failover_controller::actuate::route53::batch::RecordSet {
        name: APP.into(),
        rtype: "A".into(),
        ttl: 5,
        values: vec!["192.0.2.66".into()],
    }];
    match a.write(&creds, &fence_then, &app_then, 1).await {
        Err(ActuateError::Fenced { by: Some(2), .. }) => {}
        other => panic!("the stale batch was not refused as fenced: {other:?}"),
    }
    assert_eq!(zone_state(&moto, &zone), points_at("site-b", 2), "the stale batch changed nothing");

    // Back to site-a with a newer epoch: fence and record in one batch.
    converged(&a, &active(3), &lease).await;
    assert_eq!(zone_state(&moto, &zone), points_at("site-a", 3));
}

/// Observe mode against the emulator: a site whose records and fence are
/// another's reads them, reports the batch it would send in words, and
/// sends none; the zone is as the other site left it.
#[tokio::test(flavor = "multi_thread")]
async fn an_observing_actuator_reads_the_zone_and_sends_no_batch() {
    let moto = Moto::start();
    let zone = moto.create_zone(ZONE);
    let endpoint = moto.endpoint();
    let lease = held_lease();
    let a = actuator("site-a", &endpoint, &zone, env_keys("AKIDSITEA"));
    converged(&a, &active(1), &lease).await;
    let (before, batches) = (zone_state(&moto, &zone), batches_sent(&moto));
    assert_eq!(before, points_at("site-a", 1));
    let mut b = actuator("site-b", &endpoint, &zone, env_keys("AKIDSITEB"));
    b.actuation = failover_controller::actuation_mode::ActuationMode::Observe;
    for _ in 0..3 {
        match b.apply(&active(2), &lease).await {
            Ok(Outcome::WouldChange { read, changes }) => {
                assert_eq!(
                    changes,
                    [
                        format!("would update {APP} A 127.0.0.10 -> 127.0.0.20"),
                        format!("would update {FENCE} TXT \"epoch=1 site=site-a\" -> \"epoch=2 site=site-b\""),
                    ]
                );
                assert!(read.contains(&format!("{APP} A 127.0.0.10")), "{read}");
            }
            other => panic!("an observing pass: {other:?}"),
        }
    }
    assert_eq!(zone_state(&moto, &zone), before, "the zone changed");
    assert_eq!(batches_sent(&moto), batches, "a change batch was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_emulator_checks_of_a_delete() {
    let moto = Moto::start();
    let zone = moto.create_zone(ZONE);
    let value = "\"epoch=1 site=site-a\"";
    let (status, text) = moto.change(&zone, &[("CREATE", FENCE, "TXT", 5, value)]);
    assert_eq!(status, 200, "{text}");
    // A DELETE of values never written is refused ...
    let (status, text) = moto.change(&zone, &[("DELETE", FENCE, "TXT", 5, "\"epoch=9 site=site-x\"")]);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("InvalidInput"), "{text}");
    // ... and so is one whose TTL differs from what was written.
    let (status, text) = moto.change(&zone, &[("DELETE", FENCE, "TXT", 300, value)]);
    assert_eq!(status, 400, "{text}");
    // But a DELETE of values once written and since replaced is taken
    // (Route 53 refuses it: the values do not match the current ones).
    let next = "\"epoch=2 site=site-b\"";
    let (status, text) = moto.change(&zone, &[("DELETE", FENCE, "TXT", 5, value), ("CREATE", FENCE, "TXT", 5, next)]);
    assert_eq!(status, 200, "{text}");
    let (status, text) = moto.change(&zone, &[("DELETE", FENCE, "TXT", 5, value)]);
    assert_eq!(status, 200, "the emulator compares a DELETE with its journal only: {text}");
}

/// The next connection to `listener`, or none by `deadline`.
fn accept_by(listener: &TcpListener, deadline: Instant) -> Option<std::net::TcpStream> {
    listener.set_nonblocking(true).ok()?;
    for _ in 0..100_000 {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).ok()?;
                stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
                return Some(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return None,
        }
    }
    None
}

/// A request's head (up to the blank line) and its body.
fn read_request(stream: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65_536 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length.min(1 << 20)];
    let _ = stream.read_exact(&mut body);
    (head, body)
}

/// A one-request HTTP stub on loopback that records the request head and
/// answers an AWS-style AccessDenied error naming an account and an ARN.
fn recording_stub() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let handle = std::thread::spawn(move || {
        let Some(mut stream) = accept_by(&listener, Instant::now() + LONG) else { return String::new() };
        let (head, _) = read_request(&mut stream);
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: \
                    arn:aws:iam::123456789012:user/failover is not authorized to perform: \
                    route53:ListResourceRecordSets</Message></Error></ErrorResponse>";
        let answer = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes());
        head
    });
    (endpoint, handle)
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_come_from_the_environment_or_a_shared_credentials_file() {
    let lease = held_lease();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\n[ops]\n\
         aws_access_key_id = AKIDFROMFILE\naws_secret_access_key = f\naws_session_token = TOKENFROMFILE\n",
    )
    .expect("write");
    let from_file = || {
        Environment::from_pairs([
            ("AWS_SHARED_CREDENTIALS_FILE", file.display().to_string()),
            ("AWS_PROFILE", "ops".to_owned()),
        ])
    };
    let cases = [
        (env_keys("AKIDFROMENV"), "Credential=AKIDFROMENV/", None, "the environment"),
        (from_file(), "Credential=AKIDFROMFILE/", Some("x-amz-security-token: TOKENFROMFILE"), "[ops]"),
    ];
    for (env, credential, token, source) in cases {
        let (endpoint, stub) = recording_stub();
        let a = actuator("site-a", &endpoint, "Z0123456789ABC", env);
        let result = a.apply(&active(1), &lease).await;
        let head = stub.join().expect("stub");
        let authorization = head.lines().find(|l| l.to_ascii_lowercase().starts_with("authorization:"));
        assert!(authorization.is_some_and(|l| l.contains(credential)), "{credential}: {head}");
        assert!(head.contains("/us-east-1/route53/aws4_request"), "{head}");
        if let Some(token) = token {
            assert!(head.to_ascii_lowercase().contains(&token.to_ascii_lowercase()), "{head}");
        }
        // The error names the setting and where the keys came from; what
        // status shows leaves the account and the ARN out.
        let e = result.expect_err("the stub refuses");
        let text = e.to_string();
        assert!(text.contains("AccessDenied") && text.contains("profile") && text.contains(source), "{text}");
        let shown = Actuator::Route53(a).shown(&e);
        assert!(!shown.contains("123456789012") && !shown.contains("arn:aws"), "{shown}");
    }

    // The same file's keys against the emulator: a whole pass converges.
    let moto = Moto::start();
    let zone = moto.create_zone(ZONE);
    let a = actuator("site-a", &moto.endpoint(), &zone, from_file());
    converged(&a, &active(1), &lease).await;
    assert_eq!(zone_state(&moto, &zone), points_at("site-a", 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_from_the_emulator_name_the_setting() {
    let lease = held_lease();
    let moto = Moto::start();
    let missing = actuator("site-a", &moto.endpoint(), "ZNOSUCHZONE", env_keys("AKIDSITEA"));
    let text = missing.apply(&active(1), &lease).await.expect_err("refused").to_string();
    assert!(text.contains("hosted_zone_id ZNOSUCHZONE") && text.contains("NoSuchHostedZone"), "{text}");
    // Nothing listening: the endpoint is named.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let unreachable = actuator("site-a", &endpoint, "Z0123456789ABC", env_keys("AKIDSITEA"));
    match unreachable.apply(&active(1), &lease).await {
        Err(e @ ActuateError::Unreachable { .. }) => assert!(e.to_string().contains("endpoint"), "{e}"),
        other => panic!("{other:?}"),
    }
}

fn site_actuators(site: &str, endpoint: &str, zone: &str) -> String {
    format!(
        "[actuators]\naddresses = [\"{}\"]\n\n[[actuators.route53]]\n{}",
        address(site),
        section_text(endpoint, zone)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_records_follow_a_kill_9_failover_and_the_old_site_writes_no_more() {
    let moto = Moto::start();
    let zone = moto.create_zone(ZONE);
    let endpoint = moto.endpoint();
    let keys = |site: &'static str| {
        [
            (site, "AWS_ACCESS_KEY_ID", format!("AKID{}", site.replace('-', "").to_uppercase())),
            (site, "AWS_SECRET_ACCESS_KEY", "secret".to_owned()),
        ]
    };
    let spec = Spec {
        extra: ["site-a", "site-b"].iter().map(|&s| (s, site_actuators(s, &endpoint, &zone))).collect(),
        env: keys("site-a").into_iter().chain(keys("site-b")).collect(),
        ..Spec::default()
    };
    let mut c = TestCluster::start(spec).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
    let first = c.epoch("site-a").expect("epoch");
    assert!(
        c.wait_for(LONG, |_| zone_state(&moto, &zone) == points_at("site-a", first)).await,
        "the zone never pointed at site-a: {:?}\n{}",
        zone_state(&moto, &zone),
        c.log_tail("site-a")
    );

    c.kill9("site-a");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    let second = c.epoch("site-b").expect("epoch");
    assert!(second > first, "the epoch went from {first} to {second}");
    assert!(
        c.wait_for(LONG, |_| zone_state(&moto, &zone) == points_at("site-b", second)).await,
        "the zone never followed site-b: {:?}\n{}",
        zone_state(&moto, &zone),
        c.log_tail("site-b")
    );

    // site-a comes back as a standby: its actuator stays idle and the zone
    // stays with site-b while the cluster runs on.
    c.spawn("site-a");
    assert!(
        c.wait_for(LONG, |c| c.role("site-a").as_deref() == Some("standby")).await,
        "site-a did not rejoin:\n{}",
        c.log_tail("site-a")
    );
    let writes = batches_sent(&moto);
    let until = Instant::now() + Duration::from_secs(5);
    for _ in 0..50 {
        if Instant::now() > until {
            break;
        }
        assert_eq!(zone_state(&moto, &zone), points_at("site-b", second));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(batches_sent(&moto), writes, "a change batch was sent while the zone was in place");
    let report = c
        .status("site-a")
        .and_then(|s| s["actuators"].as_array().and_then(|v| v.iter().find(|a| a["name"] == "route53").cloned()));
    assert_eq!(report.as_ref().and_then(|r| r["state"].as_str()), Some("idle"), "{report:?}");
    assert_eq!(c.role("site-b").as_deref(), Some("active"));
}

#[test]
fn the_documented_section_builds() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/actuators.md")).expect("doc");
    let (_, after) = doc.split_once("<!-- route53-section -->").expect("the marked example");
    let body = after.split_once("```toml\n").and_then(|(_, b)| b.split_once("\n```")).expect("a toml block").0;
    let body = body.trim_start().strip_prefix("[[actuators.route53]]").expect("a route53 section");
    let s: Route53Section = config::Config::builder()
        .add_source(config::File::from_str(body, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .expect("the documented section parses");
    let a = Route53Actuator::build_with(&s, "site-a", &["192.0.2.10".parse().expect("ip")], env_keys("AKIDDOC"))
        .expect("the documented section builds");
    assert_eq!(a.name, "route53");
    assert_eq!(a.fence_name(), "_failover.example.com.");
}

/// A Route 53 stand-in on loopback (a stub of this test, not the
/// emulator) whose changes stay `PENDING` for `pending_reads` GetChange
/// calls before they are `INSYNC`, which moto never does. It answers one
/// request a connection, as many as `max_requests`.
fn pending_stub(pending_reads: usize, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let mut changed = false;
        let mut reads = 0;
        let deadline = Instant::now() + LONG;
        for _ in 0..max_requests {
            let Some(mut stream) = accept_by(&listener, deadline) else { return };
            let (head, _) = read_request(&mut stream);
            let line = head.lines().next().unwrap_or_default().to_owned();
            let set = |name: &str, rtype: &str, value: &str| {
                format!(
                    "<ResourceRecordSet><Name>{name}</Name><Type>{rtype}</Type><TTL>5</TTL><ResourceRecords>\
                     <ResourceRecord><Value>{value}</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"
                )
            };
            let answer = if line.starts_with("POST ") {
                changed = true;
                "<ChangeResourceRecordSetsResponse><ChangeInfo><Id>/change/CSTUB1</Id><Status>PENDING</Status>\
                 </ChangeInfo></ChangeResourceRecordSetsResponse>"
                    .to_owned()
            } else if line.contains("/change/CSTUB1") {
                reads += 1;
                let status = if reads > pending_reads { "INSYNC" } else { "PENDING" };
                format!(
                    "<GetChangeResponse><ChangeInfo><Id>/change/CSTUB1</Id><Status>{status}</Status></ChangeInfo>\
                     </GetChangeResponse>"
                )
            } else {
                let sets = match (changed, line.contains("name=_failover")) {
                    (false, _) => String::new(),
                    (true, true) => set(FENCE, "TXT", "\"epoch=1 site=site-a\""),
                    (true, false) => set(APP, "A", address("site-a")),
                };
                format!(
                    "<ListResourceRecordSetsResponse><ResourceRecordSets>{sets}</ResourceRecordSets>\
                     <IsTruncated>false</IsTruncated></ListResourceRecordSetsResponse>"
                )
            };
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    endpoint
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_change_is_in_progress_until_insync_and_fails_after_sync_timeout() {
    let lease = held_lease();
    let endpoint = pending_stub(1, 50);
    let a = actuator("site-a", &endpoint, "Z0123456789ABC", env_keys("AKIDSITEA"));
    match a.apply(&active(1), &lease).await {
        Ok(Outcome::InProgress(waiting)) => assert!(waiting.contains("CSTUB1"), "{waiting}"),
        other => panic!("the sent change is not in progress: {other:?}"),
    }
    match a.apply(&active(1), &lease).await {
        Ok(Outcome::InProgress(waiting)) => assert!(waiting.contains("PENDING"), "{waiting}"),
        other => panic!("a PENDING change is not in progress: {other:?}"),
    }
    match a.apply(&active(1), &lease).await {
        Ok(Outcome::Converged(applied)) => {
            assert!(applied.detail.contains("INSYNC"), "{}", applied.detail);
            assert!(applied.propagation.is_some());
        }
        other => panic!("an INSYNC change did not converge: {other:?}"),
    }

    // A change that stays PENDING past sync_timeout fails the pass.
    let endpoint = pending_stub(usize::MAX, 50);
    let mut s = section(&endpoint, "Z0123456789ABC");
    s.sync_timeout = Duration::from_millis(1);
    let a = Route53Actuator::build_with(&s, "site-a", &[address("site-a").parse().expect("ip")], env_keys("AKIDA"))
        .expect("build");
    assert!(matches!(a.apply(&active(1), &lease).await, Ok(Outcome::InProgress(_))));
    tokio::time::sleep(Duration::from_millis(20)).await;
    match a.apply(&active(1), &lease).await {
        Err(ActuateError::TimedOut { what, .. }) => assert!(what.contains("sync_timeout"), "{what}"),
        other => panic!("a change PENDING past sync_timeout did not fail: {other:?}"),
    }
    // And the next pass too, while it stays PENDING: never converged.
    match a.apply(&active(1), &lease).await {
        Err(ActuateError::TimedOut { what, .. }) => assert!(what.contains("sync_timeout"), "{what}"),
        other => panic!("a pass after the timeout, the change still PENDING: {other:?}"),
    }
}
