// The wasm library (the build of pkg/ that library.js picks) as the worker's modules use it,
// with every call watched for a trap: a Rust panic ends in `unreachable`, which JS sees as a
// `WebAssembly.RuntimeError`. After one the instance cannot be trusted (a RefCell left
// borrowed, memory half written), so the first trap is remembered (`trapped()`) wherever it was
// caught: the dispatcher (main.js) then fails the job with kind `wasm-trap` and runs nothing
// more, and the page replaces this worker with a fresh one (www/ui/worker-client.js).

import { KIND } from '../protocol.js';
import { hasSimd, buildUrl } from './library.js';

/** The build this worker runs (library.js), set by start(): `url` of its module. Imported
 *  there, not at the top level: a worker module that awaits at its top level misses the
 *  messages posted to it meanwhile. */
export const build = { url: '' };

let trap = null;

/** The first trap of this instance, or null. */
export const trapped = () => trap;

// The library's panic hook (console_error_panic_hook) writes the panic's message with
// console.error just before the trap: the last one written is kept, to say what the panic was.
let lastConsoleError = '';
const consoleError = console.error.bind(console);
console.error = (...args) => {
  lastConsoleError = args.map(String).join(' ');
  consoleError(...args);
};

/** What the first trap was: `RuntimeError: unreachable`, with the last console error (the
 *  panic's message and place) written since the job began (`startJob`). */
export function describeTrap() {
  if (!trap) return '';
  const said = lastConsoleError.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 2).join(' ');
  return `${trap.name}: ${trap.message}${said ? ` — ${said}` : ''}`;
}

/** A job begins: an earlier console error says nothing about its trap. */
export function startJob() {
  if (!trap) lastConsoleError = '';
}

/** Remember `err` when it is a trap; returns whether it was one. */
export function noteTrap(err) {
  if (!(err instanceof WebAssembly.RuntimeError)) return false;
  trap = trap || err;
  return true;
}

/** Throw `err` again when it is a trap: a catch that records or converts errors must not turn
 *  a trap into an ordinary failure. */
export function rethrowTrap(err) {
  if (noteTrap(err)) throw err;
}

// A wrapped function: a synchronous throw or a rejected promise that is a trap is noted, then
// passed on unchanged.
function watched(fn) {
  return function watchedWasmCall(...args) {
    let out;
    try {
      out = fn.apply(this, args);
    } catch (err) {
      noteTrap(err);
      throw err;
    }
    // Notes a rejection without handling it: the caller still gets (and must handle) it.
    if (out && typeof out.then === 'function') out.then(undefined, noteTrap);
    return out;
  };
}

function watchMembers(target) {
  for (const key of Object.getOwnPropertyNames(target)) {
    if (key === 'constructor' || key === 'prototype' || key === 'length' || key === 'name' || key.startsWith('__')) continue;
    const d = Object.getOwnPropertyDescriptor(target, key);
    if (!d.configurable) continue;
    if (typeof d.value === 'function') Object.defineProperty(target, key, { ...d, value: watched(d.value) });
    else if (d.get) Object.defineProperty(target, key, { ...d, get: watched(d.get), set: d.set && watched(d.set) });
  }
}

const isClass = (f) => typeof f === 'function' && /^class\b/.test(Function.prototype.toString.call(f));

/** The library's exports, watched (filled by start()): classes (their methods, getters, static
 *  methods and constructors) and functions. Instances made inside the glue are watched too:
 *  their methods live on the patched prototypes. */
export const wasm = {};

function watchLibrary(lib) {
  for (const [name, value] of Object.entries(lib)) {
    if (name === 'default' || name === 'initSync') continue;
    if (isClass(value)) {
      watchMembers(value.prototype);
      watchMembers(value);
      wasm[name] = new Proxy(value, {
        construct(target, args, newTarget) {
          try {
            return Reflect.construct(target, args, newTarget);
          } catch (err) {
            noteTrap(err);
            throw err;
          }
        },
      });
    } else if (typeof value === 'function') {
      wasm[name] = watched(value);
    } else {
      wasm[name] = value;
    }
  }
  Object.freeze(wasm);
}

/** Import and instantiate the library (once per worker; the SIMD128 build with `simd128`, else
 *  the one library.js picks); resolves to its exports (`memory`, …). Without WebAssembly SIMD
 *  it fails with kind `unsupported`, naming what is missing. */
export async function start({ simd128 = false } = {}) {
  if (!hasSimd()) {
    throw Object.assign(new Error('this browser has no WebAssembly SIMD, which camsam is built with: use Chrome or Edge 91+, Firefox 89+ or Safari 16.4+'), { kind: KIND.unsupported });
  }
  build.url = buildUrl({ simd128 });
  const lib = await import(build.url);
  const exports = await lib.default();
  watchLibrary(lib);
  return exports;
}
