//! MobileSAM (`vit_t`) checkpoints: the official PyTorch `mobile_sam.pt` (a zip archive holding
//! a pickled `state_dict`, as written by `torch.save`) and `.safetensors` files with the same
//! official key names (`image_encoder.*`, `prompt_encoder.*`, `mask_decoder.*`; the candle
//! conversion `mobile_sam-tiny-vitt.safetensors` uses them too).
//!
//! Names and shapes are checked up front against the MobileSAM architecture
//! ([`expected_tensors`], derived from the TinyViT-5M / SAM prompt-encoder / mask-decoder
//! configuration of `mobile_sam/build_sam.py::build_sam_vit_t`), so a wrong file — SAM ViT-B/L/H,
//! another model, a truncated download, not a checkpoint at all — is rejected with a message
//! saying what was found and what was expected, before any network is built.
//!
//! Every tensor is held as host `f32` and can be read by name, which is all a backend needs:
//!
//! ```no_run
//! # fn main() -> camsam::Result<()> {
//! let weights = camsam::sam::weights::Weights::load("mobile_sam.pt".as_ref())?;
//! let w = weights.get("mask_decoder.iou_token.weight")?;
//! assert_eq!(w.shape, vec![1, 256]);
//! # Ok(()) }
//! ```

use super::pickle_check;
use crate::limits::read_zip_entry;
use crate::{Error, Result};
use candle_core::pickle::{Object, Stack};
use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

/// One tensor of the checkpoint, converted to host `f32`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A validated MobileSAM checkpoint.
#[derive(Debug, Clone)]
pub struct Weights {
    source: String,
    tensors: HashMap<String, WeightTensor>,
}

/// TinyViT-5M, the MobileSAM image encoder (`tiny_vit_sam.py`, `build_sam_vit_t`).
pub mod tiny_vit_config {
    pub const EMBED_DIMS: [usize; 4] = [64, 128, 160, 320];
    pub const DEPTHS: [usize; 4] = [2, 2, 6, 2];
    pub const NUM_HEADS: [usize; 4] = [2, 4, 5, 10];
    pub const WINDOW_SIZES: [usize; 4] = [7, 7, 14, 7];
    pub const MBCONV_EXPAND_RATIO: usize = 4;
    pub const MLP_RATIO: usize = 4;
    /// Channels of the image embedding (the neck's output) and of every prompt token.
    pub const NECK_DIM: usize = 256;
}

/// Whether a tensor must be present, or may be missing (unused by inference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    /// The classification head of TinyViT and BatchNorm's `num_batches_tracked`.
    Optional,
}

/// The tensors of a MobileSAM (`vit_t`) state dict: name, shape, and whether inference uses it.
pub fn expected_tensors() -> Vec<(String, Vec<usize>, Need)> {
    use tiny_vit_config::*;
    let mut t = Vec::new();
    let mut req = |name: String, shape: &[usize]| t.push((name, shape.to_vec(), Need::Required));
    let conv_bn = |req: &mut dyn FnMut(String, &[usize]), p: &str, cin: usize, cout: usize, k| {
        req(format!("{p}.c.weight"), &[cout, cin, k, k]);
        for n in ["weight", "bias", "running_mean", "running_var"] {
            req(format!("{p}.bn.{n}"), &[cout]);
        }
    };
    let e = "image_encoder";
    conv_bn(
        &mut req,
        &format!("{e}.patch_embed.seq.0"),
        3,
        EMBED_DIMS[0] / 2,
        3,
    );
    conv_bn(
        &mut req,
        &format!("{e}.patch_embed.seq.2"),
        EMBED_DIMS[0] / 2,
        EMBED_DIMS[0],
        3,
    );
    for (i, &dim) in EMBED_DIMS.iter().enumerate() {
        let l = format!("{e}.layers.{i}");
        for b in 0..DEPTHS[i] {
            let p = format!("{l}.blocks.{b}");
            if i == 0 {
                let hidden = dim * MBCONV_EXPAND_RATIO;
                conv_bn(&mut req, &format!("{p}.conv1"), dim, hidden, 1);
                conv_bn(&mut req, &format!("{p}.conv2"), 1, hidden, 3);
                conv_bn(&mut req, &format!("{p}.conv3"), hidden, dim, 1);
            } else {
                let ws = WINDOW_SIZES[i];
                req(
                    format!("{p}.attn.attention_biases"),
                    &[NUM_HEADS[i], ws * ws],
                );
                req(format!("{p}.attn.norm.weight"), &[dim]);
                req(format!("{p}.attn.norm.bias"), &[dim]);
                req(format!("{p}.attn.qkv.weight"), &[3 * dim, dim]);
                req(format!("{p}.attn.qkv.bias"), &[3 * dim]);
                req(format!("{p}.attn.proj.weight"), &[dim, dim]);
                req(format!("{p}.attn.proj.bias"), &[dim]);
                conv_bn(&mut req, &format!("{p}.local_conv"), 1, dim, 3);
                req(format!("{p}.mlp.norm.weight"), &[dim]);
                req(format!("{p}.mlp.norm.bias"), &[dim]);
                req(format!("{p}.mlp.fc1.weight"), &[MLP_RATIO * dim, dim]);
                req(format!("{p}.mlp.fc1.bias"), &[MLP_RATIO * dim]);
                req(format!("{p}.mlp.fc2.weight"), &[dim, MLP_RATIO * dim]);
                req(format!("{p}.mlp.fc2.bias"), &[dim]);
            }
        }
        if i + 1 < EMBED_DIMS.len() {
            let out = EMBED_DIMS[i + 1];
            let p = format!("{l}.downsample");
            conv_bn(&mut req, &format!("{p}.conv1"), dim, out, 1);
            conv_bn(&mut req, &format!("{p}.conv2"), 1, out, 3);
            conv_bn(&mut req, &format!("{p}.conv3"), out, out, 1);
        }
    }
    let last = EMBED_DIMS[3];
    req(format!("{e}.neck.0.weight"), &[NECK_DIM, last, 1, 1]);
    req(format!("{e}.neck.1.weight"), &[NECK_DIM]);
    req(format!("{e}.neck.1.bias"), &[NECK_DIM]);
    req(format!("{e}.neck.2.weight"), &[NECK_DIM, NECK_DIM, 3, 3]);
    req(format!("{e}.neck.3.weight"), &[NECK_DIM]);
    req(format!("{e}.neck.3.bias"), &[NECK_DIM]);

    let p = "prompt_encoder";
    let d = NECK_DIM;
    req(
        format!("{p}.pe_layer.positional_encoding_gaussian_matrix"),
        &[2, d / 2],
    );
    for i in 0..4 {
        req(format!("{p}.point_embeddings.{i}.weight"), &[1, d]);
    }
    req(format!("{p}.not_a_point_embed.weight"), &[1, d]);
    req(format!("{p}.no_mask_embed.weight"), &[1, d]);
    req(format!("{p}.mask_downscaling.0.weight"), &[4, 1, 2, 2]);
    req(format!("{p}.mask_downscaling.0.bias"), &[4]);
    req(format!("{p}.mask_downscaling.1.weight"), &[4]);
    req(format!("{p}.mask_downscaling.1.bias"), &[4]);
    req(format!("{p}.mask_downscaling.3.weight"), &[16, 4, 2, 2]);
    req(format!("{p}.mask_downscaling.3.bias"), &[16]);
    req(format!("{p}.mask_downscaling.4.weight"), &[16]);
    req(format!("{p}.mask_downscaling.4.bias"), &[16]);
    req(format!("{p}.mask_downscaling.6.weight"), &[d, 16, 1, 1]);
    req(format!("{p}.mask_downscaling.6.bias"), &[d]);

    let m = "mask_decoder";
    let attn = |req: &mut dyn FnMut(String, &[usize]), p: String, internal: usize| {
        for n in ["q_proj", "k_proj", "v_proj"] {
            req(format!("{p}.{n}.weight"), &[internal, d]);
            req(format!("{p}.{n}.bias"), &[internal]);
        }
        req(format!("{p}.out_proj.weight"), &[d, internal]);
        req(format!("{p}.out_proj.bias"), &[d]);
    };
    for l in 0..2 {
        let p = format!("{m}.transformer.layers.{l}");
        attn(&mut req, format!("{p}.self_attn"), d);
        attn(&mut req, format!("{p}.cross_attn_token_to_image"), d / 2);
        attn(&mut req, format!("{p}.cross_attn_image_to_token"), d / 2);
        req(format!("{p}.mlp.lin1.weight"), &[2048, d]);
        req(format!("{p}.mlp.lin1.bias"), &[2048]);
        req(format!("{p}.mlp.lin2.weight"), &[d, 2048]);
        req(format!("{p}.mlp.lin2.bias"), &[d]);
        for n in 1..=4 {
            req(format!("{p}.norm{n}.weight"), &[d]);
            req(format!("{p}.norm{n}.bias"), &[d]);
        }
    }
    attn(
        &mut req,
        format!("{m}.transformer.final_attn_token_to_image"),
        d / 2,
    );
    req(format!("{m}.transformer.norm_final_attn.weight"), &[d]);
    req(format!("{m}.transformer.norm_final_attn.bias"), &[d]);
    req(format!("{m}.iou_token.weight"), &[1, d]);
    req(format!("{m}.mask_tokens.weight"), &[4, d]);
    req(format!("{m}.output_upscaling.0.weight"), &[d, d / 4, 2, 2]);
    req(format!("{m}.output_upscaling.0.bias"), &[d / 4]);
    req(format!("{m}.output_upscaling.1.weight"), &[d / 4]);
    req(format!("{m}.output_upscaling.1.bias"), &[d / 4]);
    req(
        format!("{m}.output_upscaling.3.weight"),
        &[d / 4, d / 8, 2, 2],
    );
    req(format!("{m}.output_upscaling.3.bias"), &[d / 8]);
    let mlp = |req: &mut dyn FnMut(String, &[usize]), p: String, out: usize| {
        for l in 0..2 {
            req(format!("{p}.layers.{l}.weight"), &[d, d]);
            req(format!("{p}.layers.{l}.bias"), &[d]);
        }
        req(format!("{p}.layers.2.weight"), &[out, d]);
        req(format!("{p}.layers.2.bias"), &[out]);
    };
    for i in 0..4 {
        mlp(
            &mut req,
            format!("{m}.output_hypernetworks_mlps.{i}"),
            d / 8,
        );
    }
    mlp(&mut req, format!("{m}.iou_prediction_head"), 4);

    // Unused by inference, present in the official checkpoint.
    let mut optional: Vec<(String, Vec<usize>)> = vec![
        (format!("{e}.norm_head.weight"), vec![last]),
        (format!("{e}.norm_head.bias"), vec![last]),
        (format!("{e}.head.weight"), vec![1000, last]),
        (format!("{e}.head.bias"), vec![1000]),
    ];
    for (name, _, _) in &t {
        if let Some(p) = name.strip_suffix(".bn.running_var") {
            optional.push((format!("{p}.bn.num_batches_tracked"), vec![]));
        }
    }
    t.extend(optional.into_iter().map(|(n, s)| (n, s, Need::Optional)));
    t
}

/// A tensor as stored in the file, before conversion to `f32`. Only tensors inference needs,
/// with the expected shape, have their data read (`bytes`); the others keep name and shape
/// for the error messages, so a file cannot make the reader copy more than one model's worth.
struct RawTensor {
    dtype: String,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The largest `data.pkl` read from a `.pt` (the official one is about 60 KB).
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// The largest tensor storage read from a `.pt`, in bytes (MobileSAM's largest is 1.6 MB).
const MAX_STORAGE_BYTES: u64 = 256 << 20;

/// The tensors inference reads (`Need::Required`), with their shapes.
fn wanted() -> HashMap<String, Vec<usize>> {
    expected_tensors()
        .into_iter()
        .filter(|(_, _, need)| *need == Need::Required)
        .map(|(name, shape, _)| (name, shape))
        .collect()
}

impl Weights {
    /// Reads and validates a checkpoint file (`.pt` or `.safetensors`, told apart by content).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses and validates a checkpoint held in memory; `source` names it in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self> {
        let wanted = wanted();
        let raw = if bytes.starts_with(b"PK\x03\x04") {
            read_torch_zip(bytes, source, &wanted)?
        } else if looks_like_safetensors(bytes) {
            read_safetensors(bytes, source, &wanted)?
        } else {
            let head: String = bytes
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(Error::input(
                source,
                format!(
                    "not a model checkpoint ({} bytes starting {head}); expected the MobileSAM \
                     weights as a PyTorch .pt (zip archive) or a .safetensors file",
                    bytes.len()
                ),
            ));
        };
        Self::validate(raw, source)
    }

    fn validate(raw: BTreeMap<String, RawTensor>, source: &str) -> Result<Self> {
        let expected = expected_tensors();
        let expected_count = expected
            .iter()
            .filter(|(_, _, need)| *need == Need::Required)
            .count();
        let missing: Vec<&str> = expected
            .iter()
            .filter(|(n, _, need)| *need == Need::Required && !raw.contains_key(n))
            .map(|(n, _, _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::input(
                source,
                format!(
                    "{}; expected a MobileSAM (vit_t, TinyViT-5M encoder) state dict with \
                     {expected_count} tensors such as `image_encoder.layers.0.blocks.0.conv1.c.weight`, \
                     but {} of them are missing, e.g. `{}`",
                    describe_found(&raw),
                    missing.len(),
                    missing[0]
                ),
            ));
        }
        let mut tensors = HashMap::with_capacity(expected.len());
        for (name, shape, need) in expected {
            let Some(t) = raw.get(&name) else { continue };
            if t.shape != shape {
                return Err(Error::input(
                    source,
                    format!(
                        "tensor `{name}` has shape {:?}; MobileSAM (vit_t) expects {shape:?} \
                         (a different model size or variant?)",
                        t.shape
                    ),
                ));
            }
            if need == Need::Optional {
                continue;
            }
            let data = to_f32(t, &name, source)?;
            tensors.insert(name, WeightTensor { shape, data });
        }
        Ok(Weights {
            source: source.to_string(),
            tensors,
        })
    }

    /// The file (or name) the weights came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Names of the tensors inference uses (BatchNorm statistics included, the classification
    /// head and `num_batches_tracked` left out), sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The tensor called `name` (official state-dict key) as host `f32`.
    pub fn get(&self, name: &str) -> Result<&WeightTensor> {
        self.tensors.get(name).ok_or_else(|| {
            Error::Model(format!(
                "{}: no tensor `{name}` among the MobileSAM weights",
                self.source
            ))
        })
    }

    /// The tensor called `name` as a candle CPU tensor.
    pub fn tensor(&self, name: &str) -> Result<candle_core::Tensor> {
        let t = self.get(name)?;
        Ok(candle_core::Tensor::from_slice(
            &t.data,
            t.shape.as_slice(),
            &candle_core::Device::Cpu,
        )?)
    }
}

/// Summarises what a file holds when it is not MobileSAM, naming the likely model.
fn describe_found(raw: &BTreeMap<String, RawTensor>) -> String {
    if raw.is_empty() {
        return "the file holds no tensors".to_string();
    }
    if raw.contains_key("image_encoder.pos_embed")
        || raw.keys().any(|k| k.starts_with("image_encoder.blocks."))
    {
        let depth = raw
            .keys()
            .filter_map(|k| k.strip_prefix("image_encoder.blocks."))
            .filter_map(|k| k.split('.').next()?.parse::<usize>().ok())
            .max()
            .map_or(0, |d| d + 1);
        let variant = match depth {
            12 => "SAM ViT-B",
            24 => "SAM ViT-L",
            32 => "SAM ViT-H",
            _ => "a SAM ViT",
        };
        return format!(
            "found {} tensors of {variant} (image_encoder.blocks.*, {depth} blocks), not MobileSAM",
            raw.len()
        );
    }
    let first: Vec<&str> = raw.keys().take(3).map(String::as_str).collect();
    format!(
        "found {} tensors named like `{}`",
        raw.len(),
        first.join("`, `")
    )
}

fn to_f32(t: &RawTensor, name: &str, source: &str) -> Result<Vec<f32>> {
    let n: usize = t.shape.iter().product();
    let bad = |what: String| Error::input(source, format!("tensor `{name}`: {what}"));
    let width = match t.dtype.as_str() {
        "F32" => 4,
        "F16" | "BF16" => 2,
        "F64" => 8,
        other => {
            return Err(bad(format!(
                "dtype {other}; expected floating point (F32, F16, BF16 or F64)"
            )))
        }
    };
    if t.bytes.len() != n * width {
        return Err(bad(format!(
            "{} bytes of data; shape {:?} of {} needs {}",
            t.bytes.len(),
            t.shape,
            t.dtype,
            n * width
        )));
    }
    let chunks = t.bytes.chunks_exact(width);
    Ok(match t.dtype.as_str() {
        "F32" => chunks
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "F64" => chunks
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        "F16" => chunks
            .map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        _ => chunks
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
    })
}

fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut m = man;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 9 && bytes[8] == b'{'
}

/// `.safetensors`: u64 header length, JSON header `{name: {dtype, shape, data_offsets}}`, data.
fn read_safetensors(
    bytes: &[u8],
    source: &str,
    wanted: &HashMap<String, Vec<usize>>,
) -> Result<BTreeMap<String, RawTensor>> {
    let bad = |what: String| Error::input(source, format!("{what}; expected a .safetensors file"));
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[..8]);
    let header_len = u64::from_le_bytes(len8) as usize;
    let data_start = 8usize
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            bad(format!(
                "header of {header_len} bytes does not fit in the {}-byte file (truncated?)",
                bytes.len()
            ))
        })?;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..data_start])
        .map_err(|e| bad(format!("header is not valid JSON ({e})")))?;
    let data = &bytes[data_start..];
    let mut out = BTreeMap::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        #[derive(serde::Deserialize)]
        struct Info {
            dtype: String,
            shape: Vec<usize>,
            data_offsets: [usize; 2],
        }
        let info: Info = serde_json::from_value(info)
            .map_err(|e| bad(format!("header entry `{name}` is malformed ({e})")))?;
        let [s, e] = info.data_offsets;
        if s > e || e > data.len() {
            return Err(bad(format!(
                "tensor `{name}` lies at bytes {s}..{e} of a {}-byte data section (truncated file?)",
                data.len()
            )));
        }
        let bytes = if wanted.get(&name) == Some(&info.shape) {
            data[s..e].to_vec()
        } else {
            Vec::new()
        };
        out.insert(
            name,
            RawTensor {
                dtype: info.dtype,
                shape: info.shape,
                bytes,
            },
        );
    }
    Ok(out)
}

/// PyTorch's zip format: `<dir>/data.pkl` (the pickled state dict, tensors as persistent ids)
/// and `<dir>/data/<key>` (raw little-endian storages).
fn read_torch_zip(
    bytes: &[u8],
    source: &str,
    wanted: &HashMap<String, Vec<usize>>,
) -> Result<BTreeMap<String, RawTensor>> {
    let bad = |what: String| {
        Error::input(
            source,
            format!("{what}; expected a PyTorch checkpoint (torch.save zip archive)"),
        )
    };
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| bad(format!("unreadable zip archive ({e}), truncated?")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let pkl = names
        .iter()
        .find(|n| n.ends_with("data.pkl"))
        .ok_or_else(|| bad("the zip archive has no data.pkl".to_string()))?
        .clone();
    let dir = pkl.strip_suffix("data.pkl").unwrap_or_default().to_string();
    let pickled = {
        let entry = zip
            .by_name(&pkl)
            .map_err(|e| bad(format!("cannot read {pkl} ({e})")))?;
        let declared = entry.size();
        read_zip_entry(
            entry,
            declared,
            MAX_PICKLE_BYTES,
            &format!("{source}:{pkl}"),
        )?
    };
    pickle_check::check(&pickled).map_err(|e| bad(format!("{pkl} is refused: {e}")))?;
    let mut stack = Stack::empty();
    stack
        .read_loop(&mut Cursor::new(&pickled))
        .map_err(|e| bad(format!("{pkl} is not a readable pickle ({e})")))?;
    let obj = stack
        .finalize()
        .map_err(|e| bad(format!("{pkl} is not a readable pickle ({e})")))?;
    let entries = match obj {
        Object::Dict(entries) => entries,
        _ => return Err(bad(format!("{pkl} does not hold a dict (state_dict)"))),
    };
    let mut out = BTreeMap::new();
    for (key, value) in entries {
        let Object::Unicode(name) = key else { continue };
        let Some(info) = tensor_ref(value) else {
            continue;
        };
        if wanted.get(&name) != Some(&info.shape) {
            // Not read by inference, or of the wrong shape (reported by `validate`).
            out.insert(
                name,
                RawTensor {
                    dtype: info.dtype.to_string(),
                    shape: info.shape,
                    bytes: Vec::new(),
                },
            );
            continue;
        }
        let width = match info.dtype {
            "F32" => 4,
            "F16" | "BF16" => 2,
            "F64" | "I64" => 8,
            _ => 1,
        };
        // The shape is MobileSAM's (small); the offset comes from the file.
        let n: usize = info.shape.iter().product();
        let range = info
            .offset
            .checked_mul(width)
            .and_then(|start| Some((start, start.checked_add(n * width)?)))
            .filter(|&(_, end)| end as u64 <= MAX_STORAGE_BYTES);
        let Some((start, end)) = range else {
            return Err(bad(format!(
                "tensor `{name}` starts at element {} of its storage; at most {MAX_STORAGE_BYTES} \
                 bytes of storage are read",
                info.offset
            )));
        };
        let entry = format!("{dir}data/{}", info.storage_key);
        let storage = {
            let file = zip.by_name(&entry).map_err(|e| {
                bad(format!(
                    "tensor `{name}`: cannot read its storage {entry} ({e})"
                ))
            })?;
            let declared = file.size();
            read_zip_entry(
                file,
                declared,
                MAX_STORAGE_BYTES,
                &format!("{source}:{entry}"),
            )?
        };
        // Only C-contiguous views are supported (what `state_dict` holds).
        let mut expect_stride = 1;
        for (dim, stride) in info.shape.iter().zip(&info.stride).rev() {
            if *dim > 1 && *stride != expect_stride {
                return Err(bad(format!(
                    "tensor `{name}` is a strided view (shape {:?}, stride {:?}); expected \
                     contiguous tensors",
                    info.shape, info.stride
                )));
            }
            expect_stride *= dim;
        }
        if end > storage.len() {
            return Err(bad(format!(
                "tensor `{name}` needs bytes {start}..{end} of its {}-byte storage (truncated?)",
                storage.len()
            )));
        }
        out.insert(
            name,
            RawTensor {
                dtype: info.dtype.to_string(),
                shape: info.shape,
                bytes: storage[start..end].to_vec(),
            },
        );
    }
    Ok(out)
}

struct TensorRef {
    storage_key: String,
    dtype: &'static str,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// Recognises `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` (possibly
/// wrapped in `_rebuild_parameter`), where `storage` is the persistent id
/// `("storage", <Kind>Storage, key, location, numel)`. Anything else is not a tensor.
fn tensor_ref(value: Object) -> Option<TensorRef> {
    let Object::Reduce { callable, args } = value else {
        return None;
    };
    let (callable, args) = match *callable {
        Object::Class {
            ref module_name,
            ref class_name,
        } if module_name == "torch._utils" && class_name == "_rebuild_parameter" => {
            let Object::Tuple(mut a) = *args else {
                return None;
            };
            if a.is_empty() {
                return None;
            }
            match a.swap_remove(0) {
                Object::Reduce { callable, args } => (*callable, *args),
                _ => return None,
            }
        }
        c => (c, *args),
    };
    match callable {
        Object::Class {
            module_name,
            class_name,
        } if module_name == "torch._utils" && class_name == "_rebuild_tensor_v2" => {}
        _ => return None,
    }
    let Object::Tuple(a) = args else { return None };
    if a.len() < 4 {
        return None;
    }
    let int = |o: &Object| match o {
        Object::Int(i) if *i >= 0 => Some(*i as usize),
        Object::Long(i) if *i >= 0 => Some(*i as usize),
        _ => None,
    };
    let ints = |o: &Object| match o {
        Object::Tuple(v) => v.iter().map(int).collect::<Option<Vec<usize>>>(),
        _ => None,
    };
    let Object::PersistentLoad(pid) = &a[0] else {
        return None;
    };
    let Object::Tuple(pid) = pid.as_ref() else {
        return None;
    };
    if pid.len() < 3 {
        return None;
    }
    let Object::Class { class_name, .. } = &pid[1] else {
        return None;
    };
    let dtype = match class_name.as_str() {
        "FloatStorage" => "F32",
        "DoubleStorage" => "F64",
        "HalfStorage" => "F16",
        "BFloat16Storage" => "BF16",
        "LongStorage" => "I64",
        _ => "other",
    };
    let Object::Unicode(storage_key) = &pid[2] else {
        return None;
    };
    Some(TensorRef {
        storage_key: storage_key.clone(),
        dtype,
        offset: int(&a[1])?,
        shape: ints(&a[2])?,
        stride: ints(&a[3])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_list_has_the_official_count() {
        // 439 tensors in the official vit_t state dict (head and num_batches_tracked included).
        let all = expected_tensors();
        assert_eq!(all.len(), 439);
        let mut names: Vec<&String> = all.iter().map(|(n, _, _)| n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 439, "duplicate names");
    }

    #[test]
    fn rejects_what_is_not_a_checkpoint() {
        let err = Weights::from_bytes(b"hello world, not weights", "x.bin").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("x.bin: not a model checkpoint"), "{msg}");
        let err = Weights::from_bytes(b"PK\x03\x04truncated", "t.pt").unwrap_err();
        assert!(err.to_string().contains("unreadable zip archive"), "{err}");
    }

    #[test]
    fn half_precision_conversion() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(half_to_f32(0x7bff), 65504.0);
    }
}
