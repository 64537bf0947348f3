//! Naming the server product and version from its greeting text.
//!
//! Banners are free text; these are the forms the common servers use (Exchange 5.5 and later, Dovecot, Cyrus,
//! Courier, UW imapd, Zimbra, Gmail).

use serde::Serialize;

/// A recognised server product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// The product, e.g. "Microsoft Exchange 5.5".
    pub name: String,
    /// The version the banner gives, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Names the product from a greeting's text (without the `* OK` and any code).
pub fn recognise(text: &str) -> Option<Product> {
    let lower = text.to_ascii_lowercase();
    let product = |name: &str, version: Option<String>| {
        Some(Product {
            name: name.to_string(),
            version,
        })
    };
    if lower.contains("microsoft exchange") {
        let version = word_after(text, "version ");
        let name = match version.as_deref() {
            Some(v) if v.starts_with("5.5") => "Microsoft Exchange 5.5",
            Some(v) if v.starts_with("6.0") => "Microsoft Exchange 2000",
            Some(v) if v.starts_with("6.5") => "Microsoft Exchange 2003",
            Some(v) if v.starts_with("8.") => "Microsoft Exchange 2007",
            Some(v) if v.starts_with("14.") => "Microsoft Exchange 2010",
            _ => "Microsoft Exchange",
        };
        return product(name, version);
    }
    if lower.contains("dovecot") {
        return product("Dovecot", None);
    }
    if lower.contains("cyrus imap") {
        return product(
            "Cyrus IMAP",
            word_after(text, "Cyrus IMAP ").or_else(|| word_after(text, "Cyrus IMAP v")),
        );
    }
    if lower.contains("courier-imap") {
        return product("Courier-IMAP", None);
    }
    if lower.contains("zimbra") {
        return product("Zimbra", None);
    }
    if lower.contains("gimap") {
        return product("Gmail", None);
    }
    if lower.contains("imapref lab") {
        return product("imapref lab", None);
    }
    if lower.contains("imap4rev1 20") {
        return product("UW imapd", word_after(text, "IMAP4rev1 "));
    }
    None
}

fn word_after(text: &str, marker: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find(&marker.to_ascii_lowercase())? + marker.len();
    let word: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let word = word.trim_end_matches(['.', ',', ')']).to_string();
    (!word.is_empty()).then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_from_the_fixtures() {
        let p =
            recognise("Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (reedlm4.com) ready")
                .expect("known");
        assert_eq!(
            (p.name.as_str(), p.version.as_deref()),
            ("Microsoft Exchange 5.5", Some("5.5.1960.6"))
        );
        let p = recognise("Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7217.0 (mail.example.com) ready.")
            .expect("known");
        assert_eq!(
            (p.name.as_str(), p.version.as_deref()),
            ("Microsoft Exchange 2003", Some("6.5.7217.0"))
        );
        assert_eq!(
            recognise("Dovecot (Debian) ready.").map(|p| p.name),
            Some("Dovecot".into())
        );
        let p = recognise("mail.example.com Cyrus IMAP 3.6.1-Debian-3.6.1-4+deb12u5 server ready")
            .expect("known");
        assert_eq!(p.version.as_deref(), Some("3.6.1-Debian-3.6.1-4+deb12u5"));
        assert_eq!(recognise("hello"), None);
    }
}
