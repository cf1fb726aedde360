// 1 · Load: files and folders (pickers and drag and drop), the weights, the demo, the class
// names; the summary and issues of what Run will do (the worker's plan).

import { CMD } from '../protocol.js';
import { call } from './worker-client.js';
import { $, setStatus, showError, escapeHtml } from './dom.js';
import { ui } from './state.js';
import { readClasses, fillClassSelects } from './classes.js';
import { showBackend } from './run-panel.js';
import { clearReview, setReviewList } from './review.js';
import { showKept } from './export-panel.js';

// The summary and issues describe what Run will do: the worker answers in the order it was
// asked (its queue), so the latest plan shown is the latest state; while files are still being
// read it says so, and Run waits.
export function showPlan(plan) {
  if (plan) {
    ui.plan = plan;
    setReviewList(plan.review);
  }
  plan = ui.plan;
  if (!plan) return;
  const scratch = plan.scratch ? ` (${plan.scratch} with no CAM: labelled from scratch, starting as background)` : '';
  const text = `${plan.images} image name(s), ${plan.runnable} ready to refine${scratch}${plan.demo ? ' (demo)' : ''}${plan.weights ? ' · weights loaded' : ''}`;
  $('summary').textContent = ui.intake > 0 ? `reading files… (so far: ${text})` : text;
  $('demo-hint').hidden = !plan.demo;
  showIssues(plan.issues);
}

function showIssues(issues) {
  $('issues').innerHTML = (issues || []).map((i) => `<li><b>${escapeHtml(i.file)}</b>: ${escapeHtml(i.reason)}</li>`).join('');
}

// File intake: chosen or dropped files go to the worker in the order given, at any moment of
// start-up (its queue holds them until the wasm module is ready). Run is disabled until the
// last of them has been read (a zip indexed), so it never runs a stale plan.
export function updateRunButton() {
  $('run').disabled = ui.running || ui.intake > 0;
  $('run').title = ui.intake > 0 ? 'reading files…' : '';
}

async function intake(job) {
  ui.intake++;
  updateRunButton();
  showPlan();
  try {
    return await job();
  } finally {
    ui.intake--;
    updateRunButton();
    showPlan();
  }
}

async function addFiles(kind, fileList) {
  const files = [...fileList].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
  if (!files.length) return;
  await intake(async () => {
    try {
      showPlan(await call(CMD.addFiles, { kind, files }));
      setStatus(`loaded ${files.length} file(s)`);
    } catch (e) { showError(e); }
  });
}

/** Load SAM weights (kept in this browser for the next visit). */
async function loadWeights(file) {
  if (!file) return;
  setStatus(`loading weights ${file.name}…`);
  try {
    const r = await call(CMD.loadWeights, { file, name: file.name, cache: true });
    $('weights-state').textContent = `weights: ${r.name} (${r.detail || r.backend})${r.cacheWarning ? ` — ${r.cacheWarning}` : ''}`;
    showBackend(r);
    setStatus(`weights loaded: ${r.name}`);
    showPlan(await call(CMD.plan));
  } catch (e) { showError(e); }
}

// Drag and drop: files and folders, sorted into inputs by extension and folder name.
async function walkEntry(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((res, rej) => entry.file(res, rej));
    out.push({ file, path: prefix + file.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const e of batch) await walkEntry(e, `${prefix}${entry.name}/`, out);
    }
  }
}

function kindOf(path) {
  const lower = path.toLowerCase();
  if (/\.(pt|pth|safetensors)$/.test(lower)) return 'weights';
  if (lower.endsWith('.zip')) return 'masks';
  if (/\.(npy|npz)$/.test(lower)) return 'cams';
  const dirs = lower.split('/').slice(0, -1).join('/');
  if (/(^|\/)(gt|ground|segmentationclass)/.test(dirs)) return 'gt';
  if (/(^|\/)(masks?|sam)(\/|$)/.test(dirs)) return 'masks';
  if (/(^|\/)(cams?|heatmaps?|pseudo[\w-]*|labels?)(\/|$)/.test(dirs)) return 'cams';
  return 'images';
}

async function dropped(items) {
  const out = [];
  try {
    for (const { entry, file } of items) {
      if (entry) await walkEntry(entry, '', out);
      else if (file) out.push({ file, path: file.name });
    }
  } catch (e) {
    showError(e, 'reading the dropped files');
    return;
  }
  const byKind = {};
  for (const f of out) (byKind[kindOf(f.path)] ||= []).push(f);
  if (byKind.weights) await loadWeights(byKind.weights[0].file);
  for (const kind of ['images', 'cams', 'masks', 'gt']) {
    if (!byKind[kind]) continue;
    // Keep folder structure for masks (<name>/<i>.png); strip it elsewhere.
    const files = byKind[kind].map(({ file, path }) => ({ file, path: kind === 'masks' ? path : file.name }));
    try { showPlan(await call(CMD.addFiles, { kind, files })); } catch (e) { showError(e); }
  }
}

/** Wire the Load panel. */
export function initInputs() {
  for (const [input, kind] of [['images-input', 'images'], ['cams-input', 'cams'], ['masks-input', 'masks'], ['gt-input', 'gt'], ['images-folder', 'images'], ['cams-folder', 'cams'], ['masks-folder', 'masks'], ['gt-folder', 'gt']]) {
    // Emptied once read, so choosing the same file again (e.g. after Clear) is a change too.
    $(input).addEventListener('change', (ev) => { const files = [...ev.target.files]; ev.target.value = ''; addFiles(kind, files); });
  }
  $('weights-input').addEventListener('change', (ev) => loadWeights(ev.target.files[0]));

  const dz = $('dropzone');
  dz.addEventListener('dragover', (ev) => { ev.preventDefault(); dz.classList.add('over'); });
  dz.addEventListener('dragleave', () => dz.classList.remove('over'));
  dz.addEventListener('drop', (ev) => {
    ev.preventDefault();
    dz.classList.remove('over');
    // The items must be read before the event returns; the walk itself may take a while.
    const items = [...ev.dataTransfer.items].map((item) => ({
      entry: item.webkitGetAsEntry && item.webkitGetAsEntry(), file: item.kind === 'file' ? item.getAsFile() : null,
    }));
    intake(() => dropped(items));
  });

  $('demo').addEventListener('click', async () => {
    try {
      showPlan(await call(CMD.loadDemo));
      setStatus('demo loaded: press Run');
    } catch (e) { showError(e, 'demo'); }
  });
  $('clear').addEventListener('click', async () => {
    try {
      showPlan(await call(CMD.clear));
      clearReview();
      showKept(0);
      setStatus('cleared');
    } catch (e) { showError(e, 'clear'); }
  });
  $('classes').addEventListener('change', async () => {
    ui.classes = readClasses();
    fillClassSelects();
    try { showPlan(await call(CMD.classes, { classes: ui.classes })); } catch (e) { showError(e, 'classes'); }
  });
}
