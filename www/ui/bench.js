// The benchmark view (`index.html?bench`) and the memory figures of the long-batch test.

import { CMD, EVENT } from '../protocol.js';
import { call, onEvent } from './worker-client.js';
import { $, params } from './dom.js';

/** Run the benchmark in the worker and show its lines (the result as JSON in data-result). */
export async function bench() {
  $('bench').hidden = false;
  $('bench-out').textContent = 'running…';
  delete $('bench-out').dataset.result;
  try {
    // Without `?points=N` the worker uses the library's default points per side.
    const pointsPerSide = params.has('points') ? Number(params.get('points')) : undefined;
    const r = await call(CMD.bench, { pointsPerSide, decoderBatch: Number(params.get('decoder-batch') || 64), profile: params.has('profile') });
    $('bench-out').textContent = r.lines.join('\n');
    $('bench-out').dataset.result = JSON.stringify(r);
  } catch (e) { $('bench-out').textContent = `error: ${e.message}`; }
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
      .reduce((sum, b) => sum + b.bytes, 0)).catch((err) => {
      // The figure is missing (null), which the test reports; say why.
      console.warn(`camsam: the worker's JS heap could not be measured (${err.message})`);
      return null;
    });
  }
}

/** Wire the benchmark button and the memory events. */
export function initBench() {
  $('bench-run').addEventListener('click', bench);
  onEvent(EVENT.memory, recordMemory);
}
