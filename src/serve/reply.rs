//! [`Reply`]: what a server-side machine asks its I/O side to do, in order.

/// What the I/O side has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Write these bytes (complete lines, literals included).
    Data(Vec<u8>),
    /// Flush what was written, then run the TLS handshake on the same socket; bytes the client sent after the
    /// STARTTLS command are discarded.
    StartTls,
    /// Flush what was written, then close the connection.
    Close,
}

/// One line (CRLF added) to write.
pub fn line(text: impl AsRef<str>) -> Reply {
    let mut bytes = text.as_ref().as_bytes().to_vec();
    bytes.extend_from_slice(b"\r\n");
    Reply::Data(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_ends_in_crlf() {
        assert_eq!(line("* OK hi"), Reply::Data(b"* OK hi\r\n".to_vec()));
    }
}
