//! Credentials from a netrc file (`--netrc`, `--netrc-file FILE`), read as curl reads it: `machine HOST login USER
//! password PW` entries, a `default` entry for any other host, `macdef` blocks skipped, `#` comments, and tokens in
//! double quotes (with `\"`, `\\`, `\n`, `\r`, `\t`) for values with spaces.
//!
//! [`parse`] and [`lookup`] are pure; [`load`] reads the file, and refuses one that its group or others may read or
//! write, as ssh refuses such a private key: it holds passwords.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::secret::Secret;

/// The largest netrc file read: far more than any list of hosts needs.
const MAX_NETRC_BYTES: u64 = 1024 * 1024;

/// One `machine` or `default` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The host; `None` for `default`.
    pub machine: Option<String>,
    /// `login`.
    pub login: Option<String>,
    /// `password`, a [`Secret`] from the moment it is read (`Debug` shows `***`).
    pub password: Option<Secret>,
}

/// Why a netrc file cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NetrcError {
    /// A keyword without its value at the end of the file.
    #[error("`{0}` at the end of the file has no value")]
    MissingValue(String),
    /// `login`, `password` or `account` before any `machine` or `default`.
    #[error("`{0}` comes before any `machine` or `default`")]
    OutsideEntry(String),
    /// A word that is not a netrc keyword, after the value of `after` (or first in the file). The word itself is not
    /// shown: after `password`, it is most likely the rest of a password with a space in it.
    #[error(
        "a word that is not a netrc keyword (machine, default, login, password, account, macdef) comes {}; a value \
         with spaces needs double quotes",
        .after.as_deref().map(|k| format!("after the value of `{k}`")).unwrap_or_else(|| "first".into())
    )]
    UnknownKeyword {
        /// The keyword whose value came just before.
        after: Option<String>,
    },
    /// A quoted token without its closing quote.
    #[error("a quoted value has no closing quote")]
    UnclosedQuote,
}

/// The file's tokens, comments and `macdef` blocks left out.
fn tokens(text: &str) -> Result<Vec<String>, NetrcError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut macdef = false;
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            // A comment to the end of the line.
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            continue;
        }
        let mut token = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => token.push('\n'),
                        Some('r') => token.push('\r'),
                        Some('t') => token.push('\t'),
                        Some(other) => token.push(other),
                        None => break,
                    },
                    c => token.push(c),
                }
            }
            if !closed {
                return Err(NetrcError::UnclosedQuote);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                token.push(c);
                chars.next();
            }
        }
        if macdef {
            // `macdef NAME`, then the macro's lines up to an empty line: skipped.
            macdef = false;
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            let mut empty_line = true;
            for c in chars.by_ref() {
                if c == '\n' {
                    if empty_line {
                        break;
                    }
                    empty_line = true;
                } else if c != '\r' {
                    empty_line = false;
                }
            }
            continue;
        }
        macdef = token == "macdef";
        if !macdef {
            out.push(token);
        }
    }
    Ok(out)
}

/// The entries of a netrc file's text, in order.
pub fn parse(text: &str) -> Result<Vec<Entry>, NetrcError> {
    let tokens = tokens(text)?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut words = tokens.into_iter();
    let mut last: Option<String> = None;
    while let Some(word) = words.next() {
        let mut value = || {
            words
                .next()
                .ok_or_else(|| NetrcError::MissingValue(word.clone()))
        };
        match word.as_str() {
            "machine" => {
                let machine = value()?;
                entries.push(Entry {
                    machine: Some(machine),
                    login: None,
                    password: None,
                });
            }
            "default" => entries.push(Entry {
                machine: None,
                login: None,
                password: None,
            }),
            "login" | "password" | "account" => {
                let v = value()?;
                let Some(entry) = entries.last_mut() else {
                    return Err(NetrcError::OutsideEntry(word));
                };
                match word.as_str() {
                    "login" => entry.login = Some(v),
                    "password" => entry.password = Some(Secret::new(v)),
                    _ => {}
                }
            }
            _ => return Err(NetrcError::UnknownKeyword { after: last }),
        }
        last = Some(word);
    }
    Ok(entries)
}

/// The entry for `host` (and `user`, when given), as curl picks it: the first `machine` entry for the host (compared
/// without regard to case) whose login is `user` or, without a user, any; else the `default` entry, if its login
/// fits.
pub fn lookup<'e>(entries: &'e [Entry], host: &str, user: Option<&str>) -> Option<&'e Entry> {
    let login_fits = |e: &Entry| match (user, e.login.as_deref()) {
        (Some(u), Some(l)) => u == l,
        _ => true,
    };
    entries
        .iter()
        .find(|e| {
            e.machine
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(host))
                && login_fits(e)
        })
        .or_else(|| {
            entries
                .iter()
                .find(|e| e.machine.is_none() && login_fits(e))
        })
}

/// Where `--netrc` looks: `~/.netrc`.
pub fn default_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))
        .map(|home| home.join(".netrc"))
}

/// Why a file's mode is too open for a file of passwords (its group or others may read or write it), or `None`.
pub fn too_open(mode: u32) -> Option<String> {
    let who = |bit: u32| {
        let names: Vec<&str> = [(bit << 3, "its group"), (bit, "others")]
            .into_iter()
            .filter(|(b, _)| mode & b != 0)
            .map(|(_, name)| name)
            .collect();
        names.join(" and ")
    };
    let (readers, writers) = (who(0o4), who(0o2));
    let mut why = Vec::new();
    if !readers.is_empty() {
        why.push(format!("readable by {readers}"));
    }
    if !writers.is_empty() {
        why.push(format!("writable by {writers}"));
    }
    (!why.is_empty()).then(|| format!("is {} (mode {:04o})", why.join(" and "), mode & 0o7777))
}

/// Reads and parses the netrc file at `path`, refusing one that its group or others may use.
pub fn load(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let shown = path.display();
    let cannot = |e: std::io::Error| anyhow::anyhow!("netrc file {shown}: cannot read it: {e}");
    // One open: the file whose mode is checked is the file that is read.
    let file = std::fs::File::open(path).map_err(cannot)?;
    let metadata = file.metadata().map_err(cannot)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Some(why) = too_open(metadata.permissions().mode()) {
            anyhow::bail!(
                "netrc file {shown} {why}; it holds passwords, so imapref does not use it (as ssh refuses a private \
                 key that others can read): chmod 600 {shown}"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let mut text = String::new();
    file.take(MAX_NETRC_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() as u64 > MAX_NETRC_BYTES {
        anyhow::bail!("netrc file {shown} is larger than 1 MiB: not a netrc file");
    }
    parse(&text).map_err(|e| anyhow::anyhow!("netrc file {shown}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn entry(machine: Option<&str>, login: Option<&str>, password: Option<&str>) -> Entry {
        Entry {
            machine: machine.map(str::to_string),
            login: login.map(str::to_string),
            password: password.map(Secret::new),
        }
    }

    #[test]
    fn machines_and_default_on_one_line_or_several() {
        let text = "machine mail.example login jdoe password s3cret\n\
                    machine 127.0.0.1\n  login DOMname/UserN/AliasN\n  password PASSword\n\
                    default login anonymous password guest\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![
                entry(Some("mail.example"), Some("jdoe"), Some("s3cret")),
                entry(
                    Some("127.0.0.1"),
                    Some("DOMname/UserN/AliasN"),
                    Some("PASSword")
                ),
                entry(None, Some("anonymous"), Some("guest")),
            ]
        );
    }

    #[test]
    fn quotes_comments_account_and_macdef() {
        let text = "# my hosts\n\
                    machine a.example login \"j doe\" password \"pa ss\\\"word\\\\\" account x # trailing\n\
                    macdef init\ncd /pub\nbinary\n\n\
                    machine b.example login u password p\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![
                entry(Some("a.example"), Some("j doe"), Some("pa ss\"word\\")),
                entry(Some("b.example"), Some("u"), Some("p")),
            ]
        );
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        assert_eq!(
            parse("machine a login"),
            Err(NetrcError::MissingValue("login".into()))
        );
        assert_eq!(
            parse("login u password p"),
            Err(NetrcError::OutsideEntry("login".into()))
        );
        assert_eq!(
            parse("machine a user u"),
            Err(NetrcError::UnknownKeyword {
                after: Some("machine".into())
            })
        );
        assert_eq!(
            parse("machine a password \"open"),
            Err(NetrcError::UnclosedQuote)
        );
        assert_eq!(parse("").unwrap(), Vec::new());
    }

    #[test]
    fn lookup_takes_the_first_fitting_machine_then_default() {
        let entries = parse(
            "machine Mail.Example login alice password a\n\
             machine mail.example login bob password b\n\
             default login anon password d\n",
        )
        .unwrap();
        let password = |host, user| {
            lookup(&entries, host, user)
                .and_then(|e| e.password.as_ref())
                .map(|p| p.expose().to_string())
        };
        assert_eq!(password("mail.example", None).as_deref(), Some("a"));
        assert_eq!(password("MAIL.example", Some("bob")).as_deref(), Some("b"));
        assert_eq!(password("other.example", None).as_deref(), Some("d"));
        // A user that fits no machine entry and not the default's login: nothing.
        assert_eq!(password("mail.example", Some("carol")), None);
        assert_eq!(
            password("other.example", Some("anon")).as_deref(),
            Some("d")
        );
        let no_default = parse("machine a login u password p").unwrap();
        assert_eq!(lookup(&no_default, "b", None), None);
        // An entry without a login fits any user.
        let any = parse("machine a password p").unwrap();
        assert!(lookup(&any, "a", Some("whoever")).is_some());
    }

    #[test]
    fn a_file_that_others_may_use_is_too_open() {
        assert_eq!(too_open(0o100600), None);
        assert_eq!(too_open(0o400), None);
        assert_eq!(too_open(0o700), None);
        assert_eq!(
            too_open(0o100644).unwrap(),
            "is readable by its group and others (mode 0644)"
        );
        assert_eq!(
            too_open(0o640).unwrap(),
            "is readable by its group (mode 0640)"
        );
        assert_eq!(
            too_open(0o602).unwrap(),
            "is writable by others (mode 0602)"
        );
        assert_eq!(
            too_open(0o666).unwrap(),
            "is readable by its group and others and writable by its group and others (mode 0666)"
        );
    }

    #[test]
    fn an_error_never_shows_a_password_with_a_space_in_it() {
        // `password correct horse` without quotes: `horse` is no keyword, and the message once quoted it.
        let err =
            parse("machine mail.example login jdoe password correct horse battery\n").unwrap_err();
        let text = err.to_string();
        assert!(
            !text.contains("horse") && !text.contains("correct"),
            "{text}"
        );
        assert!(text.contains("after the value of `password`"), "{text}");
        assert!(text.contains("double quotes"), "{text}");
        // And a parsed password shows as *** in Debug.
        let entries = parse("machine a password s3cret-pw").unwrap();
        assert!(!format!("{entries:?}").contains("s3cret-pw"));
    }
}
