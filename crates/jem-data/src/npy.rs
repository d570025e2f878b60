//! NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
//!
//! Layout: the magic `\x93NUMPY`, a major and minor version byte, the header
//! length (u16 little-endian in 1.0, u32 in 2.0/3.0), then the header — a
//! Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with
//! spaces and ended by a newline — and finally the raw element bytes.
//!
//! [`parse_npy`] needs no libtorch; [`NpyArray::to_tensor`] converts.
//! Fortran-ordered arrays are reordered to C order on reading.

use std::path::Path;

use tch::{Kind, Tensor};

use crate::bytes::{read_file, Cursor, Endian};
use crate::error::{DataError, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The elements of an array, in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl NpyData {
    pub fn len(&self) -> usize {
        match self {
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
            NpyData::U8(v) => v.len(),
            NpyData::I8(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed `.npy` array: its shape and its elements in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

impl NpyArray {
    /// Converts to a CPU tensor of the same shape and element type.
    pub fn to_tensor(&self) -> Result<Tensor> {
        let shape: Vec<i64> = self.shape.iter().map(|&d| d as i64).collect();
        let flat = match &self.data {
            NpyData::F32(v) => Tensor::f_from_slice(v)?,
            NpyData::F64(v) => Tensor::f_from_slice(v)?,
            NpyData::U8(v) => Tensor::f_from_slice(v)?,
            NpyData::I8(v) => Tensor::f_from_slice(v)?,
            NpyData::I32(v) => Tensor::f_from_slice(v)?,
            NpyData::I64(v) => Tensor::f_from_slice(v)?,
        };
        Ok(flat.f_reshape(shape.as_slice())?)
    }

    /// The elements as f64 (handy for metric inputs of any dtype).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            NpyData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::F64(v) => v.clone(),
            NpyData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
}

/// A value in the header dict.
#[derive(Debug, Clone, PartialEq)]
enum HeaderValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// A tiny parser for the Python dict literal in the header: string keys,
/// values that are strings, `True`/`False` or tuples of integers.
struct HeaderParser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl HeaderParser<'_> {
    fn skip_ws(&mut self) {
        while self.chars.next_if(|c| c.is_whitespace()).is_some() {}
    }

    fn expect(&mut self, want: char) -> std::result::Result<(), String> {
        self.skip_ws();
        match self.chars.next() {
            Some(c) if c == want => Ok(()),
            Some(c) => Err(format!("expected `{want}`, found `{c}`")),
            None => Err(format!("expected `{want}`, found end of header")),
        }
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        self.skip_ws();
        let quote = match self.chars.next() {
            Some(q @ ('\'' | '"')) => q,
            other => return Err(format!("expected a quoted string, found {other:?}")),
        };
        let mut s = String::new();
        loop {
            match self.chars.next() {
                Some(c) if c == quote => return Ok(s),
                Some(c) => s.push(c),
                None => return Err("unterminated string".into()),
            }
        }
    }

    fn value(&mut self) -> std::result::Result<HeaderValue, String> {
        self.skip_ws();
        match self.chars.peek() {
            Some('\'' | '"') => Ok(HeaderValue::Str(self.string()?)),
            Some('(') => {
                self.chars.next();
                let mut dims = Vec::new();
                loop {
                    self.skip_ws();
                    match self.chars.peek() {
                        Some(')') => {
                            self.chars.next();
                            return Ok(HeaderValue::Tuple(dims));
                        }
                        Some(',') if !dims.is_empty() => {
                            self.chars.next();
                        }
                        Some(c) if c.is_ascii_digit() => {
                            let mut digits = String::new();
                            while let Some(d) = self.chars.next_if(|c| c.is_ascii_digit()) {
                                digits.push(d);
                            }
                            // Python 2 wrote longs as `3L`.
                            self.chars.next_if(|&c| c == 'L');
                            let v = digits
                                .parse::<usize>()
                                .map_err(|_| format!("shape entry {digits} is too large"))?;
                            dims.push(v);
                        }
                        other => return Err(format!("unexpected {other:?} in shape tuple")),
                    }
                }
            }
            _ => {
                let mut word = String::new();
                while let Some(c) = self.chars.next_if(|c| c.is_ascii_alphabetic()) {
                    word.push(c);
                }
                match word.as_str() {
                    "True" => Ok(HeaderValue::Bool(true)),
                    "False" => Ok(HeaderValue::Bool(false)),
                    _ => Err(format!("unsupported header value `{word}`")),
                }
            }
        }
    }

    fn dict(&mut self) -> std::result::Result<Vec<(String, HeaderValue)>, String> {
        self.expect('{')?;
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            if self.chars.next_if_eq(&'}').is_some() {
                break;
            }
            let key = self.string()?;
            self.expect(':')?;
            let value = self.value()?;
            entries.push((key, value));
            self.skip_ws();
            match self.chars.next() {
                Some(',') => {}
                Some('}') => break,
                other => return Err(format!("expected `,` or `}}`, found {other:?}")),
            }
        }
        self.skip_ws();
        match self.chars.next() {
            None => Ok(entries),
            Some(c) => Err(format!("unexpected `{c}` after the header dict")),
        }
    }
}

/// Element types this reader understands.
#[derive(Debug, Clone, Copy)]
enum Dtype {
    F32,
    F64,
    U8,
    I8,
    I32,
    I64,
}

impl Dtype {
    fn parse(descr: &str) -> std::result::Result<Dtype, String> {
        let mut chars = descr.chars();
        let order = chars.next();
        let code = chars.as_str();
        let one_byte = matches!(code, "u1" | "i1");
        match order {
            Some('<' | '=') => {}
            Some('|' | '>') if one_byte => {}
            Some('>') => return Err(format!("big-endian dtype '{descr}' is not supported")),
            _ => return Err(format!("unsupported dtype '{descr}'")),
        }
        Ok(match code {
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            "u1" => Dtype::U8,
            "i1" => Dtype::I8,
            "i4" => Dtype::I32,
            "i8" => Dtype::I64,
            _ => {
                return Err(format!(
                    "unsupported dtype '{descr}' (supported: <f4 <f8 |u1 |i1 <i4 <i8)"
                ))
            }
        })
    }

    fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 => 1,
            Dtype::I32 | Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }
}

/// Reorders column-major elements of `shape` into row-major order.
fn fortran_to_c<T: Copy>(data: Vec<T>, shape: &[usize]) -> Vec<T> {
    if shape.len() < 2 || data.is_empty() {
        return data;
    }
    // Fortran stride of each axis: product of the axes before it.
    let mut strides = Vec::with_capacity(shape.len());
    let mut acc = 1usize;
    for &d in shape {
        strides.push(acc);
        acc = acc.saturating_mul(d);
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(data.len());
    for _ in 0..data.len() {
        let src: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        if let Some(&v) = data.get(src) {
            out.push(v);
        }
        // Advance the C-order multi-index (last axis fastest).
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// Parses the bytes of a `.npy` file; `path` is used in error messages.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let mut cur = Cursor::new(bytes, path);
    if cur.take(MAGIC.len(), "npy magic")? != MAGIC {
        return Err(DataError::format(
            path,
            "not a .npy file: missing \\x93NUMPY magic",
        ));
    }
    let version = cur.take(2, "npy version")?;
    let header_len = match version {
        [1, 0] => cur.u16(Endian::Little, "header length")? as usize,
        [2, 0] | [3, 0] => cur.u32(Endian::Little, "header length")? as usize,
        other => {
            return Err(DataError::format(
                path,
                format!("unsupported .npy version {other:?} (supported: 1.0, 2.0, 3.0)"),
            ))
        }
    };
    let header = cur.take(header_len, "npy header")?;
    let header = std::str::from_utf8(header)
        .map_err(|_| DataError::format(path, "npy header is not UTF-8"))?;
    let entries = HeaderParser {
        chars: header.chars().peekable(),
    }
    .dict()
    .map_err(|e| DataError::format(path, format!("npy header {header:?}: {e}")))?;

    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let missing = |key: &str| DataError::format(path, format!("npy header lacks a valid '{key}'"));
    let Some(HeaderValue::Str(descr)) = get("descr") else {
        return Err(missing("descr"));
    };
    let Some(HeaderValue::Bool(fortran_order)) = get("fortran_order") else {
        return Err(missing("fortran_order"));
    };
    let Some(HeaderValue::Tuple(shape)) = get("shape") else {
        return Err(missing("shape"));
    };
    let dtype = Dtype::parse(descr).map_err(|e| DataError::format(path, e))?;

    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|c| c.checked_mul(dtype.size()).is_some())
        .ok_or_else(|| DataError::format(path, format!("shape {shape:?} overflows")))?;
    let needed = count * dtype.size();
    if cur.remaining() != needed {
        return Err(DataError::format(
            path,
            format!(
                "shape {shape:?} of '{descr}' needs {needed} data bytes, found {}",
                cur.remaining()
            ),
        ));
    }
    let raw = cur.take(needed, "npy data")?;

    macro_rules! decode {
        ($t:ty, $n:expr) => {{
            let v: Vec<$t> = raw
                .chunks_exact($n)
                .map(|c| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    <$t>::from_le_bytes(a)
                })
                .collect();
            if *fortran_order {
                fortran_to_c(v, shape)
            } else {
                v
            }
        }};
    }
    let data = match dtype {
        Dtype::F32 => NpyData::F32(decode!(f32, 4)),
        Dtype::F64 => NpyData::F64(decode!(f64, 8)),
        Dtype::U8 => NpyData::U8(decode!(u8, 1)),
        Dtype::I8 => NpyData::I8(decode!(i8, 1)),
        Dtype::I32 => NpyData::I32(decode!(i32, 4)),
        Dtype::I64 => NpyData::I64(decode!(i64, 8)),
    };
    Ok(NpyArray {
        shape: shape.clone(),
        data,
    })
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    parse_npy(&read_file(path)?, path)
}

/// Element types [`write_npy`] can write.
pub trait NpyElement: Copy {
    /// The dtype descriptor, e.g. `<f4`.
    const DESCR: &'static str;
    fn write_le(self, out: &mut Vec<u8>);
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for f64 {
    const DESCR: &'static str = "<f8";
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for i64 {
    const DESCR: &'static str = "<i8";
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for u8 {
    const DESCR: &'static str = "|u1";
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

/// Encodes a C-order array as `.npy` version 1.0 bytes (header padded so
/// the data starts at a multiple of 64, as NumPy does).
pub fn encode_npy<T: NpyElement>(shape: &[usize], data: &[T]) -> Result<Vec<u8>> {
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(data.len()) {
        return Err(DataError::InvalidArgument(format!(
            "shape {shape:?} does not hold {} elements",
            data.len()
        )));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        T::DESCR
    );
    // magic (6) + version (2) + length (2) + header + '\n' ≡ 0 (mod 64)
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| {
        DataError::InvalidArgument(format!("shape {shape:?} has too many dimensions"))
    })?;
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + data.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &x in data {
        x.write_le(&mut out);
    }
    Ok(out)
}

/// Writes a C-order array to a `.npy` file.
pub fn write_npy<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let bytes = encode_npy(shape, data)?;
    std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))
}

/// Writes a tensor to a `.npy` file: f32, f64 and i64 tensors keep their
/// type, uint8 stays `|u1`, other kinds are rejected.
pub fn write_tensor_npy(path: &Path, tensor: &Tensor) -> Result<()> {
    let t = tensor.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
    let shape: Vec<usize> = t.size().iter().map(|&d| d.max(0) as usize).collect();
    let flat = t.f_flatten(0, -1)?;
    match t.kind() {
        Kind::Float => write_npy(path, &shape, &Vec::<f32>::try_from(&flat)?),
        Kind::Double => write_npy(path, &shape, &Vec::<f64>::try_from(&flat)?),
        Kind::Int64 => write_npy(path, &shape, &Vec::<i64>::try_from(&flat)?),
        Kind::Uint8 => write_npy(path, &shape, &Vec::<u8>::try_from(&flat)?),
        other => Err(DataError::InvalidArgument(format!(
            "cannot write a {other:?} tensor as .npy (use f32, f64, i64 or u8)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with_header(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version, 0]);
        if version == 1 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn round_trips_all_written_types() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy(&p, &[2, 3], &[1.5f32, -2.0, 3.25, 0.0, 1e-3, 7.0]).unwrap();
        let a = read_npy(&p).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, NpyData::F32(vec![1.5, -2.0, 3.25, 0.0, 1e-3, 7.0]));
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(
            bytes.len() % 64,
            24,
            "header aligned to 64, then 24 data bytes"
        );
        let t = a.to_tensor().unwrap();
        assert_eq!(t.size(), vec![2, 3]);
        assert_eq!(t.double_value(&[1, 0]), 0.0);
        assert_eq!(t.double_value(&[0, 2]), 3.25);

        write_npy(&p, &[3], &[1.0f64, 2.0, 3.0]).unwrap();
        assert_eq!(
            read_npy(&p).unwrap().data,
            NpyData::F64(vec![1.0, 2.0, 3.0])
        );
        write_npy(&p, &[], &[42i64]).unwrap();
        let scalar = read_npy(&p).unwrap();
        assert_eq!(
            (scalar.shape.len(), scalar.data),
            (0, NpyData::I64(vec![42]))
        );

        let t = Tensor::from_slice(&[1i64, 2, 3, 4]).reshape([2, 2]);
        write_tensor_npy(&p, &t).unwrap();
        let back = read_npy(&p).unwrap();
        assert_eq!(
            (back.shape, back.data),
            (vec![2, 2], NpyData::I64(vec![1, 2, 3, 4]))
        );
    }

    #[test]
    fn reads_numpy_written_headers_versions_and_fortran_order() {
        // Exactly what numpy 1.x writes for np.arange(6, dtype='<i4').reshape(2, 3).
        let mut h = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }".to_string();
        h.push_str(&" ".repeat(128 - 10 - h.len() - 1));
        h.push('\n');
        let data: Vec<u8> = (0..6i32).flat_map(|v| v.to_le_bytes()).collect();
        let a = parse_npy(&with_header(1, &h, &data), Path::new("x")).unwrap();
        assert_eq!(a.data, NpyData::I32(vec![0, 1, 2, 3, 4, 5]));
        let v2 = parse_npy(&with_header(2, &h, &data), Path::new("x")).unwrap();
        assert_eq!(v2, a);
        assert!(parse_npy(&with_header(3, &h, &data), Path::new("x")).is_ok());

        // Column-major [[0, 1, 2], [3, 4, 5]] is stored 0 3 1 4 2 5.
        let f = "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }\n";
        let a = parse_npy(&with_header(1, f, &[0, 3, 1, 4, 2, 5]), Path::new("x")).unwrap();
        assert_eq!(a.data, NpyData::U8(vec![0, 1, 2, 3, 4, 5]));
        let f3 = "{\"descr\": \"<f8\", \"fortran_order\": True, \"shape\": (2, 1, 2)}\n";
        let d: Vec<u8> = [0.0f64, 2.0, 1.0, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse_npy(&with_header(1, f3, &d), Path::new("x")).unwrap();
        assert_eq!(a.data, NpyData::F64(vec![0.0, 1.0, 2.0, 3.0]));
        assert_eq!(a.to_f64_vec(), vec![0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn errors_name_file_and_problem() {
        let p = Path::new("/m/scores.npy");
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000), }\n";
        let e = parse_npy(&with_header(1, h, &[0; 8]), p)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/m/scores.npy: shape [1000000000, 1000] of '<f4' needs 4000000000000 data bytes, found 8"
        );
        let h = "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n";
        let e = parse_npy(&with_header(1, h, &[0; 4]), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("big-endian dtype '>f4'"), "{e}");
        let h = "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }\n";
        assert!(parse_npy(&with_header(1, h, &[0; 16]), p).is_err());
        let h = "{'descr': '<f4', 'shape': (1,), }\n";
        let e = parse_npy(&with_header(1, h, &[0; 4]), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lacks a valid 'fortran_order'"), "{e}");
        assert!(encode_npy(&[2, 2], &[1.0f32]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_npy(&bytes, Path::new("r"));
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = parse_npy(&with_magic, Path::new("r"));
        }

        #[test]
        fn mutated_files_never_panic_and_valid_results_are_consistent(
            cut in 0usize..40,
            flips in proptest::collection::vec((0usize..100, any::<u8>()), 0..4),
        ) {
            let mut f = encode_npy(&[2, 3], &[1i64, 2, 3, 4, 5, 6]).unwrap();
            for &(i, b) in &flips {
                if let Some(x) = f.get_mut(i) { *x = b; }
            }
            f.truncate(f.len().saturating_sub(cut));
            if let Ok(a) = parse_npy(&f, Path::new("m")) {
                prop_assert_eq!(a.data.len(), a.shape.iter().product::<usize>());
            }
        }

        #[test]
        fn fortran_reorder_matches_definition(rows in 1usize..5, cols in 1usize..5) {
            let c_order: Vec<usize> = (0..rows * cols).collect();
            // Column-major storage of the same matrix.
            let mut f_order = Vec::new();
            for c in 0..cols {
                for r in 0..rows {
                    f_order.push(r * cols + c);
                }
            }
            prop_assert_eq!(fortran_to_c(f_order, &[rows, cols]), c_order);
        }
    }
}
