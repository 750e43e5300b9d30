//! Just enough ustar (POSIX.1-1988 tar) for registry bundles.
//!
//! Bundles are carried across air gaps and read by the importing host
//! before anything is trusted, so the reader is the attack surface: it
//! accepts only plain regular files with short names, verifies every header
//! checksum, and checks every size against the file's real length before
//! anything is read. Links, devices, directories, long-name extensions
//! (GNU `L`, pax `x`), base-256 sizes and a name prefix are all refused.
//! Which names are allowed, and in which order, is the bundle's business
//! ([`crate::bundle`]).
//!
//! The writer is deterministic: mode 0644, uid/gid 0, mtime 0, no user or
//! group names, so the same files always give the same bytes (and any `tar`
//! can list and extract a bundle).

use std::io::{self, Read, Seek, SeekFrom};

/// Tar's unit: headers and data are padded to 512-byte blocks.
pub(crate) const BLOCK: usize = 512;
/// Two zero blocks end an archive.
pub(crate) const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];
/// The largest size eleven octal digits can hold (8 GiB - 1).
pub(crate) const MAX_SIZE: u64 = 0o77_777_777_777;

const NAME: std::ops::Range<usize> = 0..100;
const MODE: std::ops::Range<usize> = 100..108;
const UID: std::ops::Range<usize> = 108..116;
const GID: std::ops::Range<usize> = 116..124;
const SIZE: std::ops::Range<usize> = 124..136;
const MTIME: std::ops::Range<usize> = 136..148;
const CHECKSUM: std::ops::Range<usize> = 148..156;
const TYPEFLAG: usize = 156;
const LINKNAME: std::ops::Range<usize> = 157..257;
const MAGIC: std::ops::Range<usize> = 257..263;
const VERSION: std::ops::Range<usize> = 263..265;
const PREFIX: std::ops::Range<usize> = 345..500;

/// The header of a regular file `name` (ASCII, at most 100 bytes) of `size`
/// bytes (at most [`MAX_SIZE`]); the caller guarantees both.
pub(crate) fn header(name: &str, size: u64) -> [u8; BLOCK] {
    debug_assert!(name.is_ascii() && name.len() <= NAME.len() && size <= MAX_SIZE);
    let mut block = [0u8; BLOCK];
    block[NAME][..name.len()].copy_from_slice(name.as_bytes());
    block[MODE].copy_from_slice(b"0000644\0");
    block[UID].copy_from_slice(b"0000000\0");
    block[GID].copy_from_slice(b"0000000\0");
    block[SIZE].copy_from_slice(format!("{size:011o}\0").as_bytes());
    block[MTIME].copy_from_slice(b"00000000000\0");
    block[TYPEFLAG] = b'0';
    block[MAGIC].copy_from_slice(b"ustar\0");
    block[VERSION].copy_from_slice(b"00");
    let checksum = checksum(&block);
    block[CHECKSUM].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    block
}

/// Zero bytes after `size` bytes of data, up to the next block.
pub(crate) fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// The header checksum: the sum of all bytes, the checksum field counted as
/// eight spaces.
fn checksum(block: &[u8; BLOCK]) -> u64 {
    block.iter().enumerate().map(|(i, &b)| if CHECKSUM.contains(&i) { u64::from(b' ') } else { u64::from(b) }).sum()
}

/// One regular file in an archive: its data is `size` bytes at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// Reads and checks every header of the archive in `file` (of `len` bytes)
/// without reading any file data. The error is the reason, for the caller
/// to put in context.
///
/// Public (hidden) only for the fuzz targets in `tests/fuzz`, which hand it
/// an in-memory archive; a bundle is read through [`crate::Registry::import`].
pub fn read_entries(file: &mut (impl Read + Seek), len: u64) -> Result<Vec<TarEntry>, String> {
    let io_error = |e: io::Error| format!("read failed: {e}");
    let mut entries = Vec::new();
    let mut position = 0u64;
    loop {
        if len - position < BLOCK as u64 {
            return Err(if position == len {
                format!("truncated: no end-of-archive marker after {}", crate::text::count(entries.len(), "entry"))
            } else {
                format!("truncated: the header at byte {position} is incomplete")
            });
        }
        let mut block = [0u8; BLOCK];
        file.seek(SeekFrom::Start(position)).map_err(io_error)?;
        file.read_exact(&mut block).map_err(io_error)?;
        if block.iter().all(|&b| b == 0) {
            // The end: a second zero block, then nothing but zero padding.
            position += BLOCK as u64;
            if len - position < BLOCK as u64 {
                return Err("truncated: the end-of-archive marker is incomplete".to_owned());
            }
            let mut rest = Vec::new();
            file.read_to_end(&mut rest).map_err(io_error)?;
            if rest.len() as u64 != len - position || rest.iter().any(|&b| b != 0) {
                return Err(format!("unexpected data after the end-of-archive marker at byte {position}"));
            }
            return Ok(entries);
        }
        let entry = parse_header(&block, position)?;
        let padded = entry.size + padding(entry.size) as u64;
        if padded > len - entry.offset {
            return Err(format!(
                "truncated: `{}` claims {} at byte {}, but the bundle has {}",
                entry.name,
                crate::text::count(entry.size as usize, "byte"),
                entry.offset,
                crate::text::count(len as usize, "byte")
            ));
        }
        position = entry.offset + padded;
        entries.push(entry);
    }
}

/// Checks one header block found at `position`.
fn parse_header(block: &[u8; BLOCK], position: u64) -> Result<TarEntry, String> {
    let at = |reason: String| format!("header at byte {position}: {reason}");
    let stored = parse_octal(&block[CHECKSUM]).ok_or_else(|| at("the checksum field is not octal".to_owned()))?;
    let computed = checksum(block);
    if stored != computed {
        return Err(at(format!("checksum {stored:o} does not match the header's {computed:o}")));
    }
    if &block[MAGIC] != b"ustar\0" || &block[VERSION] != b"00" {
        return Err(at("not a ustar header".to_owned()));
    }
    let name_field = &block[NAME];
    let name_len = name_field.iter().position(|&b| b == 0).unwrap_or(name_field.len());
    let (name, after) = name_field.split_at(name_len);
    if name.is_empty() || !name.iter().all(u8::is_ascii_graphic) || after.iter().any(|&b| b != 0) {
        return Err(at("the name is empty or not printable ascii".to_owned()));
    }
    let name = String::from_utf8_lossy(name).into_owned();
    if block[TYPEFLAG] != b'0' && block[TYPEFLAG] != 0 {
        return Err(at(format!("`{name}` is not a regular file (type `{}`)", block[TYPEFLAG].escape_ascii())));
    }
    if block[PREFIX].iter().any(|&b| b != 0) || block[LINKNAME].iter().any(|&b| b != 0) {
        return Err(at(format!("`{name}` has a name prefix or a link name")));
    }
    let size = parse_octal(&block[SIZE]).ok_or_else(|| at(format!("`{name}` has an invalid size field")))?;
    Ok(TarEntry { name, offset: position + BLOCK as u64, size })
}

/// An octal number field: optional leading spaces, at least one digit, then
/// only NUL or space. `None` for anything else (base-256 included) or an
/// overflow.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let start = field.iter().position(|&b| b != b' ')?;
    let digits = field[start..].iter().take_while(|b| (b'0'..=b'7').contains(b)).count();
    if digits == 0 || field[start + digits..].iter().any(|&b| b != 0 && b != b' ') {
        return None;
    }
    field[start..start + digits].iter().try_fold(0u64, |n, &d| n.checked_mul(8)?.checked_add(u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in files {
            out.extend_from_slice(&header(name, data.len() as u64));
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0, padding(data.len() as u64)));
        }
        out.extend_from_slice(&END);
        out
    }

    fn read(bytes: &[u8]) -> Result<Vec<TarEntry>, String> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        read_entries(&mut file, bytes.len() as u64)
    }

    #[test]
    fn written_archives_read_back() {
        let bytes = archive(&[("index.toml", b"format = 1\n"), ("blobs/x", &[7; 1024])]);
        assert_eq!(bytes.len(), 512 + 512 + 512 + 1024 + 1024);
        let entries = read(&bytes).unwrap();
        assert_eq!(
            entries,
            [
                TarEntry { name: "index.toml".into(), offset: 512, size: 11 },
                TarEntry { name: "blobs/x".into(), offset: 1536, size: 1024 },
            ]
        );
        // GNU tar pads to 10 KiB records: trailing zeros are fine.
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 4096]);
        assert_eq!(read(&padded).unwrap(), entries);
    }

    #[test]
    fn headers_match_what_tar_writes() {
        let block = header("index.toml", 11);
        assert_eq!(&block[SIZE], b"00000000013\0");
        assert_eq!(parse_octal(&block[CHECKSUM]), Some(checksum(&block)));
        assert_eq!(parse_octal(b"   0644 \0"), Some(0o644));
        assert_eq!(parse_octal(b"\x80\0\0\0"), None);
        assert_eq!(parse_octal(b"        "), None);
        assert_eq!(parse_octal(b"7777777777777777777777777"), None, "overflow");
    }

    #[test]
    fn truncated_archives_are_refused() {
        let bytes = archive(&[("index.toml", &[b'x'; 600])]);
        for cut in [0, 100, 512, 1000, 1024 + 512, bytes.len() - 1] {
            let reason = read(&bytes[..cut]).unwrap_err();
            assert!(reason.starts_with("truncated"), "cut at {cut}: {reason}");
        }
    }

    #[test]
    fn links_devices_and_bad_checksums_are_refused() {
        let mut bytes = archive(&[("index.toml", b"x")]);
        bytes[TYPEFLAG] = b'2';
        let sum = checksum(bytes[..BLOCK].try_into().unwrap());
        bytes[CHECKSUM].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert!(read(&bytes).unwrap_err().contains("is not a regular file (type `2`)"));

        let mut bytes = archive(&[("index.toml", b"x")]);
        bytes[0] = b'j';
        assert!(read(&bytes).unwrap_err().contains("checksum"));

        let mut bytes = archive(&[("index.toml", b"x")]);
        bytes.extend_from_slice(b"junk");
        assert!(read(&bytes).unwrap_err().contains("after the end-of-archive marker"));
    }

    #[test]
    fn a_huge_size_is_refused_without_reading() {
        let mut bytes = archive(&[("index.toml", b"x")]);
        bytes[SIZE].copy_from_slice(b"77777777777\0");
        let sum = checksum(bytes[..BLOCK].try_into().unwrap());
        bytes[CHECKSUM].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let reason = read(&bytes).unwrap_err();
        assert!(reason.contains("claims 8589934591 bytes"), "{reason}");
    }
}
