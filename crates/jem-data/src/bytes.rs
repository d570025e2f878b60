//! Byte-level helpers shared by the parsers: reading whole files, bounded
//! decompression and a bounds-checked cursor.
//!
//! The parsers never index a slice directly; they go through [`Cursor`], whose
//! every read checks the remaining length first, so malformed input turns into
//! an error instead of a panic.

use std::io::Read;
use std::path::Path;

use crate::error::{DataError, Result};

/// Upper bound on the bytes any single decompression may produce.
///
/// The largest input this crate expects is the SVHN "extra" image array
/// (~1.6 GB); 4 GiB leaves room for it while still stopping a crafted
/// "zip bomb" long before it exhausts memory.
pub const MAX_DECOMPRESSED_BYTES: u64 = 4 << 30;

/// Reads a whole file, naming the file in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// True when `bytes` starts with the gzip magic number 1f 8b.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Gunzips `bytes` if they carry the gzip magic, otherwise returns them as is.
pub fn maybe_gunzip(bytes: Vec<u8>, path: &Path, cap: u64) -> Result<Vec<u8>> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let decoder = flate2::read::MultiGzDecoder::new(bytes.as_slice());
    read_capped(decoder, path, cap, "gzip")
}

/// A reader over `bytes` that gunzips them when they carry the gzip magic.
///
/// Parsers read a header through it first and then exactly the number of
/// bytes that header implies, so a compressed file is never inflated past
/// what its own header (checked against the caller's cap) allows.
pub fn gunzip_reader(bytes: &[u8]) -> Box<dyn Read + '_> {
    if is_gzip(bytes) {
        Box::new(flate2::bufread::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    }
}

/// Reads exactly `n` bytes of `what` from `reader`. The buffer grows with
/// the data actually read (never allocated up front from `n`), so a
/// declared size larger than the data costs no memory.
pub fn read_exact_growing(
    reader: &mut dyn Read,
    n: u64,
    path: &Path,
    what: &str,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(n).read_to_end(&mut out).map_err(|e| {
        DataError::format(path, format!("corrupt stream while reading {what}: {e}"))
    })?;
    if (out.len() as u64) < n {
        return Err(DataError::format(
            path,
            format!(
                "truncated: expected {n} bytes of {what}, found {}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Reads a fixed-size header of `N` bytes from `reader`.
pub fn read_array<const N: usize>(
    reader: &mut dyn Read,
    path: &Path,
    what: &str,
) -> Result<[u8; N]> {
    let bytes = read_exact_growing(reader, N as u64, path, what)?;
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// Fails when `reader` has anything left (reads at most one byte to tell).
pub fn expect_end(reader: &mut dyn Read, path: &Path, offset: u64) -> Result<()> {
    let mut one = [0u8; 1];
    loop {
        return match reader.read(&mut one) {
            Ok(0) => Ok(()),
            Ok(_) => Err(DataError::format(
                path,
                format!("unexpected trailing bytes after offset {offset}"),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Err(DataError::format(
                path,
                format!("corrupt stream after offset {offset}: {e}"),
            )),
        };
    }
}

/// Reads a decoder to its end but refuses to produce more than `cap` bytes.
/// The output grows with the data actually decoded, never with a size
/// declared in the input.
fn read_capped(reader: impl Read, path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DataError::format(path, format!("corrupt {what} stream: {e}")))?;
    if out.len() as u64 > cap {
        return Err(DataError::format(
            path,
            format!("{what} stream decompresses to more than {cap} bytes; refusing"),
        ));
    }
    Ok(out)
}

/// Byte order of multi-byte numbers in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

/// A bounds-checked reader over a byte slice.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8], path: &'a Path) -> Self {
        Cursor {
            bytes,
            pos: 0,
            path,
        }
    }

    /// The file the bytes came from (for error messages).
    pub fn path(&self) -> &'a Path {
        self.path
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes the next `n` bytes; `what` describes them for the error message.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = self.bytes.get(self.pos..end).unwrap_or_default();
                self.pos = end;
                Ok(out)
            }
            None => Err(DataError::format(
                self.path,
                format!(
                    "truncated: expected {n} bytes of {what} at offset {}, found {}",
                    self.pos,
                    self.remaining()
                ),
            )),
        }
    }

    /// Skips `n` bytes, clamping at the end (used for alignment padding,
    /// which a file may legitimately omit after its last element).
    pub fn skip_padding(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.bytes.len());
    }

    pub fn u32(&mut self, endian: Endian, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        let arr = [b[0], b[1], b[2], b[3]];
        Ok(match endian {
            Endian::Little => u32::from_le_bytes(arr),
            Endian::Big => u32::from_be_bytes(arr),
        })
    }

    pub fn u16(&mut self, endian: Endian, what: &str) -> Result<u16> {
        let b = self.take(2, what)?;
        let arr = [b[0], b[1]];
        Ok(match endian {
            Endian::Little => u16::from_le_bytes(arr),
            Endian::Big => u16::from_be_bytes(arr),
        })
    }
}

/// Gzips `bytes` (for tests that write `.gz` fixtures).
#[cfg(test)]
pub fn tests_gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}
