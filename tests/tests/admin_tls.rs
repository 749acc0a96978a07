//! The HTTP port over TLS, end to end: the real binaries on 127.0.0.1, each
//! serving its HTTP port with its certificate from `failoverctl certs init
//! --http-name`, and `failoverctl` calling them over HTTPS with the CA.
//! Waits are conditions with generous deadlines.

use std::process::Command;

use failover_tests::cluster::{bin_dir, Spec, TestCluster};

#[tokio::test(flavor = "multi_thread")]
async fn with_tls_on_the_http_port_it_speaks_only_https_and_a_standby_forwards_admin_calls_over_it() {
    let c = TestCluster::start_with_site_a_active(Spec { https: true, ..Spec::default() }).await;
    assert_eq!(c.http_get("site-a", "/active").await, None, "plain HTTP must get no answer");
    // Without the CA the node's certificate is not trusted.
    let endpoint = format!("https://{}", c.http_address("site-a"));
    let untrusted = Command::new(bin_dir().join("failoverctl"))
        .args(["--endpoint", &endpoint, "status"])
        .env_remove("FAILOVERCTL_CA_FILE")
        .output()
        .expect("run failoverctl");
    assert!(!untrusted.status.success(), "{}", String::from_utf8_lossy(&untrusted.stdout));
    let why = String::from_utf8_lossy(&untrusted.stderr);
    assert!(why.contains("cannot connect") && why.contains("certificate"), "says it is the certificate: {why}");
    let ready = c.ctl("site-a", &["wait", "--ready", "site-b"]);
    assert!(ready.status.success(), "{}", String::from_utf8_lossy(&ready.stderr));
    // The witness cannot carry out a switchover: with TLS it forwards the
    // call, token included, to site-a itself instead of answering 421.
    let out = c.ctl("witness", &["switchover", "--to", "site-b"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("does not carry out"), "followed a 421: {stderr}");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    // An endpoint without a scheme is called over HTTPS: with the CA, a
    // call with the token goes through, and nothing is sent in clear text.
    let ca = c.certs_dir().join("ca.pem");
    let ca = ca.to_string_lossy();
    let bare = c.http_address("site-b").to_string();
    for command in ["pause", "resume"] {
        let out = Command::new(bin_dir().join("failoverctl"))
            .args(["--endpoint", &bare, "--ca-file", &ca, command])
            .env_remove("FAILOVERCTL_ENDPOINTS")
            .env_remove("FAILOVERCTL_TOKEN_FILE")
            .env("FAILOVERCTL_TOKEN", &c.token)
            .output()
            .expect("run failoverctl");
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Without the CA, the call with the token is not made over plain HTTP
    // instead: it fails, naming both ways to write the endpoint.
    let out = Command::new(bin_dir().join("failoverctl"))
        .args(["--endpoint", &bare, "pause"])
        .env_remove("FAILOVERCTL_ENDPOINTS")
        .env_remove("FAILOVERCTL_CA_FILE")
        .env_remove("FAILOVERCTL_TOKEN_FILE")
        .env("FAILOVERCTL_TOKEN", &c.token)
        .output()
        .expect("run failoverctl");
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{why}");
    assert!(why.contains("certificate") && why.contains(&format!("http://{bare}")), "{why}");
    assert_eq!(c.status("site-b").and_then(|s| s["paused"].as_bool()), Some(false));
}

/// A certificate of the HTTP port renewed under the same file names is put
/// in use by a reload: a connection made after it gets the new certificate
/// (a client that trusts only the old CA is refused, one that trusts the new
/// CA is served), and the site keeps its role and epoch.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_puts_a_renewed_https_certificate_in_use_for_new_connections() {
    let c = TestCluster::start_with_site_a_active(Spec { https: true, ..Spec::default() }).await;
    let epoch = c.epoch("site-a").expect("epoch");
    let renewed = c.certs_dir().with_file_name("renewed");
    let out = Command::new(bin_dir().join("failoverctl"))
        .args(["certs", "init", "--nodes", "site-a,site-b,witness", "--http-name", "site-a=127.0.0.1", "--out"])
        .arg(&renewed)
        .output()
        .expect("run failoverctl certs init");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for file in ["site-a.pem", "site-a.key"] {
        std::fs::copy(renewed.join(file), c.certs_dir().join(file)).expect("replace the certificate");
    }
    let out = c.ctl("site-a", &["reload", "--node", "site-a"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("admin.tls_cert_file (new content)"), "{said}");
    let status_with = |ca: &std::path::Path| {
        Command::new(bin_dir().join("failoverctl"))
            .args(["--endpoint", &format!("https://{}", c.http_address("site-a")), "status"])
            .arg("--ca-file")
            .arg(ca)
            .env_remove("FAILOVERCTL_CA_FILE")
            .env_remove("FAILOVERCTL_ENDPOINTS")
            .output()
            .expect("run failoverctl")
    };
    let old = status_with(&c.certs_dir().join("ca.pem"));
    let why = String::from_utf8_lossy(&old.stderr);
    assert!(!old.status.success() && why.contains("certificate"), "the old certificate is still served: {why}");
    let new = status_with(&renewed.join("ca.pem"));
    let shown = String::from_utf8_lossy(&new.stdout);
    assert!(new.status.success(), "{}", String::from_utf8_lossy(&new.stderr));
    assert!(shown.starts_with(&format!("active: site-a   epoch: {epoch}   ")), "{shown}");
}
