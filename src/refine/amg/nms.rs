//! Box non-maximum suppression as torchvision's `ops.nms` / `ops.batched_nms` (CPU) compute
//! it, for the automatic mask generator (official `automatic_mask_generator.py` calls
//! `batched_nms` with one category).
//!
//! Boxes are `[x0, y0, x1, y1]` in f32 with torchvision's area `(x1 − x0)·(y1 − y0)` (so a
//! one-pixel mask box has area 0). Scores are sorted descending with a stable sort (equal
//! scores keep their input order); a box is dropped when its IoU with a kept box is
//! `> iou_threshold`.
//!
//! ```
//! use camsam::refine::amg::nms::nms;
//! let boxes = [[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]];
//! assert_eq!(nms(&boxes, &[0.9, 0.95, 0.5], 0.7), vec![1, 2]);
//! ```

/// Indices of the boxes kept, by decreasing score.
pub fn nms(boxes: &[[f32; 4]], scores: &[f32], iou_threshold: f64) -> Vec<usize> {
    let n = boxes.len().min(scores.len());
    let mut order: Vec<usize> = (0..n).collect();
    // torchvision: scores.sort(stable=true, descending=true)
    order.sort_by(|&a, &b| descending(scores[a], scores[b]));
    let areas: Vec<f32> = boxes
        .iter()
        .map(|b| (b[2] - b[0]) * (b[3] - b[1]))
        .collect();
    let mut suppressed = vec![false; n];
    let mut keep = Vec::new();
    for (oi, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let bi = boxes[i];
        for &j in &order[oi + 1..] {
            if suppressed[j] {
                continue;
            }
            let bj = boxes[j];
            let w = (bi[2].min(bj[2]) - bi[0].max(bj[0])).max(0.0);
            let h = (bi[3].min(bj[3]) - bi[1].max(bj[1])).max(0.0);
            let inter = w * h;
            let ovr = inter / (areas[i] + areas[j] - inter);
            if ovr as f64 > iou_threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// PyTorch's descending order for floats: NaN first, then larger values.
fn descending(a: f32, b: f32) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_scores_keep_input_order() {
        let boxes = [
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 0.0, 10.0, 10.0],
            [50.0, 50.0, 60.0, 60.0],
        ];
        assert_eq!(nms(&boxes, &[0.5, 0.5, 0.5], 0.7), vec![0, 2]);
    }

    #[test]
    fn iou_at_the_threshold_is_kept() {
        // IoU = 50 / 100 = 0.5 exactly: not > 0.5, so both stay
        let boxes = [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0]];
        assert_eq!(nms(&boxes, &[1.0, 0.9], 0.5), vec![0, 1]);
        assert_eq!(nms(&boxes, &[1.0, 0.9], 0.49), vec![0]);
    }

    #[test]
    fn zero_area_boxes_never_suppress() {
        // torchvision: 0 / 0 = NaN, NaN > t is false
        let boxes = [[3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0]];
        assert_eq!(nms(&boxes, &[1.0, 0.5], 0.7), vec![0, 1]);
    }
}

/// Indices that sort `scores` in descending order the way PyTorch's CPU
/// `tensor.sort(descending=True)` (not stable) orders them: libstdc++'s `std::sort`
/// (introsort: median-of-three quicksort down to 16 elements, heapsort past the depth limit,
/// then insertion sort) over `(score, index)` pairs compared by score only, NaN first.
/// torchvision's `batched_nms` uses it on its per-category path, so it decides the order of
/// equal-score masks in the official generator's output.
pub fn torch_sort_desc(scores: &[f32]) -> Vec<usize> {
    let mut v: Vec<(f32, usize)> = scores.iter().copied().zip(0..).collect();
    let less = |a: &(f32, usize), b: &(f32, usize)| -> bool {
        (a.0.is_nan() && !b.0.is_nan()) || a.0 > b.0
    };
    introsort(&mut v, &less);
    v.into_iter().map(|(_, i)| i).collect()
}

/// libstdc++'s `_S_threshold`.
const INSERTION_THRESHOLD: usize = 16;

fn introsort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let depth = 2 * (usize::BITS - 1 - n.leading_zeros()) as usize;
    introsort_loop(v, 0, n, depth, less);
    // __final_insertion_sort
    if n > INSERTION_THRESHOLD {
        insertion_sort(v, 0, INSERTION_THRESHOLD, less);
        for i in INSERTION_THRESHOLD..n {
            unguarded_linear_insert(v, i, less);
        }
    } else {
        insertion_sort(v, 0, n, less);
    }
}

fn introsort_loop<T: Copy>(
    v: &mut [T],
    first: usize,
    mut last: usize,
    mut depth: usize,
    less: &impl Fn(&T, &T) -> bool,
) {
    while last - first > INSERTION_THRESHOLD {
        if depth == 0 {
            heap_sort(&mut v[first..last], less);
            return;
        }
        depth -= 1;
        // __unguarded_partition_pivot
        let mid = first + (last - first) / 2;
        move_median_to_first(v, first, first + 1, mid, last - 1, less);
        let cut = unguarded_partition(v, first + 1, last, first, less);
        introsort_loop(v, cut, last, depth, less);
        last = cut;
    }
}

fn move_median_to_first<T: Copy>(
    v: &mut [T],
    result: usize,
    a: usize,
    b: usize,
    c: usize,
    less: &impl Fn(&T, &T) -> bool,
) {
    let pick = if less(&v[a], &v[b]) {
        if less(&v[b], &v[c]) {
            b
        } else if less(&v[a], &v[c]) {
            c
        } else {
            a
        }
    } else if less(&v[a], &v[c]) {
        a
    } else if less(&v[b], &v[c]) {
        c
    } else {
        b
    };
    v.swap(result, pick);
}

fn unguarded_partition<T: Copy>(
    v: &mut [T],
    mut first: usize,
    mut last: usize,
    pivot: usize,
    less: &impl Fn(&T, &T) -> bool,
) -> usize {
    loop {
        while less(&v[first], &v[pivot]) {
            first += 1;
        }
        last -= 1;
        while less(&v[pivot], &v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

fn insertion_sort<T: Copy>(v: &mut [T], first: usize, last: usize, less: &impl Fn(&T, &T) -> bool) {
    for i in first + 1..last {
        let val = v[i];
        if less(&val, &v[first]) {
            v.copy_within(first..i, first + 1);
            v[first] = val;
        } else {
            unguarded_linear_insert(v, i, less);
        }
    }
}

fn unguarded_linear_insert<T: Copy>(v: &mut [T], mut last: usize, less: &impl Fn(&T, &T) -> bool) {
    let val = v[last];
    while last > 0 && less(&val, &v[last - 1]) {
        v[last] = v[last - 1];
        last -= 1;
    }
    v[last] = val;
}

/// libstdc++'s `std::__make_heap` + `std::__sort_heap`.
fn heap_sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    let len = v.len();
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let value = v[parent];
        adjust_heap(v, parent, len, value, less);
        if parent == 0 {
            break;
        }
        parent -= 1;
    }
    let mut last = len;
    while last > 1 {
        last -= 1;
        let value = v[last];
        v[last] = v[0];
        adjust_heap(v, 0, last, value, less);
    }
}

fn adjust_heap<T: Copy>(
    v: &mut [T],
    mut hole: usize,
    len: usize,
    value: T,
    less: &impl Fn(&T, &T) -> bool,
) {
    let top = hole;
    let mut child = hole;
    while len >= 2 && child < (len - 1) / 2 {
        child = 2 * (child + 1);
        if less(&v[child], &v[child - 1]) {
            child -= 1;
        }
        v[hole] = v[child];
        hole = child;
    }
    if len % 2 == 0 && len >= 2 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        v[hole] = v[child - 1];
        hole = child - 1;
    }
    // __push_heap
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(&v[parent], &value) {
            break;
        }
        v[hole] = v[parent];
        hole = parent;
    }
    v[hole] = value;
}

#[cfg(test)]
mod sort_tests {
    use super::*;

    #[test]
    fn torch_sort_orders_by_decreasing_score() {
        let scores: Vec<f32> = (0..300).map(|i| ((i * 37) % 11) as f32 * 0.1).collect();
        let order = torch_sort_desc(&scores);
        let mut seen = order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..300).collect::<Vec<_>>());
        assert!(order.windows(2).all(|w| scores[w[0]] >= scores[w[1]]));
        let with_nan = [1.0, f32::NAN, 2.0];
        assert_eq!(torch_sort_desc(&with_nan), vec![1, 2, 0]);
    }

    #[test]
    fn torch_sort_ties_follow_libstdcxx_introsort() {
        // 20 equal scores: median-of-three swaps element 10 to the front, the unguarded
        // partition swaps (1, 19), (2, 18), … (9, 11) and stops at 10; the final insertion
        // sort moves nothing
        let scores = [0.5f32; 20];
        let order = torch_sort_desc(&scores);
        assert_eq!(
            order,
            vec![10, 19, 18, 17, 16, 15, 14, 13, 12, 11, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1]
        );
        // short inputs use insertion sort only: stable
        assert_eq!(torch_sort_desc(&[0.5; 5]), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn heap_sort_sorts() {
        let mut v: Vec<i32> = vec![5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
        heap_sort(&mut v, &|a: &i32, b: &i32| a < b);
        assert_eq!(v, vec![1, 1, 2, 3, 4, 5, 5, 5, 5, 6, 9]);
    }
}
