// The review: one result's view, its CAMs, edits (replayed by the library), mask hit tests, the
// SAM point/box tool; re-merges with new settings (one image, then all) and the t1 × t2 sweep.

import { KIND } from '../protocol.js';
import { state, failure, cleanUpAndThrow } from './state.js';
import { wasm } from './wasm.js';
import { librarySettingsWith } from './settings.js';
import { openResult, forEachResult, persist, rederive, relabel, camsOf, saveSession, metricsAccumulator } from './results.js';
import { setImageCached } from './model.js';
import { windowInfo, previewWindow, setWindow } from './medical.js';

/** @returns {Promise<import('../protocol.js').View>} */
export async function view(name) {
  const r = await openResult(name);
  const set = r.ref.masks();
  const masks = [];
  try { for (let i = 0; i < (set ? set.len() : 0); i++) masks.push(set.mask(i)); } finally { set?.free(); }
  return {
    name, width: r.width, height: r.height,
    pseudo: r.pseudo.ids(), refined: r.refined.ids(), gt: r.gt ? r.gt.ids() : null,
    masks, image: r.image || null,
    cams: r.camSource ? Array.from((await camsOf(r)).classes()) : [],
    window: windowInfo(r),
    edits: r.edits.length, redo: r.redo.length,
  };
}

/** Medical slice `name` under `window`, not kept: the live preview while the window moves.
 *  @returns {Promise<import('../protocol.js').WindowPreview>} */
export async function windowPreview(name, window) {
  return previewWindow(await openResult(name), window);
}

/** The window of the file medical slice `name` comes from (every slice of it changes).
 *  @returns {Promise<import('../protocol.js').WindowResult>} */
export async function windowSet(name, window) {
  return setWindow(await openResult(name), window);
}

/** One class's CAM of result `name`, normalised to 0–1 (null without a CAM). */
export async function camOf(name, cls) {
  const r = await openResult(name);
  const cams = await camsOf(r);
  return cams ? cams.normalised(cls) : null;
}

/** An edit (or undo/redo) of result `name`, replayed by the library, then stored.
 *  @returns {Promise<import('../protocol.js').EditResult>} */
export async function edit(name, op) {
  const r = await openResult(name);
  if (op.op === 'undo') { if (r.edits.length) r.redo.push(r.edits.pop()); }
  else if (op.op === 'redo') { if (r.redo.length) r.edits.push(r.redo.pop()); }
  else { r.edits.push(op); r.redo = []; }
  relabel(r);
  const out = { refined: r.refined.ids(), edits: r.edits.length, redo: r.redo.length };
  await persist(r);
  return out;
}

/** The smallest mask under the pixel (nested parts win over whole objects), -1 for none. */
export async function maskAt(name, x, y) {
  const r = await openResult(name);
  return r.ref.maskAt(x, y) ?? -1;
}

/** The point/box tool: SAM on one prompt, the mask added to the image's set and given `cls`.
 *  @returns {Promise<import('../protocol.js').PromptResult>} */
export async function promptMask({ name, prompt, cls }) {
  const r = await openResult(name);
  if (!state.model) throw failure(KIND.badInput, 'load the SAM weights to use the point/box tool');
  if (!r.image) throw failure(KIND.badInput, `${name}: no image loaded; the point/box tool needs the image`);
  await setImageCached(r);
  const points = (prompt.points || []).flat();
  const labels = prompt.labels || [];
  const mask = await state.model.prompt(Float64Array.from(points), Int32Array.from(labels), prompt.box ? Float64Array.from(prompt.box) : undefined);
  const index = r.ref.pushMask(mask);
  const out = await edit(name, { op: 'assign', mask: index, cls });
  return { ...out, masks: (await view(name)).masks };
}

/** Re-derive every result with `settings`; a later remergeAll request (`state.latestRemerge`,
 *  set when the message arrives) makes this one stop early and answer {superseded: true}. */
export async function remergeAll(settings, id) {
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
  } catch (err) {
    cleanUpAndThrow(err, () => acc.finish());
  }
  const metrics = acc.finish();
  return superseded() ? { superseded: true } : metrics;
}

/** Re-derive result `name` with `settings`; its label ids (null when there is no such result). */
export async function remergeOne(name, settings) {
  Object.assign(state.settings, settings);
  if (!state.results.has(name)) return null;
  const r = await openResult(name);
  await rederive(r);
  const ids = r.refined.ids();
  await persist(r);
  return ids;
}

/** SEPL's t1 × t2 over the stored results that have ground truth and SAM masks (merge-based
 *  results, not the cpm / pamr labels), with the page's other merge settings.
 *  @returns {Promise<import('../protocol.js').SweepResult>} */
export async function sweep({ settings, t1, t2 }) {
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
    if (!n) throw failure(KIND.badInput, 'sweep: no refined image has ground truth and SAM masks; load ground truth and run a SEPL method first');
    const { sweep: result, heatmap } = sweeper.result();
    return { result, heatmap, png: sweeper.heatmapPng() };
  } finally {
    sweeper.free();
  }
}
