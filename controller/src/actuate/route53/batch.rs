//! The fenced change batch, built from what a pass read (no I/O here).
//!
//! Route 53 applies a `ChangeResourceRecordSets` batch atomically, and a
//! `DELETE` must name the record set exactly as it stands (name, type, TTL
//! and every value) or the whole batch is refused. So the batch
//!
//! 1. `DELETE`s the fencing TXT record exactly as the pass read it (or, when
//!    the pass found none, `CREATE`s it, which fails if one exists),
//! 2. `CREATE`s it with this site's epoch, and
//! 3. `DELETE`s (exactly as read) the service names' record sets of the
//!    kind this site does not want and `UPSERT`s the ones that differ,
//!
//! is a compare-and-set on the fence: a site that read an older fence gets
//! the whole batch refused, service records included.

use std::fmt::Write;

/// The record types a service name may hold that this actuator manages.
pub const SERVICE_TYPES: [&str; 3] = ["A", "AAAA", "CNAME"];

/// One record set as Route 53 holds it (simple routing: no set identifier,
/// no alias).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSet {
    /// Fully qualified, lowercase, with the trailing dot.
    pub name: String,
    /// `A`, `AAAA`, `CNAME`, `TXT`.
    pub rtype: String,
    /// Seconds.
    pub ttl: u32,
    /// Values as Route 53 writes them (TXT values in double quotes).
    pub values: Vec<String>,
}

/// What a change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fails if the record set exists.
    Create,
    /// Fails unless the record set holds exactly these TTL and values.
    Delete,
    /// Creates or replaces.
    Upsert,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Create => "CREATE",
            Action::Delete => "DELETE",
            Action::Upsert => "UPSERT",
        }
    }
}

/// One change of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What it does.
    pub action: Action,
    /// To which record set.
    pub set: RecordSet,
}

/// The fencing record's text for `epoch` held by `site` (the same text as
/// the DNS actuator's fencing record).
pub fn fence_text(epoch: u64, site: &str) -> String {
    crate::actuate::dns::fence_text(epoch, site)
}

/// A TXT value as Route 53 holds it: the text in double quotes.
pub fn txt_value(text: &str) -> String {
    format!("\"{text}\"")
}

/// The text of a TXT value written by [`txt_value`]: exactly one quoted
/// string without quotes or backslashes inside, else `None`.
pub fn txt_text(value: &str) -> Option<&str> {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).filter(|t| !t.contains(['"', '\\']))
}

/// The fenced batch that takes the zone from what was read (`fence_read`:
/// the fencing name's TXT record sets, one at most on Route 53; the service
/// names' sets `services_read`) to `wanted` with the fence at `fence`.
/// Service sets already as wanted are left out.
pub fn plan(
    fence_read: &[RecordSet],
    fence: RecordSet,
    services_read: &[RecordSet],
    wanted: &[RecordSet],
) -> Vec<Change> {
    let mut changes = Vec::new();
    for read in fence_read {
        changes.push(Change { action: Action::Delete, set: read.clone() });
    }
    changes.push(Change { action: Action::Create, set: fence });
    for read in services_read {
        if !wanted.iter().any(|w| w.name == read.name && w.rtype == read.rtype) {
            changes.push(Change { action: Action::Delete, set: read.clone() });
        }
    }
    for want in wanted {
        if !services_read.contains(want) {
            changes.push(Change { action: Action::Upsert, set: want.clone() });
        }
    }
    changes
}

/// `text` with XML's special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The `ChangeResourceRecordSetsRequest` body for `changes`.
pub fn to_xml(changes: &[Change], comment: &str) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ChangeResourceRecordSetsRequest \
         xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeBatch>",
    );
    let _ = write!(xml, "<Comment>{}</Comment><Changes>", escape(comment));
    for change in changes {
        let set = &change.set;
        let _ = write!(
            xml,
            "<Change><Action>{}</Action><ResourceRecordSet><Name>{}</Name><Type>{}</Type><TTL>{}</TTL>\
             <ResourceRecords>",
            change.action.word(),
            escape(&set.name),
            escape(&set.rtype),
            set.ttl
        );
        for value in &set.values {
            let _ = write!(xml, "<ResourceRecord><Value>{}</Value></ResourceRecord>", escape(value));
        }
        xml.push_str("</ResourceRecords></ResourceRecordSet></Change>");
    }
    xml.push_str("</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, rtype: &str, ttl: u32, values: &[&str]) -> RecordSet {
        RecordSet {
            name: name.into(),
            rtype: rtype.into(),
            ttl,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn the_fence_is_deleted_exactly_as_read_and_created_with_the_new_epoch() {
        // The fence as another tool left it: two values and its own TTL.
        let read = set("_failover.example.test.", "TXT", 300, &["\"epoch=4 site=site-b\"", "\"stray\""]);
        let fence = set("_failover.example.test.", "TXT", 30, &[&txt_value(&fence_text(5, "site-a"))]);
        let services = [
            set("app.example.test.", "A", 30, &["192.0.2.20"]),
            set("app.example.test.", "AAAA", 30, &["2001:db8::20"]),
            set("www.example.test.", "A", 30, &["192.0.2.10"]),
        ];
        let wanted =
            [set("app.example.test.", "A", 30, &["192.0.2.10"]), set("www.example.test.", "A", 30, &["192.0.2.10"])];
        let batch = plan(std::slice::from_ref(&read), fence.clone(), &services, &wanted);
        assert_eq!(
            batch,
            [
                Change { action: Action::Delete, set: read },
                Change { action: Action::Create, set: fence },
                Change { action: Action::Delete, set: services[1].clone() },
                Change { action: Action::Upsert, set: wanted[0].clone() },
            ]
        );
        let xml = to_xml(&batch, "failover: site-a epoch 5");
        let delete = "<Change><Action>DELETE</Action><ResourceRecordSet><Name>_failover.example.test.</Name>\
                      <Type>TXT</Type><TTL>300</TTL><ResourceRecords><ResourceRecord><Value>&quot;epoch=4 \
                      site=site-b&quot;</Value></ResourceRecord><ResourceRecord><Value>&quot;stray&quot;</Value>\
                      </ResourceRecord></ResourceRecords></ResourceRecordSet></Change>";
        assert!(xml.contains(delete), "{xml}");
        let first_change = xml.find("<Change>").unwrap_or(usize::MAX);
        assert_eq!(xml.find(delete), Some(first_change), "the fence's DELETE comes first");
        let parsed = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let actions: Vec<&str> =
            parsed.descendants().filter(|n| n.has_tag_name("Action")).filter_map(|n| n.text()).collect();
        assert_eq!(actions, ["DELETE", "CREATE", "DELETE", "UPSERT"]);
    }

    #[test]
    fn an_absent_fence_is_created_which_fails_if_one_appeared() {
        let fence = set("_failover.example.test.", "TXT", 30, &["\"epoch=1 site=site-a\""]);
        let batch = plan(&[], fence.clone(), &[], &[]);
        assert_eq!(batch, [Change { action: Action::Create, set: fence }]);
    }

    #[test]
    fn txt_values_read_back_strictly() {
        assert_eq!(txt_text(&txt_value("epoch=3 site=a")), Some("epoch=3 site=a"));
        for bad in ["epoch=3 site=a", "\"a\" \"b\"", "\"a\\\"b\"", "\"", ""] {
            assert_eq!(txt_text(bad), None, "{bad:?}");
        }
    }
}
