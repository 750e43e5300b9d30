//! Telling secrets apart, so plans, outputs and logs never show them.
//!
//! A plugin that reports values it read (a `.env` file, a config file, a
//! diff) masks a value as [`MASK`] when its key's name looks secret
//! ([`is_secret_key`]) or the value carries credentials (a URL with a
//! password, [`has_url_credentials`]; [`mask_url_passwords`] hides only the
//! password). The rule is broad on purpose: masking a harmless value costs
//! little, showing a secret cannot be undone. The host masks the values of
//! granted environment variables on top of this, in everything a plugin
//! says; it cannot know what a plugin read from a file.
//!
//! The first-party plugins share these functions (env-toggle, file-restore);
//! json-config (JavaScript) keeps the same list of words.

#![forbid(unsafe_code)]

use std::borrow::Cow;

/// Shown instead of a masked value.
pub const MASK: &str = "***";

/// Substrings that mark a key as secret, compared case-insensitively.
pub const SECRET_WORDS: &[&str] =
    &["SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASS", "KEY", "CREDENTIAL", "PRIVATE", "AUTH", "SALT", "DSN", "CERT"];

/// Whether a key's name suggests its value is a secret: it contains (in any
/// case) one of `SECRET`, `TOKEN`, `PASSWORD`, `PASSWD`, `PASS`, `KEY`,
/// `CREDENTIAL`, `PRIVATE`, `AUTH`, `SALT`, `DSN` or `CERT`. Broad on purpose:
/// masking a harmless value costs little, showing a secret cannot be undone.
pub fn is_secret_key(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| upper.contains(word))
}

/// Whether a value holds a URL with a password (`scheme://user:pass@host`),
/// as `DATABASE_URL` often does.
pub fn has_url_credentials(value: &str) -> bool {
    value.match_indices("://").any(|(i, _)| {
        let rest = &value[i + 3..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

/// `text` with the password of every URL in it (`scheme://user:PASSWORD@host`)
/// replaced by [`MASK`]; the scheme, user, host and path stay readable.
/// A URL's authority ends at `/`, `?`, `#`, a blank or a quote.
pub fn mask_url_passwords(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(found) = text[pos..].find("://") {
        let start = pos + found + 3;
        let len = text[start..]
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(text.len() - start);
        let authority = &text[start..start + len];
        out.push_str(&text[pos..start]);
        match authority.rsplit_once('@').and_then(|(userinfo, host)| Some((userinfo.split_once(':')?, host))) {
            Some(((user, _password), host)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        pos = start + len;
    }
    out.push_str(&text[pos..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_keys_are_recognised_in_any_case() {
        for key in ["DB_PASSWORD", "api_key", "GitHubToken", "AWS_SECRET_ACCESS_KEY", "private_pem", "SMTP_PASSWD"] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["INSIGHT_GENERATION_ENABLED", "PORT", "LOG_LEVEL", "DATABASE_URL", "sentry.dsn_x"] {
            assert_eq!(is_secret_key(key), key.contains("dsn"), "{key}");
        }
    }

    #[test]
    fn urls_with_passwords_are_recognised() {
        assert!(has_url_credentials("postgres://app:s3cret@db:5432/app"));
        assert!(has_url_credentials("x redis://:pw@cache"));
        assert!(!has_url_credentials("https://example.com/a@b:c"));
        assert!(!has_url_credentials("postgres://app@db/app"));
        assert!(!has_url_credentials("plain"));
    }

    #[test]
    fn url_passwords_are_masked_and_the_rest_stays() {
        assert_eq!(
            mask_url_passwords("url = \"postgres://app:s3cret@db:5432/app\""),
            "url = \"postgres://app:***@db:5432/app\""
        );
        assert_eq!(mask_url_passwords("a=redis://:pw@cache b=http://x/y"), "a=redis://:***@cache b=http://x/y");
        assert_eq!(mask_url_passwords("https://example.com/a@b:c"), "https://example.com/a@b:c");
        assert_eq!(mask_url_passwords("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(mask_url_passwords("u://a:b:c@h"), "u://a:***@h", "everything after the user's `:` is the password");
        assert!(matches!(mask_url_passwords("no url here"), Cow::Borrowed(_)));
        assert_eq!(mask_url_passwords("ends with ://"), "ends with ://");
    }
}
