// 3 · Review: the canvas (layers composed at image resolution, then zoom and pan) and the tools
// (pan/zoom, accept or reject a SAM mask, brush, SAM point and box, undo/redo). The pixel work
// (hit tests, the brush, the edit replay) happens in the worker's wasm; this draws its answers.

import { CMD } from '../protocol.js';
import { call } from './worker-client.js';
import { $, setStatus, showError, escapeHtml } from './dom.js';
import { ui } from './state.js';
import { paintSwatches } from './classes.js';
import { showMetrics } from './measure.js';
import { showKept } from './export-panel.js';
import { initWindow, showWindowControl, dragsWindow, windowDragStart, windowDragMove, windowDragEnd } from './window.js';

/** The image selector lists the stored results and the loaded images labelled from scratch
 *  (the worker's plan.review, in load order), then any other stored result. */
export function fillImageSelect() {
  const list = [...ui.review, ...ui.names.filter((n) => !ui.review.includes(n))];
  $('image-select').innerHTML = list.map((n) => `<option>${escapeHtml(n)}</option>`).join('');
  if (ui.current && list.includes(ui.current.name)) $('image-select').value = ui.current.name;
}

/** The worker's review list changed (files loaded, a run, results cleared): refill the
 *  selector; with nothing under review, open the first image that came in (a dropped scan
 *  opens at once). */
export function setReviewList(list) {
  const before = new Set([...ui.review, ...ui.names]);
  ui.review = list || [];
  fillImageSelect();
  if (ui.current && !ui.review.includes(ui.current.name) && !ui.names.includes(ui.current.name)) closeView();
  const added = ui.review.filter((n) => !before.has(n));
  if (!ui.current && !ui.opening && !ui.running && added.length) openImage(added[0]);
}

function closeView() {
  ui.current = null; ui.bitmap = null;
  showWindowControl(null);
  $('review-info').textContent = '';
  const ctx = $('canvas').getContext('2d');
  ctx.clearRect(0, 0, $('canvas').width, $('canvas').height);
}

/** Nothing to review (the results are gone). */
export function clearReview() {
  ui.names = []; ui.unexported = false;
  closeView();
  fillImageSelect(); showMetrics(null);
}

/** Show stored result `name` (or a loaded image labelled from scratch). */
export async function openImage(name) {
  ui.opening = name;
  try {
    const v = await call(CMD.view, { name });
    ui.current = v;
    ui.bitmap = v.image ? await createImageBitmap(v.image) : null;
    $('image-select').value = name;
    showWindowControl(v.window);
    ui.cam = null;
    $('cam-class').innerHTML = v.cams.map((k) => `<option value="${k}">${escapeHtml(ui.classes[k] || k)}</option>`).join('');
    $('show-cam').disabled = !v.cams.length;
    if (v.cams.length) await loadCam(v.cams[0]);
    fit();
    render();
    updateLegend();
    $('review-info').textContent = `${name}: ${v.width}×${v.height}, ${v.masks.length} SAM masks, ${v.edits} edit(s)`;
  } catch (e) { showError(e); } finally { if (ui.opening === name) ui.opening = null; }
}

async function loadCam(cls) {
  if (!ui.current) return;
  ui.camCls = cls;
  ui.cam = await call(CMD.cam, { name: ui.current.name, cls });
}

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
/** Compose and draw the result under review. */
export function render() {
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

let drag = null;

async function pointerDown(ev) {
  if (!ui.current) return;
  const p = toImage(ev);
  const t = tool();
  if (dragsWindow(t, ev)) { windowDragStart(ev); drag = { window: true }; return; }
  if (t === 'pan') { drag = { x: ev.clientX, y: ev.clientY, px: ui.panX, py: ui.panY }; return; }
  if (!inside(p)) return;
  const [x, y] = p.map(Math.floor);
  if (t === 'mask') {
    const mask = await call(CMD.maskAt, { name: ui.current.name, x, y });
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
}

// An image labelled from scratch is stored as a result by its first edit.
function kept(name) {
  if (ui.names.includes(name)) return;
  ui.names.push(name);
  showKept(ui.names.length);
}

async function applyEdit(op) {
  try {
    const r = await call(CMD.edit, { name: ui.current.name, op });
    ui.current.refined = r.refined;
    if (op.op === 'prompt' || r.masks) ui.current.masks = r.masks || ui.current.masks;
    $('review-info').textContent = `${ui.current.name}: ${r.edits} edit(s), ${r.redo} to redo`;
    render();
    kept(ui.current.name);
    call(CMD.metrics).then(showMetrics).catch((e) => showError(e, 'metrics'));
  } catch (e) { showError(e); }
}

async function prompt(p) {
  try {
    setStatus('SAM: predicting…');
    const r = await call(CMD.prompt, { name: ui.current.name, prompt: p, cls: +$('paint-class').value });
    ui.current.refined = r.refined;
    ui.current.masks = r.masks;
    $('review-info').textContent = `${ui.current.name}: ${r.masks.length} SAM masks, ${r.edits} edit(s), ${r.redo} to redo`;
    render();
    kept(ui.current.name);
    setStatus('SAM: mask added');
    call(CMD.metrics).then(showMetrics).catch((e) => showError(e, 'metrics'));
  } catch (e) { showError(e); draw(); }
}

/** Wire the Review panel: the image selector, layers, tools, undo/redo. */
export function initReview() {
  initWindow((bitmap) => { ui.bitmap = bitmap; render(); });
  $('image-select').addEventListener('change', (ev) => openImage(ev.target.value));
  $('cam-class').addEventListener('change', async (ev) => {
    try { await loadCam(+ev.target.value); render(); } catch (e) { showError(e, 'CAM'); }
  });
  $('zoom-reset').addEventListener('click', () => { fit(); render(); });
  for (const id of ['show-image', 'show-cam', 'show-masks', 'layer', 'opacity']) $(id).addEventListener('input', render);
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
  $('canvas').addEventListener('contextmenu', (ev) => ev.preventDefault());
  $('canvas').addEventListener('pointerdown', (ev) => pointerDown(ev).catch((e) => showError(e)));
  window.addEventListener('pointermove', (ev) => {
    if (!drag || !ui.current) return;
    if (drag.window) {
      windowDragMove(ev);
    } else if (drag.x !== undefined) {
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
    if (d.window) await windowDragEnd();
    if (d.brush) await applyEdit({ op: 'brush', points: d.brush, radius: +$('brush-size').value, cls: +$('paint-class').value });
    if (d.box) {
      const [x0, y0] = ui.boxStart, [x1, y1] = ui.boxEnd;
      ui.boxStart = ui.boxEnd = null;
      if (Math.abs(x1 - x0) > 2 && Math.abs(y1 - y0) > 2) await prompt({ box: [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)] });
      else draw();
    }
  });
  $('undo').addEventListener('click', () => ui.current && applyEdit({ op: 'undo' }));
  $('redo').addEventListener('click', () => ui.current && applyEdit({ op: 'redo' }));
  window.addEventListener('keydown', (ev) => {
    if (!(ev.ctrlKey || ev.metaKey) || !ui.current) return;
    if (ev.key === 'z') { ev.preventDefault(); applyEdit({ op: ev.shiftKey ? 'redo' : 'undo' }); }
    if (ev.key === 'y') { ev.preventDefault(); applyEdit({ op: 'redo' }); }
  });
}
