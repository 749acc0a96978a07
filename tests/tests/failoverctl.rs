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

#[test]
fn an_endpoint_without_a_port_is_called_on_port_8400() {
    // Another loopback address than 127.0.0.1, so port 8400 is free there.
    let listener = TcpListener::bind("127.0.0.77:8400").expect("bind 127.0.0.77:8400");
    listener.set_nonblocking(true).expect("non-blocking");
    let server = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut request = [0u8; 4096];
                    let n = stream.read(&mut request).unwrap_or(0);
                    let asked = String::from_utf8_lossy(&request[..n]).into_owned();
                    let body = r#"{"node":"port-8400","role":"standby"}"#;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    return asked;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        String::new()
    });
    let out = run(&["-e", "127.0.0.77", "status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("port-8400"));
    let asked = server.join().expect("stub server");
    assert!(asked.starts_with("GET /status "), "{asked}");
    let help = run(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("8400"), "--endpoint's help names the default port");
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
