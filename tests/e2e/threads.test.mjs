// The page's CPU model on every core: served cross-origin isolated (www/serve.py) it runs with
// helper workers; served as a plain static host (no COOP/COEP) it runs on one thread and says
// why. Both give the same segment-everything masks and the same SEPL labels, pixel for pixel
// (fixture weights, WebGPU off, 4×4 points, the generator's filters at 0 so masks are merged).
// Chromium has relaxed SIMD, so those runs use the relaxed-SIMD build (www/worker/library.js);
// a third run asks for the SIMD128 build (`?simd=128`, what browsers without relaxed SIMD get),
// whose products round differently (a multiply, then an add): its labels must agree all but
// a sliver of pixels.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { sharedDir, startServer, launch, waitForStatus, readZip, decodePng, tmpDir, camFromGt, download } from './lib.mjs';

const RUN_TIMEOUT_MS = 300_000;
const POINTS = 4;

/** Bench (threads, masks) and an everything-mode SEPL run's export on a page served so. */
async function runPage({ isolated, threads, simd }, work, name) {
  const server = await startServer({ isolated });
  const b = await launch({ webgpu: false });
  try {
    const q = `nodemo&bench&backend=cpu&points=${POINTS}&decoder-batch=4&iou=0&stability=0${threads ? `&threads=${threads}` : ''}${simd ? `&simd=${simd}` : ''}`;
    await b.page.goto(`${server.origin}/?${q}`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('weights-input').setInputFiles(path.join(sharedDir(), 'fixtures/sam/weights/mobile_sam_random.safetensors'));
    await waitForStatus(b.page, b.consoleLines, /weights loaded/, 120_000);
    const notice = await b.page.getByTestId('backend-notice').textContent();
    await b.page.getByTestId('bench-run').click();
    await b.page.waitForFunction(() => document.querySelector('[data-testid=bench]').dataset.result || /^error/.test(document.querySelector('[data-testid=bench]').textContent), null, { timeout: RUN_TIMEOUT_MS });
    const bench = JSON.parse(await b.page.getByTestId('bench').getAttribute('data-result') || 'null');
    assert.ok(bench, `bench: ${await b.page.getByTestId('bench').textContent()}`);
    console.log(bench.lines.map((l) => `# ${isolated ? 'isolated' : 'not isolated'}${simd ? `, simd=${simd}` : ''}: ${l}`).join('\n'));
    await b.page.getByTestId('images-input').setInputFiles(path.join(work, 'images', `${name}.png`));
    await b.page.getByTestId('cams-input').setInputFiles(path.join(work, 'cams', `${name}_1.png`));
    await b.page.getByTestId('preset-select').selectOption('official-imp2');
    await b.page.waitForFunction(() => !document.querySelector('[data-testid=run]').disabled);
    await b.page.getByTestId('run').click();
    const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
    assert.match(status, /1 image\(s\) refined/, `${status}; issues: ${await b.page.getByTestId('issues').textContent()}`);
    await b.page.locator('#export-gray').check();
    const zip = readZip((await download(b.page, 'export')).bytes);
    return { bench, notice, label: decodePng(zip.get(`${name}.png`)), report: JSON.parse(zip.get('report.json')) };
  } finally {
    await b.close();
    server.close();
  }
}

test('the CPU model on helper workers where the page is cross-origin isolated, on one thread where not: the same masks and labels', async () => {
  const crops = path.join(sharedDir(), 'data/voc_val_crops');
  const name = '2007_000033';
  const work = tmpDir('threads');
  for (const d of ['images', 'cams']) fs.mkdirSync(path.join(work, d), { recursive: true });
  const gt = decodePng(fs.readFileSync(path.join(crops, 'gt', `${name}.png`)));
  fs.copyFileSync(path.join(crops, 'images', `${name}.png`), path.join(work, 'images', `${name}.png`));
  fs.writeFileSync(path.join(work, 'cams', `${name}_1.png`), camFromGt(gt, 1));

  // Two threads even on a one-core machine, so the helpers are always exercised.
  const multi = await runPage({ isolated: true, threads: 2 }, work, name);
  const single = await runPage({ isolated: false }, work, name);
  const plain = await runPage({ isolated: true, threads: 2, simd: '128' }, work, name);

  assert.equal(multi.bench.threads, 2, multi.bench.lines.join('\n'));
  assert.equal(multi.bench.isolated, true);
  assert.match(multi.bench.model_backend, /2 threads/);
  assert.equal(single.bench.threads, 1, single.bench.lines.join('\n'));
  assert.equal(single.bench.isolated, false);
  assert.match(single.notice, /one thread: the page is not cross-origin isolated/);

  assert.equal(multi.bench.masks, single.bench.masks, 'the bench\'s segment-everything kept as many masks');
  assert.ok(multi.report.images[0].sam_masks > 0, 'segment-everything kept masks, so the merge is tested');
  assert.equal(multi.report.images[0].sam_masks, single.report.images[0].sam_masks);
  const [a, b] = [multi.label, single.label];
  assert.equal(`${a.width}x${a.height}`, `${b.width}x${b.height}`);
  let diff = 0, first = -1;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) { diff++; if (first < 0) first = i; }
  assert.equal(diff, 0, `${diff} pixels differ between 2 threads and 1 (first at x ${first % a.width}, y ${Math.floor(first / a.width)}: ${a.data[first]} vs ${b.data[first]})`);

  assert.match(multi.bench.simd, /relaxed-simd/, 'Chromium has relaxed SIMD: the page picks that build');
  assert.equal(plain.bench.simd, 'simd128', '?simd=128 runs the SIMD128 build');
  assert.equal(plain.bench.threads, 2);
  const c = plain.label;
  assert.equal(`${c.width}x${c.height}`, `${a.width}x${a.height}`);
  let builds = 0;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== c.data[i]) builds++;
  console.log(`# pixels differing between the relaxed-SIMD and the SIMD128 builds: ${builds} of ${a.data.length}`);
  assert.ok(builds <= a.data.length / 200, `${builds} of ${a.data.length} pixels differ between the relaxed-SIMD and the SIMD128 builds (at most 0.5 % may)`);
});
