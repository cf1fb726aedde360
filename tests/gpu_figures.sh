#!/usr/bin/env bash
# The real-GPU figures of issue 18 in one go, for a machine with a GPU and a Vulkan driver
# (no Rust toolchain needed there): the WebGPU parity tests against the official fixtures and
# the CPU path (f16 operands too), `camsam bench sam --backend webgpu` (figures, then --profile;
# both again with --f16), the encoder on
# WebGPU against the CPU backend, segment-everything end to end on real images, and the CPU
# backend's figures on that machine's cores.
#
#   tests/gpu_figures.sh CAMSAM IT_TESTS SHARED OUTDIR
#
# CAMSAM: a release build of the CLI (`cargo build --release`); IT_TESTS: the integration test
# binary (`cargo test --test it --no-run` prints its path; `-` skips the parity tests); SHARED:
# the reference fixtures (`../shared`; only fixtures/sam/weights, fixtures/sam/predict and
# data/voc_val_crops/images are read). Every step has its own time limit and writes its
# output to OUTDIR/<step>.txt; a failing step does not stop the next.
set -u
if [ $# -ne 4 ]; then
    echo "usage: $0 CAMSAM IT_TESTS SHARED OUTDIR" >&2
    exit 2
fi
camsam=$1 it=$2 shared=$3 out=$4
weights=$shared/fixtures/sam/weights/mobile_sam_random.safetensors
images=$shared/data/voc_val_crops/images
mkdir -p "$out"
status=0
step() {
    local name=$1 limit=$2
    shift 2
    printf '\n== %s\n' "$name"
    local t0=$SECONDS
    timeout "$limit" "$@" >"$out/$name.txt" 2>&1
    local rc=$?
    cat "$out/$name.txt"
    printf -- '-- %s: exit %d after %d s\n' "$name" "$rc" $((SECONDS - t0))
    [ "$rc" -eq 0 ] || status=1
}
[ -f "$weights" ] || { echo "missing $weights" >&2; exit 2; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv
# The most telling first, so a cut-off run still has them.
step bench_webgpu 90 "$camsam" bench sam --backend webgpu --weights "$weights" --repeat 10
step profile_webgpu 90 "$camsam" bench sam --backend webgpu --weights "$weights" --profile
# f16 matmul operands (where the adapter offers shader-f16): the same two, for the ratio.
step bench_webgpu_f16 90 "$camsam" bench sam --backend webgpu --f16 --weights "$weights" --repeat 10
step profile_webgpu_f16 90 "$camsam" bench sam --backend webgpu --f16 --weights "$weights" --profile
if [ "$it" != - ]; then
    step parity 150 env CAMSAM_SHARED="$shared" CAMSAM_REQUIRE_GPU=1 "$it" gpu_ --test-threads=1
fi
# Segment-everything end to end (the generator's filtering included), whole process per image:
# the first image also pays for loading the weights and compiling the pipelines.
step everything_webgpu 90 bash -c '
    n=0
    for img in "$2"/*.png; do
        t0=$(date +%s%N)
        "$0" everything --backend webgpu --weights "$1" --image "$img" --out "$3" >/dev/null || exit 1
        echo "$(basename "$img"): $((($(date +%s%N) - t0) / 1000000)) ms, whole process, 32x32 points"
        n=$((n + 1))
        [ $n -lt 4 ] || break
    done' "$camsam" "$weights" "$images" "${TMPDIR:-/tmp}/camsam-everything"
step bench_webgpu_256 60 "$camsam" bench sam --backend webgpu --weights "$weights" --batch 256 --no-everything
step against_cpu 60 "$camsam" bench sam --backend webgpu --weights "$weights" --against-cpu
step bench_cpu 120 "$camsam" bench sam --backend cpu --weights "$weights"
exit $status
