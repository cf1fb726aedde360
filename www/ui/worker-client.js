// The page's side of the worker protocol (www/protocol.js): `call(cmd, args)` sends a command
// and resolves to its result (or rejects with an Error carrying the answer's `kind`); the
// worker's events go to the handlers set with `onEvent`.
//
// When the wasm module traps (a Rust panic: the answer's kind is `wasm-trap`) the worker and
// its wasm instance cannot be trusted any more: this module replaces the worker with a fresh
// one, sends it `init` again and what shaped the old one's state (the loaded files, the
// weights, the classes, the segment-everything options), then the commands that were waiting
// behind the failed one. Only that one fails; finished results are in IndexedDB, and the new
// worker's `init` restores them. `onRestart` handlers hear how it went.

import { CMD, KIND, isCommand } from '../protocol.js';

const WORKER_URL = new URL('../worker/main.js', import.meta.url);

let worker = null;
let nextId = 1;
const pending = new Map();          // id -> {cmd, args, resolve, reject}, sent and not answered
const eventHandlers = new Map();    // protocol.js EVENT -> handler
const restartHandlers = { restarted: () => {}, failed: () => {}, workerError: () => {} };
let started = false;                // the first `init` succeeded (a trap before it is not recovered)
let recovering = null;              // while a fresh worker is set up: resolves when it is ready
let trappedAgain = null;            // a trap while recovering
let broken = null;                  // the recovery failed: every call fails with this

/** Handle the worker's event `name` (protocol.js EVENT) with `fn(message)`. */
export const onEvent = (name, fn) => eventHandlers.set(name, fn);

/**
 * What happens around a replaced worker: `restarted({error, info, problems})` once the fresh
 * worker holds what the old one held (`info`: its InitResult; `problems`: what could not be
 * given again); `failed(error)` when it could not be set up (a trap again: reload the page);
 * `workerError(message)` when the worker fails outside any command (its script did not load).
 */
export function onRestart(handlers) { Object.assign(restartHandlers, handlers); }

function spawn() {
  const w = new Worker(WORKER_URL, { type: 'module' });
  // A replaced worker's late messages are dropped: its jobs are answered or sent again.
  w.onmessage = (ev) => { if (w === worker) receive(ev.data); };
  w.onerror = (ev) => { if (w === worker) restartHandlers.workerError(ev.message || 'unknown'); };
  worker = w;
}

function receive(m) {
  if (m.event !== undefined) { eventHandlers.get(m.event)?.(m); return; }
  const p = pending.get(m.id);
  if (!p) return;
  pending.delete(m.id);
  if (m.ok) { p.resolve(m.result); return; }
  const err = Object.assign(new Error(m.error), { kind: m.kind });
  if (m.kind === KIND.trap) {
    if (recovering) trappedAgain = err;
    else if (started) recover(err);
  }
  p.reject(err);
}

function send(cmd, args) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { cmd, args, resolve, reject });
    worker.postMessage({ id, cmd, args });
  });
}

// ---------------------------------------------------------------- what a fresh worker is told

let initArgs = null;
const replay = [];   // {cmd, args}, in the order they went out

const isFiles = (e) => e.cmd === CMD.addFiles || e.cmd === CMD.loadDemo;
const drop = (keep) => { for (let i = replay.length - 1; i >= 0; i--) if (!keep(replay[i])) replay.splice(i, 1); };

function record(cmd, args) {
  switch (cmd) {
    case CMD.init: initArgs = args; break;
    case CMD.addFiles: replay.push({ cmd, args }); break;
    // The demo replaces the files, unless it is loaded only when none were given (start-up).
    case CMD.loadDemo: if (!args || !args.unlessFiles) drop((e) => !isFiles(e)); replay.push({ cmd, args }); break;
    // Not sent again: it would clear the results the fresh worker restores.
    case CMD.clear: drop((e) => !isFiles(e)); break;
    case CMD.classes: case CMD.amg: drop((e) => e.cmd !== cmd); replay.push({ cmd, args }); break;
    default: break;
  }
}

// The weights the worker holds: recorded once they loaded (a failed load is not sent again).
function recordWeights(cmd, args, result) {
  if (!result) return;
  drop((e) => e.cmd !== CMD.loadWeights && e.cmd !== CMD.restoreWeights);
  replay.push(cmd === CMD.loadWeights ? { cmd, args: { ...args, cache: false } } : { cmd, args });
}

/**
 * Send command `cmd` (protocol.js CMD) with `args`; resolves to its result.
 * @param {string} cmd
 * @param {object} [args]
 */
export function call(cmd, args) {
  if (!isCommand(cmd)) throw new Error(`call: "${cmd}" is not a command of www/protocol.js`);
  if (broken) return Promise.reject(broken);
  if (!worker) spawn();
  record(cmd, args);
  const out = recovering ? recovering.then(() => send(cmd, args)) : send(cmd, args);
  if (cmd === CMD.init) out.then(() => { started = true; }, () => { /* the caller gets the failure */ });
  if (cmd === CMD.loadWeights || cmd === CMD.restoreWeights) {
    out.then((r) => recordWeights(cmd, args, r), () => { /* the caller gets the failure */ });
  }
  return out;
}

async function recover(error) {
  let ready;
  recovering = new Promise((resolve) => { ready = resolve; });
  trappedAgain = null;
  worker.terminate();
  // Sent to the old worker and never run there (it runs nothing after a trap): sent again.
  const waiting = [...pending.entries()].sort((a, b) => a[0] - b[0]);
  pending.clear();
  spawn();
  try {
    // The test hooks act once: the fresh worker has none of them.
    const { loseGpuAfter, wasmTrapAfter, ...args } = initArgs;
    const info = await send(CMD.init, args);
    const problems = [];
    for (const { cmd, args: a } of replay) {
      try {
        const r = await send(cmd, a);
        if (cmd === CMD.restoreWeights && !r) problems.push('the weights kept in this browser are gone: pick them again');
      } catch (err) {
        if (trappedAgain) throw trappedAgain;
        problems.push(`${cmd}: ${err.message}`);
      }
    }
    for (const [id, p] of waiting) {
      pending.set(id, p);
      worker.postMessage({ id, cmd: p.cmd, args: p.args });
    }
    restartHandlers.restarted({ error, info, problems });
  } catch (err) {
    broken = Object.assign(new Error(`the wasm module crashed again while it was reloaded (${err.message}); reload the page`), { kind: KIND.trap });
    for (const [, p] of waiting) p.reject(broken);
    restartHandlers.failed(broken);
  } finally {
    recovering = null;
    ready();
  }
}
