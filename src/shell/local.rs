//! The shell's own commands, the lines that start with `:` — parsing and help text. Pure: a line in, a
//! [`LocalCommand`] or a [`LocalError`] out; running them is the engine's business.

use std::path::PathBuf;

use thiserror::Error;

use crate::transport::TlsMode;

/// One local command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalCommand {
    /// `:connect TARGET [--tls|--starttls|--plain]`: open a new connection (closing the ones open).
    Connect {
        /// `host`, `host:port`, `[v6]:port` or an IMAP URL.
        target: String,
        /// The TLS mode asked for; `None` keeps the one given on the command line.
        tls: Option<TlsMode>,
    },
    /// `:starttls`: upgrade the current connection.
    StartTls,
    /// `:login [USER]`: ask the password without echo and send LOGIN.
    Login {
        /// The login name; `None` uses `--user` or the name last used.
        user: Option<String>,
    },
    /// `:follow [--yes]`: follow the last referral seen.
    Follow {
        /// Do not ask before reusing the password.
        yes: bool,
    },
    /// `:back`: log out of the current connection and return to the previous one.
    Back,
    /// `:explain [LINE]`: explain the last response, or a line given.
    Explain {
        /// A server line to explain instead of the last response.
        line: Option<String>,
    },
    /// `:transcript FILE`: save the transcript, passwords redacted.
    Transcript {
        /// Where to write it.
        path: PathBuf,
    },
    /// `:raw [on|off]`: show the bytes on the wire.
    Raw(Option<bool>),
    /// `:help`.
    Help,
    /// `:quit`: log out and leave.
    Quit,
}

/// Why a `:` line is not a local command.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LocalError {
    /// No such command.
    #[error("`:{0}` is not a shell command; :help lists them")]
    Unknown(String),
    /// The arguments do not fit.
    #[error("{problem}; usage: {usage}")]
    Usage {
        /// What is wrong.
        problem: String,
        /// The command's synopsis.
        usage: &'static str,
    },
}

/// A local command's synopsis and what it does, for `:help` and completion.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    /// The name with its colon, e.g. `:login`.
    pub name: &'static str,
    /// The synopsis, e.g. `:login [USER]`.
    pub usage: &'static str,
    /// One sentence.
    pub about: &'static str,
}

/// Every local command, in the order `:help` shows them.
pub const COMMANDS: &[Doc] = &[
    Doc {
        name: ":connect",
        usage: ":connect TARGET [--tls|--starttls|--plain]",
        about: "Open a connection to host[:port] or an imap:// URL (closing the open ones); show the banner and \
                capabilities.",
    },
    Doc {
        name: ":starttls",
        usage: ":starttls",
        about: "Upgrade the current connection with STARTTLS and show the certificate.",
    },
    Doc {
        name: ":login",
        usage: ":login [USER]",
        about: "Ask the password without echo and send LOGIN (shown and recorded as ***).",
    },
    Doc {
        name: ":follow",
        usage: ":follow [--yes]",
        about: "Follow the last referral: connect to its host (same TLS, never lower), log in as its user \
                reusing your password after you confirm. The previous connection stays open.",
    },
    Doc {
        name: ":back",
        usage: ":back",
        about: "Log out of the current connection and return to the previous one.",
    },
    Doc {
        name: ":explain",
        usage: ":explain [LINE]",
        about: "Explain the last response (or LINE): kind, code, decoded referral, known texts.",
    },
    Doc {
        name: ":transcript",
        usage: ":transcript FILE",
        about: "Save every connection's transcript (C:/S: lines, passwords as ***) to FILE.",
    },
    Doc {
        name: ":raw",
        usage: ":raw [on|off]",
        about: "Show the bytes on the wire, escaped (C: and S: lines).",
    },
    Doc {
        name: ":help",
        usage: ":help",
        about: "This list.",
    },
    Doc {
        name: ":quit",
        usage: ":quit",
        about: "Log out of every connection and leave (Ctrl-D does the same).",
    },
];

fn usage(name: &str) -> &'static str {
    COMMANDS
        .iter()
        .find(|d| d.name == name)
        .map_or("", |d| d.usage)
}

fn usage_error(name: &str, problem: impl Into<String>) -> LocalError {
    LocalError::Usage {
        problem: problem.into(),
        usage: usage(name),
    }
}

/// True for a line the shell runs itself.
pub fn is_local(line: &str) -> bool {
    line.trim_start().starts_with(':')
}

/// Parses a `:` line. Commands may be abbreviated to any unambiguous prefix (`:q`, `:tr`).
pub fn parse(line: &str) -> Result<LocalCommand, LocalError> {
    let line = line.trim();
    let body = line.strip_prefix(':').unwrap_or(line);
    let (word, rest) = match body.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (body, ""),
    };
    let lower = word.to_ascii_lowercase();
    let candidates: Vec<&Doc> = COMMANDS
        .iter()
        .filter(|d| d.name[1..].starts_with(&lower))
        .collect();
    let doc = match candidates.as_slice() {
        _ if lower.is_empty() => return Err(LocalError::Unknown(String::new())),
        [one] => *one,
        many => match many.iter().find(|d| d.name[1..] == lower) {
            Some(exact) => *exact,
            None => return Err(LocalError::Unknown(word.to_string())),
        },
    };
    let args: Vec<&str> = rest.split_whitespace().collect();
    let name = doc.name;
    let no_args = |cmd: LocalCommand| {
        if args.is_empty() {
            Ok(cmd)
        } else {
            Err(usage_error(name, format!("{name} takes no arguments")))
        }
    };
    match name {
        ":connect" => {
            let mut target = None;
            let mut tls = None;
            for a in &args {
                let mode = match a.to_ascii_lowercase().as_str() {
                    "--tls" => Some(TlsMode::Implicit),
                    "--starttls" => Some(TlsMode::StartTls),
                    "--plain" => Some(TlsMode::Plain),
                    s if s.starts_with("--") => {
                        return Err(usage_error(name, format!("unknown option {a}")))
                    }
                    _ => None,
                };
                match (mode, target.is_some(), tls.is_some()) {
                    (Some(_), _, true) => {
                        return Err(usage_error(
                            name,
                            "give at most one of --tls, --starttls, --plain",
                        ))
                    }
                    (Some(m), _, false) => tls = Some(m),
                    (None, false, _) => target = Some(a.to_string()),
                    (None, true, _) => return Err(usage_error(name, "give one target")),
                }
            }
            let target = target.ok_or_else(|| usage_error(name, "no target"))?;
            Ok(LocalCommand::Connect { target, tls })
        }
        ":starttls" => no_args(LocalCommand::StartTls),
        ":login" => match args.as_slice() {
            [] => Ok(LocalCommand::Login { user: None }),
            [user] => Ok(LocalCommand::Login {
                user: Some(user.to_string()),
            }),
            _ => Err(usage_error(
                name,
                "give the login name only; the password is asked for without echo",
            )),
        },
        ":follow" => match args.as_slice() {
            [] => Ok(LocalCommand::Follow { yes: false }),
            [y] if matches!(y.to_ascii_lowercase().as_str(), "--yes" | "-y" | "yes") => {
                Ok(LocalCommand::Follow { yes: true })
            }
            _ => Err(usage_error(name, format!("unknown argument {}", args[0]))),
        },
        ":back" => no_args(LocalCommand::Back),
        ":explain" => Ok(LocalCommand::Explain {
            line: (!rest.is_empty()).then(|| rest.to_string()),
        }),
        ":transcript" => {
            if rest.is_empty() {
                Err(usage_error(name, "no file name"))
            } else {
                Ok(LocalCommand::Transcript {
                    path: PathBuf::from(rest),
                })
            }
        }
        ":raw" => match args.as_slice() {
            [] => Ok(LocalCommand::Raw(None)),
            [v] => match v.to_ascii_lowercase().as_str() {
                "on" | "1" | "yes" | "true" => Ok(LocalCommand::Raw(Some(true))),
                "off" | "0" | "no" | "false" => Ok(LocalCommand::Raw(Some(false))),
                _ => Err(usage_error(name, format!("`{v}` is neither on nor off"))),
            },
            _ => Err(usage_error(name, "give on or off")),
        },
        ":help" => Ok(LocalCommand::Help),
        _ => no_args(LocalCommand::Quit),
    }
}

/// How wide `:help` is without a terminal (a script's output).
pub const HELP_WIDTH_WITHOUT_TERMINAL: usize = 100;

/// The width `:help` is wrapped to: the terminal's columns (read each time, so a resized terminal counts), else
/// [`HELP_WIDTH_WITHOUT_TERMINAL`].
pub fn help_width() -> usize {
    terminal_size::terminal_size()
        .map(|(w, _)| usize::from(w.0))
        .filter(|&w| w > 0)
        .unwrap_or(HELP_WIDTH_WITHOUT_TERMINAL)
}

/// `text` in lines of at most `width` columns (a word longer than that stands alone), each after `indent` but the
/// first, which goes after `first` (already written, of `first` columns).
fn wrap(text: &str, width: usize, first: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut column = first;
    let mut line_empty = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if !line_empty && column + 1 + len > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            column = indent;
            line_empty = true;
        }
        if !line_empty {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
        line_empty = false;
    }
    out
}

/// The text of `:help` wrapped to `width` columns: the local commands, how raw lines are sent, and the keys. Wide
/// enough, each command's sentence goes beside its synopsis (wrapped under itself); narrower, below it.
pub fn help_text(width: usize) -> String {
    let width = width.max(20);
    let column = COMMANDS.iter().map(|d| d.usage.len()).max().unwrap_or(0) + 3;
    let beside = width >= column + 30;
    let mut out = String::from("Shell commands:\n");
    for d in COMMANDS {
        if beside {
            out.push_str(&format!("  {:<w$} ", d.usage, w = column - 3));
            out.push_str(&wrap(d.about, width, column, column));
        } else {
            out.push_str(&format!("  {}\n      ", wrap(d.usage, width, 2, 4)));
            out.push_str(&wrap(d.about, width, 6, 6));
        }
        out.push('\n');
    }
    for paragraph in [
        "Any other line is IMAP, sent as typed: `? login DOMname/UserN/AliasN PASSword`, `a1 select inbox`. A line \
         without a tag gets one (`select inbox` is sent as `a2 select inbox`). Arguments with 8-bit characters go as \
         literals; a literal {n} at the end of a line takes its data from the next lines.",
        "Keys: Tab completes commands and mailbox names; Ctrl-C cancels the line (twice while a command waits: reset \
         the connection); Ctrl-D logs out and leaves. Passwords never reach the history file.",
    ] {
        out.push('\n');
        out.push_str(&wrap(paragraph, width, 0, 0));
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn connect() {
        assert_eq!(
            parse(":connect 127.0.0.1:1143").unwrap(),
            LocalCommand::Connect {
                target: "127.0.0.1:1143".into(),
                tls: None
            }
        );
        assert_eq!(
            parse(":connect --tls mail.example.com").unwrap(),
            LocalCommand::Connect {
                target: "mail.example.com".into(),
                tls: Some(TlsMode::Implicit)
            }
        );
        assert_eq!(
            parse("  :connect host --STARTTLS  ").unwrap(),
            LocalCommand::Connect {
                target: "host".into(),
                tls: Some(TlsMode::StartTls)
            }
        );
        assert!(matches!(parse(":connect"), Err(LocalError::Usage { .. })));
        assert!(matches!(
            parse(":connect a b"),
            Err(LocalError::Usage { .. })
        ));
        assert!(matches!(
            parse(":connect a --tls --starttls"),
            Err(LocalError::Usage { .. })
        ));
        let err = parse(":connect a --bogus").unwrap_err();
        assert!(err.to_string().contains("--bogus"), "{err}");
        assert!(err.to_string().contains(":connect TARGET"), "{err}");
    }

    #[test]
    fn the_others() {
        assert_eq!(parse(":starttls").unwrap(), LocalCommand::StartTls);
        assert_eq!(
            parse(":login DOMname/UserN/AliasN").unwrap(),
            LocalCommand::Login {
                user: Some("DOMname/UserN/AliasN".into())
            }
        );
        assert_eq!(parse(":login").unwrap(), LocalCommand::Login { user: None });
        let err = parse(":login user PASSword").unwrap_err();
        assert!(!err.to_string().contains("PASSword"));
        assert_eq!(
            parse(":follow").unwrap(),
            LocalCommand::Follow { yes: false }
        );
        assert_eq!(
            parse(":follow --yes").unwrap(),
            LocalCommand::Follow { yes: true }
        );
        assert_eq!(parse(":back").unwrap(), LocalCommand::Back);
        assert_eq!(
            parse(":explain").unwrap(),
            LocalCommand::Explain { line: None }
        );
        assert_eq!(
            parse(":explain ? NO [REFERRAL imap://h] x").unwrap(),
            LocalCommand::Explain {
                line: Some("? NO [REFERRAL imap://h] x".into())
            }
        );
        assert_eq!(
            parse(":transcript /tmp/my file.txt").unwrap(),
            LocalCommand::Transcript {
                path: PathBuf::from("/tmp/my file.txt")
            }
        );
        assert!(parse(":transcript").is_err());
        assert_eq!(parse(":raw on").unwrap(), LocalCommand::Raw(Some(true)));
        assert_eq!(parse(":raw OFF").unwrap(), LocalCommand::Raw(Some(false)));
        assert_eq!(parse(":raw").unwrap(), LocalCommand::Raw(None));
        assert!(parse(":raw maybe").is_err());
        assert_eq!(parse(":help").unwrap(), LocalCommand::Help);
        assert_eq!(parse(":quit").unwrap(), LocalCommand::Quit);
        assert!(parse(":quit now").is_err());
        assert!(parse(":back please").is_err());
    }

    #[test]
    fn prefixes_and_unknowns() {
        assert_eq!(parse(":q").unwrap(), LocalCommand::Quit);
        assert_eq!(
            parse(":tr x").unwrap(),
            LocalCommand::Transcript { path: "x".into() }
        );
        assert_eq!(parse(":h").unwrap(), LocalCommand::Help);
        assert_eq!(
            parse(":bogus").unwrap_err(),
            LocalError::Unknown("bogus".into())
        );
        assert_eq!(parse(":").unwrap_err(), LocalError::Unknown(String::new()));
        assert!(is_local(" :help"));
        assert!(!is_local("? login x y"));
    }

    #[test]
    fn help_lists_every_command() {
        let help = help_text(120);
        for d in COMMANDS {
            assert!(help.contains(d.usage), "{}", d.name);
        }
    }

    #[test]
    fn help_fits_the_width_and_keeps_every_word() {
        let words = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let whole = words(&help_text(1000));
        for width in [40, 60, 80, 100, 132] {
            let help = help_text(width);
            for line in help.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{width} columns: {line:?} is {} long",
                    line.chars().count()
                );
            }
            assert_eq!(words(&help), whole, "{width} columns");
        }
        // Wide: the sentence beside its synopsis; narrow: below it.
        assert!(help_text(100)
            .lines()
            .any(|l| l.starts_with("  :back") && l.contains("Log out")));
        assert!(help_text(50).lines().any(|l| l.trim() == ":back"));
    }

    #[test]
    fn wrap_breaks_between_words_only() {
        assert_eq!(wrap("aa bb cc", 5, 0, 0), "aa bb\ncc");
        assert_eq!(wrap("aa bb cc", 7, 2, 2), "aa bb\n  cc");
        assert_eq!(
            wrap("averyverylongword x", 5, 0, 1),
            "averyverylongword\n x"
        );
        assert_eq!(wrap("", 5, 0, 0), "");
    }
}
