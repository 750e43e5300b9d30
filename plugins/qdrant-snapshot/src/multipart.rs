//! The `multipart/form-data` body of `POST /collections/{c}/snapshots/upload`:
//! one part, field `snapshot`, holding the file's bytes (RFC 7578).
//!
//! The file itself is never held in memory: the body is `head`, then the
//! file streamed from disk, then `tail`, sent with a known length.

#![forbid(unsafe_code)]

/// The parts of the body around the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    pub boundary: String,
    /// Everything before the file's bytes.
    pub head: Vec<u8>,
    /// Everything after them.
    pub tail: Vec<u8>,
}

/// The form field Qdrant reads the snapshot from.
pub const FIELD: &str = "snapshot";

impl Multipart {
    /// The body for uploading a file named `file_name` whose sha256 is
    /// `sha256_hex`.
    ///
    /// The boundary is derived from the file's digest: the body's delimiter
    /// is `CRLF--backout-<48 hex digits of its own sha256>`, which a file
    /// cannot contain without knowing its own digest in advance, and the
    /// body is the same bytes every time (so it can be reviewed and tested).
    pub fn for_file(file_name: &str, sha256_hex: &str) -> Self {
        let tag: String = sha256_hex.chars().filter(char::is_ascii_hexdigit).take(48).collect();
        let boundary = format!("backout-{tag}");
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{FIELD}\"; filename=\"{}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            quote_file_name(file_name)
        )
        .into_bytes();
        let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
        Self { boundary, head, tail }
    }

    /// The request's `Content-Type`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The body's length for a file of `file_len` bytes.
    pub fn len(&self, file_len: u64) -> u64 {
        self.head.len() as u64 + file_len + self.tail.len() as u64
    }
}

/// A file name safe inside `filename="…"`: quotes, backslashes and control
/// characters percent-encoded (as the HTML standard encodes form file names).
fn quote_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\\' => out.push_str("%5C"),
            c if c.is_control() => out.push_str(&format!("%{:02X}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUM: &str = "a59f3c40aa5e0cf9b70ee8b0b6c4d0b0b1a4ebaeb5b2e1d87d3c5d7aab12ea0e";

    #[test]
    fn body_is_one_part_named_snapshot() {
        let m = Multipart::for_file("docs-1-2026-11-23-11-11-24.snapshot", SUM);
        assert_eq!(m.boundary, format!("backout-{}", &SUM[..48]));
        assert!(m.boundary.len() <= 70, "RFC 2046 limits boundaries to 70 characters");
        let mut body = m.head.clone();
        body.extend_from_slice(b"TAR");
        body.extend_from_slice(&m.tail);
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"snapshot\"; \
             filename=\"docs-1-2026-11-23-11-11-24.snapshot\"\r\nContent-Type: application/octet-stream\r\n\r\n\
             TAR\r\n--{b}--\r\n",
            b = m.boundary
        );
        assert_eq!(String::from_utf8(body.clone()).unwrap(), expected);
        assert_eq!(m.len(3), body.len() as u64);
        assert_eq!(m.content_type(), format!("multipart/form-data; boundary={}", m.boundary));
    }

    #[test]
    fn file_names_cannot_break_the_header() {
        let m = Multipart::for_file("a\"b\\c\r\n.snapshot", SUM);
        let head = String::from_utf8(m.head).unwrap();
        assert!(head.contains("filename=\"a%22b%5Cc%0D%0A.snapshot\""), "{head}");
    }
}
