use super::*;

fn env() -> Environment {
    Environment::from_pairs([("AWS_ACCESS_KEY_ID", "AKIDTEST".to_owned()), ("AWS_SECRET_ACCESS_KEY", "s".to_owned())])
}

fn section(extra: &str) -> Route53Section {
    let text = format!(
        "hosted_zone_id = \"Z0123456789ABC\"\nnames = [\"app.example.test\", \"WWW.example.test.\"]\n\
         fence_name = \"_failover.example.test\"\n{extra}"
    );
    toml::from_str(&text).expect("section")
}

fn build(extra: &str) -> Result<Route53Actuator, BadSetting> {
    Route53Actuator::build_with(&section(extra), "site-a", &["192.0.2.10".parse().expect("ip")], env())
}

#[test]
fn every_bad_setting_names_its_key() {
    let cases = [
        ("hosted_zone_id = \"Z01/../x\"", "hosted_zone_id"),
        ("names = []", "names"),
        ("names = [\"app..example\"]", "names"),
        ("names = [\"*.example.test\"]", "names"),
        ("fence_name = \"_fail*over.example.test\"", "fence_name"),
        ("cname = \"x.example.test\"\naddresses = [\"192.0.2.1\"]", "cname"),
        ("addresses = []", "addresses"),
        ("fence_name = \"app.example.test\"", "fence_name"),
        ("timeout = \"0s\"", "timeout"),
        ("sync_timeout = \"0s\"", "sync_timeout"),
        ("region = \"us east\"", "region"),
        ("endpoint = \"ftp://127.0.0.1\"", "endpoint"),
        ("endpoint = \"http://127.0.0.1:5000/path\"", "endpoint"),
        ("profile = \"[x]\"", "profile"),
    ];
    for (extra, key) in cases {
        // A key given twice is a TOML error: replace the default instead.
        let text = "hosted_zone_id = \"Z0123456789ABC\"\nnames = [\"app.example.test\"]\n\
                    fence_name = \"_failover.example.test\"";
        let mut table: toml::Table = toml::from_str(text).expect("base");
        let over: toml::Table = toml::from_str(extra).expect("override");
        table.extend(over);
        let s: Route53Section = table.try_into().expect("section");
        match Route53Actuator::build_with(&s, "site-a", &["192.0.2.10".parse().expect("ip")], env()) {
            Err(e) => assert_eq!(e.key, key, "{extra}: {}", e.problem),
            Ok(_) => panic!("{extra}: accepted"),
        }
    }
    // No credentials anywhere: the profile key is named, with what to set.
    let none = Environment::from_pairs([("HOME", "/nonexistent".to_owned())]);
    let e = Route53Actuator::build_with(&section(""), "site-a", &["192.0.2.10".parse().expect("ip")], none)
        .expect_err("refused");
    assert_eq!(e.key, "profile");
    assert!(e.problem.contains("AWS_ACCESS_KEY_ID"), "{}", e.problem);
}

#[test]
fn names_are_normalised_and_wanted_sets_follow_the_addresses() {
    let a = build("addresses = [\"2001:db8::1\", \"192.0.2.2\", \"192.0.2.1\"]").expect("build");
    assert_eq!(a.name, "route53:Z0123456789ABC");
    assert_eq!(a.fence_name(), "_failover.example.test.");
    let wanted: Vec<(String, String, Vec<String>)> =
        a.wanted().into_iter().map(|s| (s.name, s.rtype, s.values)).collect();
    let v4 = vec!["192.0.2.1".to_owned(), "192.0.2.2".to_owned()];
    let v6 = vec!["2001:db8::1".to_owned()];
    assert_eq!(
        wanted,
        [
            ("app.example.test.".into(), "A".into(), v4.clone()),
            ("app.example.test.".into(), "AAAA".into(), v6.clone()),
            ("www.example.test.".into(), "A".into(), v4),
            ("www.example.test.".into(), "AAAA".into(), v6),
        ]
    );
    let c = build("cname = \"Site-A.example.test\"").expect("build");
    assert_eq!(c.wanted()[0].values, ["site-a.example.test."]);
    assert_eq!(c.fence_set(7).values, ["\"epoch=7 site=site-a\""]);
}

#[test]
fn the_fence_alarm_rises_for_a_newer_epoch_or_a_foreign_value() {
    let a = build("").expect("build");
    let fence = |values: &[&str]| RecordSet {
        name: "_failover.example.test.".into(),
        rtype: "TXT".into(),
        ttl: 30,
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    };
    assert!(a.check_fence(&[], 5).is_ok());
    assert!(a.check_fence(&[fence(&["\"epoch=4 site=site-b\""])], 5).is_ok());
    assert!(a.check_fence(&[fence(&["\"epoch=5 site=site-a\""])], 5).is_ok());
    for (values, by) in [(&["\"epoch=6 site=site-b\""][..], Some(6)), (&["\"epoch=5 site=site-b\""][..], Some(5))] {
        match a.check_fence(&[fence(values)], 5) {
            Err(ActuateError::Fenced { by: got, .. }) => assert_eq!(got, by, "{values:?}"),
            other => panic!("{values:?}: {other:?}"),
        }
    }
    for values in [&["epoch=4 site=site-b"][..], &["\"epoch=04 site=site-b\""], &["\"v=spf1 -all\""]] {
        match a.check_fence(&[fence(values)], 5) {
            Err(ActuateError::Fenced { by: None, detail }) => {
                assert!(detail.contains("UPSERT _failover.example.test. TXT"), "{detail}")
            }
            other => panic!("{values:?}: {other:?}"),
        }
    }
}

#[test]
fn what_status_shows_of_an_aws_error_leaves_the_account_out() {
    let a = Actuator::Route53(build("").expect("build"));
    let e = ActuateError::Refused {
        target: "Route 53 zone Z0123456789ABC".into(),
        detail: "ChangeResourceRecordSets: profile: HTTP 403: AccessDenied: User: \
                 arn:aws:iam::123456789012:user/failover is not authorized"
            .into(),
    };
    let shown = a.shown(&e);
    assert!(!shown.contains("123456789012") && !shown.contains("arn:"), "{shown}");
    assert!(shown.contains("AccessDenied") && shown.contains("Z0123456789ABC"), "{shown}");
}

use crate::actuate::Actuator;
