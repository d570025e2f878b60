//! Tests of the MAT-file reader.

use super::write::*;
use super::*;

fn sample_file(endian: Endian, compress: bool) -> Vec<u8> {
    let x: Vec<u8> = (0..24).collect();
    let y: Vec<u8> = [1.0f64, 10.0]
        .iter()
        .flat_map(|v| match endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        })
        .collect();
    mat_file(
        &[
            MatVar {
                name: "X",
                class_code: CLASS_UINT8,
                dims: &[2, 3, 2, 2],
                data_type: TYPE_UINT8,
                data: &x,
            },
            MatVar {
                name: "y",
                class_code: CLASS_DOUBLE,
                dims: &[2, 1],
                data_type: TYPE_DOUBLE,
                data: &y,
            },
        ],
        endian,
        compress,
    )
}

#[test]
fn reads_variables_in_all_layouts() {
    for endian in [Endian::Little, Endian::Big] {
        for compress in [false, true] {
            let arrays = parse_mat(&sample_file(endian, compress), Path::new("s.mat")).unwrap();
            assert_eq!(arrays.len(), 2, "{endian:?} {compress}");
            assert_eq!(arrays[0].name, "X");
            assert_eq!(arrays[0].class, MatClass::Uint8);
            assert_eq!(arrays[0].dims, vec![2, 3, 2, 2]);
            assert_eq!(arrays[0].data, MatData::U8((0..24).collect()));
            assert_eq!(arrays[1].name, "y");
            assert_eq!(arrays[1].class, MatClass::Double);
            assert_eq!(arrays[1].data, MatData::F64(vec![1.0, 10.0]));
        }
    }
}

#[test]
fn double_class_stored_as_uint8_keeps_class() {
    let file = mat_file(
        &[MatVar {
            name: "labels",
            class_code: CLASS_DOUBLE,
            dims: &[3, 1],
            data_type: TYPE_UINT8,
            data: &[4, 5, 6],
        }],
        Endian::Little,
        true,
    );
    let arrays = parse_mat(&file, Path::new("s.mat")).unwrap();
    assert_eq!(arrays[0].class, MatClass::Double);
    assert_eq!(arrays[0].data.get_f64(2), Some(6.0));
}

#[test]
fn header_and_size_errors_name_the_file() {
    let p = Path::new("/d/train_32x32.mat");
    let mut f = sample_file(Endian::Little, false);
    f[126] = b'X';
    let e = parse_mat(&f, p).unwrap_err().to_string();
    assert!(
        e.starts_with("/d/train_32x32.mat: not a level-5 MAT-file"),
        "{e}"
    );

    let bad = mat_file(
        &[MatVar {
            name: "X",
            class_code: CLASS_UINT8,
            dims: &[1000, 1000],
            data_type: TYPE_UINT8,
            data: &[1, 2, 3, 4, 5],
        }],
        Endian::Little,
        false,
    );
    let e = parse_mat(&bad, p).unwrap_err().to_string();
    assert!(
        e.contains("need 1000000 values, the real part holds 5"),
        "{e}"
    );

    let mut hdf5 = vec![b' '; 128];
    hdf5[..10].copy_from_slice(b"MATLAB 7.3");
    assert!(parse_mat(&hdf5, p)
        .unwrap_err()
        .to_string()
        .contains("v7.3"));
}

fn compressed(var: &MatVar<'_>, endian: Endian) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&matrix(var, endian)).unwrap();
    enc.finish().unwrap()
}

#[test]
fn unwanted_variables_are_never_inflated_and_the_budget_spans_variables() {
    let endian = Endian::Little;
    let junk_data = vec![3u8; 100_000];
    let junk = MatVar {
        name: "junk",
        class_code: CLASS_UINT8,
        dims: &[100_000, 1],
        data_type: TYPE_UINT8,
        data: &junk_data,
    };
    // The junk variable's zlib stream is cut short: only reading past
    // its header would notice.
    let mut z = compressed(&junk, endian);
    z.truncate(z.len() / 2);
    let mut file = sample_file(endian, true);
    let tail = file.split_off(128);
    file.extend(element(MI_COMPRESSED, &z, endian));
    file.extend(tail);

    let p = Path::new("/d/s.mat");
    let keep = ["X", "y"];
    let limits = MatLimits {
        keep: Some(&keep),
        max_data_bytes: 24 + 16,
    };
    let arrays = parse_mat_with(&file, p, &limits).unwrap();
    assert_eq!(arrays.len(), 2);
    assert_eq!(arrays[1].data, MatData::F64(vec![1.0, 10.0]));
    // Reading everything does reach the broken stream.
    assert!(parse_mat(&file, p).is_err());

    // X takes 24 bytes and y 16: one byte less for both is refused at y.
    let tight = MatLimits {
        max_data_bytes: 24 + 15,
        ..limits
    };
    let e = parse_mat_with(&file, p, &tight).unwrap_err().to_string();
    assert_eq!(
        e,
        "/d/s.mat: variable `y`: 16 data bytes exceed what this file may hold (39 bytes in all, 15 left)"
    );

    // A variable kept twice is an error, not a silent choice.
    let mut twice = sample_file(endian, false);
    let again = sample_file(endian, true);
    twice.extend_from_slice(&again[128..]);
    let e = parse_mat_with(&twice, p, &limits).unwrap_err().to_string();
    assert_eq!(e, "/d/s.mat: variable `X` appears twice");
}
