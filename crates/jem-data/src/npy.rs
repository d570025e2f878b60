//! NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), read and written
//! through the [`ndarray_npy`] crate.
//!
//! Layout: the magic `\x93NUMPY`, a major and minor version byte, the header
//! length (u16 little-endian in 1.0, u32 in 2.0/3.0), then the header — a
//! Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with
//! spaces and ended by a newline — and finally the raw element bytes.
//!
//! ndarray-npy decodes the elements (either byte order, C or Fortran order).
//! Before it runs, jem checks the header against the file: ndarray-npy
//! allocates the array the header's shape declares *before* it reads any
//! data, so a 136-byte file declaring shape `(100000000,)` makes it hold
//! 400 MB and one declaring `(1000000000, 1000)` aborts the process on a
//! 4 TB allocation. The check parses the header with `py_literal` (the
//! parser ndarray-npy itself uses) and requires the data bytes to match the
//! shape exactly, so what ndarray-npy then allocates is bounded by the file.
//!
//! [`parse_npy`] needs no libtorch; [`NpyArray::to_tensor`] converts.
//! Fortran-ordered arrays come back in C order.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};
use py_literal::Value as PyValue;
use tch::{Kind, Tensor};

use crate::bytes::{read_file, Cursor, Endian};
use crate::error::{DataError, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The elements of an array, in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4` / `>f4`
    F32(Vec<f32>),
    /// `<f8` / `>f8`
    F64(Vec<f64>),
    /// `|u1`
    U8(Vec<u8>),
    /// `|i1`
    I8(Vec<i8>),
    /// `<i4` / `>i4`
    I32(Vec<i32>),
    /// `<i8` / `>i8`
    I64(Vec<i64>),
}

impl NpyData {
    /// Number of elements.
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

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed `.npy` array: its shape and its elements in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The array's shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// The elements in C order.
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

    /// The elements as an f64 [`ndarray::ArrayD`] of the array's shape (for
    /// the ndarray metric APIs).
    pub fn to_f64_array(&self) -> Result<ArrayD<f64>> {
        ArrayD::from_shape_vec(IxDyn(&self.shape), self.to_f64_vec())
            .map_err(|e| DataError::InvalidArgument(format!("shape {:?}: {e}", self.shape)))
    }
}

/// The three fields of a `.npy` header.
struct Header {
    descr: String,
    shape: Vec<usize>,
}

/// Reads the header and checks it against the file: known keys with valid
/// values, and exactly as many data bytes as the shape needs.
fn check_header(bytes: &[u8], path: &Path) -> Result<Header> {
    check_header_of(bytes, bytes.len(), path)
}

/// [`check_header`] on the first bytes of a file of `file_len` bytes.
fn check_header_of(bytes: &[u8], file_len: usize, path: &Path) -> Result<Header> {
    let mut cur = Cursor::new(bytes, path);
    if cur.take(MAGIC.len(), "npy magic")? != MAGIC {
        return Err(DataError::format(
            path,
            "not a .npy file: missing \\x93NUMPY magic",
        ));
    }
    let header_len = match cur.take(2, "npy version")? {
        [1, 0] => cur.u16(Endian::Little, "header length")? as usize,
        [2, 0] | [3, 0] => cur.u32(Endian::Little, "header length")? as usize,
        other => {
            return Err(DataError::format(
                path,
                format!("unsupported .npy version {other:?} (supported: 1.0, 2.0, 3.0)"),
            ))
        }
    };
    let header = std::str::from_utf8(cur.take(header_len, "npy header")?)
        .map_err(|_| DataError::format(path, "npy header is not UTF-8"))?;
    let dict = match header.trim_end().parse::<PyValue>() {
        Ok(PyValue::Dict(entries)) => entries,
        Ok(_) => {
            return Err(DataError::format(
                path,
                format!("npy header {header:?} is not a dict"),
            ))
        }
        Err(e) => {
            return Err(DataError::format(
                path,
                format!("npy header {header:?}: {e}"),
            ))
        }
    };
    let get = |key: &str| {
        dict.iter()
            .find(|(k, _)| matches!(k, PyValue::String(s) if s == key))
            .map(|(_, v)| v)
    };
    let missing = |key: &str| DataError::format(path, format!("npy header lacks a valid '{key}'"));
    let Some(PyValue::String(descr)) = get("descr") else {
        return Err(missing("descr"));
    };
    if !matches!(get("fortran_order"), Some(PyValue::Boolean(_))) {
        return Err(missing("fortran_order"));
    }
    let shape: Option<Vec<usize>> = match get("shape") {
        Some(PyValue::Tuple(dims)) => dims
            .iter()
            .map(|d| d.as_integer().and_then(|i| usize::try_from(i).ok()))
            .collect(),
        _ => None,
    };
    let shape = shape.ok_or_else(|| missing("shape"))?;
    let size = element_size(descr).ok_or_else(|| {
        DataError::format(
            path,
            format!("unsupported dtype '{descr}' (supported: f4, f8, i4, i8 in either byte order, |u1, |i1)"),
        )
    })?;
    let needed = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|c| c.checked_mul(size))
        .ok_or_else(|| DataError::format(path, format!("shape {shape:?} overflows")))?;
    let remaining = file_len.saturating_sub(bytes.len() - cur.remaining());
    if remaining != needed {
        return Err(DataError::format(
            path,
            format!("shape {shape:?} of '{descr}' needs {needed} data bytes, found {remaining}"),
        ));
    }
    Ok(Header {
        descr: descr.clone(),
        shape,
    })
}

/// Bytes per element of the descriptors jem reads (the spellings
/// ndarray-npy accepts for them).
fn element_size(descr: &str) -> Option<usize> {
    Some(match descr {
        "|u1" | "u1" | "B" | "|i1" | "i1" | "b" => 1,
        "<f4" | ">f4" | "<i4" | ">i4" => 4,
        "<f8" | ">f8" | "<i8" | ">i8" => 8,
        _ => return None,
    })
}

/// Decodes the (already checked) file with ndarray-npy, in C order.
fn decode<T: ReadableElement + Clone>(bytes: &[u8], path: &Path) -> Result<Vec<T>> {
    let array = ArrayD::<T>::read_npy(bytes)
        .map_err(|e| DataError::format(path, format!("cannot read .npy: {e}")))?;
    Ok(if array.is_standard_layout() {
        array.into_raw_vec_and_offset().0
    } else {
        // Fortran order: iterating visits the elements in C order.
        array.iter().cloned().collect()
    })
}

/// Parses the bytes of a `.npy` file; `path` is used in error messages.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let header = check_header(bytes, path)?;
    let data = match &header.descr[header.descr.len().saturating_sub(2)..] {
        "f4" => NpyData::F32(decode(bytes, path)?),
        "f8" => NpyData::F64(decode(bytes, path)?),
        "i4" => NpyData::I32(decode(bytes, path)?),
        "i8" => NpyData::I64(decode(bytes, path)?),
        _ if matches!(header.descr.as_str(), "|i1" | "i1" | "b") => {
            NpyData::I8(decode(bytes, path)?)
        }
        _ => NpyData::U8(decode(bytes, path)?),
    };
    Ok(NpyArray {
        shape: header.shape,
        data,
    })
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    parse_npy(&read_file(path)?, path)
}

/// The shape of a `.npy` file, read from its header alone (and checked
/// against the file's size) without reading the data.
pub fn read_npy_shape(path: &Path) -> Result<Vec<usize>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len() as usize;
    let mut prefix = Vec::new();
    // Headers are a few hundred bytes; NumPy pads them to 64 and never
    // writes more than a few KB.
    file.take(1 << 20)
        .read_to_end(&mut prefix)
        .map_err(|e| DataError::io(path, e))?;
    Ok(check_header_of(&prefix, len, path)?.shape)
}

/// Element types [`write_npy`] can write: those ndarray-npy writes
/// (`f32`, `f64`, `i8`…`i64`, `u8`…`u64`, `bool`).
pub trait NpyElement: WritableElement + Clone {}

impl<T: WritableElement + Clone> NpyElement for T {}

/// Encodes a C-order array as `.npy` bytes (version 1.0 when the header
/// fits, header padded so the data starts at a multiple of 64, as NumPy
/// does).
pub fn encode_npy<T: NpyElement>(shape: &[usize], data: &[T]) -> Result<Vec<u8>> {
    let array = ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).map_err(|_| {
        DataError::InvalidArgument(format!(
            "shape {shape:?} does not hold {} elements",
            data.len()
        ))
    })?;
    encode_array_npy(&array)
}

/// Encodes an ndarray array as `.npy` bytes (any layout; written C order).
pub fn encode_array_npy<T: NpyElement>(array: &ArrayD<T>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    array
        .write_npy(&mut out)
        .map_err(|e| DataError::InvalidArgument(format!("cannot encode .npy: {e}")))?;
    Ok(out)
}

/// Writes a C-order array to a `.npy` file.
pub fn write_npy<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let bytes = encode_npy(shape, data)?;
    std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))
}

/// Writes an ndarray array to a `.npy` file.
pub fn write_array_npy<T: NpyElement>(path: &Path, array: &ArrayD<T>) -> Result<()> {
    let bytes = encode_array_npy(array)?;
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
        assert_eq!(a.to_f64_array().unwrap()[[1, 2]], 7.0);

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
        let t = Tensor::from_slice(&[0u8, 255]);
        write_tensor_npy(&p, &t).unwrap();
        assert_eq!(read_npy(&p).unwrap().data, NpyData::U8(vec![0, 255]));
    }

    #[test]
    fn reads_hand_made_headers_versions_and_fortran_order() {
        // What numpy 1.x writes for np.arange(6, dtype='<i4').reshape(2, 3).
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

        // Big-endian data (rejected by the former hand-written reader).
        let h = "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n";
        let d: Vec<u8> = [1.5f32, -3.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let a = parse_npy(&with_header(1, h, &d), Path::new("x")).unwrap();
        assert_eq!(a.data, NpyData::F32(vec![1.5, -3.0]));
    }

    #[test]
    fn errors_name_file_and_problem() {
        let p = Path::new("/m/scores.npy");
        // The header is checked against the file before anything is
        // allocated from it (ndarray-npy alone would try 4 TB here).
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000), }\n";
        let e = parse_npy(&with_header(1, h, &[0; 8]), p)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/m/scores.npy: shape [1000000000, 1000] of '<f4' needs 4000000000000 data bytes, found 8"
        );
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n";
        let e = parse_npy(&with_header(1, h, &[0; 5]), p)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("needs 4 data bytes, found 5"), "{e}");
        let h = "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }\n";
        let e = parse_npy(&with_header(1, h, &[0; 16]), p)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/m/scores.npy: unsupported dtype '<c16'"),
            "{e}"
        );
        let h = "{'descr': '<f4', 'shape': (1,), }\n";
        let e = parse_npy(&with_header(1, h, &[0; 4]), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lacks a valid 'fortran_order'"), "{e}");
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n";
        let e = parse_npy(&with_header(1, h, &[0; 4]), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lacks a valid 'shape'"), "{e}");
        let e = parse_npy(b"\x93NUMPY\x04\x00", p).unwrap_err().to_string();
        assert!(e.contains("unsupported .npy version [4, 0]"), "{e}");
        let e = parse_npy(&with_header(1, "{'descr': \n", &[]), p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/m/scores.npy: npy header"), "{e}");
        assert!(encode_npy(&[2, 2], &[1.0f32]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn written_arrays_read_back(
            rows in 0usize..5,
            cols in 1usize..5,
            seed in any::<i64>(),
        ) {
            let data: Vec<i64> = (0..rows * cols).map(|i| seed.wrapping_mul(i as i64 + 1)).collect();
            let bytes = encode_npy(&[rows, cols], &data).unwrap();
            let back = parse_npy(&bytes, Path::new("w")).unwrap();
            prop_assert_eq!(back.shape, vec![rows, cols]);
            prop_assert_eq!(back.data, NpyData::I64(data));
        }
    }
}
