//! The lab's users: a small, fixed, published set of log-in names and passwords, and the check a LOGIN or
//! AUTHENTICATE goes through.
//!
//! The passwords are not secrets. They are printed when the lab starts and written in `docs/lab.md`, which is why the
//! lab only listens on loopback unless told otherwise.

/// One user the lab's servers know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabUser {
    /// The log-in name, as a client types it.
    pub login: &'static str,
    /// The password, fixed and published.
    pub password: &'static str,
    /// What the user is for.
    pub note: &'static str,
}

/// The KB's user: Windows NT domain `DOMname`, domain user `UserN`, Exchange alias `AliasN`.
pub const KB_USER: &str = "DOMname/UserN/AliasN";

/// The KB's example password, shared by every lab user.
pub const LAB_PASSWORD: &str = "PASSword";

/// Every user the lab knows, in the order the start banner lists them.
pub const USERS: &[LabUser] = &[
    LabUser {
        login: KB_USER,
        password: LAB_PASSWORD,
        note: "the KB's user (NTdomain/userID/alias); every scenario accepts it",
    },
    LabUser {
        login: "public",
        password: LAB_PASSWORD,
        note: "a second user for the mailbox-referral scenarios (public folders); every scenario accepts it",
    },
];

/// The user whose name and password match, or `None`.
///
/// Names are compared without regard to ASCII case, as Exchange (a Windows account) does; passwords exactly. An
/// unknown name and a wrong password give the same `None`, so a client cannot tell which was wrong.
pub fn authenticate(login: &[u8], password: &[u8]) -> Option<&'static LabUser> {
    USERS
        .iter()
        .find(|user| user.login.as_bytes().eq_ignore_ascii_case(login))
        .filter(|user| constant_time_eq(user.password.as_bytes(), password))
}

/// Compares without returning early on the first difference (a good habit, even for published passwords).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kb_user_logs_in_with_the_kb_password() {
        let user = authenticate(b"DOMname/UserN/AliasN", b"PASSword").expect("kb user");
        assert_eq!(user.login, KB_USER);
        assert!(authenticate(b"domname/usern/aliasn", b"PASSword").is_some());
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        assert_eq!(authenticate(b"DOMname/UserN/AliasN", b"password"), None);
        assert_eq!(authenticate(b"DOMname/UserN/AliasN", b""), None);
        assert_eq!(authenticate(b"nobody", b"PASSword"), None);
        assert_eq!(
            authenticate(b"public", b"PASSword").map(|u| u.login),
            Some("public")
        );
    }
}
