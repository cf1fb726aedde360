// Small helpers of the page: elements by id, the URL's parameters, the status line, text.

import { KIND } from '../protocol.js';

/** The element with id `id`. */
export const $ = (id) => document.getElementById(id);

/** The page's URL parameters (`?nodemo`, `?bench`, `?backend=cpu`, test hooks). */
export const params = new URLSearchParams(location.search);

/** The status line (tests read it: `ready…`, `running…`, `done…`, `error: …`). */
export function setStatus(text) { $('status').textContent = text; }

/** What a failed call says on the status line, by its kind (protocol.js KIND). */
export function errorText(err, what) {
  const where = what ? `${what}: ` : '';
  switch (err && err.kind) {
    case KIND.cancelled: return `cancelled: ${where}${err.message}`;
    case KIND.trap: return `${err.message}; reloading the wasm module…`;
    case KIND.gpuLost: return `error: ${where}the GPU device was lost (${err.message}); load the weights again to continue`;
    default: return `error: ${where}${err && err.message !== undefined ? err.message : err}`;
  }
}

/** Show a failed call on the status line. */
export const showError = (err, what) => setStatus(errorText(err, what));

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** A fraction as a percentage with two decimals; '–' for none. */
export const pct = (v) => (v === null || v === undefined || Number.isNaN(v) ? '–' : (100 * v).toFixed(2));
