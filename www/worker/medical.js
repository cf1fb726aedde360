// Medical files (DICOM, NIfTI, 8/16-bit PNG/TIFF) as slices. Each file is decoded once in wasm
// by the library's readers (wasm MedicalFile: the modality values stay there); each slice
// becomes an image entry named as the library names it (`<stem>`, `<stem>_<K>`), drawn as an
// 8-bit PNG under its file's window by the library's window rule. A DICOM series dropped
// together comes in series order (InstanceNumber, then ImagePositionPatient: the library's).
// A changed window changes the slices' images, so SAM embeds them again (embeddings are
// cached by content); stored results of the file take the new image at once.

import { KIND } from '../protocol.js';
import { state, bytesOf, messageOf, failure } from './state.js';
import { wasm, rethrowTrap } from './wasm.js';
import * as store from './store.js';

// state.medical: source path -> {path, blob, file: wasm MedicalFile, names, window, pngs}
// (`pngs`: slice index -> PNG Blob under `window`, made on first use).

/** Free every decoded file (Clear, or the demo replacing the inputs). */
export function clearMedical() {
  for (const src of state.medical.values()) src.file.free();
  state.medical = new Map();
}

/** The files of one intake (images kind) with the medical ones replaced by their slices:
 *  `{path: '<slice>.png', file: null, medical: {source, index}}` entries, files in series
 *  order. A file the readers refuse is an issue naming it. */
export async function readMedical(list) {
  const plain = [], medical = [];
  for (const item of list) {
    const path = item.path || item.file.name;
    const head = await bytesOf(item.file.slice(0, 132));
    if (wasm.isMedical(head, path)) medical.push({ path, blob: item.file });
    else plain.push(item);
  }
  if (!medical.length) return list;
  const series = new wasm.Series();
  try {
    for (const m of medical) {
      m.bytes = await bytesOf(m.blob);
      series.add(m.path, m.bytes);
    }
    const ordered = Array.from(series.order(), (i) => medical[i]);
    const out = [...plain];
    for (const m of ordered) {
      let file;
      try {
        file = wasm.MedicalFile.read(m.bytes, m.path);
      } catch (err) {
        rethrowTrap(err);
        state.issues.push({ file: m.path, reason: messageOf(err) });
        continue;
      }
      forget(m.path);
      const names = file.names();
      const src = { path: m.path, blob: m.blob, file, names, window: storedWindow(m.path) || file.defaultWindow(), pngs: new Map() };
      state.medical.set(m.path, src);
      names.forEach((n, index) => out.push({ path: `${n}.png`, file: null, medical: { source: m.path, index } }));
    }
    return out;
  } finally {
    series.free();
  }
}

/** A file dropped again replaces its earlier copy and slices. */
function forget(path) {
  const old = state.medical.get(path);
  if (!old) return;
  old.file.free();
  state.medical.delete(path);
  state.files = state.files.filter((f) => !f.medical || f.medical.source !== path);
}

/** The window the results of `path` kept from an earlier visit, if any. */
function storedWindow(path) {
  for (const meta of state.results.values()) if (meta.source === path && meta.window) return meta.window;
  return null;
}

/** The decoded file slice `medical` ({source, index}) comes from, or null (not loaded). */
export const sourceOf = (medical) => (medical ? state.medical.get(medical.source) || null : null);

/** The image of a loaded file entry: {blob, path, width, height, medical}; width and height
 *  only for medical slices (known without decoding). */
export async function imageOf(f) {
  if (!f.medical) return { blob: f.file, path: f.path };
  const src = sourceOf(f.medical);
  if (!src) throw failure(KIND.badInput, `${f.path}: its file ${f.medical.source} is no longer loaded`);
  return { blob: slicePng(src, f.medical.index), path: f.path, width: src.file.width, height: src.file.height, medical: { source: src.path, index: f.medical.index, window: src.window } };
}

function slicePng(src, index) {
  if (!src.pngs.has(index)) src.pngs.set(index, new Blob([src.file.png(index, src.window)], { type: 'image/png' }));
  return src.pngs.get(index);
}

/** What the review's window control shows for result `r` (null: not a gray slice of a
 *  loaded file): the window (`file`, `minmax` or `C,W`), its centre and width, the presets. */
export function windowInfo(r) {
  const src = sourceOf(r.medical);
  if (!src || !src.file.gray) return null;
  const fileWindow = src.file.fileWindow() || null;
  const range = src.file.range() || null;
  return { window: src.window, numbers: numbers(src.window, fileWindow, range), fileWindow, range, presets: wasm.windowPresets(), source: src.path };
}

// The centre and width a window shows in the numeric fields (min-max: the range's middle and
// extent, a starting point for dragging).
function numbers(window, fileWindow, range) {
  if (window === 'file') return fileWindow;
  if (window === 'minmax') return range ? [(range[0] + range[1]) / 2, Math.max(1, range[1] - range[0])] : [0, 1];
  const [c, w] = window.split(',').map(Number);
  return [c, w];
}

/** Slice of result `r` under `window`, as RGBA (the live preview while the window moves). */
export function previewWindow(r, window) {
  const src = sourceOf(r.medical);
  if (!src) throw failure(KIND.badInput, `${r.name}: not a slice of a loaded medical file (drop the file again to change its window)`);
  const rgba = src.file.rgba(r.medical.index, window);
  return { rgba, width: src.file.width, height: src.file.height };
}

/** Set the window of the file result `r` comes from: its slices' images change (the open
 *  result's and every stored result's of that file), so SAM embeds them again. Returns the
 *  open result's new image and the window control's state. */
export async function setWindow(r, window) {
  const src = sourceOf(r.medical);
  if (!src) throw failure(KIND.badInput, `${r.name}: not a slice of a loaded medical file (drop the file again to change its window)`);
  src.window = src.file.checkWindow(window);
  src.pngs = new Map();
  for (const meta of [...state.results.values()]) {
    if (meta.source !== src.path || meta.window === src.window) continue;
    const data = await store.getResultData(meta.name);
    if (!data || !data.medical) continue;
    const image = slicePng(src, data.medical.index);
    meta.window = src.window;
    await store.putResult(meta, { ...data, image, medical: { ...data.medical, window: src.window } });
  }
  if (state.open && state.open.medical && state.open.medical.source === src.path) {
    state.open.image = slicePng(src, state.open.medical.index);
    state.open.medical = { ...state.open.medical, window: src.window };
  }
  // The model's embedding was of the old image.
  state.modelImage = null;
  return { image: r.image, window: windowInfo(r) };
}

/** The label volumes of the loaded NIfTI files that have labelled slices: [{name, bytes}]
 *  (`<stem>.nii.gz`, on the reference's grid; slices without a result are background).
 *  `labelOf(sliceName)` gives a result's label ids or null. */
export async function labelVolumes(labelOf) {
  const out = [];
  for (const src of state.medical.values()) {
    if (!src.file.nifti) continue;
    const volume = new wasm.LabelVolume(await bytesOf(src.blob), src.path, src.file.width, src.file.height);
    try {
      for (const n of src.names) {
        const ids = await labelOf(n);
        if (!ids) continue;
        const label = wasm.Label.fromIds(src.file.width, src.file.height, ids);
        try { volume.set(n, label); } finally { label.free(); }
      }
      if (volume.count) out.push({ name: `${src.file.stem}.nii.gz`, bytes: volume.finish() });
    } finally {
      volume.free();
    }
  }
  return out;
}
