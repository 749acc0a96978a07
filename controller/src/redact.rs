//! What may be shown to anyone who can read `/status`, `/actuators`,
//! `/history`, `/metrics` or the status page (none of which needs a
//! token): names, hosts, exit codes, HTTP status codes and short error
//! kinds. Never a command line, a URL's credentials, path or query, a
//! header value or a connection string: those stay in the daemon's own log.

/// Placeholder for whatever was left out.
pub const HIDDEN: &str = "…";

/// `scheme://host[:port]`, with `/…` standing for any path, query or
/// fragment; credentials (userinfo) are dropped.
pub fn url_for_display(url: &reqwest::Url) -> String {
    // `host_str` writes an IPv6 address in brackets.
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let more = url.path() != "/" || url.query().is_some() || url.fragment().is_some();
    let tail = if more { format!("/{HIDDEN}") } else { "/".to_owned() };
    format!("{}://{host}{port}{tail}", url.scheme())
}

/// Like [`url_for_display`] for a URL still in text form; text that is not
/// a URL is not shown at all.
pub fn url_text_for_display(text: &str) -> String {
    reqwest::Url::parse(text)
        .map_or_else(|_| format!("(a URL that cannot be parsed: {HIDDEN})"), |u| url_for_display(&u))
}

/// A reqwest error in words without the URL it carries (which may hold
/// credentials or a secret path), with its causes: e.g. `error sending
/// request: client error (Connect): tcp connect error: Connection refused`.
pub fn http_error(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

/// An error and its sources, joined with `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        // Some errors repeat their source in their own text.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// `text` with every occurrence of each secret replaced by [`HIDDEN`];
/// empty secrets are ignored. Longer secrets go first, so a secret that
/// contains another is hidden whole.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut ordered: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
    ordered.iter().fold(text.to_owned(), |t, s| t.replace(s.as_str(), HIDDEN))
}

/// `text` with what AWS error messages say of an account left out: ARNs
/// (`arn:…` up to a space or quote), twelve-digit account ids and access
/// key ids (`AKIA…`, `ASIA…`), each replaced by [`HIDDEN`].
pub fn aws_identifiers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    while i < chars.len() {
        let at_start = i == 0 || !word_char(chars[i - 1]);
        let rest: String = chars[i..chars.len().min(i + 4)].iter().collect();
        if at_start && rest.eq_ignore_ascii_case("arn:") {
            let end = chars[i..]
                .iter()
                .position(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ',' | ';' | '(' | ')'))
                .map_or(chars.len(), |n| i + n);
            out.push_str(HIDDEN);
            i = end;
            continue;
        }
        if at_start && word_char(chars[i]) {
            let end = chars[i..].iter().position(|c| !word_char(*c)).map_or(chars.len(), |n| i + n);
            let word: String = chars[i..end].iter().collect();
            let account = word.len() == 12 && word.bytes().all(|b| b.is_ascii_digit());
            let key_id = word.len() == 20
                && (word.starts_with("AKIA") || word.starts_with("ASIA"))
                && word.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            out.push_str(if account || key_id { HIDDEN } else { &word });
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        url_for_display(&reqwest::Url::parse(text).unwrap())
    }

    #[test]
    fn a_url_keeps_scheme_host_and_port_only() {
        assert_eq!(
            shown("https://user:s3cret@hooks.example.com/services/T000/B000/XXXX?token=abc#frag"),
            "https://hooks.example.com/…"
        );
        assert_eq!(shown("http://127.0.0.1:8080/hook"), "http://127.0.0.1:8080/…");
        assert_eq!(shown("http://[::1]:9/x"), "http://[::1]:9/…");
        assert_eq!(shown("https://example.com/"), "https://example.com/");
        assert_eq!(shown("https://example.com/?key=1"), "https://example.com/…");
        assert_eq!(shown("https://user@example.com"), "https://example.com/");
    }

    #[test]
    fn text_that_is_not_a_url_is_not_echoed() {
        let out = url_text_for_display("not a url with password hunter2");
        assert!(!out.contains("hunter2"), "{out}");
        assert_eq!(url_text_for_display("http://u:p@h:1/a"), "http://h:1/…");
    }

    #[test]
    fn scrub_hides_every_secret_longest_first() {
        let secrets = vec!["mongodb://app:pw@db:27017".to_owned(), "pw".to_owned(), String::new()];
        assert_eq!(scrub("cannot reach mongodb://app:pw@db:27017 (pw)", &secrets), "cannot reach … (…)");
        assert_eq!(scrub("nothing here", &secrets), "nothing here");
    }

    #[tokio::test]
    async fn a_reqwest_error_is_shown_without_its_url() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://user:topsecret@127.0.0.1:{port}/secret-path?token=tok123");
        let e = reqwest::Client::new().get(&url).send().await.unwrap_err();
        // The control: reqwest's own text carries the path and query (it
        // already moves userinfo into an Authorization header).
        assert!(error_chain(&e).contains("secret-path"), "reqwest now hides the URL itself: {e}");
        let text = http_error(e);
        for secret in ["topsecret", "secret-path", "tok123", "user:"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(!text.is_empty());
    }

    #[test]
    fn aws_account_identifiers_are_left_out() {
        let message = "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: \
                       route53:ChangeResourceRecordSets on resource: arn:aws:route53:::hostedzone/Z1D633PJN98FT9 \
                       (account 123456789012, key AKIAIOSFODNN7EXAMPLE)";
        let shown = aws_identifiers(message);
        assert_eq!(
            shown,
            "User: … is not authorized to perform: route53:ChangeResourceRecordSets on resource: … (account …, \
             key …)"
        );
        // Epochs, zone ids, addresses and other numbers stay.
        let plain = "epoch 1234 of zone Z1D633PJN98FT9 at 192.0.2.10: HTTP 400 (1234567890123)";
        assert_eq!(aws_identifiers(plain), plain);
    }
}
