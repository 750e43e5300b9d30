//! The 100-byte SQLite database header: a cheap check that a file is a whole
//! SQLite database before the expensive one (`PRAGMA integrity_check`) runs,
//! and the page size and page count that plan shows.
//!
//! Layout (big-endian), from SQLite's file-format document: bytes 0–15
//! `SQLite format 3\0`; 16–17 page size (a power of two from 512 to 32768, or
//! 1 for 65536); 18–19 write and read versions (1 rollback journal, 2 WAL);
//! 21–23 payload fractions, always 64, 32, 32; 24–27 file change counter;
//! 28–31 size in pages, valid only when non-zero and the change counter
//! equals the "version valid for" number at 92–95; 72–91 reserved, zero.

#![forbid(unsafe_code)]

/// How many bytes the header has; read at least this much before [`parse`].
pub const LEN: usize = 100;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What the header says about the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub page_size: u32,
    /// Whether the database was last written in WAL mode (versions 2/2).
    pub wal_mode: bool,
    /// The page count the header records, when SQLite would trust it.
    pub recorded_pages: Option<u32>,
}

impl Header {
    /// The number of pages in a file of `size` bytes: the recorded count
    /// when valid, else what the size implies (as SQLite itself does).
    pub fn page_count(&self, size: u64) -> u64 {
        match self.recorded_pages {
            Some(n) => u64::from(n),
            None => size / u64::from(self.page_size),
        }
    }

    /// Checks that a file of `size` bytes holds every page the header
    /// promises, in whole pages: a truncated copy fails here.
    pub fn check_size(&self, size: u64) -> Result<(), String> {
        let page = u64::from(self.page_size);
        if !size.is_multiple_of(page) {
            return Err(format!(
                "is {size} bytes, not a whole number of {page}-byte pages: it is truncated or damaged"
            ));
        }
        if let Some(n) = self.recorded_pages {
            let needed = u64::from(n) * page;
            if size < needed {
                return Err(format!(
                    "is truncated: its header records {n} pages ({needed} bytes) but the file has {size} bytes"
                ));
            }
        }
        Ok(())
    }
}

/// Parses the first bytes of a file (`bytes` may be shorter than [`LEN`] when
/// the file is). The error completes a sentence that starts with the file's
/// name: "`/b/app.db` is empty, not a SQLite database".
pub fn parse(bytes: &[u8]) -> Result<Header, String> {
    if bytes.is_empty() {
        return Err("is empty (0 bytes), not a SQLite database".to_owned());
    }
    if bytes.len() < LEN || !bytes.starts_with(MAGIC) {
        if !bytes.starts_with(&MAGIC[..bytes.len().min(MAGIC.len())]) {
            return Err("is not a SQLite database: it does not start with `SQLite format 3`".to_owned());
        }
        return Err(format!("is {} bytes, too short to be a SQLite database (the header alone is {LEN})", bytes.len()));
    }
    let raw_page_size = u16::from_be_bytes([bytes[16], bytes[17]]);
    let page_size = match raw_page_size {
        1 => 65_536,
        n if (512..=32_768).contains(&n) && n.is_power_of_two() => u32::from(n),
        n => return Err(format!("has a damaged header: page size {n} is not a power of two from 512 to 65536")),
    };
    let (write_version, read_version) = (bytes[18], bytes[19]);
    if !matches!(write_version, 1 | 2) || !matches!(read_version, 1 | 2) {
        return Err(format!(
            "has a damaged header or an unknown format: file format versions {write_version}/{read_version} (expected 1 or 2)"
        ));
    }
    if bytes[21..24] != [64, 32, 32] {
        return Err(format!(
            "has a damaged header: payload fractions {}/{}/{} (always 64/32/32)",
            bytes[21], bytes[22], bytes[23]
        ));
    }
    if bytes[72..92].iter().any(|&b| b != 0) {
        return Err("has a damaged header: its reserved bytes 72 to 91 are not zero".to_owned());
    }
    let be32 = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (change_counter, pages, valid_for) = (be32(24), be32(28), be32(92));
    let recorded_pages = (pages != 0 && change_counter == valid_for).then_some(pages);
    Ok(Header { page_size, wal_mode: write_version == 2 && read_version == 2, recorded_pages })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid header for `pages` pages of 4096 bytes.
    pub(crate) fn header(pages: u32) -> Vec<u8> {
        let mut h = vec![0u8; LEN];
        h[..16].copy_from_slice(MAGIC);
        h[16..18].copy_from_slice(&4096u16.to_be_bytes());
        h[18] = 1;
        h[19] = 1;
        h[21..24].copy_from_slice(&[64, 32, 32]);
        h[24..28].copy_from_slice(&7u32.to_be_bytes());
        h[28..32].copy_from_slice(&pages.to_be_bytes());
        h[92..96].copy_from_slice(&7u32.to_be_bytes());
        h
    }

    #[test]
    fn a_valid_header_gives_page_size_and_count() {
        let h = parse(&header(3)).unwrap();
        assert_eq!(h, Header { page_size: 4096, wal_mode: false, recorded_pages: Some(3) });
        assert_eq!(h.page_count(3 * 4096), 3);
        assert_eq!(h.check_size(3 * 4096), Ok(()));
        assert_eq!(h.check_size(4 * 4096), Ok(()), "a file may be longer than its recorded size");
    }

    #[test]
    fn page_size_one_means_65536() {
        let mut b = header(1);
        b[16..18].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(parse(&b).unwrap().page_size, 65_536);
    }

    #[test]
    fn wal_mode_is_versions_two() {
        let mut b = header(1);
        b[18] = 2;
        b[19] = 2;
        assert!(parse(&b).unwrap().wal_mode);
    }

    #[test]
    fn a_stale_page_count_is_not_trusted() {
        let mut b = header(3);
        b[92..96].copy_from_slice(&6u32.to_be_bytes());
        let h = parse(&b).unwrap();
        assert_eq!(h.recorded_pages, None);
        assert_eq!(h.page_count(5 * 4096), 5, "falls back to the file size");
        let mut zero = header(0);
        zero[28..32].fill(0);
        assert_eq!(parse(&zero).unwrap().recorded_pages, None);
    }

    #[test]
    fn empty_short_and_foreign_files_are_refused() {
        assert_eq!(parse(b"").unwrap_err(), "is empty (0 bytes), not a SQLite database");
        assert!(parse(b"PK\x03\x04 a zip file").unwrap_err().contains("not a SQLite database"));
        assert!(parse(&[b'x'; 200]).unwrap_err().contains("not a SQLite database"));
        assert!(parse(&header(1)[..50]).unwrap_err().contains("is 50 bytes, too short"));
        assert!(parse(b"SQLite").unwrap_err().contains("too short"));
    }

    #[test]
    fn damaged_fields_are_refused() {
        let mut b = header(1);
        b[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert!(parse(&b).unwrap_err().contains("page size 1000"));
        let mut b = header(1);
        b[18] = 9;
        assert!(parse(&b).unwrap_err().contains("versions 9/1"));
        let mut b = header(1);
        b[22] = 33;
        assert!(parse(&b).unwrap_err().contains("payload fractions 64/33/32"));
        let mut b = header(1);
        b[80] = 1;
        assert!(parse(&b).unwrap_err().contains("reserved bytes"));
    }

    #[test]
    fn truncated_and_ragged_sizes_are_refused() {
        let h = parse(&header(4)).unwrap();
        assert!(h.check_size(2 * 4096).unwrap_err().contains("is truncated: its header records 4 pages"));
        assert!(h.check_size(4 * 4096 - 10).unwrap_err().contains("not a whole number of 4096-byte pages"));
    }
}
