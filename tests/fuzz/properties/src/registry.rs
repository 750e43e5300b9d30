//! `backout-registry`: the index, the trust file and the bundle tar reader,
//! which read bytes that arrive from a registry, a mirror or across an air
//! gap.

use std::collections::BTreeSet;
use std::io::{Cursor, Write as _};
use std::path::Path;

use backout_registry::{Error, FileError, Index, Registry, TrustStore, TrustedKey, read_tar_entries};
use serde::Serialize;

/// `Index::parse` never panics; a parsed index renders as the registry
/// writes it, and that text parses to the same index and renders the same.
pub fn index(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("index.toml");
    let Ok(index) = Index::parse(&text, path) else { return };
    let written = index.render(path).unwrap_or_else(|e| panic!("a parsed index does not render: {e}"));
    let again = Index::parse(&written, path).unwrap_or_else(|e| panic!("`{written}` does not parse: {e}"));
    assert_eq!(again, index, "written as `{written}`");
    assert_eq!(again.render(path).unwrap(), written);
}

/// A trust file as the README documents it.
#[derive(Serialize)]
struct TrustFile<'a> {
    format: i64,
    require_signed: bool,
    max_index_age_days: u32,
    key: &'a [TrustedKey],
}

/// `TrustStore::parse` never panics; a parsed store names each key once
/// and each name once, finds every key under its name, and written back
/// as a trust file reads as the same store.
pub fn trust(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("trust.toml");
    let Ok(store) = TrustStore::parse(&text, path) else { return };
    let keys = store.keys();
    let names: BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    let publics: BTreeSet<String> = keys.iter().map(|k| k.public.to_string()).collect();
    assert!(names.len() == keys.len() && publics.len() == keys.len(), "a name or key twice: {keys:?}");
    for key in keys {
        assert_eq!(store.name_of(&key.public), Some(key.name.as_str()));
    }
    assert!(store.max_index_age_days() >= 1, "a zero maximum age is refused");
    let file = TrustFile {
        format: 1,
        require_signed: store.requires_signatures(),
        max_index_age_days: store.max_index_age_days(),
        key: keys,
    };
    let written = toml::to_string(&file).expect("a trust file serializes");
    let again = TrustStore::parse(&written, path).unwrap_or_else(|e| panic!("`{written}` does not parse: {e}"));
    assert_eq!(again, store, "written as `{written}`");
}

const BLOCK: usize = 512;
const CHECKSUM: std::ops::Range<usize> = 148..156;
const SIZE: std::ops::Range<usize> = 124..136;

/// The tar reader and the bundle reader, on the input as it is and on the
/// input with every header checksum recomputed (so mutations reach past
/// the checksum check).
pub fn bundle_tar(data: &[u8]) {
    check_bundle(data);
    let fixed = with_checksums_fixed(data);
    if fixed != data {
        check_bundle(&fixed);
    }
}

/// The tar reader never panics and never reads past the input (in memory,
/// its only errors are its own refusals, never a failed read). What it
/// accepts is a well-formed archive: contiguous headers, each a regular
/// file without a link name and named as the entry says, every entry's data
/// inside the input, then two zero blocks and only zeros. The bundle reader
/// refuses whatever the tar reader refuses, and accepts only `index.toml`,
/// `index.toml.sig` and `blobs/sha256/<hex>` entries.
fn check_bundle(data: &[u8]) {
    let len = data.len() as u64;
    let entries = read_tar_entries(&mut Cursor::new(data), len);
    match &entries {
        Err(reason) => assert!(!reason.starts_with("read failed"), "read past the input: {reason}"),
        Ok(entries) => {
            let mut position = 0u64;
            for entry in entries {
                assert_eq!(entry.offset, position + BLOCK as u64, "{entry:?} is not where its header ends");
                let header = &data[position as usize..entry.offset as usize];
                assert!(matches!(header[156], b'0' | 0), "{entry:?}: accepted type `{}`", header[156].escape_ascii());
                assert!(header[157..257].iter().all(|&b| b == 0), "{entry:?}: accepted a link name");
                let name = &header[..100];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(100)];
                assert_eq!(name, entry.name.as_bytes(), "the name in the header");
                let end = entry.offset.checked_add(entry.size).filter(|&end| end <= len);
                assert!(end.is_some(), "{entry:?}: data past the {len} bytes of input");
                position = entry.offset + entry.size.div_ceil(BLOCK as u64) * BLOCK as u64;
            }
            let rest = &data[position as usize..];
            assert!(rest.len() >= 2 * BLOCK && rest.iter().all(|&b| b == 0), "accepted without an end marker");
        }
    }

    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(data).expect("the input written");
    match Registry::bundle_signer(file.path()) {
        Ok(_) => {
            let entries = entries.expect("a bundle the tar reader refuses was read");
            for entry in &entries {
                let name = entry.name.as_str();
                let blob = name.strip_prefix("blobs/sha256/").is_some_and(|hex| {
                    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                });
                assert!(name == "index.toml" || name == "index.toml.sig" || blob, "accepted entry `{name}`");
                assert!(!name.starts_with('/') && !name.split('/').any(|part| part == ".."));
            }
        }
        Err(Error::File(FileError::Read { path, source })) => panic!("failed to read {}: {source}", path.display()),
        Err(_) => {}
    }
}

/// The input with each header's checksum recomputed, walking headers as a
/// tar reader would (stopping at a zero block or an unreadable size).
fn with_checksums_fixed(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut position = 0usize;
    while let Some(block) = out.get_mut(position..position + BLOCK) {
        if block.iter().all(|&b| b == 0) {
            break;
        }
        let sum: u64 =
            block.iter().enumerate().map(|(i, &b)| if CHECKSUM.contains(&i) { 32 } else { u64::from(b) }).sum();
        block[CHECKSUM].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let digits: Vec<u8> =
            block[SIZE].iter().copied().skip_while(|&b| b == b' ').take_while(u8::is_ascii_digit).collect();
        let size = std::str::from_utf8(&digits).ok().and_then(|d| u64::from_str_radix(d, 8).ok());
        let Some(next) = size.and_then(|size| usize::try_from(size.div_ceil(BLOCK as u64)).ok()) else { break };
        let Some(next) = next.checked_mul(BLOCK).and_then(|n| n.checked_add(position + BLOCK)) else { break };
        position = next;
    }
    out
}
