// The finished results: kept in IndexedDB (store.js) as each image finishes, one of them held as
// wasm objects for the review (state.open), the others read one at a time; the labels the user
// sees (merge, then edits) and the dataset metrics.

import { KIND } from '../protocol.js';
import { state, bytesOf, failure, messageOf, cleanUpAndThrow } from './state.js';
import { wasm, rethrowTrap } from './wasm.js';
import { librarySettings, settingsOf, numClasses } from './settings.js';
import * as store from './store.js';
import { group, fromScratch } from './files.js';
import { imageOf } from './medical.js';

/** Free result `r`'s wasm objects. */
export function freeResult(r) {
  for (const k of ['ref', 'pseudo', 'refined', 'gt', 'cams']) { r[k]?.free(); r[k] = null; }
}

/** Store result `r` (its summary in state.results, its data in IndexedDB). Everything is read
 *  from the wasm objects before the first await, so `r` may be freed once this returns. */
export async function persist(r) {
  const m = r.ref.masks();
  const masks = m ? { bytes: m.packed(), files: Array.from({ length: m.len() }, (_, i) => m.file(i)) } : null;
  m?.free();
  const ids = (label) => { try { return label ? label.ids() : null; } finally { label?.free(); } };
  const data = {
    pseudo: r.pseudo.ids(), base: ids(r.ref.base()), cpm: ids(r.ref.cpm()), refined: r.refined.ids(), gt: r.gt ? r.gt.ids() : null,
    masks, edits: r.edits, redo: r.redo,
    image: r.image || null, imagePath: r.imagePath || '', cams: r.camSource || null, numClasses: r.numClasses,
    medical: r.medical || null,
  };
  const meta = { name: r.name, seq: r.seq, width: r.width, height: r.height, mode: r.mode, backend: r.backend, edits: r.edits.length, gt: !!r.gt, fromCams: !!r.camSource, everything: !!r.everything, masks: masks ? masks.files.length : null };
  // A medical slice: its file and window (a new window updates the file's stored images).
  if (r.medical) Object.assign(meta, { source: r.medical.source, window: r.medical.window });
  const notKept = (err) => failure(KIND.storage, `${r.name}: not kept in this browser (IndexedDB: ${messageOf(err)}); free disk space or clear the results`, err);
  try {
    await store.putResult(meta, data);
  } catch (err) {
    // Storage full: keep the labels and masks without copies of the image and CAM files
    // (after a reload the review then shows the labels alone).
    if (!data.image && !data.cams) throw notKept(err);
    await store.putResult(meta, { ...data, image: null, cams: null }).catch((again) => { throw notKept(again); });
  }
  state.results.set(r.name, meta);
}

/** A stored result back as wasm objects (the CAM is decoded on demand, by camsOf). */
function hydrate(meta, data) {
  const { name, width: w, height: h } = meta;
  const r = {
    name, seq: meta.seq, width: w, height: h, mode: meta.mode, backend: meta.backend, everything: meta.everything, edits: data.edits, redo: data.redo,
    image: data.image, imagePath: data.imagePath, camSource: data.cams, numClasses: data.numClasses, medical: data.medical || null,
  };
  try {
    r.pseudo = wasm.Label.fromIds(w, h, data.pseudo);
    r.refined = wasm.Label.fromIds(w, h, data.refined);
    if (data.gt) r.gt = wasm.Label.fromIds(w, h, data.gt);
    const base = wasm.Label.fromIds(w, h, data.base);
    try {
      r.ref = wasm.Refined.restore(r.pseudo, base, data.cpm ? wasm.Label.fromIds(w, h, data.cpm) : undefined,
        data.masks ? wasm.Masks.fromPacked(w, h, data.masks.bytes, data.masks.files) : undefined);
    } finally { base.free(); }
    return r;
  } catch (err) {
    rethrowTrap(err);
    freeResult(r);
    throw failure(KIND.storage, `${name}: its stored result is unreadable (${messageOf(err)}); clear the results and run again`, err);
  }
}

/** The stored data of result `name`. */
export async function storedData(name) {
  const data = await store.getResultData(name);
  if (!data) throw failure(KIND.storage, `${name}: its stored result is missing (cleared in another tab?); run again`);
  return data;
}

/** The result under review, as wasm objects; opening another one frees it. An image loaded
 *  with no CAM and no pseudo-label, and no result yet, opens from scratch: all background,
 *  no SAM masks yet; its first edit stores it as a result. */
export async function openResult(name) {
  if (state.open && state.open.name === name) return state.open;
  const meta = state.results.get(name);
  const r = meta ? hydrate(meta, await storedData(name)) : await fromScratchResult(name);
  if (!r) throw failure(KIND.badInput, `${name}: no result yet (run first)`);
  closeOpen();
  state.open = r;
  return r;
}

/** A result of loaded image `name` labelled from scratch (files.js fromScratch), or null. */
async function fromScratchResult(name) {
  const e = group().entries.get(name);
  if (!e || !fromScratch(e)) return null;
  const img = await imageOf(e.image);
  let [w, h] = [img.width, img.height];
  if (w === undefined) [w, h] = wasm.imageSize(await bytesOf(img.blob), img.path);
  const seq = 1 + Math.max(-1, ...[...state.results.values()].map((m) => m.seq));
  const r = {
    name, seq, width: w, height: h, mode: 'sepl', backend: 'none', everything: false, edits: [], redo: [],
    image: img.blob, imagePath: img.path, camSource: null, numClasses: numClasses(), medical: img.medical || null,
  };
  try {
    r.pseudo = wasm.Label.background(w, h);
    if (e.gt) r.gt = wasm.Label.fromPng(await bytesOf(e.gt.file), e.gt.path);
    r.ref = wasm.Refined.restore(r.pseudo, r.pseudo, undefined, wasm.Masks.fromPacked(w, h, new Uint8Array(0), []));
    relabel(r);
    return r;
  } catch (err) {
    rethrowTrap(err);
    return cleanUpAndThrow(err, () => freeResult(r));
  }
}

function closeOpen() {
  if (state.open) freeResult(state.open);
  state.open = null;
}

/** Forget the open image when it is one labelled from scratch that no edit stored yet (only
 *  looked at): new files may have given it a CAM; opened again, it is made afresh. */
export function closeUnstored() {
  if (state.open && !state.results.has(state.open.name)) closeOpen();
}

/** `fn(r)` on each stored result in run order (those passing `filter(summary)`), one at a
 *  time: memory holds one image whatever the data set's size. */
export async function forEachResult(fn, filter = () => true) {
  for (const meta of [...state.results.values()]) {
    if (!filter(meta)) continue;
    const own = state.open && state.open.name === meta.name;
    const r = own ? state.open : hydrate(meta, await storedData(meta.name));
    try { await fn(r); } finally { if (!own) freeResult(r); }
  }
}

/** Forget every result (IndexedDB included; embeddings stay). */
export async function clearResults() {
  closeOpen();
  state.results.clear();
  state.metrics = null;
  state.session = null;
  await store.clearResults();
}

/** The results of the last visit: their summaries, the run's settings and classes, metrics.
 *  @returns {Promise<import('../protocol.js').Restored|null>} */
export async function restoreResults() {
  const [metas, session] = await Promise.all([store.listResults(), store.getSession()]);
  if (!metas.length) return null;
  state.results = new Map(metas.map((m) => [m.name, m]));
  if (session) {
    state.session = session;
    Object.assign(state.settings, session.settings);
    if (session.classes && session.classes.length) state.classes = session.classes;
  }
  return { names: metas.map((m) => m.name), fromCams: metas.some((m) => m.fromCams), metrics: await computeMetrics(), settings: state.settings, classes: state.classes };
}

/** Store the run's session record (settings, classes, backend, issues). */
export const saveSession = () => (state.session ? store.putSession(state.session) : Promise.resolve());

// ---------------------------------------------------------------- CAMs

/** A CAM from its source (results.js camSource): one `.npy`/`.npz` or heatmap PNGs. */
export async function decodeCams(source, classes) {
  if (source.array) return wasm.Cams.fromArray(await bytesOf(source.array.blob), source.array.path, classes);
  const files = new wasm.HeatmapFiles();
  for (const c of source.heatmaps) files.add(c.cls, await bytesOf(c.blob), c.path);
  return files.decode(classes);
}

/** Result `r`'s CAM, decoded on first use (null for a pseudo-label input). */
export async function camsOf(r) {
  if (!r.cams && r.camSource) r.cams = await decodeCams(r.camSource, r.numClasses);
  return r.cams;
}

// ---------------------------------------------------------------- labels

/** The pipeline's inputs of result `r` (its image, CAM or pseudo-label), for a re-derive. */
async function inputsOf(r) {
  const inputs = new wasm.RefineInputs(r.name);
  if (r.image) inputs.setImage(await bytesOf(r.image), r.imagePath);
  if (r.camSource) inputs.setCams(await camsOf(r));
  else inputs.setPseudo(r.pseudo);
  return inputs;
}

/** The labels of `r` again with the current settings (no SAM re-run): the library re-derives
 *  the pseudo-label and the method's label from the CAM and image (so the CAM background acts
 *  after a run too), then `relabel`. CRF and saliency labels do not depend on the sliders. */
export async function rederive(r) {
  if (['sepl', 'pamr', 'cpm', 'cpm+sepl'].includes(r.mode) && (r.camSource || r.mode === 'sepl' || r.mode === 'cpm+sepl')) {
    const inputs = await inputsOf(r);
    try { r.ref.update(inputs, settingsOf(r)); } finally { inputs.free(); }
  }
  relabel(r);
}

/** The label the user sees: the merge without the rejected masks, then the edits (library). */
export function relabel(r) {
  const refined = r.ref.edited(settingsOf(r), r.edits);
  const pseudo = r.ref.pseudo();
  r.refined?.free(); r.pseudo?.free();
  r.refined = refined; r.pseudo = pseudo;
}

// ---------------------------------------------------------------- metrics

/** Dataset metrics, one image at a time: add(r) for each result, then finish() (null when no
 *  image has ground truth). */
export function metricsAccumulator() {
  const n = numClasses();
  const before = new wasm.Confusion(n), after = new wasm.Confusion(n);
  const images = [];
  return {
    add(r) {
      if (!r.gt) return;
      before.add(r.pseudo, r.gt, r.name);
      after.add(r.refined, r.gt, r.name);
      const b = wasm.imageMiou(r.pseudo, r.gt, n), a = wasm.imageMiou(r.refined, r.gt, n);
      images.push({ name: r.name, before: b, after: a, delta: a - b });
    },
    finish() {
      try {
        if (!images.length) { state.metrics = null; return null; }
        images.sort((x, y) => x.after - y.after || x.name.localeCompare(y.name));
        state.metrics = { before: before.summary(), after: after.summary(), images, classes: state.classes };
        return state.metrics;
      } finally { before.free(); after.free(); }
    },
  };
}

/** The metrics of the stored results as they are. */
export async function computeMetrics() {
  const acc = metricsAccumulator();
  try {
    await forEachResult((r) => acc.add(r), (meta) => meta.gt);
  } catch (err) {
    cleanUpAndThrow(err, () => acc.finish());
  }
  return acc.finish();
}
