//! The status page in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`, installed by `scripts/setup.sh`) driven over
//! WebDriver loads the witness's `GET /` against a running cluster, shows
//! the active site and each member's role, and, after a kill -9 of the
//! active site, shows the new active site without a reload. Screenshots go
//! to `target/status-page/`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use failover_tests::cluster::{free_port, Spec, TestCluster};
use failover_tests::mongo_test_server::{Member, TestReplicaSet};
use fantoccini::{Client, ClientBuilder, Locator};

/// chromedriver, killed on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Text of the element matching `css`, or empty.
async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls until the page shows `want` as the active site and `roles` for the
/// members, or 60 s pass. Returns what it saw last.
async fn wait_for_page(client: &Client, want: &str, roles: &[(&str, &str)]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let active = text(client, "#active-site").await;
        let mut seen = Vec::new();
        for (site, _) in roles {
            seen.push(text(client, &format!("tr[data-site=\"{site}\"] td.role")).await);
        }
        let ok = active == want && roles.iter().zip(&seen).all(|((_, role), got)| got == role);
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("active {active:?}, roles {seen:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/status-page");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(name), png).expect("write screenshot");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_roles_and_follows_a_failover_without_reload() {
    // The sites coordinate a replica set (the MongoDB test server), which
    // their pages show.
    let rs = TestReplicaSet::start(
        "rs0",
        &[Member::Data { priority: 1.0 }, Member::Data { priority: 1.0 }, Member::Arbiter],
    )
    .await
    .expect("MongoDB test server");
    let section = rs.controller_section(&["site-a", "site-b", "witness"], "");
    let spec = Spec { extra: vec![("site-a", section.clone()), ("site-b", section)], ..Spec::default() };
    let mut c = TestCluster::start(spec).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));

    let port = free_port();
    let driver = Driver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt-get install chromium chromium-driver, or run scripts/setup.sh as root)"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let caps = caps.as_object().cloned().expect("capabilities object");
    // Two TLS back ends are linked in; the WebDriver client must be told.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = ClientBuilder::rustls()
        .expect("TLS for the WebDriver client")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");

    // The witness's page, so it stays up while a site dies.
    client.goto(&format!("http://{}/", c.http_address("witness"))).await.expect("open the page");
    let before = [("site-a", "active"), ("site-b", "standby"), ("witness", "witness")];
    let shown = wait_for_page(&client, "site-a", &before).await;
    screenshot(&client, "before-failover.png").await;
    shown.expect("the page shows site-a active");
    assert_eq!(text(&client, "#node").await, "witness");
    // A scheduled switchover is kept by the active site alone.
    let site_a = c.http_address("site-a");
    assert_eq!(text(&client, "#scheduled").await, format!("only site-a knows ({site_a})"));
    assert!(text(&client, "#epoch").await.parse::<u64>().is_ok_and(|e| e > 0));

    // kill -9 of site-a: the same page, never reloaded, follows.
    // A mark in this document: a reload would lose it.
    client.execute("window.noReloadMark = 42; return true;", vec![]).await.expect("set mark");
    c.kill9("site-a");
    let after = [("site-a", "unreachable"), ("site-b", "active"), ("witness", "witness")];
    let shown = wait_for_page(&client, "site-b", &after).await;
    screenshot(&client, "after-failover.png").await;
    shown.expect("the page shows site-b active after the failover");
    let mark = client.execute("return window.noReloadMark;", vec![]).await.expect("read mark");
    assert_eq!(mark, serde_json::json!(42), "the page was not reloaded");
    let events = text(&client, "#events").await;
    assert!(events.contains("site-b is active"), "timeline shows the failover: {events}");
    // What site-a last reported before it died is not shown as current.
    let healthy_a = text(&client, "tr[data-site=\"site-a\"] td:nth-child(5)").await;
    assert_eq!(healthy_a, "unknown (unreachable)");

    // Site-b's own page shows the replica set with the primary moved to it.
    client.goto(&format!("http://{}/", c.http_address("site-b"))).await.expect("open site-b's page");
    let member_b = format!("tr[data-member=\"{}\"] td:nth-child(3)", rs.hosts()[1]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while text(&client, &member_b).await != "PRIMARY" {
        assert!(Instant::now() < deadline, "site-b's page never showed its member as PRIMARY");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    screenshot(&client, "mongodb.png").await;
    assert!(text(&client, "#mongodb-summary").await.contains("PSA"));
    assert!(text(&client, "#mongodb-note").await.contains("caught up"));
    assert_eq!(text(&client, "#actuators-heading").await, "Actuators of the active site");
    assert_eq!(text(&client, "#scheduled").await, "none");

    // Without the witness, site-b alone keeps no lease: its page says there
    // is no active site instead of heading its own idle actuators as the
    // active site's.
    let epoch = text(&client, "#epoch").await;
    c.kill9("witness");
    let deadline = Instant::now() + Duration::from_secs(60);
    while text(&client, "#actuators-heading").await != "No active site" {
        assert!(Instant::now() < deadline, "site-b's page never said there is no active site");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    screenshot(&client, "no-active-site.png").await;
    assert_eq!(text(&client, "#active-site").await, "none");
    assert_eq!(text(&client, "#epoch").await, format!("– (last {epoch})"));
    assert_eq!(text(&client, "#actuators-of").await, "(actuators of site-b, not active)");
    client.close().await.expect("close the session");
    drop(driver);
}
