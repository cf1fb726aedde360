// The window of gray medical slices (3 · Review): presets (the library's CT presets, the file's
// own window, min–max), numeric centre and width, and dragging on the canvas as viewers do
// (the "window" tool, or Alt+drag with any tool: left/right = width, up/down = centre), with a
// live preview. The 8-bit image always comes from the worker, drawn by the library's window
// rule from the values kept in wasm; a window set here applies to every slice of the file, and
// SAM embeds the new images.

import { CMD } from '../protocol.js';
import { call } from './worker-client.js';
import { $, setStatus, showError } from './dom.js';
import { ui } from './state.js';

let info = null;       // protocol.js WindowInfo of the slice under review (null: no control)
let showImage = null;  // (ImageBitmap) => void: the review draws it
let generation = 0;    // a set window makes the previews still on their way stale
let pending = null;    // the latest preview asked for while one is in flight
let previewing = false;
let drag = null;       // {x, y, center, width}
let last = null;       // the window the drag shows now

// How the status line names a window: a preset by its name.
const label = (w) => {
  if (w === 'file' || w === 'minmax') return w === 'file' ? 'the file\'s own' : 'min–max';
  const preset = info.presets.find((p) => `${p.center},${p.width}` === w);
  return preset ? preset.name : 'custom';
};

/** Wire the window control; `show(bitmap)` draws a new image of the slice under review. */
export function initWindow(show) {
  showImage = show;
  $('window-preset').addEventListener('change', () => {
    const v = $('window-preset').value;
    if (v !== 'custom') apply(v);
  });
  for (const id of ['window-center', 'window-width']) {
    $(id).addEventListener('change', () => {
      const c = +$('window-center').value, w = +$('window-width').value;
      if (Number.isFinite(c) && Number.isFinite(w)) apply(`${c},${w}`);
    });
  }
}

/** Show the control for the view's window (protocol.js View.window; null hides it). */
export function showWindowControl(w) {
  info = w;
  drag = null;
  $('window-row').hidden = !w;
  $('window-tool').hidden = !w;
  if (!w) {
    if (document.querySelector('input[name=tool][value=window]').checked) document.querySelector('input[name=tool][value=pan]').checked = true;
    return;
  }
  const opts = [];
  if (w.fileWindow) opts.push(['file', `file (${w.fileWindow[0]}, ${w.fileWindow[1]})`]);
  opts.push(['minmax', 'min–max']);
  for (const p of w.presets) opts.push([p.name, `${p.name} (${p.center}, ${p.width})`]);
  opts.push(['custom', 'custom']);
  $('window-preset').innerHTML = opts.map(([v, t]) => `<option value="${v}">${t}</option>`).join('');
  showNumbers(w.window, w.numbers);
  $('window-note').textContent = w.range ? `values ${w.range[0]} … ${w.range[1]} · ${w.source}` : w.source;
}

function showNumbers(window, [center, width]) {
  const preset = info.presets.find((p) => `${p.center},${p.width}` === window);
  $('window-preset').value = window === 'file' || window === 'minmax' ? window : preset ? preset.name : 'custom';
  // A field being typed in keeps what is typed.
  for (const [id, v] of [['window-center', center], ['window-width', width]]) {
    if (document.activeElement !== $(id)) $(id).value = round(v);
  }
}

// Numbers as a person types them: whole units for CT-like ranges, a few decimals for small ones.
function round(v) {
  const span = info && info.range ? info.range[1] - info.range[0] : 1000;
  return span >= 100 ? Math.round(v) : +v.toPrecision(4);
}

/** Set the file's window (`file`, `minmax`, a preset or `C,W`): the worker redraws the slice. */
async function apply(window) {
  if (!ui.current || !info) return;
  const gen = ++generation, name = ui.current.name;
  pending = null;
  try {
    const r = await call(CMD.setWindow, { name, window });
    const bitmap = await createImageBitmap(r.image);
    // A later window (or another image) wins over this one.
    if (gen !== generation || !ui.current || ui.current.name !== name) return;
    info = r.window;
    ui.current.image = r.image;
    ui.current.window = r.window;
    showNumbers(info.window, info.numbers);
    showImage(bitmap);
    setStatus(`window: ${label(info.window)} (centre ${round(info.numbers[0])}, width ${round(info.numbers[1])})`);
  } catch (e) {
    showError(e, 'window');
    if (info) showNumbers(info.window, info.numbers);
  }
}

// The live preview: one request at a time, the latest window wins.
function preview(window) {
  pending = window;
  if (!previewing) pump();
}

async function pump() {
  previewing = true;
  try {
    while (pending && ui.current) {
      const window = pending, gen = generation, name = ui.current.name;
      pending = null;
      const p = await call(CMD.windowPreview, { name, window });
      const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(p.rgba.buffer, p.rgba.byteOffset, p.rgba.byteLength), p.width, p.height));
      if (gen === generation && ui.current && ui.current.name === name) showImage(bitmap);
    }
  } catch (e) {
    showError(e, 'window');
  } finally {
    previewing = false;
  }
}

/** Whether a press on the canvas drags the window: the window tool, or Alt with any tool. */
export const dragsWindow = (tool, ev) => !!info && (tool === 'window' || ev.altKey);

/** A window drag starts at the pointer. */
export function windowDragStart(ev) {
  const [center, width] = info.numbers;
  drag = { x: ev.clientX, y: ev.clientY, center, width };
  last = null;
}

/** The pointer moved: right widens, left narrows; down raises the centre, up lowers it. One
 *  screen pixel is 1/256 of the value range (of the window's width when the range is unknown). */
export function windowDragMove(ev) {
  if (!drag) return;
  const span = info.range ? Math.max(1, info.range[1] - info.range[0]) : drag.width;
  const step = span / 256;
  const width = Math.max(1, round(drag.width + (ev.clientX - drag.x) * step));
  const center = round(drag.center + (ev.clientY - drag.y) * step);
  last = `${center},${width}`;
  $('window-preset').value = 'custom';
  $('window-center').value = center;
  $('window-width').value = width;
  preview(last);
}

/** The drag ends: the window it reached is set. */
export async function windowDragEnd() {
  const window = last;
  drag = null;
  last = null;
  if (window) await apply(window);
}
