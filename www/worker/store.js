// camsam's IndexedDB store (database `camsam`), used by the Web Worker (www/worker/) only:
//   embeddings  SAM image embeddings by `<weights SHA-256>:<image SHA-256>` (revisits skip the encoder)
//   results     one small record per finished image: name, seq (run order), size, method,
//               backend, edit count, per-image mIoU — listed when the page loads
//   labels      the same names' data: label ids, packed SAM masks, edits, the image and CAM
//               files — read one image at a time (review, re-merge, export)
//   session     key `run`: the settings, classes, backend and issues of the run the results
//               came from, for the report
// Results are written as each image finishes, so a reload (or a crash of the tab) keeps them
// until the next run replaces them or the user clears them.

const STORES = ['embeddings', 'results', 'labels', 'session'];
let db = null;

/** The one connection of this worker, opened (and upgraded) on first use. */
export function open() {
  db = db || new Promise((resolve, reject) => {
    const req = indexedDB.open('camsam', 2);
    req.onupgradeneeded = () => {
      for (const name of STORES) if (!req.result.objectStoreNames.contains(name)) req.result.createObjectStore(name);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => { db = null; reject(req.error); };
    req.onblocked = () => { db = null; reject(new Error('IndexedDB camsam: blocked by another tab holding an older version; close it and reload')); };
  });
  return db;
}

// A promise for a transaction's completion; `fill(stores)` queues its requests.
async function transact(names, mode, fill) {
  const d = await open();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(names, mode);
    let out;
    const stores = Object.fromEntries(names.map((n) => [n, tx.objectStore(n)]));
    const set = (v) => { out = v; };
    fill(stores, set);
    tx.oncomplete = () => resolve(out);
    tx.onerror = () => reject(tx.error || new Error(`IndexedDB ${names.join(', ')}: the transaction failed`));
    tx.onabort = () => reject(tx.error || new Error(`IndexedDB ${names.join(', ')}: the transaction was aborted (storage full?)`));
  });
}

function getOne(store, key) {
  return transact([store], 'readonly', (s, set) => {
    const q = s[store].get(key);
    q.onsuccess = () => set(q.result ?? null);
  });
}

// ---------------------------------------------------------------- embeddings

// A cache: when IndexedDB fails the encoder runs again, so a failure is a console warning and
// a miss (null) or `false` (not stored), not a failed job.

/** The embedding stored under `key`, or null (absent, or IndexedDB failed: warned). */
export const getEmbedding = (key) => getOne('embeddings', key).catch((err) => {
  console.warn(`camsam: the embedding cache could not be read (${err?.message || err}); the encoder runs again`);
  return null;
});
/** Store an embedding; resolves to whether it was stored (a failure is warned). */
export const putEmbedding = (key, value) => transact(['embeddings'], 'readwrite', (s) => s.embeddings.put(value, key)).then(() => true, (err) => {
  console.warn(`camsam: an embedding was not cached (${err?.message || err}); the next visit encodes the image again`);
  return false;
});

// ---------------------------------------------------------------- results

/** Store one finished image (its summary and its data) in one transaction. */
export function putResult(meta, data) {
  return transact(['results', 'labels'], 'readwrite', (s) => {
    s.results.put(meta, meta.name);
    s.labels.put(data, meta.name);
  });
}

/** The data of one image (null when absent). */
export const getResultData = (name) => getOne('labels', name);

/** Every stored summary, in run order. */
export async function listResults() {
  const all = await transact(['results'], 'readonly', (s, set) => {
    const q = s.results.getAll();
    q.onsuccess = () => set(q.result || []);
  });
  return all.sort((a, b) => a.seq - b.seq);
}

/** Forget every result and the run's session record (embeddings stay). */
export const clearResults = () => transact(['results', 'labels', 'session'], 'readwrite', (s) => {
  s.results.clear();
  s.labels.clear();
  s.session.clear();
});

// ---------------------------------------------------------------- session

export const getSession = () => getOne('session', 'run');
export const putSession = (value) => transact(['session'], 'readwrite', (s) => s.session.put(value, 'run'));
