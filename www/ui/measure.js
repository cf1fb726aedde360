// 4 · Measure: the dataset metrics (before/after, per class, worst images) and the t1 × t2
// threshold sweep (a click on a cell applies it).

import { CMD } from '../protocol.js';
import { call } from './worker-client.js';
import { $, setStatus, showError, escapeHtml, pct } from './dom.js';
import { ui } from './state.js';
import { paintSwatches } from './classes.js';
import { openImage } from './review.js';
import { settings, onSettings } from './run-panel.js';

/** Show the metrics (protocol.js Metrics; null: none, no ground truth). */
export function showMetrics(m) {
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

async function runSweep() {
  setStatus('sweeping…');
  $('sweep-run').disabled = true;
  try {
    const { result, heatmap, png } = await call(CMD.sweep, { settings: settings(), t1: $('sweep-t1').value, t2: $('sweep-t2').value });
    const img = $('sweep-img');
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(new Blob([png], { type: 'image/png' }));
    img.dataset.cells = JSON.stringify(heatmap.cells);
    img.hidden = false;
    const b = result.best;
    $('sweep-best').textContent = b ? `best: t1 ${b.t1}, t2 ${b.t2} → mIoU ${pct(b.miou)} % over ${result.images} image(s)` : 'no cell could be scored';
    setStatus(`sweep done: ${result.t1.length} × ${result.t2.length} cells over ${result.images} image(s)`);
  } catch (e) {
    showError(e);
  } finally {
    $('sweep-run').disabled = false;
  }
}

/** Wire the Measure panel. */
export function initMeasure() {
  $('worst').addEventListener('click', (ev) => {
    const a = ev.target.closest('a[data-name]');
    if (!a) return;
    ev.preventDefault();
    $('image-select').value = a.dataset.name;
    openImage(a.dataset.name);
    $('review').scrollIntoView();
  });
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
}
