//! A MongoDB **test server**: a stand-in that speaks enough of the MongoDB
//! wire protocol (OP_MSG) for the real `mongodb` driver to connect to it as
//! a replica set. It is not MongoDB and is never presented as MongoDB; no
//! MongoDB server can be installed on the machines these tests run on.
//!
//! Each simulated member listens on its own port on 127.0.0.1 and answers
//! `hello`, `replSetGetStatus`, `replSetGetConfig`, `replSetReconfig`,
//! `replSetStepDown`, `find`, `insert`, `update` and `findAndModify`, with
//! `w: "majority"` write concern judged from which members are up. Tests
//! steer it through [`TestReplicaSet`]: members up or down, lag, whether
//! MongoDB's priority takeover happens, where its own election puts the
//! primary, and faults injected into the next command of a kind (connection
//! closed mid-operation, a hang, an error). It records every command so
//! tests can check what the controller asked for.

mod commands;
mod query;
mod set;
mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use query::as_number;
pub use set::ReplicaSet;

/// A member to simulate.
#[derive(Clone, Debug)]
pub enum Member {
    /// A data-bearing member with this priority.
    Data { priority: f64 },
    /// An arbiter: votes, holds no data, never primary.
    Arbiter,
}

/// Something the next command of a kind suffers.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The member closes the connection without answering.
    CloseConnection,
    /// The member answers nothing for this long, then closes.
    Hang(Duration),
    /// The member answers with this error code and name.
    Error { code: i32, code_name: &'static str },
}

struct Shared {
    set: Mutex<ReplicaSet>,
    faults: Mutex<HashMap<String, Vec<Fault>>>,
    connection_ids: AtomicI64,
}

/// A running test replica set. Dropping it stops every listener.
pub struct TestReplicaSet {
    shared: Arc<Shared>,
    hosts: Vec<String>,
    /// Bumped to close every open connection of a member.
    generations: Vec<watch::Sender<u64>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TestReplicaSet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl TestReplicaSet {
    /// Starts one listener per member on 127.0.0.1 and a set named `name`
    /// whose config has them in order (`_id` 0, 1, ...). The data member
    /// with the highest priority starts as primary.
    pub async fn start(name: &str, members: &[Member]) -> std::io::Result<Self> {
        let mut listeners = Vec::new();
        let mut config = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let host = listener.local_addr()?.to_string();
            config.push(match m {
                Member::Data { priority } => doc! {
                    "_id": i as i32, "host": &host, "arbiterOnly": false, "buildIndexes": true, "hidden": false,
                    "priority": *priority, "tags": {}, "secondaryDelaySecs": 0_i64, "votes": 1,
                },
                Member::Arbiter => doc! {
                    "_id": i as i32, "host": &host, "arbiterOnly": true, "buildIndexes": true, "hidden": false,
                    "priority": 0.0, "tags": {}, "secondaryDelaySecs": 0_i64, "votes": 1,
                },
            });
            listeners.push((host, listener));
        }
        let shared = Arc::new(Shared {
            set: Mutex::new(ReplicaSet::new(name, config)),
            faults: Mutex::new(HashMap::new()),
            connection_ids: AtomicI64::new(1),
        });
        let mut hosts = Vec::new();
        let mut generations = Vec::new();
        let mut tasks = Vec::new();
        for (index, (host, listener)) in listeners.into_iter().enumerate() {
            let (generation, _) = watch::channel(0u64);
            tasks.push(tokio::spawn(accept(listener, index, shared.clone(), generation.subscribe())));
            hosts.push(host);
            generations.push(generation);
        }
        Ok(TestReplicaSet { shared, hosts, generations, tasks })
    }

    /// `host:port` of every member, in config order.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// A connection string for the whole set.
    pub fn uri(&self) -> String {
        let name = self.lock().name.clone();
        format!("mongodb://{}/?replicaSet={name}", self.hosts.join(","))
    }

    fn lock(&self) -> MutexGuard<'_, ReplicaSet> {
        self.shared.set.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads or changes the set directly (for what the helpers below do
    /// not cover).
    pub fn with<T>(&self, f: impl FnOnce(&mut ReplicaSet) -> T) -> T {
        f(&mut self.lock())
    }

    /// A `[mongodb]` section for a controller's config in which member `i`
    /// sits beside `sites[i]`, read every 200 ms with 1 s time limits;
    /// `settings` (more `key = value` lines) go into the section.
    pub fn controller_section(&self, sites: &[&str], settings: &str) -> String {
        let mut text =
            format!("[mongodb]\nuri = \"{}\"\npoll_interval = \"200ms\"\ntimeout = \"1s\"\n{settings}\n", self.uri());
        for (host, site) in self.hosts.iter().zip(sites) {
            text.push_str(&format!("[[mongodb.members]]\nhost = \"{host}\"\nsite = \"{site}\"\n\n"));
        }
        text
    }

    /// Takes member `i` down (every connection closed, new ones closed at
    /// once) or brings it back; MongoDB's election follows.
    pub fn set_up(&self, i: usize, up: bool) {
        {
            let mut set = self.lock();
            set.members[i].up = up;
            set.elect();
        }
        if !up {
            self.generations[i].send_modify(|g| *g += 1);
        }
    }

    /// How far member `i` lags behind the primary.
    pub fn set_lag(&self, i: usize, lag: Duration) {
        self.lock().members[i].lag = lag;
    }

    /// Whether MongoDB's priority takeover happens (on by default).
    pub fn set_priority_takeover(&self, on: bool) {
        let mut set = self.lock();
        set.priority_takeover = on;
        set.elect();
    }

    /// MongoDB's own election chose member `i` (as after a failover that
    /// MongoDB decided by timing, not by our priorities).
    pub fn force_primary(&self, i: usize) {
        let mut set = self.lock();
        set.term += 1;
        set.primary = Some(i);
        set.members[i].lag = Duration::ZERO;
    }

    /// Index of the primary, if there is one.
    pub fn primary(&self) -> Option<usize> {
        self.lock().primary
    }

    /// The current replica set config document.
    pub fn config(&self) -> Document {
        self.lock().config.clone()
    }

    /// Member `i`'s entry in the config.
    pub fn member_config(&self, i: usize) -> Document {
        self.lock().member_config(i)
    }

    /// Every command named `name` received so far, with the member index.
    pub fn commands(&self, name: &str) -> Vec<(usize, Document)> {
        self.lock().log.iter().filter(|(_, c)| c.keys().next().is_some_and(|k| k == name)).cloned().collect()
    }

    /// The documents of namespace `db.collection`.
    pub fn documents(&self, ns: &str) -> Vec<Document> {
        self.lock().collections.get(ns).cloned().unwrap_or_default()
    }

    /// Puts `doc` into `db.collection` directly (as another writer would).
    pub fn put(&self, ns: &str, doc: Document) {
        let mut set = self.lock();
        let coll = set.collections.entry(ns.to_owned()).or_default();
        coll.retain(|d| d.get("_id") != doc.get("_id"));
        coll.push(doc);
    }

    /// The next command named `command` (at any member) suffers `fault`.
    pub fn fail_next(&self, command: &str, fault: Fault) {
        let mut faults = self.shared.faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        faults.entry(command.to_owned()).or_default().push(fault);
    }
}

async fn accept(listener: TcpListener, index: usize, shared: Arc<Shared>, generation: watch::Receiver<u64>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let up = shared.set.lock().is_ok_and(|s| s.members[index].up);
        if !up {
            drop(stream);
            continue;
        }
        tokio::spawn(serve(stream, index, shared.clone(), generation.clone()));
    }
}

async fn serve(stream: TcpStream, index: usize, shared: Arc<Shared>, mut generation: watch::Receiver<u64>) {
    let connection_id = shared.connection_ids.fetch_add(1, Ordering::Relaxed);
    let (mut reader, mut writer) = stream.into_split();
    generation.mark_unchanged();
    loop {
        let request = tokio::select! {
            r = wire::read_request(&mut reader) => r,
            _ = generation.changed() => return,
        };
        let Ok(Some(request)) = request else { return };
        let name = request.command.keys().next().cloned().unwrap_or_default();
        let fault = {
            let mut faults = shared.faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            faults.get_mut(&name).and_then(|f| (!f.is_empty()).then(|| f.remove(0)))
        };
        let reply = match fault {
            Some(Fault::CloseConnection) => return,
            Some(Fault::Hang(d)) => {
                tokio::time::sleep(d).await;
                return;
            }
            Some(Fault::Error { code, code_name }) => doc! {
                "ok": 0.0, "code": code, "codeName": code_name, "errmsg": format!("{code_name} (injected by the MongoDB test server)"),
            },
            None => {
                let mut set = shared.set.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if !set.members[index].up {
                    return;
                }
                if !matches!(name.as_str(), "hello" | "isMaster" | "ismaster") {
                    set.log.push((index, strip_driver_fields(&request.command)));
                }
                commands::run(&mut set, index, &request.command, connection_id)
            }
        };
        if request.flags & wire::MORE_TO_COME != 0 {
            continue;
        }
        if wire::write_reply(&mut writer, request.request_id, &reply).await.is_err() {
            return;
        }
    }
}

/// The command as the controller wrote it, without the fields the driver
/// adds to every command.
fn strip_driver_fields(command: &Document) -> Document {
    command
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "lsid" | "$clusterTime" | "$readPreference" | "txnNumber" | "$db"))
        .map(|(k, v): (&String, &Bson)| (k.clone(), v.clone()))
        .collect()
}
