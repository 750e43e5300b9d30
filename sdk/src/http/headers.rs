//! Methods and headers: an RFC 9110 token for a method, names and values
//! checked without ever showing the value (it may be a secret), the
//! headers the host sets itself refused, `content-length` added when the
//! body's size is known.

use super::{Body, Error, Request, header_value};

/// Whether `b` may appear in a method or header name (an RFC 9110 `tchar`).
pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The method upper-cased, or why it cannot be sent.
pub fn normalize_method(method: &str) -> Result<String, Error> {
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(Error::InvalidRequest(format!("`{method}` is not an HTTP method")));
    }
    Ok(method.to_ascii_uppercase())
}

/// Headers the host sets itself; `wasi:http` refuses them from a guest.
pub(super) const HOST_CONTROLLED: [&str; 9] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Checks one header; the message never shows the value, which may be secret.
pub fn validate_header(name: &str, value: &str) -> Result<(), Error> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(Error::InvalidRequest(format!("`{name}` is not a valid header name")));
    }
    if HOST_CONTROLLED.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        return Err(Error::InvalidRequest(format!("header `{name}` is set by the host and cannot be given")));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Error::InvalidRequest(format!(
            "the value of header `{name}` contains a line break or another control character"
        )));
    }
    Ok(())
}

/// The headers to send: the request's, checked, plus `Content-Length` for a
/// body of known size unless the request gives one.
pub(super) fn headers_to_send(request: &Request) -> Result<Vec<(String, String)>, Error> {
    for (name, value) in &request.headers {
        validate_header(name, value)?;
    }
    let mut headers = request.headers.clone();
    let known_len = match &request.body {
        Body::Empty => None,
        Body::Bytes(b) => Some(b.len() as u64),
        Body::Reader { len, .. } => *len,
    };
    if let Some(len) = known_len
        && header_value(&headers, "content-length").is_none()
    {
        headers.push(("content-length".to_owned(), len.to_string()));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_upper_cased_tokens() {
        assert_eq!(normalize_method("get").unwrap(), "GET");
        assert_eq!(normalize_method("PURGE").unwrap(), "PURGE");
        assert!(matches!(normalize_method("GE T"), Err(Error::InvalidRequest(_))));
        assert!(matches!(normalize_method(""), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn header_checks_never_show_the_value() {
        assert!(validate_header("Authorization", "Bearer x").is_ok());
        let e = validate_header("Authorization", "Bearer s3cret\r\nX: y").unwrap_err().to_string();
        assert!(e.contains("line break") && !e.contains("s3cret"), "{e}");
        let e = validate_header("Host", "evil").unwrap_err().to_string();
        assert!(e.contains("set by the host"), "{e}");
        assert!(validate_header("bad name", "v").is_err());
        assert!(validate_header("", "v").is_err());
    }

    #[test]
    fn content_length_is_added_for_known_sizes_only() {
        let r = Request::new("POST", "http://h/").body_bytes("abc");
        assert_eq!(headers_to_send(&r).unwrap(), [("content-length".to_owned(), "3".to_owned())]);
        let r = Request::new("POST", "http://h/").header("Content-Length", "3").body_bytes("abc");
        assert_eq!(headers_to_send(&r).unwrap().len(), 1);
        let r = Request::new("POST", "http://h/").body_reader(std::io::empty(), None);
        assert!(headers_to_send(&r).unwrap().is_empty());
        let r = Request::new("PUT", "http://h/").body_reader(std::io::empty(), Some(0));
        assert_eq!(headers_to_send(&r).unwrap(), [("content-length".to_owned(), "0".to_owned())]);
        assert!(headers_to_send(&Request::get("http://h/")).unwrap().is_empty());
    }

    #[test]
    fn body_json_sets_a_content_type_unless_given() {
        let r = Request::new("POST", "http://h/").body_json(&serde_json::json!({"a": 1}));
        assert_eq!(header_value(&r.headers, "Content-Type"), Some("application/json"));
        assert!(matches!(&r.body, Body::Bytes(b) if b == br#"{"a":1}"#));
        let r = Request::new("POST", "http://h/")
            .header("Content-Type", "application/vnd.api+json")
            .body_json(&serde_json::json!(null));
        assert_eq!(r.headers.len(), 1);
    }
}
