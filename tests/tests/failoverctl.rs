//! `failoverctl` on its own, with no cluster: what it does with a closed
//! stdout, an endpoint without a port, an endpoint nobody listens on, and a
//! token file. Only 127.0.0.0/8.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use failover_tests::cluster::{bin_dir, into_closed_pipe};

fn failoverctl(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin_dir().join("failoverctl"));
    cmd.args(args)
        .env_remove("FAILOVERCTL_ENDPOINTS")
        .env_remove("FAILOVERCTL_TOKEN")
        .env_remove("FAILOVERCTL_TOKEN_FILE")
        .env_remove("FAILOVERCTL_CA_FILE")
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    failoverctl(args).output().expect("run failoverctl")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    for args in [&["completions", "bash"][..], &["man"], &["certs", "--help"]] {
        let out = into_closed_pipe(failoverctl(args));
        assert!(!stderr(&out).contains("panicked"), "{args:?}: {}", stderr(&out));
        assert_ne!(out.status.code(), Some(101), "{args:?}: {}", stderr(&out));
    }
}

/// A stand-in for a node that speaks only plain HTTP, on `listener`: it
/// answers every request with `answer` (JSON, 200), answers a TLS hello the
/// way a plain HTTP server does (400, closed), and keeps every byte it was
/// sent, connection by connection, until `stop` is set.
fn plain_http_stub(
    listener: TcpListener,
    answer: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let mut received = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = stream.read(&mut chunk).unwrap_or(0);
                got.extend_from_slice(&chunk[..n]);
                if n == 0 || got.first() == Some(&0x16) || request_complete(&got) {
                    break;
                }
            }
            let reply = if got.first() == Some(&0x16) {
                "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_owned()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{answer}",
                    answer.len()
                )
            };
            let _ = stream.write_all(reply.as_bytes());
            received.push(got);
        }
        received
    })
}

/// Whether `got` holds a whole HTTP request: its head and the body its
/// content-length announces.
fn request_complete(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    got.len() >= end + 4 + length
}

/// Stops the stub and returns what it received, as text.
fn stop_stub(
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    stub: std::thread::JoinHandle<Vec<Vec<u8>>>,
) -> Vec<String> {
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let received = stub.join().expect("stub server");
    received.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect()
}

#[test]
fn an_endpoint_without_a_port_is_called_on_port_8400_and_a_read_falls_back_to_plain_http() {
    // Another loopback address than 127.0.0.1, so port 8400 is free there.
    let listener = TcpListener::bind("127.0.0.77:8400").expect("bind 127.0.0.77:8400");
    let stop = std::sync::Arc::default();
    let stub = plain_http_stub(listener, r#"{"node":"port-8400","role":"standby"}"#, std::sync::Arc::clone(&stop));
    let out = run(&["-e", "127.0.0.77", "status", "--json"]);
    let received = stop_stub(&stop, stub);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("port-8400"));
    // HTTPS first (a TLS hello), then the read over plain HTTP.
    assert!(received.first().is_some_and(|r| r.as_bytes().first() == Some(&0x16)), "{received:?}");
    assert!(received.iter().any(|r| r.starts_with("GET /status ")), "{received:?}");
    let help = run(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("8400"), "--endpoint's help names the default port");
}

#[test]
fn a_token_never_goes_in_clear_text_to_an_endpoint_without_a_scheme() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let stop = std::sync::Arc::default();
    let answer = r#"{"ok":true,"node":"stub","before":{}}"#;
    let stub = plain_http_stub(listener, answer, std::sync::Arc::clone(&stop));
    let commands: [&[&str]; 4] =
        [&["pause"], &["switchover", "--to", "site-b"], &["maintenance", "on", "--site", "site-b"], &["approve"]];
    let mut refusals = Vec::new();
    for args in commands {
        let with_flag = failoverctl(&[&["-e", &address, "--token", "s3cret-in-clear"][..], args].concat())
            .output()
            .expect("run failoverctl");
        let from_env = failoverctl(args)
            .env("FAILOVERCTL_ENDPOINTS", &address)
            .env("FAILOVERCTL_TOKEN", "s3cret-in-clear")
            .output()
            .expect("run failoverctl");
        refusals.push((args, with_flag));
        refusals.push((args, from_env));
    }
    let received = stop_stub(&stop, stub);
    for r in &received {
        assert!(!r.contains("Bearer") && !r.contains("s3cret"), "the token went over plain HTTP: {r:?}");
    }
    assert!(!received.is_empty(), "failoverctl never called the endpoint");
    for (args, out) in refusals {
        assert!(!out.status.success(), "{args:?} succeeded without HTTPS");
        let err = stderr(&out);
        assert!(err.contains(&format!("http://{address}")) && err.contains("https://"), "{args:?}: {err}");
    }
}

#[test]
fn an_endpoint_written_http_gets_the_token_as_the_operator_asked() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let stop = std::sync::Arc::default();
    let answer = r#"{"ok":true,"node":"stub","before":{}}"#;
    let stub = plain_http_stub(listener, answer, std::sync::Arc::clone(&stop));
    let out = run(&["-e", &format!("http://{address}"), "--token", "s3cret-in-clear", "approve"]);
    let received = stop_stub(&stop, stub);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        received.iter().any(|r| r.starts_with("POST /admin/approve ") && r.contains("Bearer s3cret-in-clear")),
        "{received:?}"
    );
    assert!(received.iter().all(|r| !r.as_bytes().starts_with(&[0x16])), "HTTPS tried for http://: {received:?}");
}

#[test]
fn an_endpoint_nobody_listens_on_says_the_connection_was_refused() {
    // Port 1 on loopback: nothing listens there.
    let out = run(&["-e", "127.0.0.1:1", "status"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cannot connect") && err.contains("refused"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "names the endpoint: {err}");
}

#[test]
fn an_endpoint_that_accepts_but_never_answers_says_the_request_timed_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    // Takes the connection and holds it, silent, until failoverctl is done.
    let holder = std::thread::spawn(move || listener.accept().map(|(conn, _)| conn));
    let out = run(&["-e", &address, "status"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains(&address), "names the endpoint: {err}");
    assert!(holder.join().expect("holder").is_ok(), "failoverctl never connected");
}

#[test]
fn a_token_file_that_is_missing_empty_or_given_with_a_token_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, " \n").expect("write");
    let missing_arg = missing.display().to_string();
    let empty_arg = empty.display().to_string();
    let out = run(&["-e", "127.0.0.1:1", "--token-file", &missing_arg, "pause"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("--token-file {missing_arg}: cannot read it")), "{}", stderr(&out));
    let out = failoverctl(&["-e", "127.0.0.1:1", "pause"])
        .env("FAILOVERCTL_TOKEN_FILE", &empty)
        .output()
        .expect("run failoverctl");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the file is empty"), "{}", stderr(&out));
    let out = run(&["-e", "127.0.0.1:1", "--token", "x", "--token-file", &empty_arg, "pause"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot be used with"), "{}", stderr(&out));
}
