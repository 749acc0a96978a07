//! moto, an AWS emulator (the PyPI package `moto[server]`, written
//! independently of this project; it is not AWS), as a real process for
//! tests: `moto_server` on a loopback port, started from the virtualenv
//! that `scripts/setup.sh` installs, with a Route 53 hosted zone made through its
//! API. Dropping it kills the process.
//!
//! The virtualenv is `$MOTO_VENV`, by default `moto-venv` in the cargo
//! target directory. Without it the test fails, saying how to install it.
//!
//! The emulator does not check signatures; the requests this harness makes
//! itself carry an `Authorization` header only so that the emulator knows
//! they are for Route 53.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::free_port;

/// The environment variable naming the virtualenv.
pub const VENV_VAR: &str = "MOTO_VENV";
/// The version `scripts/setup.sh` installs.
pub const VERSION: &str = "5.2.5";
/// The `Authorization` header of the harness's own requests (the emulator
/// reads the service from its credential scope).
const AUTHORIZATION: &str =
    "AWS4-HMAC-SHA256 Credential=AKIDHARNESS/20260101/us-east-1/route53/aws4_request, SignedHeaders=host, \
     Signature=0";

/// The virtualenv holding `moto_server`.
pub fn venv() -> PathBuf {
    crate::venv::locate(VENV_VAR, "moto-venv")
}

fn server() -> PathBuf {
    let bin = venv().join("bin").join("moto_server");
    assert!(
        bin.exists(),
        "moto (an AWS emulator) is not installed: {} is missing. Run scripts/setup.sh as root, or: python3 -m venv {v} && \
         {v}/bin/pip install 'moto[server]=={VERSION}' (or set {VENV_VAR} to a virtualenv that has it)",
        bin.display(),
        v = venv().display(),
    );
    bin
}

/// A running moto server.
pub struct Moto {
    child: Child,
    dir: tempfile::TempDir,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// One record set as the emulator lists it: name, type, TTL, values.
pub type Listed = (String, String, u32, Vec<String>);

impl Moto {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start() -> Moto {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("log file");
        let child = Command::new(server())
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&moto.addr, Duration::from_millis(500)).is_err() {
            let exited = moto.child.try_wait().ok().flatten();
            assert!(exited.is_none(), "moto_server exited ({exited:?}):\n{}", moto.log());
            assert!(Instant::now() < deadline, "moto_server never listened on {}:\n{}", moto.addr, moto.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// `http://127.0.0.1:port`, the actuators' `endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the server logged (one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// One request on its own connection (the emulator closes it after
    /// answering): the HTTP status and the body.
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(10)).expect("connect to moto");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        stream.set_write_timeout(Some(Duration::from_secs(30))).expect("write timeout");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {AUTHORIZATION}\r\nContent-Type: \
             application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes())).expect("send to moto");
        let mut answer = Vec::new();
        stream.take(16 << 20).read_to_end(&mut answer).expect("moto's answer");
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status line");
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    /// Creates hosted zone `name` and gives its id.
    pub fn create_zone(&self, name: &str) -> String {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CreateHostedZoneRequest \
             xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Name>{name}</Name>\
             <CallerReference>{name}-{}</CallerReference></CreateHostedZoneRequest>",
            std::process::id()
        );
        let (status, text) = self.request("POST", "/2013-04-01/hostedzone", &body);
        assert_eq!(status, 201, "CreateHostedZone: {text}");
        let doc = roxmltree::Document::parse(&text).expect("XML");
        let id = doc.descendants().find(|n| n.has_tag_name("Id")).and_then(|n| n.text()).expect("zone id");
        id.trim_start_matches("/hostedzone/").to_owned()
    }

    /// Every record set of `zone` with a name in `names` (fully qualified,
    /// lowercase), sorted.
    pub fn record_sets(&self, zone: &str, names: &[&str]) -> Vec<Listed> {
        let (status, text) = self.request("GET", &format!("/2013-04-01/hostedzone/{zone}/rrset"), "");
        assert_eq!(status, 200, "ListResourceRecordSets: {text}");
        let doc = roxmltree::Document::parse(&text).expect("XML");
        let mut out: Vec<Listed> = Vec::new();
        for set in doc.descendants().filter(|n| n.has_tag_name("ResourceRecordSet")) {
            let text_of = |tag: &str| {
                set.children().find(|c| c.has_tag_name(tag)).and_then(|c| c.text()).unwrap_or_default().to_owned()
            };
            let name = text_of("Name").to_ascii_lowercase();
            if !names.contains(&name.as_str()) {
                continue;
            }
            let mut values: Vec<String> = set
                .descendants()
                .filter(|n| n.has_tag_name("Value"))
                .filter_map(|n| n.text().map(str::to_owned))
                .collect();
            values.sort();
            out.push((name, text_of("Type"), text_of("TTL").parse().unwrap_or(0), values));
        }
        out.sort();
        out
    }

    /// Sends a change batch of `(action, name, type, ttl, value)` changes
    /// as another tool would: the HTTP status and the answer.
    pub fn change(&self, zone: &str, changes: &[(&str, &str, &str, u32, &str)]) -> (u16, String) {
        let mut body = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ChangeResourceRecordSetsRequest \
             xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeBatch><Changes>",
        );
        for (action, name, rtype, ttl, value) in changes {
            let value = value.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
            body.push_str(&format!(
                "<Change><Action>{action}</Action><ResourceRecordSet><Name>{name}</Name><Type>{rtype}</Type>\
                 <TTL>{ttl}</TTL><ResourceRecords><ResourceRecord><Value>{value}</Value></ResourceRecord>\
                 </ResourceRecords></ResourceRecordSet></Change>"
            ));
        }
        body.push_str("</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>");
        self.request("POST", &format!("/2013-04-01/hostedzone/{zone}/rrset/"), &body)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
