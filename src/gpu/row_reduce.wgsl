// Reductions across one workgroup of ROW_WG invocations that shares one row: each invocation
// passes its partial value and gets the row's total back. Call from uniform control flow.

const ROW_WG: u32 = 64u;

var<workgroup> row_part: array<f32, ROW_WG>;

fn row_sum(lid: u32, v: f32) -> f32 {
    row_part[lid] = v;
    workgroupBarrier();
    for (var s = ROW_WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            row_part[lid] += row_part[lid + s];
        }
        workgroupBarrier();
    }
    let total = row_part[0];
    workgroupBarrier();
    return total;
}

fn row_max(lid: u32, v: f32) -> f32 {
    row_part[lid] = v;
    workgroupBarrier();
    for (var s = ROW_WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            row_part[lid] = max(row_part[lid], row_part[lid + s]);
        }
        workgroupBarrier();
    }
    let total = row_part[0];
    workgroupBarrier();
    return total;
}
