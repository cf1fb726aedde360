#!/usr/bin/env bash
# Seed corpora for the fuzz targets from ../shared (never copied into the repo: written under
# tests/fuzz/corpus/, which is git-ignored).
set -euo pipefail
cd "$(dirname "$0")"
shared="${CAMSAM_SHARED:-../../../shared}"
mkdir -p corpus/npy corpus/npz_cam corpus/heatmap_png corpus/image_labels corpus/cam_to_label
cp "$shared"/fixtures/sam/predict/*/*_low_res_logits.npy corpus/npy/ 2>/dev/null || true
ls "$shared"/fixtures/sepl/pseudo/*.png | head -20 | xargs -I{} cp {} corpus/heatmap_png/
cp "$shared"/data/voc_val_crops/labels.tsv corpus/image_labels/
printf 'a 1 15\nb: dog, cat\n' > corpus/image_labels/plain.txt
head -c 256 /dev/urandom > corpus/cam_to_label/random
