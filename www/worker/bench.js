// The benchmark view (`index.html?bench`): model speed in this browser.

import { KIND } from '../protocol.js';
import { state, failure } from './state.js';
import { wasm } from './wasm.js';
import { restoreWeights } from './model.js';

const ENCODER_PASSES = 3;

/**
 * Speed in this browser: encoder ms (fastest of three passes), decoder ms/prompt (a batch of
 * `decoderBatch` point prompts on the encoded image, 3 masks each: the batch `camsam bench sam`
 * times), everything-mode s/image (`pointsPerSide`², encoder included; 0 skips it).
 * @param {import('../protocol.js').BenchArgs} args
 * @returns {Promise<import('../protocol.js').BenchResult>}
 */
export async function bench({ pointsPerSide = state.defaults.pointsPerSide, decoderBatch = 64, profile = false } = {}) {
  if (!state.model && !(await restoreWeights())) throw failure(KIND.badInput, 'no weights: pick mobile_sam.pt or a .safetensors checkpoint first');
  const img = wasm.demoFiles().find((f) => f.path === 'images/demo_street.png');
  const never = () => false;
  const profiles = [];
  // The fastest of three passes, as `camsam bench sam` reports (the first also grows memory).
  let encoderMs = Infinity;
  for (let pass = 0; pass < ENCODER_PASSES; pass++) {
    if (profile) wasm.profileStart();
    const t0 = performance.now();
    await state.model.setImage(img.bytes, 'demo_street.png');
    const ms = performance.now() - t0;
    if (profile) {
      const table = wasm.profileTake(1, 'image');
      if (ms < encoderMs) profiles.splice(0, profiles.length, 'profile of the encoder (CPU model, fastest pass):', ...table);
    }
    encoderMs = Math.min(encoderMs, ms);
  }
  state.modelImage = null;
  // One untimed batch first: a helper worker is sent the image's embedding with its first
  // prompts (natively that image-side work is part of the encoder pass).
  await state.model.benchDecode(decoderBatch);
  if (profile) wasm.profileStart();
  const t1 = performance.now();
  await state.model.benchDecode(decoderBatch);
  const decoderMsPerPrompt = (performance.now() - t1) / decoderBatch;
  if (profile) profiles.push(`profile of the decoder, a batch of ${decoderBatch} (CPU model, this thread's stages):`, ...wasm.profileTake(decoderBatch, 'prompt'));
  let everythingS = null, n = null;
  if (pointsPerSide > 0) {
    const t2 = performance.now();
    const masks = await state.model.everything(img.bytes, 'demo_street.png', { points_per_side: pointsPerSide }, () => {}, never);
    everythingS = (performance.now() - t2) / 1000;
    n = masks.len();
    masks.free();
  }
  const r = {
    adapter: state.adapter || 'none', backend: state.backend, model_backend: state.model.backend,
    threads: state.model.threads, simd: wasm.simdLevel(), isolated: self.crossOriginIsolated, notice: state.notice,
    encoder_ms: encoderMs, decoder_ms_per_prompt: decoderMsPerPrompt, decoder_batch: decoderBatch,
    everything_s_per_image: everythingS, points_per_side: pointsPerSide, masks: n, image: '320×240 generated (demo_street)',
  };
  r.lines = [
    `adapter: ${r.adapter}`,
    `backend: ${r.backend} (${r.model_backend})`,
    `threads: ${r.threads}${r.backend === 'cpu' ? ` (${r.isolated ? 'cross-origin isolated' : 'not cross-origin isolated'})` : ''}; SIMD: ${r.simd}`,
    `encoder: ${encoderMs.toFixed(0)} ms/image (fastest of ${ENCODER_PASSES})`,
    `decoder: ${decoderMsPerPrompt.toFixed(1)} ms/prompt (a batch of ${decoderBatch} point prompts, 3 masks each)`,
    everythingS === null ? 'everything: skipped (points per side 0)'
      : `everything: ${everythingS.toFixed(2)} s/image (${pointsPerSide}×${pointsPerSide} points, ${n} masks, ${r.image})`,
    ...profiles,
  ];
  return r;
}
