//! A password that cannot leak by accident: `Debug` and `Display` print `***`, and the bytes are only reachable
//! through [`Secret::expose`], which makes every use greppable.
//!
//! [`Redactor`] is the second line of defence: given the secret, it masks the password's bytes wherever they appear in
//! any text, including text a server sent back (`a1 NO Bad credentials: a1 LOGIN victim S3cret-pw`), the base64 of an
//! AUTHENTICATE PLAIN blob, and the quoted, escaped and percent-encoded forms.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;

/// What a secret looks like wherever it is shown: screen, transcript, JSON, log.
pub const REDACTED: &str = "***";

/// A password or other credential.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the one place that has to put it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Masks every form of one secret in any text: the password itself; its IMAP quoted form (`\"` and `\\`); its JSON
/// escaped form; its percent-encoded form (in URLs); the base64 of AUTHENTICATE PLAIN blobs (`\0user\0pass`,
/// `user\0user\0pass`) when the login name is known ([`Redactor::with_login`]); and, for a password of 4 bytes or
/// more, the part of *any* base64 text that is made only of the password's bits, at each of the three alignments, so a
/// PLAIN blob with an unknown authorization identity is caught too.
///
/// ```
/// use imapref::secret::{Redactor, Secret};
/// let r = Redactor::new(&Secret::new("S3cret-pw")).with_login("victim");
/// assert_eq!(r.redact("a1 NO Bad credentials: a1 LOGIN victim S3cret-pw"), "a1 NO Bad credentials: a1 LOGIN victim ***");
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    /// The password's own bytes.
    password: Vec<u8>,
    /// The forms to mask, longest first, without duplicates.
    needles: Vec<Vec<u8>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} forms)", self.needles.len())
    }
}

/// Base64 cores shorter than this are not masked on their own: too many false matches, too little of the password.
const MIN_BASE64_CORE: usize = 4;

impl Redactor {
    /// A redactor for one secret. An empty secret masks nothing.
    pub fn new(secret: &Secret) -> Self {
        let mut r = Redactor::default();
        let pw = secret.expose().as_bytes();
        if pw.is_empty() {
            return r;
        }
        r.password = pw.to_vec();
        r.add(pw.to_vec());
        r.add(quoted(pw));
        if let Ok(json) = serde_json::to_string(secret.expose()) {
            r.add(json.trim_matches('"').as_bytes().to_vec());
        }
        r.add(percent(pw, false));
        r.add(percent(pw, true));
        let b64 = base64::engine::general_purpose::STANDARD;
        r.add(b64.encode(pw).into_bytes());
        if pw.len() >= MIN_BASE64_CORE {
            for shift in 0..3 {
                r.add(base64_core(pw, shift));
            }
        }
        r.sort();
        r
    }

    /// Also masks the base64 of the AUTHENTICATE PLAIN blobs this login name makes with the secret.
    pub fn with_login(mut self, user: &str) -> Self {
        if self.password.is_empty() {
            return self;
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        for authzid in ["", user] {
            let blob = [
                authzid.as_bytes(),
                b"\0",
                user.as_bytes(),
                b"\0",
                &self.password,
            ]
            .concat();
            self.add(b64.encode(blob).into_bytes());
        }
        self.sort();
        self
    }

    fn add(&mut self, needle: Vec<u8>) {
        if !needle.is_empty() && !self.needles.contains(&needle) {
            self.needles.push(needle);
        }
    }

    fn sort(&mut self) {
        // Longest first, so that a form holding another (a blob's base64, a quoted form) goes as a whole.
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    /// True when `text` holds a form of the secret.
    pub fn finds(&self, text: &[u8]) -> bool {
        self.needles
            .iter()
            .any(|n| memchr::memmem::find(text, n).is_some())
    }

    /// `text` with every form of the secret replaced by `***`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Masking replaces whole needles, which are whole UTF-8 sequences or ASCII, so the text stays UTF-8;
            // should it not, the lossy form still holds no secret.
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// Masks `text` where it is.
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(masked) = self.redact(text) {
            *text = masked;
        }
    }

    /// [`Redactor::redact`] for bytes (wire data, transcripts).
    pub fn redact_bytes<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.finds(text) {
            return Cow::Borrowed(text);
        }
        let mut current = text.to_vec();
        for needle in &self.needles {
            current = replace_all(&current, needle, REDACTED.as_bytes());
        }
        Cow::Owned(current)
    }
}

fn replace_all(text: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut last = 0;
    for at in memchr::memmem::find_iter(text, needle) {
        if at < last {
            continue;
        }
        out.extend_from_slice(&text[last..at]);
        out.extend_from_slice(with);
        last = at + needle.len();
    }
    out.extend_from_slice(&text[last..]);
    out
}

/// The IMAP quoted-string form: `\` and `"` escaped.
fn quoted(pw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pw.len() + 2);
    for &b in pw {
        if matches!(b, b'\\' | b'"') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// Percent-encoding of everything but RFC 3986's unreserved characters, in upper or lower case hex.
fn percent(pw: &[u8], lower: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(pw.len() * 3);
    for &b in pw {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else if lower {
            out.extend_from_slice(format!("%{b:02x}").as_bytes());
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// The base64 characters that carry only the password's bits when it starts `shift` bytes into the encoded data.
fn base64_core(pw: &[u8], shift: usize) -> Vec<u8> {
    let data = [&vec![0u8; shift][..], pw].concat();
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&data);
    let first = (8 * shift).div_ceil(6);
    let last = (8 * data.len()) / 6;
    let core = encoded.as_bytes().get(first..last).unwrap_or_default();
    if core.len() >= MIN_BASE64_CORE {
        core.to_vec()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("PASSword");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "PASSword");
    }

    fn plain_blob(authzid: &str, user: &str, pw: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{authzid}\0{user}\0{pw}"))
    }

    #[test]
    fn an_echoed_login_line_is_masked() {
        let r = Redactor::new(&Secret::new("S3cret-pw"));
        assert_eq!(
            r.redact("a1 NO Bad credentials: a1 LOGIN victim S3cret-pw"),
            "a1 NO Bad credentials: a1 LOGIN victim ***"
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn quoted_json_and_percent_forms_are_masked() {
        let r = Redactor::new(&Secret::new(r#"pa"ss\wo rd"#));
        assert_eq!(
            r.redact(r#"a1 LOGIN u "pa\"ss\\wo rd""#),
            r#"a1 LOGIN u "***""#
        );
        let json = serde_json::to_string(r#"x pa"ss\wo rd y"#).unwrap_or_default();
        assert!(!r.redact(&json).contains("wo rd"), "{}", r.redact(&json));
        assert_eq!(r.redact("imap://u:pa%22ss%5Cwo%20rd@h/"), "imap://u:***@h/");
        assert_eq!(r.redact("imap://u:pa%22ss%5cwo%20rd@h/"), "imap://u:***@h/");
    }

    #[test]
    fn plain_blobs_are_masked_with_and_without_the_login_name() {
        let pw = "S3cret-pw";
        let known = Redactor::new(&Secret::new(pw)).with_login("victim");
        for blob in [
            plain_blob("", "victim", pw),
            plain_blob("victim", "victim", pw),
        ] {
            assert_eq!(
                known.redact(&format!("C: a1 AUTHENTICATE PLAIN {blob}")),
                "C: a1 AUTHENTICATE PLAIN ***"
            );
        }
        // An authorization identity nobody told the redactor about: the password's base64 bits are still masked,
        // at whatever alignment the password falls.
        let unknown = Redactor::new(&Secret::new(pw));
        for authzid in ["", "a", "ab", "abc", "admin@example.com"] {
            let blob = plain_blob(authzid, "victim", pw);
            let shown = unknown.redact(&blob);
            assert!(shown.contains(REDACTED), "{authzid}: {shown}");
            assert!(!unknown.finds(shown.as_bytes()), "{authzid}: {shown}");
        }
    }

    #[test]
    fn bytes_and_in_place() {
        let r = Redactor::new(&Secret::new("hunter2"));
        assert_eq!(
            &*r.redact_bytes(b"S: a1 NO hunter2\r\n\xff"),
            &b"S: a1 NO ***\r\n\xff"[..]
        );
        let mut s = String::from("hunter2hunter2 and hunter2");
        r.redact_in_place(&mut s);
        assert_eq!(s, "****** and ***");
        assert!(r.finds(b"xhunter2x"));
        assert!(!r.finds(b"hunter"));
    }

    #[test]
    fn an_empty_secret_masks_nothing() {
        let r = Redactor::new(&Secret::new("")).with_login("victim");
        assert_eq!(r.redact("a1 LOGIN victim \"\""), "a1 LOGIN victim \"\"");
        assert!(!r.finds(b"anything"));
    }

    #[test]
    fn non_ascii_passwords_keep_the_text_utf8() {
        let r = Redactor::new(&Secret::new("pässwörd"));
        assert_eq!(r.redact("NO pässwörd é"), "NO *** é");
    }
}
