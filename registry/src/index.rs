//! `index.toml`: what is pinned, strictly parsed and deterministically written.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::format::FormatError;
use crate::time::validate_timestamp;
use crate::validate::ValidateError;
use crate::validate::{compare_versions, validate_label};
use crate::{validate_name, validate_version};

/// The on-disk format this crate reads and writes. Bumped whenever older
/// readers must not use an index; they refuse it with
/// [`FormatError::Unsupported`](crate::FormatError::Unsupported). Unknown keys are refused as well, so nothing
/// in an index is ever silently ignored.
pub(crate) const FORMAT: i64 = 1;

/// The publisher of entries added locally (the default when absent).
pub(crate) const LOCAL_PUBLISHER: &str = "local";

/// One pinned plugin version: `name@version` is exactly the component whose
/// sha256 is `digest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub version: String,
    pub digest: Digest,
    /// Size of the component in bytes.
    pub size: u64,
    /// The WIT world the component was built for, e.g.
    /// `backout:step/plugin@0.1.0`.
    pub world: String,
    /// Who published the component; `local` for `Registry::add`.
    #[serde(default = "local_publisher")]
    pub publisher: String,
    /// When the entry was added, UTC `YYYY-MM-DDTHH:MM:SSZ`.
    pub added: String,
}

fn local_publisher() -> String {
    LOCAL_PUBLISHER.to_owned()
}

impl Entry {
    /// The order entries are kept in: by name, then by version precedence.
    fn order(&self, other: &Entry) -> Ordering {
        self.name.cmp(&other.name).then_with(|| compare_versions(&self.version, &other.version))
    }

    fn validate(&self) -> Result<(), ValidateError> {
        validate_name(&self.name)?;
        validate_version(&self.version)?;
        validate_label("world", &self.world)?;
        validate_label("publisher", &self.publisher)?;
        validate_timestamp("added", &self.added)
    }
}

/// A parsed, validated index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Increases by one on every change.
    pub(crate) serial: u64,
    /// After this UTC time (`YYYY-MM-DDTHH:MM:SSZ`) a signed index is
    /// refused; set by `Registry::sign`.
    pub(crate) expires: Option<String>,
    /// When the index was signed (UTC `YYYY-MM-DDTHH:MM:SSZ`); set by
    /// `Registry::sign`. Bounds the age of an index without `expires`
    /// ([`TrustStore::max_index_age`](crate::TrustStore::max_index_age)).
    pub(crate) signed: Option<String>,
    /// Sorted by [`Entry::order`], no two with the same `name@version`.
    pub(crate) entries: Vec<Entry>,
}

/// The file as TOML sees it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexFile {
    format: i64,
    serial: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signed: Option<String>,
    #[serde(default, rename = "plugin", skip_serializing_if = "Vec::is_empty")]
    plugins: Vec<Entry>,
}

/// Just the format, read leniently first so a newer index is reported as a
/// newer format, not as a pile of unknown keys.
#[derive(Deserialize)]
struct FormatProbe {
    format: Option<i64>,
}

impl Index {
    /// Parses and validates the text of the index at `path` (used in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Index, IndexError> {
        let parse_error = |e: toml::de::Error| {
            IndexError::Format(FormatError::Parse {
                path: path.to_owned(),
                message: e.to_string().trim_end().to_owned(),
            })
        };
        let probe: FormatProbe = toml::from_str(text).map_err(parse_error)?;
        if let Some(found) = probe.format.filter(|&f| f != FORMAT) {
            return Err(IndexError::Format(FormatError::Unsupported {
                path: path.to_owned(),
                found,
                supported: FORMAT,
            }));
        }
        let file: IndexFile = toml::from_str(text).map_err(parse_error)?;

        if let Some(expires) = &file.expires {
            validate_timestamp("expires", expires)?;
        }
        if let Some(signed) = &file.signed {
            validate_timestamp("signed", signed)?;
        }
        let mut entries = file.plugins;
        for entry in &entries {
            entry.validate().map_err(|source| IndexError::InvalidEntry {
                path: path.to_owned(),
                name: entry.name.clone(),
                version: entry.version.clone(),
                source: Box::new(source),
            })?;
        }
        entries.sort_by(Entry::order);
        if let Some(pair) =
            entries.windows(2).find(|pair| pair[0].name == pair[1].name && pair[0].version == pair[1].version)
        {
            return Err(IndexError::DuplicateEntry {
                path: path.to_owned(),
                name: pair[0].name.clone(),
                version: pair[0].version.clone(),
            });
        }
        Ok(Index { serial: file.serial, expires: file.expires, signed: file.signed, entries })
    }

    /// The text of the index; `path` is only used in errors.
    pub fn render(&self, path: &Path) -> Result<String, IndexError> {
        let file = IndexFile {
            format: FORMAT,
            serial: self.serial,
            expires: self.expires.clone(),
            signed: self.signed.clone(),
            plugins: self.entries.clone(),
        };
        toml::to_string(&file)
            .map_err(|e| IndexError::Format(FormatError::Serialize { path: path.to_owned(), message: e.to_string() }))
    }

    pub(crate) fn find(&self, name: &str, version: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name && e.version == version)
    }

    /// Removes and returns the entry for exactly `name@version`.
    pub(crate) fn remove(&mut self, name: &str, version: &str) -> Option<Entry> {
        let at = self.entries.iter().position(|e| e.name == name && e.version == version)?;
        Some(self.entries.remove(at))
    }

    /// Adds an entry that is not yet present, keeping the order.
    pub(crate) fn insert(&mut self, entry: Entry) {
        debug_assert!(self.find(&entry.name, &entry.version).is_none());
        let at = self.entries.partition_point(|e| e.order(&entry) == Ordering::Less);
        self.entries.insert(at, entry);
    }
}

/// What is wrong with an `index.toml`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Not valid TOML, not the format, or entries that contradict each other.
    #[error(transparent)]
    Format(#[from] FormatError),

    #[error(
        "duplicate entry `{}@{}` in `{}`",
        .name.escape_debug(),
        .version.escape_debug(),
        .path.display()
    )]
    DuplicateEntry { path: PathBuf, name: String, version: String },

    /// An entry has a field that [`validate_name`], [`validate_version`] or
    /// the other field checks refuse; `source` says which.
    #[error(
        "invalid entry `{}@{}` in `{}`",
        .name.escape_debug(),
        .version.escape_debug(),
        .path.display()
    )]
    InvalidEntry {
        path: PathBuf,
        name: String,
        version: String,
        #[source]
        source: Box<ValidateError>,
    },

    /// `expires` or `signed` is not a UTC timestamp.
    #[error(transparent)]
    Header(#[from] ValidateError),
}
