//! The dense CRF that WSSS papers refine CAMs with: PSA / IRN / EPS's `crf_with_alpha` +
//! `imutils.crf_inference`, computed as pydensecrf (Krähenbühl's `densecrf` C++ code) does.
//!
//! References: Krähenbühl & Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian
//! Edge Potentials" (NeurIPS 2011; Algorithm 1, the mean-field update) and Adams, Baek & Davis,
//! "Fast High-Dimensional Filtering Using the Permutohedral Lattice" (Eurographics 2010; §3–4,
//! splat / blur / slice) for the filtering; Ahn & Kwak, PSA (CVPR 2018), Ahn et al., IRN
//! (CVPR 2019) and Lee et al., EPS (CVPR 2021) for the recipe on CAMs:
//!
//! 1. **probabilities**: `v` = the CAMs of the present classes, each max-normalised to 1
//!    ([`Cam::normalised`]); background `bg = (1 − maxₖ vₖ)^α` (α = `bg_power`: 4, PSA also
//!    used 32); `probs = [bg, v₁ … v_K]`, not renormalised. A file's own background scores
//!    ([`Cam::background`]) are not used: the recipe's background is this one;
//! 2. **unary** = `−ln(clip(probs, 1e−5, 1))` (pydensecrf's `unary_from_softmax`);
//! 3. two pairwise terms, each a Gaussian kernel on scaled features with Potts compatibility
//!    and symmetric normalisation: the **smoothness** kernel on `(x, y) / 3` (weight 3) and the
//!    **appearance** (bilateral) kernel on `(x/80, y/80, r/13, g/13, b/13)` (weight 10);
//! 4. **mean field**, 10 iterations: `Q = softmax(−unary)`, then each iteration
//!    `Q = softmax(−unary + Σ wₘ · k̃ₘ(Q))`, where `k̃ₘ(Q) = n ⊙ lattice(n ⊙ Q)`,
//!    `n = 1 / √(lattice(1) + 1e−20)`;
//! 5. **label** = argmax of `Q` (first maximum): index 0 → class 0, index i → the i-th class.
//!
//! The lattice follows `densecrf/src/permutohedral.cpp` as built for x86-64 (its SSE path):
//! features elevated onto the `d`-dimensional hyperplane of `ℤ^{d+1}`, the enclosing simplex
//! found by rounding to the nearest remainder-0 point (ties to even) and sorting, barycentric
//! weights splatted onto the `d + 1` vertices, a `[1/2 1 1/2]` blur along each of the `d + 1`
//! lattice axes in turn, sliced back with the same weights times `α = 1 / (1 + 2^−d)`. Like
//! the SSE build, the lattice also holds the vertices of the zero feature vector when the pixel
//! count is not a multiple of 4 (the padding lanes of the last block of four). Everything is
//! `f32`, as in densecrf.
//!
//! ```
//! use camsam::core::cam::Cam;
//! use camsam::refine::crf::{crf_label, CrfSettings};
//! // A 6×1 grey image; class 15 is confident on the left, absent on the right.
//! let image = image::RgbImage::from_pixel(6, 1, image::Rgb([90, 90, 90]));
//! let cam = Cam::new(vec![15], 1, 6, vec![1.0, 0.9, 0.8, 0.1, 0.0, 0.0]).unwrap();
//! let label = crf_label(&image, &cam, None, &CrfSettings::default(), "x.npz").unwrap();
//! assert_eq!(label.data, vec![15, 15, 15, 0, 0, 0]);
//! ```

use crate::core::cam::Cam;
use crate::core::label::LabelMap;
use crate::{Error, Result};
use image::RgbImage;

/// The CRF's settings: the recipe's constants, written here once.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CrfSettings {
    /// α in `bg = (1 − max v)^α` (PSA / IRN: 4; PSA's second setting: 32).
    pub bg_power: f32,
    /// Mean-field iterations (10).
    pub iterations: usize,
    /// Smoothness kernel: spatial standard deviation in pixels (3).
    pub gaussian_sxy: f32,
    /// Smoothness kernel: Potts weight (3).
    pub gaussian_compat: f32,
    /// Appearance kernel: spatial standard deviation in pixels (80).
    pub bilateral_sxy: f32,
    /// Appearance kernel: colour standard deviation in 0–255 units (13).
    pub bilateral_srgb: f32,
    /// Appearance kernel: Potts weight (10).
    pub bilateral_compat: f32,
}

impl Default for CrfSettings {
    fn default() -> Self {
        CrfSettings {
            bg_power: 4.0,
            iterations: 10,
            gaussian_sxy: 3.0,
            gaussian_compat: 3.0,
            bilateral_sxy: 80.0,
            bilateral_srgb: 13.0,
            bilateral_compat: 10.0,
        }
    }
}

impl CrfSettings {
    /// Check every number is finite and not negative, and every kernel scale is above 0.
    pub fn validate(&self) -> Result<()> {
        let scales = [
            ("gaussian_sxy", self.gaussian_sxy),
            ("bilateral_sxy", self.bilateral_sxy),
            ("bilateral_srgb", self.bilateral_srgb),
        ];
        let weights = [
            ("bg_power", self.bg_power),
            ("gaussian_compat", self.gaussian_compat),
            ("bilateral_compat", self.bilateral_compat),
        ];
        for (what, v) in scales {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::input(
                    format!("CRF {what}"),
                    format!("{v}; expected a finite kernel width above 0"),
                ));
            }
        }
        for (what, v) in weights {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::input(
                    format!("CRF {what}"),
                    format!("{v}; expected a finite number of at least 0"),
                ));
            }
        }
        Ok(())
    }
}

/// The CRF's marginals on `image` from `cam` (restricted to `present` classes when given):
/// `(class id of each label index, Q)`, where index 0 is background (class 0) and `Q` holds
/// `(K + 1) × H × W` probabilities, label-major. `name` names the CAM in errors.
pub fn crf_marginals(
    image: &RgbImage,
    cam: &Cam,
    present: Option<&[u8]>,
    settings: &CrfSettings,
    name: &str,
) -> Result<(Vec<u8>, Vec<f32>)> {
    settings.validate()?;
    let cam = cam.select(present, name)?.normalised();
    let (width, height) = (image.width() as usize, image.height() as usize);
    if (cam.height, cam.width) != (height, width) {
        return Err(Error::input(
            name,
            format!(
                "CAM of {}×{} (width×height) for an image of {width}×{height}; the CRF expects \
                 the CAM at image size (resize it first)",
                cam.width, cam.height
            ),
        ));
    }
    let labels = cam.classes.len() + 1;
    let unary = unary_from_softmax(&cam_probabilities(&cam, settings.bg_power));
    let crf = DenseCrf {
        labels,
        unary,
        pairwise: vec![
            PairwisePotential::new(
                &smoothness_features(width, height, settings.gaussian_sxy),
                2,
                settings.gaussian_compat,
            ),
            PairwisePotential::new(
                &appearance_features(image, settings.bilateral_sxy, settings.bilateral_srgb),
                5,
                settings.bilateral_compat,
            ),
        ],
    };
    let q = crf.inference(settings.iterations);
    let mut class_ids = vec![0u8];
    class_ids.extend_from_slice(&cam.classes);
    Ok((class_ids, label_major(&q, labels)))
}

/// The CRF's label map: the argmax of [`crf_marginals`]' `Q` (the first maximum), as class ids.
pub fn crf_label(
    image: &RgbImage,
    cam: &Cam,
    present: Option<&[u8]>,
    settings: &CrfSettings,
    name: &str,
) -> Result<LabelMap> {
    let (class_ids, q) = crf_marginals(image, cam, present, settings, name)?;
    let (width, height) = (image.width() as usize, image.height() as usize);
    let n = width * height;
    let data = (0..n)
        .map(|i| {
            let mut best = 0;
            for l in 1..class_ids.len() {
                if q[l * n + i] > q[best * n + i] {
                    best = l;
                }
            }
            class_ids[best]
        })
        .collect();
    LabelMap::new(width, height, data)
}

// ---------------------------------------------------------------------------------------------
// The recipe's inputs: probabilities, unary, kernel features (pixel-major, as densecrf's
// column-major `MatrixXf` of one column per pixel).

/// `[bg, v₁ … v_K]` per pixel (pixel-major), `bg = (1 − max v)^α`.
fn cam_probabilities(cam: &Cam, bg_power: f32) -> Vec<f32> {
    let n = cam.height * cam.width;
    let k = cam.classes.len();
    let mut probs = vec![0f32; n * (k + 1)];
    for (i, p) in probs.chunks_exact_mut(k + 1).enumerate() {
        let mut max = 0f32;
        for c in 0..k {
            let v = cam.data[c * n + i];
            p[c + 1] = v;
            max = max.max(v);
        }
        p[0] = (1.0 - max).powf(bg_power);
    }
    probs
}

/// pydensecrf's `unary_from_softmax(probs)`: `−ln(clip(p, 1e−5, 1))`, no renormalisation.
fn unary_from_softmax(probs: &[f32]) -> Vec<f32> {
    probs.iter().map(|&p| -p.clamp(1e-5, 1.0).ln()).collect()
}

/// `DenseCRF2D::addPairwiseGaussian`'s features: `(x / sxy, y / sxy)` per pixel.
fn smoothness_features(width: usize, height: usize, sxy: f32) -> Vec<f32> {
    let mut f = Vec::with_capacity(width * height * 2);
    for y in 0..height {
        for x in 0..width {
            f.extend([x as f32 / sxy, y as f32 / sxy]);
        }
    }
    f
}

/// `DenseCRF2D::addPairwiseBilateral`'s features: `(x/sxy, y/sxy, r/srgb, g/srgb, b/srgb)`.
fn appearance_features(image: &RgbImage, sxy: f32, srgb: f32) -> Vec<f32> {
    let (width, height) = image.dimensions();
    let mut f = Vec::with_capacity(width as usize * height as usize * 5);
    for (x, y, rgb) in image.enumerate_pixels() {
        let [r, g, b] = rgb.0;
        f.extend([
            x as f32 / sxy,
            y as f32 / sxy,
            r as f32 / srgb,
            g as f32 / srgb,
            b as f32 / srgb,
        ]);
    }
    f
}

/// Pixel-major `N × L` to label-major `L × N`.
fn label_major(q: &[f32], labels: usize) -> Vec<f32> {
    let n = q.len() / labels;
    let mut out = vec![0f32; q.len()];
    for (i, qi) in q.chunks_exact(labels).enumerate() {
        for (l, &v) in qi.iter().enumerate() {
            out[l * n + i] = v;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Mean-field inference (densecrf.cpp, pairwise.cpp, labelcompatibility.cpp).

/// A fully connected CRF over `N` pixels and `labels` labels (densecrf's `DenseCRF`).
struct DenseCrf {
    labels: usize,
    /// `N × labels`, pixel-major.
    unary: Vec<f32>,
    pairwise: Vec<PairwisePotential>,
}

impl DenseCrf {
    /// `DenseCRF::inference`: the mean-field marginals `Q` after `iterations` updates
    /// (Krähenbühl & Koltun, Algorithm 1), pixel-major.
    fn inference(&self, iterations: usize) -> Vec<f32> {
        let m = self.labels;
        let mut q = vec![0f32; self.unary.len()];
        let mut energy: Vec<f32> = self.unary.iter().map(|&u| -u).collect();
        exp_and_normalize(&mut q, &energy, m);
        let mut message = vec![0f32; q.len()];
        let mut buffers = LatticeBuffers::default();
        for _ in 0..iterations {
            for (e, &u) in energy.iter_mut().zip(&self.unary) {
                *e = -u;
            }
            for potential in &self.pairwise {
                potential.apply(&mut message, &q, m, &mut buffers);
                for (e, &p) in energy.iter_mut().zip(&message) {
                    *e -= p;
                }
            }
            exp_and_normalize(&mut q, &energy, m);
        }
        q
    }
}

/// `expAndNormalize`: per pixel, `out = exp(in − max) / Σ exp(in − max)`.
fn exp_and_normalize(out: &mut [f32], input: &[f32], labels: usize) {
    for (o, x) in out.chunks_exact_mut(labels).zip(input.chunks_exact(labels)) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for (o, &x) in o.iter_mut().zip(x) {
            *o = (x - max).exp();
            sum += *o;
        }
        for o in o.iter_mut() {
            *o /= sum;
        }
    }
}

/// One pairwise term: a Gaussian kernel with symmetric normalisation and a Potts
/// compatibility of weight `w` (densecrf's `PairwisePotential` with `DenseKernel`,
/// `DIAG_KERNEL`, `NORMALIZE_SYMMETRIC`, `PottsCompatibility`).
struct PairwisePotential {
    lattice: Permutohedral,
    /// `1 / √(lattice(1) + 1e−20)` per pixel.
    norm: Vec<f32>,
    potts_weight: f32,
}

impl PairwisePotential {
    /// The kernel on `features` (`N × d`, pixel-major).
    fn new(features: &[f32], d: usize, potts_weight: f32) -> Self {
        let lattice = Permutohedral::new(features, d);
        let ones = vec![1f32; lattice.n];
        let mut norm = vec![0f32; lattice.n];
        lattice.compute(&mut norm, &ones, 1, &mut LatticeBuffers::default());
        for v in &mut norm {
            *v = (1.0 / (*v as f64 + 1e-20).sqrt()) as f32;
        }
        PairwisePotential {
            lattice,
            norm,
            potts_weight,
        }
    }

    /// `PairwisePotential::apply`: the message `out = −w · n ⊙ lattice(n ⊙ Q)`.
    fn apply(&self, out: &mut [f32], q: &[f32], labels: usize, buffers: &mut LatticeBuffers) {
        let mut normalised = std::mem::take(&mut buffers.input);
        normalised.clear();
        for (qi, &n) in q.chunks_exact(labels).zip(&self.norm) {
            normalised.extend(qi.iter().map(|&v| v * n));
        }
        self.lattice.compute(out, &normalised, labels, buffers);
        buffers.input = normalised;
        let compatibility = -self.potts_weight;
        for (oi, &n) in out.chunks_exact_mut(labels).zip(&self.norm) {
            for o in oi {
                *o = compatibility * (*o * n);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The permutohedral lattice (Adams et al. 2010; densecrf's permutohedral.cpp).

/// Densecrf's hash table of lattice points: open addressing with linear probing, keyed by the
/// first `d` coordinates of a point (the last is implied by their zero sum).
struct HashTable {
    key_size: usize,
    filled: usize,
    /// Point id per slot, `u32::MAX` where empty.
    table: Vec<u32>,
    /// `filled × key_size` coordinates.
    keys: Vec<i32>,
}

const EMPTY: u32 = u32::MAX;

impl HashTable {
    fn new(key_size: usize, n_elements: usize) -> Self {
        HashTable {
            key_size,
            filled: 0,
            table: vec![EMPTY; (2 * n_elements).max(2)],
            keys: Vec::with_capacity(n_elements * key_size),
        }
    }

    fn hash(key: &[i32]) -> u64 {
        let mut r = 0u64;
        for &k in key {
            r = r.wrapping_add(k as i64 as u64).wrapping_mul(1664525);
        }
        r
    }

    fn key(&self, id: u32) -> &[i32] {
        let start = id as usize * self.key_size;
        &self.keys[start..start + self.key_size]
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn slot(&self, key: &[i32]) -> usize {
        let capacity = self.table.len();
        let mut h = (Self::hash(key) % capacity as u64) as usize;
        loop {
            let e = self.table[h];
            if e == EMPTY || self.key(e) == key {
                return h;
            }
            h = if h + 1 == capacity { 0 } else { h + 1 };
        }
    }

    /// The id of `key`, if present.
    fn find(&self, key: &[i32]) -> Option<u32> {
        let e = self.table[self.slot(key)];
        (e != EMPTY).then_some(e)
    }

    /// The id of `key`, inserted if new.
    fn find_or_insert(&mut self, key: &[i32]) -> u32 {
        if 2 * self.filled >= self.table.len() {
            self.grow();
        }
        let h = self.slot(key);
        if self.table[h] == EMPTY {
            self.table[h] = self.filled as u32;
            self.keys.extend_from_slice(key);
            self.filled += 1;
        }
        self.table[h]
    }

    fn grow(&mut self) {
        let capacity = self.table.len() * 2;
        self.table = vec![EMPTY; capacity];
        for id in 0..self.filled as u32 {
            let h = self.slot(self.key(id));
            self.table[h] = id;
        }
    }
}

/// A lattice point's neighbours along one axis, as `id + 1` (0: no such point, whose value is
/// the zero row of the value buffers).
#[derive(Clone, Copy)]
struct BlurNeighbors {
    n1: u32,
    n2: u32,
}

/// The permutohedral lattice of `n` feature vectors of dimension `d`.
struct Permutohedral {
    d: usize,
    n: usize,
    /// Number of lattice points.
    m: usize,
    /// `n × (d + 1)`: each pixel's enclosing simplex vertices (lattice point ids).
    offset: Vec<u32>,
    /// `n × (d + 1)`: the matching barycentric weights.
    barycentric: Vec<f32>,
    /// `(d + 1) × m`: the neighbours of each point along each lattice axis.
    blur_neighbors: Vec<BlurNeighbors>,
}

/// Scratch memory reused across filterings: the lattice values (`(m + 2) × value_size`, row 0
/// the zero row of absent neighbours) and the normalised input.
#[derive(Default)]
struct LatticeBuffers {
    values: Vec<f32>,
    new_values: Vec<f32>,
    input: Vec<f32>,
}

/// The per-feature state of [`Permutohedral::new`]'s embedding, allocated once.
struct Simplex {
    d: usize,
    /// `E` of Adams et al. p.5, diagonal part: `√(2/3)·(d+1) / √((i+1)(i+2))`.
    scale_factor: Vec<f32>,
    /// The vertices of the canonical simplex, `(d + 1) × (d + 1)`.
    canonical: Vec<i32>,
    elevated: Vec<f32>,
    /// The nearest remainder-0 point.
    rem0: Vec<f32>,
    rank: Vec<i32>,
    barycentric: Vec<f32>,
    key: Vec<i32>,
}

impl Simplex {
    fn new(d: usize) -> Self {
        let inv_std_dev = ((2.0f64 / 3.0).sqrt() * (d + 1) as f64) as f32;
        let scale_factor = (0..d)
            .map(|i| (1.0 / (((i + 2) * (i + 1)) as f64).sqrt() * inv_std_dev as f64) as f32)
            .collect();
        let mut canonical = vec![0i32; (d + 1) * (d + 1)];
        for i in 0..=d {
            for j in 0..=d {
                canonical[i * (d + 1) + j] = if j <= d - i {
                    i as i32
                } else {
                    i as i32 - (d as i32 + 1)
                };
            }
        }
        Simplex {
            d,
            scale_factor,
            canonical,
            elevated: vec![0.0; d + 1],
            rem0: vec![0.0; d + 1],
            rank: vec![0; d + 1],
            barycentric: vec![0.0; d + 2],
            key: vec![0; d],
        }
    }

    /// Elevate `feature` onto the hyperplane (`y = E p`), find its simplex (nearest
    /// remainder-0 point, then the rank of each coordinate) and its barycentric weights.
    fn enclose(&mut self, feature: &[f32]) {
        let d = self.d;
        let dp1 = (d + 1) as f32;
        let inv_dp1 = 1.0 / dp1;

        let mut sm = 0f32;
        for j in (1..=d).rev() {
            let cf = feature[j - 1] * self.scale_factor[j - 1];
            self.elevated[j] = sm - j as f32 * cf;
            sm += cf;
        }
        self.elevated[0] = sm;

        let mut sum = 0f32;
        for i in 0..=d {
            let v = (inv_dp1 * self.elevated[i]).round_ties_even();
            self.rem0[i] = v * dp1;
            sum += v;
        }

        self.rank.fill(0);
        for i in 0..d {
            let di = self.elevated[i] - self.rem0[i];
            for j in i + 1..=d {
                if di < self.elevated[j] - self.rem0[j] {
                    self.rank[i] += 1;
                } else {
                    self.rank[j] += 1;
                }
            }
        }

        // Bring a point off the plane (sum ≠ 0) back onto it.
        for i in 0..=d {
            self.rank[i] += sum as i32;
            if self.rank[i] < 0 {
                self.rank[i] += d as i32 + 1;
                self.rem0[i] += dp1;
            } else if self.rank[i] > d as i32 {
                self.rank[i] -= d as i32 + 1;
                self.rem0[i] -= dp1;
            }
        }

        // Barycentric coordinates (Adams et al. p.10).
        self.barycentric.fill(0.0);
        for i in 0..=d {
            let v = (self.elevated[i] - self.rem0[i]) * inv_dp1;
            let p = (d as i32 - self.rank[i]) as usize;
            self.barycentric[p] += v;
            self.barycentric[p + 1] -= v;
        }
        self.barycentric[0] += 1.0 + self.barycentric[d + 1];
    }

    /// The key of the simplex vertex `remainder` (after [`Simplex::enclose`]).
    fn vertex(&mut self, remainder: usize) -> &[i32] {
        let row = &self.canonical[remainder * (self.d + 1)..(remainder + 1) * (self.d + 1)];
        for i in 0..self.d {
            self.key[i] = (self.rem0[i] + row[self.rank[i] as usize] as f32) as i32;
        }
        &self.key
    }
}

impl Permutohedral {
    /// `Permutohedral::init`: the lattice of `features` (`n × d`, pixel-major).
    fn new(features: &[f32], d: usize) -> Self {
        let n = features.len() / d;
        let mut table = HashTable::new(d, n);
        let mut simplex = Simplex::new(d);
        let mut offset = Vec::with_capacity(n * (d + 1));
        let mut barycentric = Vec::with_capacity(n * (d + 1));
        for feature in features.chunks_exact(d) {
            simplex.enclose(feature);
            for remainder in 0..=d {
                offset.push(table.find_or_insert(simplex.vertex(remainder)));
                barycentric.push(simplex.barycentric[remainder]);
            }
        }
        // densecrf's SSE build embeds four features at a time and also inserts the vertices
        // of its zero-filled padding lanes; they hold no value but take part in the blur.
        if n % 4 != 0 {
            simplex.enclose(&vec![0.0; d]);
            for remainder in 0..=d {
                table.find_or_insert(simplex.vertex(remainder));
            }
        }
        let blur_neighbors = Self::neighbours(&table, d);
        Permutohedral {
            d,
            n,
            m: table.filled,
            offset,
            barycentric,
            blur_neighbors,
        }
    }

    /// For each axis `j` and point `key`: `n1 = key − 1 + (d+1)·e_j`, `n2 = key + 1 − (d+1)·e_j`
    /// (on the first `d` coordinates; the last is implied).
    fn neighbours(table: &HashTable, d: usize) -> Vec<BlurNeighbors> {
        let m = table.filled;
        let mut out = Vec::with_capacity((d + 1) * m);
        let (mut n1, mut n2) = (vec![0i32; d], vec![0i32; d]);
        let id_plus_one = |key: &[i32]| table.find(key).map_or(0, |id| id + 1);
        for j in 0..=d {
            for id in 0..m as u32 {
                let key = table.key(id);
                for k in 0..d {
                    n1[k] = key[k] - 1;
                    n2[k] = key[k] + 1;
                }
                if j < d {
                    n1[j] = key[j] + d as i32;
                    n2[j] = key[j] - d as i32;
                }
                out.push(BlurNeighbors {
                    n1: id_plus_one(&n1),
                    n2: id_plus_one(&n2),
                });
            }
        }
        out
    }

    /// Gaussian filtering of `input` (`n × value_size`, pixel-major) into `out`: splat, blur
    /// along each axis `0..=d`, slice.
    fn compute(
        &self,
        out: &mut [f32],
        input: &[f32],
        value_size: usize,
        buffers: &mut LatticeBuffers,
    ) {
        let vs = value_size;
        let len = (self.m + 2) * vs;
        let values = &mut buffers.values;
        let new_values = &mut buffers.new_values;
        values.clear();
        values.resize(len, 0.0);
        new_values.clear();
        new_values.resize(len, 0.0);
        let stride = self.d + 1;

        // Splat.
        for (i, value) in input.chunks_exact(vs).enumerate() {
            for j in 0..stride {
                let o = self.offset[i * stride + j] as usize + 1;
                let w = self.barycentric[i * stride + j];
                for (v, &x) in values[o * vs..(o + 1) * vs].iter_mut().zip(value) {
                    *v += w * x;
                }
            }
        }

        // Blur (`max(1)`: an empty image has no points and no axes to walk).
        for axis in self.blur_neighbors.chunks(self.m.max(1)) {
            for (i, nb) in axis.iter().enumerate() {
                let (o, n1, n2) = ((i + 1) * vs, nb.n1 as usize * vs, nb.n2 as usize * vs);
                for k in 0..vs {
                    new_values[o + k] = values[o + k] + 0.5 * (values[n1 + k] + values[n2 + k]);
                }
            }
            std::mem::swap(values, new_values);
        }

        // Slice. Alpha is Adams' "magic scaling constant"; densecrf's sequential path (value
        // size ≤ 2) multiplies it last, its SSE path (larger values) into the weight first.
        let alpha = 1.0f32 / (1.0 + 2f32.powi(-(self.d as i32)));
        let sse = vs > 2;
        for (i, o) in out.chunks_exact_mut(vs).enumerate() {
            o.fill(0.0);
            for j in 0..stride {
                let at = self.offset[i * stride + j] as usize + 1;
                let w = self.barycentric[i * stride + j];
                let lattice_value = &values[at * vs..(at + 1) * vs];
                if sse {
                    let w = w * alpha;
                    for (o, &v) in o.iter_mut().zip(lattice_value) {
                        *o += w * v;
                    }
                } else {
                    for (o, &v) in o.iter_mut().zip(lattice_value) {
                        *o += w * v * alpha;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(width: u32, height: u32) -> RgbImage {
        RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128]))
    }

    #[test]
    fn without_pairwise_terms_the_label_is_the_unary_argmax() {
        let image = grey(4, 1);
        // Class 3 normalised: 1, .9, .5, .1 → bg (1 − v)^4: 0, 1e−4, .0625, .6561.
        let cam = Cam::new(vec![3], 1, 4, vec![1.0, 0.9, 0.5, 0.1]).unwrap();
        let s = CrfSettings {
            gaussian_compat: 0.0,
            bilateral_compat: 0.0,
            ..CrfSettings::default()
        };
        let label = crf_label(&image, &cam, None, &s, "t").unwrap();
        assert_eq!(label.data, vec![3, 3, 3, 0]);
        // Q is then the probabilities renormalised (softmax of their logs), whatever the
        // number of iterations.
        let (ids, q) = crf_marginals(&image, &cam, None, &s, "t").unwrap();
        assert_eq!(ids, vec![0, 3]);
        let bg = 0.5f32.powi(4);
        assert!((q[2] - bg / (bg + 0.5)).abs() < 1e-6, "{q:?}");
    }

    #[test]
    fn marginals_are_distributions() {
        let mut image = grey(7, 5);
        for (x, _, p) in image.enumerate_pixels_mut() {
            p.0 = [x as u8 * 30, 20, 200 - x as u8 * 25];
        }
        let n = 35;
        let data: Vec<f32> = (0..2 * n).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
        let cam = Cam::new(vec![1, 7], 5, 7, data).unwrap();
        let (ids, q) = crf_marginals(&image, &cam, None, &CrfSettings::default(), "t").unwrap();
        assert_eq!(ids, vec![0, 1, 7]);
        for i in 0..n {
            let total: f32 = (0..3).map(|l| q[l * n + i]).sum();
            assert!((total - 1.0).abs() < 1e-5, "pixel {i}: Σ Q = {total}");
        }
        assert!(q.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn swapping_two_classes_swaps_their_marginals() {
        let mut image = grey(9, 6);
        for (x, y, p) in image.enumerate_pixels_mut() {
            p.0 = [(x * 28) as u8, (y * 40) as u8, 90];
        }
        let n = 54;
        let a: Vec<f32> = (0..n).map(|i| (i % 9) as f32 / 8.0).collect();
        let b: Vec<f32> = (0..n).map(|i| 1.0 - (i % 9) as f32 / 8.0).collect();
        let cam = Cam::new(vec![2, 5], 6, 9, [a.clone(), b.clone()].concat()).unwrap();
        let swapped = Cam::new(vec![2, 5], 6, 9, [b, a].concat()).unwrap();
        let s = CrfSettings::default();
        let (_, q) = crf_marginals(&image, &cam, None, &s, "t").unwrap();
        let (_, r) = crf_marginals(&image, &swapped, None, &s, "t").unwrap();
        for i in 0..n {
            for (l, m) in [(0, 0), (1, 2), (2, 1)] {
                let (x, y) = (q[l * n + i], r[m * n + i]);
                assert!((x - y).abs() < 1e-6, "pixel {i} label {l}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn the_pairwise_terms_flip_a_lone_weak_pixel() {
        // Class 4 fairly sure everywhere (v = .7: bg = .0081) but one pixel with v = .05
        // (bg = .81): alone, the unary says background there; its neighbours outvote it.
        let image = grey(9, 9);
        let mut v = vec![0.7f32; 81];
        v[40] = 0.05;
        v[0] = 1.0;
        let cam = Cam::new(vec![4], 9, 9, v).unwrap();
        let s = CrfSettings {
            gaussian_compat: 0.0,
            bilateral_compat: 0.0,
            ..CrfSettings::default()
        };
        assert_eq!(crf_label(&image, &cam, None, &s, "t").unwrap().data[40], 0);
        let label = crf_label(&image, &cam, None, &CrfSettings::default(), "t").unwrap();
        assert!(label.data.iter().all(|&c| c == 4), "{:?}", label.data);
    }

    #[test]
    fn lattice_weights_sum_to_one_and_a_constant_stays_near_constant() {
        let features = smoothness_features(20, 20, 3.0);
        let lattice = Permutohedral::new(&features, 2);
        for w in lattice.barycentric.chunks_exact(3) {
            let total: f32 = w.iter().sum();
            assert!((total - 1.0).abs() < 1e-5, "{w:?}");
            assert!(w.iter().all(|&v| v >= -1e-6), "{w:?}");
        }
        let mut out = vec![0f32; 400];
        lattice.compute(&mut out, &vec![1.0; 400], 1, &mut LatticeBuffers::default());
        // Away from the borders the filtered constant is the same everywhere (± the
        // lattice's discretisation, a few percent).
        let centre = out[10 * 20 + 10];
        for y in 6..14 {
            for x in 6..14 {
                let v = out[y * 20 + x];
                assert!(
                    (v / centre - 1.0).abs() < 0.05,
                    "({x},{y}): {v} vs {centre}"
                );
            }
        }
    }

    #[test]
    fn hash_table_finds_what_it_stored_and_grows() {
        let mut table = HashTable::new(3, 2);
        let keys: Vec<[i32; 3]> = (0..50).map(|i| [i, -i, 7 * i % 5]).collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(table.find_or_insert(k), i as u32);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(table.find(k), Some(i as u32));
            assert_eq!(table.find_or_insert(k), i as u32);
        }
        assert_eq!(table.find(&[1, 1, 1]), None);
        assert_eq!(table.filled, 50);
    }

    #[test]
    fn bad_settings_and_sizes_are_errors_naming_the_input() {
        let bad = |s: CrfSettings| s.validate().unwrap_err().to_string();
        let e = bad(CrfSettings {
            bilateral_srgb: 0.0,
            ..CrfSettings::default()
        });
        assert!(e.contains("bilateral_srgb"), "{e}");
        let e = bad(CrfSettings {
            bg_power: f32::NAN,
            ..CrfSettings::default()
        });
        assert!(e.contains("bg_power"), "{e}");
        let e = bad(CrfSettings {
            gaussian_compat: -1.0,
            ..CrfSettings::default()
        });
        assert!(e.contains("gaussian_compat"), "{e}");

        let cam = Cam::new(vec![1], 2, 3, vec![0.5; 6]).unwrap();
        let e = crf_label(
            &grey(2, 3),
            &cam,
            None,
            &CrfSettings::default(),
            "cams/a.npz",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cams/a.npz") && e.contains("3×2"), "{e}");
    }

    #[test]
    fn an_empty_image_gives_empty_marginals() {
        let cam = Cam::new(vec![1], 0, 0, vec![]).unwrap();
        let (ids, q) =
            crf_marginals(&grey(0, 0), &cam, None, &CrfSettings::default(), "t").unwrap();
        assert_eq!((ids, q.len()), (vec![0, 1], 0));
    }

    #[test]
    fn no_present_class_is_all_background() {
        let cam = Cam::new(vec![1], 2, 2, vec![1.0; 4]).unwrap();
        let label = crf_label(&grey(2, 2), &cam, Some(&[]), &CrfSettings::default(), "t").unwrap();
        assert_eq!(label.data, vec![0; 4]);
    }
}
