//! Command dispatch: each command a test server member answers, against
//! the shared [`ReplicaSet`]. Unknown commands get `CommandNotFound`, as
//! from a real server, so nothing is silently accepted.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

use super::query::{self, Unsupported};
use super::set::{CommandError, ReplicaSet};

/// The answer to one command at member `at`.
pub fn run(set: &mut ReplicaSet, at: usize, command: &Document, connection_id: i64) -> Document {
    let name = command.keys().next().cloned().unwrap_or_default();
    let result = match name.as_str() {
        "hello" | "isMaster" | "ismaster" => Ok(set.hello(at, connection_id)),
        "ping" | "endSessions" | "killCursors" => Ok(doc! { "ok": 1.0 }),
        "saslStart" | "saslContinue" | "authenticate" => {
            Err(CommandError::new(18, "AuthenticationFailed", "Authentication failed (the test server has no users)."))
        }
        "replSetGetStatus" => Ok(set.status(at)),
        "replSetGetConfig" => Ok(doc! { "config": set.config.clone(), "ok": 1.0 }),
        "replSetReconfig" => reconfig(set, at, command),
        "replSetStepDown" => step_down(set, at, command),
        "find" => find(set, command),
        "getMore" => Err(CommandError::new(43, "CursorNotFound", "the test server keeps no cursors")),
        "insert" => write(set, at, command, insert),
        "update" => write(set, at, command, update),
        "findAndModify" | "findandmodify" => write(set, at, command, find_and_modify),
        other => {
            Err(CommandError::new(59, "CommandNotFound", format!("no such command: '{other}' (MongoDB test server)")))
        }
    };
    result.unwrap_or_else(|e| doc! { "ok": 0.0, "errmsg": e.message, "code": e.code, "codeName": e.code_name })
}

fn unsupported(e: Unsupported) -> CommandError {
    CommandError::new(2, "BadValue", e.to_string())
}

fn namespace(command: &Document, name: &str) -> Result<String, CommandError> {
    let coll = command
        .get_str(name)
        .map_err(|_| CommandError::new(2, "BadValue", format!("{name} needs a collection name")))?;
    let db = command.get_str("$db").unwrap_or("test");
    Ok(format!("{db}.{coll}"))
}

fn seconds(command: &Document, key: &str, default: f64) -> Duration {
    Duration::from_secs_f64(super::set::number(command, key, default).clamp(0.0, 86_400.0))
}

fn reconfig(set: &mut ReplicaSet, at: usize, command: &Document) -> Result<Document, CommandError> {
    let config = command
        .get_document("replSetReconfig")
        .map_err(|_| CommandError::new(14, "TypeMismatch", "replSetReconfig needs a config document"))?
        .clone();
    set.reconfig(at, config, command.get_bool("force").unwrap_or(false))?;
    Ok(doc! { "ok": 1.0 })
}

fn step_down(set: &mut ReplicaSet, at: usize, command: &Document) -> Result<Document, CommandError> {
    let freeze = seconds(command, "replSetStepDown", 60.0);
    let catch_up = seconds(command, "secondaryCatchUpPeriodSecs", 10.0);
    // As MongoDB (and SecantusDB) answer it.
    if freeze <= catch_up {
        return Err(CommandError::new(2, "BadValue", "stepdown period must be longer than secondaryCatchUpPeriodSecs"));
    }
    set.step_down(at, freeze, catch_up, command.get_bool("force").unwrap_or(false))?;
    Ok(doc! { "ok": 1.0 })
}

fn find(set: &ReplicaSet, command: &Document) -> Result<Document, CommandError> {
    let ns = namespace(command, "find")?;
    let filter = command.get_document("filter").cloned().unwrap_or_default();
    let limit = command.get_i64("limit").ok().or_else(|| command.get_i32("limit").ok().map(i64::from)).unwrap_or(0);
    let mut docs = Vec::new();
    for d in set.collections.get(&ns).into_iter().flatten() {
        if query::matches(d, &filter).map_err(unsupported)? {
            docs.push(Bson::Document(d.clone()));
        }
    }
    if let Some(Bson::Document(sort)) = command.get("sort") {
        if let Some((key, dir)) = sort.iter().next() {
            let desc = matches!(dir, Bson::Int32(-1) | Bson::Int64(-1) | Bson::Double(-1.0));
            docs.sort_by(|a, b| {
                let (x, y) = (a.as_document().and_then(|d| d.get(key)), b.as_document().and_then(|d| d.get(key)));
                let ord = x.zip(y).and_then(|(x, y)| query::compare(x, y)).unwrap_or(std::cmp::Ordering::Equal);
                if desc {
                    ord.reverse()
                } else {
                    ord
                }
            });
        }
    }
    if limit > 0 {
        docs.truncate(limit as usize);
    }
    Ok(doc! { "cursor": { "firstBatch": docs, "id": 0_i64, "ns": ns }, "ok": 1.0 })
}

type WriteOp = fn(&mut ReplicaSet, &str, &Document) -> Result<Document, CommandError>;

/// Runs a write at the primary, then answers its write concern: with
/// `w: "majority"` and too few data members up it reports
/// `WriteConcernFailed` at once (a real server would first wait `wtimeout`).
fn write(set: &mut ReplicaSet, at: usize, command: &Document, op: WriteOp) -> Result<Document, CommandError> {
    if set.primary != Some(at) {
        return Err(CommandError::not_primary(&set.members[at].host));
    }
    let name = command.keys().next().cloned().unwrap_or_default();
    let ns = namespace(command, &name)?;
    let mut reply = op(set, &ns, command)?;
    set.record_write();
    let majority =
        command.get_document("writeConcern").ok().and_then(|wc| wc.get_str("w").ok()).is_some_and(|w| w == "majority");
    if majority && !set.majority_writes_possible() {
        reply.insert(
            "writeConcernError",
            doc! {
                "code": 64,
                "codeName": "WriteConcernFailed",
                "errmsg": "waiting for replication timed out: not enough data-bearing voting members are up",
                "errInfo": { "wtimeout": true },
            },
        );
    }
    Ok(reply)
}

fn duplicate(index: usize, ns: &str, id: &Bson) -> Document {
    doc! {
        "index": index as i32,
        "code": 11000,
        "errmsg": format!("E11000 duplicate key error collection: {ns} index: _id_ dup key: {{ _id: {id} }}"),
    }
}

fn insert_one(set: &mut ReplicaSet, ns: &str, mut doc: Document) -> Result<Bson, Bson> {
    let id = doc.get("_id").cloned().unwrap_or_else(|| Bson::ObjectId(mongodb::bson::oid::ObjectId::new()));
    let coll = set.collections.entry(ns.to_owned()).or_default();
    if coll.iter().any(|d| d.get("_id") == Some(&id)) {
        return Err(id);
    }
    if !doc.contains_key("_id") {
        let mut with_id = doc! { "_id": id.clone() };
        with_id.extend(doc);
        doc = with_id;
    }
    coll.push(doc);
    Ok(id)
}

fn insert(set: &mut ReplicaSet, ns: &str, command: &Document) -> Result<Document, CommandError> {
    let docs =
        command.get_array("documents").map_err(|_| CommandError::new(2, "BadValue", "insert needs documents"))?;
    let (mut n, mut errors) = (0, Vec::new());
    for (i, d) in docs.iter().enumerate() {
        let d =
            d.as_document().cloned().ok_or_else(|| CommandError::new(2, "BadValue", "a document is not a document"))?;
        match insert_one(set, ns, d) {
            Ok(_) => n += 1,
            Err(id) => {
                errors.push(Bson::Document(duplicate(i, ns, &id)));
                if command.get_bool("ordered").unwrap_or(true) {
                    break;
                }
            }
        }
    }
    let mut reply = doc! { "n": n, "ok": 1.0 };
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
    Ok(reply)
}

/// What one update or upsert did.
struct Updated {
    matched: i32,
    modified: i32,
    upserted: Option<Bson>,
    after: Option<Document>,
}

/// One update or upsert; `Ok(Err(id))` when an upsert hit an existing _id.
fn update_one(
    set: &mut ReplicaSet,
    ns: &str,
    filter: &Document,
    change: &Document,
    upsert: bool,
) -> Result<Result<Updated, Bson>, CommandError> {
    let coll = set.collections.entry(ns.to_owned()).or_default();
    let mut found = None;
    for (i, d) in coll.iter().enumerate() {
        if query::matches(d, filter).map_err(unsupported)? {
            found = Some(i);
            break;
        }
    }
    if let Some(i) = found {
        let before = coll[i].clone();
        query::apply(&mut coll[i], change, false).map_err(unsupported)?;
        let modified = i32::from(coll[i] != before);
        return Ok(Ok(Updated { matched: 1, modified, upserted: None, after: Some(coll[i].clone()) }));
    }
    if !upsert {
        return Ok(Ok(Updated { matched: 0, modified: 0, upserted: None, after: None }));
    }
    let mut doc = query::seed_from_filter(filter);
    query::apply(&mut doc, change, true).map_err(unsupported)?;
    match insert_one(set, ns, doc) {
        Ok(id) => {
            let stored = set.collections[ns].iter().find(|d| d.get("_id") == Some(&id)).cloned();
            Ok(Ok(Updated { matched: 0, modified: 0, upserted: Some(id), after: stored }))
        }
        Err(id) => Ok(Err(id)),
    }
}

fn update(set: &mut ReplicaSet, ns: &str, command: &Document) -> Result<Document, CommandError> {
    let updates = command.get_array("updates").map_err(|_| CommandError::new(2, "BadValue", "update needs updates"))?;
    let (mut n, mut modified, mut upserted, mut errors) = (0, 0, Vec::new(), Vec::new());
    for (i, u) in updates.iter().enumerate() {
        let u = u.as_document().ok_or_else(|| CommandError::new(2, "BadValue", "an update is not a document"))?;
        if u.get_bool("multi").unwrap_or(false) {
            return Err(CommandError::new(2, "BadValue", "the MongoDB test server does not support multi updates"));
        }
        let filter = u.get_document("q").cloned().unwrap_or_default();
        let change = u.get_document("u").map_err(|_| CommandError::new(2, "BadValue", "an update needs u"))?;
        match update_one(set, ns, &filter, change, u.get_bool("upsert").unwrap_or(false))? {
            Ok(Updated { matched, modified: m, upserted: id, .. }) => {
                n += matched;
                modified += m;
                if let Some(id) = id {
                    n += 1;
                    upserted.push(Bson::Document(doc! { "index": i as i32, "_id": id }));
                }
            }
            Err(id) => {
                errors.push(Bson::Document(duplicate(i, ns, &id)));
                break;
            }
        }
    }
    let mut reply = doc! { "n": n, "nModified": modified, "ok": 1.0 };
    if !upserted.is_empty() {
        reply.insert("upserted", upserted);
    }
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
    Ok(reply)
}

fn find_and_modify(set: &mut ReplicaSet, ns: &str, command: &Document) -> Result<Document, CommandError> {
    let filter = command.get_document("query").cloned().unwrap_or_default();
    let change = command.get_document("update").map_err(|_| {
        CommandError::new(2, "BadValue", "the MongoDB test server supports findAndModify with update only")
    })?;
    let before = {
        let coll = set.collections.get(ns);
        let mut found = None;
        for d in coll.into_iter().flatten() {
            if query::matches(d, &filter).map_err(unsupported)? {
                found = Some(d.clone());
                break;
            }
        }
        found
    };
    let upsert = command.get_bool("upsert").unwrap_or(false);
    match update_one(set, ns, &filter, change, upsert)? {
        Ok(Updated { matched, upserted: id, after, .. }) => {
            let value = if command.get_bool("new").unwrap_or(false) { after } else { before };
            let mut last = doc! { "n": matched.max(i32::from(id.is_some())), "updatedExisting": matched > 0 };
            if let Some(id) = id {
                last.insert("upserted", id);
            }
            Ok(doc! { "lastErrorObject": last, "value": value.map_or(Bson::Null, Bson::Document), "ok": 1.0 })
        }
        Err(id) => Err(CommandError::new(
            11000,
            "DuplicateKey",
            format!("E11000 duplicate key error collection: {ns} dup key: {{ _id: {id} }}"),
        )),
    }
}
