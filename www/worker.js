// camsam's Web Worker: holds the data set, runs the model and the merge, so the page never
// freezes. The page talks to it with {id, cmd, args} messages; answers are {id, ok, result}
// or {id, ok: false, error}; progress arrives as {event: 'progress', ...}.
//
// Everything here is orchestration: which file belongs to which image, the run loop, edits.
// Decoding, merging, metrics and encoding happen in the wasm library (../pkg/camsam.js).

import init, * as wasm from '../pkg/camsam.js';
import * as store from './store.js';

const state = {
  ready: null,            // promise of the wasm module
  backend: 'cpu',
  adapter: '',
  files: [],              // {kind, name, path, file: Blob}
  classes: [],
  demo: false,
  results: new Map(),     // name -> summary of a finished image (store.js `results`), run order
  open: null,             // the one result held as wasm objects (see hydrate), for review
  session: null,          // the run's settings, classes, backend and issues (store.js `session`)
  issues: [],             // {file, reason}
  cancel: false,
  running: false,
  settings: { preset: 'official-imp2', t1: 0.5, t2: 0.85, combine: 'and', bg: 0.25 },
  metrics: null,
};

const post = (msg, transfer) => self.postMessage(msg, transfer || []);
const progress = (p) => post({ event: 'progress', ...p });

// ---------------------------------------------------------------- file bookkeeping

const stem = (path) => {
  const base = path.split('/').pop();
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
};
const ext = (path) => {
  const base = path.split('/').pop();
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
};
const bytesOf = async (blob) => new Uint8Array(await blob.arrayBuffer());

function addFiles(kind, list) {
  if (state.demo) clearInputs();
  for (const { file, path } of list) {
    state.files.push({ kind, path: path || file.name, file });
  }
  return plan();
}

// Forget the loaded files (the finished results stay: see clearResults).
function clearInputs() {
  state.files = [];
  state.issues = [];
  state.demo = false;
  if (state.zips) for (const z of state.zips.values()) z?.free?.();
  state.zips = new Map();
  state.zipIndex = new Map();
  state.zipNames = [];
}

// Group the loaded files by image name. Returns {names, entries, issues}.
// A PNG among the CAMs is a pseudo-label when its stem names an image known from another
// input (or has no `_<class id>` suffix); otherwise `<name>_<class id>.png` is a CAM heatmap.
function group() {
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
  for (const z of (state.zipNames || [])) for (const n of z) known.add(n);
  const nClasses = state.classes.length || 21;
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
  for (const [zipPath, names] of (state.zipIndex || new Map())) {
    for (const n of names) entry(n).maskZip = zipPath;
  }
  return { entries, issues };
}

// The refiner of the method selector: the SEPL presets, or one of the other refiners.
const REFINERS = ['cpm', 'pamr', 'crf', 'cpm+sepl'];
const MODEL_FREE = ['pamr', 'crf'];
const method = () => (REFINERS.includes(state.settings.preset) ? state.settings.preset : 'sepl');

// Why image entry `e` cannot be refined with the current method (null when it can).
function notRunnable(e) {
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

function plan() {
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

// Expand mask zips once they are loaded: index their names.
async function indexZips() {
  state.zipIndex = state.zipIndex || new Map();
  state.zips = state.zips || new Map();
  state.zipNames = [];
  for (const f of state.files) {
    if (f.kind !== 'masks' || ext(f.path) !== 'zip' || state.zips.has(f.path)) continue;
    try {
      const zip = wasm.MaskZip.open(await bytesOf(f.file), f.path);
      state.zips.set(f.path, zip);
      state.zipIndex.set(f.path, zip.names());
      for (const w of zip.warnings()) state.issues.push({ file: f.path, reason: w });
    } catch (err) {
      state.issues.push({ file: f.path, reason: String(err.message || err) });
      state.zips.set(f.path, null);
    }
  }
  for (const names of state.zipIndex.values()) state.zipNames.push(names);
}

// ---------------------------------------------------------------- the run

// The library's settings (camsam::refine::Settings; missing fields take the library's
// defaults) from the page's controls: the method selector holds the SEPL presets and the other
// refiners; a non-SEPL method that merges (cpm+sepl) uses the default preset.
function librarySettings() {
  const s = state.settings;
  const sepl = { t1: Number(s.t1), t2: Number(s.t2), combine: s.combine };
  if (!REFINERS.includes(s.preset)) sepl.preset = s.preset;
  return { method: method(), num_classes: state.classes.length || 21, cam: { bg_threshold: Number(s.bg) }, sepl, generator: state.amg || {} };
}

function freeResult(r) {
  for (const k of ['ref', 'pseudo', 'refined', 'gt', 'cams']) { r[k]?.free?.(); r[k] = null; }
}

async function loadMasks(e, width, height) {
  if (e.maskZip) return state.zips.get(e.maskZip).masks(e.name, width, height);
  const files = new wasm.MaskFiles(e.name);
  for (const f of e.maskFiles) files.add(f.path.split('/').pop(), await bytesOf(f.file));
  return files.decode(width, height);
}

// Where an image's CAM comes from: one `.npy`/`.npz` or heatmap PNGs (files, kept with its
// result so the review can show the CAM after a reload); null for a pseudo-label PNG.
function camSource(e) {
  if (e.camArray) {
    if (e.cams.length) throw new Error(`${e.name}: both ${e.camArray.path} and heatmap PNGs; expected one kind of CAM per image`);
    return { array: { blob: e.camArray.file, path: e.camArray.path } };
  }
  if (e.cams.length) return { heatmaps: e.cams.map((c) => ({ cls: c.cls, blob: c.f.file, path: c.f.path })) };
  return null;
}

async function decodeCams(source, numClasses) {
  if (source.array) return wasm.Cams.fromArray(await bytesOf(source.array.blob), source.array.path, numClasses);
  const files = new wasm.HeatmapFiles();
  for (const c of source.heatmaps) files.add(c.cls, await bytesOf(c.blob), c.path);
  return files.decode(numClasses);
}

// The pipeline's inputs of result `r` (its image, CAM or pseudo-label), for a re-derive.
async function inputsOf(r) {
  const inputs = new wasm.RefineInputs(r.name);
  if (r.image) inputs.setImage(await bytesOf(r.image), r.imagePath);
  if (r.camSource) inputs.setCams(await camsOf(r));
  else inputs.setPseudo(r.pseudo);
  return inputs;
}

// One image through the library's pipeline (`Sam.refine` / `refineImage`, the calls `camsam
// refine` makes), with the image's embedding cached by content hash: later runs and the prompt
// tool skip the encoder. Returns the result as wasm objects; the caller stores it (persist).
async function runOne(e) {
  const n = state.classes.length || 21;
  const settings = librarySettings();
  const r = { name: e.name, edits: [], redo: [], width: 0, height: 0, mode: settings.method, numClasses: n, camSource: null, everything: false };
  const inputs = new wasm.RefineInputs(e.name);
  try {
    const bytes = e.image ? await bytesOf(e.image.file) : null;
    if (bytes) { inputs.setImage(bytes, e.image.path); r.image = e.image.file; r.imagePath = e.image.path; }
    if (e.pseudo) {
      const label = wasm.Label.fromPng(await bytesOf(e.pseudo.file), e.pseudo.path);
      inputs.setPseudo(label);
      label.free();
    } else {
      r.camSource = camSource(e);
      r.cams = await decodeCams(r.camSource, n);
      inputs.setCams(r.cams);
    }
    r.width = inputs.width; r.height = inputs.height;
    const masks = e.maskFiles.length || e.maskZip ? await loadMasks(e, r.width, r.height) : undefined;
    const sam = !MODEL_FREE.includes(r.mode) && !(r.mode === 'sepl' && masks);
    if (sam) {
      r.everything = !masks && r.mode !== 'cpm';
      const key = await embeddingKey(bytes);
      const cached = await store.getEmbedding(key);
      r.ref = await state.model.refine(inputs, settings, masks,
        (d, t) => { progress({ sub: d / t, name: e.name }); loseDeviceHook(); }, cancelled, cached || undefined);
      state.modelImage = null;
      // The model's last image is the whole image unless segment-everything used crops.
      if (!cached && !(r.everything && state.amg && state.amg.crop_n_layers > 0)) await store.putEmbedding(key, await state.model.embedding());
    } else {
      r.ref = await wasm.refineImage(inputs, settings, masks);
    }
    if (e.gt) r.gt = wasm.Label.fromPng(await bytesOf(e.gt.file), e.gt.path);
    relabel(r);
    r.backend = sam ? state.backend : 'none';
    return r;
  } catch (err) {
    freeResult(r);
    throw err;
  } finally {
    inputs.free();
  }
}

// ---------------------------------------------------------------- results kept in IndexedDB

// Store result `r` (its summary in state.results, its data in IndexedDB). Everything is read
// from the wasm objects before the first await, so `r` may be freed once this returns.
async function persist(r) {
  const m = r.ref.masks();
  const masks = m ? { bytes: m.packed(), files: Array.from({ length: m.len() }, (_, i) => m.file(i)) } : null;
  m?.free();
  const ids = (label) => { try { return label ? label.ids() : null; } finally { label?.free(); } };
  const data = {
    pseudo: r.pseudo.ids(), base: ids(r.ref.base()), cpm: ids(r.ref.cpm()), refined: r.refined.ids(), gt: r.gt ? r.gt.ids() : null,
    masks, edits: r.edits, redo: r.redo,
    image: r.image || null, imagePath: r.imagePath || '', cams: r.camSource || null, numClasses: r.numClasses,
  };
  const meta = { name: r.name, seq: r.seq, width: r.width, height: r.height, mode: r.mode, backend: r.backend, edits: r.edits.length, gt: !!r.gt, fromCams: !!r.camSource, everything: !!r.everything, masks: masks ? masks.files.length : null };
  try {
    await store.putResult(meta, data);
  } catch (err) {
    // Storage full: keep the labels and masks without copies of the image and CAM files
    // (after a reload the review then shows the labels alone).
    if (!data.image && !data.cams) throw new Error(`${r.name}: not kept in this browser (IndexedDB: ${err.message || err}); free disk space or clear the results`);
    await store.putResult(meta, { ...data, image: null, cams: null }).catch((again) => {
      throw new Error(`${r.name}: not kept in this browser (IndexedDB: ${again.message || again}); free disk space or clear the results`);
    });
  }
  state.results.set(r.name, meta);
}

// A stored result back as wasm objects (the CAM is decoded on demand, by camsOf).
function hydrate(meta, data) {
  const { name, width: w, height: h } = meta;
  const r = {
    name, seq: meta.seq, width: w, height: h, mode: meta.mode, backend: meta.backend, everything: meta.everything, edits: data.edits, redo: data.redo,
    image: data.image, imagePath: data.imagePath, camSource: data.cams, numClasses: data.numClasses,
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
    freeResult(r);
    throw new Error(`${name}: its stored result is unreadable (${err.message || err}); clear the results and run again`);
  }
}

async function storedData(name) {
  const data = await store.getResultData(name);
  if (!data) throw new Error(`${name}: its stored result is missing (cleared in another tab?); run again`);
  return data;
}

// The result under review, as wasm objects; opening another one frees it.
async function openResult(name) {
  if (state.open && state.open.name === name) return state.open;
  const meta = state.results.get(name);
  if (!meta) throw new Error(`${name}: no result yet (run first)`);
  const r = hydrate(meta, await storedData(name));
  closeOpen();
  state.open = r;
  return r;
}

function closeOpen() {
  if (state.open) freeResult(state.open);
  state.open = null;
}

// `fn(r)` on each stored result in run order (those passing `filter(summary)`), one at a
// time: memory holds one image whatever the data set's size.
async function forEachResult(fn, filter = () => true) {
  for (const meta of [...state.results.values()]) {
    if (!filter(meta)) continue;
    const own = state.open && state.open.name === meta.name;
    const r = own ? state.open : hydrate(meta, await storedData(meta.name));
    try { await fn(r); } finally { if (!own) freeResult(r); }
  }
}

async function clearResults() {
  closeOpen();
  state.results.clear();
  state.metrics = null;
  state.session = null;
  await store.clearResults();
}

// The results of the last visit: their summaries, the run's settings and classes, metrics.
async function restoreResults() {
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

const saveSession = () => (state.session ? store.putSession(state.session) : Promise.resolve());

// ---------------------------------------------------------------- merge, edits, metrics

// The labels of `r` again with the current settings (no SAM re-run): the library re-derives
// the pseudo-label and the method's label from the CAM and image (so the CAM background acts
// after a run too), then `relabel`. CRF and saliency labels do not depend on the sliders.
async function rederive(r) {
  if (['sepl', 'pamr', 'cpm', 'cpm+sepl'].includes(r.mode) && (r.camSource || r.mode === 'sepl' || r.mode === 'cpm+sepl')) {
    const inputs = await inputsOf(r);
    try { r.ref.update(inputs, librarySettings()); } finally { inputs.free(); }
  }
  relabel(r);
}

// The label the user sees: the merge without the rejected masks, then the edits (library).
function relabel(r) {
  const refined = r.ref.edited(librarySettings(), r.edits);
  const pseudo = r.ref.pseudo();
  r.refined?.free(); r.pseudo?.free();
  r.refined = refined; r.pseudo = pseudo;
}

// Dataset metrics, one image at a time: add(r) for each result, then finish() (null when no
// image has ground truth).
function metricsAccumulator() {
  const n = state.classes.length || 21;
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

async function computeMetrics() {
  const acc = metricsAccumulator();
  try {
    await forEachResult((r) => acc.add(r), (meta) => meta.gt);
  } catch (err) { acc.finish(); throw err; }
  return acc.finish();
}

const tick = () => new Promise((res) => setTimeout(res, 0));

// The worker's wasm linear memory, after a GC when the page runs with --js-flags=--expose-gc
// (the page adds the JS heaps): the long-batch memory test reads these.
function memorySample(done) {
  globalThis.gc?.();
  return { done, wasm_bytes: state.memory ? state.memory.buffer.byteLength : null };
}

// A run replaces the previous results: each image is stored as it finishes, so a reload or
// a crash keeps what was done.
async function run() {
  if (state.running) throw new Error('a run is already in progress');
  state.running = true;
  state.cancel = false;
  state.issues = state.issues.filter((i) => !i.run);
  try {
    await indexZips();
    const { entries } = group();
    const names = [...entries.keys()].sort().filter((n) => !notRunnable(entries.get(n)));
    await clearResults();
    state.session = { settings: { ...state.settings }, classes: state.classes, backend: state.backend, issues: [] };
    await saveSession();
    const t0 = performance.now();
    let failed = 0;
    const acc = metricsAccumulator();
    let metrics = null;
    progress({ done: 0, total: names.length, name: '' });
    try {
      for (let i = 0; i < names.length; i++) {
        await tick(); // let a cancel message in
        if (state.cancel) break;
        const e = entries.get(names[i]);
        try {
          const r = await runOne(e);
          r.seq = i;
          try {
            acc.add(r);
            await persist(r);
          } finally { freeResult(r); }
        } catch (err) {
          const msg = String(err.message || err);
          const gpu = gpuFailure(err);
          if (gpu) {
            await fallBackToCpu(gpu);
            i--; // the same image again, on the CPU
            continue;
          }
          if (err.kind === 'cancelled' || state.cancel) break; // a cancel is not a failed file
          failed++;
          state.issues.push({ file: e.name, reason: msg, run: true });
        }
        const dt = (performance.now() - t0) / (i + 1);
        progress({ done: i + 1, total: names.length, name: e.name, eta_s: (dt * (names.length - i - 1)) / 1000 });
        if (state.memoryEvery && (i + 1) % state.memoryEvery === 0) post({ event: 'memory', ...memorySample(i + 1) });
      }
    } finally {
      metrics = acc.finish();
      Object.assign(state.session, { backend: state.backend, issues: state.issues.map(({ file, reason }) => ({ file, reason })) });
      await saveSession();
    }
    return { fromCams: [...state.results.values()].some((m) => m.fromCams), done: state.results.size, failed, total: names.length, cancelled: state.cancel, metrics, plan: plan(), names: [...state.results.keys()], backend: state.backend, notice: state.notice || '' };
  } finally {
    state.running = false;
  }
}

// ---------------------------------------------------------------- review

async function view(name) {
  const r = await openResult(name);
  const set = r.ref.masks();
  const masks = [];
  try { for (let i = 0; i < (set ? set.len() : 0); i++) masks.push(set.mask(i)); } finally { set?.free(); }
  return {
    name, width: r.width, height: r.height,
    pseudo: r.pseudo.ids(), refined: r.refined.ids(), gt: r.gt ? r.gt.ids() : null,
    masks, image: r.image || null,
    cams: r.camSource ? Array.from((await camsOf(r)).classes()) : [],
    edits: r.edits.length, redo: r.redo.length,
  };
}

async function camsOf(r) {
  if (!r.cams && r.camSource) r.cams = await decodeCams(r.camSource, r.numClasses);
  return r.cams;
}

async function camOf(name, cls) {
  const r = await openResult(name);
  const cams = await camsOf(r);
  return cams ? cams.normalised(cls) : null;
}

async function edit(name, op) {
  const r = await openResult(name);
  if (op.op === 'undo') { if (r.edits.length) r.redo.push(r.edits.pop()); }
  else if (op.op === 'redo') { if (r.redo.length) r.edits.push(r.redo.pop()); }
  else { r.edits.push(op); r.redo = []; }
  relabel(r);
  const out = { refined: r.refined.ids(), edits: r.edits.length, redo: r.redo.length };
  await persist(r);
  return out;
}

// The smallest mask under the pixel (nested parts win over whole objects), -1 for none.
async function maskAt(name, x, y) {
  const r = await openResult(name);
  return r.ref.maskAt(x, y) ?? -1;
}

// Re-derive every result with `settings`; a later remergeAll request (`state.latestRemerge`,
// set when the message arrives) makes this one stop early and answer {superseded: true}.
async function remergeAll(settings, id) {
  Object.assign(state.settings, settings);
  if (state.session) { state.session.settings = { ...state.settings }; await saveSession(); }
  const superseded = () => id !== undefined && id !== state.latestRemerge;
  const acc = metricsAccumulator();
  try {
    await forEachResult(async (r) => {
      await rederive(r);
      acc.add(r);
      await persist(r);
    }, () => !superseded());
  } catch (err) { acc.finish(); throw err; }
  const metrics = acc.finish();
  return superseded() ? { superseded: true } : metrics;
}

async function remergeOne(name, settings) {
  Object.assign(state.settings, settings);
  if (!state.results.has(name)) return null;
  const r = await openResult(name);
  await rederive(r);
  const ids = r.refined.ids();
  await persist(r);
  return ids;
}

// ---------------------------------------------------------------- sweep

// SEPL's t1 × t2 over the stored results that have ground truth and SAM masks (merge-based
// results, not the cpm / pamr labels), with the page's other merge settings.
async function sweep({ settings, t1, t2 }) {
  const sweeper = new wasm.Sweeper(librarySettingsWith(settings), t1, t2);
  try {
    let n = 0;
    await forEachResult(async (r) => {
      if (!r.gt || !['sepl', 'cpm+sepl'].includes(r.mode)) return;
      const rejected = r.edits.filter((x) => x.op === 'reject').map((x) => x.mask);
      const masks = r.ref.masks(), cpm = r.ref.cpm();
      try { sweeper.add(cpm || r.pseudo, masks, r.gt, r.name, Uint32Array.from(rejected)); } finally { masks.free(); cpm?.free(); }
      n++;
    });
    if (!n) throw new Error('sweep: no refined image has ground truth and SAM masks; load ground truth and run a SEPL method first');
    const { sweep: result, heatmap } = sweeper.result();
    return { result, heatmap, png: sweeper.heatmapPng() };
  } finally {
    sweeper.free();
  }
}

// ---------------------------------------------------------------- export

// The library's settings for the page's controls `settings` (a sweep of the current view),
// without changing the stored ones.
function librarySettingsWith(settings) {
  const kept = state.settings;
  state.settings = { ...kept, ...(settings || {}) };
  try { return librarySettings(); } finally { state.settings = kept; }
}

// report.json of the stored results, written by the library (the fields `camsam refine`
// writes): the settings that produced the labels, the run's backend and issues.
function report() {
  const s = state.session || {};
  const results = [...state.results.values()];
  const m = state.metrics;
  return wasm.reportJson({
    settings: librarySettings(), backend: s.backend || state.backend, classes: state.classes,
    images: results.map((r) => {
      const i = m ? m.images.find((x) => x.name === r.name) : null;
      return { name: r.name, width: r.width, height: r.height, method: r.mode, backend: r.backend, sam_masks: r.masks ?? null, edits: r.edits, miou_before: i ? i.before : null, miou_after: i ? i.after : null };
    }),
    metrics: m ? { before: m.before, after: m.after } : null,
    issues: (s.issues || []).map((i) => `${i.file}: ${i.reason}`),
    from_cams: results.some((r) => r.fromCams), everything: results.some((r) => r.everything),
  });
}

// The zip of the stored results, read one image at a time from IndexedDB.
async function exportZip({ gray, overlays }) {
  const zip = new wasm.Zip();
  try {
    for (const meta of state.results.values()) {
      const data = await storedData(meta.name);
      const label = wasm.Label.fromIds(meta.width, meta.height, data.refined);
      try {
        zip.add(`${meta.name}.png`, label.toPng(!!gray));
        if (overlays) {
          const img = data.image ? await bytesOf(data.image) : undefined;
          zip.add(`overlays/${meta.name}.png`, wasm.overlayPng(label, img, data.imagePath || ''));
        }
      } finally { label.free(); }
    }
    zip.add('report.json', report());
  } catch (err) { zip.free(); throw err; }
  return zip.finish();
}

// ---------------------------------------------------------------- demo, weights, backend

// The bundled demo replaces the loaded files; with `unlessFiles` (start-up) it is loaded only
// when the user has given no file yet.
async function loadDemo({ unlessFiles = false } = {}) {
  if (unlessFiles && state.files.length && !state.demo) return plan();
  clearInputs();
  const files = wasm.demoFiles();
  const kinds = { images: 'images', cams: 'cams', masks: 'masks', gt: 'gt' };
  for (const { path, bytes } of files) {
    const [top, ...rest] = path.split('/');
    state.files.push({ kind: kinds[top], path: rest.join('/'), file: new Blob([bytes], { type: 'image/png' }) });
  }
  state.demo = true;
  return plan();
}

// The backend the model will use: with `auto`, WebGPU when the browser offers an adapter (the
// model confirms it when the weights load: no device or a failed upload falls back to the
// CPU); `cpu` when asked for or when there is no adapter. The adapter is shown either way.
async function detectBackend(prefer) {
  state.backend = 'cpu';
  state.adapter = '';
  state.prefer = prefer || 'auto';
  if (self.navigator && navigator.gpu) {
    try {
      const adapter = await navigator.gpu.requestAdapter();
      if (adapter) {
        const info = adapter.info || {};
        state.adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'WebGPU adapter';
        if (state.prefer !== 'cpu') state.backend = 'webgpu';
      }
    } catch (_) { /* no adapter: CPU */ }
  }
  return { backend: state.backend, adapter: state.adapter };
}

// The WebGPU device failed under a job (device lost, or any GPU error): reload the same
// weights on the CPU; the run loop then restarts the job. Finished results stay.
async function fallBackToCpu(reason) {
  const model = await wasm.Sam.load(await bytesOf(state.weightsFile), state.weightsName, 'cpu');
  state.model?.free();
  state.model = model;
  state.modelImage = null;
  state.backend = 'cpu';
  state.notice = `WebGPU failed (${reason}): continuing on the CPU`;
  post({ event: 'backend', backend: 'cpu', adapter: state.adapter, notice: state.notice });
}

// A job failed on the GPU when the model says its device is lost or the error is a WebGPU one.
const gpuFailure = (err) => state.backend === 'webgpu' && state.model && (state.model.lost || err.kind === 'gpu')
  ? (state.model.lost ? `device lost: ${state.model.lost}` : String(err.message || err)) : null;

// Test hook (`?lose-gpu-after=K` on the page): destroy the WebGPU device after K batches of
// segment-everything prompts, a real loss of the device in the middle of a job.
function loseDeviceHook() {
  if (state.loseGpuAfter === undefined || state.backend !== 'webgpu') return;
  if (--state.loseGpuAfter <= 0) { state.loseGpuAfter = undefined; state.model.destroyDevice(); }
}

const cancelled = () => state.cancel || (state.cancelFlag ? Atomics.load(state.cancelFlag, 0) === 1 : false);

const WEIGHTS_CACHE = 'camsam-weights-v1';
const WEIGHTS_KEY = new URL('../camsam-cache/weights', self.location.href).href;

async function loadWeights({ file, name, cache = true }) {
  const bytes = await bytesOf(file);
  const model = await wasm.Sam.load(bytes, name, state.prefer || 'auto');
  state.model?.free();
  state.model = model;
  state.modelImage = null;
  state.weightsFile = file;
  state.weightsName = name;
  state.weightsHash = await sha256(bytes);
  state.backend = model.kind;
  if (!state.adapter && model.adapter) state.adapter = model.adapter;
  state.notice = model.fallback ? `WebGPU unavailable (${model.fallback}): running on the CPU` : '';
  if (cache && self.caches) {
    try {
      const c = await caches.open(WEIGHTS_CACHE);
      await c.put(WEIGHTS_KEY, new Response(bytes, { headers: { 'x-camsam-name': encodeURIComponent(name) } }));
    } catch (_) { /* storage full or unavailable: the weights still work for this visit */ }
  }
  return { name, backend: state.backend, detail: model.backend, adapter: state.adapter, notice: state.notice };
}

async function restoreWeights() {
  if (!self.caches) return null;
  const c = await caches.open(WEIGHTS_CACHE);
  const r = await c.match(WEIGHTS_KEY);
  if (!r) return null;
  const name = decodeURIComponent(r.headers.get('x-camsam-name') || 'weights');
  return loadWeights({ file: await r.blob(), name, cache: false });
}

const sha256 = async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');

// The cache key of an image's embedding: the SHA-256 of the weights' content and of the image
// (two checkpoints with the same file name never share embeddings).
async function embeddingKey(bytes) {
  return `${state.weightsHash}:${await sha256(bytes)}`;
}

async function setImageCached(r) {
  if (state.modelImage === r.name) return;
  const bytes = await bytesOf(r.image);
  const key = await embeddingKey(bytes);
  const cached = await store.getEmbedding(key);
  if (cached) await state.model.setEmbedding(cached, r.height, r.width);
  else {
    await state.model.setImage(bytes, r.imagePath || r.name);
    await store.putEmbedding(key, await state.model.embedding());
  }
  state.modelImage = r.name;
}

// The point/box tool: SAM on one prompt, the mask added to the image's set and given `cls`.
async function promptMask({ name, prompt, cls }) {
  const r = await openResult(name);
  if (!state.model) throw new Error('load the SAM weights to use the point/box tool');
  if (!r.image) throw new Error(`${name}: no image loaded; the point/box tool needs the image`);
  await setImageCached(r);
  const points = (prompt.points || []).flat();
  const labels = prompt.labels || [];
  const mask = await state.model.prompt(Float64Array.from(points), Int32Array.from(labels), prompt.box ? Float64Array.from(prompt.box) : undefined);
  const index = r.ref.pushMask(mask);
  const out = await edit(name, { op: 'assign', mask: index, cls });
  return { ...out, masks: (await view(name)).masks };
}

// ---------------------------------------------------------------- bench

// Speed in this browser: encoder ms (one image), decoder ms/prompt (segment-everything on the
// encoded image's embedding with `decoderPoints`² prompts, post-processing included, per
// prompt), everything-mode s/image (`pointsPerSide`², encoder included; 0 skips it).
async function bench({ pointsPerSide = 32, decoderPoints = 4 } = {}) {
  if (!state.model && !(await restoreWeights())) throw new Error('no weights: pick mobile_sam.pt or a .safetensors checkpoint first');
  const img = wasm.demoFiles().find((f) => f.path === 'images/demo_street.png');
  const never = () => false;
  const t0 = performance.now();
  await state.model.setImage(img.bytes, 'demo_street.png');
  const encoderMs = performance.now() - t0;
  state.modelImage = null;
  const embedding = await state.model.embedding();
  const prompts = decoderPoints * decoderPoints;
  const t1 = performance.now();
  (await state.model.everything(img.bytes, 'demo_street.png', { points_per_side: decoderPoints, points_per_batch: prompts }, () => {}, never, embedding)).free();
  const decoderMsPerPrompt = (performance.now() - t1) / prompts;
  let everythingS = null, n = null;
  if (pointsPerSide > 0) {
    const t2 = performance.now();
    const masks = await state.model.everything(img.bytes, 'demo_street.png', { points_per_side: pointsPerSide }, () => {}, never);
    everythingS = (performance.now() - t2) / 1000;
    n = masks.len();
    masks.free();
  }
  const r = {
    adapter: state.adapter || 'none', backend: state.backend, model_backend: state.model.backend,
    encoder_ms: encoderMs, decoder_ms_per_prompt: decoderMsPerPrompt, decoder_batch: prompts,
    everything_s_per_image: everythingS, points_per_side: pointsPerSide, masks: n, image: '320×240 generated (demo_street)',
  };
  r.lines = [
    `adapter: ${r.adapter}`,
    `backend: ${r.backend} (${r.model_backend})`,
    `encoder: ${encoderMs.toFixed(0)} ms/image`,
    `decoder: ${decoderMsPerPrompt.toFixed(1)} ms/prompt (batch of ${prompts}, post-processing included)`,
    everythingS === null ? 'everything: skipped (points per side 0)'
      : `everything: ${everythingS.toFixed(2)} s/image (${pointsPerSide}×${pointsPerSide} points, ${n} masks, ${r.image})`,
  ];
  return r;
}

// ---------------------------------------------------------------- dispatch

const commands = {
  async init({ classes, backend, cancelFlag, loseGpuAfter, memoryEvery }) {
    if (cancelFlag) state.cancelFlag = new Int32Array(cancelFlag);
    if (loseGpuAfter !== undefined) state.loseGpuAfter = loseGpuAfter;
    if (memoryEvery) state.memoryEvery = memoryEvery;
    state.ready = state.ready || init();
    state.memory = (await state.ready).memory;
    state.classes = classes || wasm.vocClasses();
    // Results of an earlier visit (their run's classes and settings come back with them).
    let restored = null, storage = '';
    try { restored = await restoreResults(); } catch (err) { storage = `finished results are not kept (IndexedDB: ${err.message || err})`; }
    const b = await detectBackend(backend);
    return { version: wasm.version(), classes: state.classes, ...b, restored, storage };
  },
  async classes({ classes }) {
    state.classes = classes;
    if (state.session) { state.session.classes = classes; await saveSession(); }
    return plan();
  },
  async addFiles({ kind, files }) { addFiles(kind, files); await indexZips(); return plan(); },
  async clear() { clearInputs(); await clearResults(); return plan(); },
  async clearResults() { await clearResults(); return plan(); },
  loadDemo,
  plan,
  async run({ settings }) { Object.assign(state.settings, settings); return run(); },
  view: ({ name }) => view(name),
  cam: ({ name, cls }) => camOf(name, cls),
  edit: ({ name, op }) => edit(name, op),
  maskAt: ({ name, x, y }) => maskAt(name, x, y),
  remergeOne: ({ name, settings }) => remergeOne(name, settings),
  remergeAll: ({ settings }, id) => remergeAll(settings, id),
  exportZip,
  report: () => JSON.parse(new TextDecoder().decode(report())),
  sweep,
  // The metrics of the stored results as they are (after an edit: only that image changed).
  metrics: () => computeMetrics(),
  loadWeights,
  restoreWeights,
  prompt: promptMask,
  amg({ options }) { state.amg = options; return true; },
  bench: (args) => bench(args),
  memory: () => memorySample(null),
};

// Commands run one after another (a run, a re-merge of every result, an edit and an export
// never interleave at their awaits); `cancel` and `init` answer at once.
let queue = Promise.resolve();

self.onmessage = (ev) => {
  const { id, cmd, args } = ev.data;
  if (cmd === 'cancel') { state.cancel = true; post({ id, ok: true, result: true }); return; }
  if (cmd === 'remergeAll') state.latestRemerge = id;
  const job = async () => {
    if (cmd === 'run' && state.cancelFlag) Atomics.store(state.cancelFlag, 0, 0);
    if (cmd !== 'init') await state.ready;
    const fn = commands[cmd];
    if (!fn) throw new Error(`unknown command ${cmd}`);
    return fn(args || {}, id);
  };
  const done = cmd === 'init' ? job() : queue.then(job);
  if (cmd !== 'init') queue = done.catch(() => {});
  done.then((result) => post({ id, ok: true, result }), (err) => post({ id, ok: false, error: String((err && err.message) || err), kind: (err && err.kind) || 'error' }));
};
