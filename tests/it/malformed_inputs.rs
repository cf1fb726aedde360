//! Mutated inputs never panic: every CAM-side parser (`.npy`, `.npz`, CAM `.npz`, heatmap
//! PNGs, image-level label lists) and CAM → label, fed thousands of deterministic random
//! mutations (byte flips, truncations, insertions, splices) of valid seeds, must return `Ok`
//! or an `Err` naming the file. A bounded, in-suite complement to the `cargo fuzz` targets in
//! `tests/fuzz/`.

use camsam::core::cam::{parse_image_labels, Cam, CamOptions, CamToLabel, Keys};
use camsam::core::label::{LabelFormat, LabelMap};
use camsam::core::npy::{encode_npz, NpyArray, NpyData, Npz};

/// Mutations per seed: enough to reach every header field, fast in the dev profile.
const ROUNDS: usize = 3000;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 0xff, b'(', b')', b',', b'9', b'\'', b'<', b'>'][rng.below(9)];
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                let byte = rng.next() as u8;
                v.insert(i, byte);
            }
            4 if !v.is_empty() => {
                // Splice a run of bytes from elsewhere (keeps header-like text).
                let (a, b) = (rng.below(v.len()), rng.below(v.len()));
                let n = rng.below(16).min(v.len() - a.max(b));
                let run: Vec<u8> = v[a..a + n].to_vec();
                v[b..b + n].copy_from_slice(&run);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                v.truncate(i);
                v.extend_from_slice(&seed[..rng.below(seed.len() + 1)]);
            }
        }
    }
    v
}

fn check_err(e: camsam::Error, name: &str) {
    let text = e.to_string();
    assert!(text.contains(name), "error does not name {name}: {text}");
}

fn seed_npy() -> Vec<u8> {
    NpyArray::from_f32(vec![2, 3, 4], (0..24).map(|i| i as f32 / 7.0).collect())
        .unwrap()
        .to_bytes()
}

fn seed_cam_npz(compressed: bool) -> Vec<u8> {
    let keys = NpyArray::new(vec![2], NpyData::I64(vec![0, 14])).unwrap();
    let cam = NpyArray::from_f32(vec![2, 2, 3], (0..12).map(|i| i as f32).collect()).unwrap();
    encode_npz(&[("keys", &keys), ("high_res", &cam)], compressed).unwrap()
}

#[test]
fn mutated_npy_never_panics() {
    let seed = seed_npy();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..ROUNDS {
        let bytes = mutate(&seed, &mut rng);
        match NpyArray::from_bytes(&bytes, "m.npy") {
            Ok(a) => {
                // Whatever parsed must be self-consistent and usable as a CAM or fail cleanly.
                assert_eq!(Some(a.len()), camsam::core::npy::element_count(&a.shape));
                if let Err(e) = Cam::from_npy(&a, "m.npy", &CamOptions::default()) {
                    check_err(e, "m.npy");
                }
            }
            Err(e) => check_err(e, "m.npy"),
        }
    }
}

#[test]
fn mutated_cam_npz_never_panics() {
    for compressed in [false, true] {
        let seed = seed_cam_npz(compressed);
        let mut rng = Rng(0x1234_5678_9abc_def1 ^ compressed as u64);
        for _ in 0..ROUNDS {
            let bytes = mutate(&seed, &mut rng);
            for keys in [Keys::Foreground, Keys::ClassIds] {
                let opts = CamOptions {
                    keys,
                    ..CamOptions::default()
                };
                match Cam::from_npz(&bytes, "m.npz", &opts) {
                    Ok(cam) => {
                        let out = cam.to_label(None, &CamToLabel::default(), "m.npz").unwrap();
                        assert_eq!(out.label.data.len(), cam.height * cam.width);
                    }
                    Err(e) => check_err(e, "m.npz"),
                }
            }
            if let Ok(mut npz) = Npz::new(&bytes, "m.npz") {
                for key in npz.keys().iter().map(|k| k.to_string()).collect::<Vec<_>>() {
                    if let Err(e) = npz.read(&key) {
                        check_err(e, "m.npz");
                    }
                }
            }
        }
    }
}

#[test]
fn mutated_heatmap_pngs_never_panic() {
    let seed = LabelMap::new(5, 3, (0..15).map(|i| i * 17).collect())
        .unwrap()
        .encode_png(LabelFormat::Gray)
        .unwrap();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..ROUNDS {
        let bytes = mutate(&seed, &mut rng);
        let maps = vec![(7u8, bytes, "m_7.png".to_string())];
        match Cam::from_heatmaps(&maps, &CamOptions::default()) {
            Ok(cam) => {
                cam.to_label(None, &CamToLabel::default(), "m_7.png")
                    .unwrap();
            }
            Err(e) => check_err(e, "m_7.png"),
        }
    }
}

#[test]
fn mutated_label_lists_never_panic() {
    let seed = b"voc_id\tsource_file\tclasses\n2007_000033\ts/0.png\taeroplane\n\
                 2008_006874\ts/1.png\tmotorbike,person\n"
        .to_vec();
    let plain = b"a 1 15\nb: dog, cat\n# c\n".to_vec();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for seed in [seed, plain] {
        for _ in 0..ROUNDS {
            let bytes = mutate(&seed, &mut rng);
            let text = String::from_utf8_lossy(&bytes);
            match parse_image_labels(&text, "m.tsv", 21) {
                Ok(map) => assert!(map.values().flatten().all(|&c| (1..21).contains(&c))),
                Err(e) => check_err(e, "m.tsv"),
            }
        }
    }
}

#[test]
fn random_cams_give_labels_of_present_classes_only() {
    let mut rng = Rng(0x5555_aaaa_5555_aaaa);
    for _ in 0..ROUNDS / 10 {
        let (h, w) = (1 + rng.below(6), 1 + rng.below(6));
        let mut classes: Vec<u8> = (1..21).filter(|_| rng.below(4) == 0).collect();
        classes.truncate(5);
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1.0, 0.0, 1e30];
        let data = (0..classes.len() * h * w)
            .map(|_| match rng.below(10) {
                0 => specials[rng.below(specials.len())],
                _ => (rng.next() % 1000) as f32 / 100.0,
            })
            .collect();
        let cam = Cam::new(classes.clone(), h, w, data).unwrap();
        let params = CamToLabel {
            bg_threshold: rng.below(101) as f32 / 100.0,
            ignore_margin: rng.below(3) as f32 / 10.0,
        };
        let out = cam.to_label(None, &params, "r.npy").unwrap();
        for &v in &out.label.data {
            assert!(
                v == 0 || v == 255 || classes.contains(&v),
                "{v} not in {classes:?}"
            );
        }
    }
}
