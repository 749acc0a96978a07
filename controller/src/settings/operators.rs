//! `[admin]`'s operators: each `[[admin.tokens]]` entry (a name, a token
//! file, perhaps `read_only`), and the single `admin.token` or
//! `admin.token_file` as the operator named `admin`. Names and tokens must
//! each be used once: a token is what names the operator of a call.

use std::path::PathBuf;

use serde::Deserialize;

use super::BadSetting;
use crate::admin_auth::Operator;

/// `[[admin.tokens]]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// The operator's name, shown in the history and the log.
    pub name: String,
    /// File holding the operator's token (surrounding white space ignored).
    pub token_file: PathBuf,
    /// Whether the token may only read (`failoverctl whoami`); every call
    /// that changes something is refused with 403.
    #[serde(default)]
    pub read_only: bool,
}

/// The name of the operator of `admin.token` / `admin.token_file`.
pub const SINGLE_TOKEN_OPERATOR: &str = "admin";

/// The longest operator name.
const MAX_NAME: usize = 64;

/// Names the history uses for calls of no operator.
const RESERVED: [&str; 2] = [crate::reports::UNKNOWN_OPERATOR, crate::admin_auth::ANONYMOUS];

/// The token in `path`, trimmed; the error names `key`.
pub fn token_of(path: &std::path::Path, key: &str) -> Result<String, BadSetting> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BadSetting::new(key, format!("cannot read {}: {e}", path.display())))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(BadSetting::new(key, format!("{} is empty", path.display())));
    }
    Ok(token.to_owned())
}

fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.@".contains(c);
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("{name:?} must be 1 to {MAX_NAME} characters long"));
    }
    if let Some(found) = name.chars().find(|&c| !allowed(c)) {
        return Err(format!("{name:?} contains {found:?}: use ASCII letters, digits, '-', '_', '.' and '@'"));
    }
    if RESERVED.contains(&name) {
        return Err(format!("{name:?} is what the history calls a caller without a token: choose another name"));
    }
    Ok(())
}

/// Every operator: `single` (the token of `admin.token` or
/// `admin.token_file`, named [`SINGLE_TOKEN_OPERATOR`]) first, then
/// `tokens` in order.
pub fn operators(single: Option<String>, tokens: &[TokenSection]) -> Result<Vec<Operator>, BadSetting> {
    // Where each operator came from, for the errors.
    let mut keys = Vec::new();
    let mut operators: Vec<Operator> = Vec::new();
    if let Some(token) = single {
        keys.push("admin.token".to_owned());
        operators.push(Operator { name: SINGLE_TOKEN_OPERATOR.into(), token, read_only: false });
    }
    for (i, t) in tokens.iter().enumerate() {
        let key = format!("admin.tokens[{i}]");
        check_name(&t.name).map_err(|p| BadSetting::new(format!("{key}.name"), p))?;
        if let Some(j) = operators.iter().position(|o| o.name == t.name) {
            return Err(BadSetting::new(
                format!("{key}.name"),
                format!("{:?} is already the name of {}: each operator needs a name of their own", t.name, keys[j]),
            ));
        }
        let token = token_of(&t.token_file, &format!("{key}.token_file"))?;
        if let Some(j) = operators.iter().position(|o| o.token == token) {
            return Err(BadSetting::new(
                format!("{key}.token_file"),
                format!(
                    "{} holds the same token as {} ({}): each operator needs a token of their own, or the \
                     history cannot tell them apart",
                    t.token_file.display(),
                    keys[j],
                    operators[j].name
                ),
            ));
        }
        keys.push(key);
        operators.push(Operator { name: t.name.clone(), token, read_only: t.read_only });
    }
    Ok(operators)
}
