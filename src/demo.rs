//! The bundled demo: small scenes that camsam draws itself, procedurally, so the browser app
//! (and the CLI) can run a full refine → review → export before anyone supplies weights or
//! data. Nothing here comes from a dataset.
//!
//! Each scene has an RGB image, ground truth, one class activation map (CAM) per present class
//! and a set of class-agnostic "segment everything" masks in SAM's `amg.py` folder layout. The
//! CAMs mimic what WSSS CAMs do (Zhou et al., CVPR 2016; SEPL, arXiv 2305.05803 §1): they peak
//! on the most discriminative part of an object, miss its extremities and bleed into the
//! background (false activation blobs on background stuff). The masks are **simulated** SAM
//! everything-mode masks with SAM's behaviours, good and bad: whole objects with rough,
//! jittered borders, nested parts, background "stuff" regions, an object SAM missed (only a
//! part of it comes back), two objects returned as one merged mask, in no particular order.
//! SEPL's merge recovers most objects' extent and drops the false activation on stuff (where
//! it helps); it labels the merged mask with one class and cannot grow the missed object
//! (where it hurts), so the mIoU rises to a believable level, not to 100 %.
//!
//! ```
//! let files = camsam::demo::files().unwrap();
//! assert!(files.iter().any(|f| f.path == "images/demo_cat.png"));
//! assert!(files.iter().any(|f| f.path.starts_with("masks/demo_cat/")));
//! ```

use crate::core::label::LabelMap;
use crate::{Error, Result};

/// One generated file, with its path relative to the demo folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoFile {
    /// `images/<name>.png`, `cams/<name>_<class id>.png`, `masks/<name>/<i>.png` or
    /// `gt/<name>.png`.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// A generated scene, before encoding.
#[derive(Debug, Clone)]
pub struct Scene {
    pub name: &'static str,
    pub width: usize,
    pub height: usize,
    /// Row-major RGB, `3 * width * height` bytes.
    pub rgb: Vec<u8>,
    /// Ground-truth class ids.
    pub gt: LabelMap,
    /// `(class id, CAM)` per present class; each CAM is `width * height` values in 0..=1.
    pub cams: Vec<(u8, Vec<f32>)>,
    /// Binary masks, `width * height` each, in the (shuffled) order SAM would list them.
    pub masks: Vec<Vec<bool>>,
}

/// A filled primitive in pixel coordinates.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Centre, radii.
    Ellipse { cx: f32, cy: f32, rx: f32, ry: f32 },
    /// Corners (inclusive-exclusive).
    Rect { x0: f32, y0: f32, x1: f32, y1: f32 },
}

impl Shape {
    fn contains(&self, x: f32, y: f32) -> bool {
        match *self {
            Shape::Ellipse { cx, cy, rx, ry } => {
                let (dx, dy) = ((x - cx) / rx, (y - cy) / ry);
                dx * dx + dy * dy <= 1.0
            }
            Shape::Rect { x0, y0, x1, y1 } => x >= x0 && x < x1 && y >= y0 && y < y1,
        }
    }
}

/// One object: a class, its parts (each a primitive with a colour) and where its CAM peaks.
struct Object {
    class: u8,
    parts: Vec<(Shape, [u8; 3])>,
    /// CAM peak (x, y) and spread (sx, sy), in pixels.
    peak: (f32, f32),
    spread: (f32, f32),
    /// Parts (indices into `parts`) that SAM also returns as masks of their own.
    part_masks: Vec<usize>,
    /// What SAM's everything mode returns for the whole object.
    sam: Whole,
    /// A false-activation blob of this class's CAM on the background: centre, spread, height.
    false_activation: Option<(f32, f32, f32, f32)>,
}

/// SAM's mask of a whole object.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Whole {
    /// One mask of the object (jittered border).
    Found,
    /// No whole-object mask (only its part masks).
    Missed,
    /// One mask of this object and the object at this index together (given on the first).
    MergedWith(usize),
}

/// A background "stuff" region: a horizontal band with a colour gradient.
struct Band {
    y0: f32,
    y1: f32,
    top: [u8; 3],
    bottom: [u8; 3],
}

struct SceneSpec {
    name: &'static str,
    width: usize,
    height: usize,
    bands: Vec<Band>,
    objects: Vec<Object>,
}

fn ellipse(cx: f32, cy: f32, rx: f32, ry: f32) -> Shape {
    Shape::Ellipse { cx, cy, rx, ry }
}

fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Shape {
    Shape::Rect { x0, y0, x1, y1 }
}

fn specs() -> Vec<SceneSpec> {
    vec![
        SceneSpec {
            name: "demo_cat",
            width: 320,
            height: 240,
            bands: vec![
                Band {
                    y0: 0.0,
                    y1: 150.0,
                    top: [196, 214, 235],
                    bottom: [226, 232, 240],
                },
                Band {
                    y0: 150.0,
                    y1: 240.0,
                    top: [112, 150, 84],
                    bottom: [74, 110, 58],
                },
            ],
            objects: vec![
                // cat (8): body, head, tail; the CAM peaks on the head.
                Object {
                    class: 8,
                    parts: vec![
                        (ellipse(150.0, 165.0, 70.0, 38.0), [92, 84, 80]),
                        (ellipse(212.0, 122.0, 30.0, 27.0), [104, 96, 92]),
                        (rect(64.0, 150.0, 84.0, 200.0), [86, 78, 74]),
                    ],
                    peak: (200.0, 130.0),
                    spread: (42.0, 32.0),
                    part_masks: vec![1],
                    sam: Whole::Found,
                    false_activation: None,
                },
                // potted plant (16): pot and leaves.
                Object {
                    class: 16,
                    parts: vec![
                        (rect(262.0, 180.0, 298.0, 222.0), [170, 92, 60]),
                        (ellipse(280.0, 150.0, 26.0, 34.0), [52, 128, 58]),
                    ],
                    peak: (280.0, 150.0),
                    spread: (20.0, 26.0),
                    part_masks: vec![0],
                    sam: Whole::Missed,
                    false_activation: None,
                },
            ],
        },
        SceneSpec {
            name: "demo_street",
            width: 320,
            height: 240,
            bands: vec![
                Band {
                    y0: 0.0,
                    y1: 120.0,
                    top: [150, 186, 222],
                    bottom: [200, 214, 228],
                },
                Band {
                    y0: 120.0,
                    y1: 240.0,
                    top: [96, 96, 100],
                    bottom: [70, 70, 74],
                },
            ],
            objects: vec![
                // car (7): body, cabin, two wheels; the CAM peaks on the front.
                Object {
                    class: 7,
                    parts: vec![
                        (rect(40.0, 140.0, 200.0, 185.0), [178, 34, 40]),
                        (rect(80.0, 108.0, 165.0, 141.0), [150, 40, 46]),
                        (ellipse(78.0, 188.0, 17.0, 17.0), [30, 30, 30]),
                        (ellipse(165.0, 188.0, 17.0, 17.0), [30, 30, 30]),
                    ],
                    peak: (150.0, 155.0),
                    spread: (48.0, 30.0),
                    part_masks: vec![1],
                    sam: Whole::MergedWith(1),
                    false_activation: None,
                },
                // person (15): torso, head, legs; the CAM peaks on the face.
                Object {
                    class: 15,
                    parts: vec![
                        (rect(238.0, 98.0, 270.0, 160.0), [40, 70, 150]),
                        (ellipse(254.0, 82.0, 14.0, 16.0), [226, 186, 160]),
                        (rect(240.0, 160.0, 268.0, 215.0), [50, 50, 60]),
                    ],
                    peak: (254.0, 95.0),
                    spread: (20.0, 40.0),
                    part_masks: vec![2],
                    sam: Whole::Found,
                    false_activation: Some((150.0, 215.0, 22.0, 0.8)),
                },
            ],
        },
        SceneSpec {
            name: "demo_sky",
            width: 320,
            height: 240,
            bands: vec![
                Band {
                    y0: 0.0,
                    y1: 190.0,
                    top: [92, 150, 214],
                    bottom: [170, 204, 236],
                },
                Band {
                    y0: 190.0,
                    y1: 240.0,
                    top: [60, 90, 140],
                    bottom: [40, 64, 110],
                },
            ],
            objects: vec![
                // aeroplane (1): fuselage, wings, tail fin.
                Object {
                    class: 1,
                    parts: vec![
                        (ellipse(150.0, 80.0, 100.0, 16.0), [220, 220, 226]),
                        (rect(120.0, 40.0, 160.0, 120.0), [200, 200, 208]),
                        (rect(50.0, 50.0, 70.0, 80.0), [190, 40, 40]),
                    ],
                    peak: (170.0, 80.0),
                    spread: (60.0, 22.0),
                    part_masks: vec![2],
                    sam: Whole::Found,
                    false_activation: Some((60.0, 170.0, 18.0, 0.75)),
                },
                // bird (3): body and head.
                Object {
                    class: 3,
                    parts: vec![
                        (ellipse(250.0, 170.0, 26.0, 14.0), [60, 44, 36]),
                        (ellipse(274.0, 160.0, 10.0, 9.0), [40, 30, 24]),
                    ],
                    peak: (268.0, 163.0),
                    spread: (16.0, 12.0),
                    part_masks: vec![],
                    sam: Whole::Found,
                    false_activation: None,
                },
            ],
        },
    ]
}

/// A deterministic hash of integers to `[0, 1)` (for texture noise and shuffling).
fn hash01(a: u32, b: u32, c: u32) -> f32 {
    let mut h = a
        .wrapping_mul(0x9E37_79B1)
        .wrapping_add(b.wrapping_mul(0x85EB_CA77))
        .wrapping_add(c.wrapping_mul(0xC2B2_AE3D));
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^= h >> 15;
    (h >> 8) as f32 / (1u32 << 24) as f32
}

fn render(spec: &SceneSpec, seed: u32) -> Scene {
    let (w, h) = (spec.width, spec.height);
    let mut rgb = vec![0u8; 3 * w * h];
    let mut gt = vec![0u8; w * h];
    // Which band / object part owns each pixel (for the masks).
    let mut band_of = vec![usize::MAX; w * h];
    let mut part_of: Vec<Option<(usize, usize)>> = vec![None; w * h];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let i = y * w + x;
            let noise = hash01(x as u32, y as u32, seed) * 16.0 - 8.0;
            let mut colour = [0f32; 3];
            for (b, band) in spec.bands.iter().enumerate() {
                if fy >= band.y0 && fy < band.y1 {
                    let t = (fy - band.y0) / (band.y1 - band.y0);
                    colour = std::array::from_fn(|c| {
                        band.top[c] as f32 * (1.0 - t) + band.bottom[c] as f32 * t
                    });
                    band_of[i] = b;
                }
            }
            for (o, object) in spec.objects.iter().enumerate() {
                for (p, (shape, col)) in object.parts.iter().enumerate() {
                    if shape.contains(fx, fy) {
                        colour = col.map(|v| v as f32);
                        gt[i] = object.class;
                        part_of[i] = Some((o, p));
                    }
                }
            }
            for (dst, c) in rgb[3 * i..3 * i + 3].iter_mut().zip(colour) {
                *dst = (c + noise).round().clamp(0.0, 255.0) as u8;
            }
        }
    }

    let cams = spec
        .objects
        .iter()
        .map(|o| {
            let (px, py) = o.peak;
            let (sx, sy) = o.spread;
            let cam = (0..w * h)
                .map(|i| {
                    let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
                    let (dx, dy) = ((x - px) / sx, (y - py) / sy);
                    let wobble = 0.9 + 0.1 * hash01(x as u32 / 8, y as u32 / 8, seed + 17);
                    let blob = o.false_activation.map_or(0.0, |(bx, by, sd, peak)| {
                        let (dx, dy) = ((x - bx) / sd, (y - by) / sd);
                        peak * (-(dx * dx + dy * dy) / 2.0).exp()
                    });
                    ((-(dx * dx + dy * dy) / 2.0).exp() * wobble).max(blob)
                })
                .collect::<Vec<f32>>();
            let max = cam
                .iter()
                .cloned()
                .fold(0.0f32, f32::max)
                .max(f32::MIN_POSITIVE);
            (o.class, cam.into_iter().map(|v| v / max).collect())
        })
        .collect();

    let mut masks: Vec<Vec<bool>> = Vec::new();
    let merged_into: Vec<Option<usize>> = (0..spec.objects.len())
        .map(|o| {
            spec.objects
                .iter()
                .position(|other| other.sam == Whole::MergedWith(o))
        })
        .collect();
    for (o, object) in spec.objects.iter().enumerate() {
        let of = |objects: &[usize]| -> Vec<bool> {
            part_of
                .iter()
                .map(|p| matches!(p, Some((q, _)) if objects.contains(q)))
                .collect()
        };
        match (object.sam, merged_into[o]) {
            (Whole::Found, None) => masks.push(jittered(of(&[o]), w, h, seed + o as u32)),
            (Whole::MergedWith(other), _) => {
                masks.push(jittered(of(&[o, other]), w, h, seed + o as u32))
            }
            // Missed, or returned inside another object's merged mask.
            _ => {}
        }
        for &p in &object.part_masks {
            let part = part_of.iter().map(|&q| q == Some((o, p))).collect();
            masks.push(jittered(part, w, h, seed + 31 + p as u32));
        }
    }
    for b in 0..spec.bands.len() {
        let region: Vec<bool> = (0..w * h)
            .map(|i| band_of[i] == b && part_of[i].is_none())
            .collect();
        if region.iter().any(|&v| v) {
            masks.push(region);
        }
    }
    // SAM lists masks in no semantic order: shuffle deterministically (Fisher–Yates).
    for i in (1..masks.len()).rev() {
        let j = (hash01(i as u32, seed, 99) * (i + 1) as f32) as usize;
        masks.swap(i, j.min(i));
    }

    Scene {
        name: spec.name,
        width: w,
        height: h,
        rgb,
        gt: LabelMap {
            width: w,
            height: h,
            data: gt,
        },
        cams,
        masks,
    }
}

/// `mask` with a rough border, as SAM's are: pixels within 2 px of the border flip where a
/// coarse noise field is high.
fn jittered(mask: Vec<bool>, w: usize, h: usize, seed: u32) -> Vec<bool> {
    const R: i64 = 2;
    let at = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && mask[y as usize * w + x as usize]
    };
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            let inside = mask[i];
            let border = [(R, 0), (-R, 0), (0, R), (0, -R)]
                .iter()
                .any(|&(dx, dy)| at(x + dx, y + dy) != inside);
            let flip = border && hash01(x as u32 / 3, y as u32 / 3, seed + 7) > 0.55;
            inside != flip
        })
        .collect()
}

/// The demo scenes, rendered.
pub fn scenes() -> Vec<Scene> {
    specs()
        .iter()
        .enumerate()
        .map(|(i, s)| render(s, 1 + i as u32))
        .collect()
}

/// Encode an 8-bit PNG (`channels` 1 = grayscale, 3 = RGB).
fn encode_png(width: usize, height: usize, channels: usize, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_color(if channels == 3 {
        png::ColorType::Rgb
    } else {
        png::ColorType::Grayscale
    });
    let fail = |e: png::EncodingError| Error::encode("demo PNG", e);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(data).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

/// The demo as files, in the layouts camsam reads: images, per-class CAM heatmap PNGs
/// (`<name>_<class id>.png`, 0–255 for 0–1), SAM mask folders (`<name>/<i>.png`, 0/255) and
/// ground truth (VOC palette).
pub fn files() -> Result<Vec<DemoFile>> {
    let mut files = Vec::new();
    for scene in scenes() {
        let (w, h, name) = (scene.width, scene.height, scene.name);
        files.push(DemoFile {
            path: format!("images/{name}.png"),
            bytes: encode_png(w, h, 3, &scene.rgb)?,
        });
        for (class, cam) in &scene.cams {
            let gray: Vec<u8> = cam
                .iter()
                .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
                .collect();
            files.push(DemoFile {
                path: format!("cams/{name}_{class}.png"),
                bytes: encode_png(w, h, 1, &gray)?,
            });
        }
        for (i, mask) in scene.masks.iter().enumerate() {
            let gray: Vec<u8> = mask.iter().map(|&m| if m { 255 } else { 0 }).collect();
            files.push(DemoFile {
                path: format!("masks/{name}/{i}.png"),
                bytes: encode_png(w, h, 1, &gray)?,
            });
        }
        files.push(DemoFile {
            path: format!("gt/{name}.png"),
            bytes: scene
                .gt
                .encode_png(crate::core::label::LabelFormat::Palette)?,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_deterministic_and_consistent() {
        let (a, b) = (scenes(), scenes());
        assert_eq!(a.len(), 3);
        for (s, t) in a.iter().zip(&b) {
            assert_eq!(s.rgb, t.rgb);
            assert_eq!(s.masks, t.masks);
            assert_eq!(s.rgb.len(), 3 * s.width * s.height);
            assert_eq!(s.gt.data.len(), s.width * s.height);
            assert!(s.masks.len() >= 4, "{}: {} masks", s.name, s.masks.len());
            for (class, cam) in &s.cams {
                assert!(
                    s.gt.data.contains(class),
                    "{}: CAM for absent class",
                    s.name
                );
                let max = cam.iter().cloned().fold(f32::MIN, f32::max);
                assert!((max - 1.0).abs() < 1e-6 && cam.iter().all(|v| (0.0..=1.0).contains(v)));
            }
        }
    }

    /// The CAMs must be imperfect (else the demo shows nothing) but point at the object.
    #[test]
    fn cams_cover_part_of_their_object_and_leak() {
        for s in scenes() {
            for (class, cam) in &s.cams {
                let hot: Vec<bool> = cam.iter().map(|&v| v > 0.25).collect();
                let obj: Vec<bool> = s.gt.data.iter().map(|v| v == class).collect();
                let inter = hot.iter().zip(&obj).filter(|(a, b)| **a && **b).count();
                let (n_hot, n_obj) = (
                    hot.iter().filter(|v| **v).count(),
                    obj.iter().filter(|v| **v).count(),
                );
                let iou = inter as f64 / (n_hot + n_obj - inter) as f64;
                assert!(
                    (0.2..0.85).contains(&iou),
                    "{} class {class}: thresholded CAM IoU {iou:.3}",
                    s.name
                );
            }
        }
    }

    /// SEPL helps on the demo, but its simulated SAM masks fail as SAM does (a missed object,
    /// a merged mask, rough borders): the mIoU rises to a believable level, short of 100 %.
    #[test]
    fn sepl_helps_but_the_demo_is_not_perfect() {
        use crate::core::cam::{Cam, CamToLabel};
        use crate::core::masks::BitMask;
        use crate::core::metrics::Confusion;
        let (mut before, mut after) = (Confusion::new(21).unwrap(), Confusion::new(21).unwrap());
        for s in scenes() {
            let classes: Vec<u8> = s.cams.iter().map(|c| c.0).collect();
            let data: Vec<f32> = s.cams.iter().flat_map(|c| c.1.clone()).collect();
            let cam = Cam::new(classes, s.height, s.width, data).unwrap();
            let pseudo = cam
                .to_label(None, &CamToLabel::default(), s.name)
                .unwrap()
                .label;
            let bits: Vec<BitMask> = s
                .masks
                .iter()
                .map(|m| BitMask::from_bools(s.width, s.height, m).unwrap())
                .collect();
            let refs: Vec<&BitMask> = bits.iter().collect();
            let merged = crate::core::sepl::merge(&pseudo, &refs, &Default::default()).unwrap();
            before.add(&s.gt, &pseudo, s.name, s.name).unwrap();
            after.add(&s.gt, &merged.label, s.name, s.name).unwrap();
        }
        let (b, a) = (before.miou().unwrap(), after.miou().unwrap());
        assert!((0.35..0.6).contains(&b), "mIoU before {b:.3}");
        assert!(
            (0.7..0.92).contains(&a),
            "mIoU after {a:.3}: not believable"
        );
    }

    #[test]
    fn files_decode_in_the_expected_formats() {
        let files = files().unwrap();
        let gt = files
            .iter()
            .find(|f| f.path == "gt/demo_street.png")
            .unwrap();
        let map = LabelMap::decode_png(&gt.bytes, &gt.path).unwrap();
        assert_eq!(map.present_ids(), vec![0, 7, 15]);
        let mask = files
            .iter()
            .find(|f| f.path == "masks/demo_sky/0.png")
            .unwrap();
        let m = LabelMap::decode_png(&mask.bytes, &mask.path).unwrap();
        assert!(m.data.iter().all(|&v| v == 0 || v == 255));
        assert!(files.iter().any(|f| f.path == "cams/demo_cat_8.png"));
    }
}
