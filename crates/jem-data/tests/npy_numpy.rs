//! Reads `.npy` files written by NumPy 2.4 (`tests/fixtures/npy/make_fixtures.py`
//! made them; the expected values below are the arrays that script builds, in
//! C order), and checks that what jem writes reads back the same.

use std::path::{Path, PathBuf};

use jem_data::npy::{encode_npy, parse_npy, read_npy, NpyData};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/npy")
        .join(name)
}

fn read(name: &str) -> (Vec<usize>, NpyData) {
    let a = read_npy(&fixture(name)).unwrap_or_else(|e| panic!("{e}"));
    (a.shape, a.data)
}

#[test]
fn reads_what_numpy_writes() {
    assert_eq!(
        read("c_f4.npy"),
        (
            vec![2, 3],
            NpyData::F32(vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
        )
    );
    // np.asfortranarray(arange(6).reshape(2, 3) * 40): C order on reading.
    assert_eq!(
        read("fortran_u1.npy"),
        (vec![2, 3], NpyData::U8(vec![0, 40, 80, 120, 160, 200]))
    );
    assert_eq!(
        read("big_i4.npy"),
        (vec![3, 2], NpyData::I32(vec![-3, -2, -1, 0, 1, 2]))
    );
    let quarters: Vec<f64> = (0..12).map(|v| v as f64 / 4.0).collect();
    assert_eq!(
        read("big_fortran_f8.npy"),
        (vec![2, 3, 2], NpyData::F64(quarters))
    );
    assert_eq!(read("scalar_i8.npy"), (vec![], NpyData::I64(vec![-42])));
    assert_eq!(read("empty_f4.npy"), (vec![0, 3], NpyData::F32(vec![])));
    assert_eq!(
        read("i1.npy"),
        (vec![4], NpyData::I8(vec![-128, -1, 0, 127]))
    );
    assert_eq!(
        read("v2_f8.npy"),
        (vec![3], NpyData::F64(vec![1.5, -2.25, 1e300]))
    );
    assert_eq!(read("v3_i8.npy"), (vec![1, 2], NpyData::I64(vec![7, -8])));
}

#[test]
fn unsupported_dtypes_and_damaged_fixtures_name_the_file() {
    let p = fixture("u2_unsupported.npy");
    let e = read_npy(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: unsupported dtype '<u2'", p.display())),
        "{e}"
    );
    let mut bytes = std::fs::read(fixture("c_f4.npy")).unwrap();
    bytes.pop();
    let e = parse_npy(&bytes, Path::new("cut.npy"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "cut.npy: shape [2, 3] of '<f4' needs 24 data bytes, found 23"
    );
}

#[test]
fn jem_writes_what_numpy_writes() {
    // The same data at the same 64-byte-aligned offset as NumPy's own file
    // for this array; the headers differ only in NumPy's trailing `, ` after
    // the shape (`(2, 3), }` against `(2, 3)}`).
    let numpy = std::fs::read(fixture("c_f4.npy")).unwrap();
    let ours = encode_npy(&[2, 3], &[-1.0f32, -0.5, 0.0, 0.5, 1.0, 1.5]).unwrap();
    assert_eq!(ours.len(), numpy.len());
    assert_eq!(ours[128..], numpy[128..]);
    assert_eq!(ours[..10], numpy[..10]);
    let header = |b: &[u8]| {
        String::from_utf8(b[10..128].to_vec())
            .unwrap()
            .replace(", }", "}")
    };
    assert_eq!(header(&ours).trim_end(), header(&numpy).trim_end());
    assert_eq!(
        parse_npy(&ours, Path::new("ours")).unwrap(),
        parse_npy(&numpy, Path::new("numpy")).unwrap()
    );
}
