// camsam page: UI only. The data, the model and the merge live in the Web Worker
// (www/worker.js); this file sends it commands and draws what comes back.

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let nextId = 1;
const pending = new Map();
let onProgress = () => {};

worker.onmessage = (ev) => {
  const m = ev.data;
  if (m.event === 'progress') { onProgress(m); return; }
  if (m.event === 'backend') { showBackend(m); return; }
  if (m.event === 'memory') { recordMemory(m); return; }
  const p = pending.get(m.id);
  if (!p) return;
  pending.delete(m.id);
  if (m.ok) p.resolve(m.result);
  else p.reject(Object.assign(new Error(m.error), { kind: m.kind }));
};
worker.onerror = (ev) => setStatus(`error: the worker failed (${ev.message || 'unknown'})`);

function call(cmd, args) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, cmd, args });
  });
}

const ui = {
  classes: [],
  palette: null,
  current: null,     // the view of the image under review
  names: [],
  zoom: 1, panX: 0, panY: 0,
  bitmap: null,
  camCls: null, cam: null,
  running: false,
  intake: 0,         // file intakes (choices, drops) not yet answered by the worker
  plan: null,        // the worker's latest plan
};

function setStatus(text) { $('status').textContent = text; }

// The backend badge: `webgpu` or `cpu`, the adapter, and why the CPU runs when WebGPU was
// wanted (no adapter, no device, or the device was lost under a job).
function showBackend({ backend, adapter, notice }) {
  $('backend').textContent = backend;
  $('adapter').textContent = adapter ? `(${adapter})` : '';
  if (notice !== undefined) $('backend-notice').textContent = notice;
}

const params = new URLSearchParams(location.search);

// ---------------------------------------------------------------- palette & classes

function vocPalette() {
  const p = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    let r = 0, g = 0, b = 0, c = i;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j); g |= ((c >> 1) & 1) << (7 - j); b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    p.set([r, g, b], 3 * i);
  }
  return p;
}

function readClasses() {
  return $('classes').value.split('\n').map((s) => s.trim()).filter(Boolean);
}

function fillClassSelects() {
  const opts = ui.classes.map((c, i) => `<option value="${i}">${i} ${escapeHtml(c)}</option>`).join('');
  $('paint-class').innerHTML = opts;
  if (ui.classes.length > 1) $('paint-class').value = '1';
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

// ---------------------------------------------------------------- loading

// The summary and issues describe what Run will do: the worker answers in the order it was
// asked (its queue), so the latest plan shown is the latest state; while files are still being
// read it says so, and Run waits.
function showPlan(plan) {
  if (plan) ui.plan = plan;
  plan = ui.plan;
  if (!plan) return;
  const text = `${plan.images} image name(s), ${plan.runnable} ready to refine${plan.demo ? ' (demo)' : ''}${plan.weights ? ' · weights loaded' : ''}`;
  $('summary').textContent = ui.intake > 0 ? `reading files… (so far: ${text})` : text;
  $('demo-hint').hidden = !plan.demo;
  showIssues(plan.issues);
}

// File intake: chosen or dropped files go to the worker in the order given, at any moment of
// start-up (its queue holds them until the wasm module is ready). Run is disabled until the
// last of them has been read (a zip indexed), so it never runs a stale plan.
function updateRunButton() {
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

function showIssues(issues) {
  $('issues').innerHTML = (issues || []).map((i) => `<li><b>${escapeHtml(i.file)}</b>: ${escapeHtml(i.reason)}</li>`).join('');
}

async function addFiles(kind, fileList) {
  const files = [...fileList].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
  if (!files.length) return;
  await intake(async () => {
    try {
      showPlan(await call('addFiles', { kind, files }));
      setStatus(`loaded ${files.length} file(s)`);
    } catch (e) { setStatus(`error: ${e.message}`); }
  });
}

for (const [input, kind] of [['images-input', 'images'], ['cams-input', 'cams'], ['masks-input', 'masks'], ['gt-input', 'gt'], ['images-folder', 'images'], ['cams-folder', 'cams'], ['masks-folder', 'masks'], ['gt-folder', 'gt']]) {
  // Emptied once read, so choosing the same file again (e.g. after Clear) is a change too.
  $(input).addEventListener('change', (ev) => { const files = [...ev.target.files]; ev.target.value = ''; addFiles(kind, files); });
}
$('weights-input').addEventListener('change', (ev) => loadWeights(ev.target.files[0]));

async function loadWeights(file) {
  if (!file) return;
  setStatus(`loading weights ${file.name}…`);
  try {
    const r = await call('loadWeights', { file, name: file.name, cache: true });
    $('weights-state').textContent = `weights: ${r.name} (${r.backend})`;
    showBackend(r);
    setStatus(`weights loaded: ${r.name}`);
    showPlan(await call('plan'));
  } catch (e) { setStatus(`error: ${e.message}`); }
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

async function dropped(items) {
  const out = [];
  for (const { entry, file } of items) {
    if (entry) await walkEntry(entry, '', out);
    else if (file) out.push({ file, path: file.name });
  }
  const byKind = {};
  for (const f of out) (byKind[kindOf(f.path)] ||= []).push(f);
  if (byKind.weights) await loadWeights(byKind.weights[0].file);
  for (const kind of ['images', 'cams', 'masks', 'gt']) {
    if (!byKind[kind]) continue;
    // Keep folder structure for masks (<name>/<i>.png); strip it elsewhere.
    const files = byKind[kind].map(({ file, path }) => ({ file, path: kind === 'masks' ? path : file.name }));
    try { showPlan(await call('addFiles', { kind, files })); } catch (e) { setStatus(`error: ${e.message}`); }
  }
}

$('demo').addEventListener('click', async () => { showPlan(await call('loadDemo')); setStatus('demo loaded: press Run'); });
$('clear').addEventListener('click', async () => { showPlan(await call('clear')); clearReview(); showKept(0); setStatus('cleared'); });
$('classes').addEventListener('change', async () => {
  ui.classes = readClasses();
  fillClassSelects();
  showPlan(await call('classes', { classes: ui.classes }));
});

// ---------------------------------------------------------------- run

function settings() {
  return { preset: $('preset-select').value, t1: +$('t1').value, t2: +$('t2').value, combine: $('combine').value, bg: +$('bg').value };
}

function fmtEta(s) {
  if (!isFinite(s)) return '';
  return s < 60 ? `ETA ${s.toFixed(0)} s` : `ETA ${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

onProgress = (p) => {
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
};

$('run').addEventListener('click', async () => {
  if (ui.running) return;
  // A run replaces the kept results: ask first when those of an earlier visit were not exported.
  if (ui.unexported && !confirm(`${ui.names.length} result(s) from your last visit have not been exported in this session. Run replaces them — continue?`)) return;
  ui.unexported = false;
  ui.running = true;
  updateRunButton(); $('cancel').disabled = false;
  setStatus('running…');
  try {
    ui.runPreset = settings().preset;
    const r = await call('run', { settings: settings() });
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
    setStatus(`error: ${e.message}`);
  } finally {
    ui.running = false;
    updateRunButton(); $('cancel').disabled = true;
  }
});
$('cancel').addEventListener('click', () => {
  if (ui.cancelFlag) Atomics.store(new Int32Array(ui.cancelFlag), 0, 1);
  call('cancel');
});
$('points-per-side').addEventListener('change', () => call('amg', { options: { points_per_side: Math.max(1, +$('points-per-side').value || 32) } }));

// Sliders and the preset re-merge instantly: the image under review first, then the data set.
let remergeTimer = null;
// The CAM background re-thresholds the CAMs; with pseudo-label PNGs as the input there is none.
function setBgSlider(fromCams) {
  $('bg').disabled = !fromCams;
  $('bg').title = fromCams ? '' : 'the inputs are pseudo-label PNGs: there is no CAM to threshold';
  $('bg-note').textContent = fromCams ? '' : '(inputs are pseudo-labels: no CAM to threshold)';
}

function onSettings() {
  for (const id of ['t1', 't2', 'bg']) $(`${id}-out`).textContent = (+$(id).value).toFixed(2);
  if (!ui.names.length || ui.running) return;
  const s = settings();
  // The SEPL presets re-merge in place; another refiner needs a run.
  const refiners = ['cpm', 'pamr', 'crf', 'cpm+sepl'];
  if (s.preset !== ui.runPreset && (refiners.includes(s.preset) || refiners.includes(ui.runPreset))) {
    setStatus(`method ${s.preset}: press Run to refine with it`);
    return;
  }
  if (ui.current) {
    call('remergeOne', { name: ui.current.name, settings: s }).then((ids) => {
      if (ids && ui.current) { ui.current.refined = ids; render(); }
    }).catch((e) => setStatus(`error: ${e.message}`));
  }
  clearTimeout(remergeTimer);
  remergeTimer = setTimeout(() => call('remergeAll', { settings: s }).then(showMetrics).catch((e) => setStatus(`error: ${e.message}`)), 150);
}
for (const id of ['preset-select', 't1', 't2', 'combine', 'bg']) $(id).addEventListener('input', onSettings);

// ---------------------------------------------------------------- measure

const pct = (v) => (v === null || v === undefined || Number.isNaN(v) ? '–' : (100 * v).toFixed(2));

function showMetrics(m) {
  if (m && m.superseded) return; // a later re-merge answers
  if (!m) { $('miou-before').textContent = '–'; $('miou-after').textContent = '–'; return; }
  $('miou-before').textContent = pct(m.before.miou);
  $('miou-after').textContent = pct(m.after.miou);
  const rows = [];
  const n = Math.max(m.before.per_class_iou.length, m.after.per_class_iou.length);
  for (let k = 0; k < n; k++) {
    const b = m.before.per_class_iou[k], a = m.after.per_class_iou[k];
    if ((b === null || b === undefined) && (a === null || a === undefined)) continue;
    const d = a !== null && b !== null ? a - b : null;
    rows.push(`<tr><td><span class="swatch" data-cls="${k}"></span>${escapeHtml(ui.classes[k] || k)}</td><td>${pct(b)}</td><td>${pct(a)}</td><td class="${d > 0 ? 'up' : d < 0 ? 'down' : ''}">${d === null ? '–' : (100 * d).toFixed(2)}</td></tr>`);
  }
  $('per-class').querySelector('tbody').innerHTML = rows.join('');
  paintSwatches($('per-class'));
  $('worst').innerHTML = m.images.map((i) => `<li><a href="#" data-name="${escapeHtml(i.name)}">${escapeHtml(i.name)}</a> ${pct(i.after)} % (${i.delta >= 0 ? '+' : ''}${(100 * i.delta).toFixed(2)})</li>`).join('');
}

$('worst').addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-name]');
  if (!a) return;
  ev.preventDefault();
  $('image-select').value = a.dataset.name;
  openImage(a.dataset.name);
  $('review').scrollIntoView();
});

function paintSwatches(root) {
  for (const s of root.querySelectorAll('.swatch')) {
    const k = +s.dataset.cls;
    s.style.background = `rgb(${ui.palette[3 * k]},${ui.palette[3 * k + 1]},${ui.palette[3 * k + 2]})`;
  }
}

// ---------------------------------------------------------------- review

function fillImageSelect() {
  $('image-select').innerHTML = ui.names.map((n) => `<option>${escapeHtml(n)}</option>`).join('');
}
$('image-select').addEventListener('change', (ev) => openImage(ev.target.value));

function clearReview() {
  ui.current = null; ui.names = []; ui.bitmap = null; ui.unexported = false;
  fillImageSelect(); showMetrics(null);
  const ctx = $('canvas').getContext('2d');
  ctx.clearRect(0, 0, $('canvas').width, $('canvas').height);
}

async function openImage(name) {
  try {
    const v = await call('view', { name });
    ui.current = v;
    ui.bitmap = v.image ? await createImageBitmap(v.image) : null;
    ui.cam = null;
    $('cam-class').innerHTML = v.cams.map((k) => `<option value="${k}">${escapeHtml(ui.classes[k] || k)}</option>`).join('');
    $('show-cam').disabled = !v.cams.length;
    if (v.cams.length) await loadCam(v.cams[0]);
    fit();
    render();
    updateLegend();
    $('review-info').textContent = `${name}: ${v.width}×${v.height}, ${v.masks.length} SAM masks, ${v.edits} edit(s)`;
  } catch (e) { setStatus(`error: ${e.message}`); }
}

async function loadCam(cls) {
  if (!ui.current) return;
  ui.camCls = cls;
  ui.cam = await call('cam', { name: ui.current.name, cls });
}
$('cam-class').addEventListener('change', async (ev) => { await loadCam(+ev.target.value); render(); });

function updateLegend() {
  const v = ui.current;
  if (!v) return;
  const present = new Set();
  for (const arr of [v.pseudo, v.refined, v.gt]) if (arr) for (let i = 0; i < arr.length; i += 7) present.add(arr[i]);
  $('legend').innerHTML = [...present].sort((a, b) => a - b).map((k) => `<li><span class="swatch" data-cls="${k}"></span>${k === 255 ? 'void' : escapeHtml(ui.classes[k] || k)}</li>`).join('');
  paintSwatches($('legend'));
}

function fit() {
  const c = $('canvas');
  const v = ui.current;
  if (!v) return;
  ui.zoom = Math.min(c.width / v.width, c.height / v.height);
  ui.panX = (c.width - v.width * ui.zoom) / 2;
  ui.panY = (c.height - v.height * ui.zoom) / 2;
}
$('zoom-reset').addEventListener('click', () => { fit(); render(); });

// Compose the layers at image resolution, then draw with zoom and pan.
function compose() {
  const v = ui.current;
  const { width: w, height: h } = v;
  const img = new ImageData(w, h);
  const d = img.data;
  const base = document.createElement('canvas');
  base.width = w; base.height = h;
  const bctx = base.getContext('2d');
  if (ui.bitmap && $('show-image').checked) {
    bctx.drawImage(ui.bitmap, 0, 0);
    d.set(bctx.getImageData(0, 0, w, h).data);
  } else {
    for (let i = 0; i < w * h; i++) { d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = 40; d[4 * i + 3] = 255; }
  }
  const op = +$('opacity').value;
  const pal = ui.palette;
  const blend = (i, r, g, b, a) => {
    d[4 * i] = d[4 * i] * (1 - a) + r * a;
    d[4 * i + 1] = d[4 * i + 1] * (1 - a) + g * a;
    d[4 * i + 2] = d[4 * i + 2] * (1 - a) + b * a;
  };
  if ($('show-cam').checked && ui.cam) {
    for (let i = 0; i < w * h; i++) {
      const t = ui.cam[i];
      blend(i, 255 * Math.min(1, 2 * t), 255 * Math.max(0, 2 * t - 1) * 0.8, 255 * (1 - t) * 0.6, op * 0.8);
    }
  }
  const layer = $('layer').value;
  if (layer === 'diff') {
    for (let i = 0; i < w * h; i++) {
      if (v.pseudo[i] === v.refined[i]) continue;
      // green where the refined label is right (or no GT), red where it became wrong
      const good = !v.gt || v.gt[i] === 255 || v.gt[i] === v.refined[i];
      blend(i, good ? 40 : 230, good ? 220 : 40, 60, op);
    }
  } else if (layer !== 'none') {
    const ids = layer === 'refined' ? v.refined : layer === 'pseudo' ? v.pseudo : v.gt;
    if (ids) {
      for (let i = 0; i < w * h; i++) {
        const k = ids[i];
        if (k === 0) continue;
        blend(i, pal[3 * k], pal[3 * k + 1], pal[3 * k + 2], op);
      }
    }
  }
  if ($('show-masks').checked) {
    for (let m = 0; m < v.masks.length; m++) {
      const mask = v.masks[m];
      const hue = (m * 137) % 360;
      const [r, g, b] = hsl(hue);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const i = y * w + x;
          if (!mask[i]) continue;
          if (x === 0 || y === 0 || x === w - 1 || y === h - 1 || !mask[i - 1] || !mask[i + 1] || !mask[i - w] || !mask[i + w]) {
            d[4 * i] = r; d[4 * i + 1] = g; d[4 * i + 2] = b;
          }
        }
      }
    }
  }
  bctx.putImageData(img, 0, 0);
  return base;
}

function hsl(h) {
  const f = (n) => { const k = (n + h / 30) % 12; return 255 * (0.5 - 0.5 * Math.max(-1, Math.min(k - 3, 9 - k, 1))); };
  return [f(0), f(8), f(4)];
}

let composed = null;
function render() {
  if (!ui.current) return;
  composed = compose();
  draw();
}
function draw() {
  const c = $('canvas');
  const ctx = c.getContext('2d');
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = '#222';
  ctx.fillRect(0, 0, c.width, c.height);
  if (!composed) return;
  ctx.imageSmoothingEnabled = false;
  ctx.setTransform(ui.zoom, 0, 0, ui.zoom, ui.panX, ui.panY);
  ctx.drawImage(composed, 0, 0);
  if (ui.boxStart && ui.boxEnd) {
    ctx.strokeStyle = '#ff0'; ctx.lineWidth = 2 / ui.zoom;
    const [x0, y0] = ui.boxStart, [x1, y1] = ui.boxEnd;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
}
for (const id of ['show-image', 'show-cam', 'show-masks', 'layer', 'opacity']) $(id).addEventListener('input', render);

// Pointer: pan/zoom, mask accept/reject, brush, SAM prompts.
const tool = () => document.querySelector('input[name=tool]:checked').value;
function toImage(ev) {
  const c = $('canvas');
  const rect = c.getBoundingClientRect();
  const cx = ((ev.clientX - rect.left) * c.width) / rect.width;
  const cy = ((ev.clientY - rect.top) * c.height) / rect.height;
  return [(cx - ui.panX) / ui.zoom, (cy - ui.panY) / ui.zoom];
}
function inside([x, y]) { return ui.current && x >= 0 && y >= 0 && x < ui.current.width && y < ui.current.height; }

$('canvas').addEventListener('wheel', (ev) => {
  if (!ui.current) return;
  ev.preventDefault();
  const c = $('canvas');
  const rect = c.getBoundingClientRect();
  const cx = ((ev.clientX - rect.left) * c.width) / rect.width, cy = ((ev.clientY - rect.top) * c.height) / rect.height;
  const f = ev.deltaY < 0 ? 1.2 : 1 / 1.2;
  ui.panX = cx - (cx - ui.panX) * f; ui.panY = cy - (cy - ui.panY) * f; ui.zoom *= f;
  draw();
}, { passive: false });

let drag = null;
$('canvas').addEventListener('contextmenu', (ev) => ev.preventDefault());
$('canvas').addEventListener('pointerdown', async (ev) => {
  if (!ui.current) return;
  const p = toImage(ev);
  const t = tool();
  if (t === 'pan') { drag = { x: ev.clientX, y: ev.clientY, px: ui.panX, py: ui.panY }; return; }
  if (!inside(p)) return;
  const [x, y] = p.map(Math.floor);
  if (t === 'mask') {
    const mask = await call('maskAt', { name: ui.current.name, x, y });
    if (mask < 0) { $('review-info').textContent = 'no SAM mask under this pixel'; return; }
    const op = ev.button === 2 || ev.shiftKey ? { op: 'reject', mask } : { op: 'assign', mask, cls: +$('paint-class').value };
    await applyEdit(op);
  } else if (t === 'brush') {
    drag = { brush: [[x, y]] };
  } else if (t === 'box') {
    ui.boxStart = [x, y]; ui.boxEnd = [x, y]; drag = { box: true };
  } else if (t === 'point') {
    await prompt({ points: [[x, y]], labels: [ev.button === 2 || ev.shiftKey ? 0 : 1] });
  }
});
window.addEventListener('pointermove', (ev) => {
  if (!drag || !ui.current) return;
  if (drag.x !== undefined) {
    ui.panX = drag.px + (ev.clientX - drag.x) * ($('canvas').width / $('canvas').getBoundingClientRect().width);
    ui.panY = drag.py + (ev.clientY - drag.y) * ($('canvas').height / $('canvas').getBoundingClientRect().height);
    draw();
  } else if (drag.brush) {
    const p = toImage(ev);
    if (inside(p)) drag.brush.push(p.map(Math.floor));
  } else if (drag.box) {
    ui.boxEnd = toImage(ev).map(Math.floor);
    draw();
  }
});
window.addEventListener('pointerup', async () => {
  const d = drag;
  drag = null;
  if (!d || !ui.current) return;
  if (d.brush) await applyEdit({ op: 'brush', points: d.brush, radius: +$('brush-size').value, cls: +$('paint-class').value });
  if (d.box) {
    const [x0, y0] = ui.boxStart, [x1, y1] = ui.boxEnd;
    ui.boxStart = ui.boxEnd = null;
    if (Math.abs(x1 - x0) > 2 && Math.abs(y1 - y0) > 2) await prompt({ box: [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)] });
    else draw();
  }
});

async function applyEdit(op) {
  try {
    const r = await call('edit', { name: ui.current.name, op });
    ui.current.refined = r.refined;
    if (op.op === 'prompt' || r.masks) ui.current.masks = r.masks || ui.current.masks;
    $('review-info').textContent = `${ui.current.name}: ${r.edits} edit(s), ${r.redo} to redo`;
    render();
    call('metrics').then(showMetrics).catch((e) => setStatus(`error: metrics: ${e.message}`));
  } catch (e) { setStatus(`error: ${e.message}`); }
}
$('undo').addEventListener('click', () => ui.current && applyEdit({ op: 'undo' }));
$('redo').addEventListener('click', () => ui.current && applyEdit({ op: 'redo' }));
window.addEventListener('keydown', (ev) => {
  if (!(ev.ctrlKey || ev.metaKey) || !ui.current) return;
  if (ev.key === 'z') { ev.preventDefault(); applyEdit({ op: ev.shiftKey ? 'redo' : 'undo' }); }
  if (ev.key === 'y') { ev.preventDefault(); applyEdit({ op: 'redo' }); }
});

async function prompt(p) {
  try {
    setStatus('SAM: predicting…');
    const r = await call('prompt', { name: ui.current.name, prompt: p, cls: +$('paint-class').value });
    ui.current.refined = r.refined;
    ui.current.masks = r.masks;
    $('review-info').textContent = `${ui.current.name}: ${r.masks.length} SAM masks, ${r.edits} edit(s), ${r.redo} to redo`;
    render();
    setStatus('SAM: mask added');
    call('metrics').then(showMetrics).catch((e) => setStatus(`error: metrics: ${e.message}`));
  } catch (e) { setStatus(`error: ${e.message}`); draw(); }
}

// ---------------------------------------------------------------- export

function download(bytes, name, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = document.createElement('a');
  a.href = url; a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

$('export').addEventListener('click', async () => {
  try {
    const bytes = await call('exportZip', { gray: $('export-gray').checked, overlays: $('export-overlays').checked });
    download(bytes, 'camsam-labels.zip', 'application/zip');
    ui.unexported = false;
    setStatus(`done: exported camsam-labels.zip (${(bytes.length / 1024).toFixed(0)} KiB)`);
  } catch (e) { setStatus(`error: ${e.message}`); }
});
$('export-report').addEventListener('click', async () => {
  try {
    const r = await call('report');
    download(new TextEncoder().encode(JSON.stringify(r, null, 2)), 'camsam-report.json', 'application/json');
  } catch (e) { setStatus(`error: ${e.message}`); }
});

// Finished results are kept in this browser (IndexedDB) until a new run replaces them or
// the user clears them: a reload lists them again and Export works without re-running.
function showKept(n) {
  $('results-state').textContent = n ? `${n} result(s) kept in this browser: they survive a reload until you run again or clear them` : '';
  $('clear-results').disabled = !n;
}
$('clear-results').addEventListener('click', async () => {
  try {
    showPlan(await call('clearResults'));
    clearReview();
    showKept(0);
    setStatus('results cleared');
  } catch (e) { setStatus(`error: ${e.message}`); }
});

// Show the results of an earlier visit with the settings and classes they were made with.
async function showRestored(r) {
  for (const [id, v] of [['preset-select', r.settings.preset], ['t1', r.settings.t1], ['t2', r.settings.t2], ['combine', r.settings.combine], ['bg', r.settings.bg]]) {
    if (v !== undefined) $(id).value = v;
  }
  for (const id of ['t1', 't2', 'bg']) $(`${id}-out`).textContent = (+$(id).value).toFixed(2);
  ui.runPreset = r.settings.preset;
  ui.names = r.names;
  ui.unexported = r.names.length > 0;
  fillImageSelect();
  showMetrics(r.metrics);
  setBgSlider(r.fromCams);
  showKept(r.names.length);
  if (r.names.length) await openImage(r.names[0]);
}

// Test hook (`?memory-every=N`): the worker's memory every N images of a run, with this
// page's JS heap (Chromium's performance.memory), collected in window.camsamMemory.
// The worker's own JS heap comes from measureUserAgentSpecificMemory (cross-origin isolated
// pages only; eager with --enable-blink-features=ForceEagerMeasureMemory).
function recordMemory(m) {
  globalThis.gc?.(); // exposed with --js-flags=--expose-gc
  const sample = { ...m, page_js_heap_bytes: performance.memory ? performance.memory.usedJSHeapSize : null };
  (window.camsamMemory ||= []).push(sample);
  if (self.crossOriginIsolated && performance.measureUserAgentSpecificMemory) {
    sample.worker_heap_bytes = performance.measureUserAgentSpecificMemory().then((r) => r.breakdown
      .filter((b) => b.attribution.some((a) => a.scope === 'DedicatedWorkerGlobalScope'))
      .reduce((sum, b) => sum + b.bytes, 0)).catch(() => null);
  }
}

// ---------------------------------------------------------------- bench

async function bench() {
  $('bench').hidden = false;
  $('bench-out').textContent = 'running…';
  delete $('bench-out').dataset.result;
  try {
    const r = await call('bench', { pointsPerSide: Number(params.get('points') ?? 32), decoderPoints: Number(params.get('decoder-points') || 4) });
    $('bench-out').textContent = r.lines.join('\n');
    $('bench-out').dataset.result = JSON.stringify(r);
  } catch (e) { $('bench-out').textContent = `error: ${e.message}`; }
}
$('bench-run').addEventListener('click', bench);

// ---------------------------------------------------------------- sweep

async function runSweep() {
  setStatus('sweeping…');
  $('sweep-run').disabled = true;
  try {
    const { result, heatmap, png } = await call('sweep', { settings: settings(), t1: $('sweep-t1').value, t2: $('sweep-t2').value });
    const img = $('sweep-img');
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(new Blob([png], { type: 'image/png' }));
    img.dataset.cells = JSON.stringify(heatmap.cells);
    img.hidden = false;
    const b = result.best;
    $('sweep-best').textContent = b ? `best: t1 ${b.t1}, t2 ${b.t2} → mIoU ${pct(b.miou)} % over ${result.images} image(s)` : 'no cell could be scored';
    setStatus(`sweep done: ${result.t1.length} × ${result.t2.length} cells over ${result.images} image(s)`);
  } catch (e) {
    setStatus(`error: ${e.message}`);
  } finally {
    $('sweep-run').disabled = false;
  }
}
$('sweep-run').addEventListener('click', runSweep);

// A click on a cell applies its thresholds (and re-merges, as moving the sliders does).
$('sweep-img').addEventListener('click', (ev) => {
  const img = ev.currentTarget;
  const scale = img.naturalWidth / img.clientWidth;
  const x = ev.offsetX * scale, y = ev.offsetY * scale;
  const cell = JSON.parse(img.dataset.cells || '[]').find((c) => x >= c.x && x < c.x + c.w && y >= c.y && y < c.y + c.h);
  if (!cell) return;
  $('t1').value = cell.t1;
  $('t2').value = cell.t2;
  onSettings();
  setStatus(`applied t1 ${cell.t1}, t2 ${cell.t2} from the sweep`);
});

// ---------------------------------------------------------------- start

async function start() {
  ui.palette = vocPalette();
  const backend = params.get('backend') || 'auto';
  try {
    // A shared flag lets Cancel stop segment-everything mid-image (needs cross-origin isolation).
    ui.cancelFlag = self.crossOriginIsolated ? new SharedArrayBuffer(4) : null;
    const loseGpuAfter = params.has('lose-gpu-after') ? Number(params.get('lose-gpu-after')) : undefined;
    const memoryEvery = params.has('memory-every') ? Number(params.get('memory-every')) : undefined;
    const info = await call('init', { backend, cancelFlag: ui.cancelFlag, loseGpuAfter, memoryEvery });
    ui.classes = info.classes;
    $('classes').value = ui.classes.join('\n');
    fillClassSelects();
    showBackend(info);
    $('version').textContent = info.version;
    const w = await call('restoreWeights').catch(() => null);
    if (w) {
      $('weights-state').textContent = `weights: ${w.name} (cached in this browser)`;
      showBackend(w);
    }
    if (params.get('points')) { $('points-per-side').value = params.get('points'); await call('amg', { options: { points_per_side: +params.get('points') } }); }
    // The demo only when the user has given nothing yet (files chosen during start-up are
    // already queued in the worker; any given later replace the demo).
    const plan = params.has('nodemo') ? await call('plan') : await call('loadDemo', { unlessFiles: true });
    showPlan(plan);
    if (info.restored) await showRestored(info.restored);
    const kept = info.restored ? ` · ${info.restored.names.length} result(s) from your last visit restored` : '';
    setStatus(`${plan.demo ? 'ready: demo loaded — press Run' : 'ready'}${kept}${info.storage ? ` · ${info.storage}` : ''}`);
    if (params.has('bench')) await bench();
  } catch (e) {
    setStatus(`error: ${e.message}`);
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
