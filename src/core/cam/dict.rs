//! CAMs as the WSSS code bases save them: `np.save` of a dict (a 0-d object array holding a
//! pickle), read by [`crate::core::pickle`] — which runs nothing — and interpreted here.
//!
//! | dict | written by |
//! |---|---|
//! | `{"keys", "cam", "high_res"}`, `keys` 0-based foreground ids (numpy or torch), `high_res` `(K,H,W)` | IRN, ReCAM (`step/make_cam.py`), LPCAM |
//! | the same with `K+1` maps, channel 0 the background | AMN (`step/make_amn_cam.py`) |
//! | `{"keys", "attn_highres"}`, float16 `(K,H,W)` | CLIP-ES (`generate_cams_voc12.py`) |
//! | `{0-based foreground id: (H,W) map}` | PSA, SEAM, EPS, S2C, ACR, MCTformer, WeakTr |
//!
//! `high_res` is preferred, then `attn_highres`, then `cam` (the strided map beside `high_res` is
//! ignored). With `--keys class-ids` the keys are class ids, 0 the background (the CRF outputs
//! of PSA / SEAM / EPS). A background map in the file (AMN's channel 0, a class-id key 0) is
//! the file's own background: [`Cam::to_label`] compares the classes against it instead of the
//! threshold, as those code bases' evaluation does (argmax over their own channels).

use super::{check_num_classes, check_size, chw, class_of_key, Cam, CamOptions};
use crate::core::pickle::Value;
use crate::{Error, Result};

/// The CAM a pickled dict describes (see the module docs). `name` (the file) is used in errors.
pub(super) fn cam_from_dict(value: Value, name: &str, opts: &CamOptions) -> Result<Cam> {
    check_num_classes(opts.num_classes)?;
    let Value::Dict(entries) = value else {
        return Err(Error::input(
            name,
            format!("np.save'd {}; expected a dict of CAMs", value.describe()),
        ));
    };
    if !entries.is_empty() && entries.iter().all(|(k, _)| matches!(k, Value::Str(_))) {
        keyed_maps(entries, name, opts)
    } else if !entries.is_empty() && entries.iter().all(|(k, _)| matches!(k, Value::Int(_))) {
        map_per_class(entries, name, opts)
    } else {
        Err(Error::input(
            name,
            format!("{}; {EXPECTED}", describe_keys(&entries)),
        ))
    }
}

const EXPECTED: &str = "expected a CAM dict: 'keys' with 'high_res', 'attn_highres' or 'cam' \
    (IRN, ReCAM, AMN, LPCAM, CLIP-ES) or {class index: (H,W) map} (PSA, SEAM, EPS, S2C)";

fn describe_keys(entries: &[(Value, Value)]) -> String {
    let keys: Vec<String> = entries
        .iter()
        .take(8)
        .map(|(k, _)| match k {
            Value::Str(s) => format!("'{s}'"),
            Value::Int(i) => i.to_string(),
            other => other.describe(),
        })
        .collect();
    format!(
        "a dict of {} keys ({}{})",
        entries.len(),
        keys.join(", "),
        if entries.len() > 8 { ", …" } else { "" }
    )
}

/// `{"keys": …, "high_res" | "attn_highres" | "cam": (K or K+1, H, W)}`.
fn keyed_maps(entries: Vec<(Value, Value)>, name: &str, opts: &CamOptions) -> Result<Cam> {
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
            .map(|(_, v)| v)
    };
    let Some(keys) = get("keys") else {
        return Err(Error::input(
            name,
            format!("{} without 'keys'; {EXPECTED}", describe_keys(&entries)),
        ));
    };
    let Some((maps_key, maps)) = ["high_res", "attn_highres", "cam"]
        .into_iter()
        .find_map(|k| get(k).map(|v| (k, v)))
    else {
        return Err(Error::input(
            name,
            format!(
                "{} without 'high_res', 'attn_highres' or 'cam'; {EXPECTED}",
                describe_keys(&entries)
            ),
        ));
    };
    let keys_name = format!("{name}['keys']");
    let keys = int_list(keys, &keys_name)?;
    let maps_name = format!("{name}['{maps_key}']");
    let Value::Array(maps) = maps else {
        return Err(Error::input(
            &maps_name,
            format!("{}; expected an array (K, H, W)", maps.describe()),
        ));
    };
    let [c, h, w] = chw(maps, &maps_name, "(len(keys),H,W)")?;
    check_size(h, w, name)?;
    let first = if c == keys.len() {
        0
    } else if c == keys.len() + 1 {
        1 // AMN: channel 0 is the background
    } else {
        return Err(Error::input(
            &maps_name,
            format!(
                "{c} maps for {} keys; expected one per key, or one more with the background first (AMN)",
                keys.len()
            ),
        ));
    };
    let all = maps.to_f32();
    let plane = |i: usize| all[i * h * w..(i + 1) * h * w].to_vec();
    let mut planes = Vec::with_capacity(c);
    if first == 1 {
        planes.push((0u8, plane(0)));
    }
    for (i, &key) in keys.iter().enumerate() {
        planes.push((class_of_key(key, opts, &keys_name)?, plane(first + i)));
    }
    assemble(planes, h, w, name)
}

/// `{class index: (H, W) map}` (the PSA family).
fn map_per_class(entries: Vec<(Value, Value)>, name: &str, opts: &CamOptions) -> Result<Cam> {
    let mut size: Option<(usize, usize)> = None;
    let mut planes = Vec::with_capacity(entries.len());
    for (key, map) in entries {
        let Value::Int(key) = key else {
            unreachable!("map_per_class is called on int-keyed dicts")
        };
        let map_name = format!("{name}[{key}]");
        let Value::Array(map) = map else {
            return Err(Error::input(
                &map_name,
                format!("{}; expected an (H, W) array", map.describe()),
            ));
        };
        let [h, w] = map.shape[..] else {
            return Err(Error::input(
                &map_name,
                format!("array of shape {:?}; expected an (H, W) map", map.shape),
            ));
        };
        match size {
            Some(s) if s != (h, w) => {
                return Err(Error::input(
                    &map_name,
                    format!("{w}×{h} map; the first map of the file is {}×{}", s.1, s.0),
                ))
            }
            _ => size = Some((h, w)),
        }
        check_size(h, w, name)?;
        planes.push((class_of_key(key, opts, &map_name)?, map.to_f32()));
    }
    let (h, w) = size.unwrap_or((0, 0));
    assemble(planes, h, w, name)
}

/// A CAM from `(class id, map)` planes; class 0 is the file's background.
fn assemble(planes: Vec<(u8, Vec<f32>)>, h: usize, w: usize, name: &str) -> Result<Cam> {
    let mut classes = Vec::with_capacity(planes.len());
    let mut data = Vec::with_capacity(planes.len() * h * w);
    let mut background = None;
    for (class, plane) in planes {
        if class == 0 {
            if background.replace(plane).is_some() {
                return Err(Error::input(
                    name,
                    "two background maps; expected at most one",
                ));
            }
        } else {
            classes.push(class);
            data.extend(plane);
        }
    }
    let cam = Cam::checked(classes, h, w, data, name)?;
    match background {
        Some(bg) => cam.with_background(bg, name),
        None => Ok(cam),
    }
}

/// A list of integer keys: a 1-D numpy array or torch tensor, or a Python list/tuple of ints.
fn int_list(value: &Value, name: &str) -> Result<Vec<i64>> {
    match value {
        Value::Array(a) if a.shape.len() == 1 => a.to_i64(name),
        Value::Array(a) if a.shape.is_empty() => a.to_i64(name),
        Value::List(v) | Value::Tuple(v) => v
            .iter()
            .map(|x| match x {
                Value::Int(i) => Ok(*i),
                other => Err(Error::input(
                    name,
                    format!("{} in the keys; expected class indices", other.describe()),
                )),
            })
            .collect(),
        other => Err(Error::input(
            name,
            format!("{}; expected a 1-D list of class keys", other.describe()),
        )),
    }
}
