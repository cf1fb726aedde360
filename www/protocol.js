// The protocol between the page (www/app.js, www/ui/) and its Web Worker (www/worker/): every
// command with the types of its arguments and result, the events the worker sends unasked, and
// the error kinds. Both sides import the names from here: a misspelt name (`CMD.addFile`)
// throws, and the page's `call()` and the worker's dispatcher refuse a command not listed.
//
// Messages:
//   page → worker   {id, cmd, args}                 cmd: one of CMD, args: the command's *Args
//   worker → page   {id, ok: true, result}          result: the command's *Result
//                   {id, ok: false, error, kind}    error: the message, kind: one of KIND
//                   {event, ...}                    one of EVENT, unasked (no id)
// The worker runs commands one at a time in the order they arrive; `init` and `cancel` answer
// at once.

// A table whose unknown names throw (`CMD.addFile` is a TypeError, not `undefined`).
const strict = (what, table) => new Proxy(Object.freeze(table), {
  get(target, key) {
    if (typeof key === 'string' && !(key in target)) throw new TypeError(`${what}.${key}: not in www/protocol.js`);
    return target[key];
  },
});

/** The commands, by name. @enum {string} */
export const CMD = strict('CMD', {
  /** Start the wasm module, restore the results of an earlier visit. InitArgs → InitResult */
  init: 'init',
  /** Stop the run in progress (answers at once, outside the queue). → true */
  cancel: 'cancel',
  /** The class names (id = position). ClassesArgs → Plan */
  classes: 'classes',
  /** Files chosen or dropped, of one kind. AddFilesArgs → Plan */
  addFiles: 'addFiles',
  /** Forget the loaded files and the finished results. → Plan */
  clear: 'clear',
  /** Forget the finished results (IndexedDB) only. → Plan */
  clearResults: 'clearResults',
  /** The bundled demo replaces the loaded files. LoadDemoArgs → Plan */
  loadDemo: 'loadDemo',
  /** What Run would do with the loaded files. → Plan */
  plan: 'plan',
  /** Refine every runnable image; results are stored as each finishes. RunArgs → RunResult */
  run: 'run',
  /** One stored result for the review. NameArgs → View */
  view: 'view',
  /** One class's CAM of a result, normalised to 0–1. CamArgs → Float32Array | null */
  cam: 'cam',
  /** An edit of the result under review (or undo/redo). EditArgs → EditResult */
  edit: 'edit',
  /** The smallest SAM mask under a pixel. MaskAtArgs → number (-1: none) */
  maskAt: 'maskAt',
  /** A medical slice under another window, not kept (live preview). WindowArgs → WindowPreview */
  windowPreview: 'windowPreview',
  /** The window of a medical slice's file: its slices' images change (SAM embeds them again). WindowArgs → WindowResult */
  setWindow: 'setWindow',
  /** One result again with new settings (its label ids). RemergeOneArgs → Uint8Array | null */
  remergeOne: 'remergeOne',
  /** Every result again with new settings; a later remergeAll supersedes it. RemergeAllArgs → Metrics | null | {superseded: true} */
  remergeAll: 'remergeAll',
  /** The labels as a zip (report.json included). ExportArgs → Uint8Array */
  exportZip: 'exportZip',
  /** report.json of the stored results, parsed. → object */
  report: 'report',
  /** SEPL's t1 × t2 over the results with ground truth. SweepArgs → SweepResult */
  sweep: 'sweep',
  /** The dataset metrics of the stored results as they are. → Metrics | null */
  metrics: 'metrics',
  /** Load SAM weights (kept in the Cache API when `cache`). LoadWeightsArgs → WeightsInfo */
  loadWeights: 'loadWeights',
  /** The weights kept in this browser, if any. → WeightsInfo | null */
  restoreWeights: 'restoreWeights',
  /** The point/box tool: SAM on one prompt, the mask given a class. PromptArgs → PromptResult */
  prompt: 'prompt',
  /** Segment-everything options. AmgArgs → true */
  amg: 'amg',
  /** Model speed in this browser. BenchArgs → BenchResult */
  bench: 'bench',
  /** The worker's wasm memory. → MemorySample */
  memory: 'memory',
});

const NAMES = new Set(Object.values(CMD));

/** Whether `cmd` is a command of this protocol. */
export const isCommand = (cmd) => NAMES.has(cmd);

/** The events the worker sends unasked, by name. @enum {string} */
export const EVENT = strict('EVENT', {
  /** Progress of a run: Progress */
  progress: 'progress',
  /** The backend changed (e.g. the GPU was lost and the run continues on the CPU): BackendInfo */
  backend: 'backend',
  /** Test hook `?memory-every=N`: MemorySample every N images of a run */
  memory: 'memory',
});

/** What went wrong, as a code the page decides on (never on message text). @enum {string} */
export const KIND = strict('KIND', {
  /** The user cancelled (not a failure). */
  cancelled: 'cancelled',
  /** A file or a setting the library cannot use (the message says why), or a missing input. */
  badInput: 'bad-input',
  /** Reading a file failed. */
  io: 'io',
  /** The model (weights, inference) failed. */
  model: 'model',
  /** Writing an output failed. */
  encode: 'encode',
  /** A WebGPU error (not a lost device). */
  gpu: 'gpu',
  /** The WebGPU device was lost; the model must be loaded again (a run falls back to the CPU). */
  gpuLost: 'gpu-lost',
  /** The model is busy with another request, or a run is in progress. */
  busy: 'busy',
  /** The browser's storage (IndexedDB) failed: full, blocked, or a stored result unreadable. */
  storage: 'storage',
  /** This browser lacks a WebAssembly feature the library is built with (SIMD). */
  unsupported: 'unsupported',
  /** The wasm module trapped (a Rust panic): the worker was replaced by a fresh one, the job failed. */
  trap: 'wasm-trap',
  /** Anything else (a bug: the message says what). */
  error: 'error',
});

// ---------------------------------------------------------------- types

/**
 * The page's settings: the method selector and the sliders. Their defaults come from the
 * library (wasm `defaultSettings()`, via InitResult.defaults): they are written only in Rust.
 * @typedef {object} PageSettings
 * @property {string} preset  a SEPL preset (`official-imp2`, `official-imp`, `official`, `paper`) or another refiner (`cpm`, `pamr`, `crf`, `cpm+sepl`)
 * @property {number} t1      SEPL's t1
 * @property {number} t2      SEPL's t2
 * @property {'and'|'or'} combine  SEPL paper's combination of the two tests
 * @property {number} bg      CAM background threshold
 */

/**
 * PageSettings with the segment-everything default, as the page's controls show them.
 * @typedef {PageSettings & {pointsPerSide: number}} PageDefaults
 */

/** @typedef {{file: string, reason: string}} Issue */

/**
 * @typedef {object} Plan
 * @property {number} images    image names found
 * @property {number} runnable  names that can be refined with the current method
 * @property {number} scratch   of those, images with no CAM and no pseudo-label (labelled from scratch, starting as background)
 * @property {string[]} review  what the image selector lists: the stored results and the images labelled from scratch, in load order
 * @property {boolean} demo     the demo is loaded
 * @property {boolean} weights  SAM weights are loaded
 * @property {Issue[]} issues   files and names that cannot be used, and why
 */

/**
 * @typedef {object} InitArgs
 * @property {'auto'|'webgpu'|'cpu'} backend
 * @property {SharedArrayBuffer|null} [cancelFlag]  Int32 flag set by Cancel (cross-origin isolated pages)
 * @property {string[]} [classes]     the class names (default: VOC's, or those of the restored run)
 * @property {number} [loseGpuAfter]  test hook `?lose-gpu-after=K`: destroy the WebGPU device after K prompt batches
 * @property {number} [memoryEvery]   test hook `?memory-every=N`: a memory event every N images
 * @property {number} [threads]       `?threads=N`: the CPU model's threads (default: the browser's cores, up to 8; 1 where the page is not cross-origin isolated)
 * @property {boolean} [simd128]      `?simd=128`: the SIMD128 build even where the browser has relaxed SIMD (to measure the fallback)
 * @property {number} [wasmTrapAfter] test hook `?wasm-trap-after=K`: a real wasm trap once K images of a run are done
 */

/**
 * @typedef {object} BackendInfo
 * @property {'webgpu'|'cpu'} backend
 * @property {string} adapter  the WebGPU adapter ('' when none)
 * @property {string} [notice] why the CPU runs when WebGPU was wanted
 */

/**
 * @typedef {object} Restored  results of an earlier visit
 * @property {string[]} names
 * @property {boolean} fromCams
 * @property {Metrics|null} metrics
 * @property {PageSettings} settings  those of the run that made them
 * @property {string[]} classes
 */

/**
 * @typedef {BackendInfo & {version: string, classes: string[], defaults: PageDefaults, restored: Restored|null, storage: string}} InitResult
 * `storage`: why finished results are not kept ('' when they are).
 */

/** @typedef {{classes: string[]}} ClassesArgs */
/** @typedef {'images'|'cams'|'masks'|'gt'} FileKind */
/** @typedef {{kind: FileKind, files: {file: Blob, path: string}[]}} AddFilesArgs */
/** @typedef {{unlessFiles?: boolean}} LoadDemoArgs  `unlessFiles`: only when no file was given yet */
/** @typedef {{settings: PageSettings}} RunArgs */

/**
 * @typedef {object} RunResult
 * @property {number} done   results stored
 * @property {number} failed images that failed (listed in plan.issues)
 * @property {number} total
 * @property {boolean} cancelled
 * @property {Metrics|null} metrics
 * @property {Plan} plan
 * @property {string[]} names  the stored results, in run order
 * @property {boolean} fromCams
 * @property {'webgpu'|'cpu'} backend
 * @property {string} notice   e.g. the GPU fell back to the CPU
 */

/** @typedef {{name: string}} NameArgs */

/**
 * @typedef {object} View
 * @property {string} name
 * @property {number} width
 * @property {number} height
 * @property {Uint8Array} pseudo   class ids, row-major
 * @property {Uint8Array} refined
 * @property {Uint8Array|null} gt
 * @property {Uint8Array[]} masks  one byte per pixel each
 * @property {Blob|null} image
 * @property {number[]} cams       the classes that have a CAM
 * @property {WindowInfo|null} window  the window control of a gray medical slice (null: none)
 * @property {number} edits
 * @property {number} redo
 */

/** @typedef {{name: string, cls: number}} CamArgs */

/**
 * An edit, replayed by the library (`Refined.edited`): accept a mask as a class, reject it,
 * paint, or undo/redo.
 * @typedef {{op: 'assign', mask: number, cls: number} | {op: 'reject', mask: number} | {op: 'brush', points: number[][], radius: number, cls: number} | {op: 'undo'} | {op: 'redo'}} EditOp
 */
/** @typedef {{name: string, op: EditOp}} EditArgs */
/** @typedef {{refined: Uint8Array, edits: number, redo: number, masks?: Uint8Array[]}} EditResult */
/** @typedef {{name: string, x: number, y: number}} MaskAtArgs */
/**
 * The window of a gray medical slice's file.
 * @typedef {object} WindowInfo
 * @property {string} window   `file`, `minmax` or `C,W` (the library's window syntax)
 * @property {number[]} numbers  its [centre, width] (min-max: the range's middle and extent)
 * @property {number[]|null} fileWindow  the DICOM's own [centre, width]
 * @property {number[]|null} range  the file's [min, max] value
 * @property {{name: string, center: number, width: number}[]} presets  the library's CT presets
 * @property {string} source   the file
 */
/** @typedef {{name: string, window: string}} WindowArgs  window: `file`, `minmax`, a preset name or `C,W` */
/** @typedef {{rgba: Uint8Array, width: number, height: number}} WindowPreview */
/** @typedef {{image: Blob, window: WindowInfo}} WindowResult */
/** @typedef {{name: string, settings: PageSettings}} RemergeOneArgs */
/** @typedef {{settings: PageSettings}} RemergeAllArgs */
/** @typedef {{gray: boolean, overlays: boolean}} ExportArgs */
/** @typedef {{settings: PageSettings, t1: string, t2: string}} SweepArgs  ranges `A:B:STEP` or `a,b,c` */
/** @typedef {{result: object, heatmap: {cells: object[]}, png: Uint8Array}} SweepResult */

/**
 * @typedef {object} Metrics
 * @property {object} before   the library's confusion summary ({miou, per_class_iou, …})
 * @property {object} after
 * @property {{name: string, before: number, after: number, delta: number}[]} images  worst first
 * @property {string[]} classes
 */

/** @typedef {{file: Blob, name: string, cache?: boolean}} LoadWeightsArgs */
/**
 * @typedef {BackendInfo & {name: string, detail: string, cacheWarning: string}} WeightsInfo
 * `cacheWarning`: why the weights are not kept in this browser ('' when they are).
 */
/** @typedef {{name: string, prompt: {points?: number[][], labels?: number[], box?: number[]}, cls: number}} PromptArgs */
/** @typedef {EditResult & {masks: Uint8Array[]}} PromptResult */
/** @typedef {{options: {points_per_side: number}}} AmgArgs */
/** @typedef {{pointsPerSide?: number, decoderBatch?: number, profile?: boolean}} BenchArgs */
/** @typedef {{lines: string[]} & Record<string, unknown>} BenchResult */
/** @typedef {{done: number|null, wasm_bytes: number|null}} MemorySample */
/** @typedef {{done?: number, total?: number, name?: string, eta_s?: number, sub?: number}} Progress */
