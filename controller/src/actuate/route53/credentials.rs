//! AWS credentials for the Route 53 actuator, found the way the AWS SDKs
//! and CLI look for static keys, in this order:
//!
//! 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and,
//!    for temporary keys, `AWS_SESSION_TOKEN`;
//! 2. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
//!    `~/.aws/credentials`), section `[<profile>]`;
//! 3. the shared config file (`AWS_CONFIG_FILE`, default `~/.aws/config`),
//!    section `[profile <profile>]` (`[default]` for the default profile).
//!
//! The profile is the section's `profile` key, else `AWS_PROFILE`, else
//! `default`. Not covered (an operator uses environment variables or a
//! file written by a helper instead): web identity tokens, instance or
//! container metadata, SSO, `credential_process` and `role_arn` profiles.
//! The files are read again on every pass, so keys rotated by a helper
//! that rewrites them are picked up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variables the chain reads, captured once.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<&'static str, String>,
}

/// The variables [`Environment`] keeps.
const VARS: [&str; 7] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "HOME",
];

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.vars.keys().copied().collect();
        f.debug_struct("Environment").field("set", &names).finish()
    }
}

impl Environment {
    /// This process's variables.
    pub fn of_process() -> Self {
        Self::from_pairs(VARS.iter().filter_map(|&k| std::env::var(k).ok().map(|v| (k, v))))
    }

    /// Only these variables (the others unset), for tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        let mut vars = BTreeMap::new();
        for (k, v) in pairs {
            if let Some(known) = VARS.iter().find(|&&name| name == k) {
                if !v.is_empty() {
                    vars.insert(*known, v);
                }
            }
        }
        Environment { vars }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    fn file(&self, var: &str, default: &str) -> Option<PathBuf> {
        match self.get(var) {
            Some(path) => Some(PathBuf::from(path)),
            None => self.get("HOME").map(|home| Path::new(home).join(".aws").join(default)),
        }
    }
}

/// Keys to sign with, and where they came from (for errors, never the
/// secret).
#[derive(Clone)]
pub struct Credentials {
    /// The access key id (not secret; shown shortened in errors).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary keys.
    pub session_token: Option<String>,
    /// Where they were found, in words.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("source", &self.source).finish_non_exhaustive()
    }
}

/// Why no credentials could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// Nothing anywhere in the chain.
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the daemon's environment, or \
         put aws_access_key_id and aws_secret_access_key in profile {profile:?} of {files}"
    )]
    Missing {
        /// The profile looked for.
        profile: String,
        /// The files looked in.
        files: String,
    },
    /// Half a pair, or a file that cannot be read.
    #[error("{0}")]
    Broken(String),
}

/// Finds credentials for `profile` (the section's `profile` key, if set).
pub fn resolve(env: &Environment, profile: Option<&str>) -> Result<Credentials, CredentialsError> {
    match (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            return Ok(Credentials {
                access_key_id: id.to_owned(),
                secret_access_key: secret.to_owned(),
                session_token: env.get("AWS_SESSION_TOKEN").map(str::to_owned),
                source: "the environment (AWS_ACCESS_KEY_ID)".into(),
            })
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(CredentialsError::Broken(
                "the environment has only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            ))
        }
        (None, None) => {}
    }
    let profile = profile.or(env.get("AWS_PROFILE")).unwrap_or("default").to_owned();
    let credentials_file = env.file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_file = env.file("AWS_CONFIG_FILE", "config");
    let config_section = if profile == "default" { "default".to_owned() } else { format!("profile {profile}") };
    let places = [(credentials_file.clone(), profile.clone()), (config_file.clone(), config_section)];
    for (file, section) in places {
        let Some(path) = file else { continue };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CredentialsError::Broken(format!("cannot read {}: {e}", path.display()))),
        };
        let Some(keys) = section_of(&text, &section) else { continue };
        let source = format!("{} [{section}]", path.display());
        match (keys.get("aws_access_key_id"), keys.get("aws_secret_access_key")) {
            (Some(id), Some(secret)) => {
                return Ok(Credentials {
                    access_key_id: id.clone(),
                    secret_access_key: secret.clone(),
                    session_token: keys.get("aws_session_token").cloned(),
                    source,
                })
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(CredentialsError::Broken(format!(
                    "{source} has only one of aws_access_key_id and aws_secret_access_key"
                )))
            }
            (None, None) => {}
        }
    }
    let files: Vec<String> =
        [credentials_file, config_file].into_iter().flatten().map(|p| p.display().to_string()).collect();
    Err(CredentialsError::Missing {
        profile,
        files: if files.is_empty() { "the shared files (HOME is not set)".into() } else { files.join(" or ") },
    })
}

/// The `key = value` pairs of section `[name]` of an INI-style AWS file
/// (keys lowercased; `#` and `;` start comments; sections repeated are
/// merged, later keys winning, as the SDKs do).
fn section_of(text: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let mut found: Option<BTreeMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            let header = header.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = header == name;
            if inside {
                found.get_or_insert_with(BTreeMap::new);
            }
            continue;
        }
        if !inside {
            continue;
        }
        if let (Some(keys), Some((k, v))) = (found.as_mut(), line.split_once('=')) {
            keys.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &str)]) -> Environment {
        Environment::from_pairs(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())))
    }

    #[test]
    fn the_environment_comes_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("credentials");
        std::fs::write(&file, "[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = s\n").expect("write");
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "FROMENV"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().expect("utf-8")),
        ]);
        let c = resolve(&e, None).expect("credentials");
        assert_eq!((c.access_key_id.as_str(), c.session_token.as_deref()), ("FROMENV", Some("token")));
        assert!(c.source.contains("environment"), "{}", c.source);
        let half = env(&[("AWS_ACCESS_KEY_ID", "FROMENV")]);
        assert!(matches!(resolve(&half, None), Err(CredentialsError::Broken(_))));
    }

    #[test]
    fn profiles_are_read_from_the_credentials_then_the_config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let aws = dir.path().join(".aws");
        std::fs::create_dir(&aws).expect("mkdir");
        std::fs::write(
            aws.join("credentials"),
            "# keys\n[default]\naws_access_key_id=DEFAULTKEY\naws_secret_access_key=d\n\n[ops]\n\
             AWS_ACCESS_KEY_ID = OPSKEY\naws_secret_access_key = o\naws_session_token = t\n",
        )
        .expect("write");
        std::fs::write(
            aws.join("config"),
            "[profile other]\nregion = us-east-1\naws_access_key_id = OTHERKEY\naws_secret_access_key = x\n",
        )
        .expect("write");
        let home = dir.path().to_str().expect("utf-8");
        let c = resolve(&env(&[("HOME", home)]), None).expect("default");
        assert_eq!(c.access_key_id, "DEFAULTKEY");
        let c = resolve(&env(&[("HOME", home), ("AWS_PROFILE", "ops")]), None).expect("ops");
        assert_eq!((c.access_key_id.as_str(), c.session_token.as_deref()), ("OPSKEY", Some("t")));
        // The section's profile key wins over AWS_PROFILE.
        let c = resolve(&env(&[("HOME", home), ("AWS_PROFILE", "ops")]), Some("other")).expect("other");
        assert_eq!(c.access_key_id, "OTHERKEY");
        assert!(c.source.ends_with("config [profile other]"), "{}", c.source);
        let missing = resolve(&env(&[("HOME", home)]), Some("nobody"));
        match missing {
            Err(CredentialsError::Missing { profile, files }) => {
                assert_eq!(profile, "nobody");
                assert!(files.contains(".aws/credentials") && files.contains(".aws/config"), "{files}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_secret_is_never_in_debug_output() {
        let c = resolve(&env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "hunter2")]), None)
            .expect("credentials");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
