// The worker's state, shared by its modules, and the messages it sends unasked.

import { EVENT } from '../protocol.js';

export const state = {
  ready: null,            // promise of the wasm module (main.js)
  defaults: null,         // the page's defaults from the library's (settings.js), once ready
  library: null,          // the library's default settings (wasm defaultSettings()), once ready
  backend: 'cpu',
  adapter: '',
  prefer: 'auto',
  files: [],              // {kind, path, file: Blob}
  classes: [],
  demo: false,
  zips: new Map(),        // mask zip path -> wasm MaskZip (null when unreadable)
  zipIndex: new Map(),    // mask zip path -> image names in it
  zipNames: [],
  medical: new Map(),     // medical file path -> its decoded slices and window (medical.js)
  results: new Map(),     // name -> summary of a finished image (store.js `results`), run order
  open: null,             // the one result held as wasm objects (see results.js hydrate), for review
  session: null,          // the run's settings, classes, backend and issues (store.js `session`)
  issues: [],             // {file, reason}
  cancel: false,
  cancelFlag: null,       // Int32Array over the page's SharedArrayBuffer, when cross-origin isolated
  running: false,
  settings: {},           // PageSettings (protocol.js): the library's defaults, then the page's
  amg: null,              // segment-everything options from the page
  metrics: null,
  model: null,            // wasm Sam
  modelImage: null,       // the name of the image whose embedding the model holds
  notice: '',
  latestRemerge: undefined,
  memory: null,           // the wasm linear memory
  hooks: {},              // test hooks (test-hooks.js)
};

/** Post a message to the page. */
export const post = (msg, transfer) => self.postMessage(msg, transfer || []);

/** A progress event (protocol.js Progress). */
export const progress = (p) => post({ event: EVENT.progress, ...p });

/** An Error with a `kind` (protocol.js KIND). */
export const failure = (kind, message, cause) => Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { kind });

/** The bytes of a Blob. */
export const bytesOf = async (blob) => new Uint8Array(await blob.arrayBuffer());

/** An error's message, for the page or the issues list. */
export const messageOf = (err) => String((err && err.message) || err);

/** After `err`, run `cleanup` (freeing wasm objects) and throw `err`: a cleanup that fails too
 *  is a console warning, so it never replaces the job's error. */
export function cleanUpAndThrow(err, cleanup) {
  try {
    cleanup();
  } catch (again) {
    console.warn(`camsam: cleaning up after "${messageOf(err)}" failed too (${messageOf(again)})`);
  }
  throw err;
}
