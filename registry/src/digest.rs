//! Content digests: the only thing that names a blob.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The one algorithm format 1 knows. Every textual digest is `sha256:<hex>`.
pub(crate) const ALGORITHM: &str = "sha256";

/// Hex characters in a sha256 digest.
const HEX_LEN: usize = 64;

/// A sha256 digest of a component's bytes.
///
/// Displays (and serializes) as `sha256:<64 lowercase hex>`; the prefix leaves
/// room for other algorithms in a later format without ambiguity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The digest as 64 lowercase hex characters, without the `sha256:` prefix
    /// (this is the blob's file name).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses `<hex>` (64 hex characters, either case) into a digest.
    fn from_hex(hex_part: &str) -> Result<Digest, DigestError> {
        if let Some(character) = hex_part.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(DigestError::NotHex { character });
        }
        // Only ASCII is left, so bytes are characters.
        if hex_part.len() != HEX_LEN {
            return Err(DigestError::WrongLength { length: hex_part.len() });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).expect("64 ascii hex digits always decode to 32 bytes");
        Ok(Digest(bytes))
    }

    /// Parses `sha256:<hex>` (prefixed) or `<hex>` (bare, only if
    /// `allow_bare`).
    fn parse(value: &str, allow_bare: bool) -> Result<Digest, InvalidDigest> {
        let invalid = |reason| InvalidDigest { value: value.to_owned(), reason };
        let hex_part = match value.split_once(':') {
            Some(("", _)) => return Err(invalid(DigestError::MissingAlgorithm)),
            Some((algorithm, hex_part)) => {
                if !algorithm.eq_ignore_ascii_case(ALGORITHM) {
                    return Err(invalid(DigestError::UnsupportedAlgorithm { algorithm: algorithm.to_owned() }));
                }
                hex_part
            }
            None if allow_bare => value,
            None => return Err(invalid(DigestError::MissingAlgorithm)),
        };
        Digest::from_hex(hex_part).map_err(invalid)
    }
}

/// sha256 over bytes that arrive in pieces (a blob read in chunks, a blob
/// inside a bundle), counting them.
#[derive(Default)]
pub(crate) struct Hasher {
    sha256: Sha256,
    len: u64,
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// The digest and the number of bytes hashed.
    pub(crate) fn finish(self) -> (Digest, u64) {
        (Digest(self.sha256.finalize().into()), self.len)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ALGORITHM}:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    /// `Digest(sha256:…)`, not 32 decimal bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    /// Accepts `sha256:<hex>` and bare `<hex>`, in either case.
    fn from_str(value: &str) -> Result<Digest, InvalidDigest> {
        Digest::parse(value, true)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    /// Requires the `sha256:` prefix: files say which algorithm they mean.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        struct DigestVisitor;

        impl Visitor<'_> for DigestVisitor {
            type Value = Digest;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a digest string `{ALGORITHM}:<64 hex characters>`")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Digest, E> {
                Digest::parse(value, false).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(DigestVisitor)
    }
}

/// Why a string is not a digest (the `reason` of [`InvalidDigest`](crate::InvalidDigest)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    #[error("unsupported algorithm `{}`, only `sha256` is supported", .algorithm.escape_debug())]
    UnsupportedAlgorithm { algorithm: String },
    #[error("missing the `sha256:` prefix")]
    MissingAlgorithm,
    #[error("`{}` is not a hex digit", .character.escape_debug())]
    NotHex { character: char },
    #[error("expected 64 hex characters, found {length}")]
    WrongLength { length: usize },
}

/// A string that is not a digest, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest `{}`: {reason}", .value.escape_debug())]
pub struct InvalidDigest {
    pub value: String,
    pub reason: DigestError,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sha256("abc"), FIPS 180-2 appendix B.1.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn reason(value: &str) -> DigestError {
        match value.parse::<Digest>() {
            Err(InvalidDigest { value: v, reason }) => {
                assert_eq!(v, value, "the error carries the offending input");
                reason
            }
            other => panic!("expected InvalidDigest for {value:?}, got {other:?}"),
        }
    }

    #[test]
    fn digest_of_matches_the_sha256_test_vector() {
        let digest = Digest::of(b"abc");
        assert_eq!(digest.hex(), ABC);
        assert_eq!(digest.to_string(), format!("sha256:{ABC}"));
        assert_eq!(format!("{digest:?}"), format!("Digest(sha256:{ABC})"));
    }

    #[test]
    fn digest_parses_prefixed_and_bare_hex() {
        let expected = Digest::of(b"abc");
        let upper = ABC.to_ascii_uppercase();
        for text in [format!("sha256:{ABC}"), ABC.to_owned(), upper.clone(), format!("sha256:{upper}")] {
            assert_eq!(text.parse::<Digest>().unwrap(), expected, "parsing {text}");
        }
        // Whatever case went in, what comes out is canonical.
        assert_eq!(upper.parse::<Digest>().unwrap().to_string(), format!("sha256:{ABC}"));
    }

    #[test]
    fn digest_rejects_wrong_length() {
        assert_eq!(reason(&ABC[..63]), DigestError::WrongLength { length: 63 });
        assert_eq!(reason(&format!("{ABC}0")), DigestError::WrongLength { length: 65 });
        assert_eq!(reason(&format!("sha256:{}", &ABC[..2])), DigestError::WrongLength { length: 2 });
        assert_eq!(reason(""), DigestError::WrongLength { length: 0 });
        assert_eq!(reason("sha256:"), DigestError::WrongLength { length: 0 });

        let message = ABC[..63].parse::<Digest>().unwrap_err().to_string();
        assert_eq!(message, format!("invalid digest `{}`: expected 64 hex characters, found 63", &ABC[..63]));
    }

    #[test]
    fn digest_rejects_non_hex_and_unknown_algorithms() {
        let non_hex = format!("g{}", &ABC[1..]);
        assert_eq!(reason(&non_hex), DigestError::NotHex { character: 'g' });
        assert_eq!(reason(&format!("sha256: {}", &ABC[1..])), DigestError::NotHex { character: ' ' });
        assert_eq!(reason(&format!("é{}", &ABC[2..])), DigestError::NotHex { character: 'é' });
        assert_eq!(reason(&format!(":{ABC}")), DigestError::MissingAlgorithm);
        assert_eq!(reason(&format!("md5:{ABC}")), DigestError::UnsupportedAlgorithm { algorithm: "md5".to_owned() });
        let message = format!("md5:{ABC}").parse::<Digest>().unwrap_err().to_string();
        assert!(message.contains("unsupported algorithm `md5`, only `sha256` is supported"), "{message}");
    }

    #[test]
    fn digest_serde_uses_the_prefixed_string() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Doc {
            digest: Digest,
        }
        let doc = Doc { digest: Digest::of(b"abc") };
        let text = toml::to_string(&doc).unwrap();
        assert_eq!(text.trim(), format!("digest = \"sha256:{ABC}\""));
        assert_eq!(toml::from_str::<Doc>(&text).unwrap(), doc);

        // Files must say which algorithm they mean.
        let bare = toml::from_str::<Doc>(&format!("digest = \"{ABC}\"")).unwrap_err();
        assert!(bare.to_string().contains("missing the `sha256:` prefix"), "{bare}");
        let md5 = toml::from_str::<Doc>(&format!("digest = \"md5:{ABC}\"")).unwrap_err();
        assert!(md5.to_string().contains("unsupported algorithm `md5`"), "{md5}");
    }

    #[test]
    fn digests_order_and_hash_by_bytes() {
        use std::collections::HashSet;
        let a = Digest([0; 32]);
        let mut b_bytes = [0; 32];
        b_bytes[31] = 1;
        let b = Digest(b_bytes);
        assert!(a < b);
        let set: HashSet<Digest> = [a, b, a].into_iter().collect();
        assert_eq!(set.len(), 2);
    }
}
