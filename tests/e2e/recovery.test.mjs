// End-to-end test of the page after a wasm trap (a Rust panic: `unreachable`, a
// WebAssembly.RuntimeError): the instance cannot be trusted any more, so the page replaces its
// worker with a fresh one (www/ui/worker-client.js), says so, keeps the finished results and
// fails only the job that trapped.
// Run: `bash www/build.sh && cd tests/e2e && npm ci && node --test --test-concurrency=1 recovery.test.mjs`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, waitForStatus, download } from './lib.mjs';

const RUN_TIMEOUT_MS = 240_000;
let server;

before(async () => { server = await startServer(); });
after(() => server?.close());

const workerOf = (page) => page.workers().find((w) => /\/www\/worker\/main\.js$/.test(w.url()));

test('a wasm trap in the middle of a run: the worker is replaced and says so, the finished results stay, only the run fails; the next run works', async () => {
  const b = await launch();
  try {
    // `?wasm-trap-after=2`: once two images of a run are done, the worker makes a wasm call
    // that panics for real (www/worker/test-hooks.js).
    await b.page.goto(`${server.origin}/?wasm-trap-after=2`);
    await waitForStatus(b.page, b.consoleLines, /ready: demo loaded/, 60_000);
    const first = workerOf(b.page);
    assert.ok(first, 'the page\'s worker');
    await first.evaluate(() => { self.__camsamFirstWorker = true; });

    await b.page.getByTestId('run').click();
    // A command sent while the run works waits behind it in the worker's queue: after the trap
    // it goes to the fresh worker and is answered there (report.json of the kept results).
    const report = await download(b.page, 'export-report');
    const status = await waitForStatus(b.page, b.consoleLines, /reloaded|^done/, RUN_TIMEOUT_MS);
    assert.match(status, /^the wasm module crashed \(RuntimeError: unreachable — panicked at .*\); reloaded — finished results are kept \(2 image\(s\)\)$/,
      `the status says the module crashed and was reloaded\nconsole:\n${b.consoleLines.join('\n')}`);
    // The panic's message reached the console (the library's panic hook), nothing was swallowed.
    assert.ok(b.consoleLines.some((l) => /^error: panicked at /.test(l)), `the panic is in the console\nconsole:\n${b.consoleLines.join('\n')}`);

    // A fresh worker (the old one is gone), holding the two images finished before the trap.
    const fresh = workerOf(b.page);
    assert.ok(fresh, 'a worker after the trap');
    assert.equal(await fresh.evaluate(() => self.__camsamFirstWorker === true), false, 'the worker after the trap is a new one');
    assert.deepEqual(await b.page.locator('#image-select option').allTextContents(), ['demo_cat', 'demo_sky']);
    assert.match(await b.page.getByTestId('results').textContent(), /^2 result\(s\) kept in this browser/);
    assert.deepEqual(JSON.parse(report.bytes.toString('utf8')).images.map((i) => i.name), ['demo_cat', 'demo_sky'], 'the report queued behind the run, answered by the fresh worker');
    await b.page.waitForFunction(() => document.querySelector('[data-testid=review-info]').textContent.startsWith('demo_cat:'), null, { timeout: 30_000 });
    assert.notEqual(await b.page.getByTestId('miou-after').textContent(), '–', 'the metrics of the kept results');
    assert.equal(await b.page.getByTestId('run').isDisabled(), false, 'Run is enabled again');
    // It was given the loaded files again: the plan is the demo's.
    assert.equal(await b.page.getByTestId('summary').textContent(), '3 image name(s), 3 ready to refine (demo)');

    // The hook acts once: a new run on the fresh worker refines the whole demo.
    await b.page.getByTestId('run').click();
    const again = await waitForStatus(b.page, b.consoleLines, /^done/, RUN_TIMEOUT_MS);
    assert.match(again, /^done: 3 image\(s\) refined$/);
    const before = Number(await b.page.getByTestId('miou-before').textContent());
    const afterM = Number(await b.page.getByTestId('miou-after').textContent());
    assert.ok(afterM > before + 5, `SEPL should improve the demo's CAM labels: before ${before}, after ${afterM}`);
    assert.ok(!b.consoleLines.some((l) => l.startsWith('pageerror')), `no page error\nconsole:\n${b.consoleLines.join('\n')}`);
  } finally {
    await b.close();
  }
});
