// Test hooks, set by the page from its URL (InitArgs in protocol.js) and used by tests/e2e only.
// A page opened without these parameters never reaches the code below.

import { state } from './state.js';
import { wasm } from './wasm.js';

/** `?lose-gpu-after=K`: destroy the WebGPU device after K batches of segment-everything
 *  prompts, a real loss of the device in the middle of a job. */
export function loseDeviceHook() {
  if (state.hooks.loseGpuAfter === undefined || state.backend !== 'webgpu') return;
  if (--state.hooks.loseGpuAfter <= 0) { state.hooks.loseGpuAfter = undefined; state.model.destroyDevice(); }
}

/** `?wasm-trap-after=K`: once K images of a run are done, a wasm call traps (a real Rust panic,
 *  below). Once per worker: the fresh worker the page starts after the trap has no hook. */
export function trapHook(done) {
  if (state.hooks.wasmTrapAfter === undefined || done < state.hooks.wasmTrapAfter) return;
  state.hooks.wasmTrapAfter = undefined;
  provokeTrap();
}

/** A genuine panic inside the wasm module (`trapForTest`: a Rust panic, hence `unreachable`). */
function provokeTrap() {
  wasm.trapForTest();
  throw new Error('test hook wasm-trap-after: trapForTest returned without trapping');
}
