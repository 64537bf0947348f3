//! The check file: TOML with a `[defaults]` table and `[[check]]` tables, every key one field of [`CheckSpec`].
//!
//! [`parse`] reads the whole file. A TOML syntax error, an unknown top-level key or a bad `[defaults]` key is an error
//! for the whole file ([`FileError`], naming its line). A bad key inside one `[[check]]` (unknown, or of the wrong type)
//! spoils only that check: its [`Entry`] carries a [`SpecError`] naming the line, and the other checks still run.
//!
//! [`CheckSpec`] is a plain serde struct with every key optional, so the same type reads `[defaults]`, a `[[check]]`
//! and (later) an exporter module; [`CheckSpec::merged`] lays a check over the defaults and [`CheckSpec::validate`]
//! says what a runnable check must have. The keys are documented in `docs/check.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `tls = "..."`: how the first connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsKey {
    /// Plaintext (the default, port 143).
    None,
    /// STARTTLS, required.
    Starttls,
    /// STARTTLS when offered, plaintext with a warning when not.
    StarttlsOpportunistic,
    /// Implicit TLS (port 993).
    Tls,
}

/// `auth = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKey {
    /// LOGIN (the default).
    Login,
    /// AUTHENTICATE PLAIN.
    Plain,
}

/// `follow = "..."`. `ask` is read so that it can be refused with a clear message: checks run with no one to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FollowKey {
    /// Follow referrals to trusted hosts (the default); others are refused.
    Auto,
    /// Refused in a check file.
    Ask,
    /// Report referrals without following them.
    Never,
}

/// `expect = "..."`: what a passing check finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The mailbox is opened, after any referrals (the default).
    #[default]
    Reached,
    /// The server answers with a referral (login or mailbox), whether or not it is followed.
    Referred,
    /// The login is refused (a NO, or a referral that cannot be followed), with no referral reaching the mailbox.
    Refused,
}

/// One check's keys (or the defaults'). Every key is optional here; [`CheckSpec::validate`] says which a check needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// The check's name in every output. Default `login@target`.
    pub name: Option<String>,
    /// `host`, `host:port`, `[v6addr]:port` or an IMAP URL, as `imapref probe` takes it. Required.
    pub target: Option<String>,
    /// The login name, sent as typed. Required unless the target URL names the user.
    pub login: Option<String>,
    /// Read the password from this environment variable.
    pub password_env: Option<String>,
    /// Read the password from the first line of this file.
    pub password_file: Option<PathBuf>,
    /// `none` (default), `starttls`, `starttls-opportunistic` or `tls`.
    pub tls: Option<TlsKey>,
    /// Trust the CA certificates in this PEM file.
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate. Default false.
    pub insecure: Option<bool>,
    /// `login` (default) or `plain`.
    pub auth: Option<AuthKey>,
    /// The mailbox to open. Default INBOX (or the URL's mailbox).
    pub mailbox: Option<String>,
    /// EXAMINE instead of SELECT. Default false.
    pub read_only: Option<bool>,
    /// `auto` (default) or `never`; `ask` is refused.
    pub follow: Option<FollowKey>,
    /// Hosts trusted for referrals (`*` matches any run of characters).
    pub allow_host: Option<Vec<String>>,
    /// The most referrals to follow. Default 10 (RFC 2221).
    pub max_hops: Option<usize>,
    /// Seconds to wait for any connect, read or handshake. Default 10.
    pub timeout: Option<f64>,
    /// The hard bound on the whole check, in seconds; past it the check is UNKNOWN. Default `--max-time` (30).
    pub max_time: Option<f64>,
    /// What a passing check finds. Default `reached`.
    pub expect: Option<Expect>,
    /// The server (`host:port`) where the mailbox must be opened.
    pub expect_home: Option<String>,
    /// How many referrals must be followed to reach the mailbox.
    pub expect_hops: Option<usize>,
    /// WARNING when a certificate on the way expires within this many days (CRITICAL once expired). Default 14.
    pub cert_min_days: Option<i64>,
    /// WARNING when the check takes longer than this many seconds.
    pub max_seconds: Option<f64>,
}

/// The keys of a check, in the order `docs/check.md` lists them.
pub const KEYS: &[&str] = &[
    "name",
    "target",
    "login",
    "password_env",
    "password_file",
    "tls",
    "ca_file",
    "insecure",
    "auth",
    "mailbox",
    "read_only",
    "follow",
    "allow_host",
    "max_hops",
    "timeout",
    "max_time",
    "expect",
    "expect_home",
    "expect_hops",
    "cert_min_days",
    "max_seconds",
];

macro_rules! overlay {
    ($out:ident, $over:ident, $($field:ident),*) => {
        $( if $over.$field.is_some() { $out.$field = $over.$field.clone(); } )*
    };
}

impl CheckSpec {
    /// This check laid over `defaults`: a key set in the check wins.
    pub fn merged(&self, defaults: &CheckSpec) -> CheckSpec {
        let mut out = defaults.clone();
        let over = self;
        overlay!(
            out,
            over,
            name,
            target,
            login,
            password_env,
            password_file,
            tls,
            ca_file,
            insecure,
            auth,
            mailbox,
            read_only,
            follow,
            allow_host,
            max_hops,
            timeout,
            max_time,
            expect,
            expect_home,
            expect_hops,
            cert_min_days,
            max_seconds
        );
        // A check that names its own password source drops the defaults' other one.
        if self.password_env.is_some() && self.password_file.is_none() {
            out.password_file = None;
        }
        if self.password_file.is_some() && self.password_env.is_none() {
            out.password_env = None;
        }
        out
    }

    /// What a runnable check needs beyond the probe's own validation: a target, one password source, no `ask`, and
    /// positive times. The message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if given(&self.target).is_none() {
            return Err("no `target`: every check needs one (host:port or an IMAP URL)".into());
        }
        if self.name.is_some() && given(&self.name).is_none() {
            return Err("`name` is blank: give the check a name, or leave the key out (login@target is used)".into());
        }
        match (&self.password_env, &self.password_file) {
            (None, None) => {
                return Err(
                    "no password source: set `password_env` or `password_file` (in the check or in [defaults])"
                        .into(),
                )
            }
            (Some(_), Some(_)) => {
                return Err("both `password_env` and `password_file`: give one".into())
            }
            _ => {}
        }
        if self.follow == Some(FollowKey::Ask) {
            return Err(
                "`follow = \"ask\"` needs a person to ask, and checks run unattended: use \"auto\" with `allow_host`, \
                 or \"never\""
                    .into(),
            );
        }
        for (key, value) in [
            ("max_time", self.max_time),
            ("max_seconds", self.max_seconds),
        ] {
            if let Some(v) = value {
                if !(v > 0.0 && v <= 3600.0) {
                    return Err(format!(
                        "`{key} = {v}`: give seconds above 0 and at most 3600"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The name shown in every output: `name`, or `login@target`.
    /// Blank strings count as absent, so that no check is shown with an empty name.
    pub fn display_name(&self) -> String {
        match (given(&self.name), given(&self.login), given(&self.target)) {
            (Some(name), _, _) => name.to_string(),
            (None, Some(login), Some(target)) => format!("{login}@{target}"),
            (None, None, Some(target)) => target.to_string(),
            _ => "(unnamed)".into(),
        }
    }
}

/// A string key's value when it is set and not blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// Why a whole check file cannot be used.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// TOML syntax, an unknown top-level key or a bad `[defaults]` key.
    #[error("line {line}: {message}")]
    Toml {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The TOML error has no position.
    #[error("{0}")]
    Unplaced(String),
    /// No `[[check]]` table at all.
    #[error("no [[check]] table: the file checks nothing")]
    NoChecks,
}

/// Why one check cannot run.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct SpecError {
    /// 1-based line of the key at fault (or of the check's first key).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One `[[check]]` of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// 1-based position in the file.
    pub index: usize,
    /// 1-based line of its first key (or of its `[[check]]` header when it has no keys).
    pub line: usize,
    /// The check laid over the defaults, validated; or what is wrong with it.
    pub spec: Result<CheckSpec, SpecError>,
    /// `name`, `target` and `login` as written (string values only, defaults applied), to name even a bad check.
    pub written: CheckSpec,
}

impl Entry {
    /// The name to show, even for a bad check: its `name`, `login@target`, or `check #N (line L)`.
    pub fn display_name(&self) -> String {
        match &self.spec {
            Ok(spec) => spec.display_name(),
            Err(_) if given(&self.written.target).is_some() => self.written.display_name(),
            Err(_) => format!("check #{} (line {})", self.index, self.line),
        }
    }
}

/// A parsed check file.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFile {
    /// The `[defaults]` table.
    pub defaults: CheckSpec,
    /// The checks, in file order.
    pub checks: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: Option<CheckSpec>,
    #[serde(default)]
    check: Vec<toml::Spanned<BTreeMap<toml::Spanned<String>, toml::Value>>>,
}

/// The 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The first line of a TOML error's message (the rest repeats the source).
pub(crate) fn short_message(err: &toml::de::Error) -> String {
    err.message().trim().replace('\n', " ")
}

/// Parses a check file. See the module documentation for which errors spoil the file and which one check.
pub fn parse(text: &str) -> Result<CheckFile, FileError> {
    let raw: RawFile = toml::from_str(text).map_err(|err| match err.span() {
        Some(span) => FileError::Toml {
            line: line_of(text, span.start),
            message: short_message(&err),
        },
        None => FileError::Unplaced(short_message(&err)),
    })?;
    if raw.check.is_empty() {
        return Err(FileError::NoChecks);
    }
    let defaults = raw.defaults.unwrap_or_default();
    let checks = raw
        .check
        .into_iter()
        .enumerate()
        .map(|(i, table)| {
            let header_line = line_of(text, table.span().start);
            let table = table.into_inner();
            let line = table
                .keys()
                .map(|k| line_of(text, k.span().start))
                .min()
                .unwrap_or(header_line);
            let written_str = |key: &str| {
                table
                    .iter()
                    .find(|(k, _)| k.get_ref() == key)
                    .and_then(|(_, v)| v.as_str().map(str::to_string))
            };
            let written = CheckSpec {
                name: written_str("name"),
                target: written_str("target"),
                login: written_str("login").or(defaults.login.clone()),
                ..CheckSpec::default()
            };
            Entry {
                index: i + 1,
                line,
                spec: check_from_table(text, &table, &defaults, line),
                written,
            }
        })
        .collect();
    Ok(CheckFile { defaults, checks })
}

fn check_from_table(
    text: &str,
    table: &BTreeMap<toml::Spanned<String>, toml::Value>,
    defaults: &CheckSpec,
    line: usize,
) -> Result<CheckSpec, SpecError> {
    // Key by key first, so that an error names the line of the key at fault.
    let mut whole = toml::Table::new();
    let mut keys: Vec<_> = table.iter().collect();
    keys.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in keys {
        let mut one = toml::Table::new();
        one.insert(key.get_ref().clone(), value.clone());
        if let Err(err) = CheckSpec::deserialize(toml::Value::Table(one)) {
            let message = if KEYS.contains(&key.get_ref().as_str()) {
                format!("`{}`: {}", key.get_ref(), short_message(&err))
            } else {
                format!(
                    "unknown key `{}` in [[check]]; the keys are: {}",
                    key.get_ref(),
                    KEYS.join(", ")
                )
            };
            return Err(SpecError {
                line: line_of(text, key.span().start),
                message,
            });
        }
        whole.insert(key.get_ref().clone(), value.clone());
    }
    let spec = CheckSpec::deserialize(toml::Value::Table(whole)).map_err(|err| SpecError {
        line,
        message: short_message(&err),
    })?;
    let spec = spec.merged(defaults);
    spec.validate()
        .map_err(|message| SpecError { line, message })?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[defaults]
timeout = 5
password_env = "IMAP_PW"

[[check]]
name = "kb user"
target = "imap.example.com:143"
login = "DOMname/User1/Alias1"
tls = "starttls"
allow_host = ["*.example.com"]
expect = "referred"
expect_hops = 1
cert_min_days = 14
max_seconds = 2

[[check]]
target = "other.example.com"
login = "jdoe"
password_file = "/run/pw"
"#;

    #[test]
    fn a_check_is_laid_over_the_defaults() {
        let file = parse(GOOD).expect("parses");
        assert_eq!(file.checks.len(), 2);
        let first = file.checks[0].spec.clone().expect("valid");
        assert_eq!(first.timeout, Some(5.0), "an integer is read as seconds");
        assert_eq!(first.password_env.as_deref(), Some("IMAP_PW"));
        assert_eq!(first.tls, Some(TlsKey::Starttls));
        assert_eq!(first.expect, Some(Expect::Referred));
        assert_eq!(first.display_name(), "kb user");
        let second = file.checks[1].spec.clone().expect("valid");
        assert_eq!(second.password_env, None, "its own password_file wins");
        assert_eq!(second.display_name(), "jdoe@other.example.com");
        assert_eq!(file.checks[1].line, 18);
    }

    #[test]
    fn an_unknown_key_in_a_check_names_its_line_and_spoils_only_that_check() {
        let text = "[defaults]\npassword_env = \"P\"\n[[check]]\ntarget = \"a\"\nlogin = \"u\"\nexpcet = \"reached\"\n\n[[check]]\ntarget = \"b\"\nlogin = \"u\"\n";
        let file = parse(text).expect("the file is still read");
        let err = file.checks[0].spec.clone().expect_err("bad check");
        assert_eq!(err.line, 6);
        assert!(err.message.contains("unknown key `expcet`"), "{err}");
        assert!(file.checks[1].spec.is_ok());
    }

    #[test]
    fn a_wrong_type_names_the_key_and_line() {
        let text = "[[check]]\ntarget = \"a\"\npassword_env = \"P\"\nexpect_hops = \"one\"\n";
        let err = parse(text).expect("read").checks[0]
            .spec
            .clone()
            .expect_err("bad");
        assert_eq!(err.line, 4);
        assert!(err.message.starts_with("`expect_hops`"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_defaults_or_at_the_top_spoils_the_file_with_its_line() {
        let err = parse("[defaults]\ntimeout = 5\ntimout = 3\n[[check]]\ntarget = \"a\"\n")
            .expect_err("bad file");
        assert!(
            matches!(&err, FileError::Toml { line: 3, message } if message.contains("timout")),
            "{err:?}"
        );
        let err = parse("[[checks]]\ntarget = \"a\"\n").expect_err("bad file");
        assert!(matches!(err, FileError::Toml { line: 1, .. }), "{err:?}");
        assert_eq!(
            parse("[defaults]\n").expect_err("empty"),
            FileError::NoChecks
        );
    }

    #[test]
    fn ask_and_a_missing_password_are_refused() {
        let text = "[[check]]\ntarget = \"a\"\npassword_env = \"P\"\nfollow = \"ask\"\n[[check]]\ntarget = \"b\"\n";
        let file = parse(text).expect("read");
        let ask = file.checks[0].spec.clone().expect_err("ask");
        assert!(ask.message.contains("follow = \"ask\""), "{ask}");
        let nopw = file.checks[1].spec.clone().expect_err("no password");
        assert!(nopw.message.contains("no password source"), "{nopw}");
        assert_eq!(nopw.line, 6);
    }

    #[test]
    fn every_listed_key_is_a_field() {
        for key in KEYS {
            let value = match *key {
                "allow_host" => toml::Value::Array(vec![]),
                "insecure" | "read_only" => toml::Value::Boolean(true),
                "max_hops" | "expect_hops" | "cert_min_days" | "timeout" | "max_time"
                | "max_seconds" => toml::Value::Integer(1),
                "tls" => toml::Value::String("tls".into()),
                "auth" => toml::Value::String("plain".into()),
                "follow" => toml::Value::String("never".into()),
                "expect" => toml::Value::String("refused".into()),
                _ => toml::Value::String("x".into()),
            };
            let mut one = toml::Table::new();
            one.insert(key.to_string(), value);
            CheckSpec::deserialize(toml::Value::Table(one))
                .unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[test]
    fn a_blank_target_or_name_never_gives_an_empty_name() {
        // Found by the check_file fuzz target: a bad check with `target = ""` was shown with an empty name.
        let file = parse("[[check]]\ntarget = \"\"\npassword_en= 7\n").expect("a file");
        assert_eq!(file.checks[0].display_name(), "check #1 (line 2)");
        let file = parse(
            "[[check]]\nname = \" \"\ntarget = \"h:143\"\nlogin = \"u\"\npassword_env = \"PW\"\n",
        )
        .expect("a file");
        let err = file.checks[0]
            .spec
            .as_ref()
            .expect_err("a blank name is refused");
        assert!(err.message.contains("`name` is blank"), "{err}");
        assert_eq!(file.checks[0].display_name(), "u@h:143");
    }
}
