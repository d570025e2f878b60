//! Writes level-5 MAT-files. Used by the tests (and available to callers
//! that need a fixture) to produce files in the true format.

use super::{Endian, MI_COMPRESSED, MI_DOUBLE, MI_INT32, MI_INT8, MI_MATRIX, MI_UINT32, MI_UINT8};

/// A numeric variable to write: name, `mxCLASS` code, dimensions,
/// storage element type (`mi*` code) and the stored bytes in file order.
pub struct MatVar<'a> {
    /// Variable name.
    pub name: &'a str,
    /// `mxCLASS` code (see the `CLASS_*` constants).
    pub class_code: u32,
    /// MATLAB dimensions.
    pub dims: &'a [usize],
    /// Storage element type (`mi*` code, see the `TYPE_*` constants).
    pub data_type: u32,
    /// The stored bytes in file order.
    pub data: &'a [u8],
}

/// `mxDOUBLE_CLASS`.
pub const CLASS_DOUBLE: u32 = 6;
/// `mxUINT8_CLASS`.
pub const CLASS_UINT8: u32 = 9;
/// `miUINT8` storage.
pub const TYPE_UINT8: u32 = MI_UINT8;
/// `miDOUBLE` storage.
pub const TYPE_DOUBLE: u32 = MI_DOUBLE;

fn u32_bytes(v: u32, endian: Endian) -> [u8; 4] {
    match endian {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    }
}

/// Encodes one data element, using the small format when it fits.
pub fn element(ty: u32, data: &[u8], endian: Endian) -> Vec<u8> {
    let mut out = Vec::new();
    if data.len() <= 4 && ty != MI_MATRIX && ty != MI_COMPRESSED {
        out.extend_from_slice(&u32_bytes(((data.len() as u32) << 16) | ty, endian));
        let mut padded = [0u8; 4];
        padded[..data.len()].copy_from_slice(data);
        out.extend_from_slice(&padded);
        return out;
    }
    out.extend_from_slice(&u32_bytes(ty, endian));
    out.extend_from_slice(&u32_bytes(data.len() as u32, endian));
    out.extend_from_slice(data);
    if ty != MI_COMPRESSED {
        out.resize(out.len() + (8 - data.len() % 8) % 8, 0);
    }
    out
}

/// Encodes a variable as an `miMATRIX` element.
pub fn matrix(var: &MatVar<'_>, endian: Endian) -> Vec<u8> {
    let mut body = Vec::new();
    let mut flags = u32_bytes(var.class_code, endian).to_vec();
    flags.extend_from_slice(&[0; 4]);
    body.extend(element(MI_UINT32, &flags, endian));
    let dims: Vec<u8> = var
        .dims
        .iter()
        .flat_map(|&d| u32_bytes(d as u32, endian))
        .collect();
    body.extend(element(MI_INT32, &dims, endian));
    body.extend(element(MI_INT8, var.name.as_bytes(), endian));
    body.extend(element(var.data_type, var.data, endian));
    element(MI_MATRIX, &body, endian)
}

/// Encodes a whole file; with `compress`, each variable is wrapped in a
/// zlib `miCOMPRESSED` element as MATLAB's `-v7` does.
pub fn mat_file(vars: &[MatVar<'_>], endian: Endian, compress: bool) -> Vec<u8> {
    use std::io::Write;
    let mut out = vec![b' '; 116];
    let text = b"MATLAB 5.0 MAT-file, written by jem-data";
    out[..text.len()].copy_from_slice(text);
    out.extend_from_slice(&[0; 8]);
    match endian {
        Endian::Little => {
            out.extend_from_slice(&0x0100u16.to_le_bytes());
            out.extend_from_slice(b"IM");
        }
        Endian::Big => {
            out.extend_from_slice(&0x0100u16.to_be_bytes());
            out.extend_from_slice(b"MI");
        }
    }
    for var in vars {
        let m = matrix(var, endian);
        if compress {
            let mut enc =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            // Writing into a Vec cannot fail.
            let _ = enc.write_all(&m);
            let z = enc.finish().unwrap_or_default();
            out.extend(element(MI_COMPRESSED, &z, endian));
        } else {
            out.extend(m);
        }
    }
    out
}
