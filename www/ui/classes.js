// Class names and colours: the VOC palette, swatches, the class selectors.

import { $, escapeHtml } from './dom.js';
import { ui } from './state.js';

/** The VOC colour map, 256 × RGB. */
export function vocPalette() {
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

/** The class names typed in the Load panel (one per line, id = line number). */
export function readClasses() {
  return $('classes').value.split('\n').map((s) => s.trim()).filter(Boolean);
}

/** Show `classes` in the Load panel and the paint selector. */
export function setClasses(classes) {
  ui.classes = classes;
  $('classes').value = classes.join('\n');
  fillClassSelects();
}

export function fillClassSelects() {
  const opts = ui.classes.map((c, i) => `<option value="${i}">${i} ${escapeHtml(c)}</option>`).join('');
  $('paint-class').innerHTML = opts;
  if (ui.classes.length > 1) $('paint-class').value = '1';
}

/** Colour the `.swatch` elements under `root` by their `data-cls`. */
export function paintSwatches(root) {
  for (const s of root.querySelectorAll('.swatch')) {
    const k = +s.dataset.cls;
    s.style.background = `rgb(${ui.palette[3 * k]},${ui.palette[3 * k + 1]},${ui.palette[3 * k + 2]})`;
  }
}
