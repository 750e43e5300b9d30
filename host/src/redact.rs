//! Masking of secrets (the values of granted environment variables) in
//! anything backout shows or writes: log lines, reports, JSON, journals.
//!
//! Values shorter than [`MIN_SECRET_LEN`] characters are not masked: masking
//! every `1` or `on` in a report would hide more than it protects.

/// The shortest value treated as a secret.
pub const MIN_SECRET_LEN: usize = 4;

/// What replaces a secret.
pub const MASK: &str = "***";

/// `text` with every occurrence of every secret replaced by [`MASK`].
pub fn text(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .fold(text.to_string(), |t, s| if t.contains(s.as_str()) { t.replace(s.as_str(), MASK) } else { t })
}

/// Masks every string inside a JSON value, object keys included, in place.
/// Strings are masked as they are, before any serialization could escape a
/// `"` or `\\` inside a secret.
pub fn json(value: &mut serde_json::Value, secrets: &[String]) {
    match value {
        serde_json::Value::String(s) => *s = text(s, secrets),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| json(v, secrets)),
        serde_json::Value::Object(map) => {
            let needs_rekey = map.keys().any(|k| text(k, secrets) != *k);
            if needs_rekey {
                let old = std::mem::take(map);
                for (k, v) in old {
                    map.insert(text(&k, secrets), v);
                }
            }
            map.values_mut().for_each(|v| json(v, secrets));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_text_and_json() {
        let secrets = vec!["hunter2".to_string(), "on".to_string()];
        assert_eq!(text("pw hunter2 is on", &secrets), "pw *** is on");
        let mut v = serde_json::json!({"a": ["token=hunter2"], "b": {"c": "hunter2"}, "n": 1});
        json(&mut v, &secrets);
        assert_eq!(v, serde_json::json!({"a": ["token=***"], "b": {"c": "***"}, "n": 1}));
    }

    #[test]
    fn keys_and_secrets_with_quotes_are_masked_too() {
        let secrets = vec!["p\"a\\ss".to_string()];
        let mut v = serde_json::json!({ "p\"a\\ss": { "note": "uses p\"a\\ss" } });
        json(&mut v, &secrets);
        assert_eq!(v, serde_json::json!({ "***": { "note": "uses ***" } }));
    }
}
