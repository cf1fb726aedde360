//! CAM files as the WSSS code bases write them (`../shared/fixtures/cam_formats`: `np.save`'d
//! dicts of IRN/ReCAM, AMN, LPCAM, the PSA family and CLIP-ES, written by numpy 2.4 and torch
//! 2.5), read through the restricted pickle reader, give the labels each code base's own
//! evaluation derives; hostile pickles are refused by name with nothing run; the CLI reads
//! them.

use crate::common;

use camsam::core::cam::{Cam, CamOptions, CamToLabel, Keys};
use camsam::core::label::LabelMap;
use camsam::core::npy::{NpyArray, NpyData};
use std::path::{Path, PathBuf};

fn formats() -> PathBuf {
    common::shared_dir().join("fixtures/cam_formats")
}

fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(formats().join("irn"))
        .expect("cam_formats/irn")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "npy").then_some(stem)
        })
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no .npy files in {}",
        formats().display()
    );
    names
}

fn read_cam(path: &Path, opts: &CamOptions) -> Cam {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Cam::from_npy_bytes(&bytes, &path.display().to_string(), opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Agreement with the expected label, printing the first disagreeing pixel.
fn check(format: &str, expected: &str) {
    for name in names() {
        let path = formats().join(format).join(format!("{name}.npy"));
        let cam = read_cam(&path, &CamOptions::default());
        let got = cam
            .to_label(None, &CamToLabel::default(), &name)
            .unwrap()
            .label;
        let want = LabelMap::read_png(&formats().join(expected).join(format!("{name}.png")))
            .expect("expected label");
        assert_eq!(
            (got.width, got.height),
            (want.width, want.height),
            "{format}/{name}"
        );
        let diff: Vec<usize> = (0..want.data.len())
            .filter(|&i| got.data[i] != want.data[i])
            .collect();
        let agree = 1.0 - diff.len() as f64 / want.data.len() as f64;
        assert!(
            agree >= 0.999,
            "{format}/{name}: {:.4} % of pixels agree; first difference at index {} (x {}, y {}): got {}, expected {}",
            100.0 * agree,
            diff[0],
            diff[0] % want.width,
            diff[0] / want.width,
            got.data[diff[0]],
            want.data[diff[0]]
        );
        // The fixtures are built so that agreement is exact.
        assert!(
            diff.is_empty(),
            "{format}/{name}: {} pixels differ",
            diff.len()
        );
    }
}

#[test]
fn irn_dicts_numpy_high_res_torch_keys() {
    check("irn", "expected");
}

#[test]
fn lpcam_dicts_torch_high_res_numpy_keys() {
    check("lpcam", "expected");
}

#[test]
fn psa_family_int_keyed_dicts() {
    check("psa", "expected");
}

#[test]
fn clip_es_float16_attn_highres() {
    check("clipes", "expected_clipes");
}

#[test]
fn amn_background_channel_decides() {
    check("amn", "expected_amn");
    // The file's own background decides: the threshold changes nothing.
    let name = &names()[0];
    let cam = read_cam(
        &formats().join(format!("amn/{name}.npy")),
        &CamOptions::default(),
    );
    assert!(cam.background.is_some());
    let at = |bg: f32| {
        let p = CamToLabel {
            bg_threshold: bg,
            ..Default::default()
        };
        cam.to_label(None, &p, name).unwrap().label.data
    };
    assert_eq!(at(0.05), at(0.95));
}

#[test]
fn irn_keys_are_foreground_indices_and_class_ids_is_honoured() {
    let name = &names()[0];
    let path = formats().join(format!("irn/{name}.npy"));
    let fg = read_cam(&path, &CamOptions::default());
    let ids = read_cam(
        &path,
        &CamOptions {
            keys: Keys::ClassIds,
            ..Default::default()
        },
    );
    // Same maps; classes one lower under class-ids (a key 0 would be the background).
    let shifted: Vec<u8> = fg
        .classes
        .iter()
        .map(|c| c - 1)
        .filter(|&c| c > 0)
        .collect();
    assert_eq!(ids.classes, shifted);
    assert!(fg.classes.iter().all(|&c| (1..=20).contains(&c)));
}

#[test]
fn all_formats_hold_the_same_maps() {
    for name in names() {
        let irn = read_cam(
            &formats().join(format!("irn/{name}.npy")),
            &CamOptions::default(),
        );
        for format in ["lpcam", "psa"] {
            let other = read_cam(
                &formats().join(format!("{format}/{name}.npy")),
                &CamOptions::default(),
            );
            let mut a: Vec<(u8, &[f32])> = (0..irn.classes.len())
                .map(|i| (irn.classes[i], irn.channel(i)))
                .collect();
            let mut b: Vec<(u8, &[f32])> = (0..other.classes.len())
                .map(|i| (other.classes[i], other.channel(i)))
                .collect();
            a.sort_by_key(|x| x.0);
            b.sort_by_key(|x| x.0);
            assert!(a == b, "{format}/{name}: maps differ from irn/{name}");
        }
    }
}

/// An `.npy` whose data is `pickle` (a 0-d object array header).
fn object_npy(pickle: &[u8]) -> Vec<u8> {
    let dict = "{'descr': '|O', 'fortran_order': False, 'shape': (), }";
    let mut header = dict.to_string();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(pickle);
    out
}

fn refused(pickle: &[u8]) -> String {
    let t = std::time::Instant::now();
    let e = Cam::from_npy_bytes(&object_npy(pickle), "cams/evil.npy", &CamOptions::default())
        .expect_err("a hostile pickle must be refused")
        .to_string();
    assert!(e.starts_with("cams/evil.npy: "), "{e}");
    assert!(t.elapsed().as_secs() < 5, "refusing took {:?}", t.elapsed());
    e
}

#[test]
fn hostile_pickles_are_refused_by_name_and_nothing_runs() {
    let marker = std::env::temp_dir().join(format!("camsam-pwned-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let cmd = format!("touch {}", marker.display());
    // protocol 0: os.system('touch …'), as `pickle.dumps` of a __reduce__ writes it.
    let p0 = format!("cposix\nsystem\n(V{cmd}\ntR.");
    assert!(refused(p0.as_bytes()).contains("refused global 'posix.system'"));
    let p0 = format!("cos\nsystem\n(V{cmd}\ntR.");
    assert!(refused(p0.as_bytes()).contains("refused global 'os.system'"));
    // protocol 4: builtins.eval and subprocess.Popen through STACK_GLOBAL, inside a dict value.
    let mut p4 =
        b"\x80\x04}\x94\x8c\x04keys\x94\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94".to_vec();
    p4.push(0x8c);
    p4.push(cmd.len() as u8);
    p4.extend_from_slice(cmd.as_bytes());
    p4.extend_from_slice(b"\x85R\x94s.");
    assert!(refused(&p4).contains("refused global 'builtins.eval'"));
    let p2 = b"\x80\x02csubprocess\nPopen\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.";
    assert!(refused(p2).contains("refused global 'subprocess.Popen'"));
    // A global hidden in a legacy torch storage stream.
    let inner = b"\x80\x02cos\nsystem\nq\x00.";
    let mut legacy =
        b"\x80\x04\x8c\rtorch.storage\x94\x8c\x10_load_from_bytes\x94\x93\x94C".to_vec();
    legacy.push(inner.len() as u8);
    legacy.extend_from_slice(inner);
    legacy.extend_from_slice(b"\x85R.");
    let e = refused(&legacy);
    assert!(e.contains("os.system"), "{e}");
    assert!(!marker.exists(), "a hostile pickle ran a command");

    // A memo bomb: 30 levels of lists holding ten references to the level below.
    let mut bomb = b"\x80\x04]\x94".to_vec();
    for i in 0..30u32 {
        bomb.push(b'(');
        for _ in 0..10 {
            bomb.push(b'j');
            bomb.extend_from_slice(&i.to_le_bytes());
        }
        bomb.extend_from_slice(b"l\x94");
    }
    bomb.push(b'.');
    assert!(refused(&bomb).contains("memo bomb"));
    // Deep nesting: a million nested lists.
    let mut deep = b"\x80\x04".to_vec();
    deep.extend(std::iter::repeat_n(b']', 1_000_000));
    deep.extend(std::iter::repeat_n(b'a', 999_999));
    deep.push(b'.');
    assert!(refused(&deep).contains("nested deeper"));
}

#[test]
fn unreadable_dicts_say_what_was_expected() {
    // np.save({'foo': 1}): a dict without the CAM keys.
    let e = refused(&numpy_object(b"\x8c\x03foo\x94K\x01"));
    assert!(e.contains("without 'keys'") && e.contains("'foo'"), "{e}");
    // A numeric .npy still reads as (C,H,W); a truncated pickle names the file.
    let a = NpyArray::new(vec![20, 1, 2], NpyData::F32(vec![0.5; 40])).unwrap();
    let cam = Cam::from_npy_bytes(&a.to_bytes(), "a.npy", &CamOptions::default()).unwrap();
    assert_eq!(cam.classes.len(), 20);
    let irn = std::fs::read(formats().join(format!("irn/{}.npy", names()[0]))).unwrap();
    let e = Cam::from_npy_bytes(&irn[..irn.len() / 2], "cut.npy", &CamOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cut.npy: ") && e.contains("truncated"), "{e}");
}

/// A numpy-2 style pickle of a 0-d object array holding `{items}` (dict SETITEMS payload).
fn numpy_object(items: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x04\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\
\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94\
(K\x01)h\x03\x8c\x05dtype\x94\x93\x94\x8c\x02O8\x94\x89\x88\x87\x94R\x94\
(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94b\x89]\x94}\x94("
        .to_vec();
    p.extend_from_slice(items);
    p.extend_from_slice(b"uat\x94b.");
    p
}

/// A numpy 1.x `np.save` of `{'keys': int64 (2,), 'high_res': float32 (2, h, w)}`: GLOBAL
/// opcodes naming `numpy.core.multiarray`, bytes through `_codecs.encode` (protocol 2) or
/// BINBYTES (protocol 3), Fortran-order maps.
fn numpy1_dict(protocol: u8, keys: [i64; 2], maps_fortran: &[f32], h: u8, w: u8) -> Vec<u8> {
    fn s(x: &str) -> Vec<u8> {
        let mut o = vec![b'X'];
        o.extend_from_slice(&(x.len() as u32).to_le_bytes());
        o.extend_from_slice(x.as_bytes());
        o
    }
    let bytes = |raw: &[u8]| -> Vec<u8> {
        if protocol == 2 {
            let text: String = raw.iter().map(|&b| b as char).collect();
            [
                b"c_codecs\nencode\n".to_vec(),
                s(&text),
                s("latin1"),
                b"\x86R".to_vec(),
            ]
            .concat()
        } else {
            [
                vec![b'B'],
                (raw.len() as u32).to_le_bytes().to_vec(),
                raw.to_vec(),
            ]
            .concat()
        }
    };
    let dtype = |descr: &str| {
        [
            b"cnumpy\ndtype\n".to_vec(),
            s(descr),
            b"\x89\x88\x87R(K\x03".to_vec(),
            s("<"),
            b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb".to_vec(),
        ]
        .concat()
    };
    let array = |descr: &str, shape: &[u8], fortran: bool, raw: &[u8]| {
        let mut o = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85".to_vec();
        o.extend(bytes(b"b"));
        o.extend_from_slice(b"\x87R(K\x01(");
        for &d in shape {
            o.extend_from_slice(&[b'K', d]);
        }
        o.push(b't');
        o.extend(dtype(descr));
        o.push(if fortran { 0x88 } else { 0x89 });
        o.extend(bytes(raw));
        o.extend_from_slice(b"tb");
        o
    };
    let keys_raw: Vec<u8> = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
    let maps_raw: Vec<u8> = maps_fortran.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut p = vec![0x80, protocol];
    p.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85");
    p.extend(bytes(b"b"));
    p.extend_from_slice(b"\x87R(K\x01)");
    p.extend(dtype("O8"));
    p.extend_from_slice(b"\x89]}(");
    p.extend(s("keys"));
    p.extend(array("i8", &[2], false, &keys_raw));
    p.extend(s("high_res"));
    p.extend(array("f4", &[2, h, w], true, &maps_raw));
    p.extend_from_slice(b"uatb.");
    object_npy(&p)
}

#[test]
fn numpy_1x_protocols_2_and_3() {
    // Two classes on a 2×3 image, C order: class 1 (key 0) left, class 15 (key 14) right.
    let (h, w) = (2usize, 3usize);
    let c_order: Vec<f32> = vec![
        1.0, 0.5, 0.0, 1.0, 0.5, 0.0, // key 0
        0.0, 0.1, 1.0, 0.0, 0.2, 1.0, // key 14
    ];
    // Fortran order: the first index varies fastest.
    let mut fortran = vec![0.0; c_order.len()];
    for c in 0..2 {
        for y in 0..h {
            for x in 0..w {
                fortran[c + 2 * (y + h * x)] = c_order[c * h * w + y * w + x];
            }
        }
    }
    for protocol in [2, 3] {
        let npy = numpy1_dict(protocol, [0, 14], &fortran, h as u8, w as u8);
        let cam = Cam::from_npy_bytes(&npy, "np1.npy", &CamOptions::default())
            .unwrap_or_else(|e| panic!("protocol {protocol}: {e}"));
        assert_eq!(cam.classes, vec![1, 15], "protocol {protocol}");
        assert_eq!(cam.data, c_order, "protocol {protocol}");
        let label = cam
            .to_label(None, &CamToLabel::default(), "np1.npy")
            .unwrap();
        assert_eq!(
            label.label.data,
            vec![1, 1, 15, 1, 1, 15],
            "protocol {protocol}"
        );
    }
}
