//! The SEPL merge on arbitrary small inputs, every preset: the output has the label's size and
//! holds only background or classes of the pseudo-label (below `num_classes`), never 255.
#![no_main]
use camsam::core::label::LabelMap;
use camsam::core::masks::BitMask;
use camsam::core::sepl::{merge, Combine, MergeParams, Preset};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [w, h, n_masks, k, t1, t2, rest @ ..] = data else {
        return;
    };
    let (w, h) = (1 + *w as usize % 24, 1 + *h as usize % 24);
    let n_masks = *n_masks as usize % 12;
    let num_classes = 2 + *k as usize % 30;
    let mut bytes = rest.iter().copied().chain(std::iter::repeat(0));
    // Pseudo-label values spread over 0..num_classes+2 and 255, so out-of-range ids occur.
    let pseudo: Vec<u8> = bytes
        .by_ref()
        .take(w * h)
        .map(|b| if b >= 250 { 255 } else { b % (num_classes as u8 + 2) })
        .collect();
    let pseudo = LabelMap::new(w, h, pseudo).expect("size by construction");
    let masks: Vec<BitMask> = (0..n_masks)
        .map(|_| {
            let v: Vec<u8> = bytes.by_ref().take(w * h).collect();
            BitMask::from_values(w, h, &v, |b| b & 1 == 1).expect("size by construction")
        })
        .collect();
    let refs: Vec<&BitMask> = masks.iter().collect();
    for preset in Preset::ALL {
        for combine in [Combine::And, Combine::Or] {
            let params = MergeParams {
                preset,
                t1: *t1 as f64 / 255.0,
                t2: *t2 as f64 / 255.0,
                combine,
                num_classes,
            };
            let out = merge(&pseudo, &refs, &params).expect("valid parameters");
            assert_eq!((out.label.width, out.label.height), (w, h));
            for (&o, &p) in out.label.data.iter().zip(&pseudo.data) {
                assert!(o != 255, "255 in the output");
                assert!(
                    o == 0 || ((o as usize) < num_classes && pseudo.data.contains(&o)),
                    "{o} is not a class of the pseudo-label (pixel had {p})"
                );
            }
        }
    }
});
