//! Network grants: the HTTP(S) origins a step may reach, and the check every
//! request passes before a byte leaves.
//!
//! A grant is an origin, `scheme://host[:port]` (`http://127.0.0.1:3000`,
//! `https://api.internal:8443`); a missing port is the scheme's default.
//! A request is allowed only when its scheme, host and port are exactly
//! those of one grant. Paths are not part of a grant: an origin is the unit
//! browsers, TLS and firewalls reason about, and a path prefix is easy to
//! escape (`/health/../admin`).
//!
//! Host spellings are compared in one canonical form, so a grant cannot be
//! sneaked past with another spelling of an address: dotted-quad IPv4 and
//! RFC 5952 IPv6 are the only IP forms accepted, in grants and in requests.
//! Hosts that a URL parser or `getaddrinfo` would read as a number in some
//! other way (`127.1`, `0x7f.0.0.1`, `2130706433`, `0177.0.0.1`) are refused
//! outright, and an IPv4-mapped IPv6 address (`[::ffff:127.0.0.1]`) is a
//! different host from `127.0.0.1`. Names are compared case-insensitively,
//! without a trailing dot, and never match an address: granting
//! `http://localhost:3000` does not grant `http://127.0.0.1:3000`.
//!
//! Names are resolved by the host, not the guest, right before connecting
//! ([`NetGrants::resolve`]); the host connects only to the addresses it
//! checked. A granted name that resolves to a link-local or cloud-metadata
//! address is refused unless that address is itself granted literally: a DNS
//! answer must not turn an API grant into a grant of the instance's
//! credentials endpoint.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use toml::Spanned;

use super::{Capability, CheckCx, Denied, Effect, Finding, Needs, Phase, Sandbox};
use crate::diagnostic::Diagnostic;
use crate::runbook::{GrantsDef, Parsed};

/// `http` or `https`: the only schemes a grant can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else if text.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else {
            None
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A host in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lowercase, without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// Scheme, host and port: what a grant names and what a request is checked by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

impl Origin {
    /// Parses a grant: `scheme://host[:port]`, optionally with a trailing
    /// `/`, nothing else.
    pub fn parse_grant(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not an origin; write `http://host:port` or `https://host:port`"))?;
        let scheme = Scheme::parse(scheme)
            .ok_or_else(|| format!("`{text}`: only `http` and `https` can be granted, not `{scheme}`"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(format!(
                "`{text}`: a grant is an origin (scheme, host, port) without a path; grant `{}://{}`",
                scheme.as_str(),
                authority.split(['/', '?', '#']).next().unwrap_or_default()
            ));
        }
        let (host, port) = split_authority(authority).map_err(|e| format!("`{text}`: {e}"))?;
        let host = parse_host(host).map_err(|e| format!("`{text}`: {e}"))?;
        if let Host::Ip(IpAddr::V6(v6)) = &host
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            return Err(format!("`{text}`: write the IPv4-mapped address `{v6}` as `{v4}`"));
        }
        Ok(Origin { scheme, host, port: port.unwrap_or(scheme.default_port()) })
    }

    /// The origin of a request, from its URI's parts. An `Err` is the reason
    /// the request cannot be checked, and is therefore denied.
    pub fn of_request(scheme: Option<&str>, authority: Option<&str>) -> Result<Self, String> {
        let scheme = scheme.ok_or("the request has no scheme")?;
        let scheme = Scheme::parse(scheme).ok_or_else(|| format!("the scheme `{scheme}` is never allowed"))?;
        let authority = authority.ok_or("the request has no host")?;
        let (host, port) = split_authority(authority)?;
        Ok(Origin { scheme, host: parse_host(host)?, port: port.unwrap_or(scheme.default_port()) })
    }
}

/// `host[:port]` or `[v6][:port]`. No user info: `user@host` is a classic
/// way to make a URL read as another host.
fn split_authority(authority: &str) -> Result<(&str, Option<u16>), String> {
    if authority.contains('@') {
        return Err("user info (`user@host`) is not allowed in a URL".into());
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("an IPv6 address is missing its closing `]`")?;
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| format!("unexpected `{after}` after the IPv6 address"))?),
        };
        (&authority[..end + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("`{p}` is not a valid port")),
            Ok(port) => Some(port),
        },
        Some(p) => return Err(format!("`{p}` is not a valid port")),
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    Ok((host, port))
}

/// Canonicalizes a host: an IP literal in its one accepted spelling, or a
/// DNS name. Anything a resolver might read as a number in another way is
/// refused, so it can never be compared as a name and then connected to as
/// an address.
fn parse_host(host: &str) -> Result<Host, String> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("an IPv6 address is missing its closing `]`")?;
        if inner.contains('%') {
            return Err(format!("`{host}`: IPv6 zone identifiers are not allowed"));
        }
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| format!("`{host}` is not an IPv6 address"));
    }
    // Rust's parser accepts exactly four decimal octets without leading zeros.
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if looks_numeric(&name) {
        return Err(format!(
            "`{host}` is an ambiguous spelling of an IP address; write it as four decimal octets (`127.0.0.1`)"
        ));
    }
    if !valid_name(&name) {
        return Err(format!("`{host}` is not a valid host name"));
    }
    Ok(Host::Name(name))
}

/// The WHATWG URL rule for "this host is an IPv4 address in some notation":
/// its last label is a decimal or `0x` hexadecimal number. No DNS name has a
/// numeric top-level label, so nothing legitimate is lost.
fn looks_numeric(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or_default();
    if last.is_empty() {
        return false;
    }
    let hex = last.strip_prefix("0x");
    match hex {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
        None => last.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1–63 bytes.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Why an address must not be reached through a name, if it must not.
fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_link_local() {
                Some("a link-local address (169.254.0.0/16, where cloud metadata services live)")
            } else if v4 == Ipv4Addr::new(100, 100, 100, 200) {
                Some("a cloud metadata address")
            } else if v4.octets()[0] == 0 {
                Some("an unspecified address (0.0.0.0/8)")
            } else if v4.is_broadcast() || v4.is_multicast() {
                Some("a broadcast or multicast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                forbidden_address(IpAddr::V4(v4))
            } else if v6.segments()[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address (fe80::/10)")
            } else if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                Some("a cloud metadata address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("an unspecified or multicast address")
            } else {
                None
            }
        }
    }
}

/// The IPv4 address an IPv6 address carries and reaches: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated but still
/// routed by some stacks) and NAT64 (`64:ff9b::a.b.c.d`, RFC 6052), where a
/// translator sends it on to the IPv4 address. `::` and `::1` are not IPv4.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6].iter().all(|&x| x == 0) && !matches!(u32::from(low), 0 | 1);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (compatible || nat64).then_some(low)
}

/// How the host turns granted names into addresses.
#[derive(Clone, Default)]
pub enum NameResolver {
    /// The operating system's resolver (`getaddrinfo`, `/etc/hosts`).
    #[default]
    System,
    /// A fixed table, for tests and for embedders with their own service
    /// discovery. A name missing from it does not resolve.
    Static(Arc<HashMap<String, Vec<IpAddr>>>),
}

impl fmt::Debug for NameResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameResolver::System => f.write_str("System"),
            NameResolver::Static(map) => f.debug_tuple("Static").field(&map.len()).finish(),
        }
    }
}

/// A step's network grants, checked.
#[derive(Debug, Clone, Default)]
pub struct NetGrants {
    pub origins: Vec<Origin>,
    pub resolver: NameResolver,
}

/// The network capability: `net = ["scheme://host[:port]", …]`.
#[derive(Debug)]
pub struct Net;

impl Capability for Net {
    const KEY: &'static str = "net";
    type Grant = NetGrants;

    fn check(def: &GrantsDef, cx: &CheckCx<'_>, problems: &mut Vec<Diagnostic>) -> NetGrants {
        check(&def.net, cx.vars, cx.parsed, problems)
    }

    fn match_needs(plugin: &str, needs: &Needs, grant: &NetGrants) -> Vec<Finding> {
        if needs.network && grant.is_empty() {
            vec![Finding::Missing {
                message: format!("`{plugin}` makes HTTP requests, but the step grants no origin"),
                hint: "grant the origins it may reach: `net = [\"http://127.0.0.1:3000\"]`".into(),
            }]
        } else if !needs.network && !needs.may_use_network && !grant.is_empty() {
            vec![Finding::Unneeded {
                message: format!("`{plugin}` does not use the network; its `net` grant is not needed"),
            }]
        } else {
            Vec::new()
        }
    }

    /// Hands the grant to the call's `wasi:http` policy, which checks every
    /// request against it and the phase ([`NetGrants::check`]).
    fn instantiate(grant: &NetGrants, _phase: Phase, sandbox: &mut Sandbox) -> Result<(), Denied> {
        sandbox.net = grant.clone();
        Ok(())
    }

    fn describe(grant: &NetGrants) -> Vec<String> {
        grant.origins.iter().map(|o| format!("net {o}")).collect()
    }
}

fn refused(requested: String, why: impl Into<String>) -> Denied {
    Denied::Refused { capability: Net::KEY, requested, why: why.into() }
}

impl NetGrants {
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// Whether `method` to the origin `scheme://authority` is allowed in a
    /// call of this phase. `plan` and `verify` may only read (as their
    /// directory mounts are read-only); `describe` gets no network.
    pub fn check(
        &self,
        phase: super::Phase,
        method: &str,
        scheme: Option<&str>,
        authority: Option<&str>,
    ) -> Result<Origin, Denied> {
        let request = || format!("{method} {}://{}", scheme.unwrap_or("?"), authority.unwrap_or("?"));
        phase.require(Effect::HttpRead, format!("{} (a network request)", request()))?;
        if !matches!(method, "GET" | "HEAD") && !phase.allows(Effect::HttpWrite) {
            return Err(refused(
                request(),
                format!("`{phase}` may only send GET and HEAD requests, not {method}: it changes nothing"),
            ));
        }
        let origin = Origin::of_request(scheme, authority).map_err(|why| refused(request(), why))?;
        if !self.origins.contains(&origin) {
            return Err(Denied::NotGranted {
                capability: Net::KEY,
                requested: origin.to_string(),
                granted: if self.origins.is_empty() { "none: the step has no `net` grant".into() } else { self.list() },
            });
        }
        Ok(origin)
    }

    /// The addresses to connect to for a granted origin: the literal address,
    /// or what the name resolves to, each checked. Refuses the whole request
    /// when any answer is forbidden, so a resolver cannot mix a good address
    /// with the metadata endpoint and let connection order decide.
    pub async fn resolve(&self, origin: &Origin) -> Result<Vec<SocketAddr>, Resolution> {
        let name = match &origin.host {
            Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, origin.port)]),
            Host::Name(name) => name,
        };
        let addrs: Vec<SocketAddr> = match &self.resolver {
            NameResolver::System => tokio::net::lookup_host((name.as_str(), origin.port))
                .await
                .map_err(|e| Resolution::Failed(format!("cannot resolve `{name}`: {e}")))?
                .collect(),
            NameResolver::Static(map) => {
                map.get(name).into_iter().flatten().map(|ip| SocketAddr::new(*ip, origin.port)).collect()
            }
        };
        if addrs.is_empty() {
            return Err(Resolution::Failed(format!("`{name}` does not resolve to any address")));
        }
        for addr in &addrs {
            if let Some(why) = forbidden_address(addr.ip()) {
                let literal = Origin { scheme: origin.scheme, host: Host::Ip(addr.ip()), port: origin.port };
                if !self.origins.contains(&literal) {
                    return Err(Resolution::Denied(refused(
                        origin.to_string(),
                        format!(
                            "`{name}` resolves to {}, {why}, which is reached only when granted literally",
                            addr.ip()
                        ),
                    )));
                }
            }
        }
        Ok(addrs)
    }

    fn list(&self) -> String {
        self.origins.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ")
    }
}

/// Why a granted origin yields no address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Refused by policy.
    Denied(Denied),
    /// The name did not resolve.
    Failed(String),
}

/// Checks one step's `net` grants (`${vars.*}` substituted first).
pub fn check(
    defs: &[Spanned<String>],
    vars: &BTreeMap<String, String>,
    parsed: &Parsed,
    problems: &mut Vec<Diagnostic>,
) -> NetGrants {
    let mut origins: Vec<Origin> = Vec::new();
    for def in defs {
        let at = parsed.locate(&def.span());
        match super::render_grant(def.get_ref(), vars).and_then(|text| Origin::parse_grant(&text)) {
            Ok(origin) if origins.contains(&origin) => {
                problems.push(Diagnostic::error(format!("{origin} is granted twice")).at(at));
            }
            Ok(origin) => origins.push(origin),
            Err(message) => problems.push(
                Diagnostic::error(message)
                    .at(at)
                    .hint("a `net` grant is an origin: `http://127.0.0.1:3000` or `https://api.internal:8443`"),
            ),
        }
    }
    NetGrants { origins, resolver: NameResolver::System }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Phase;

    fn grants(list: &[&str]) -> NetGrants {
        NetGrants {
            origins: list.iter().map(|g| Origin::parse_grant(g).unwrap()).collect(),
            resolver: NameResolver::System,
        }
    }

    fn allowed(g: &NetGrants, method: &str, scheme: &str, authority: &str) -> bool {
        g.check(Phase::Run, method, Some(scheme), Some(authority)).is_ok()
    }

    #[test]
    fn grants_are_origins_with_default_ports() {
        let o = Origin::parse_grant("HTTPS://API.Internal/").unwrap();
        assert_eq!(o.to_string(), "https://api.internal:443");
        assert_eq!(Origin::parse_grant("http://127.0.0.1:3000").unwrap().port, 3000);
        assert_eq!(Origin::parse_grant("http://[::1]:8080").unwrap().host, Host::Ip("::1".parse().unwrap()));
    }

    #[test]
    fn grants_refuse_paths_other_schemes_ambiguous_ips_and_user_info() {
        for bad in [
            "http://127.0.0.1:3000/health",
            "ftp://x",
            "127.0.0.1:3000",
            "http://127.1:3000",
            "http://0x7f.0.0.1",
            "http://2130706433",
            "http://0177.0.0.1",
            "http://[::ffff:127.0.0.1]",
            "http://user@host",
            "http://host:0",
            "http://host:99999",
            "http://host:",
            "http://",
            "http://bad_host!",
            "http://[fe80::1%25eth0]",
        ] {
            assert!(Origin::parse_grant(bad).is_err(), "{bad} should be refused");
        }
        assert!(Origin::parse_grant("http://[::ffff:127.0.0.1]").unwrap_err().contains("`127.0.0.1`"));
    }

    #[test]
    fn only_the_exact_origin_is_allowed() {
        let g = grants(&["http://127.0.0.1:3000", "https://api.internal:8443"]);
        assert!(allowed(&g, "GET", "http", "127.0.0.1:3000"));
        assert!(allowed(&g, "POST", "https", "API.INTERNAL.:8443"));
        assert!(!allowed(&g, "GET", "http", "127.0.0.1:3001"), "other port");
        assert!(!allowed(&g, "GET", "https", "127.0.0.1:3000"), "other scheme");
        assert!(!allowed(&g, "GET", "http", "127.0.0.2:3000"), "other host");
        assert!(!allowed(&g, "GET", "http", "localhost:3000"), "a name is not an address");
        assert!(!allowed(&g, "GET", "https", "api.internal"), "default port 443 is not 8443");
        assert!(!allowed(&g, "GET", "http", "evil@127.0.0.1:3000"));
    }

    #[test]
    fn other_spellings_of_a_granted_address_are_denied() {
        let g = grants(&["http://127.0.0.1:3000"]);
        for spelling in [
            "127.1:3000",
            "0x7f.0.0.1:3000",
            "0x7f000001:3000",
            "2130706433:3000",
            "0177.0.0.1:3000",
            "127.0.0.01:3000",
            "[::ffff:127.0.0.1]:3000",
            "[::ffff:7f00:1]:3000",
            "[0:0:0:0:0:ffff:127.0.0.1]:3000",
            "[::127.0.0.1]:3000",
        ] {
            assert!(!allowed(&g, "GET", "http", spelling), "{spelling} must not pass");
        }
    }

    #[test]
    fn plan_may_only_read_and_describe_gets_nothing() {
        let g = grants(&["http://127.0.0.1:3000"]);
        assert!(g.check(Phase::Plan, "GET", Some("http"), Some("127.0.0.1:3000")).is_ok());
        assert!(g.check(Phase::Plan, "HEAD", Some("http"), Some("127.0.0.1:3000")).is_ok());
        let post = g.check(Phase::Plan, "POST", Some("http"), Some("127.0.0.1:3000")).unwrap_err();
        assert!(post.to_string().contains("only send GET and HEAD"), "{post}");
        assert!(g.check(Phase::Describe, "GET", Some("http"), Some("127.0.0.1:3000")).is_err());
        assert!(g.check(Phase::Verify, "POST", Some("http"), Some("127.0.0.1:3000")).is_err());
        assert!(g.check(Phase::Verify, "GET", Some("http"), Some("127.0.0.1:3000")).is_ok());
        assert!(g.check(Phase::Undo, "DELETE", Some("http"), Some("127.0.0.1:3000")).is_ok());
    }

    #[test]
    fn no_grant_means_no_network() {
        let e = NetGrants::default().check(Phase::Run, "GET", Some("http"), Some("127.0.0.1:80")).unwrap_err();
        assert!(e.to_string().contains("no `net` grant"), "{e}");
        assert!(matches!(e, Denied::NotGranted { capability: "net", .. }), "{e:?}");
    }

    fn with_table(list: &[&str], table: &[(&str, &[&str])]) -> NetGrants {
        let map = table
            .iter()
            .map(|(name, ips)| (name.to_string(), ips.iter().map(|ip| ip.parse().unwrap()).collect()))
            .collect();
        NetGrants { resolver: NameResolver::Static(Arc::new(map)), ..grants(list) }
    }

    fn resolve(g: &NetGrants, origin: &str) -> Result<Vec<SocketAddr>, Resolution> {
        let origin = Origin::parse_grant(origin).unwrap();
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(g.resolve(&origin))
    }

    #[test]
    fn names_resolving_to_link_local_or_metadata_are_refused() {
        let g = with_table(
            &["http://metadata.test", "http://mixed.test", "http://v6.test", "http://ok.test"],
            &[
                ("metadata.test", &["169.254.169.254"]),
                ("mixed.test", &["10.0.0.5", "169.254.169.254"]),
                ("v6.test", &["fe80::1"]),
                ("ok.test", &["10.0.0.5"]),
            ],
        );
        for name in ["http://metadata.test", "http://mixed.test", "http://v6.test"] {
            assert!(matches!(resolve(&g, name), Err(Resolution::Denied(_))), "{name}");
        }
        assert_eq!(resolve(&g, "http://ok.test").unwrap(), vec!["10.0.0.5:80".parse().unwrap()]);
        assert!(matches!(resolve(&g, "http://unknown.test"), Err(Resolution::Failed(_))));
    }

    #[test]
    fn a_literally_granted_metadata_address_may_be_reached_through_a_name() {
        let g =
            with_table(&["http://metadata.test", "http://169.254.169.254"], &[("metadata.test", &["169.254.169.254"])]);
        assert!(resolve(&g, "http://metadata.test").is_ok());
        assert!(resolve(&g, "http://169.254.169.254").is_ok());
    }

    #[test]
    fn mapped_and_special_addresses_are_classified() {
        assert!(forbidden_address("::ffff:169.254.169.254".parse().unwrap()).is_some());
        assert!(forbidden_address("::a9fe:a9fe".parse().unwrap()).is_some(), "IPv4-compatible metadata address");
        assert!(forbidden_address("64:ff9b::a9fe:a9fe".parse().unwrap()).is_some(), "NAT64 metadata address");
        assert!(forbidden_address("64:ff9b::a00:1".parse().unwrap()).is_none(), "NAT64 of 10.0.0.1 is ordinary");
        assert!(forbidden_address("::1".parse().unwrap()).is_none(), "loopback is not an IPv4-compatible address");
        assert!(forbidden_address("fd00:ec2::254".parse().unwrap()).is_some());
        assert!(forbidden_address("0.0.0.0".parse().unwrap()).is_some());
        assert!(forbidden_address("127.0.0.1".parse().unwrap()).is_none());
        assert!(forbidden_address("10.1.2.3".parse().unwrap()).is_none());
    }
}
