//! What a server's refusal of a replica set command means, in words the
//! operator can act on. Servers that speak the MongoDB wire protocol do not
//! all implement every replica set command (an independently written
//! server may answer `replSetGetConfig` with `CommandNotFound`), and they
//! do not all name their errors as MongoDB does, so refusals are judged by
//! their numeric code, never by their code name.
//!
//! A missing command disables only what needs it: without
//! `replSetGetConfig` there is no placement of the primary and no PSA
//! mitigation, while the replica set view (from `replSetGetStatus`), the
//! data-lag gate and the state store keep working.

use mongodb::error::{Error, ErrorKind};

/// A replica set command that did not do what was asked, classified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandRefusal {
    /// The server does not know the command at all.
    #[error("the server does not implement {command}: {consequence}")]
    NotImplemented {
        /// The command.
        command: String,
        /// What the controller does without it.
        consequence: &'static str,
    },
    /// The member asked is not (or no longer) the primary.
    #[error("{command}: the member is not the primary ({code_name}, {code})")]
    NotPrimary {
        /// The command.
        command: String,
        /// The server's code.
        code: i32,
        /// The server's code name, as it gave it.
        code_name: String,
    },
    /// A step-down found no electable secondary caught up within
    /// `secondaryCatchUpPeriodSecs`; the primary stays where it is.
    #[error(
        "{command}: no electable secondary caught up within the catch-up period, the primary stays ({code_name}, {code}): {message}"
    )]
    NoCaughtUpSecondary {
        /// The command.
        command: String,
        /// The server's code (262).
        code: i32,
        /// The server's code name, as it gave it.
        code_name: String,
        /// The server's message.
        message: String,
    },
    /// The user in the connection string may not run the command.
    #[error("{command}: not authorized: {message}")]
    Unauthorized {
        /// The command.
        command: String,
        /// The server's message.
        message: String,
    },
    /// Any other refusal.
    #[error("{command} refused: {code_name} ({code}): {message}")]
    Refused {
        /// The command.
        command: String,
        /// The server's code.
        code: i32,
        /// The server's code name, as it gave it.
        code_name: String,
        /// The server's message.
        message: String,
    },
    /// No answer (no member reachable, connection lost, timed out).
    #[error("{command}: {detail}")]
    NoAnswer {
        /// The command.
        command: String,
        /// What the driver said.
        detail: String,
    },
}

impl CommandRefusal {
    /// Whether the server lacks the command (as opposed to refusing it now).
    pub fn is_not_implemented(&self) -> bool {
        matches!(self, CommandRefusal::NotImplemented { .. })
    }
}

/// What the controller gives up when the server lacks `command`.
pub fn consequence(command: &str) -> &'static str {
    match command {
        "replSetGetConfig" => "placement disabled (the primary is not moved, no PSA mitigation); the replica set view comes from replSetGetStatus alone",
        "replSetReconfig" => "placement disabled: priorities and votes cannot be changed",
        "replSetStepDown" => "the primary cannot be stepped down",
        "replSetGetStatus" => "no replica set view: the data-lag gate counts every site as not caught up",
        _ => "the step that needs it is skipped",
    }
}

/// Classifies a refusal of `command` by the server's numeric `code`.
pub fn classify(command: &str, code: i32, code_name: &str, message: &str) -> CommandRefusal {
    let command = command.to_owned();
    let code_name = code_name.to_owned();
    match code {
        // CommandNotFound, CommandNotSupported.
        59 | 115 => CommandRefusal::NotImplemented { consequence: consequence(&command), command },
        // NotWritablePrimary, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary,
        // PrimarySteppedDown, InterruptedDueToReplStateChange.
        10107 | 13435 | 13436 | 189 | 11602 => CommandRefusal::NotPrimary { command, code, code_name },
        // ExceededTimeLimit: MongoDB's answer when no secondary caught up.
        262 if command == "replSetStepDown" => {
            CommandRefusal::NoCaughtUpSecondary { command, code, code_name, message: message.to_owned() }
        }
        // Unauthorized.
        13 => CommandRefusal::Unauthorized { command, message: message.to_owned() },
        _ => CommandRefusal::Refused { command, code, code_name, message: message.to_owned() },
    }
}

/// Classifies a driver error from running `command`.
pub fn from_driver(command: &str, e: &Error) -> CommandRefusal {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => classify(command, c.code, &c.code_name, &c.message),
        _ => CommandRefusal::NoAnswer { command: command.to_owned(), detail: super::describe_error(e) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_judged_by_code_not_by_code_name() {
        // An independent server names 262 differently from MongoDB.
        for name in ["ExceededTimeLimit", "Location262"] {
            let r = classify("replSetStepDown", 262, name, "No electable secondaries caught up");
            assert!(matches!(r, CommandRefusal::NoCaughtUpSecondary { code: 262, .. }), "{r:?}");
            assert!(r.to_string().contains("no electable secondary caught up"), "{r}");
        }
        let r = classify("replSetGetConfig", 59, "CommandNotFound", "no such command: 'replSetGetConfig'");
        assert!(r.is_not_implemented());
        assert!(r.to_string().starts_with("the server does not implement replSetGetConfig: placement disabled"), "{r}");
        for code in [10107, 13435, 189, 11602] {
            let r = classify("replSetStepDown", code, "X", "not primary so can't step down");
            assert!(matches!(r, CommandRefusal::NotPrimary { .. }), "{code}: {r:?}");
            assert!(r.to_string().contains("not the primary"), "{r}");
        }
        let r = classify("replSetGetStatus", 13, "Unauthorized", "not authorized on admin");
        assert!(matches!(r, CommandRefusal::Unauthorized { .. }) && r.to_string().contains("not authorized"));
        // 262 outside a step-down, and unknown codes, are plain refusals.
        let r = classify("find", 262, "ExceededTimeLimit", "slow");
        assert_eq!(r.to_string(), "find refused: ExceededTimeLimit (262): slow");
        let r = classify("replSetStepDown", 2, "BadValue", "stepdown period must be longer");
        assert!(!r.is_not_implemented() && r.to_string().contains("BadValue (2)"), "{r}");
    }

    #[test]
    fn every_missing_command_names_what_is_given_up() {
        for c in ["replSetGetConfig", "replSetReconfig", "replSetStepDown", "replSetGetStatus", "other"] {
            let r = classify(c, 59, "CommandNotFound", "");
            assert!(r.to_string().starts_with(&format!("the server does not implement {c}: ")), "{r}");
        }
    }
}
