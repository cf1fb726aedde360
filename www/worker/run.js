// The run: every runnable image through the library's pipeline, one at a time, each result
// stored as it finishes; progress, cancel, and the fall-back to the CPU when the GPU fails.

import { EVENT, KIND } from '../protocol.js';
import { state, post, progress, bytesOf, failure, messageOf, cleanUpAndThrow } from './state.js';
import { wasm, rethrowTrap } from './wasm.js';
import { librarySettings, numClasses, MODEL_FREE } from './settings.js';
import { indexZips, group, notRunnable, plan, orderedNames, fromScratch } from './files.js';
import { imageOf } from './medical.js';
import { persist, freeResult, clearResults, saveSession, decodeCams, relabel, metricsAccumulator } from './results.js';
import { gpuFailure, fallBackToCpu, cancelled, embeddingKey } from './model.js';
import { loseDeviceHook, trapHook } from './test-hooks.js';
import * as store from './store.js';

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
    if (e.cams.length) throw failure(KIND.badInput, `${e.name}: both ${e.camArray.path} and heatmap PNGs; expected one kind of CAM per image`);
    return { array: { blob: e.camArray.file, path: e.camArray.path } };
  }
  if (e.cams.length) return { heatmaps: e.cams.map((c) => ({ cls: c.cls, blob: c.f.file, path: c.f.path })) };
  return null;
}

// One image through the library's pipeline (`Sam.refine` / `refineImage`, the calls `camsam
// refine` makes), with the image's embedding cached by content hash: later runs and the prompt
// tool skip the encoder. Returns the result as wasm objects; the caller stores it (persist).
async function runOne(e) {
  const n = numClasses();
  const settings = librarySettings();
  const r = { name: e.name, edits: [], redo: [], width: 0, height: 0, mode: settings.method, numClasses: n, camSource: null, everything: false };
  const inputs = new wasm.RefineInputs(e.name);
  try {
    // A medical slice's image is drawn under its file's window now (medical.js).
    const img = e.image ? await imageOf(e.image) : null;
    const bytes = img ? await bytesOf(img.blob) : null;
    if (bytes) { inputs.setImage(bytes, img.path); r.image = img.blob; r.imagePath = img.path; r.medical = img.medical || null; }
    const scratch = fromScratch(e);
    if (scratch) {
      // No CAM, no pseudo-label: the image starts as all background.
      const [w, h] = img.width !== undefined ? [img.width, img.height] : wasm.imageSize(bytes, img.path);
      const label = wasm.Label.background(w, h);
      inputs.setPseudo(label);
      label.free();
    } else if (e.pseudo) {
      const label = wasm.Label.fromPng(await bytesOf(e.pseudo.file), e.pseudo.path);
      inputs.setPseudo(label);
      label.free();
    } else {
      r.camSource = camSource(e);
      r.cams = await decodeCams(r.camSource, n);
      inputs.setCams(r.cams);
    }
    r.width = inputs.width; r.height = inputs.height;
    let masks = e.maskFiles.length || e.maskZip ? await loadMasks(e, r.width, r.height) : undefined;
    // From scratch without weights: no masks yet (the point/box tool adds them once weights load).
    if (scratch && !masks && !state.model) masks = wasm.Masks.fromPacked(r.width, r.height, new Uint8Array(0), []);
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
    rethrowTrap(err);
    return cleanUpAndThrow(err, () => freeResult(r));
  } finally {
    inputs.free();
  }
}

const tick = () => new Promise((res) => setTimeout(res, 0));

/** The worker's wasm linear memory, after a GC when the page runs with --js-flags=--expose-gc
 *  (the page adds the JS heaps): the long-batch memory test reads these. */
export function memorySample(done) {
  globalThis.gc?.();
  return { done, wasm_bytes: state.memory ? state.memory.buffer.byteLength : null };
}

/** A run replaces the previous results: each image is stored as it finishes, so a reload or
 *  a crash keeps what was done.
 *  @returns {Promise<import('../protocol.js').RunResult>} */
export async function run() {
  if (state.running) throw failure(KIND.busy, 'a run is already in progress');
  state.running = true;
  state.cancel = false;
  state.issues = state.issues.filter((i) => !i.run);
  try {
    await indexZips();
    const { entries } = group();
    const names = orderedNames(entries).filter((n) => !notRunnable(entries.get(n)));
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
          rethrowTrap(err); // the instance is gone: the whole job fails (the page restarts the worker)
          const gpu = gpuFailure(err);
          if (gpu) {
            await fallBackToCpu(gpu.reason);
            i--; // the same image again, on the CPU
            continue;
          }
          if (err.kind === KIND.cancelled || state.cancel) break; // a cancel is not a failed file
          failed++;
          state.issues.push({ file: e.name, reason: messageOf(err), run: true });
        }
        const dt = (performance.now() - t0) / (i + 1);
        progress({ done: i + 1, total: names.length, name: e.name, eta_s: (dt * (names.length - i - 1)) / 1000 });
        if (state.hooks.memoryEvery && (i + 1) % state.hooks.memoryEvery === 0) post({ event: EVENT.memory, ...memorySample(i + 1) });
        trapHook(i + 1);
      }
    } finally {
      try {
        metrics = acc.finish();
      } finally {
        // The session goes with the results stored so far, whatever ended the loop.
        Object.assign(state.session, { backend: state.backend, issues: state.issues.map(({ file, reason }) => ({ file, reason })) });
        await saveSession();
      }
    }
    return { fromCams: [...state.results.values()].some((m) => m.fromCams), done: state.results.size, failed, total: names.length, cancelled: state.cancel, metrics, plan: plan(), names: [...state.results.keys()], backend: state.backend, notice: state.notice || '' };
  } finally {
    state.running = false;
  }
}
