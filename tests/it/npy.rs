//! `.npy` / `.npz` reading and writing: round trips of every dtype, big endian, Fortran
//! order, versions 1–3, and malformed files (each error names the file).

use crate::common;

use camsam::core::npy::{encode_npz, NpyArray, NpyData, Npz};
use std::io::Write;

/// Build a `.npy` by hand: magic, version, header dict (padded to 64 with a newline), data.
fn npy(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let len_bytes = if version == 1 { 2 } else { 4 };
    let prefix = 6 + 2 + len_bytes;
    let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
    let hlen = total - prefix;
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(hlen as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(hlen as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

fn err(bytes: &[u8], name: &str) -> String {
    let e = NpyArray::from_bytes(bytes, name)
        .expect_err("malformed input must be an error")
        .to_string();
    assert!(e.contains(name), "error does not name the file: {e}");
    e
}

#[test]
fn every_dtype_round_trips() {
    let arrays = [
        NpyData::Bool(vec![true, false, true, true, false, false]),
        NpyData::I8(vec![-128, -1, 0, 1, 2, 127]),
        NpyData::U8(vec![0, 1, 2, 3, 254, 255]),
        NpyData::I16(vec![-32768, -2, 0, 5, 300, 32767]),
        NpyData::U16(vec![0, 1, 2, 3, 60000, 65535]),
        NpyData::I32(vec![i32::MIN, -7, 0, 7, 1 << 20, i32::MAX]),
        NpyData::U32(vec![0, 1, 2, 3, 1 << 31, u32::MAX]),
        NpyData::I64(vec![i64::MIN, -7, 0, 7, 1 << 40, i64::MAX]),
        NpyData::U64(vec![0, 1, 2, 3, 1 << 63, u64::MAX]),
        NpyData::F16(vec![0x3c00, 0xc000, 0, 0x7c00, 0x0001, 0x3555]),
        NpyData::F32(vec![0.0, -1.5, 3.25, f32::MAX, f32::MIN_POSITIVE, 1e-30]),
        NpyData::F64(vec![0.0, -1.5, 3.25, f64::MAX, 1e-300, 7.0]),
    ];
    for data in arrays {
        for shape in [vec![6], vec![2, 3], vec![1, 2, 3, 1]] {
            let a = NpyArray::new(shape.clone(), data.clone()).unwrap();
            let bytes = a.to_bytes();
            let b = NpyArray::from_bytes(&bytes, "rt.npy").unwrap();
            assert_eq!(a, b, "{:?} {shape:?}", data.dtype());
        }
    }
    // 0-d and empty arrays.
    let scalar = NpyArray::new(vec![], NpyData::F64(vec![2.5])).unwrap();
    assert_eq!(
        NpyArray::from_bytes(&scalar.to_bytes(), "s.npy").unwrap(),
        scalar
    );
    let empty = NpyArray::new(vec![0, 4], NpyData::F32(vec![])).unwrap();
    assert_eq!(
        NpyArray::from_bytes(&empty.to_bytes(), "e.npy").unwrap(),
        empty
    );
}

#[test]
fn write_f32_file_round_trips() {
    let dir = std::env::temp_dir().join(format!("camsam-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("emb.npy");
    let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
    camsam::core::npy::write_f32(&path, &[1, 2, 3, 4], &data).unwrap();
    let a = NpyArray::read(&path).unwrap();
    assert_eq!(a.shape, vec![1, 2, 3, 4]);
    assert_eq!(a.data, NpyData::F32(data.clone()));
    let e = camsam::core::npy::write_f32(&path, &[5], &data)
        .unwrap_err()
        .to_string();
    assert!(e.contains("emb.npy"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn big_endian_floats_and_ints() {
    let vals = [1.0f32, -2.5, 1e10];
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    let a = NpyArray::from_bytes(
        &npy(
            1,
            "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }",
            &data,
        ),
        "be.npy",
    )
    .unwrap();
    assert_eq!(a.data, NpyData::F32(vals.to_vec()));

    let vals = [1.0f64, -2.5, 1e300, 0.1];
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    let a = NpyArray::from_bytes(
        &npy(
            1,
            "{'descr': '>f8', 'fortran_order': False, 'shape': (2, 2), }",
            &data,
        ),
        "be8.npy",
    )
    .unwrap();
    assert_eq!(a.shape, vec![2, 2]);
    assert_eq!(a.data, NpyData::F64(vals.to_vec()));

    let data: Vec<u8> = [-3i64, 70000]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let a = NpyArray::from_bytes(
        &npy(
            1,
            "{'descr': '>i8', 'fortran_order': False, 'shape': (2,), }",
            &data,
        ),
        "bei.npy",
    )
    .unwrap();
    assert_eq!(a.to_i64("bei.npy").unwrap(), vec![-3, 70000]);
}

#[test]
fn fortran_order_is_reordered_to_c() {
    // np.asfortranarray(np.arange(6, dtype='<f8').reshape(2, 3)) stores 0, 3, 1, 4, 2, 5.
    let stored = [0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0];
    let data: Vec<u8> = stored.iter().flat_map(|v| v.to_le_bytes()).collect();
    let a = NpyArray::from_bytes(
        &npy(
            1,
            "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
            &data,
        ),
        "f.npy",
    )
    .unwrap();
    assert_eq!(a.data, NpyData::F64(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));

    // A (2, 2, 2) Fortran array: element (i, j, k) at offset i + 2j + 4k.
    let mut stored = vec![0u8; 8];
    for i in 0..2 {
        for j in 0..2 {
            for k in 0..2 {
                stored[i + 2 * j + 4 * k] = (100 * i + 10 * j + k) as u8;
            }
        }
    }
    let a = NpyArray::from_bytes(
        &npy(
            1,
            "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2, 2), }",
            &stored,
        ),
        "f3.npy",
    )
    .unwrap();
    assert_eq!(a.data, NpyData::U8(vec![0, 1, 10, 11, 100, 101, 110, 111]));
}

#[test]
fn versions_two_and_three_and_header_variants() {
    let data: Vec<u8> = [1.5f32, 2.5].iter().flat_map(|v| v.to_le_bytes()).collect();
    for version in [2, 3] {
        let a = NpyArray::from_bytes(
            &npy(
                version,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                &data,
            ),
            "v.npy",
        )
        .unwrap();
        assert_eq!(a.data, NpyData::F32(vec![1.5, 2.5]));
    }
    // Key order, double quotes, Python 2 longs, no trailing comma.
    let a = NpyArray::from_bytes(
        &npy(
            1,
            "{\"shape\": (1L, 2L), \"fortran_order\": False, \"descr\": \"<f4\"}",
            &data,
        ),
        "v.npy",
    )
    .unwrap();
    assert_eq!(a.shape, vec![1, 2]);
}

#[test]
fn truncated_and_oversized_data_are_errors() {
    let data = [0u8; 8];
    let e = err(
        &npy(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
            &data,
        ),
        "short.npy",
    );
    assert!(e.contains("truncated"), "{e}");
    let e = err(
        &npy(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
            &data,
        ),
        "long.npy",
    );
    assert!(e.contains("after the data"), "{e}");
    // A shape that claims a terabyte is refused before anything is allocated.
    let e = err(
        &npy(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }",
            &data,
        ),
        "huge.npy",
    );
    assert!(e.contains("truncated"), "{e}");
    // A shape whose element count overflows.
    let e = err(
        &npy(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
            &data,
        ),
        "overflow.npy",
    );
    assert!(e.contains("address"), "{e}");
    // Header length beyond the file.
    let mut bytes = npy(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        &data,
    );
    bytes.truncate(40);
    err(&bytes, "cut.npy");
    err(b"\x93NUMPY\x01", "tiny.npy");
}

#[test]
fn bad_magic_version_and_headers_are_errors() {
    let e = err(b"PK\x03\x04 this is a zip", "magic.npy");
    assert!(e.contains("magic"), "{e}");
    let mut bytes = npy(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
        &[0; 4],
    );
    bytes[6] = 9;
    let e = err(&bytes, "version.npy");
    assert!(e.contains("version 9"), "{e}");
    for (dict, expect) in [
        ("{'descr': '<f4', 'fortran_order': False}", "missing"),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
            "unknown key",
        ),
        (
            "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }",
            "not supported",
        ),
        (
            "{'descr': '|O', 'fortran_order': False, 'shape': (), }",
            "pickled",
        ),
        (
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
            "structured",
        ),
        (
            "{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }",
            "byte order",
        ),
        (
            "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }",
            "True or False",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
            "non-negative",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) junk",
            "expected",
        ),
        (
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
            "twice",
        ),
        ("not a dict at all", "expected"),
        ("{'descr': '<f4", "unterminated"),
    ] {
        let e = err(&npy(1, dict, &[0; 8]), "header.npy");
        assert!(e.contains(expect), "{dict}: {e}");
    }
}

fn zip_of(members: &[(&str, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn npz_stored_and_deflated_members() {
    let keys = NpyArray::new(vec![2], NpyData::I64(vec![0, 14])).unwrap();
    let cam = NpyArray::from_f32(vec![2, 2, 2], (0..8).map(|i| i as f32).collect()).unwrap();
    for method in [
        zip::CompressionMethod::Stored,
        zip::CompressionMethod::Deflated,
    ] {
        let bytes = zip_of(
            &[
                ("keys.npy", keys.to_bytes()),
                ("high_res.npy", cam.to_bytes()),
            ],
            method,
        );
        let mut npz = Npz::new(&bytes, "a.npz").unwrap();
        assert_eq!(npz.keys(), vec!["keys", "high_res"]);
        assert_eq!(npz.read("keys").unwrap(), keys);
        assert_eq!(npz.read("high_res").unwrap(), cam);
        let e = npz.read("cam").unwrap_err().to_string();
        assert!(e.contains("a.npz") && e.contains("high_res"), "{e}");
    }
    // The library's own writer, both ways.
    for compressed in [false, true] {
        let bytes = encode_npz(&[("keys", &keys), ("cam", &cam)], compressed).unwrap();
        let mut npz = Npz::new(&bytes, "b.npz").unwrap();
        assert_eq!(npz.read("cam").unwrap(), cam);
    }
}

#[test]
fn npz_errors_name_the_file_and_member() {
    let e = Npz::new(b"not a zip", "bad.npz")
        .err()
        .expect("error")
        .to_string();
    assert!(e.contains("bad.npz"), "{e}");
    let bytes = zip_of(
        &[("keys.npy", b"\x93NUMPY garbage".to_vec())],
        zip::CompressionMethod::Deflated,
    );
    let e = Npz::new(&bytes, "c.npz")
        .unwrap()
        .read("keys")
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.npz[keys]"), "{e}");
    // A zip cut short.
    let keys = NpyArray::new(vec![1], NpyData::I64(vec![3])).unwrap();
    let bytes = zip_of(
        &[("keys.npy", keys.to_bytes())],
        zip::CompressionMethod::Stored,
    );
    let e = Npz::new(&bytes[..bytes.len() - 30], "cut.npz")
        .err()
        .expect("error")
        .to_string();
    assert!(e.contains("cut.npz"), "{e}");
}

#[test]
fn npz_members_over_the_limit_are_refused_before_inflating() {
    // 1 MiB of zeros deflates to about a kilobyte: a small zip bomb.
    let zeros = NpyArray::new(vec![1 << 20], NpyData::U8(vec![0; 1 << 20])).unwrap();
    let bytes = encode_npz(&[("high_res", &zeros)], true).unwrap();
    assert!(bytes.len() < 8 << 10, "{} bytes", bytes.len());
    let mut npz = Npz::new(&bytes, "bomb.npz")
        .unwrap()
        .with_member_limit(64 << 10);
    let e = npz.read("high_res").unwrap_err().to_string();
    assert!(
        e.contains("bomb.npz[high_res]") && e.contains("at most 65536"),
        "{e}"
    );
    // Under the default limit it reads.
    let mut npz = Npz::new(&bytes, "bomb.npz").unwrap();
    assert_eq!(npz.read("high_res").unwrap().len(), 1 << 20);
}

#[test]
fn empty_files_are_errors() {
    let e = err(b"", "empty.npy");
    assert!(e.contains("magic"), "{e}");
    let e = Npz::new(b"", "empty.npz").err().expect("error").to_string();
    assert!(e.contains("empty.npz"), "{e}");
}

/// Files written by numpy itself (the official MobileSAM fixtures): the shapes it recorded
/// and, re-encoded by camsam, the same data bytes (numpy's header carries extra growth
/// padding, so only the data is compared).
#[test]
fn numpy_written_fixtures_read_and_re_encode_to_the_same_data() {
    let dir = common::shared_dir().join("fixtures/sam/predict/voc_a");
    for (file, shape) in [
        ("embedding.npy", vec![1usize, 256, 64, 64]),
        ("box_low_res_logits.npy", vec![1, 256, 256]),
    ] {
        let path = dir.join(file);
        let original = std::fs::read(&path).unwrap();
        let a = NpyArray::read(&path).unwrap();
        assert_eq!(a.shape, shape, "{file}");
        assert_eq!(a.dtype(), camsam::core::npy::DType::F32);
        assert!(a.to_f32().iter().all(|v| v.is_finite()), "{file}");
        let ours = a.to_bytes();
        let n = 4 * a.len();
        assert_eq!(
            &ours[ours.len() - n..],
            &original[original.len() - n..],
            "{file}: data bytes differ"
        );
        assert_eq!(NpyArray::from_bytes(&ours, file).unwrap(), a);
    }
}
