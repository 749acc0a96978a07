use super::*;

#[test]
fn fence_text_reads_back_and_junk_is_named() {
    assert_eq!(parse_fence(&fence_text(12, "site-a")), Ok((12, "site-a".into())));
    assert_eq!(parse_fence(&fence_text(1 << 48, "site-a")), Ok((1 << 48, "site-a".into())));
    assert_eq!(parse_fence("epoch=0 site=b"), Ok((0, "b".into())));
    assert!(parse_fence("epoch=x site=a").is_err());
    assert!(parse_fence("hello").unwrap_err().to_string().contains("hello"));
}

#[test]
fn a_fence_record_reads_only_as_the_cluster_writes_it() {
    use crate::actuate::fence::FenceValueError::{Malformed, OutOfRange};
    let malformed = [
        "epoch=+7 site=a",
        "epoch=-1 site=a",
        "epoch= 7 site=a",
        "epoch=07 site=a",
        "epoch=7.0 site=a",
        "epoch=7e0 site=a",
        "epoch=0x7 site=a",
        "epoch=7  site=a",
        "epoch=7\tsite=a",
        " epoch=7 site=a",
        "epoch=7 site=a ",
        "xepoch=7 site=a",
        "site=a epoch=7",
        "epoch=7",
        "epoch=7 site=",
        "epoch=7 site=a b",
        "epoch=7 site=a epoch=9",
        "epoch=7 site=a=b",
        "EPOCH=7 site=a",
        "",
    ];
    for text in malformed {
        match parse_fence(text) {
            Err(Malformed { found }) => assert_eq!(found, format!("{text:?}")),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    for (text, epoch) in [
        ("epoch=281474976710657 site=a", "281474976710657"),
        ("epoch=18446744073709551617 site=a", "18446744073709551617"),
        ("epoch=18446744073709551615 site=a", "18446744073709551615"),
    ] {
        match parse_fence(text) {
            Err(OutOfRange { found }) => assert!(found.contains(epoch) && found.contains(text), "{found}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
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
