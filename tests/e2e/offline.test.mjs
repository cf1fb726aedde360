// End-to-end tests of the built site off the network and on a plain static host (README,
// "Hosting the built site"): the service worker (www/sw.js) keeps the app shell, so after one
// visit the page opens and runs the demo with the server gone and the browser offline; a host
// that sends no special header still runs the page, online only.
// Run: `bash www/build.sh && cd tests/e2e && npm ci && node --test --test-concurrency=1 offline.test.mjs`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { repo, startServer, launch, waitForStatus } from './lib.mjs';

const RUN_TIMEOUT_MS = 240_000;

/** Run the loaded demo and check it as the demo test of app.test.mjs does. */
async function runDemo(b) {
  assert.equal(await b.page.getByTestId('summary').textContent(), '3 image name(s), 3 ready to refine (demo)');
  await b.page.getByTestId('run').click();
  const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
  assert.match(status, /^done: 3 image\(s\) refined/);
  const before = Number(await b.page.getByTestId('miou-before').textContent());
  const after = Number(await b.page.getByTestId('miou-after').textContent());
  assert.ok(after > before + 5, `SEPL should improve the demo's CAM labels: before ${before}, after ${after}`);
}

/** Resolves once nothing answers at `origin` any more. */
async function gone(origin) {
  for (let i = 0; i < 100; i++) {
    try { await fetch(origin, { signal: AbortSignal.timeout(1000) }); } catch { return; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${origin} still answers after the server was stopped`);
}

test('offline after one visit: with the server stopped and the browser offline, a reload opens the page from the service worker and runs the demo; nothing reaches the network', async () => {
  const server = await startServer();
  let serverUp = true;
  const b = await launch();
  try {
    // First visit: the page registers www/sw.js once start-up is over; it copies the shell.
    await b.page.goto(`${server.origin}/`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    const reg = await b.page.evaluate(() => Promise.race([
      navigator.serviceWorker.ready.then((r) => ({ scope: r.scope, state: r.active.state })),
      new Promise((resolve) => setTimeout(() => resolve(null), 30_000)),
    ]));
    assert.ok(reg, `no active service worker 30 s after start-up\nconsole:\n${b.consoleLines.join('\n')}`);
    assert.equal(reg.scope, `${server.origin}/`, 'the service worker controls the app\'s root, where index.html is');

    // Every same-origin file the first visit loaded is in the copy (the navigation as the root).
    const firstVisit = b.requests.filter((u) => u.startsWith(`${server.origin}/`))
      .map((u) => new URL(u)).map((u) => (u.pathname === '/index.html' ? '/' : u.pathname))
      .filter((p) => p !== '/www/sw.js');
    const copied = await b.page.evaluate(async () => {
      const urls = [];
      for (const name of (await caches.keys()).filter((k) => k.startsWith('camsam-shell-'))) {
        for (const r of await (await caches.open(name)).keys()) urls.push(new URL(r.url).pathname);
      }
      return urls;
    });
    const missing = [...new Set(firstVisit)].filter((p) => !copied.includes(p));
    assert.deepEqual(missing, [], `files the page loaded but the service worker does not keep (add them to SHELL in www/sw.js); kept: ${copied.join(', ')}`);
    for (const build of ['/pkg/camsam_bg.wasm', '/pkg/camsam_relaxed_bg.wasm']) {
      assert.ok(copied.includes(build), `both builds of the wasm module are kept (${build}): ${copied.join(', ')}`);
    }

    // A second visit while online: the page (and its worker) are controlled from the start.
    await b.page.reload();
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    assert.ok(await b.page.evaluate(() => !!navigator.serviceWorker.controller), 'the page is controlled by the service worker after a reload');

    // Really offline: the server is stopped and the browser has no network.
    server.close();
    serverUp = false;
    await gone(server.origin);
    await b.context.setOffline(true);
    const offline = [];
    b.context.on('request', (r) => offline.push(r));

    await b.page.reload();
    await waitForStatus(b.page, b.consoleLines, /ready: demo loaded/, 60_000);
    assert.ok(await b.page.evaluate(() => self.crossOriginIsolated), 'the kept page keeps its COOP/COEP headers (cross-origin isolated offline too)');
    await runDemo(b);

    // Nothing reached the network: everything the page and its worker asked for was answered
    // by the service worker; the worker's own attempts to refresh its copy all failed.
    const fetched = offline.filter((r) => /^https?:/.test(r.url()));
    assert.ok(fetched.some((r) => /\/pkg\/camsam(_relaxed)?_bg\.wasm$/.test(r.url()) && !r.serviceWorker()), 'the request log saw the wasm module (so it logs the Web Worker too)');
    const reached = [];
    for (const r of fetched) {
      const res = await r.response();
      if (r.serviceWorker()) {
        if (res) reached.push(`${r.url()} (by the service worker: ${res.status()})`);
      } else if (!res || !res.fromServiceWorker()) {
        reached.push(`${r.url()} (${res ? `${res.status()} from the network` : `failed: ${r.failure()?.errorText}`})`);
      }
    }
    assert.deepEqual(reached, [], 'requests that were not answered by the service worker while offline');
  } finally {
    await b.close();
    if (serverUp) server.close();
  }
});

/** A plain static server (`python3 -m http.server`): MIME types only, no CSP, COOP/COEP or
 *  Service-Worker-Allowed. */
async function startPlainServer() {
  const proc = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', repo], { stdio: ['ignore', 'pipe', 'ignore'] });
  const origin = await new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = /port (\d+)/.exec(buf);
      if (m) resolve(`http://127.0.0.1:${m[1]}`);
    });
    proc.on('exit', (code) => reject(new Error(`python3 -m http.server exited with ${code}`)));
    setTimeout(() => reject(new Error('python3 -m http.server did not start within 20 s')), 20000);
  });
  return { origin, close: () => proc.kill() };
}

test('a plain static host (no special headers): the demo runs; without Service-Worker-Allowed there is no offline copy, only a console warning', async () => {
  const server = await startPlainServer();
  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/`);
    await waitForStatus(b.page, b.consoleLines, /ready: demo loaded/, 60_000);
    assert.equal(await b.page.evaluate(() => self.crossOriginIsolated), false, 'no COOP/COEP: not cross-origin isolated');
    await runDemo(b);
    const deadline = Date.now() + 10_000;
    while (!b.consoleLines.some((l) => /no offline copy of the app/.test(l)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(b.consoleLines.some((l) => /^warning: camsam: no offline copy of the app .*Service-Worker-Allowed/.test(l)), `the failed registration is a console warning\nconsole:\n${b.consoleLines.join('\n')}`);
    assert.equal(await b.page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).length), 0, 'no service worker registered');
    assert.ok(!b.consoleLines.some((l) => l.startsWith('pageerror')), `no page error\nconsole:\n${b.consoleLines.join('\n')}`);
  } finally {
    await b.close();
    server.close();
  }
});
