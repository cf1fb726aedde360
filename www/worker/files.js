// File bookkeeping: the loaded files, which file belongs to which image (by base name), what
// Run can do with them (the plan), mask zips, and the bundled demo.

import { state, bytesOf, messageOf } from './state.js';
import { wasm, rethrowTrap } from './wasm.js';
import { method, numClasses, MODEL_FREE } from './settings.js';

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

/** Add files of one kind (the demo, if loaded, goes first). */
export function addFiles(kind, list) {
  if (state.demo) clearInputs();
  for (const { file, path } of list) {
    state.files.push({ kind, path: path || file.name, file });
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

/** Why image entry `e` cannot be refined with the current method (null when it can). */
export function notRunnable(e) {
  const m = method();
  const hasCam = e.cams.length || e.camArray;
  if (!hasCam && !e.pseudo) return 'no CAM or pseudo-label for this name';
  if (m === 'sepl') {
    return e.maskFiles.length || e.maskZip || (e.image && state.model) ? null : 'no SAM masks for this name (and no weights loaded to compute them)';
  }
  if (!hasCam) return `${m} needs a CAM (.npy, .npz or heatmap PNGs), not a pseudo-label PNG`;
  if (!e.image) return `${m} needs the image`;
  if (!MODEL_FREE.includes(m) && !state.model) return `${m} needs the SAM weights (mobile_sam.pt): load them above`;
  return null;
}

/** What Run would do with the loaded files (protocol.js Plan). */
export function plan() {
  const { entries, issues } = group();
  let runnable = 0;
  const names = [...entries.keys()].sort();
  const unmatched = [];
  for (const n of names) {
    const reason = notRunnable(entries.get(n));
    if (reason) unmatched.push({ file: n, reason });
    else runnable++;
  }
  return {
    images: names.length, runnable, demo: state.demo,
    issues: [...issues, ...unmatched, ...state.issues],
    weights: !!state.model,
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
