use super::location::{dotted, line_of};
use super::*;

const GOOD: &str = "[node]\nname = \"site-a\"\nstate_dir = \"/tmp/x\"\n[admin]\nallow_without_token = true\n\
    [cluster]\nname = \"test\"\nallow_unauthenticated_peers = true\nheartbeat_interval = \"100ms\"\nlease = \"1s\"\n\
    [[members]]\nname = \"site-a\"\nkind = \"site\"\npriority = 2\npeer_address = \"127.0.0.1:1\"\nhttp_address = \"127.0.0.1:2\"\n\
    [[members]]\nname = \"witness\"\nkind = \"witness\"\npeer_address = \"127.0.0.1:3\"\nhttp_address = \"127.0.0.1:4\"\n";

const CHECK: &str = "[[checks]]\nname = \"c\"\nkind = \"command\"\ntarget = \"true\"\n";

const HAPROXY: &str = "[[actuators.haproxy]]\naddress = \"127.0.0.1:9999\"\nbackends = [\"app\"]\n\
    servers = { \"site-a\" = \"a\" }\n";

/// Loads `text` and builds what it describes, as check-config does.
fn load_text(text: &str) -> Result<Loaded, SettingsError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("settings.toml");
    std::fs::write(&path, text).expect("write");
    let loaded = load(&path)?;
    crate::build::targets(&loaded)?;
    Ok(loaded)
}

/// Asserts that `text` is refused with an error naming `key`.
fn assert_refused(what: &str, text: &str, key: &str) {
    match load_text(text) {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => assert!(e.to_string().contains(&format!(": {key}: ")), "{what}: does not name {key}: {e}"),
    }
}

#[test]
fn the_base_file_with_commands_and_pass_env_is_accepted() {
    let text = format!(
        "{GOOD}[hooks]\non_demote = \"true\"\ntimeout = \"1s\"\npass_env = [\"HOME\", \"LANG\"]\n\
         {CHECK}interval = \"24h\"\ntimeout = \"1ms\"\npass_env = [\"TZ\", \"_X1\"]\n\
         [actuators]\n{HAPROXY}epoch_variable = \"proc.failover.epoch_2\"\n"
    );
    let plain = load_text(GOOD).expect("accepted");
    assert_eq!(plain.settings.hooks.timeout, Duration::from_secs(30), "no [hooks]: the default time limit");
    let loaded = load_text(&text).expect("accepted");
    assert_eq!(loaded.settings.hooks.pass_env, vec!["HOME".to_string(), "LANG".to_string()]);
    assert_eq!(loaded.settings.checks[0].pass_env, vec!["TZ".to_string(), "_X1".to_string()]);
    let without_epoch_check = format!("{GOOD}[actuators]\n{HAPROXY}epoch_variable = \"\"\n");
    assert!(load_text(&without_epoch_check).is_ok(), "\"\" turns the epoch check off");
}

#[test]
fn zero_or_huge_check_and_hook_durations_are_refused() {
    let cases = [
        ("zero check interval", format!("{GOOD}{CHECK}interval = \"0s\"\n"), "checks[0].interval"),
        ("zero check timeout", format!("{GOOD}{CHECK}timeout = \"0s\"\n"), "checks[0].timeout"),
        ("check interval over a day", format!("{GOOD}{CHECK}interval = \"24h 1s\"\n"), "checks[0].interval"),
        ("check timeout over a day", format!("{GOOD}{CHECK}timeout = \"2days\"\n"), "checks[0].timeout"),
        (
            "second check with zero interval",
            format!("{GOOD}{CHECK}{}interval = \"0ms\"\n", CHECK.replace("\"c\"", "\"d\"")),
            "checks[1].interval",
        ),
        ("zero hook timeout", format!("{GOOD}[hooks]\ntimeout = \"0s\"\n"), "hooks.timeout"),
        ("hook timeout over a day", format!("{GOOD}[hooks]\ntimeout = \"1000years\"\n"), "hooks.timeout"),
    ];
    for (what, text, key) in cases {
        assert_refused(what, &text, key);
    }
}

#[test]
fn pass_env_takes_plain_names_other_than_failover_ones() {
    let cases = [
        ("a daemon setting", format!("{GOOD}[hooks]\npass_env = [\"FAILOVER_ADMIN__TOKEN\"]\n"), "hooks.pass_env"),
        ("a space", format!("{GOOD}[hooks]\npass_env = [\"A B\"]\n"), "hooks.pass_env"),
        ("empty", format!("{GOOD}[hooks]\npass_env = [\"\"]\n"), "hooks.pass_env"),
        ("leading digit", format!("{GOOD}{CHECK}pass_env = [\"1A\"]\n"), "checks[0].pass_env"),
        ("an equals sign", format!("{GOOD}{CHECK}pass_env = [\"A=B\"]\n"), "checks[0].pass_env"),
        (
            "on an http check",
            format!("{GOOD}{}pass_env = [\"HOME\"]\n", CHECK.replace("command", "http")),
            "checks[0].pass_env",
        ),
    ];
    for (what, text, key) in cases {
        assert_refused(what, &text, key);
    }
}

#[test]
fn member_names_must_be_dns_names() {
    let member = |name: &str| GOOD.replace("name = \"site-a\"\nkind", &format!("name = {name:?}\nkind"));
    for bad in ["site a", "site=a", "-site", "site..a", "127.0.0.1", &"a".repeat(64), "sité"] {
        assert_refused(bad, &member(bad), "members[0].name");
    }
    let witness = |name: &str| GOOD.replace("name = \"witness\"", &format!("name = {name:?}"));
    assert_refused("differs only in case", &witness("SITE-A"), "members[1].name");
    assert!(load_text(&witness("site-a.witness_1")).is_ok(), "a plain DNS name must pass");
}

#[test]
fn the_cluster_needs_a_name_with_the_characters_of_a_member_name() {
    let missing = load_text(&GOOD.replace("name = \"test\"\n", "")).expect_err("no name");
    assert!(missing.to_string().contains("missing configuration field \"cluster.name\""), "{missing}");
    assert_refused("a space", &GOOD.replace("name = \"test\"", "name = \"prod eu\""), "cluster.name");
    assert_refused("empty", &GOOD.replace("name = \"test\"", "name = \"\""), "cluster.name");
}

#[test]
fn member_addresses_must_be_connectable_and_unique() {
    let cases = [
        ("duplicate http_address", GOOD.replace("127.0.0.1:4", "127.0.0.1:2"), "members[1].http_address"),
        ("duplicate peer_address", GOOD.replace("127.0.0.1:3", "127.0.0.1:1"), "members[1].peer_address"),
        ("peer_address is another's http", GOOD.replace("127.0.0.1:3", "127.0.0.1:2"), "members[1].peer_address"),
        ("http_address is another's peer", GOOD.replace("127.0.0.1:4", "127.0.0.1:1"), "members[1].http_address"),
        ("http_address is its own peer", GOOD.replace("127.0.0.1:4", "127.0.0.1:3"), "members[1].http_address"),
        ("unspecified http_address", GOOD.replace("127.0.0.1:2", "0.0.0.0:2"), "members[0].http_address"),
        ("unspecified IPv6 peer_address", GOOD.replace("127.0.0.1:3", "[::]:3"), "members[1].peer_address"),
    ];
    for (what, text, key) in cases {
        assert_refused(what, &text, key);
    }
    assert!(load_text(&GOOD.replace("127.0.0.1:4", "127.0.0.2:2")).is_ok(), "same port on another host must pass");
}

#[test]
fn member_addresses_take_host_names_and_a_bad_one_is_refused_naming_key_and_value() {
    let named = GOOD.replace("127.0.0.1:3", "localhost:3").replace("127.0.0.1:1", "[::1]:1");
    let loaded = load_text(&named).expect("names and IPv6 literals are accepted");
    assert_eq!(loaded.settings.members[1].peer_address.to_string(), "localhost:3");
    assert!(loaded.unresolved_addresses().is_empty(), "{:?}", loaded.unresolved_addresses());
    let cases = [
        ("127.0.0.1:0", "is not a port"),
        ("witness.example", "has no port"),
        ("wit ness:4", "only letters, digits"),
        ("::1:4", "in brackets"),
    ];
    for (bad, problem) in cases {
        let error = load_text(&GOOD.replace("127.0.0.1:4", bad)).expect_err(bad).to_string();
        assert!(
            error.contains("members[1].http_address") && error.contains(&format!("{bad:?}")) && error.contains(problem),
            "{bad}: {error}"
        );
    }
    let twice = GOOD.replace("127.0.0.1:1", "Witness.Example:3").replace("127.0.0.1:3", "witness.example.:3");
    assert_refused("one name twice, in another case", &twice, "members[1].peer_address");
}

#[test]
fn a_name_that_does_not_resolve_is_loaded_and_listed_for_a_warning_with_its_key() {
    // `.invalid` never resolves (RFC 6761).
    let loaded = load_text(&GOOD.replace("127.0.0.1:3", "witness.invalid:3")).expect("refused");
    let warnings = loaded.unresolved_addresses();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].key, "members[1] (witness).peer_address");
    assert!(warnings[0].problem.starts_with("witness.invalid:3 does not resolve: "), "{}", warnings[0].problem);
    let shown = loaded.refusal(warnings[0].clone()).to_string();
    assert!(shown.contains("settings.toml:") && shown.contains("members[1] (witness).peer_address: "), "{shown}");
}

#[test]
fn listen_addresses_bind_any_address_but_need_a_port_and_two_ports() {
    let listen = |peer: &str, http: &str| {
        GOOD.replace(
            "state_dir = \"/tmp/x\"\n",
            &format!("state_dir = \"/tmp/x\"\nlisten_peer_address = \"{peer}\"\nlisten_http_address = \"{http}\"\n"),
        )
    };
    let loaded = load_text(&listen("0.0.0.0:7400", "127.0.0.1:8400")).expect("listen addresses");
    assert_eq!(loaded.settings.node.listen_peer_address, Some("0.0.0.0:7400".parse().expect("addr")));
    assert_refused("port 0", &listen("0.0.0.0:0", "127.0.0.1:8400"), "node.listen_peer_address");
    assert_refused("one port twice", &listen("0.0.0.0:7400", "127.0.0.1:7400"), "node.listen_http_address");
    assert!(load_text(&listen("127.0.0.1:7400", "127.0.0.2:7400")).is_ok(), "one port on two addresses");
}

#[test]
fn haproxy_names_written_into_commands_are_checked() {
    let cases = [
        (
            "command in epoch_variable",
            format!("{GOOD}[actuators]\n{HAPROXY}epoch_variable = \"proc.x; shutdown sessions\"\n"),
            "actuators.haproxy[0].epoch_variable",
        ),
        (
            "epoch_variable not process-wide",
            format!("{GOOD}[actuators]\n{HAPROXY}epoch_variable = \"txn.epoch\"\n"),
            "actuators.haproxy[0].epoch_variable",
        ),
        (
            "command in a backend name",
            format!("{GOOD}[actuators]\n{}", HAPROXY.replace("[\"app\"]", "[\"app\\nshutdown sessions\"]")),
            "actuators.haproxy[0].backends",
        ),
        (
            "quote in a server name",
            format!("{GOOD}[actuators]\n{}", HAPROXY.replace("= \"a\"", "= \"a'\"")),
            "actuators.haproxy[0].servers",
        ),
    ];
    for (what, text, key) in cases {
        assert_refused(what, &text, key);
    }
}

#[test]
fn without_tls_a_file_must_opt_in_to_unauthenticated_peers() {
    let without = GOOD.replace("allow_unauthenticated_peers = true\n", "");
    assert_ne!(without, GOOD);
    assert_refused("no [tls] and no opt-in", &without, "tls");
    let Err(e) = load_text(&without) else { panic!("accepted") };
    let e = e.to_string();
    for words in
        ["vote and grant leases as any member", "failoverctl certs init", "[tls]", "allow_unauthenticated_peers"]
    {
        assert!(e.contains(words), "the error does not say {words:?}: {e}");
    }
    let opted_in = load_text(GOOD).expect("accepted");
    assert!(opted_in.tls.is_none() && opted_in.settings.cluster.allow_unauthenticated_peers);
    // Another mistake in the same file is named first.
    assert_refused(
        "bad log format too",
        &without.replace("state_dir", "log_format = \"xml\"\nstate_dir"),
        "node.log_format",
    );
}

#[test]
fn admin_refusal_window_and_forwarding_have_safe_defaults_and_are_checked() {
    let loaded = load_text(GOOD).expect("accepted");
    assert_eq!(loaded.settings.admin.refusal_window, crate::admin_auth::DEFAULT_REFUSAL_WINDOW);
    assert!(!loaded.settings.admin.forward_token_over_http);
    let no_admin = GOOD.replace("[admin]\nallow_without_token = true\n", "");
    let Err(e) = load_text(&no_admin) else { panic!("accepted without a token") };
    assert!(e.to_string().contains("admin.token_file"), "{e}");
    let set = GOOD.replace(
        "allow_without_token = true\n",
        "allow_without_token = true\nrefusal_window = \"3s\"\nforward_token_over_http = true\n",
    );
    let loaded = load_text(&set).expect("accepted");
    assert_eq!(loaded.settings.admin.refusal_window, Duration::from_secs(3));
    assert!(loaded.settings.admin.forward_token_over_http);
    let zero = GOOD.replace("allow_without_token = true\n", "allow_without_token = true\nrefusal_window = \"0s\"\n");
    assert_refused("zero refusal window", &zero, "admin.refusal_window");
}

#[test]
fn tls_on_the_http_port_needs_a_readable_matching_pair_and_names_the_key_at_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let http = vec![("site-a".to_string(), "127.0.0.1".to_string())];
    let nodes = ["site-a".to_string(), "witness".to_string()];
    let request = crate::certs::Request { nodes: &nodes, http_names: &http, days: 30 };
    crate::certs::init(request, &certs).expect("certs");
    let with = |keys: &str| GOOD.replace("[admin]\n", &format!("[admin]\n{keys}\n"));
    let file = |name: &str| certs.join(name).display().to_string();
    let (cert, key, ca) = (file("site-a.pem"), file("site-a.key"), file("ca.pem"));
    let pair = format!("tls_cert_file = {cert:?}\ntls_key_file = {key:?}\ntls_ca_file = {ca:?}");
    let loaded = load_text(&with(&pair)).expect("a matching pair and a CA");
    assert!(loaded.http_tls.is_some_and(|t| t.extra_roots.len() == 1));
    let cases = [
        ("certificate without key", format!("tls_cert_file = {cert:?}"), "admin.tls_key_file"),
        ("key without certificate", format!("tls_key_file = {key:?}"), "admin.tls_cert_file"),
        ("CA alone", format!("tls_ca_file = {ca:?}"), "admin.tls_ca_file"),
        ("another node's key", pair.replace("site-a.key", "witness.key"), "admin.tls_key_file"),
        ("a key as certificate", pair.replace("site-a.pem", "site-a.key"), "admin.tls_cert_file"),
        ("a missing CA file", pair.replace("ca.pem", "nope.pem"), "admin.tls_ca_file"),
    ];
    for (what, keys, key) in cases {
        assert_refused(what, &with(&keys), key);
    }
}

#[test]
fn hook_and_check_programs_that_sh_would_not_find_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("pre-promote");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write");
    let hook = |command: &str| format!("{GOOD}[hooks]\npre_promote = {command:?}\n");
    let check = |command: &str| format!("{GOOD}[[checks]]\nname = \"c\"\nkind = \"command\"\ntarget = {command:?}\n");
    let missing = format!("{}/pre-promot --flag", dir.path().display());
    assert_refused("a path that does not exist", &hook(&missing), "hooks.pre_promote");
    assert_refused("a file that is not executable", &hook(&script.display().to_string()), "hooks.pre_promote");
    assert_refused("a name not in PATH", &check("check-queue-no-such-program -q"), "checks[0].target");
    assert_refused("unbalanced quotes", &check("echo 'oops"), "checks[0].target");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    for good in [
        format!("{} --now", script.display()),
        "LANG=C sh -c 'exit 0'".to_owned(),
        "test ! -e /tmp/flag".to_owned(),
        "if true; then exit 0; fi".to_owned(),
        "exit 3 # a comment".to_owned(),
        "\"$HOME/bin/x\"".to_owned(),
    ] {
        assert!(load_text(&hook(&good)).is_ok(), "{good:?} refused: {:?}", load_text(&hook(&good)).err());
        assert!(load_text(&check(&good)).is_ok(), "{good:?} refused as a check");
    }
}

#[test]
fn an_error_names_the_line_of_its_key_once_and_with_its_dots() {
    let named = load_text(&GOOD.replace("name = \"test\"", "name = \"prod eu\"")).expect_err("bad name");
    assert!(named.to_string().contains("settings.toml:7: cluster.name: "), "{named}");
    let twice = load_text(&GOOD.replace("127.0.0.1:3", "127.0.0.1:1")).expect_err("duplicate");
    assert!(twice.to_string().contains("settings.toml:20: members[1].peer_address: "), "{twice}");
    // A type error from the parser: said once (no source chain repeating
    // it), with the dot after the index.
    let typed = load_text(&GOOD.replace("lease = \"1s\"", "lease = \"3\"")).expect_err("not a duration");
    let text = format!("{:#}", anyhow::Error::from(typed));
    assert_eq!(text.matches("cluster.lease").count(), 1, "{text}");
    let element = load_text(&GOOD.replace("priority = 2", "priority = \"high\"")).expect_err("not a number");
    assert!(element.to_string().contains("members[0].priority"), "{element}");
}

#[test]
fn line_of_finds_tables_fields_and_array_elements() {
    let text = "[node]\nname = \"a\"\n\n[[members]]\nname = \"x\"\n[[members]]\n# c\nname = \"y\"\npeer_address = \"z\"\n[tls]\n";
    assert_eq!(line_of(text, "node.name"), Some(2));
    assert_eq!(line_of(text, "members[1].name"), Some(8));
    assert_eq!(line_of(text, "members[1] (y).peer_address"), Some(9));
    assert_eq!(line_of(text, "members[0].peer_address"), None);
    assert_eq!(line_of(text, "tls"), Some(10));
    assert_eq!(line_of(text, "admin.token"), None);
    assert_eq!(dotted("key `members[1]peer_address` and [2]"), "key `members[1].peer_address` and [2]");
}

#[test]
fn check_config_names_the_first_mistake_of_every_part_at_once() {
    let text = GOOD
        .replace("lease = \"1s\"", "lease = \"1s\"\nfailover_mode = \"sometimes\"")
        .replace("allow_without_token = true", "refusal_window = \"0s\"\nallow_without_token = true")
        .replace("[admin]", "[hooks]\npre_promote = \"/no/such/hook\"\n[admin]");
    let err = load_text(&text).expect_err("three mistakes");
    let said = err.to_string();
    assert!(said.starts_with("3 problems:\n"), "{said}");
    for key in ["cluster.failover_mode", "hooks.pre_promote", "admin.refusal_window"] {
        assert_eq!(said.matches(&format!(": {key}: ")).count(), 1, "{key}: {said}");
    }
    assert!(said.contains("settings.toml:5: hooks.pre_promote"), "{said}");
}

#[test]
fn a_setting_with_fixed_values_refuses_another_naming_the_key_and_the_values_it_takes() {
    let mongodb = "[mongodb]\nuri = \"mongodb://127.0.0.1:1/?replicaSet=rs0\"\nstate_store = \"etcd\"\n\
        [[mongodb.members]]\nhost = \"127.0.0.1:1\"\nsite = \"site-a\"\n";
    let cases: [(&str, String, &str, &[&str]); 7] = [
        (
            "stop behaviour",
            GOOD.replace("state_dir", "on_stop = \"failover\"\nstate_dir"),
            "node.on_stop",
            &["keep_role", "hand_over"],
        ),
        (
            "log format",
            GOOD.replace("state_dir", "log_format = \"xml\"\nstate_dir"),
            "node.log_format",
            &["human", "json"],
        ),
        (
            "failover mode",
            GOOD.replace("lease = \"1s\"", "lease = \"1s\"\nfailover_mode = \"sometimes\""),
            "cluster.failover_mode",
            &["automatic", "manual"],
        ),
        (
            "failback in capitals",
            GOOD.replace("lease = \"1s\"", "lease = \"1s\"\nfailback = \"Automatic\""),
            "cluster.failback",
            &["automatic", "manual"],
        ),
        (
            "member kind",
            GOOD.replace("kind = \"witness\"", "kind = \"arbiter\""),
            "members[1] (witness).kind",
            &["site", "witness"],
        ),
        (
            "check kind",
            format!("{GOOD}{}", CHECK.replace("command", "htp")),
            "checks[0].kind",
            &["http", "tcp", "command"],
        ),
        ("state store", format!("{GOOD}{mongodb}"), "mongodb.state_store", &["embedded", "mongodb"]),
    ];
    for (what, text, key, values) in cases {
        let said = load_text(&text).expect_err(what).to_string();
        assert!(said.contains(&format!(": {key}: unknown value ")), "{what}: does not name {key}: {said}");
        for value in values {
            assert!(said.contains(&format!("`{value}`")), "{what}: does not list {value}: {said}");
        }
    }
    let loaded = load_text(&GOOD.replace("state_dir", "log_format = \"json\"\nstate_dir")).expect("accepted");
    assert_eq!(loaded.log_format, LogFormat::Json);
    assert_eq!(load_text(GOOD).expect("accepted").log_format, LogFormat::Human, "the default");
    let loaded = load_text(&GOOD.replace("state_dir", "on_stop = \"hand_over\"\nstate_dir")).expect("accepted");
    assert_eq!(loaded.on_stop, crate::settings::OnStop::HandOver);
    assert_eq!(load_text(GOOD).expect("accepted").on_stop, crate::settings::OnStop::KeepRole, "the default");
}

#[test]
fn each_check_is_handed_on_with_its_kind() {
    let text = format!("{GOOD}{CHECK}{}", CHECK.replace("\"c\"", "\"t\"").replace("command", "tcp"));
    let loaded = load_text(&text).expect("accepted");
    let kinds: Vec<_> = loaded.checks.iter().map(|c| (c.section.name.as_str(), c.kind)).collect();
    assert_eq!(kinds, [("c", crate::health::CheckKind::Command), ("t", crate::health::CheckKind::Tcp)]);
}

#[test]
fn run_as_is_resolved_for_hooks_and_command_checks_and_a_missing_user_is_refused_naming_the_key() {
    let tcp = CHECK.replace("\"c\"", "\"t\"").replace("command", "tcp").replace("\"true\"", "\"127.0.0.1:1\"");
    let text = format!("{GOOD}[hooks]\non_demote = \"true\"\nrun_as = \"nobody:nogroup\"\n{CHECK}{tcp}");
    let loaded = load_text(&text).expect("accepted (the tests run as root)");
    let user = loaded.settings.hooks.run_as_user.clone().expect("resolved");
    assert_eq!((user.uid, user.gid), (65534, 65534));
    let users: Vec<_> = loaded.checks.iter().map(|c| c.run_as.clone()).collect();
    assert_eq!(users, [Some(user), None], "the command check runs as the user; a tcp check runs no program");
    assert_eq!(load_text(GOOD).expect("accepted").settings.hooks.run_as_user, None);
    for (what, run_as) in [("no such user", "no-such-user-failover"), ("root", "root"), ("empty", "")] {
        assert_refused(what, &format!("{GOOD}[hooks]\nrun_as = {run_as:?}\n"), "hooks.run_as");
    }
}

/// `GOOD` with `[[admin.tokens]]` entries, one a line: (name, token file, read_only).
fn with_tokens(entries: &[(&str, &Path, bool)]) -> String {
    let mut text = GOOD.to_owned();
    for (name, file, read_only) in entries {
        text.push_str(&format!(
            "[[admin.tokens]]\nname = {name:?}\ntoken_file = {:?}\nread_only = {read_only}\n",
            file.display()
        ));
    }
    text
}

#[test]
fn named_operators_each_with_a_token_file_and_the_single_token_as_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (alice, auditor) = (dir.path().join("alice"), dir.path().join("auditor"));
    std::fs::write(&alice, "alice-token\n").expect("write");
    std::fs::write(&auditor, "  auditor-token ").expect("write");
    let text = with_tokens(&[("alice", &alice, false), ("auditor", &auditor, true)])
        .replace("allow_without_token = true\n", "token = \"shared-token\"\n");
    let loaded = load_text(&text).expect("accepted");
    let seen: Vec<(&str, &str, bool)> =
        loaded.operators.iter().map(|o| (o.name.as_str(), o.token.as_str(), o.read_only)).collect();
    assert_eq!(
        seen,
        [("admin", "shared-token", false), ("alice", "alice-token", false), ("auditor", "auditor-token", true)]
    );
    // Named tokens alone are enough: no admin.token needed.
    let only_named = with_tokens(&[("alice", &alice, false)]).replace("allow_without_token = true\n", "");
    assert_eq!(load_text(&only_named).expect("accepted").operators.len(), 1);
    // And no token at all, with allow_without_token: no operator.
    assert!(load_text(GOOD).expect("accepted").operators.is_empty());
    // The token never shows in a debug print.
    assert!(!format!("{:?}", loaded.operators).contains("alice-token"));
}

#[test]
fn operator_names_and_tokens_are_each_used_once_and_their_files_must_hold_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, empty) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("empty"));
    std::fs::write(&a, "token-a").expect("write");
    std::fs::write(&b, "token-b").expect("write");
    std::fs::write(&empty, " \n").expect("write");
    let missing = dir.path().join("missing");
    assert_refused(
        "same name twice",
        &with_tokens(&[("alice", &a, false), ("alice", &b, true)]),
        "admin.tokens[1].name",
    );
    assert_refused(
        "same token twice",
        &with_tokens(&[("alice", &a, false), ("bob", &a, true)]),
        "admin.tokens[1].token_file",
    );
    assert_refused("empty file", &with_tokens(&[("alice", &empty, false)]), "admin.tokens[0].token_file");
    assert_refused("unreadable file", &with_tokens(&[("alice", &missing, false)]), "admin.tokens[0].token_file");
    assert_refused("no name", &with_tokens(&[("", &a, false)]), "admin.tokens[0].name");
    assert_refused("a space in the name", &with_tokens(&[("al ice", &a, false)]), "admin.tokens[0].name");
    assert_refused("a reserved name", &with_tokens(&[("unknown", &a, false)]), "admin.tokens[0].name");
    let single = |t: &str| with_tokens(&[("admin", &a, false)]).replace("allow_without_token = true\n", t);
    assert_refused("the single token's name taken", &single("token = \"other\"\n"), "admin.tokens[0].name");
    let shared = with_tokens(&[("alice", &a, false)]).replace("allow_without_token = true\n", "token = \"token-a\"\n");
    assert_refused("the single token's token reused", &shared, "admin.tokens[0].token_file");
    let Err(e) = load_text(&with_tokens(&[("alice", &a, false), ("bob", &a, true)])) else { panic!("accepted") };
    assert!(!e.to_string().contains("token-a"), "the token shows in the error: {e}");
    assert!(e.to_string().contains("admin.tokens[0] (alice)"), "names the first holder: {e}");
    let unknown_key = format!("{}bogus = 1\n", with_tokens(&[("alice", &a, false)]));
    assert!(load_text(&unknown_key).is_err_and(|e| e.to_string().contains("bogus")));
}
