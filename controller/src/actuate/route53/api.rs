//! The three Route 53 calls the actuator makes, over the shared reqwest
//! client (rustls with ring), each signed with SigV4 (`aws-sigv4`):
//! `ListResourceRecordSets`, `ChangeResourceRecordSets` and `GetChange`.
//! Answers are XML, read with `roxmltree`; error answers become
//! [`ApiError::Aws`] with the code and message Route 53 gave.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use super::batch::RecordSet;
use super::credentials::Credentials;

/// The API version in every path.
const VERSION: &str = "2013-04-01";
/// Pages read for one name at most (a name holds a handful of record sets).
const MAX_PAGES: usize = 10;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer (connection refused, reset, TLS).
    #[error("{0}")]
    Transport(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// Route 53 (or the endpoint) answered with an error.
    #[error("HTTP {status}: {code}: {message}")]
    Aws {
        /// HTTP status.
        status: u16,
        /// e.g. `InvalidChangeBatch`, `NoSuchHostedZone`, `AccessDenied`.
        code: String,
        /// What it said.
        message: String,
    },
    /// An answer that is not what the API documents.
    #[error("{0}")]
    BadAnswer(String),
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Signing(String),
}

impl ApiError {
    /// The error code Route 53 gave, if it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A change's id and status (`PENDING` or `INSYNC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeInfo {
    /// The id without its `/change/` prefix.
    pub id: String,
    /// `PENDING` or `INSYNC`.
    pub status: String,
}

/// Route 53 at one endpoint, for one hosted zone.
#[derive(Clone, Debug)]
pub struct Api {
    endpoint: reqwest::Url,
    region: String,
    zone: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl Api {
    /// `endpoint` is `http(s)://host[:port]` (no path).
    pub fn new(
        endpoint: reqwest::Url,
        region: String,
        zone: String,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        Api { endpoint, region, zone, client, timeout }
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Url {
        let mut url = self.endpoint.clone();
        url.set_path(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn call(
        &self,
        creds: &Credentials,
        method: reqwest::Method,
        url: reqwest::Url,
        body: Option<String>,
    ) -> Result<String, ApiError> {
        let identity = aws_credential_types::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            creds.session_token.clone(),
            None,
            "failover",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("route53")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ApiError::Signing(e.to_string()))?
            .into();
        let bytes = body.as_deref().unwrap_or("").as_bytes();
        let signable =
            SignableRequest::new(method.as_str(), url.as_str(), std::iter::empty(), SignableBody::Bytes(bytes))
                .map_err(|e| ApiError::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| ApiError::Signing(e.to_string()))?.into_parts();
        let mut request = self.client.request(method, url).timeout(self.timeout);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/xml").body(body);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(error_of(status.as_u16(), &text))
        }
    }

    fn transport(&self, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            ApiError::TimedOut(self.timeout)
        } else {
            ApiError::Transport(crate::redact::http_error(e))
        }
    }

    /// The record sets at exactly `name` (fully qualified, lowercase),
    /// any type, simple routing only (weighted and other sets with a set
    /// identifier, and alias sets, are not this actuator's and are left
    /// out).
    pub async fn record_sets_at(&self, creds: &Credentials, name: &str) -> Result<Vec<RecordSet>, ApiError> {
        let path = format!("/{VERSION}/hostedzone/{}/rrset", self.zone);
        let mut out = Vec::new();
        let mut start_type: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("name", name), ("maxitems", "100")];
            if let Some(t) = &start_type {
                query.push(("type", t));
            }
            let text = self.call(creds, reqwest::Method::GET, self.url(&path, &query), None).await?;
            let page = parse_list(&text)?;
            let past_name = page.sets.iter().any(|s| s.name != name);
            out.extend(page.sets.into_iter().filter(|s| s.name == name));
            match page.next {
                Some((next_name, next_type)) if !past_name && next_name == name => start_type = Some(next_type),
                _ => return Ok(out),
            }
        }
        Err(ApiError::BadAnswer(format!("{name} holds more than {MAX_PAGES} pages of record sets")))
    }

    /// Sends a change batch (the XML body).
    pub async fn change(&self, creds: &Credentials, body: String) -> Result<ChangeInfo, ApiError> {
        let path = format!("/{VERSION}/hostedzone/{}/rrset/", self.zone);
        let text = self.call(creds, reqwest::Method::POST, self.url(&path, &[]), Some(body)).await?;
        parse_change_info(&text)
    }

    /// A change's status.
    pub async fn get_change(&self, creds: &Credentials, id: &str) -> Result<ChangeInfo, ApiError> {
        let path = format!("/{VERSION}/change/{id}");
        let text = self.call(creds, reqwest::Method::GET, self.url(&path, &[]), None).await?;
        parse_change_info(&text)
    }
}

/// One page of `ListResourceRecordSets`.
#[derive(Debug)]
struct Page {
    sets: Vec<RecordSet>,
    /// `NextRecordName` and `NextRecordType` when truncated.
    next: Option<(String, String)>,
}

fn parse(text: &str) -> Result<roxmltree::Document<'_>, ApiError> {
    roxmltree::Document::parse(text).map_err(|e| ApiError::BadAnswer(format!("the answer is not XML: {e}")))
}

fn child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn child_text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.text()).map(str::trim)
}

/// A name as Route 53 writes it, in the form this actuator compares:
/// lowercase with the trailing dot.
pub fn normal_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

fn parse_list(text: &str) -> Result<Page, ApiError> {
    let doc = parse(text)?;
    let root = doc.root_element();
    let bad = |what: &str| ApiError::BadAnswer(format!("ListResourceRecordSets: {what}"));
    let sets_node = child(root, "ResourceRecordSets").ok_or_else(|| bad("no ResourceRecordSets"))?;
    let mut sets = Vec::new();
    for set in sets_node.children().filter(|c| c.has_tag_name("ResourceRecordSet")) {
        if child(set, "SetIdentifier").is_some() || child(set, "AliasTarget").is_some() {
            continue;
        }
        let name = child_text(set, "Name").ok_or_else(|| bad("a record set without Name"))?;
        let rtype = child_text(set, "Type").ok_or_else(|| bad("a record set without Type"))?;
        let ttl = child_text(set, "TTL")
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| bad(&format!("{name} {rtype} has no TTL that is a number")))?;
        let values = child(set, "ResourceRecords")
            .map(|rr| {
                rr.children()
                    .filter(|c| c.has_tag_name("ResourceRecord"))
                    .filter_map(|r| child(r, "Value").and_then(|v| v.text()).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        sets.push(RecordSet { name: normal_name(name), rtype: rtype.to_owned(), ttl, values });
    }
    let truncated = child_text(root, "IsTruncated") == Some("true");
    let next = match (truncated, child_text(root, "NextRecordName"), child_text(root, "NextRecordType")) {
        (true, Some(n), Some(t)) => Some((normal_name(n), t.to_owned())),
        (true, _, _) => return Err(bad("truncated without NextRecordName and NextRecordType")),
        (false, _, _) => None,
    };
    Ok(Page { sets, next })
}

fn parse_change_info(text: &str) -> Result<ChangeInfo, ApiError> {
    let doc = parse(text)?;
    let info = child(doc.root_element(), "ChangeInfo")
        .ok_or_else(|| ApiError::BadAnswer("the answer has no ChangeInfo".into()))?;
    let id = child_text(info, "Id").ok_or_else(|| ApiError::BadAnswer("ChangeInfo has no Id".into()))?;
    let status = child_text(info, "Status").ok_or_else(|| ApiError::BadAnswer("ChangeInfo has no Status".into()))?;
    let id = id.strip_prefix("/change/").unwrap_or(id);
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ApiError::BadAnswer(format!("a change id that cannot be used: {id:?}")));
    }
    Ok(ChangeInfo { id: id.to_owned(), status: status.to_owned() })
}

/// An error answer: `<ErrorResponse><Error><Code/><Message/></Error>`, or
/// `<InvalidChangeBatch><Messages><Message/>…` as Route 53 words a refused
/// batch; anything else is told by its HTTP status alone (its body may be
/// an HTML page or worse).
pub fn error_of(status: u16, text: &str) -> ApiError {
    let unknown =
        || ApiError::Aws { status, code: "Unknown".into(), message: "an answer that is not an AWS error".into() };
    let Ok(doc) = roxmltree::Document::parse(text) else { return unknown() };
    let root = doc.root_element();
    if root.has_tag_name("InvalidChangeBatch") {
        let messages: Vec<&str> = child(root, "Messages")
            .map(|m| m.children().filter(|c| c.has_tag_name("Message")).filter_map(|c| c.text()).collect())
            .unwrap_or_default();
        return ApiError::Aws { status, code: "InvalidChangeBatch".into(), message: messages.join("; ") };
    }
    let error = if root.has_tag_name("Error") { Some(root) } else { child(root, "Error") };
    match error.and_then(|e| child_text(e, "Code").map(|code| (code, child_text(e, "Message").unwrap_or("")))) {
        Some((code, message)) => ApiError::Aws { status, code: code.to_owned(), message: message.to_owned() },
        None => unknown(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_page_keeps_simple_record_sets_and_the_next_start() {
        let xml = r#"<?xml version="1.0"?>
<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
 <ResourceRecordSets>
  <ResourceRecordSet><Name>App.Example.test.</Name><Type>A</Type><TTL>30</TTL>
   <ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord>
   <ResourceRecord><Value>192.0.2.2</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>
  <ResourceRecordSet><Name>app.example.test.</Name><Type>AAAA</Type><SetIdentifier>w</SetIdentifier>
   <Weight>1</Weight><TTL>30</TTL><ResourceRecords><ResourceRecord><Value>::1</Value></ResourceRecord>
   </ResourceRecords></ResourceRecordSet>
 </ResourceRecordSets>
 <IsTruncated>true</IsTruncated><NextRecordName>app.example.test.</NextRecordName>
 <NextRecordType>TXT</NextRecordType><MaxItems>2</MaxItems>
</ListResourceRecordSetsResponse>"#;
        let page = parse_list(xml).expect("page");
        assert_eq!(
            page.sets,
            [RecordSet {
                name: "app.example.test.".into(),
                rtype: "A".into(),
                ttl: 30,
                values: vec!["192.0.2.1".into(), "192.0.2.2".into()],
            }]
        );
        assert_eq!(page.next, Some(("app.example.test.".into(), "TXT".into())));
    }

    #[test]
    fn errors_keep_route53_s_code_and_message() {
        let refused = r#"<?xml version="1.0"?><InvalidChangeBatch xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Messages><Message>Tried to delete resource record set [name='_failover.example.test.', type='TXT'] but the values provided do not match the current values</Message></Messages><RequestId>x</RequestId></InvalidChangeBatch>"#;
        let e = error_of(400, refused);
        assert_eq!(e.code(), Some("InvalidChangeBatch"));
        assert!(e.to_string().contains("do not match the current values"), "{e}");
        let denied = r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/x is not authorized</Message></Error></ErrorResponse>"#;
        assert_eq!(error_of(403, denied).code(), Some("AccessDenied"));
        let html = error_of(502, "<html><body>bad gateway");
        assert_eq!(html.code(), Some("Unknown"));
        assert!(!html.to_string().contains("gateway"));
    }

    #[test]
    fn change_ids_are_read_without_their_prefix_and_checked() {
        let ok = "<ChangeResourceRecordSetsResponse><ChangeInfo><Id>/change/C2682N5HXP0BZ4</Id>\
                  <Status>PENDING</Status></ChangeInfo></ChangeResourceRecordSetsResponse>";
        assert_eq!(
            parse_change_info(ok).expect("info"),
            ChangeInfo { id: "C2682N5HXP0BZ4".into(), status: "PENDING".into() }
        );
        let odd = "<GetChangeResponse><ChangeInfo><Id>/change/../x</Id><Status>INSYNC</Status></ChangeInfo>\
                   </GetChangeResponse>";
        assert!(parse_change_info(odd).is_err());
    }
}
