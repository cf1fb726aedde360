// The model: the backend (WebGPU or CPU), SAM weights (kept in the Cache API), a lost GPU,
// and image embeddings cached by content (IndexedDB, store.js).

import { EVENT, KIND } from '../protocol.js';
import { state, post, bytesOf, messageOf } from './state.js';
import { wasm } from './wasm.js';
import * as store from './store.js';
import { attachHelpers } from './pool.js';

/**
 * The backend the model will use: with `auto`, WebGPU when the browser offers an adapter (the
 * model confirms it when the weights load: no device or a failed upload falls back to the
 * CPU); `cpu` when asked for or when there is no adapter. The adapter is shown either way.
 * @returns {Promise<import('../protocol.js').BackendInfo>}
 */
export async function detectBackend(prefer) {
  state.backend = 'cpu';
  state.adapter = '';
  state.prefer = prefer || 'auto';
  state.notice = '';
  if (self.navigator && navigator.gpu) {
    try {
      const adapter = await navigator.gpu.requestAdapter();
      if (adapter) {
        const info = adapter.info || {};
        state.adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'WebGPU adapter';
        if (state.prefer !== 'cpu') state.backend = 'webgpu';
      }
    } catch (err) {
      // No adapter: the CPU runs; the badge says why.
      state.notice = `no WebGPU adapter (${messageOf(err)}): running on the CPU`;
    }
  }
  return { backend: state.backend, adapter: state.adapter, notice: state.notice };
}

/** The WebGPU device failed under a job (device lost, or any GPU error): reload the same
 *  weights on the CPU; the run loop then restarts the job. Finished results stay. */
export async function fallBackToCpu(reason) {
  const bytes = await bytesOf(state.weightsFile);
  const model = await wasm.Sam.load(bytes, state.weightsName, 'cpu');
  state.model?.free();
  state.model = model;
  state.modelImage = null;
  state.backend = 'cpu';
  const { note } = await attachHelpers(model, bytes, state.weightsName, state.weightsHash);
  state.notice = `WebGPU failed (${reason}): continuing on the CPU${note ? ` (${note})` : ''}`;
  post({ event: EVENT.backend, backend: 'cpu', adapter: state.adapter, notice: state.notice });
}

/**
 * Whether a job failed on the GPU: `{kind: 'gpu-lost', reason}` when the model says its device
 * is lost, `{kind: 'gpu', reason}` for another WebGPU error, else null. Decided on the model's
 * state and the error's kind (protocol.js KIND), never on message text.
 */
export function gpuFailure(err) {
  if (state.backend !== 'webgpu' || !state.model) return null;
  const lost = state.model.lost;
  if (lost) return { kind: KIND.gpuLost, reason: `device lost: ${lost}` };
  if (err && err.kind === KIND.gpu) return { kind: KIND.gpu, reason: messageOf(err) };
  return null;
}

/** Whether the user cancelled (the message, or the shared flag when cross-origin isolated). */
export const cancelled = () => state.cancel || (state.cancelFlag ? Atomics.load(state.cancelFlag, 0) === 1 : false);

const WEIGHTS_CACHE = 'camsam-weights-v1';
// The app's root + camsam-cache/weights (the key of every earlier version: keep it).
const WEIGHTS_KEY = new URL('../../camsam-cache/weights', import.meta.url).href;

/** Load SAM weights; with `cache`, keep them in this browser (Cache API) for the next visit.
 *  @returns {Promise<import('../protocol.js').WeightsInfo>} */
export async function loadWeights({ file, name, cache = true }) {
  const bytes = await bytesOf(file);
  const model = await wasm.Sam.load(bytes, name, state.prefer || 'auto');
  state.model?.free();
  state.model = model;
  state.modelImage = null;
  state.weightsFile = file;
  state.weightsName = name;
  state.weightsHash = await sha256(bytes);
  state.backend = model.kind;
  if (!state.adapter && model.adapter) state.adapter = model.adapter;
  const { note } = await attachHelpers(model, bytes, name, state.weightsHash);
  state.notice = [model.fallback ? `WebGPU unavailable (${model.fallback}): running on the CPU` : '', note].filter(Boolean).join('; ');
  let cacheWarning = '';
  if (cache && self.caches) {
    try {
      const c = await caches.open(WEIGHTS_CACHE);
      await c.put(WEIGHTS_KEY, new Response(bytes, { headers: { 'x-camsam-name': encodeURIComponent(name) } }));
    } catch (err) {
      // Storage full or unavailable: the weights work for this visit; the page says they are not kept.
      cacheWarning = `not kept in this browser (${messageOf(err)}): pick them again next visit`;
    }
  }
  return { name, backend: state.backend, detail: model.backend, adapter: state.adapter, notice: state.notice, cacheWarning };
}

/** The weights kept in this browser, loaded; null when there are none. */
export async function restoreWeights() {
  if (!self.caches) return null;
  const c = await caches.open(WEIGHTS_CACHE);
  const r = await c.match(WEIGHTS_KEY);
  if (!r) return null;
  const name = decodeURIComponent(r.headers.get('x-camsam-name') || 'weights');
  return loadWeights({ file: await r.blob(), name, cache: false });
}

const sha256 = async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');

/** The cache key of an image's embedding: the SHA-256 of the weights' content and of the image
 *  (two checkpoints with the same file name never share embeddings). */
export async function embeddingKey(bytes) {
  return `${state.weightsHash}:${await sha256(bytes)}`;
}

/** The model holds result `r`'s image embedding (from the cache, else the encoder). */
export async function setImageCached(r) {
  if (state.modelImage === r.name) return;
  const bytes = await bytesOf(r.image);
  const key = await embeddingKey(bytes);
  const cached = await store.getEmbedding(key);
  if (cached) await state.model.setEmbedding(cached, r.height, r.width);
  else {
    await state.model.setImage(bytes, r.imagePath || r.name);
    await store.putEmbedding(key, await state.model.embedding());
  }
  state.modelImage = r.name;
}
