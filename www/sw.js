// camsam's service worker: keeps a copy of the app shell (index.html, www/, pkg/) so that after
// one visit the page opens and runs with no network. Registered by www/app.js with the app's
// root as its scope, which a worker script in www/ may only claim when the host sends
// `Service-Worker-Allowed` for it (README, "Hosting the built site").
//
// Network first, the copy as the fallback: while the host answers, every shell file comes from
// it (revalidated: `cache: 'no-cache'`) and replaces its copy, so a new build or an edited
// www/ file is used at once, exactly as without this worker; only when the network fails does
// the copy answer. (Cache-first would open faster but could pair a new pkg/camsam.js with an
// old pkg/camsam_bg.wasm, which do not link.) Only same-origin GETs of the shell files below
// are handled; nothing else is cached, and the user's files never go over the network anyway.
// The Cache API entry of the weights (www/worker/model.js, 'camsam-weights-v1') is not touched.

// Bump when the list or the way it is cached changes: activation deletes the other shell caches.
const CACHE = 'camsam-shell-v5';
// The app's root: the folder of index.html, one up from this file (the layout is fixed).
const ROOT = new URL('../', self.location.href);
// Every file the page loads (tests/e2e/offline.test.mjs fails when the page requests a
// same-origin file that is not here). The root itself stands for index.html.
const SHELL = [
  '',
  'www/style.css',
  'www/protocol.js',
  // the page's modules (www/app.js and what it imports)
  'www/app.js',
  'www/ui/bench.js',
  'www/ui/classes.js',
  'www/ui/dom.js',
  'www/ui/export-panel.js',
  'www/ui/inputs.js',
  'www/ui/measure.js',
  'www/ui/review.js',
  'www/ui/run-panel.js',
  'www/ui/state.js',
  'www/ui/window.js',
  'www/ui/worker-client.js',
  // the Web Worker's modules (www/worker/main.js and what it imports)
  'www/worker/main.js',
  'www/worker/bench.js',
  'www/worker/export.js',
  'www/worker/files.js',
  'www/worker/helper.js',
  'www/worker/library.js',
  'www/worker/medical.js',
  'www/worker/model.js',
  'www/worker/pool.js',
  'www/worker/results.js',
  'www/worker/review.js',
  'www/worker/run.js',
  'www/worker/settings.js',
  'www/worker/state.js',
  'www/worker/store.js',
  'www/worker/test-hooks.js',
  'www/worker/wasm.js',
  'pkg/camsam.js',
  'pkg/camsam_bg.wasm', // wasm-bindgen's name for the crate's module: <crate>_bg.wasm
  'pkg/camsam_relaxed.js', // the relaxed-SIMD build (www/build.sh, www/worker/library.js)
  'pkg/camsam_relaxed_bg.wasm',
].map((p) => new URL(p, ROOT).href);

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await Promise.all(SHELL.map(async (url) => {
      const res = await fetch(url, { cache: 'no-cache' });
      if (!keepable(res)) throw new Error(`camsam offline copy: ${url} answered ${res.status}${res.redirected ? ' (redirected)' : ''}`);
      await cache.put(url, res);
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('camsam-shell-') && key !== CACHE) await caches.delete(key);
    }
    // Control the page that registered this worker at once: its next load works offline.
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== ROOT.origin) return;
  let key;
  if (req.mode === 'navigate') {
    // The page itself, with any query (?nodemo, ?bench, …): one copy of index.html.
    if (url.pathname !== ROOT.pathname && url.pathname !== `${ROOT.pathname}index.html`) return;
    key = ROOT.href;
  } else {
    if (url.search || !SHELL.includes(url.href)) return;
    key = url.href;
  }
  event.respondWith(networkFirst(event, req, key));
});

async function networkFirst(event, req, key) {
  let res;
  try {
    // A navigation request cannot be re-made with options; its cache mode is the browser's.
    res = await fetch(req.mode === 'navigate' ? req : new Request(req, { cache: 'no-cache' }));
  } catch (err) {
    const copy = await caches.match(key, { cacheName: CACHE });
    if (copy) return copy;
    throw err;
  }
  if (keepable(res)) {
    const copy = res.clone();
    // The answer goes to the page either way; a copy that could not be refreshed (storage
    // full) leaves the older one, which is said here.
    event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)).catch((err) => {
      console.warn(`camsam offline copy: ${key} not refreshed (${err && err.message})`);
    }));
  }
  return res;
}

// A whole, same-origin, un-redirected answer (a redirected one cannot answer a navigation).
const keepable = (res) => res.ok && res.status === 200 && res.type === 'basic' && !res.redirected;
