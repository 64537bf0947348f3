//! Tab completion and the password mask, as a rustyline [`Helper`].
//!
//! Completion offers IMAP command names (after an optional tag: `? sel<TAB>` gives `? SELECT`), the shell's `:`
//! commands, file names after `:transcript`, and mailbox names learned from LIST, LSUB, RLIST and RLSUB responses
//! for the arguments that name a mailbox (SELECT, EXAMINE, STATUS, LIST, ...). Mailboxes are inserted in their wire
//! form (modified UTF-7), quoted when they hold a space or a special character, and shown decoded in the list.
//!
//! The highlighter draws the password of a LOGIN line (and an AUTHENTICATE initial response) as a fixed `***`
//! while it is typed, so neither it nor its length is on the screen: the rest of its width is blank, so the line
//! editor's cursor arithmetic still holds, and the cursor is hidden while a secret is on the line (the shell shows it
//! again when the line is read, [`ShellHelper::take_hidden_cursor`]).
//!
//! The decisions are pure functions ([`complete`], [`mask_secret`]); [`ShellHelper`] wires them into rustyline.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::local::COMMANDS as LOCAL_COMMANDS;
use crate::proto::command::{line_has_tag, redact_raw_line, COMMAND_NAMES};

/// Mailbox names learned from the server: wire form (modified UTF-7) to decoded name.
pub type Mailboxes = Arc<Mutex<BTreeMap<String, String>>>;

/// Commands whose arguments at these positions (1-based; 0 means any) name a mailbox.
const MAILBOX_ARGS: &[(&str, &[usize])] = &[
    ("SELECT", &[1]),
    ("EXAMINE", &[1]),
    ("STATUS", &[1]),
    ("CREATE", &[1]),
    ("DELETE", &[1]),
    ("RENAME", &[1, 2]),
    ("SUBSCRIBE", &[1]),
    ("UNSUBSCRIBE", &[1]),
    ("APPEND", &[1]),
    ("GETQUOTAROOT", &[1]),
    ("MYRIGHTS", &[1]),
    ("GETACL", &[1]),
    ("LIST", &[0]),
    ("LSUB", &[0]),
    ("RLIST", &[0]),
    ("RLSUB", &[0]),
    ("XLIST", &[0]),
    ("COPY", &[2]),
    ("MOVE", &[2]),
];

/// The subcommands that may follow UID.
const UID_COMMANDS: &[&str] = &["COPY", "EXPUNGE", "FETCH", "MOVE", "SEARCH", "STORE"];

/// Where the word being completed starts: after the last space, or at an opening quote that is not closed.
fn word_start(before: &str) -> usize {
    let mut in_quote = false;
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' if !in_quote => {
                in_quote = true;
                start = i;
            }
            '"' => in_quote = false,
            ' ' | '\t' if !in_quote => start = i + 1,
            _ => {}
        }
    }
    start
}

fn is_command(word: &str) -> bool {
    COMMAND_NAMES.iter().any(|c| c.eq_ignore_ascii_case(word))
}

/// How a mailbox is typed: as is when it is an atom, else quoted.
pub fn quote_mailbox(wire: &str) -> String {
    let atom = !wire.is_empty()
        && wire.bytes().all(|b| {
            (0x21..0x7f).contains(&b)
                && !matches!(
                    b,
                    b'(' | b')' | b'{' | b'"' | b'\\' | b'%' | b'*' | b'[' | b']'
                )
        });
    if atom {
        wire.to_string()
    } else {
        let mut q = String::from("\"");
        for c in wire.chars() {
            if matches!(c, '"' | '\\') {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    }
}

fn pairs<'a>(names: impl Iterator<Item = &'a str>, partial: &str) -> Vec<Pair> {
    let lower = partial.to_ascii_lowercase();
    names
        .filter(|n| n.to_ascii_lowercase().starts_with(&lower))
        .map(|n| Pair {
            display: n.to_string(),
            replacement: n.to_string(),
        })
        .collect()
}

fn mailbox_pairs(partial: &str, mailboxes: &BTreeMap<String, String>) -> Vec<Pair> {
    let typed = partial.strip_prefix('"').unwrap_or(partial);
    let typed = typed
        .strip_suffix('"')
        .unwrap_or(typed)
        .to_ascii_lowercase();
    let mut all: Vec<(&str, &str)> = mailboxes
        .iter()
        .map(|(w, d)| (w.as_str(), d.as_str()))
        .collect();
    if !mailboxes.keys().any(|k| k.eq_ignore_ascii_case("INBOX")) {
        all.insert(0, ("INBOX", "INBOX"));
    }
    all.into_iter()
        .filter(|(wire, decoded)| {
            wire.to_ascii_lowercase().starts_with(&typed)
                || decoded.to_lowercase().starts_with(&typed)
        })
        .map(|(wire, decoded)| Pair {
            display: decoded.to_string(),
            replacement: quote_mailbox(wire),
        })
        .collect()
}

/// Completes `line` at byte offset `pos`: the start of the word to replace and the candidates.
pub fn complete(
    line: &str,
    pos: usize,
    mailboxes: &BTreeMap<String, String>,
) -> (usize, Vec<Pair>) {
    let pos = (0..=pos.min(line.len()))
        .rev()
        .find(|&i| line.is_char_boundary(i))
        .unwrap_or(0);
    let before = &line[..pos];
    let start = word_start(before);
    let partial = &before[start..];
    let words: Vec<&str> = before[..start].split_whitespace().collect();

    if before.trim_start().starts_with(':') {
        if words.is_empty() {
            let names = LOCAL_COMMANDS.iter().map(|d| d.name);
            return (start, pairs(names, partial));
        }
        let local = words[0].to_ascii_lowercase();
        if local == ":raw" && words.len() == 1 {
            return (start, pairs(["on", "off"].into_iter(), partial));
        }
        if local == ":connect" {
            let flags = ["--tls", "--starttls", "--plain"];
            if partial.starts_with('-') {
                return (start, pairs(flags.into_iter(), partial));
            }
        }
        return (start, Vec::new());
    }

    // Which word is the command, and which argument is being typed.
    let (command, arg) = match words.as_slice() {
        [] => return (start, pairs(COMMAND_NAMES.iter().copied(), partial)),
        [first] if !is_command(first) => {
            return (start, pairs(COMMAND_NAMES.iter().copied(), partial));
        }
        [first, rest @ ..] => {
            let tagged = words.len() >= 2 && line_has_tag(&format!("{first} {}", words[1]));
            if tagged {
                (words[1], rest.len())
            } else {
                (*first, rest.len() + 1)
            }
        }
    };
    let mut command = command.to_ascii_uppercase();
    let mut arg = arg;
    if command == "UID" {
        if arg == 1 {
            return (start, pairs(UID_COMMANDS.iter().copied(), partial));
        }
        let sub_index = words.len() + 1 - arg;
        command = words.get(sub_index).unwrap_or(&"").to_ascii_uppercase();
        arg -= 1;
    }
    let wants_mailbox = MAILBOX_ARGS
        .iter()
        .find(|(c, _)| *c == command)
        .is_some_and(|(_, positions)| positions.contains(&0) || positions.contains(&arg));
    if wants_mailbox {
        (start, mailbox_pairs(partial, mailboxes))
    } else {
        (start, Vec::new())
    }
}

/// How a secret is drawn, whatever its length.
pub const MASK: &str = "***";

/// `secret` drawn as [`MASK`], padded with blanks to its width (so the line editor's cursor arithmetic holds).
fn mask(secret: &str) -> String {
    let width = secret.chars().count();
    format!("{MASK}{}", " ".repeat(width.saturating_sub(MASK.len())))
}

/// The line with the secret part of a LOGIN or AUTHENTICATE drawn as a fixed `***` (then blanks to its width, so the
/// length does not show); `None` when the line holds no secret.
pub fn mask_secret(line: &str) -> Option<String> {
    let redacted = redact_raw_line(line);
    if redacted == line {
        return None;
    }
    // redact_raw_line keeps everything before the secret and puts `***` in its place.
    let keep = redacted.strip_suffix("***").map_or(0, str::len);
    if keep > line.len() || !line.is_char_boundary(keep) {
        return Some(mask(line));
    }
    Some(format!("{}{}", &line[..keep], mask(&line[keep..])))
}

/// Hides the terminal's cursor (it would show the secret's length by where it stands).
const HIDE_CURSOR: &str = "\x1b[?25l";
/// Shows the terminal's cursor again.
pub const SHOW_CURSOR: &str = "\x1b[?25h";

/// The rustyline helper: completion, the password mask, no hints, no validation.
pub struct ShellHelper {
    mailboxes: Mailboxes,
    files: FilenameCompleter,
    mask_all: bool,
    /// A redraw hid the cursor (a secret was on the line).
    cursor_hidden: AtomicBool,
}

impl ShellHelper {
    /// A helper completing from `mailboxes` (shared with the connections, which fill it).
    pub fn new(mailboxes: Mailboxes) -> Self {
        ShellHelper {
            mailboxes,
            files: FilenameCompleter::new(),
            mask_all: false,
            cursor_hidden: AtomicBool::new(false),
        }
    }

    /// True once after a redraw hid the cursor: the caller shows it again ([`SHOW_CURSOR`]) when the line is read.
    pub fn take_hidden_cursor(&self) -> bool {
        self.cursor_hidden.swap(false, Ordering::Relaxed)
    }

    /// Draws the whole line as `*` (the line is a secret: a password typed as a literal's data, an AUTHENTICATE
    /// step).
    pub fn set_mask_all(&mut self, on: bool) {
        self.mask_all = on;
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let trimmed = line.trim_start();
        if trimmed.len() > ":transcript ".len()
            && trimmed[..":transcript ".len()].eq_ignore_ascii_case(":transcript ")
        {
            return self.files.complete(line, pos, ctx);
        }
        let mailboxes = self.mailboxes.lock().map(|m| m.clone()).unwrap_or_default();
        Ok(complete(line, pos, &mailboxes))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Validator for ShellHelper {}

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        let masked = if self.mask_all {
            (!line.is_empty()).then(|| mask(line))
        } else {
            mask_secret(line)
        };
        match masked {
            Some(masked) => {
                self.cursor_hidden.store(true, Ordering::Relaxed);
                Cow::Owned(format!("{HIDE_CURSOR}{masked}"))
            }
            None if self.cursor_hidden.swap(false, Ordering::Relaxed) => {
                Cow::Owned(format!("{SHOW_CURSOR}{line}"))
            }
            None => Cow::Borrowed(line),
        }
    }

    fn highlight_char(&self, line: &str, _pos: usize, _kind: CmdKind) -> bool {
        // Redraw on every key while the line could hold a secret, so no typed character is echoed as is.
        if self.mask_all {
            return true;
        }
        let upper = line.to_ascii_uppercase();
        upper.contains("LOGIN") || upper.contains("AUTHENTICATE")
    }
}

impl Helper for ShellHelper {}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn boxes() -> BTreeMap<String, String> {
        [
            ("INBOX", "INBOX"),
            ("Public Folders/NoReplica", "Public Folders/NoReplica"),
            ("Drafts", "Drafts"),
            ("Entw&APw-rfe", "Entwürfe"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    fn replacements(line: &str) -> (usize, Vec<String>) {
        let (start, pairs) = complete(line, line.len(), &boxes());
        (start, pairs.into_iter().map(|p| p.replacement).collect())
    }

    #[test]
    fn command_names_after_an_optional_tag() {
        assert_eq!(replacements("? sel"), (2, vec!["SELECT".to_string()]));
        assert_eq!(replacements("sel"), (0, vec!["SELECT".to_string()]));
        assert_eq!(replacements("a1 LOGO"), (3, vec!["LOGOUT".to_string()]));
        let (_, all) = replacements("a1 l");
        assert!(all.contains(&"LIST".to_string()) && all.contains(&"LOGIN".to_string()));
        assert_eq!(replacements("a1 uid f").1, ["FETCH"]);
        assert_eq!(replacements("a1 zz").1, Vec::<String>::new());
    }

    #[test]
    fn mailbox_names_for_mailbox_arguments() {
        assert_eq!(
            replacements("a1 select Dr"),
            (10, vec!["Drafts".to_string()])
        );
        assert_eq!(replacements("select Dr"), (7, vec!["Drafts".to_string()]));
        assert_eq!(
            replacements("? examine pub").1,
            ["\"Public Folders/NoReplica\""]
        );
        assert_eq!(
            replacements("a1 STATUS \"Public F").1,
            ["\"Public Folders/NoReplica\""]
        );
        assert_eq!(replacements("a1 STATUS \"Public F").0, 10);
        assert_eq!(replacements("a1 select entw").1, ["Entw&APw-rfe"]);
        assert_eq!(replacements("a1 list \"\" D").1, ["Drafts"]);
        assert_eq!(replacements("a1 select i").1, ["INBOX"]);
        // Not a mailbox position.
        assert!(replacements("a1 fetch 1:* D").1.is_empty());
        assert!(replacements("a1 login D").1.is_empty());
        assert_eq!(replacements("a1 uid copy 1:3 Dr").1, ["Drafts"]);
        // INBOX is always offered.
        let (_, pairs) = complete("a1 select I", 11, &BTreeMap::new());
        assert_eq!(pairs.len(), 1);
    }

    #[test]
    fn local_commands() {
        assert_eq!(replacements(":fo").1, [":follow"]);
        assert_eq!(replacements(":").1.len(), LOCAL_COMMANDS.len());
        assert_eq!(replacements(":raw o").1, ["on", "off"]);
        assert_eq!(replacements(":connect host --t").1, ["--tls"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_mailbox("INBOX"), "INBOX");
        assert_eq!(quote_mailbox("a b"), "\"a b\"");
        assert_eq!(quote_mailbox("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote_mailbox(""), "\"\"");
        assert_eq!(quote_mailbox("[Gmail]/Sent"), "\"[Gmail]/Sent\"");
    }

    #[test]
    fn the_password_is_masked_as_three_stars_whatever_its_length() {
        assert_eq!(
            mask_secret("? login DOMname/UserN/AliasN PASSword").unwrap(),
            "? login DOMname/UserN/AliasN ***     "
        );
        assert_eq!(mask_secret("login x P").unwrap(), "login x ***");
        assert_eq!(mask_secret("? login DOMname/UserN/AliasN"), None);
        assert_eq!(mask_secret("a1 select inbox"), None);
        assert_eq!(
            mask_secret("a1 LOGIN user pässwört").unwrap(),
            "a1 LOGIN user ***     "
        );
        assert_eq!(
            mask_secret("a AUTHENTICATE PLAIN AGZv").unwrap(),
            "a AUTHENTICATE PLAIN *** "
        );
        // Two passwords of different lengths look the same but for blanks.
        let short = mask_secret("a1 login u abcd").unwrap();
        let long = mask_secret("a1 login u abcdefghijkl").unwrap();
        assert_eq!(short.trim_end(), long.trim_end());
    }

    #[test]
    fn the_highlighter_hides_the_cursor_while_a_secret_is_on_the_line() {
        let helper = ShellHelper::new(Mailboxes::default());
        let drawn = helper.highlight("a1 login u secret", 0);
        assert_eq!(drawn, format!("{HIDE_CURSOR}a1 login u ***   "));
        assert!(!drawn.contains("secret"));
        // Back to a line without a secret (the password deleted): the cursor is shown again, once.
        assert_eq!(
            helper.highlight("a1 login u", 0),
            format!("{SHOW_CURSOR}a1 login u")
        );
        assert_eq!(helper.highlight("a1 login u", 0), "a1 login u");
        helper.highlight("a1 login u x", 0);
        assert!(helper.take_hidden_cursor());
        assert!(!helper.take_hidden_cursor());
    }

    #[test]
    fn odd_positions_do_not_panic() {
        for line in [
            "", " ", "é", "\"", "a1 \"", "::", "a1 uid", "uid", "a1 uid ",
        ] {
            for pos in 0..=line.len() + 2 {
                let _ = complete(line, pos, &boxes());
            }
            let _ = mask_secret(line);
        }
    }
}
