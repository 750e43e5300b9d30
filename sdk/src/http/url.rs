//! URLs as this client accepts them: `http` or `https`, a host (names
//! lower-cased, IPv6 in brackets), an optional port, and the path with its
//! query; anything else is refused with a reason before a request is built.

use std::fmt;

use super::Error;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// An absolute `http(s)` URL split the way `wasi:http` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// Lowercase name, IPv4 address, or IPv6 address in brackets (`[::1]`).
    pub host: String,
    /// The port written in the URL, if any.
    pub port: Option<u16>,
    /// Starts with `/`; includes `?query`; the `#fragment` is dropped.
    pub path_with_query: String,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL. Refused: other
    /// schemes, credentials (`user:pass@`; send them in a header), spaces,
    /// control and non-ASCII characters (percent-encode them).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |why: String| Error::InvalidUrl(format!("`{text}` {why}"));
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
            let what = if c.is_whitespace() { "whitespace".to_owned() } else { format!("the character {c:?}") };
            return Err(bad(format!("contains {what}; percent-encode it (a space is `%20`)")));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(bad("is not an absolute URL; write it as `http://host:port/path`".to_owned()));
        };
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(bad(format!("has the scheme `{scheme}`; only `http` and `https` are supported")));
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(bad("contains credentials (`user:password@`); send them in a header instead".to_owned()));
        }
        if tail.contains('\\') {
            return Err(bad("contains a backslash; percent-encode it (`%5C`)".to_owned()));
        }
        let (host, port) = split_host_port(authority).map_err(bad)?;
        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        let path_with_query = if tail.starts_with('/') { tail.to_owned() } else { format!("/{tail}") };
        Ok(Self { scheme, host, port, path_with_query })
    }

    /// `host` or `host:port`, as sent in the `Host` header.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The port, or the scheme's default.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// `scheme://host:port` with the port always written: what a `net`
    /// grant names.
    pub fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme.as_str(), self.host, self.port_or_default())
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme.as_str(), self.authority(), self.path_with_query)
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    if authority.is_empty() {
        return Err("has no host".to_owned());
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err("has an IPv6 address without its closing `]`".to_owned());
        };
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err(format!("has an invalid IPv6 address `[{inside}]`"));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| format!("has unexpected text `{after}` after `]`"))?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("has no host".to_owned());
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            return Err(format!("has an invalid host `{host}`"));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("has an invalid port `{p}` (write 1 to 65535, or leave it out)")),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let url = Url::parse("http://127.0.0.1:3000/health?full=1#top").unwrap();
        assert_eq!(url.scheme, Scheme::Http);
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, Some(3000));
        assert_eq!(url.path_with_query, "/health?full=1");
        assert_eq!(url.authority(), "127.0.0.1:3000");
        assert_eq!(url.origin(), "http://127.0.0.1:3000");
        assert_eq!(url.to_string(), "http://127.0.0.1:3000/health?full=1");
    }

    #[test]
    fn missing_path_port_and_case_are_normalised() {
        let url = Url::parse("HTTPS://Example.COM").unwrap();
        assert_eq!((url.scheme, url.host.as_str(), url.port), (Scheme::Https, "example.com", None));
        assert_eq!(url.path_with_query, "/");
        assert_eq!(url.origin(), "https://example.com:443");
        assert_eq!(Url::parse("http://h?q=1").unwrap().path_with_query, "/?q=1");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let url = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("[::1]", Some(8080)));
        assert_eq!(url.authority(), "[::1]:8080");
        assert_eq!(Url::parse("http://[::1]/").unwrap().origin(), "http://[::1]:80");
    }

    #[test]
    fn unsupported_urls_are_refused_with_a_reason() {
        let cases = [
            ("ftp://h/x", "only `http` and `https`"),
            ("127.0.0.1:3000/health", "not an absolute URL"),
            ("http://user:pw@h/", "credentials"),
            ("http:///path", "has no host"),
            ("http://h:0/", "invalid port `0`"),
            ("http://h:99999/", "invalid port"),
            ("http://h:/", "invalid port ``"),
            ("http://h:+80/", "invalid port"),
            ("http://h/a b", "whitespace"),
            ("http://h/é", "percent-encode"),
            ("http://h\\x/", "invalid host"),
            ("http://[::1/", "closing `]`"),
            ("http://[zz]/", "invalid IPv6"),
            ("http://h/a\\b", "backslash"),
        ];
        for (url, expected) in cases {
            match Url::parse(url) {
                Err(Error::InvalidUrl(m)) => assert!(m.contains(expected), "{url}: {m}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
