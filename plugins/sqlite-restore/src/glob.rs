//! File-name patterns for `pattern`: `*` matches any run of characters
//! (including none), `?` exactly one, everything else itself. The matcher
//! is the SDK's ([`backout_sdk::glob`]), shared with file-restore.

#![forbid(unsafe_code)]

pub use backout_sdk::glob::matches;
