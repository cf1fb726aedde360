//! The limits camsam enforces on hostile or broken inputs, each shown with its error message
//! (issue 7): 64-megapixel caps on label PNGs, masks, images and SE maps (refused from the
//! header, before decoding), a CAM of another size than its image in `refine`, class counts
//! over 255, zip bombs and lying zip size headers, absurd checkpoints (refused before their
//! data is read) and empty files. Limits tested where they were added first: CAM size caps
//! and NaN/Inf (`tests/it/cam.rs`, `tests/it/cam2label.rs`), `.npz` bombs and empty `.npy`/`.npz`
//! (`tests/it/npy.rs`), `../` and absolute zip entries (`masks` unit tests).

use crate::common;

use camsam::core::cam::{Cam, CamOptions};
use camsam::core::label::LabelMap;
use camsam::core::masks::{decode_mask_png, MaskSet, MaskZip};
use camsam::core::metrics::Confusion;
use camsam::core::npy::NpyArray;
use camsam::core::sepl::{merge, MergeParams};
use camsam::refine::se_map::SeMap;
use camsam::sam::preprocess::decode_rgb;
use camsam::sam::weights::Weights;
use std::io::Write;
use std::process::Command;

fn message<T: std::fmt::Debug>(r: camsam::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

fn assert_says(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "expected '{p}' in: {text}");
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A 1×1 PNG of `color` whose header then claims `width × height`: what a forged or
/// gigantic file looks like to a reader before it inflates anything.
fn png_claiming(
    width: u32,
    height: u32,
    color: png::ColorType,
    bit_depth: png::BitDepth,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 1, 1);
    enc.set_color(color);
    enc.set_depth(bit_depth);
    let mut w = enc.write_header().unwrap();
    let samples = match color {
        png::ColorType::Rgb => 3,
        _ => 1,
    } * if bit_depth == png::BitDepth::Sixteen {
        2
    } else {
        1
    };
    w.write_image_data(&vec![0; samples]).unwrap();
    w.finish().unwrap();
    // IHDR: 8-byte signature, length, "IHDR", width, height, …, CRC over type + data.
    out[16..20].copy_from_slice(&width.to_be_bytes());
    out[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&out[12..29]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn pictures_over_64_megapixels_are_refused_from_their_header() {
    let gray = png_claiming(8193, 8192, png::ColorType::Grayscale, png::BitDepth::Eight);
    let cap = "8193×8192";
    let e = message(LabelMap::decode_png(&gray, "big_label.png"));
    assert_says(&e, &["big_label.png", cap, "label", "64 megapixels"]);
    let e = message(decode_mask_png(&gray, "sam/x/0.png", None));
    assert_says(&e, &["sam/x/0.png", cap, "mask", "64 megapixels"]);
    let rgb = png_claiming(8193, 8192, png::ColorType::Rgb, png::BitDepth::Eight);
    let e = message(decode_rgb(&rgb, "huge.jpg"));
    assert_says(&e, &["huge.jpg", cap, "image", "64 megapixels"]);
    let wide = png_claiming(
        100_000,
        100_000,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
    );
    let e = message(SeMap::decode_png(&wide, "se.png"));
    assert_says(&e, &["se.png", "100000×100000", "64 megapixels"]);
    // Exactly 64 megapixels passes the cap (and then fails on the forged data).
    let edge = png_claiming(8192, 8192, png::ColorType::Grayscale, png::BitDepth::Eight);
    let e = message(LabelMap::decode_png(&edge, "edge.png"));
    assert!(!e.contains("megapixels"), "{e}");
}

#[test]
fn class_counts_over_255_are_refused() {
    let cam = NpyArray::from_f32(vec![1, 1, 1], vec![1.0]).unwrap();
    let opts = CamOptions {
        num_classes: 256,
        ..CamOptions::default()
    };
    let e = message(Cam::from_npy(&cam, "c.npy", &opts));
    assert_says(&e, &["--num-classes", "256", "expected 2 to 255"]);
    let params = MergeParams {
        num_classes: 256,
        ..MergeParams::default()
    };
    let e = message(merge(&LabelMap::filled(1, 1, 0), &[], &params));
    assert_says(&e, &["--num-classes", "256", "expected 2 to 255"]);
    let e = message(Confusion::new(256));
    assert_says(&e, &["256", "expected 1 to 255"]);
}

/// Set every entry's uncompressed size (local header and central directory) to `size`.
fn declare_size(zip: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 4 <= zip.len() {
        let at = match &zip[i..i + 4] {
            b"PK\x03\x04" => Some(i + 22),
            b"PK\x01\x02" => Some(i + 24),
            _ => None,
        };
        if let Some(at) = at {
            zip[at..at + 4].copy_from_slice(&size.to_le_bytes());
        }
        i += 1;
    }
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn zip_bombs_and_lying_size_headers_are_refused() {
    // A mask entry of 1 MiB that declares 100 bytes: reading stops where the header said.
    let mut bytes = zip_of(&[("img/0.png", &vec![0u8; 1 << 20])]);
    declare_size(&mut bytes, 100);
    let zip = MaskZip::new(bytes, "masks.zip").unwrap();
    let e = message(zip.mask_set("img", None));
    assert_says(&e, &["masks.zip:img/0.png", "declared"]);
    // An entry declaring 4 GiB is refused before a byte is inflated.
    let mut bytes = zip_of(&[("img/0.png", b"tiny")]);
    declare_size(&mut bytes, u32::MAX);
    let zip = MaskZip::new(bytes, "masks.zip").unwrap();
    let e = message(zip.mask_set("img", None));
    assert_says(
        &e,
        &[
            "masks.zip:img/0.png",
            "4294967295 bytes",
            "at most 67108864",
        ],
    );
    // The same for a checkpoint's pickle.
    let mut bytes = zip_of(&[("m/data.pkl", b"\x80\x02}.")]);
    declare_size(&mut bytes, u32::MAX);
    let e = message(Weights::from_bytes(&bytes, "bomb.pt"));
    assert_says(&e, &["bomb.pt", "data.pkl", "at most 67108864"]);
}

/// A `torch.save`-style zip whose pickle is `{name: _rebuild_tensor_v2(storage, offset,
/// shape, stride)}` with one float storage of `storage_bytes`.
fn torch_zip(name: &str, offset: i32, shape: &[u16], storage_bytes: usize) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    let string = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s.as_bytes());
    };
    let ints = |p: &mut Vec<u8>, v: &[u16]| {
        p.push(b'(');
        for &x in v {
            p.push(b'M');
            p.extend_from_slice(&x.to_le_bytes());
        }
        p.push(b't');
    };
    string(&mut p, name);
    p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    // persistent id ("storage", FloatStorage, "0", "cpu", numel)
    p.push(b'(');
    string(&mut p, "storage");
    p.extend_from_slice(b"ctorch\nFloatStorage\n");
    string(&mut p, "0");
    string(&mut p, "cpu");
    p.extend_from_slice(&[b'K', 1, b't', b'Q', b'J']);
    p.extend_from_slice(&offset.to_le_bytes());
    ints(&mut p, shape);
    let strides: Vec<u16> = (0..shape.len())
        .map(|i| shape[i + 1..].iter().product())
        .collect();
    ints(&mut p, &strides);
    p.extend_from_slice(b"tRu.");
    zip_of(&[("m/data.pkl", &p), ("m/data/0", &vec![0u8; storage_bytes])])
}

#[test]
fn absurd_checkpoints_are_refused_before_their_data_is_read() {
    // A tensor of the model at a forged offset 8 GiB into its storage.
    let pt = torch_zip("mask_decoder.iou_token.weight", i32::MAX, &[1, 256], 16);
    let e = message(Weights::from_bytes(&pt, "far.pt"));
    assert_says(
        &e,
        &[
            "far.pt",
            "iou_token",
            "2147483647",
            "at most 268435456 bytes of storage",
        ],
    );
    // The same tensor where it belongs reads (then the rest of the model is missing).
    let pt = torch_zip("mask_decoder.iou_token.weight", 0, &[1, 256], 1024);
    let e = message(Weights::from_bytes(&pt, "one.pt"));
    assert_says(&e, &["one.pt", "missing"]);

    // A forged 4 GiB string length inside the pickle.
    let mut p = vec![0x80, 2, b'X'];
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    p.extend_from_slice(b"abc.");
    let pt = zip_of(&[("m/data.pkl", &p)]);
    let e = message(Weights::from_bytes(&pt, "str.pt"));
    assert_says(&e, &["str.pt", "data.pkl is refused", "BINUNICODE"]);

    // safetensors: a header claiming a 2^40 × 2^40 tensor, and one pointing past the file.
    let header = r#"{"image_encoder.patch_embed.seq.0.c.weight":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header.as_bytes());
    st.extend_from_slice(&[0; 4]);
    let e = message(Weights::from_bytes(&st, "huge.safetensors"));
    assert_says(&e, &["huge.safetensors"]);
    let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,1000000000]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header.as_bytes());
    let e = message(Weights::from_bytes(&st, "cut.safetensors"));
    assert_says(&e, &["cut.safetensors", "truncated"]);
}

#[test]
fn the_real_checkpoints_pass_the_limits() {
    let dir = common::shared_dir().join("fixtures/sam/weights");
    for file in ["mobile_sam_random.pt", "mobile_sam_random.safetensors"] {
        let w = Weights::load(&dir.join(file)).unwrap();
        assert_eq!(
            w.get("mask_decoder.iou_token.weight").unwrap().shape,
            vec![1, 256]
        );
    }
}

#[test]
fn empty_files_are_errors_naming_the_file() {
    let e = message(LabelMap::decode_png(b"", "l.png"));
    assert_says(&e, &["l.png", "not a readable PNG"]);
    let e = message(decode_mask_png(b"", "m.png", None));
    assert_says(&e, &["m.png", "not a readable PNG"]);
    let e = message(decode_rgb(b"", "i.jpg"));
    assert_says(&e, &["i.jpg", "expected a PNG or JPEG"]);
    let e = message(Weights::from_bytes(b"", "w.pt"));
    assert_says(&e, &["w.pt", "not a model checkpoint (0 bytes"]);
    let e = message(MaskZip::new(Vec::new(), "z.zip"));
    assert_says(&e, &["z.zip", "not a readable zip"]);
    let e = message(MaskSet::from_files(
        "set",
        vec![("0.png".into(), vec![])],
        None,
    ));
    assert_says(&e, &["set/0.png", "not a readable PNG"]);
    let e = message(camsam::core::masks::parse_metadata(b"", "metadata.csv"));
    assert_says(&e, &["metadata.csv", "empty"]);
    let e = message(SeMap::decode_png(b"", "se.png"));
    assert!(e.contains("se.png"), "{e}");
    let e = message(camsam::core::cam::Cam::from_heatmaps(
        &[(3, vec![], "a_3.png".into())],
        &CamOptions::default(),
    ));
    assert!(e.contains("a_3.png"), "{e}");
}

#[test]
fn refine_refuses_a_cam_of_another_size_than_its_image() {
    let dir = common::scratch_dir("limits_refine_size");
    let (images, cams, out) = (dir.join("images"), dir.join("cams"), dir.join("out"));
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&cams).unwrap();
    image::RgbImage::new(6, 4)
        .save(images.join("a.png"))
        .unwrap();
    NpyArray::from_f32(vec![20, 5, 6], vec![0.5; 600])
        .unwrap()
        .write(&cams.join("a.npy"))
        .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_camsam"))
        .args(["refine", "--mode", "pamr"])
        .arg("--images")
        .arg(&images)
        .arg("--cams")
        .arg(&cams)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run camsam");
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert_says(&err, &["a.npy", "6×5 CAM", "expected the size of", "(6×4)"]);
    assert!(!out.join("a.png").exists());
}
