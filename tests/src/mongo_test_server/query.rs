//! The small part of MongoDB's query and update language the test server
//! understands: equality and comparison filters, `$set`, `$inc`,
//! `$setOnInsert`, `$unset` and whole-document replacement. Anything else
//! is refused with an error that names it, so a test never passes on an
//! operator the server silently ignored.

use std::cmp::Ordering;

use mongodb::bson::{Bson, Document};

/// A filter or update the test server cannot evaluate.
#[derive(Debug, thiserror::Error)]
#[error("the MongoDB test server does not support {0}")]
pub struct Unsupported(pub String);

/// Whether `doc` matches `filter`.
pub fn matches(doc: &Document, filter: &Document) -> Result<bool, Unsupported> {
    for (key, cond) in filter {
        if key.starts_with('$') {
            return Err(Unsupported(format!("top-level operator {key}")));
        }
        let value = lookup(doc, key);
        let ok = match cond {
            Bson::Document(ops) if ops.keys().next().is_some_and(|k| k.starts_with('$')) => {
                let mut all = true;
                for (op, arg) in ops {
                    all &= operator(op, value, arg)?;
                }
                all
            }
            _ => value.is_some_and(|v| compare(v, cond) == Some(Ordering::Equal)),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn operator(op: &str, value: Option<&Bson>, arg: &Bson) -> Result<bool, Unsupported> {
    let ord = value.and_then(|v| compare(v, arg));
    Ok(match op {
        "$eq" => ord == Some(Ordering::Equal),
        "$ne" => ord != Some(Ordering::Equal),
        "$lt" => ord == Some(Ordering::Less),
        "$lte" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        "$gt" => ord == Some(Ordering::Greater),
        "$gte" => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        "$exists" => value.is_some() == arg.as_bool().unwrap_or(true),
        "$in" => match arg {
            Bson::Array(items) => items.iter().any(|i| value.and_then(|v| compare(v, i)) == Some(Ordering::Equal)),
            _ => return Err(Unsupported("$in without an array".into())),
        },
        other => return Err(Unsupported(format!("query operator {other}"))),
    })
}

/// A dotted path's value.
fn lookup<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut value = doc.get(parts.next()?)?;
    for part in parts {
        value = value.as_document()?.get(part)?;
    }
    Some(value)
}

/// A number of any BSON width, as f64.
pub fn as_number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

/// Orders two values of comparable types (numbers of any width with each
/// other, strings, booleans, dates, object ids); `None` otherwise.
pub fn compare(a: &Bson, b: &Bson) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
        return x.partial_cmp(&y);
    }
    match (a, b) {
        (Bson::String(x), Bson::String(y)) => Some(x.cmp(y)),
        (Bson::Boolean(x), Bson::Boolean(y)) => Some(x.cmp(y)),
        (Bson::DateTime(x), Bson::DateTime(y)) => Some(x.cmp(y)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => Some(x.cmp(y)),
        (Bson::Null, Bson::Null) => Some(Ordering::Equal),
        (Bson::Document(x), Bson::Document(y)) => (x == y).then_some(Ordering::Equal),
        _ => None,
    }
}

/// Whether `update` is made of operators (else it replaces the document).
pub fn is_operator_update(update: &Document) -> bool {
    update.keys().next().is_some_and(|k| k.starts_with('$'))
}

/// Applies `update` to `doc`; `inserting` enables `$setOnInsert`.
pub fn apply(doc: &mut Document, update: &Document, inserting: bool) -> Result<(), Unsupported> {
    if !is_operator_update(update) {
        let id = doc.get("_id").cloned();
        *doc = update.clone();
        if let Some(id) = id {
            doc.insert("_id", id);
        }
        return Ok(());
    }
    for (op, fields) in update {
        let Bson::Document(fields) = fields else {
            return Err(Unsupported(format!("{op} with a non-document argument")));
        };
        for (key, value) in fields {
            if key.contains('.') {
                return Err(Unsupported(format!("dotted update path {key}")));
            }
            match op.as_str() {
                "$set" => {
                    doc.insert(key, value.clone());
                }
                "$setOnInsert" if inserting => {
                    doc.insert(key, value.clone());
                }
                "$setOnInsert" => {}
                "$unset" => {
                    doc.remove(key);
                }
                "$inc" => {
                    let sum = match (doc.get(key), value) {
                        (None, v) => v.clone(),
                        (Some(Bson::Int32(a)), Bson::Int32(b)) => Bson::Int32(a + b),
                        (Some(Bson::Int64(a)), Bson::Int64(b)) => Bson::Int64(a + b),
                        (Some(Bson::Int64(a)), Bson::Int32(b)) => Bson::Int64(a + i64::from(*b)),
                        (Some(Bson::Int32(a)), Bson::Int64(b)) => Bson::Int64(i64::from(*a) + b),
                        _ => return Err(Unsupported(format!("$inc of {key} with these types"))),
                    };
                    doc.insert(key, sum);
                }
                other => return Err(Unsupported(format!("update operator {other}"))),
            }
        }
    }
    Ok(())
}

/// The document an upsert starts from: the filter's plain equalities.
pub fn seed_from_filter(filter: &Document) -> Document {
    filter
        .iter()
        .filter(|(k, v)| {
            !k.starts_with('$')
                && !matches!(v, Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn comparison_filters_match_across_integer_widths() {
        let d = doc! { "_id": "cluster", "epoch": 5_i64 };
        assert!(matches(&d, &doc! { "_id": "cluster", "epoch": { "$lt": 6 } }).unwrap());
        assert!(!matches(&d, &doc! { "epoch": { "$lt": 5 } }).unwrap());
        assert!(matches(&d, &doc! { "epoch": 5 }).unwrap());
        assert!(!matches(&d, &doc! { "missing": 1 }).unwrap());
        assert!(matches(&d, &doc! { "missing": { "$exists": false } }).unwrap());
        assert!(matches(&doc! {}, &doc! { "x": { "$regex": "a" } }).is_err());
    }

    #[test]
    fn updates_set_increment_and_replace() {
        let mut d = doc! { "_id": 1, "n": 1 };
        apply(&mut d, &doc! { "$set": { "a": "x" }, "$inc": { "n": 2 } }, false).unwrap();
        assert_eq!(d, doc! { "_id": 1, "n": 3, "a": "x" });
        apply(&mut d, &doc! { "b": true }, false).unwrap();
        assert_eq!(d, doc! { "b": true, "_id": 1 });
        assert!(apply(&mut d, &doc! { "$push": { "l": 1 } }, false).is_err());
        assert_eq!(seed_from_filter(&doc! { "_id": "c", "epoch": { "$lt": 3 } }), doc! { "_id": "c" });
    }
}
