// The CPU model's helper workers. The wasm build has no threads of its own, so each helper is
// a worker with its own instance of the library and copy of the weights (helper.js); the model
// worker writes a job into the helper's SharedArrayBuffer, wakes it with Atomics.notify, does
// its own share and waits with Atomics.wait (src/sam/cpu/helpers.rs splits the work and runs
// the jobs; this file only moves bytes and wakes threads). Shared memory needs a cross-origin
// isolated page (COOP/COEP, as www/serve.py serves it): elsewhere the model runs on one
// thread and the page says why.

import { state } from './state.js';
import { build } from './wasm.js';

/** Bytes of a helper's job buffer (the encoder's largest share of a product fits). */
const CAPACITY = 64 << 20;
/** Control words (state, header length, header) and the error text before the job bytes. */
const CONTROL = 4096;
const HEADER_WORDS = 14;
/** A helper that has not answered a job in this long is stopped; its share is done here. */
const WAIT_MS = 120_000;
const MAX_THREADS = 8;
const IDLE = 0, POSTED = 1, DONE = 2, FAILED = 3, STOPPED = 4;

let pool = null; // {key, helpers: [{worker, sab, ctl, dead}], api}

/** Stop the helpers. */
export function stopHelpers() {
  if (!pool) return;
  for (const h of pool.helpers) h.worker.terminate();
  pool = null;
}

/** How many threads the CPU model should use here, and why not more. */
function plan() {
  const asked = state.hooks.threads;
  const cores = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, MAX_THREADS));
  if (!self.crossOriginIsolated) {
    return { threads: 1, note: 'one thread: the page is not cross-origin isolated (its host sends no COOP/COEP headers), so it cannot share memory with helper workers' };
  }
  if (asked) return { threads: Math.max(1, Math.min(asked, MAX_THREADS)), note: asked > 1 ? '' : 'one thread (?threads=1)' };
  return { threads: cores, note: cores > 1 ? '' : 'one thread: the browser reports one core' };
}

function startHelper(bytes, name) {
  const sab = new SharedArrayBuffer(CONTROL + CAPACITY);
  const worker = new Worker(new URL('./helper.js', import.meta.url), { type: 'module', name: 'camsam helper' });
  const ready = new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.ready ? resolve() : reject(new Error(data.error)));
    worker.onerror = (e) => reject(new Error(e.message || 'the helper worker did not start'));
  });
  worker.postMessage({ bytes, name, sab, library: build.url });
  return ready.then(() => ({ worker, sab, ctl: new Int32Array(sab, 0, 2 + HEADER_WORDS), dead: false }));
}

/** The object src/web/helpers.rs (HelperPool) calls, over `helpers`. */
function api(helpers) {
  return {
    count: () => helpers.length,
    capacity: () => CAPACITY,
    view: (i, at, len) => new Uint8Array(helpers[i].sab, CONTROL + at, len),
    start(i, header) {
      const h = helpers[i];
      if (h.dead || header.length > HEADER_WORDS) { Atomics.store(h.ctl, 0, FAILED); return; }
      h.ctl.set(header, 2);
      h.ctl[1] = header.length;
      Atomics.store(h.ctl, 0, POSTED);
      Atomics.notify(h.ctl, 0);
    },
    wait(i) {
      const h = helpers[i];
      while (Atomics.load(h.ctl, 0) === POSTED) {
        if (Atomics.wait(h.ctl, 0, POSTED, WAIT_MS) === 'timed-out') {
          h.dead = true;
          h.worker.terminate();
          Atomics.store(h.ctl, 0, IDLE);
          return `helper ${i + 1} did not answer within ${WAIT_MS / 1000} s and was stopped`;
        }
      }
      const s = Atomics.load(h.ctl, 0);
      Atomics.store(h.ctl, 0, IDLE);
      if (s === DONE) return undefined;
      if (s === STOPPED) h.dead = true;
      const text = new Uint8Array(h.sab, 64, CONTROL - 64);
      const end = text.indexOf(0);
      return h.dead ? `helper ${i + 1} was stopped` : new TextDecoder().decode(text.slice(0, end < 0 ? text.length : end)) || `helper ${i + 1} failed`;
    },
  };
}

/**
 * Give `model` helpers when it runs on the CPU: threads as the page allows (`plan`), the
 * helpers kept while the weights are the same. Resolves to {threads, note}; a helper that
 * fails to start leaves the model on one thread, saying why.
 */
export async function attachHelpers(model, bytes, name, key) {
  if (model.kind !== 'cpu') return { threads: 1, note: '' };
  const { threads, note } = plan();
  if (pool && (pool.key !== key || pool.helpers.length !== threads - 1)) stopHelpers();
  if (threads > 1 && !pool) {
    const started = await Promise.allSettled(Array.from({ length: threads - 1 }, () => startHelper(bytes, name)));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      for (const s of started) if (s.status === 'fulfilled') s.value.worker.terminate();
      model.useHelpers(null);
      return { threads: 1, note: `one thread: a helper worker failed to start (${failed.reason.message})` };
    }
    const helpers = started.map((s) => s.value);
    pool = { key, helpers, api: api(helpers) };
  }
  model.useHelpers(pool ? pool.api : null);
  return { threads: model.threads, note };
}
