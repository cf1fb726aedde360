// 5 · Export: the labels' zip and report.json, and the results kept in this browser (they
// survive a reload until the next run replaces them or Clear results removes them).

import { CMD } from '../protocol.js';
import { call } from './worker-client.js';
import { $, setStatus, showError } from './dom.js';
import { ui } from './state.js';
import { showPlan } from './inputs.js';
import { clearReview } from './review.js';

function download(bytes, name, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = document.createElement('a');
  a.href = url; a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Say how many results are kept in this browser (0: none; Clear results is disabled). */
export function showKept(n) {
  $('results-state').textContent = n ? `${n} result(s) kept in this browser: they survive a reload until you run again or clear them` : '';
  $('clear-results').disabled = !n;
}

/** Wire the Export panel. */
export function initExport() {
  $('export').addEventListener('click', async () => {
    try {
      const bytes = await call(CMD.exportZip, { gray: $('export-gray').checked, overlays: $('export-overlays').checked });
      download(bytes, 'camsam-labels.zip', 'application/zip');
      ui.unexported = false;
      setStatus(`done: exported camsam-labels.zip (${(bytes.length / 1024).toFixed(0)} KiB)`);
    } catch (e) { showError(e); }
  });
  $('export-report').addEventListener('click', async () => {
    try {
      const r = await call(CMD.report);
      download(new TextEncoder().encode(JSON.stringify(r, null, 2)), 'camsam-report.json', 'application/json');
    } catch (e) { showError(e); }
  });
  $('clear-results').addEventListener('click', async () => {
    try {
      showPlan(await call(CMD.clearResults));
      clearReview();
      showKept(0);
      setStatus('results cleared');
    } catch (e) { showError(e); }
  });
}
