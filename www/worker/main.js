// camsam's Web Worker (a module worker started by www/ui/worker-client.js): holds the data set,
// runs the model and the merge, so the page never freezes. This file is the dispatcher: the
// commands of www/protocol.js, run one at a time, each answered with its result or its error's
// kind. Everything here is orchestration; decoding, merging, metrics and encoding happen in the
// wasm library (the build of ../../pkg/ that library.js picks, through wasm.js).
//
//   files.js    the loaded files, grouped by image name; the plan; mask zips; the demo
//   medical.js  DICOM / NIfTI / 16-bit files as slices, their windows, label volumes
//   settings.js the library's defaults, the library's settings from the page's controls
//   run.js      the run loop (one image at a time, each result stored as it finishes)
//   results.js  the results kept in IndexedDB, the labels the user sees, the metrics
//   review.js   view, edits, mask hit tests, the point/box tool, re-merges, the sweep
//   export.js   report.json and the zip of labels
//   model.js    the backend, weights (Cache API), a lost GPU, cached embeddings
//   bench.js    model speed (`?bench`)
//   store.js    IndexedDB
//   wasm.js     the wasm library, every call watched for a trap
//   test-hooks.js  hooks the e2e tests set from the page's URL

import { CMD, KIND, isCommand } from '../protocol.js';
import { state, post, failure, messageOf } from './state.js';
import { wasm, start, trapped, noteTrap, rethrowTrap, describeTrap, startJob } from './wasm.js';
import { loadDefaults } from './settings.js';
import { addFiles, clearInputs, indexZips, plan, loadDemo } from './files.js';
import { readMedical } from './medical.js';
import { run, memorySample } from './run.js';
import { clearResults, restoreResults, saveSession, computeMetrics, closeUnstored } from './results.js';
import { view, camOf, edit, maskAt, promptMask, remergeOne, remergeAll, sweep, windowPreview, windowSet } from './review.js';
import { report, exportZip } from './export.js';
import { detectBackend, loadWeights, restoreWeights, gpuFailure } from './model.js';
import { bench } from './bench.js';

/** The handlers, by command (protocol.js CMD; `cancel` is answered by the dispatcher). */
const commands = {
  /** @param {import('../protocol.js').InitArgs} args @returns {Promise<import('../protocol.js').InitResult>} */
  async [CMD.init]({ classes, backend, cancelFlag, loseGpuAfter, memoryEvery, wasmTrapAfter, threads, simd128 }) {
    if (cancelFlag) state.cancelFlag = new Int32Array(cancelFlag);
    state.hooks = { loseGpuAfter, memoryEvery, wasmTrapAfter, threads };
    // Set before the first await: queued commands wait for it, and find the defaults and the
    // classes set when it resolves.
    state.ready = state.ready || start({ simd128 }).then((exports) => {
      state.memory = exports.memory;
      loadDefaults();
      state.classes = classes && classes.length ? classes : wasm.vocClasses();
    });
    await state.ready;
    // Results of an earlier visit (their run's classes and settings come back with them).
    let restored = null, storage = '';
    try {
      restored = await restoreResults();
    } catch (err) {
      rethrowTrap(err);
      storage = `finished results are not kept (IndexedDB: ${messageOf(err)})`;
    }
    const b = await detectBackend(backend);
    return { version: wasm.version(), classes: state.classes, defaults: state.defaults, ...b, restored, storage };
  },
  async [CMD.classes]({ classes }) {
    state.classes = classes;
    if (state.session) { state.session.classes = classes; await saveSession(); }
    return plan();
  },
  async [CMD.addFiles]({ kind, files }) {
    // The demo goes before medical files are decoded (clearing it frees them).
    if (state.demo) clearInputs();
    addFiles(kind, kind === 'images' ? await readMedical(files) : files);
    closeUnstored();
    await indexZips();
    return plan();
  },
  async [CMD.clear]() { clearInputs(); await clearResults(); return plan(); },
  async [CMD.clearResults]() { await clearResults(); return plan(); },
  [CMD.loadDemo]: (args) => loadDemo(args),
  [CMD.plan]: () => plan(),
  async [CMD.run]({ settings }) { Object.assign(state.settings, settings); return run(); },
  [CMD.view]: ({ name }) => view(name),
  [CMD.cam]: ({ name, cls }) => camOf(name, cls),
  [CMD.edit]: ({ name, op }) => edit(name, op),
  [CMD.maskAt]: ({ name, x, y }) => maskAt(name, x, y),
  [CMD.windowPreview]: ({ name, window }) => windowPreview(name, window),
  [CMD.setWindow]: ({ name, window }) => windowSet(name, window),
  [CMD.remergeOne]: ({ name, settings }) => remergeOne(name, settings),
  [CMD.remergeAll]: ({ settings }, id) => remergeAll(settings, id),
  [CMD.exportZip]: (args) => exportZip(args),
  [CMD.report]: () => JSON.parse(new TextDecoder().decode(report())),
  [CMD.sweep]: (args) => sweep(args),
  // The metrics of the stored results as they are (after an edit: only that image changed).
  [CMD.metrics]: () => computeMetrics(),
  [CMD.loadWeights]: (args) => loadWeights(args),
  [CMD.restoreWeights]: () => restoreWeights(),
  [CMD.prompt]: (args) => promptMask(args),
  [CMD.amg]({ options }) { state.amg = options; return true; },
  [CMD.bench]: (args) => bench(args),
  [CMD.memory]: () => memorySample(null),
};

// The protocol and this table list the same commands (a mismatch fails at start-up).
for (const cmd of Object.values(CMD)) {
  if (cmd !== CMD.cancel && !commands[cmd]) throw new Error(`worker: no handler for command ${cmd}`);
}
for (const cmd of Object.keys(commands)) {
  if (!isCommand(cmd)) throw new Error(`worker: handler for ${cmd}, which www/protocol.js does not list`);
}

// ---------------------------------------------------------------- answers

/** The answer to a job that failed: its message and kind (protocol.js KIND). */
function failed(err) {
  // A WebGPU error while the model's device is lost is a lost device (`gpu-lost`).
  const gpu = err && err.kind === KIND.gpu ? gpuFailure(err) : null;
  if (gpu && gpu.kind === KIND.gpuLost) return { ok: false, error: `${messageOf(err)} (${gpu.reason})`, kind: KIND.gpuLost };
  return { ok: false, error: messageOf(err), kind: (err && err.kind) || KIND.error };
}

const running = new Set();   // jobs started and not answered yet
let trapAnswered = false;    // a job was answered with the trap: the page is replacing this worker

/** Answer `job` once. After a trap every answer is the trap's, whatever the job returned: it
 *  may have run on the broken instance. */
function answer(job, msg) {
  if (job.answered) return;
  job.answered = true;
  running.delete(job);
  if (trapped()) {
    msg = { ok: false, error: `the wasm module crashed (${describeTrap()})`, kind: KIND.trap };
    trapAnswered = true;
  }
  try {
    post({ id: job.id, ...msg });
  } catch (err) {
    // A result the structured clone cannot copy: the caller gets why, not silence.
    post({ id: job.id, ok: false, error: `${job.cmd}: the answer could not be sent to the page (${messageOf(err)})`, kind: KIND.error });
  }
}

// A trap outside any call the jobs await (e.g. a panic in a future the wasm-bindgen executor
// polls: its promise never settles): the jobs in progress fail with it.
const trapOutsideCalls = (err) => {
  if (!noteTrap(err)) return;
  for (const job of [...running]) answer(job, null);
};
self.addEventListener('error', (ev) => trapOutsideCalls(ev.error));
self.addEventListener('unhandledrejection', (ev) => trapOutsideCalls(ev.reason));

// ---------------------------------------------------------------- dispatch

// Commands run one after another (a run, a re-merge of every result, an edit and an export
// never interleave at their awaits); `cancel` and `init` answer at once.
let queue = Promise.resolve();

self.onmessage = (ev) => {
  const { id, cmd, args } = ev.data;
  if (cmd === CMD.cancel) { state.cancel = true; post({ id, ok: true, result: true }); return; }
  if (cmd === CMD.remergeAll) state.latestRemerge = id;
  const job = { id, cmd, answered: false };
  const work = async () => {
    // After a trap nothing runs on this instance: once a job was answered with it, the page
    // replaces the worker and sends the jobs that were waiting here to the new one; a trap no
    // job was answered with (outside any job) is this job's answer.
    if (trapped() && trapAnswered) return new Promise(() => {});
    running.add(job);
    if (trapped()) throw trapped();
    startJob();
    if (cmd === CMD.run && state.cancelFlag) Atomics.store(state.cancelFlag, 0, 0);
    if (cmd !== CMD.init) await state.ready;
    if (!isCommand(cmd)) throw failure(KIND.badInput, `unknown command ${cmd}`);
    return commands[cmd](args || {}, id);
  };
  const done = cmd === CMD.init ? work() : queue.then(work);
  // The chain only orders the jobs: each job's outcome, failure included, goes to its caller
  // just below, so the chain drops it (a failed job must not stop the ones after it).
  if (cmd !== CMD.init) queue = done.catch(() => {});
  done.then((result) => answer(job, { ok: true, result }), (err) => answer(job, failed(err)));
};
