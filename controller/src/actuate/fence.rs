//! Reading a fence value back from a target (the DNS fencing record, the
//! HAProxy epoch variable, the MongoDB state document), strictly: a fence
//! is evidence to check, never an order, and one this cluster could not
//! have written is an alarm, not a number to guess at.
//!
//! An epoch reads as the cluster writes it: decimal digits only, no sign,
//! no space, no leading zero (but `0` itself), at most [`MAX_TERM`] (2^48,
//! the protocol's counter ceiling). Anything else is [`FenceValueError`],
//! which the actuators raise as the fence alarm ([`unreadable`]): the site
//! writes nothing over the target until an operator writes a proper value,
//! and its other targets go on.

use failover_core::MAX_TERM;

use super::ActuateError;

/// The largest epoch a fence may hold: [`MAX_TERM`].
pub const MAX_EPOCH: u64 = MAX_TERM;

/// Why a fence value read from a target is not an epoch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FenceValueError {
    /// Not in the form the cluster writes.
    #[error("{found} is not an epoch as this cluster writes one (decimal digits only: no sign, space, fraction or leading zero)")]
    Malformed {
        /// What the target holds, as read.
        found: String,
    },
    /// A number past the largest epoch a cluster ever reaches.
    #[error("{found} is past the largest epoch a cluster ever reaches (2^48 = {MAX_TERM})")]
    OutOfRange {
        /// What the target holds, as read.
        found: String,
    },
}

/// Reads an epoch written as text (see the module's rule).
pub fn parse_epoch(text: &str) -> Result<u64, FenceValueError> {
    let malformed = || FenceValueError::Malformed { found: format!("{text:?}") };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || (text.len() > 1 && text.starts_with('0')) {
        return Err(malformed());
    }
    // Digits only: a value that does not fit in u64 is past the ceiling.
    let value = text.parse::<u64>().map_err(|_| FenceValueError::OutOfRange { found: text.to_owned() })?;
    within_range(value, || text.to_owned())
}

/// `value` if it is at most [`MAX_TERM`]; else out of range, shown as
/// `found()` says.
pub fn within_range(value: u64, found: impl FnOnce() -> String) -> Result<u64, FenceValueError> {
    if value > MAX_TERM {
        return Err(FenceValueError::OutOfRange { found: found() });
    }
    Ok(value)
}

/// The fence alarm for a target holding a value that is not an epoch:
/// `target` holds `problem`; `fix` says how an operator clears it.
pub fn unreadable(target: &str, problem: &FenceValueError, fix: &str) -> ActuateError {
    ActuateError::Fenced {
        by: None,
        detail: format!(
            "{target} holds a fence value this cluster never writes: {problem}; nothing is written over it until \
             it holds a proper epoch: {fix}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_reads_only_as_the_cluster_writes_it() {
        let accepted: [(&str, u64); 5] =
            [("0", 0), ("7", 7), ("42", 42), ("281474976710655", MAX_TERM - 1), ("281474976710656", MAX_TERM)];
        for (text, value) in accepted {
            assert_eq!(parse_epoch(text), Ok(value), "{text:?}");
        }
        let malformed = [
            "",
            "+7",
            "-1",
            "-0",
            " 7",
            "7 ",
            "07",
            "00",
            "7.0",
            "7e3",
            "0x7",
            "1_000",
            "seven",
            "7\n",
            "٧",
            "\u{1d7d5}",
        ];
        for text in malformed {
            assert!(
                matches!(parse_epoch(text), Err(FenceValueError::Malformed { .. })),
                "{text:?}: {:?}",
                parse_epoch(text)
            );
        }
        let out_of_range =
            ["281474976710657", "18446744073709551615", "18446744073709551617", "99999999999999999999999"];
        for text in out_of_range {
            assert_eq!(parse_epoch(text), Err(FenceValueError::OutOfRange { found: text.to_owned() }), "{text:?}");
        }
    }

    #[test]
    fn the_alarm_names_what_was_found_and_the_fix() {
        let problem = parse_epoch("+7").err().unwrap_or(FenceValueError::Malformed { found: String::new() });
        let ActuateError::Fenced { by: None, detail } = unreadable("the fencing record", &problem, "write epoch=7")
        else {
            panic!("not the fence alarm")
        };
        assert!(detail.contains("\"+7\"") && detail.contains("write epoch=7"), "{detail}");
    }
}
