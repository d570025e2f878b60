//! A small reader for MATLAB level-5 MAT-files (`save -v5`/`-v7`), enough
//! for the real numeric arrays SVHN ships.
//!
//! Format summary (MATLAB "MAT-File Format" document):
//! * a 128-byte header: 116 bytes of text, 8 bytes subsystem offset, a u16
//!   version (0x0100) and the endian indicator `IM` (file is little-endian)
//!   or `MI` (big-endian) as it appears in the file;
//! * then data elements, each an 8-byte tag (u32 type, u32 byte count) and
//!   its data padded to 8 bytes — or, when the upper 16 bits of the first
//!   tag word are non-zero, a "small data element" packing type (low 16
//!   bits), byte count (high 16 bits) and up to 4 data bytes in 8 bytes;
//! * `miCOMPRESSED` (15) elements hold a zlib stream that inflates to
//!   further elements; `miMATRIX` (14) elements hold, in order, array flags,
//!   dimensions, the array name and the real part (then, for complex
//!   arrays, the imaginary part).
//!
//! A numeric array's storage type may be narrower than its class: MATLAB
//! stores a `double` array whose values fit in a byte as `miUINT8`, which
//! is why [`MatArray`] keeps the class and the stored values separately.

use std::path::Path;

use std::io::Read;

pub use crate::bytes::Endian;

use crate::bytes::{read_array, read_exact_growing, read_file, Cursor, MAX_DECOMPRESSED_BYTES};
use crate::error::{DataError, Result};

// Data element types.
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// Bit of the array-flags word marking a complex array.
const FLAG_COMPLEX: u32 = 0x0800;

/// MATLAB array classes (`mxCLASS` codes) of numeric arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatClass {
    /// `double` (mxDOUBLE_CLASS).
    Double,
    /// `single`.
    Single,
    /// `int8`.
    Int8,
    /// `uint8`.
    Uint8,
    /// `int16`.
    Int16,
    /// `uint16`.
    Uint16,
    /// `int32`.
    Int32,
    /// `uint32`.
    Uint32,
    /// `int64`.
    Int64,
    /// `uint64`.
    Uint64,
}

impl MatClass {
    /// Maps an `mxCLASS` code; `None` for cells, structs, chars, sparse, ...
    fn from_code(code: u32) -> Option<MatClass> {
        Some(match code {
            6 => MatClass::Double,
            7 => MatClass::Single,
            8 => MatClass::Int8,
            9 => MatClass::Uint8,
            10 => MatClass::Int16,
            11 => MatClass::Uint16,
            12 => MatClass::Int32,
            13 => MatClass::Uint32,
            14 => MatClass::Int64,
            15 => MatClass::Uint64,
            _ => return None,
        })
    }
}

/// The values of an array's real part, in the type they were stored as.
#[derive(Debug, Clone, PartialEq)]
pub enum MatData {
    /// Stored as miINT8.
    I8(Vec<i8>),
    /// Stored as miUINT8.
    U8(Vec<u8>),
    /// Stored as miINT16.
    I16(Vec<i16>),
    /// Stored as miUINT16.
    U16(Vec<u16>),
    /// Stored as miINT32.
    I32(Vec<i32>),
    /// Stored as miUINT32.
    U32(Vec<u32>),
    /// Stored as miINT64.
    I64(Vec<i64>),
    /// Stored as miUINT64.
    U64(Vec<u64>),
    /// Stored as miSINGLE.
    F32(Vec<f32>),
    /// Stored as miDOUBLE.
    F64(Vec<f64>),
}

impl MatData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            MatData::I8(v) => v.len(),
            MatData::U8(v) => v.len(),
            MatData::I16(v) => v.len(),
            MatData::U16(v) => v.len(),
            MatData::I32(v) => v.len(),
            MatData::U32(v) => v.len(),
            MatData::I64(v) => v.len(),
            MatData::U64(v) => v.len(),
            MatData::F32(v) => v.len(),
            MatData::F64(v) => v.len(),
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as an f64 (exact for every type but 64-bit integers
    /// beyond 2^53), or `None` when out of range.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        match self {
            MatData::I8(v) => v.get(i).map(|&x| f64::from(x)),
            MatData::U8(v) => v.get(i).map(|&x| f64::from(x)),
            MatData::I16(v) => v.get(i).map(|&x| f64::from(x)),
            MatData::U16(v) => v.get(i).map(|&x| f64::from(x)),
            MatData::I32(v) => v.get(i).map(|&x| f64::from(x)),
            MatData::U32(v) => v.get(i).map(|&x| f64::from(x)),
            MatData::I64(v) => v.get(i).map(|&x| x as f64),
            MatData::U64(v) => v.get(i).map(|&x| x as f64),
            MatData::F32(v) => v.get(i).map(|&x| f64::from(x)),
            MatData::F64(v) => v.get(i).copied(),
        }
    }
}

/// One numeric variable of a MAT-file. `dims` are MATLAB's dimensions; the
/// values are in MATLAB's column-major order (first index fastest).
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// The variable name.
    pub name: String,
    /// Its MATLAB class.
    pub class: MatClass,
    /// MATLAB dimensions (first index fastest).
    pub dims: Vec<usize>,
    /// The real part, column-major.
    pub data: MatData,
}

/// Which variables a read keeps, and how much memory their data may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatLimits<'a> {
    /// Names of the variables to keep; every other variable is skipped
    /// after its name is read (a compressed one is not inflated any
    /// further). `None` keeps every real numeric variable.
    pub keep: Option<&'a [&'a str]>,
    /// Upper bound on the data bytes of all kept variables together. Every
    /// size is checked against it before the data is read, and what is
    /// inflated from `miCOMPRESSED` elements is the kept data plus the
    /// small headers, so this also bounds the total inflated size.
    pub max_data_bytes: u64,
}

impl Default for MatLimits<'_> {
    fn default() -> Self {
        MatLimits {
            keep: None,
            max_data_bytes: MAX_DECOMPRESSED_BYTES,
        }
    }
}

impl MatLimits<'_> {
    fn keeps(&self, name: &str) -> bool {
        self.keep.is_none_or(|names| names.contains(&name))
    }
}

/// Most dimensions a variable may have (MATLAB arrays in practice have few).
const MAX_DIMS: usize = 32;
/// Longest variable name accepted (MATLAB's own limit is 63 characters).
const MAX_NAME: usize = 255;

/// Reads a MAT-file and returns its real, numeric variables (other kinds
/// of variables — cells, structs, strings, sparse or complex arrays — are
/// skipped).
pub fn read_mat(path: &Path) -> Result<Vec<MatArray>> {
    parse_mat(&read_file(path)?, path)
}

/// Parses the bytes of a level-5 MAT-file with the default limits (every
/// numeric variable, [`MAX_DECOMPRESSED_BYTES`] of data); `path` is used
/// in error messages.
pub fn parse_mat(bytes: &[u8], path: &Path) -> Result<Vec<MatArray>> {
    parse_mat_with(bytes, path, &MatLimits::default())
}

/// Parses the bytes of a level-5 MAT-file, keeping only the variables
/// `limits` names and refusing data beyond its byte budget.
pub fn parse_mat_with(bytes: &[u8], path: &Path, limits: &MatLimits<'_>) -> Result<Vec<MatArray>> {
    let mut cur = Cursor::new(bytes, path);
    let header = cur.take(128, "MAT-file header")?;
    let text = header.get(..116).unwrap_or_default();
    if text.starts_with(b"MATLAB 7.3") {
        return Err(DataError::format(
            path,
            "MAT-file v7.3 (HDF5) is not supported; re-save it with `save -v7`",
        ));
    }
    let endian = match header.get(126..128) {
        Some(b"IM") => Endian::Little,
        Some(b"MI") => Endian::Big,
        _ => {
            return Err(DataError::format(
                path,
                "not a level-5 MAT-file: endian indicator at offset 126 is neither IM nor MI",
            ))
        }
    };
    let mut version_cur = Cursor::new(header.get(124..126).unwrap_or_default(), path);
    let version = version_cur.u16(endian, "version")?;
    if version != 0x0100 {
        return Err(DataError::format(
            path,
            format!("unsupported MAT-file version 0x{version:04x}, expected 0x0100"),
        ));
    }
    let mut reader = MatReader {
        endian,
        path,
        limits,
        budget: limits.max_data_bytes,
        arrays: Vec::new(),
    };
    while !cur.is_empty() {
        let (ty, data) = read_element(&mut cur, endian)?;
        match ty {
            MI_COMPRESSED => {
                // A compressed element holds one element (MATLAB and SciPy
                // write one variable per compressed element). It is inflated
                // only as far as that element's header, plus the data of a
                // variable that is kept.
                let mut z = flate2::bufread::ZlibDecoder::new(data);
                let Some((inner_ty, inner_len)) = reader.stream_tag(&mut z)? else {
                    continue;
                };
                if inner_ty == MI_COMPRESSED {
                    return Err(DataError::format(path, "nested miCOMPRESSED element"));
                }
                if inner_ty == MI_MATRIX {
                    reader.matrix(&mut z.take(u64::from(inner_len)))?;
                }
            }
            MI_MATRIX if !data.is_empty() => {
                let mut slice = data;
                reader.matrix(&mut slice)?;
            }
            // Other top-level element types carry nothing we read; MATLAB
            // writes empty miMATRIX elements for empty cells.
            _ => {}
        }
    }
    Ok(reader.arrays)
}

/// Reads one data element's tag and returns its type and data, leaving the
/// cursor after the element's padding.
fn read_element<'a>(cur: &mut Cursor<'a>, endian: Endian) -> Result<(u32, &'a [u8])> {
    let first = cur.u32(endian, "data element tag")?;
    let small_len = (first >> 16) as usize;
    if small_len != 0 {
        // Small data element: type, length and data share 8 bytes.
        let data = cur.take(4, "small data element")?;
        let data = data.get(..small_len).ok_or_else(|| {
            DataError::format(
                cur.path(),
                format!("small data element declares {small_len} bytes, at most 4 fit"),
            )
        })?;
        return Ok((first & 0xffff, data));
    }
    let len = cur.u32(endian, "data element size")? as usize;
    let data = cur.take(len, "data element")?;
    if first != MI_COMPRESSED {
        // Compressed elements are not padded; everything else is padded to 8.
        cur.skip_padding((8 - len % 8) % 8);
    }
    Ok((first, data))
}

/// The tag of an element read from a stream: a regular one (`Regular`, the
/// data follows) or a small one with its up to 4 data bytes.
enum StreamTag {
    Regular(u32, u32),
    Small(u32, Vec<u8>),
}

/// The state of one parse: file facts, limits and what was kept so far.
struct MatReader<'a, 'l> {
    endian: Endian,
    path: &'a Path,
    limits: &'a MatLimits<'l>,
    /// Data bytes the kept variables may still take.
    budget: u64,
    arrays: Vec<MatArray>,
}

impl MatReader<'_, '_> {
    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let mut w = [0u8; 4];
        if let Some(src) = b.get(at..at + 4) {
            w.copy_from_slice(src);
        }
        match self.endian {
            Endian::Little => u32::from_le_bytes(w),
            Endian::Big => u32::from_be_bytes(w),
        }
    }

    /// The 8-byte tag at the start of a stream; `None` when it is empty.
    fn stream_tag(&self, r: &mut dyn Read) -> Result<Option<(u32, u32)>> {
        let mut tag = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            match r.read(&mut tag[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(DataError::format(
                        self.path,
                        format!("corrupt zlib stream in miCOMPRESSED element: {e}"),
                    ))
                }
            }
        }
        match got {
            0 => Ok(None),
            8 => Ok(Some((self.u32_at(&tag, 0), self.u32_at(&tag, 4)))),
            _ => Err(DataError::format(
                self.path,
                "truncated: miCOMPRESSED element ends inside an element tag",
            )),
        }
    }

    /// Reads a sub-element tag (regular or small) from a stream.
    fn sub_tag(&self, r: &mut dyn Read, what: &str) -> Result<StreamTag> {
        let tag: [u8; 8] = read_array(r, self.path, what)?;
        let first = self.u32_at(&tag, 0);
        let small_len = (first >> 16) as usize;
        if small_len != 0 {
            let data = tag.get(4..4 + small_len).ok_or_else(|| {
                DataError::format(
                    self.path,
                    format!("small data element declares {small_len} bytes, at most 4 fit"),
                )
            })?;
            return Ok(StreamTag::Small(first & 0xffff, data.to_vec()));
        }
        Ok(StreamTag::Regular(first, self.u32_at(&tag, 4)))
    }

    /// Reads a small header sub-element (flags, dimensions, name) of at
    /// most `max_len` bytes, and its padding.
    fn header_element(
        &self,
        r: &mut dyn Read,
        what: &str,
        max_len: usize,
    ) -> Result<(u32, Vec<u8>)> {
        match self.sub_tag(r, what)? {
            StreamTag::Small(ty, data) => Ok((ty, data)),
            StreamTag::Regular(ty, len) => {
                let len = len as usize;
                if len > max_len {
                    return Err(DataError::format(
                        self.path,
                        format!("{what}: {len} bytes, at most {max_len} accepted"),
                    ));
                }
                let data = read_exact_growing(r, len as u64, self.path, what)?;
                skip_stream_padding(r, (8 - len % 8) % 8);
                Ok((ty, data))
            }
        }
    }

    /// Parses an `miMATRIX` element's contents from `r`, keeping the
    /// variable when it is numeric, real and named in the limits.
    fn matrix(&mut self, r: &mut dyn Read) -> Result<()> {
        let path = self.path;
        let (ty, flags) = self.header_element(r, "array flags", 8)?;
        if ty != MI_UINT32 || flags.len() != 8 {
            return Err(DataError::format(
                path,
                format!(
                    "array flags: expected an 8-byte miUINT32 element, found type {ty} of {} bytes",
                    flags.len()
                ),
            ));
        }
        let flags_word = self.u32_at(&flags, 0);
        let class_code = flags_word & 0xff;

        let (ty, dims_bytes) = self.header_element(r, "dimensions", 4 * MAX_DIMS)?;
        if ty != MI_INT32 || dims_bytes.len() % 4 != 0 || dims_bytes.len() < 8 {
            return Err(DataError::format(
                path,
                format!(
                    "dimensions: expected miINT32 with at least 2 entries, found type {ty} of {} bytes",
                    dims_bytes.len()
                ),
            ));
        }
        let mut dims = Vec::with_capacity(dims_bytes.len() / 4);
        for at in (0..dims_bytes.len()).step_by(4) {
            let d = self.u32_at(&dims_bytes, at) as i32;
            if d < 0 {
                return Err(DataError::format(path, format!("negative dimension {d}")));
            }
            dims.push(d as usize);
        }

        let (ty, name_bytes) = self.header_element(r, "array name", MAX_NAME)?;
        if ty != MI_INT8 {
            return Err(DataError::format(
                path,
                format!("array name: expected miINT8, found type {ty}"),
            ));
        }
        let name = String::from_utf8_lossy(&name_bytes).into_owned();
        if !self.limits.keeps(&name) {
            tracing::debug!(path = %path.display(), name, "skipping MAT variable not asked for");
            return Ok(());
        }
        let Some(class) = MatClass::from_code(class_code) else {
            tracing::debug!(path = %path.display(), name, class_code, "skipping non-numeric MAT variable");
            return Ok(());
        };
        if flags_word & FLAG_COMPLEX != 0 {
            tracing::debug!(path = %path.display(), name, "skipping complex MAT variable");
            return Ok(());
        }
        if self.arrays.iter().any(|a| a.name == name) {
            return Err(DataError::format(
                path,
                format!("variable `{name}` appears twice"),
            ));
        }

        let count = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                DataError::format(
                    path,
                    format!("variable `{name}`: dimensions {dims:?} overflow"),
                )
            })?;
        let unsupported = |ty: u32| {
            DataError::format(
                path,
                format!("variable `{name}`: unsupported real-part element type {ty}"),
            )
        };
        let (ty, real) = match self.sub_tag(r, "real part")? {
            StreamTag::Small(ty, data) => (ty, data),
            StreamTag::Regular(ty, len) => {
                let size = element_size(ty).ok_or_else(|| unsupported(ty))?;
                let len = u64::from(len);
                if len != count as u64 * size as u64 {
                    return Err(DataError::format(
                        path,
                        format!(
                            "variable `{name}`: dimensions {dims:?} need {count} values, the real part holds {} ({len} bytes)",
                            len / size as u64
                        ),
                    ));
                }
                if len > self.budget {
                    return Err(DataError::format(
                        path,
                        format!(
                            "variable `{name}`: {len} data bytes exceed what this file may hold ({} bytes in all, {} left)",
                            self.limits.max_data_bytes, self.budget
                        ),
                    ));
                }
                let data = read_exact_growing(r, len, path, "variable data")?;
                self.budget -= len;
                (ty, data)
            }
        };
        let data = decode_numeric(ty, real, self.endian).ok_or_else(|| unsupported(ty))?;
        if data.len() != count {
            return Err(DataError::format(
                path,
                format!(
                    "variable `{name}`: dimensions {dims:?} need {count} values, the real part holds {}",
                    data.len(),
                ),
            ));
        }
        self.arrays.push(MatArray {
            name,
            class,
            dims,
            data,
        });
        Ok(())
    }
}

/// Reads and drops up to `n` padding bytes (a stream may end without them).
fn skip_stream_padding(r: &mut dyn Read, n: usize) {
    let mut pad = [0u8; 8];
    let _ = r.take(n as u64).read(&mut pad[..n.min(8)]);
}

/// Bytes per value of a numeric element type.
fn element_size(ty: u32) -> Option<usize> {
    Some(match ty {
        MI_INT8 | MI_UINT8 => 1,
        MI_INT16 | MI_UINT16 => 2,
        MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
        MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
        _ => return None,
    })
}

/// Decodes a numeric element; `None` for non-numeric types or a byte count
/// that is not a multiple of the element size.
fn decode_numeric(ty: u32, bytes: Vec<u8>, endian: Endian) -> Option<MatData> {
    macro_rules! decode {
        ($t:ty, $n:expr, $variant:ident) => {{
            if bytes.len() % $n != 0 {
                return None;
            }
            let v: Vec<$t> = bytes
                .chunks_exact($n)
                .map(|c| {
                    let mut arr = [0u8; $n];
                    arr.copy_from_slice(c);
                    match endian {
                        Endian::Little => <$t>::from_le_bytes(arr),
                        Endian::Big => <$t>::from_be_bytes(arr),
                    }
                })
                .collect();
            MatData::$variant(v)
        }};
    }
    Some(match ty {
        MI_INT8 => MatData::I8(bytes.iter().map(|&b| b as i8).collect()),
        MI_UINT8 => MatData::U8(bytes),
        MI_INT16 => decode!(i16, 2, I16),
        MI_UINT16 => decode!(u16, 2, U16),
        MI_INT32 => decode!(i32, 4, I32),
        MI_UINT32 => decode!(u32, 4, U32),
        MI_SINGLE => decode!(f32, 4, F32),
        MI_DOUBLE => decode!(f64, 8, F64),
        MI_INT64 => decode!(i64, 8, I64),
        MI_UINT64 => decode!(u64, 8, U64),
        _ => return None,
    })
}

pub mod write;

#[cfg(test)]
mod tests;
