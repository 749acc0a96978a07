use super::*;

#[test]
fn fence_text_reads_back_and_junk_is_named() {
    assert_eq!(parse_fence(&fence_text(12, "site-a")), Ok((12, "site-a".into())));
    assert!(parse_fence("epoch=x site=a").is_err());
    assert!(parse_fence("hello").unwrap_err().contains("hello"));
}

#[test]
fn bad_sections_name_the_key() {
    let mut s = toml_section(SECTION);
    let addr = ["192.0.2.1".parse().unwrap()];
    let a = DnsActuator::build(&s, "site-a", &addr).unwrap();
    assert_eq!(a.fence.to_string(), "_failover.example.test.");
    s.names = vec!["app.other.test".into()];
    assert_eq!(DnsActuator::build(&s, "site-a", &addr).unwrap_err().key, "names");
    s.names = vec!["app.example.test".into()];
    s.tsig_algorithm = "hmac-md5".into();
    assert_eq!(DnsActuator::build(&s, "site-a", &addr).unwrap_err().key, "tsig_secret");
    s.tsig_algorithm = "hmac-sha256".into();
    s.tsig_secret = Some("not base64!".into());
    assert!(DnsActuator::build(&s, "site-a", &addr).unwrap_err().problem.contains("base64"));
    s.tsig_secret = Some("c2VjcmV0".into());
    assert_eq!(DnsActuator::build(&s, "site-a", &[]).unwrap_err().key, "addresses");
}

#[test]
fn the_update_is_fenced_on_the_record_read() {
    let s = toml_section(SECTION);
    let a = DnsActuator::build(&s, "site-b", &["192.0.2.2".parse().unwrap()]).unwrap();
    let m = a.update_message(&["epoch=3 site=site-a".into()], 4);
    // Prerequisites travel in the answer section, updates in authority.
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].dns_class, DNSClass::IN);
    assert_eq!(txt_strings(&m.answers[0].data).as_deref(), Some("epoch=3 site=site-a"));
    let added: Vec<String> =
        m.authorities.iter().filter(|r| r.dns_class == DNSClass::IN).map(|r| r.data.to_string()).collect();
    assert!(added.contains(&"192.0.2.2".to_string()), "{added:?}");
    assert!(m.authorities.iter().any(|r| txt_strings(&r.data).as_deref() == Some("epoch=4 site=site-b")));
    let first = a.update_message(&[], 1);
    assert_eq!(first.answers[0].dns_class, DNSClass::NONE);
}

const SECTION: &str = r#"server = "127.0.0.1:53"
    zone = "example.test"
    names = ["app.example.test"]
    tsig_key_name = "k"
    tsig_secret = "c2VjcmV0"
"#;

fn toml_section(text: &str) -> DnsSection {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .unwrap()
}
