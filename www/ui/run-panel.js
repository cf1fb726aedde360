// 2 · Refine: the method and its settings (their defaults come from the library, through the
// worker's init answer), Run and Cancel with progress, instant re-merges when a setting moves;
// the backend badge.

import { CMD, EVENT } from '../protocol.js';
import { call, onEvent } from './worker-client.js';
import { $, setStatus, showError } from './dom.js';
import { ui } from './state.js';
import { showPlan, updateRunButton } from './inputs.js';
import { showMetrics } from './measure.js';
import { openImage, fillImageSelect, render } from './review.js';
import { showKept } from './export-panel.js';

// The refiners of the method selector besides the SEPL presets (those re-merge in place).
const REFINERS = ['cpm', 'pamr', 'crf', 'cpm+sepl'];

/** The backend badge: `webgpu` or `cpu`, the adapter, and why the CPU runs when WebGPU was
 *  wanted (no adapter, no device, or the device was lost under a job). */
export function showBackend({ backend, adapter, notice }) {
  $('backend').textContent = backend;
  $('adapter').textContent = adapter ? `(${adapter})` : '';
  if (notice !== undefined) $('backend-notice').textContent = notice;
}

/** The page's settings (protocol.js PageSettings) from the controls. */
export function settings() {
  return { preset: $('preset-select').value, t1: +$('t1').value, t2: +$('t2').value, combine: $('combine').value, bg: +$('bg').value };
}

/** Set the controls (and the sliders' numbers) to `s` (PageSettings; absent fields stay). */
export function showSettings(s) {
  for (const [id, v] of [['preset-select', s.preset], ['t1', s.t1], ['t2', s.t2], ['combine', s.combine], ['bg', s.bg]]) {
    if (v !== undefined) $(id).value = v;
  }
  showSliderValues();
}

function showSliderValues() {
  for (const id of ['t1', 't2', 'bg']) $(`${id}-out`).textContent = (+$(id).value).toFixed(2);
}

/** The library's defaults (protocol.js PageDefaults) on the controls: the only place the page
 *  gets them from (index.html carries none). */
export function showDefaults(defaults) {
  ui.defaults = defaults;
  showSettings(defaults);
  $('points-per-side').value = defaults.pointsPerSide;
  $('pred-iou').value = defaults.predIou;
  $('stability').value = defaults.stability;
}

function fmtEta(s) {
  if (!isFinite(s)) return '';
  return s < 60 ? `ETA ${s.toFixed(0)} s` : `ETA ${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function showProgress(p) {
  if (p.sub !== undefined) {
    setStatus(`running: segment everything in ${p.name}: ${(100 * p.sub).toFixed(0)} %`);
    return;
  }
  if (p.total !== undefined) {
    $('progress').max = Math.max(1, p.total);
    $('progress').value = p.done;
    setStatus(`running: ${p.done} / ${p.total} images${p.name ? ` (${p.name})` : ''}`);
    $('eta').textContent = p.eta_s !== undefined ? fmtEta(p.eta_s) : '';
  }
}

async function runClicked() {
  if (ui.running) return;
  // A run replaces the kept results: ask first when those of an earlier visit were not exported.
  if (ui.unexported && !confirm(`${ui.names.length} result(s) from your last visit have not been exported in this session. Run replaces them — continue?`)) return;
  ui.unexported = false;
  ui.running = true;
  updateRunButton(); $('cancel').disabled = false;
  setStatus('running…');
  try {
    ui.runPreset = settings().preset;
    const r = await call(CMD.run, { settings: settings() });
    const parts = [`${r.done} image(s) refined`];
    if (r.failed) parts.push(`${r.failed} error(s) — see the list above`);
    if (r.notice) parts.push(r.notice);
    setStatus(`${r.cancelled ? 'cancelled' : 'done'}: ${parts.join(', ')}`);
    $('eta').textContent = '';
    showPlan(r.plan);
    showMetrics(r.metrics);
    setBgSlider(r.fromCams);
    ui.names = r.names;
    fillImageSelect();
    showKept(r.names.length);
    if (r.names.length) await openImage(r.names[0]);
  } catch (e) {
    $('eta').textContent = '';
    showError(e);
  } finally {
    ui.running = false;
    updateRunButton(); $('cancel').disabled = true;
  }
}

/** The CAM background re-thresholds the CAMs; with pseudo-label PNGs as the input there is none. */
export function setBgSlider(fromCams) {
  $('bg').disabled = !fromCams;
  $('bg').title = fromCams ? '' : 'the inputs are pseudo-label PNGs: there is no CAM to threshold';
  $('bg-note').textContent = fromCams ? '' : '(no CAM among the inputs: nothing to threshold)';
}

// Sliders and the preset re-merge instantly: the image under review first, then the data set.
let remergeTimer = null;

/** A setting moved: re-merge the image under review, then (debounced) every result. */
export function onSettings() {
  showSliderValues();
  if (!ui.names.length || ui.running) return;
  const s = settings();
  // The SEPL presets re-merge in place; another refiner needs a run.
  if (s.preset !== ui.runPreset && (REFINERS.includes(s.preset) || REFINERS.includes(ui.runPreset))) {
    setStatus(`method ${s.preset}: press Run to refine with it`);
    return;
  }
  if (ui.current) {
    call(CMD.remergeOne, { name: ui.current.name, settings: s }).then((ids) => {
      if (ids && ui.current) { ui.current.refined = ids; render(); }
    }).catch((e) => showError(e));
  }
  clearTimeout(remergeTimer);
  remergeTimer = setTimeout(() => call(CMD.remergeAll, { settings: s }).then(showMetrics).catch((e) => showError(e)), 150);
}

/** Segment-everything's settings from the controls (points per side, the IoU and stability
 *  thresholds), sent whole: the worker keeps the last ones. */
async function sendGenerator() {
  const d = ui.defaults || {};
  const num = (id, fallback) => (Number.isFinite(+$(id).value) && $(id).value !== '' ? +$(id).value : fallback);
  await call(CMD.amg, { options: {
    points_per_side: Math.max(1, Math.round(num('points-per-side', d.pointsPerSide))),
    pred_iou_thresh: num('pred-iou', d.predIou),
    stability_score_thresh: num('stability', d.stability),
  } });
}

/** Segment-everything's points per side (SAM). */
export async function setPointsPerSide(n) {
  $('points-per-side').value = n;
  await sendGenerator();
}

/** Segment-everything's IoU and stability thresholds (SAM; `?iou=` and `?stability=`). */
export async function setThresholds({ iou, stability }) {
  if (iou !== undefined) $('pred-iou').value = iou;
  if (stability !== undefined) $('stability').value = stability;
  await sendGenerator();
}

/** Wire the Refine panel. */
export function initRunPanel() {
  onEvent(EVENT.progress, showProgress);
  onEvent(EVENT.backend, showBackend);
  $('run').addEventListener('click', runClicked);
  $('cancel').addEventListener('click', () => {
    if (ui.cancelFlag) Atomics.store(new Int32Array(ui.cancelFlag), 0, 1);
    call(CMD.cancel).catch((e) => showError(e, 'cancel'));
  });
  for (const id of ['points-per-side', 'pred-iou', 'stability']) {
    $(id).addEventListener('change', () => sendGenerator().catch((e) => showError(e, 'segment-everything settings')));
  }
  for (const id of ['preset-select', 't1', 't2', 'combine', 'bg']) $(id).addEventListener('input', onSettings);
}
