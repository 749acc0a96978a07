//! Where a configuration error is: the line of the key it names, and the
//! parser's array keys written with their dot, so an operator can go
//! straight to the mistake.

use super::SettingsError;

/// The parser writes an array element's key as `members[1]peer_address`:
/// put the dot back (`members[1].peer_address`).
pub(super) fn dotted(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 4);
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == ']' && chars.peek().is_some_and(|n| n.is_ascii_alphabetic() || *n == '_') {
            out.push('.');
        }
    }
    out
}

/// The 1-based line of `key` (`section.name`, `section[i].name` for the
/// i-th `[[section]]`, or `section` for a table) in a TOML `text`, if it is
/// written there.
pub(super) fn line_of(text: &str, key: &str) -> Option<usize> {
    let (table, field) = match key.split_once(['.', ' ']) {
        Some((t, f)) => (t, Some(f.trim_start_matches(|c: char| c == '(' || c.is_ascii_whitespace()))),
        None => (key, None),
    };
    let (name, index) = match table.split_once('[') {
        Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
        None => (table, None),
    };
    // The field's own name: after the last dot, and not the "(name)" label
    // a key may carry.
    let field = field.and_then(|f| f.rsplit('.').next()).filter(|f| !f.contains(')'));
    let header = if index.is_some() { format!("[[{name}]]") } else { format!("[{name}]") };
    let mut seen = 0;
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = false;
            if trimmed.split('#').next().map(str::trim) == Some(header.as_str()) {
                seen += 1;
                inside = index.is_none_or(|n| seen == n + 1);
                if inside && field.is_none() {
                    return Some(i + 1);
                }
            }
            continue;
        }
        if let (true, Some(f)) = (inside, field) {
            let name = trimmed.split('=').next().map(str::trim);
            if trimmed.contains('=') && name == Some(f) {
                return Some(i + 1);
            }
        }
    }
    None
}

/// `e` with the line of each key it names in `text`.
pub(super) fn with_lines(e: SettingsError, text: &str) -> SettingsError {
    match e {
        SettingsError::Invalid { file, key, problem, .. } => {
            SettingsError::Invalid { line: line_of(text, &key), file, key, problem }
        }
        SettingsError::Several(all) => SettingsError::Several(all.into_iter().map(|e| with_lines(e, text)).collect()),
        other => other,
    }
}
