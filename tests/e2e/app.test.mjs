// End-to-end tests of the browser app in headless Debian Chromium (playwright-core).
// Run: `bash www/build.sh && cd tests/e2e && npm ci && node --test` (tests/run.sh does this).
// Screenshots of the review view go to tests/e2e/artifacts/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  artifacts, sharedDir, startServer, launch, waitForStatus, writeZip, readZip, decodePng, camsamEval, tmpDir,
} from './lib.mjs';

const RUN_TIMEOUT_MS = 240_000;
let server;

before(async () => {
  fs.mkdirSync(artifacts, { recursive: true });
  server = await startServer();
});
after(() => server?.close());

/** Every request must go to the app's own origin (or be a blob:/data: URL it made itself). */
function assertSameOrigin(requests, origin) {
  const foreign = requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert.deepEqual(foreign, [], `requests to other origins: ${foreign.join(', ')}`);
  assert.ok(requests.some((u) => u.endsWith('.wasm')), 'the request log saw the wasm module (so it logs the worker too)');
}

async function download(page, testId) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testId).click()]);
  const file = path.join(tmpDir('dl'), dl.suggestedFilename());
  await dl.saveAs(file);
  return { name: dl.suggestedFilename(), bytes: fs.readFileSync(file) };
}

test('the demo opens ready: run, review, export', async () => {
  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    assert.match(await b.page.getByTestId('backend').textContent(), /^(webgpu|cpu)$/);
    await b.page.getByTestId('run').click();
    await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
    const before = Number(await b.page.getByTestId('miou-before').textContent());
    const afterM = Number(await b.page.getByTestId('miou-after').textContent());
    assert.ok(afterM > before + 5, `SEPL should improve the demo's CAM labels: before ${before}, after ${afterM}`);
    await b.page.screenshot({ path: path.join(artifacts, 'demo-review.png'), fullPage: true });
    const zip = await download(b.page, 'export');
    assert.equal(zip.name, 'camsam-labels.zip');
    const files = readZip(zip.bytes);
    for (const n of ['demo_cat', 'demo_street', 'demo_sky']) {
      const png = decodePng(files.get(`${n}.png`));
      assert.equal(png.colorType, 3, `${n}.png is a palette PNG`);
    }
    assert.ok(files.has('report.json'));
    assertSameOrigin(b.requests, server.origin);
  } finally {
    await b.close();
  }
});

test('SEPL on the shared fixtures: labels equal max_iou_imp2, mIoU equals camsam eval, a malformed file is named', async () => {
  const sepl = path.join(sharedDir(), 'fixtures/sepl');
  const all = fs.readFileSync(path.join(sepl, 'list.txt'), 'utf8').split('\n').filter(Boolean);
  const names = Array.from({ length: 20 }, (_, i) => all[Math.floor((i * all.length) / 20)]);
  const work = tmpDir('sepl');
  fs.writeFileSync(path.join(work, 'list.txt'), `${names.join('\n')}\n`);

  // masks.zip of <name>/<i>.png, plus masks for one extra name whose pseudo-label is corrupt.
  const entries = [];
  for (const n of [...names, 'zz_broken']) {
    const src = path.join(sepl, 'sam', n === 'zz_broken' ? names[0] : n);
    for (const f of fs.readdirSync(src)) entries.push([`${n}/${f}`, fs.readFileSync(path.join(src, f))]);
  }
  fs.writeFileSync(path.join(work, 'masks.zip'), writeZip(entries));
  fs.writeFileSync(path.join(work, 'zz_broken.png'), Buffer.from('this is not a PNG file'));

  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('cams-input').setInputFiles([...names.map((n) => path.join(sepl, 'pseudo', `${n}.png`)), path.join(work, 'zz_broken.png')]);
    await b.page.getByTestId('masks-input').setInputFiles(path.join(work, 'masks.zip'));
    await b.page.getByTestId('gt-input').setInputFiles(names.map((n) => path.join(sepl, 'gt', `${n}.png`)));
    await b.page.getByTestId('preset-select').selectOption('official-imp2');
    await b.page.getByTestId('run').click();
    const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
    assert.match(status, /20 image\(s\) refined/);
    assert.match(status, /error/);
    const issues = await b.page.getByTestId('issues').textContent();
    assert.match(issues, /zz_broken\.png: not a readable PNG/, `issues list: ${issues}`);
    await b.page.screenshot({ path: path.join(artifacts, 'sepl-review.png'), fullPage: true });

    const zip = await download(b.page, 'export');
    assert.equal(zip.name, 'camsam-labels.zip');
    const files = readZip(zip.bytes);
    const labels = [...files.keys()].filter((k) => k.endsWith('.png')).sort();
    assert.deepEqual(labels, names.map((n) => `${n}.png`).sort());
    const out = path.join(work, 'exported');
    fs.mkdirSync(out);
    for (const n of names) {
      const got = decodePng(files.get(`${n}.png`));
      const want = decodePng(fs.readFileSync(path.join(sepl, 'expected/max_iou_imp2', `${n}.png`)));
      assert.equal(`${got.width}x${got.height}`, `${want.width}x${want.height}`, `${n}: size`);
      let diff = 0, first = -1;
      for (let i = 0; i < want.data.length; i++) if (got.data[i] !== want.data[i]) { diff++; if (first < 0) first = i; }
      assert.equal(diff, 0, `${n}: ${diff} pixels differ from max_iou_imp2; first at (${first % want.width}, ${Math.floor(first / want.width)}): ${got.data[first]} vs ${want.data[first]}`);
      fs.writeFileSync(path.join(out, `${n}.png`), files.get(`${n}.png`));
    }
    const cli = camsamEval(out, path.join(sepl, 'gt'), path.join(work, 'list.txt'));
    const shown = await b.page.getByTestId('miou-after').textContent();
    assert.equal(shown, (100 * cli.miou).toFixed(2), `page miou-after ${shown} vs camsam eval ${cli.miou}`);
    const cliBefore = camsamEval(path.join(sepl, 'pseudo'), path.join(sepl, 'gt'), path.join(work, 'list.txt'));
    assert.equal(await b.page.getByTestId('miou-before').textContent(), (100 * cliBefore.miou).toFixed(2));
    assertSameOrigin(b.requests, server.origin);
  } finally {
    await b.close();
  }
});
