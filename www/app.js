// camsam page: UI only. The data, the model and the merge live in the Web Worker
// (www/worker/main.js); the page sends it the commands of www/protocol.js and draws what comes
// back. This file wires the panels and starts up:
//
//   ui/worker-client.js  call(), the worker's events; a fresh worker after a wasm trap
//   ui/inputs.js         1 · Load: files, folders, drops, weights, demo, classes; the plan
//   ui/run-panel.js      2 · Refine: method and settings (the library's defaults), Run, Cancel
//   ui/review.js         3 · Review: the canvas and its tools
//   ui/measure.js        4 · Measure: metrics, the threshold sweep
//   ui/export-panel.js   5 · Export: zip, report.json, the results kept in this browser
//   ui/bench.js          the benchmark view, memory figures
//   ui/classes.js, ui/dom.js, ui/state.js   palette and class names, small helpers, the page's state

import { CMD } from './protocol.js';
import { call, onRestart } from './ui/worker-client.js';
import { $, params, setStatus, showError } from './ui/dom.js';
import { ui } from './ui/state.js';
import { vocPalette, setClasses } from './ui/classes.js';
import { initInputs, showPlan } from './ui/inputs.js';
import { initRunPanel, showBackend, showDefaults, showSettings, setBgSlider, setPointsPerSide, setThresholds } from './ui/run-panel.js';
import { initReview, fillImageSelect, openImage, clearReview } from './ui/review.js';
import { initMeasure, showMetrics } from './ui/measure.js';
import { initExport, showKept } from './ui/export-panel.js';
import { initBench, bench } from './ui/bench.js';

/** Show stored results (protocol.js Restored) with the settings and classes they were made
 *  with: those of an earlier visit (`earlierVisit`: Run asks before replacing them), or this
 *  session's after the worker was replaced. */
async function showRestored(r, { earlierVisit }) {
  showSettings(r.settings);
  ui.runPreset = r.settings.preset;
  ui.names = r.names;
  if (earlierVisit) ui.unexported = r.names.length > 0;
  fillImageSelect();
  showMetrics(r.metrics);
  setBgSlider(r.fromCams);
  showKept(r.names.length);
  if (r.names.length) await openImage(r.names[0]);
}

// The wasm module trapped: the worker was replaced by a fresh one (ui/worker-client.js), which
// restored the finished results from IndexedDB; the job that trapped failed.
onRestart({
  async restarted({ error, info, problems }) {
    showBackend(info);
    // The classes stay the page's: the fresh worker was given them again.
    try {
      if (info.restored) await showRestored(info.restored, { earlierVisit: false });
      else { clearReview(); showKept(0); }
      showPlan(await call(CMD.plan));
    } catch (e) {
      showError(e, 'after reloading the wasm module');
      return;
    }
    const kept = info.restored ? `finished results are kept (${info.restored.names.length} image(s))` : 'no image had finished';
    const lost = problems.length ? ` · not given to it again: ${problems.join('; ')}` : '';
    setStatus(`${error.message}; reloaded — ${kept}${lost}`);
  },
  failed(error) { setStatus(`error: ${error.message}`); },
  workerError(message) { setStatus(`error: the worker failed (${message})`); },
});

async function start() {
  ui.palette = vocPalette();
  initInputs();
  initRunPanel();
  initReview();
  initMeasure();
  initExport();
  initBench();
  const backend = params.get('backend') || 'auto';
  try {
    // A shared flag lets Cancel stop segment-everything mid-image (needs cross-origin isolation).
    ui.cancelFlag = self.crossOriginIsolated ? new SharedArrayBuffer(4) : null;
    const hook = (name) => (params.has(name) ? Number(params.get(name)) : undefined);
    const info = await call(CMD.init, {
      backend, cancelFlag: ui.cancelFlag,
      loseGpuAfter: hook('lose-gpu-after'), memoryEvery: hook('memory-every'), wasmTrapAfter: hook('wasm-trap-after'),
      threads: hook('threads'), simd128: params.get('simd') === '128',
    });
    setClasses(info.classes);
    showDefaults(info.defaults);
    showBackend(info);
    $('version').textContent = info.version;
    try {
      const w = await call(CMD.restoreWeights);
      if (w) {
        $('weights-state').textContent = `weights: ${w.name} (cached in this browser)`;
        showBackend(w);
      }
    } catch (e) {
      $('weights-state').textContent = `the weights kept in this browser could not be loaded (${e.message}): pick them again`;
    }
    if (params.get('points')) await setPointsPerSide(+params.get('points'));
    if (params.has('iou') || params.has('stability')) {
      await setThresholds({ iou: params.get('iou') ?? undefined, stability: params.get('stability') ?? undefined });
    }
    // The demo only when the user has given nothing yet (files chosen during start-up are
    // already queued in the worker; any given later replace the demo).
    const plan = params.has('nodemo') ? await call(CMD.plan) : await call(CMD.loadDemo, { unlessFiles: true });
    showPlan(plan);
    // The stored run's settings win over the defaults shown above.
    if (info.restored) await showRestored(info.restored, { earlierVisit: true });
    const kept = info.restored ? ` · ${info.restored.names.length} result(s) from your last visit restored` : '';
    setStatus(`${plan.demo ? 'ready: demo loaded — press Run' : 'ready'}${kept}${info.storage ? ` · ${info.storage}` : ''}`);
    if (params.has('bench')) await bench();
  } catch (e) {
    showError(e);
  } finally {
    document.documentElement.dataset.started = 'true';   // start-up is over (tests wait for it)
  }
}

// Offline use: a service worker (www/sw.js) keeps a copy of the app shell, so after one visit the
// page opens and runs with no network. Registered once start-up is over (its copy does not slow
// the first load). Its scope is the app's root, where index.html is: a script in www/ may take it
// only when the host sends `Service-Worker-Allowed` (www/serve.py does; README, "Hosting the built
// site"); without it the registration fails, and the page works as before, online only.
// `?nosw` skips it and drops an earlier registration.
async function registerOffline() {
  if (!('serviceWorker' in navigator)) return;   // an insecure origin (http:// other than localhost), or no support
  const scope = new URL('../', import.meta.url).href;
  try {
    if (params.has('nosw')) {
      await (await navigator.serviceWorker.getRegistration(scope))?.unregister();
      return;
    }
    await navigator.serviceWorker.register(new URL('./sw.js', import.meta.url), { scope });
  } catch (e) {
    console.warn(`camsam: no offline copy of the app (${e.message}); for it, the host must send "Service-Worker-Allowed: /" with www/sw.js (README, "Hosting the built site")`);
  }
}

start().then(registerOffline);
