// File bookkeeping: the loaded files, which file belongs to which image (by base name), what
// Run can do with them (the plan), mask zips, and the bundled demo.

import { state, bytesOf, messageOf } from './state.js';
import { wasm, rethrowTrap } from './wasm.js';
import { method, numClasses, MODEL_FREE } from './settings.js';
import { clearMedical } from './medical.js';

export const stem = (path) => {
  const base = path.split('/').pop();
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
};
export const ext = (path) => {
  const base = path.split('/').pop();
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
};

/** Add files of one kind (the demo, if loaded, goes first). Slices of medical files
 *  (medical.js readMedical) come as `{path: '<slice>.png', file: null, medical}`. */
export function addFiles(kind, list) {
  if (state.demo) clearInputs();
  for (const { file, path, medical } of list) {
    state.files.push(medical ? { kind, path, file: null, medical } : { kind, path: path || file.name, file });
  }
}

/** Forget the loaded files (the finished results stay: see results.js clearResults). */
export function clearInputs() {
  state.files = [];
  state.issues = [];
  state.demo = false;
  for (const z of state.zips.values()) z?.free();
  state.zips = new Map();
  state.zipIndex = new Map();
  state.zipNames = [];
  clearMedical();
}

/**
 * Group the loaded files by image name. Returns {entries, issues}.
 * A PNG among the CAMs is a pseudo-label when its stem names an image known from another
 * input (or has no `_<class id>` suffix); otherwise `<name>_<class id>.png` is a CAM heatmap.
 */
export function group() {
  const entries = new Map();
  const issues = [];
  const entry = (name) => {
    if (!entries.has(name)) entries.set(name, { name, cams: [], maskFiles: [] });
    return entries.get(name);
  };
  const known = new Set();
  for (const f of state.files) {
    if (f.kind === 'images' || f.kind === 'gt') known.add(stem(f.path));
    if (f.kind === 'masks' && ext(f.path) === 'png') {
      const parts = f.path.split('/');
      if (parts.length >= 2) known.add(parts[parts.length - 2]);
    }
  }
  for (const z of state.zipNames) for (const n of z) known.add(n);
  const nClasses = numClasses();
  for (const f of state.files) {
    const e = ext(f.path);
    if (f.kind === 'weights') continue;
    if (f.kind === 'images') {
      if (!['png', 'jpg', 'jpeg', 'webp', 'bmp'].includes(e)) { issues.push({ file: f.path, reason: 'not an image (expected .png/.jpg)' }); continue; }
      entry(stem(f.path)).image = f;
    } else if (f.kind === 'gt') {
      if (e !== 'png') { issues.push({ file: f.path, reason: 'ground truth must be a class-id PNG' }); continue; }
      entry(stem(f.path)).gt = f;
    } else if (f.kind === 'cams') {
      const s = stem(f.path);
      if (e === 'npy' || e === 'npz') { entry(s).camArray = f; continue; }
      if (e !== 'png') { issues.push({ file: f.path, reason: 'expected .npy, .npz or .png' }); continue; }
      // `<name>_<class id>` with the id written without leading zeros (so VOC's
      // `2007_000032.png` is a pseudo-label), as `camsam cam2label` reads folders.
      const m = /^(.+)_(0|[1-9][0-9]{0,2})$/.exec(s);
      if (m && !known.has(s) && Number(m[2]) < Math.min(nClasses, 256)) {
        entry(m[1]).cams.push({ cls: Number(m[2]), f });
      } else {
        entry(s).pseudo = f;
      }
    } else if (f.kind === 'masks') {
      if (e === 'zip') continue; // expanded below
      if (e !== 'png') { issues.push({ file: f.path, reason: 'expected <name>/<i>.png or a .zip of them' }); continue; }
      const parts = f.path.split('/');
      if (parts.length < 2) { issues.push({ file: f.path, reason: 'a mask PNG must sit in a folder named after its image (<name>/<i>.png)' }); continue; }
      entry(parts[parts.length - 2]).maskFiles.push(f);
    }
  }
  for (const [zipPath, names] of state.zipIndex) {
    for (const n of names) entry(n).maskZip = zipPath;
  }
  return { entries, issues };
}

/** Whether image entry `e` has no CAM and no pseudo-label: it is labelled from scratch,
 *  starting as all background (SAM's masks, the point/box tool and the brush label it). */
export const fromScratch = (e) => !!e.image && !e.cams.length && !e.camArray && !e.pseudo;

/** Why image entry `e` cannot be refined with the current method (null when it can). */
export function notRunnable(e) {
  const m = method();
  const hasCam = e.cams.length || e.camArray;
  if (fromScratch(e)) {
    // All background, plus segment-everything's masks when weights or mask files are there.
    return m === 'sepl' ? null : `${m} needs a CAM (.npy, .npz or heatmap PNGs); with no CAM, choose a SEPL method to label the image from scratch`;
  }
  if (!hasCam && !e.pseudo) return 'no CAM or pseudo-label for this name';
  if (m === 'sepl') {
    return e.maskFiles.length || e.maskZip || (e.image && state.model) ? null : 'no SAM masks for this name (and no weights loaded to compute them)';
  }
  if (!hasCam) return `${m} needs a CAM (.npy, .npz or heatmap PNGs), not a pseudo-label PNG`;
  if (!e.image) return `${m} needs the image`;
  if (!MODEL_FREE.includes(m) && !state.model) return `${m} needs the SAM weights (mobile_sam.pt): load them above`;
  return null;
}

/** The names of `entries` in the order Run visits them: by name, then the slices of medical
 *  files in the order they were loaded (a DICOM series in series order, a volume's slices in
 *  slice order). */
export function orderedNames(entries) {
  const rank = new Map();
  state.files.forEach((f, i) => { if (f.medical && !rank.has(stem(f.path))) rank.set(stem(f.path), i); });
  const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  return [...entries.keys()].sort((a, b) => (rank.has(a) - rank.has(b)) || (rank.has(a) ? rank.get(a) - rank.get(b) : byName(a, b)));
}

/** What the image selector lists: the stored results, and the loaded images labelled from
 *  scratch that have none yet (they open as all background), in load order. */
export function reviewList(entries) {
  const order = orderedNames(entries);
  const at = new Map(order.map((n, i) => [n, i]));
  const scratch = order.filter((n) => fromScratch(entries.get(n)) && !state.results.has(n));
  const pos = (n) => (at.has(n) ? at.get(n) : -1);
  return [...state.results.keys(), ...scratch].sort((a, b) => pos(a) - pos(b));
}

/** What Run would do with the loaded files (protocol.js Plan). */
export function plan() {
  const { entries, issues } = group();
  let runnable = 0, scratch = 0;
  const names = [...entries.keys()].sort();
  const unmatched = [];
  for (const n of names) {
    const reason = notRunnable(entries.get(n));
    if (reason) unmatched.push({ file: n, reason });
    else runnable++;
    if (!reason && fromScratch(entries.get(n))) scratch++;
  }
  return {
    images: names.length, runnable, scratch, demo: state.demo,
    issues: [...issues, ...unmatched, ...state.issues],
    weights: !!state.model,
    review: reviewList(entries),
  };
}

/** Open the mask zips not opened yet and index their names; an unreadable one is an issue. */
export async function indexZips() {
  state.zipNames = [];
  for (const f of state.files) {
    if (f.kind !== 'masks' || ext(f.path) !== 'zip' || state.zips.has(f.path)) continue;
    try {
      const zip = wasm.MaskZip.open(await bytesOf(f.file), f.path);
      state.zips.set(f.path, zip);
      state.zipIndex.set(f.path, zip.names());
      for (const w of zip.warnings()) state.issues.push({ file: f.path, reason: w });
    } catch (err) {
      rethrowTrap(err);
      state.issues.push({ file: f.path, reason: messageOf(err) });
      state.zips.set(f.path, null);
    }
  }
  for (const names of state.zipIndex.values()) state.zipNames.push(names);
}

/** The bundled demo replaces the loaded files; with `unlessFiles` (start-up) it is loaded only
 *  when the user has given no file yet. */
export function loadDemo({ unlessFiles = false } = {}) {
  if (unlessFiles && state.files.length && !state.demo) return plan();
  clearInputs();
  const kinds = { images: 'images', cams: 'cams', masks: 'masks', gt: 'gt' };
  for (const { path, bytes } of wasm.demoFiles()) {
    const [top, ...rest] = path.split('/');
    state.files.push({ kind: kinds[top], path: rest.join('/'), file: new Blob([bytes], { type: 'image/png' }) });
  }
  state.demo = true;
  return plan();
}
