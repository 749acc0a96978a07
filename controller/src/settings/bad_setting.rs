//! One setting that cannot be used: its key and what is wrong with it. The
//! rules and builders of each section return it with the key relative to
//! their section; the loader puts the section in front and adds the file
//! and line. It must never carry a secret value in its problem text.

/// A key and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct BadSetting {
    /// The key, e.g. `zone`, `members[2].host` or `hooks.timeout`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl BadSetting {
    /// `key` has `problem`.
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        BadSetting { key: key.into(), problem: problem.into() }
    }

    /// The same problem with its key inside `section` (`section.key`).
    #[must_use]
    pub fn under(self, section: &str) -> Self {
        BadSetting { key: format!("{section}.{}", self.key), problem: self.problem }
    }
}
