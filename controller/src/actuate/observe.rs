//! Observe mode: an actuator whose `actuation` is `observe` (its own key,
//! else `[actuators].actuation`, else `act`) reads its target exactly as in
//! `act` mode and, where `act` would write, reports the change in words
//! instead ([`super::Outcome::WouldChange`]). This module resolves the mode
//! of each actuator and words the changes; it must never touch a target.

use crate::actuation_mode::ActuationMode;
use crate::settings::{BadSetting, Choice};

/// The mode of one actuator: its own `actuation` key when set, else the
/// global one, else `act`. A bad value names its key (`actuation`,
/// relative to the table it is in); `global` is checked on its own by
/// [`global`].
pub fn resolve(global: ActuationMode, own: Option<&Choice<ActuationMode>>) -> Result<ActuationMode, BadSetting> {
    match own {
        Some(choice) => choice.checked().map_err(|p| BadSetting::new("actuation", p)),
        None => Ok(global),
    }
}

/// `[actuators].actuation`, or `act` when it is not set; a bad value names
/// the key (relative to `[actuators]`).
pub fn global(key: Option<&Choice<ActuationMode>>) -> Result<ActuationMode, BadSetting> {
    resolve(ActuationMode::Act, key)
}

/// One record of a name as DNS-style actuators compare them: its type
/// (`A`, `AAAA`, `CNAME`, `TXT`) and its data as text.
pub type Rr = (String, String);

/// The words for replacing `before` by `after` at `name`:
/// `would update app.example.com. A 192.0.2.1 -> 192.0.2.2` when both
/// sides hold one type (an empty side shows as `(none)`), else each record
/// with its type (`A 192.0.2.1 -> CNAME lb.example.com.`).
pub fn would_update(name: &str, before: &[Rr], after: &[Rr]) -> String {
    let mut types: Vec<&str> = before.iter().chain(after).map(|(t, _)| t.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    match types.as_slice() {
        [one] => format!("would update {name} {one} {} -> {}", side(before, false), side(after, false)),
        _ => format!("would update {name} {} -> {}", side(before, true), side(after, true)),
    }
}

/// What was read at `name`, each record with its type: `app.example.com.
/// A 192.0.2.1` (or `(none)`).
pub fn read_at(name: &str, records: &[Rr]) -> String {
    format!("{name} {}", side(records, true))
}

fn side(records: &[Rr], typed: bool) -> String {
    if records.is_empty() {
        return "(none)".to_owned();
    }
    let each: Vec<String> = records.iter().map(|(t, d)| if typed { format!("{t} {d}") } else { d.clone() }).collect();
    each.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(t: &str, d: &str) -> Rr {
        (t.to_owned(), d.to_owned())
    }

    fn choice(word: &str) -> Choice<ActuationMode> {
        toml::from_str::<std::collections::BTreeMap<String, Choice<ActuationMode>>>(&format!("k = \"{word}\""))
            .expect("a string")
            .remove("k")
            .expect("k")
    }

    #[test]
    fn an_actuator_s_own_key_overrides_the_global_one_which_defaults_to_act() {
        let (act, observe) = (ActuationMode::Act, ActuationMode::Observe);
        assert_eq!(global(None).ok(), Some(act));
        assert_eq!(global(Some(&choice("observe"))).ok(), Some(observe));
        assert_eq!(resolve(observe, None).ok(), Some(observe));
        assert_eq!(resolve(act, None).ok(), Some(act));
        assert_eq!(resolve(observe, Some(&choice("act"))).ok(), Some(act));
        assert_eq!(resolve(act, Some(&choice("observe"))).ok(), Some(observe));
    }

    #[test]
    fn a_bad_mode_names_the_key_and_the_accepted_values() {
        for bad in [global(Some(&choice("dry-run"))), resolve(ActuationMode::Observe, Some(&choice("Observe")))] {
            let e = bad.expect_err("refused");
            assert_eq!(e.key, "actuation");
            assert!(e.problem.contains("`act`") && e.problem.contains("`observe`"), "{}", e.problem);
        }
    }

    #[test]
    fn a_change_of_one_type_names_the_type_once() {
        let name = "www.example.test.";
        assert_eq!(
            would_update(name, &[rr("A", "127.0.0.1")], &[rr("A", "127.0.0.2")]),
            "would update www.example.test. A 127.0.0.1 -> 127.0.0.2"
        );
        assert_eq!(
            would_update(name, &[], &[rr("A", "127.0.0.2"), rr("A", "127.0.0.3")]),
            "would update www.example.test. A (none) -> 127.0.0.2, 127.0.0.3"
        );
        assert_eq!(
            would_update("_failover.example.test.", &[rr("TXT", "\"epoch=1 site=b\"")], &[]),
            "would update _failover.example.test. TXT \"epoch=1 site=b\" -> (none)"
        );
    }

    #[test]
    fn what_was_read_shows_each_record_with_its_type() {
        assert_eq!(read_at("a.example.test.", &[]), "a.example.test. (none)");
        assert_eq!(
            read_at("a.example.test.", &[rr("A", "127.0.0.1"), rr("AAAA", "::1")]),
            "a.example.test. A 127.0.0.1, AAAA ::1"
        );
    }

    #[test]
    fn a_change_between_types_names_each_record_s_type() {
        assert_eq!(
            would_update("app.example.test.", &[rr("A", "127.0.0.1")], &[rr("CNAME", "lb.example.test.")]),
            "would update app.example.test. A 127.0.0.1 -> CNAME lb.example.test."
        );
        assert_eq!(
            would_update("app.example.test.", &[rr("A", "127.0.0.1"), rr("AAAA", "::1")], &[rr("A", "127.0.0.2")]),
            "would update app.example.test. A 127.0.0.1, AAAA ::1 -> A 127.0.0.2"
        );
    }
}
