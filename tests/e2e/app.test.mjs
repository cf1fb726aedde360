// End-to-end tests of the browser app in headless Debian Chromium (playwright-core).
// Run: `bash www/build.sh && cd tests/e2e && npm ci && node --test` (tests/run.sh does this).
// Screenshots of the review view go to tests/e2e/screenshots/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  artifacts, screenshots, sharedDir, startServer, launch, waitForStatus, writeZip, readZip, decodePng, encodePng, camsamEval, tmpDir,
  nativeEmbedding, seedEmbedding, camsamBin, writeCamNpz, camValuesFromGt, camFromGt, download,
} from './lib.mjs';

const RUN_TIMEOUT_MS = 240_000;
let server;

before(async () => {
  fs.mkdirSync(artifacts, { recursive: true });
  fs.mkdirSync(screenshots, { recursive: true });
  server = await startServer();
});
after(() => server?.close());

/** Every request must go to the app's own origin (or be a blob:/data: URL it made itself). */
function assertSameOrigin(requests, origin) {
  const foreign = requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert.deepEqual(foreign, [], `requests to other origins: ${foreign.join(', ')}`);
  assert.ok(requests.some((u) => u.endsWith('.wasm')), 'the request log saw the wasm module (so it logs the worker too)');
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
    await b.page.screenshot({ path: path.join(screenshots, 'demo-review.png'), fullPage: true });
    const zip = await download(b.page, 'export');
    assert.equal(zip.name, 'camsam-labels.zip');
    const files = readZip(zip.bytes);
    for (const n of ['demo_cat', 'demo_street', 'demo_sky']) {
      const png = decodePng(files.get(`${n}.png`));
      assert.equal(png.colorType, 3, `${n}.png is a palette PNG`);
    }
    assert.ok(files.has('report.json'));
    // Grayscale + overlays: the same class ids as the palette PNGs, an RGB overlay per image.
    await b.page.locator('#export-gray').check();
    await b.page.locator('#export-overlays').check();
    const gray = readZip((await download(b.page, 'export')).bytes);
    for (const n of ['demo_cat', 'demo_street', 'demo_sky']) {
      const g = decodePng(gray.get(`${n}.png`)), p = decodePng(files.get(`${n}.png`));
      assert.equal(g.colorType, 0, `${n}.png is grayscale`);
      assert.ok(g.data.equals(p.data), `${n}: grayscale ids equal the palette indices`);
      const o = decodePng(gray.get(`overlays/${n}.png`));
      assert.equal(`${o.width}x${o.height}x${o.channels}`, `${g.width}x${g.height}x3`, `overlays/${n}.png`);
    }
    // Click a mask to give it a class, then undo: one edit, then none with one to redo.
    await b.page.locator('input[name=tool][value=mask]').check();
    const box = await b.page.getByTestId('canvas').boundingBox();
    await b.page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    const info = () => b.page.getByTestId('review-info').textContent();
    await b.page.waitForFunction(() => /1 edit\(s\), 0 to redo/.test(document.querySelector('[data-testid=review-info]').textContent), null, { timeout: 10_000 })
      .catch(async () => assert.fail(`no edit after a mask click: ${await info()} / ${await b.page.getByTestId('status').textContent()}`));
    await b.page.getByTestId('undo').click();
    await b.page.waitForFunction(() => /0 edit\(s\), 1 to redo/.test(document.querySelector('[data-testid=review-info]').textContent), null, { timeout: 10_000 });
    assertSameOrigin(b.requests, server.origin);
  } finally {
    await b.close();
  }
});

const SEPL = () => path.join(sharedDir(), 'fixtures/sepl');

/** `count` names spread over the SEPL fixtures, their masks.zip (<name>/<i>.png) in a work
 *  folder, and with `broken`, masks for one extra name `zz_broken` whose pseudo-label
 *  (`zz_broken.png` there) is not a PNG. Returns {names, work, pseudo: [paths], gt: [paths]}. */
function seplInputs(count, { broken = false } = {}) {
  const sepl = SEPL();
  const all = fs.readFileSync(path.join(sepl, 'list.txt'), 'utf8').split('\n').filter(Boolean);
  const names = Array.from({ length: count }, (_, i) => all[Math.floor((i * all.length) / count)]);
  const work = tmpDir('sepl');
  fs.writeFileSync(path.join(work, 'list.txt'), `${names.join('\n')}\n`);
  const entries = [];
  for (const n of broken ? [...names, 'zz_broken'] : names) {
    const src = path.join(sepl, 'sam', n === 'zz_broken' ? names[0] : n);
    for (const f of fs.readdirSync(src)) entries.push([`${n}/${f}`, fs.readFileSync(path.join(src, f))]);
  }
  fs.writeFileSync(path.join(work, 'masks.zip'), writeZip(entries));
  const pseudo = names.map((n) => path.join(sepl, 'pseudo', `${n}.png`));
  if (broken) {
    fs.writeFileSync(path.join(work, 'zz_broken.png'), Buffer.from('this is not a PNG file'));
    pseudo.push(path.join(work, 'zz_broken.png'));
  }
  return { names, work, pseudo, gt: names.map((n) => path.join(sepl, 'gt', `${n}.png`)) };
}

/** Load pseudo-labels, masks.zip and GT into the page, run official-imp2, wait for done. */
async function runSepl(b, inputs) {
  await b.page.getByTestId('cams-input').setInputFiles(inputs.pseudo);
  await b.page.getByTestId('masks-input').setInputFiles(path.join(inputs.work, 'masks.zip'));
  await b.page.getByTestId('gt-input').setInputFiles(inputs.gt);
  await b.page.getByTestId('preset-select').selectOption('official-imp2');
  await b.page.getByTestId('run').click();
  return waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
}

/** The exported zip's labels equal the published max_iou_imp2 output, pixel for pixel. */
function assertExpectedImp2(files, names) {
  const labels = [...files.keys()].filter((k) => k.endsWith('.png')).sort();
  assert.deepEqual(labels, names.map((n) => `${n}.png`).sort());
  for (const n of names) {
    const got = decodePng(files.get(`${n}.png`));
    const want = decodePng(fs.readFileSync(path.join(SEPL(), 'expected/max_iou_imp2', `${n}.png`)));
    assert.equal(`${got.width}x${got.height}`, `${want.width}x${want.height}`, `${n}: size`);
    let diff = 0, first = -1;
    for (let i = 0; i < want.data.length; i++) if (got.data[i] !== want.data[i]) { diff++; if (first < 0) first = i; }
    assert.equal(diff, 0, `${n}: ${diff} pixels differ from max_iou_imp2; first at (${first % want.width}, ${Math.floor(first / want.width)}): ${got.data[first]} vs ${want.data[first]}`);
  }
}

test('SEPL on the shared fixtures: labels equal max_iou_imp2, mIoU equals camsam eval, a malformed file is named', async () => {
  const sepl = SEPL();
  const inputs = seplInputs(20, { broken: true });
  const { names, work } = inputs;
  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    const status = await runSepl(b, inputs);
    assert.match(status, /20 image\(s\) refined/);
    assert.match(status, /error/);
    const issues = await b.page.getByTestId('issues').textContent();
    assert.match(issues, /zz_broken\.png: not a readable PNG/, `issues list: ${issues}`);
    await b.page.screenshot({ path: path.join(screenshots, 'sepl-review.png'), fullPage: true });

    const zip = await download(b.page, 'export');
    assert.equal(zip.name, 'camsam-labels.zip');
    const files = readZip(zip.bytes);
    assertExpectedImp2(files, names);
    const out = path.join(work, 'exported');
    fs.mkdirSync(out);
    for (const n of names) fs.writeFileSync(path.join(out, `${n}.png`), files.get(`${n}.png`));
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

test('files chosen while the page starts are all kept and matched: the demo never replaces them, Run refines exactly them (3 fresh loads, one with the wasm delayed)', async () => {
  const inputs = seplInputs(12);
  for (const [load, delayMs] of [[1, 0], [2, 4000], [3, 0]]) {
    const b = await launch();
    try {
      // A slowed start-up: the wasm module (fetched by the worker) answers late.
      if (delayMs) await b.context.route('**/*.wasm', async (route) => { await new Promise((r) => setTimeout(r, delayMs)); await route.continue(); });
      await b.page.goto(`${server.origin}/`, { waitUntil: 'domcontentloaded' });
      // Chosen at once, before the status says ready (a quick drop on a first visit).
      const early = await b.page.getByTestId('status').textContent();
      await b.page.getByTestId('masks-input').setInputFiles(path.join(inputs.work, 'masks.zip'));
      await b.page.getByTestId('cams-input').setInputFiles(inputs.pseudo);
      // Start-up over and every file read; the status says ready or what was loaded last.
      await b.page.waitForFunction(() => document.documentElement.dataset.started === 'true'
        && !document.querySelector('[data-testid=run]').disabled, null, { timeout: 90_000 });
      const ready = await b.page.getByTestId('status').textContent();
      assert.match(ready, /^(ready|loaded)/, `load ${load}: status`);
      assert.doesNotMatch(ready, /demo/, `load ${load}: the demo was loaded over the user's files (${ready})`);
      const summary = await b.page.getByTestId('summary').textContent();
      assert.equal(summary, '12 image name(s), 12 ready to refine', `load ${load} (status when chosen: "${early}")`);
      assert.equal(await b.page.getByTestId('issues').textContent(), '', `load ${load}: issues`);
      await b.page.getByTestId('preset-select').selectOption('official-imp2');
      await b.page.getByTestId('run').click();
      const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
      assert.match(status, /12 image\(s\) refined/, `load ${load}`);
      assertExpectedImp2(readZip((await download(b.page, 'export')).bytes), inputs.names);
    } finally {
      await b.close();
    }
  }
});

test('sweep in the page: t1 × t2 over the refined images with ground truth equals `camsam sweep`; clicking the best cell applies it', async () => {
  const inputs = seplInputs(12);
  const cli = path.join(inputs.work, 'cli-sweep');
  execFileSync(camsamBin(), ['sweep', '--pseudo', path.join(SEPL(), 'pseudo'), '--masks', path.join(inputs.work, 'masks.zip'), '--gt', path.join(SEPL(), 'gt'),
    '--list', path.join(inputs.work, 'list.txt'), '--t1', '0.3,0.5', '--t2', '0.75,0.95', '--out', cli], { stdio: ['ignore', 'ignore', 'inherit'] });
  const want = JSON.parse(fs.readFileSync(path.join(cli, 'sweep.json'), 'utf8'));
  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/?nodemo`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    const status = await runSepl(b, inputs);
    assert.match(status, /12 image\(s\) refined/);
    await b.page.getByTestId('sweep-t1').fill('0.3,0.5');
    await b.page.getByTestId('sweep-t2').fill('0.75,0.95');
    await b.page.getByTestId('sweep-run').click();
    await waitForStatus(b.page, b.consoleLines, /sweep done/, RUN_TIMEOUT_MS);
    const img = b.page.getByTestId('sweep-img');
    await b.page.waitForFunction(() => document.querySelector('[data-testid=sweep-img]').naturalWidth > 0);
    const cells = JSON.parse(await img.getAttribute('data-cells'));
    assert.equal(cells.length, 4);
    for (const c of cells) {
      const i = want.t1.indexOf(c.t1), j = want.t2.indexOf(c.t2);
      assert.equal(c.miou, want.miou[i][j], `cell t1 ${c.t1} t2 ${c.t2}: page ${c.miou}, camsam sweep ${want.miou[i][j]}`);
    }
    assert.match(await b.page.getByTestId('sweep-best').textContent(), new RegExp(`t1 ${want.best.t1}, t2 ${want.best.t2} → mIoU ${(100 * want.best.miou).toFixed(2)}`));
    await b.page.screenshot({ path: path.join(screenshots, 'sweep.png'), fullPage: true });
    // Click the best cell: the sliders move there and the measured mIoU is the cell's.
    const best = cells.find((c) => c.t1 === want.best.t1 && c.t2 === want.best.t2);
    const scale = await img.evaluate((el) => el.naturalWidth / el.clientWidth);
    await img.click({ position: { x: (best.x + best.w / 2) / scale, y: (best.y + best.h / 2) / scale } });
    await waitForStatus(b.page, b.consoleLines, /applied t1/, 10_000);
    assert.equal(Number(await b.page.getByTestId('t1').inputValue()), want.best.t1);
    assert.equal(Number(await b.page.getByTestId('t2').inputValue()), want.best.t2);
    await b.page.waitForFunction((v) => document.querySelector('[data-testid=miou-after]').textContent === v, (100 * want.best.miou).toFixed(2), { timeout: 60_000 });
  } finally {
    await b.close();
  }
});

test('a JPEG image (VOC\'s own format) gets its overlay in the export, over the image', async () => {
  const crops = path.join(sharedDir(), 'data/voc_val_crops');
  const name = '2007_000033';
  const work = tmpDir('jpeg');
  const gtBytes = fs.readFileSync(path.join(crops, 'gt', `${name}.png`));
  const gt = decodePng(gtBytes);
  fs.writeFileSync(path.join(work, `${name}.png`), gtBytes); // the ground truth as the pseudo-label
  const mask = Buffer.from(gt.data.map((v) => (v !== 0 && v !== 255 ? 255 : 0)));
  fs.writeFileSync(path.join(work, 'masks.zip'), writeZip([[`${name}/0.png`, encodePng(gt.width, gt.height, 1, mask)]]));
  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/?nodemo`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    // The browser encodes the crop as a JPEG.
    const jpeg = await b.page.evaluate(async (b64) => {
      const png = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const bmp = await createImageBitmap(new Blob([png], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bmp.width, bmp.height);
      canvas.getContext('2d').drawImage(bmp, 0, 0);
      const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.95 })).arrayBuffer());
      let s = '';
      for (const x of bytes) s += String.fromCharCode(x);
      return btoa(s);
    }, fs.readFileSync(path.join(crops, 'images', `${name}.png`)).toString('base64'));
    fs.writeFileSync(path.join(work, `${name}.jpg`), Buffer.from(jpeg, 'base64'));
    await b.page.getByTestId('images-input').setInputFiles(path.join(work, `${name}.jpg`));
    await b.page.getByTestId('cams-input').setInputFiles(path.join(work, `${name}.png`));
    await b.page.getByTestId('masks-input').setInputFiles(path.join(work, 'masks.zip'));
    await b.page.getByTestId('preset-select').selectOption('official-imp2');
    await b.page.getByTestId('run').click();
    assert.match(await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS), /1 image\(s\) refined/);
    await b.page.getByTestId('export-overlays').check();
    const zip = readZip((await download(b.page, 'export')).bytes);
    const overlay = decodePng(zip.get(`overlays/${name}.png`));
    const label = decodePng(zip.get(`${name}.png`));
    const photo = decodePng(fs.readFileSync(path.join(crops, 'images', `${name}.png`)));
    // Background pixels show the photo (within JPEG loss), not black.
    let n = 0, err = 0;
    for (let i = 0; i < label.data.length; i++) {
      if (label.data[i] !== 0) continue;
      n++;
      for (let k = 0; k < 3; k++) err += Math.abs(overlay.data[3 * i + k] - photo.data[3 * i + k]);
    }
    assert.ok(n > 1000, `background pixels: ${n}`);
    assert.ok(err / (3 * n) < 6, `overlay background differs from the photo by ${(err / (3 * n)).toFixed(1)} on average (not drawn over the JPEG?)`);
  } finally {
    await b.close();
  }
});

test('a brush stroke stores only its own image and updates the metrics', async () => {
  const inputs = seplInputs(6);
  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/?nodemo`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    assert.match(await runSepl(b, inputs), /6 image\(s\) refined/);
    await b.page.waitForFunction((n) => document.querySelector('[data-testid=review-info]').textContent.startsWith(`${n}:`), inputs.names[0]);
    const miouBefore = await b.page.getByTestId('miou-after').textContent();
    // Count the worker's writes to the results store from here on.
    const worker = b.page.workers().find((w) => /\/www\/worker\/main\.js$/.test(w.url()));
    assert.ok(worker, 'the page\'s worker');
    await worker.evaluate(() => {
      self.__resultWrites = [];
      const put = IDBObjectStore.prototype.put;
      IDBObjectStore.prototype.put = function (value, key) {
        if (this.name === 'results') self.__resultWrites.push(key ?? value?.name);
        return put.call(this, value, key);
      };
    });
    await b.page.locator('input[name=tool][value=brush]').check();
    await b.page.getByTestId('paint-class').selectOption('15');
    const box = await b.page.getByTestId('canvas').boundingBox();
    await b.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await b.page.mouse.down();
    await b.page.mouse.move(box.x + box.width / 2 + 30, box.y + box.height / 2, { steps: 4 });
    await b.page.mouse.up();
    await b.page.waitForFunction(() => /1 edit\(s\)/.test(document.querySelector('[data-testid=review-info]').textContent));
    await b.page.waitForFunction((m) => document.querySelector('[data-testid=miou-after]').textContent !== m, miouBefore, { timeout: 30_000 });
    const writes = await worker.evaluate(() => self.__resultWrites);
    assert.deepEqual([...new Set(writes)], [inputs.names[0]], `results written after one stroke: ${writes.join(', ')}`);
    assert.doesNotMatch(await b.page.getByTestId('status').textContent(), /^error/);
  } finally {
    await b.close();
  }
});

test('the CAM background slider re-thresholds the CAMs after a run (labels equal cam2label + merge at the new value); with pseudo-label inputs it is disabled and says why', async () => {
  const crops = path.join(sharedDir(), 'data/voc_val_crops');
  const names = ['2007_000033', '2007_000332'];
  const work = tmpDir('bg-slider');
  for (const d of ['cams', 'pseudo']) fs.mkdirSync(path.join(work, d));
  const entries = [];
  for (const n of names) {
    const gt = decodePng(fs.readFileSync(path.join(crops, 'gt', `${n}.png`)));
    const classes = [...new Set(gt.data)].filter((v) => v !== 0 && v !== 255);
    for (const c of classes) {
      fs.writeFileSync(path.join(work, 'cams', `${n}_${c}.png`), camFromGt(gt, c));
      // A SAM-like mask per object, grown by nothing: the object itself.
      entries.push([`${n}/${entries.length}.png`, encodePng(gt.width, gt.height, 1, Buffer.from(gt.data.map((v) => (v === c ? 255 : 0))))]);
    }
  }
  fs.writeFileSync(path.join(work, 'masks.zip'), writeZip(entries));
  const cli = (bg) => {
    const pseudo = path.join(work, `pseudo-${bg}`), merged = path.join(work, `merged-${bg}`);
    execFileSync(camsamBin(), ['cam2label', '--cams', path.join(work, 'cams'), '--bg-threshold', `${bg}`, '--format', 'gray', '--out', pseudo], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(camsamBin(), ['merge', '--pseudo', pseudo, '--masks', path.join(work, 'masks.zip'), '--format', 'gray', '--out', merged], { stdio: ['ignore', 'ignore', 'inherit'] });
    return merged;
  };
  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/?nodemo`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('cams-folder').setInputFiles(path.join(work, 'cams'));
    await b.page.getByTestId('masks-input').setInputFiles(path.join(work, 'masks.zip'));
    await b.page.getByTestId('gt-input').setInputFiles(names.map((n) => path.join(crops, 'gt', `${n}.png`)));
    await b.page.getByTestId('preset-select').selectOption('official-imp2');
    await b.page.waitForFunction(() => !document.querySelector('[data-testid=run]').disabled);
    await b.page.getByTestId('run').click();
    assert.match(await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS), /2 image\(s\) refined/,
      `summary: ${await b.page.getByTestId('summary').textContent()}; issues: ${await b.page.getByTestId('issues').textContent()}`);
    assert.equal(await b.page.getByTestId('bg').isDisabled(), false);
    const miou = await b.page.getByTestId('miou-before').textContent();
    await b.page.getByTestId('bg').fill('0.6');
    await b.page.waitForFunction((m) => document.querySelector('[data-testid=miou-before]').textContent !== m, miou, { timeout: 60_000 });
    const zip = readZip((await download(b.page, 'export')).bytes);
    assert.equal(JSON.parse(zip.get('report.json')).settings.cam.bg_threshold, 0.6);
    const merged = cli(0.6);
    for (const n of names) {
      const got = decodePng(zip.get(`${n}.png`)), want = decodePng(fs.readFileSync(path.join(merged, `${n}.png`)));
      let diff = 0;
      for (let i = 0; i < want.data.length; i++) if (got.data[i] !== want.data[i]) diff++;
      assert.equal(diff, 0, `${n}: ${diff} pixels differ from cam2label --bg-threshold 0.6 + merge`);
    }
    // Pseudo-label PNGs as the input: nothing to re-threshold.
    await b.page.getByTestId('clear').click();
    await b.page.getByTestId('cams-input').setInputFiles(names.map((n) => path.join(work, 'pseudo-0.6', `${n}.png`)));
    await b.page.getByTestId('masks-input').setInputFiles(path.join(work, 'masks.zip'));
    await b.page.waitForFunction(() => !document.querySelector('[data-testid=run]').disabled);
    await b.page.getByTestId('run').click();
    assert.match(await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS), /2 image\(s\) refined/,
      `summary: ${await b.page.getByTestId('summary').textContent()}; issues: ${await b.page.getByTestId('issues').textContent()}`);
    assert.equal(await b.page.getByTestId('bg').isDisabled(), true);
    assert.match(await b.page.getByTestId('bg-note').textContent(), /no CAM/);
    assert.equal(JSON.parse(readZip((await download(b.page, 'export')).bytes).get('report.json')).settings.cam, null);
  } finally {
    await b.close();
  }
});

test('errors cross the wasm boundary as kinds (err.kind): bad input, an index out of range', async () => {
  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/?nodemo`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    const kinds = await b.page.evaluate(async () => {
      const wasm = await import('/pkg/camsam.js');
      await wasm.default();
      const kindOf = (f) => { try { f(); return 'no error'; } catch (e) { return `${e.kind}: ${e.message}`; } };
      const masks = new wasm.MaskFiles('x').decode(2, 2);
      return {
        png: kindOf(() => wasm.Label.fromPng(new Uint8Array([1, 2, 3]), 'broken.png')),
        area: kindOf(() => masks.area(3)),
        file: kindOf(() => masks.file(0)),
      };
    });
    assert.match(kinds.png, /^bad-input: broken\.png: /);
    assert.match(kinds.area, /^bad-input: mask 3: out of range/);
    assert.match(kinds.file, /^bad-input: mask 0: out of range/);
  } finally {
    await b.close();
  }
});

test('finished results survive a reload: listed again, the same export byte for byte, an edit kept; clear → gone', async () => {
  const inputs = seplInputs(6);
  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/?nodemo`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    assert.match(await runSepl(b, inputs), /6 image\(s\) refined/);
    // An edit on the first image (a brush stroke of class 15) must survive too.
    await b.page.waitForFunction((n) => document.querySelector('[data-testid=review-info]').textContent.startsWith(`${n}:`), inputs.names[0]);
    await b.page.locator('input[name=tool][value=brush]').check();
    await b.page.getByTestId('paint-class').selectOption('15');
    const box = await b.page.getByTestId('canvas').boundingBox();
    await b.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await b.page.mouse.down();
    await b.page.mouse.move(box.x + box.width / 2 + 20, box.y + box.height / 2, { steps: 4 });
    await b.page.mouse.up();
    await b.page.waitForFunction(() => /1 edit\(s\)/.test(document.querySelector('[data-testid=review-info]').textContent));
    // The worker answers in order: once the export is here, the metrics after the edit are shown.
    const beforeReload = await download(b.page, 'export');
    const miou = await b.page.getByTestId('miou-after').textContent();

    await b.page.reload();
    const status = await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    assert.match(status, /6 result\(s\) from your last visit restored/);
    assert.match(await b.page.getByTestId('results').textContent(), /6 result\(s\) kept/);
    const listed = await b.page.getByTestId('image-select').locator('option').allTextContents();
    assert.deepEqual(listed, [...inputs.names].sort());
    assert.equal(await b.page.getByTestId('miou-after').textContent(), miou, 'the metrics come back with the results');
    // Run would replace results not exported since the reload: the page asks first (declined here).
    const asked = new Promise((resolve) => b.page.once('dialog', async (d) => { resolve(d.message()); await d.dismiss(); }));
    await b.page.getByTestId('run').click();
    assert.match(await asked, /6 result\(s\) from your last visit have not been exported/);
    assert.match(await b.page.getByTestId('status').textContent(), /restored/, 'no run started');
    const afterReload = await download(b.page, 'export');
    assert.ok(afterReload.bytes.equals(beforeReload.bytes), `the export after the reload differs from the one before (${afterReload.bytes.length} vs ${beforeReload.bytes.length} bytes)`);
    const files = readZip(afterReload.bytes);
    const edited = inputs.names[0];
    assertExpectedImp2(new Map([...files].filter(([k]) => k !== `${edited}.png`)), inputs.names.slice(1));
    const painted = decodePng(files.get(`${edited}.png`));
    assert.ok(painted.data.includes(15), `${edited}: the brush stroke (class 15) is in the export`);
    assert.equal(JSON.parse(files.get('report.json')).images.find((i) => i.name === edited).edits, 1);

    // Re-merging after the reload (masks and edits from IndexedDB): t1 0.3 changes the metrics;
    // back at 0.5 the export is again the one from before the reload.
    const setT1 = (v) => b.page.evaluate((x) => { const el = document.getElementById('t1'); el.value = x; el.dispatchEvent(new Event('input')); }, v);
    const miouNow = () => b.page.getByTestId('miou-after').textContent();
    await setT1('0.3');
    await b.page.waitForFunction((m) => document.querySelector('[data-testid=miou-after]').textContent !== m, miou, { timeout: 30_000 });
    const changed = await miouNow();
    await setT1('0.5');
    await b.page.waitForFunction((m) => document.querySelector('[data-testid=miou-after]').textContent === m, miou, { timeout: 30_000 })
      .catch(async () => assert.fail(`mIoU after t1 0.3 → 0.5: ${await miouNow()} (at 0.3: ${changed}), before the reload ${miou}`));
    const remerged = await download(b.page, 'export');
    assert.ok(remerged.bytes.equals(beforeReload.bytes), 're-merged at t1 0.5 after the reload: the export differs from the one before');

    await b.page.getByTestId('clear-results').click();
    await waitForStatus(b.page, b.consoleLines, /results cleared/, 10_000);
    assert.equal(await b.page.getByTestId('image-select').locator('option').count(), 0);
    const empty = readZip((await download(b.page, 'export')).bytes);
    assert.deepEqual([...empty.keys()], ['report.json'], 'no labels after clearing');
    await b.page.reload();
    assert.doesNotMatch(await waitForStatus(b.page, b.consoleLines, /ready/, 60_000), /restored/);
    assert.equal(await b.page.getByTestId('image-select').locator('option').count(), 0);
    assertSameOrigin(b.requests, server.origin);
  } finally {
    await b.close();
  }
});


async function segmentEverythingRun({ webgpu }) {
  const shared = sharedDir();
  const crops = path.join(shared, 'data/voc_val_crops');
  const name = '2007_000033'; // an aeroplane (class 1)
  const work = tmpDir('sam');
  const gt = decodePng(fs.readFileSync(path.join(crops, 'gt', `${name}.png`)));
  fs.writeFileSync(path.join(work, `${name}_1.png`), camFromGt(gt, 1));
  const b = await launch({ webgpu });
  try {
    // 4×4 points per side keeps segment-everything short with a single-threaded CPU model.
    await b.page.goto(`${server.origin}/?nodemo&points=4`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('weights-input').setInputFiles(path.join(shared, 'fixtures/sam/weights/mobile_sam_random.safetensors'));
    await waitForStatus(b.page, b.consoleLines, /weights loaded/, 120_000);
    const backend = await b.page.getByTestId('backend').textContent();
    await b.page.getByTestId('images-input').setInputFiles(path.join(crops, 'images', `${name}.png`));
    await b.page.getByTestId('cams-input').setInputFiles(path.join(work, `${name}_1.png`));
    await b.page.getByTestId('gt-input').setInputFiles(path.join(crops, 'gt', `${name}.png`));
    await b.page.getByTestId('run').click();
    const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
    assert.match(status, /1 image\(s\) refined/);
    assert.doesNotMatch(status, /error/);
    assert.match(await b.page.getByTestId('miou-after').textContent(), /^\d+\.\d\d$/);
    await b.page.screenshot({ path: path.join(screenshots, `sam-${webgpu ? 'webgpu' : 'cpu'}-review.png`), fullPage: true });
    // The point tool: one SAM prompt (on the cached embedding) adds a mask given class 1.
    await b.page.waitForFunction((n) => document.querySelector('[data-testid=review-info]').textContent.startsWith(`${n}:`), name);
    const masksBefore = Number(/(\d+) SAM masks/.exec(await b.page.getByTestId('review-info').textContent())[1]);
    await b.page.locator('input[name=tool][value=point]').check();
    await b.page.getByTestId('paint-class').selectOption('1');
    const box = await b.page.getByTestId('canvas').boundingBox();
    await b.page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await waitForStatus(b.page, b.consoleLines, /SAM: mask added/, 60_000);
    assert.match(await b.page.getByTestId('review-info').textContent(), new RegExp(`: ${masksBefore + 1} SAM masks, 1 edit\\(s\\)`));
    const zip = readZip((await download(b.page, 'export')).bytes);
    const label = decodePng(zip.get(`${name}.png`));
    assert.equal(`${label.width}x${label.height}`, '513x513');
    assert.equal(JSON.parse(zip.get('report.json')).images[0].edits, 1, 'the prompt mask is an edit of the stored result');
    assertSameOrigin(b.requests, server.origin);
    return backend;
  } finally {
    await b.close();
  }
}

test('CPU fallback: WebGPU disabled, fixture weights + a VOC crop + a CAM → everything-mode + merge', async () => {
  const backend = await segmentEverythingRun({ webgpu: false });
  assert.equal(backend, 'cpu');
});

test('cancel mid-image is reported as cancelled, never as a failed file', async () => {
  const shared = sharedDir();
  const crops = path.join(shared, 'data/voc_val_crops');
  const weights = path.join(shared, 'fixtures/sam/weights', 'mobile_sam_random.safetensors');
  const names = ['2007_000033', '2007_000332'];
  const work = tmpDir('cancel');
  const b = await launch({ webgpu: false });
  try {
    // 32×32 points: segment-everything takes minutes on the page's CPU model, so the cancel
    // lands in the middle of the first image.
    await b.page.goto(`${server.origin}/?nodemo&points=32`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('weights-input').setInputFiles(weights);
    await waitForStatus(b.page, b.consoleLines, /weights loaded/, 120_000);
    const cams = [];
    for (const n of names) {
      const image = path.join(crops, 'images', `${n}.png`);
      await seedEmbedding(b.page, weights, fs.readFileSync(image), nativeEmbedding(weights, image).data);
      const gt = decodePng(fs.readFileSync(path.join(crops, 'gt', `${n}.png`)));
      const cls = gt.data.find((v) => v !== 0 && v !== 255);
      fs.writeFileSync(path.join(work, `${n}_${cls}.png`), camFromGt(gt, cls));
      cams.push(path.join(work, `${n}_${cls}.png`));
    }
    await b.page.getByTestId('images-input').setInputFiles(names.map((n) => path.join(crops, 'images', `${n}.png`)));
    await b.page.getByTestId('cams-input').setInputFiles(cams);
    await b.page.getByTestId('run').click();
    // Wait until segment-everything reports progress inside the first image, then cancel.
    await waitForStatus(b.page, b.consoleLines, /segment everything in .*: [1-9]\d* %/, 180_000);
    await b.page.getByTestId('cancel').click();
    const status = await waitForStatus(b.page, b.consoleLines, /^cancelled/, 120_000);
    assert.doesNotMatch(status, /error/, `status: ${status}`);
    assert.equal(await b.page.getByTestId('issues').textContent(), '', 'the cancel is listed as an issue');
  } finally {
    await b.close();
  }
});

test('embeddings are cached per weights content: two checkpoints with the same file name do not share them', async () => {
  const shared = sharedDir();
  const crops = path.join(shared, 'data/voc_val_crops');
  const fixture = fs.readFileSync(path.join(shared, 'fixtures/sam/weights', 'mobile_sam_random.safetensors'));
  const work = tmpDir('weights-key');
  // Checkpoint B: the fixture with one weight's lowest mantissa byte changed (same name, same shapes).
  const b2 = Buffer.from(fixture);
  b2[8 + Number(fixture.readBigUInt64LE(0))] ^= 1;
  for (const [dir, bytes] of [['a', fixture], ['b', b2]]) {
    fs.mkdirSync(path.join(work, dir));
    fs.writeFileSync(path.join(work, dir, 'mobile_sam.safetensors'), bytes);
  }
  const name = '2007_000033';
  const gt = decodePng(fs.readFileSync(path.join(crops, 'gt', `${name}.png`)));
  fs.writeFileSync(path.join(work, `${name}_1.png`), camFromGt(gt, 1));
  const b = await launch({ webgpu: false });
  const embeddingKeys = () => b.page.evaluate(async () => {
    const db = await new Promise((res, rej) => { const q = indexedDB.open('camsam'); q.onsuccess = () => res(q.result); q.onerror = () => rej(q.error); });
    const keys = await new Promise((res, rej) => { const q = db.transaction('embeddings').objectStore('embeddings').getAllKeys(); q.onsuccess = () => res(q.result); q.onerror = () => rej(q.error); });
    db.close();
    return keys;
  });
  try {
    await b.page.goto(`${server.origin}/?nodemo`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('images-input').setInputFiles(path.join(crops, 'images', `${name}.png`));
    await b.page.getByTestId('cams-input').setInputFiles(path.join(work, `${name}_1.png`));
    await b.page.getByTestId('preset-select').selectOption('cpm');
    for (const dir of ['a', 'b']) {
      await b.page.getByTestId('weights-input').setInputFiles(path.join(work, dir, 'mobile_sam.safetensors'));
      await waitForStatus(b.page, b.consoleLines, /weights loaded/, 120_000);
      await b.page.getByTestId('run').click();
      assert.match(await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS), /1 image\(s\) refined/);
    }
    const keys = await embeddingKeys();
    assert.equal(keys.length, 2, `one embedding per checkpoint; keys: ${keys.join(', ')}`);
  } finally {
    await b.close();
  }
});

// WebGPU in the page (SwiftShader in headless Chromium). One MobileSAM encoder pass takes
// minutes on SwiftShader here, so these runs start from the image's embedding in the page's
// cache (computed by the native CPU model, `camsam embed`): segment-everything's decoder, the
// post-processing and the merge run on WebGPU in the page, the encoder does not.
const WEIGHTS = 'mobile_sam_random.safetensors';

async function webgpuRun({ names, points, query, expectBackend }) {
  const shared = sharedDir();
  const crops = path.join(shared, 'data/voc_val_crops');
  const weights = path.join(shared, 'fixtures/sam/weights', WEIGHTS);
  const work = tmpDir('webgpu');
  const b = await launch({ webgpu: true });
  try {
    await b.page.goto(`${server.origin}/?nodemo&points=${points}&${query}`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('weights-input').setInputFiles(weights);
    await waitForStatus(b.page, b.consoleLines, /weights loaded/, 120_000);
    assert.equal(await b.page.getByTestId('backend').textContent(), 'webgpu', `notice: ${await b.page.getByTestId('backend-notice').textContent()}`);
    assert.match(await b.page.getByTestId('adapter').textContent(), /\(.+\)/, 'the adapter is named');
    const cams = [];
    for (const [name, cls] of names) {
      const image = path.join(crops, 'images', `${name}.png`);
      await seedEmbedding(b.page, weights, fs.readFileSync(image), nativeEmbedding(weights, image).data);
      const gt = decodePng(fs.readFileSync(path.join(crops, 'gt', `${name}.png`)));
      fs.writeFileSync(path.join(work, `${name}_${cls}.png`), camFromGt(gt, cls));
      cams.push(path.join(work, `${name}_${cls}.png`));
    }
    await b.page.getByTestId('images-input').setInputFiles(names.map(([n]) => path.join(crops, 'images', `${n}.png`)));
    await b.page.getByTestId('cams-input').setInputFiles(cams);
    await b.page.getByTestId('gt-input').setInputFiles(names.map(([n]) => path.join(crops, 'gt', `${n}.png`)));
    const t0 = Date.now();
    await b.page.getByTestId('run').click();
    const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
    console.log(`# ${query || 'webgpu'}: ${names.length} image(s), ${points}×${points} points, ${((Date.now() - t0) / 1000).toFixed(1)} s: ${status}`);
    assert.match(status, new RegExp(`${names.length} image\\(s\\) refined`));
    assert.equal(await b.page.getByTestId('backend').textContent(), expectBackend);
    assert.match(await b.page.getByTestId('miou-after').textContent(), /^\d+\.\d\d$/);
    await b.page.screenshot({ path: path.join(screenshots, `webgpu-${query ? 'lost' : 'run'}-review.png`), fullPage: true });
    const zip = readZip((await download(b.page, 'export')).bytes);
    for (const [n] of names) assert.equal(`${decodePng(zip.get(`${n}.png`)).width}`, '513');
    const report = JSON.parse(zip.get('report.json'));
    assertSameOrigin(b.requests, server.origin);
    return {
      backends: Object.fromEntries(report.images.map((i) => [i.name, i.backend])),
      status, notice: await b.page.getByTestId('backend-notice').textContent(), issues: await b.page.getByTestId('issues').textContent() };
  } finally {
    await b.close();
  }
}

test('WebGPU: fixture weights + a VOC crop + a CAM → everything-mode (cached embedding) + merge on WebGPU', async () => {
  const r = await webgpuRun({ names: [['2007_000033', 1]], points: 2, query: '', expectBackend: 'webgpu' });
  assert.doesNotMatch(r.status, /error/);
  assert.equal(r.notice, '');
  assert.deepEqual(r.backends, { '2007_000033': 'webgpu' });
});

test('WebGPU device lost mid-run: the job restarts on the CPU, finished results kept, the page says so', async () => {
  // The device is destroyed after the first image's first decoder batch: that image finishes
  // on WebGPU, the second fails on the lost device and runs again on the CPU.
  const r = await webgpuRun({ names: [['2007_000033', 1], ['2007_000332', 13]], points: 1, query: 'lose-gpu-after=1', expectBackend: 'cpu' });
  assert.match(r.notice, /WebGPU failed \(device lost.*\): continuing on the CPU/);
  assert.match(r.status, /continuing on the CPU/);
  assert.doesNotMatch(r.issues, /2007_000332/, `no image failed: ${r.issues}`);
  assert.deepEqual(r.backends, { '2007_000033': 'webgpu', '2007_000332': 'cpu' }, 'the first image finished on WebGPU and was kept');
});

test('method pamr (no model), CAMs as a heatmap PNG and an .npz from a folder: labels equal `camsam refine --mode pamr`; cpm without weights says what it needs', async () => {
  const crops = path.join(sharedDir(), 'data/voc_val_crops');
  const work = tmpDir('pamr');
  const names = [['2007_000033', 1], ['2007_000332', 13]];
  for (const d of ['images', 'cams', 'cli']) fs.mkdirSync(path.join(work, d));
  for (const [k, [n, cls]] of names.entries()) {
    fs.copyFileSync(path.join(crops, 'images', `${n}.png`), path.join(work, 'images', `${n}.png`));
    const gt = decodePng(fs.readFileSync(path.join(crops, 'gt', `${n}.png`)));
    if (k === 0) fs.writeFileSync(path.join(work, 'cams', `${n}_${cls}.png`), camFromGt(gt, cls));
    else fs.writeFileSync(path.join(work, 'cams', `${n}.npz`), writeCamNpz(gt.width, gt.height, { [cls]: Float32Array.from(camValuesFromGt(gt, cls), (v) => v / 255) }));
  }
  execFileSync(camsamBin(), ['refine', '--mode', 'pamr', '--images', path.join(work, 'images'), '--cams', path.join(work, 'cams'), '--out', path.join(work, 'cli')], { stdio: ['ignore', 'ignore', 'inherit'] });

  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/?nodemo`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('images-input').setInputFiles(names.map(([n]) => path.join(work, 'images', `${n}.png`)));
    await b.page.getByTestId('cams-folder').setInputFiles(path.join(work, 'cams'));
    await b.page.getByTestId('gt-input').setInputFiles(names.map(([n]) => path.join(crops, 'gt', `${n}.png`)));

    await b.page.getByTestId('preset-select').selectOption('cpm');
    await b.page.getByTestId('run').click();
    const refused = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
    assert.match(refused, /0 image\(s\) refined/);
    assert.match(await b.page.getByTestId('issues').textContent(), /cpm needs the SAM weights/);

    await b.page.getByTestId('preset-select').selectOption('pamr');
    const t0 = Date.now();
    await b.page.getByTestId('run').click();
    const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
    console.log(`# pamr in the page: ${names.length} images 513×513 in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.match(status, /2 image\(s\) refined/);
    assert.doesNotMatch(status, /error/);
    assert.match(await b.page.getByTestId('miou-after').textContent(), /^\d+\.\d\d$/);
    await b.page.screenshot({ path: path.join(screenshots, 'pamr-review.png'), fullPage: true });
    const zip = readZip((await download(b.page, 'export')).bytes);
    const report = JSON.parse(zip.get('report.json'));
    assert.equal(report.method, 'pamr');
    const cliReport = JSON.parse(fs.readFileSync(path.join(work, 'cli', 'report.json'), 'utf8'));
    assert.deepEqual(report.settings, cliReport.settings, 'the page records the settings camsam refine records');
    // The review shows each image's CAM classes, the .npz one included.
    await b.page.getByTestId('image-select').selectOption(names[1][0]);
    await b.page.waitForFunction((n) => document.querySelector('[data-testid=review-info]').textContent.startsWith(`${n}:`), names[1][0]);
    assert.deepEqual(await b.page.locator('#cam-class option').allTextContents(), ['horse']);
    for (const [n] of names) {
      const got = decodePng(zip.get(`${n}.png`));
      const want = decodePng(fs.readFileSync(path.join(work, 'cli', `${n}.png`)));
      let diff = 0, first = -1;
      for (let i = 0; i < want.data.length; i++) if (got.data[i] !== want.data[i]) { diff++; if (first < 0) first = i; }
      assert.equal(diff, 0, `${n}: ${diff} pixels differ from camsam refine --mode pamr; first at ${first}: ${got.data[first]} vs ${want.data[first]}`);
    }
    assertSameOrigin(b.requests, server.origin);
  } finally {
    await b.close();
  }
});

test('a folder of IRN-format CAMs (np.save of a dict with torch keys) with their images: read in the page and refined with pamr and crf; labels equal `camsam refine`', async () => {
  const crops = path.join(sharedDir(), 'data/voc_val_crops');
  const irn = path.join(sharedDir(), 'fixtures/cam_formats/irn');
  const work = tmpDir('irn');
  const names = fs.readdirSync(irn).filter((f) => f.endsWith('.npy')).map((f) => f.slice(0, -4)).sort();
  assert.ok(names.length >= 3, `IRN fixtures in ${irn}`);
  for (const d of ['images', 'cams', 'cli']) fs.mkdirSync(path.join(work, d));
  for (const n of names) {
    fs.copyFileSync(path.join(crops, 'images', `${n}.png`), path.join(work, 'images', `${n}.png`));
    fs.copyFileSync(path.join(irn, `${n}.npy`), path.join(work, 'cams', `${n}.npy`));
  }
  for (const mode of ['pamr', 'crf']) {
    execFileSync(camsamBin(), ['refine', '--mode', mode, '--images', path.join(work, 'images'), '--cams', path.join(work, 'cams'), '--out', path.join(work, `cli-${mode}`)], { stdio: ['ignore', 'ignore', 'inherit'] });
  }

  const b = await launch();
  try {
    await b.page.goto(`${server.origin}/?nodemo`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('images-folder').setInputFiles(path.join(work, 'images'));
    await b.page.getByTestId('cams-folder').setInputFiles(path.join(work, 'cams'));
    for (const mode of ['pamr', 'crf']) {
      await b.page.getByTestId('preset-select').selectOption(mode);
      await b.page.getByTestId('run').click();
      const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
      assert.match(status, new RegExp(`${names.length} image\\(s\\) refined`));
      assert.doesNotMatch(status, /error/);
      // The review lists the classes the torch `keys` name (0-based foreground: key k is class k+1).
      await b.page.getByTestId('image-select').selectOption(names[0]);
      await b.page.waitForFunction((n) => document.querySelector('[data-testid=review-info]').textContent.startsWith(`${n}:`), names[0]);
      assert.ok((await b.page.locator('#cam-class option').allTextContents()).length > 0);
      const zip = readZip((await download(b.page, 'export')).bytes);
      assert.equal(JSON.parse(zip.get('report.json')).method, mode);
      for (const n of names) {
        const got = decodePng(zip.get(`${n}.png`));
        const want = decodePng(fs.readFileSync(path.join(work, `cli-${mode}`, `${n}.png`)));
        let diff = 0, first = -1;
        for (let i = 0; i < want.data.length; i++) if (got.data[i] !== want.data[i]) { diff++; if (first < 0) first = i; }
        assert.equal(diff, 0, `${n}: ${diff} pixels differ from camsam refine --mode ${mode}; first at ${first}: ${got.data[first]} vs ${want.data[first]}`);
      }
    }
    assertSameOrigin(b.requests, server.origin);
  } finally {
    await b.close();
  }
});

// Memory over a long batch: the worker stores each finished image in IndexedDB and frees it,
// so its wasm memory and JS heap (and the page's heap) stay flat. Readings every 100 images,
// after a GC; the last may exceed the one at image 100 by at most MEMORY_GROWTH.
const MEMORY_GROWTH = 1.2;
const LONG_BATCH = 1000;

/** A 64×64 pseudo-label (one class rectangle) and three SAM masks (the object grown by 4 px, its
 *  left half, a background band) for image i. */
function longBatchImage(i) {
  const S = 64, cls = 1 + (i % 20), x0 = 8 + (i % 17), y0 = 8 + ((i * 7) % 19);
  const rect = (value, rx, ry, rw, rh) => {
    const out = new Uint8Array(S * S);
    for (let y = Math.max(0, ry); y < Math.min(S, ry + rh); y++) for (let x = Math.max(0, rx); x < Math.min(S, rx + rw); x++) out[y * S + x] = value;
    return encodePng(S, S, 1, out);
  };
  return { pseudo: rect(cls, x0, y0, 24, 24), masks: [rect(255, x0 - 4, y0 - 4, 32, 32), rect(255, x0, y0, 12, 24), rect(255, 0, 0, S, 6)] };
}

test(`memory stays flat over a ${LONG_BATCH}-image merge-only batch (64×64 pseudo-labels, 3 SAM masks each); a reload mid-run keeps the finished images`, async () => {
  const work = tmpDir('long');
  const pseudo = [];
  const entries = [];
  for (let i = 0; i < LONG_BATCH; i++) {
    const name = `img_${String(i).padStart(4, '0')}`;
    const { pseudo: png, masks } = longBatchImage(i);
    pseudo.push(path.join(work, `${name}.png`));
    fs.writeFileSync(pseudo[i], png);
    masks.forEach((m, k) => entries.push([`${name}/${k}.png`, m]));
  }
  fs.writeFileSync(path.join(work, 'masks.zip'), writeZip(entries));
  const b = await launch({ extraArgs: ['--enable-precise-memory-info', '--js-flags=--expose-gc', '--enable-blink-features=ForceEagerMeasureMemory'] });
  try {
    await b.page.goto(`${server.origin}/?nodemo&memory-every=100`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('cams-input').setInputFiles(pseudo);
    await b.page.getByTestId('masks-input').setInputFiles(path.join(work, 'masks.zip'));
    const t0 = Date.now();
    await b.page.getByTestId('run').click();
    const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
    const seconds = (Date.now() - t0) / 1000;
    assert.match(status, new RegExp(`${LONG_BATCH} image\\(s\\) refined`));
    assert.doesNotMatch(status, /error/);
    // worker_heap_bytes is a promise (measureUserAgentSpecificMemory) until it settles.
    const samples = await b.page.evaluate(() => Promise.all((window.camsamMemory || []).map(async (m) => ({ ...m, worker_heap_bytes: (await m.worker_heap_bytes) ?? null }))));
    const mib = (v) => (v === null ? 'n/a' : (v / 2 ** 20).toFixed(2));
    console.log(`# long batch: ${LONG_BATCH} images in ${seconds.toFixed(1)} s (${(1000 * seconds / LONG_BATCH).toFixed(1)} ms/image)`);
    for (const m of samples) console.log(`# long batch: image ${m.done}: worker wasm ${mib(m.wasm_bytes)} MiB, worker JS heap ${mib(m.worker_heap_bytes)} MiB, page JS heap ${mib(m.page_js_heap_bytes)} MiB`);
    assert.deepEqual(samples.map((m) => m.done), Array.from({ length: LONG_BATCH / 100 }, (_, k) => 100 * (k + 1)));
    const first = samples[0], last = samples[samples.length - 1];
    for (const key of ['wasm_bytes', 'worker_heap_bytes', 'page_js_heap_bytes']) {
      assert.ok(first[key] > 0 && last[key] > 0, `${key} is reported: ${first[key]}, ${last[key]}`);
      assert.ok(last[key] <= MEMORY_GROWTH * first[key],
        `${key}: ${mib(last[key])} MiB at image ${last.done} > ${MEMORY_GROWTH} × ${mib(first[key])} MiB at image ${first.done}`);
    }

    // A tab reloaded in the middle of a run keeps every image finished before it.
    await b.page.getByTestId('run').click();
    const handle = await b.page.waitForFunction(() => {
      const done = Number((/^running: (\d+) \//.exec(document.querySelector('[data-testid=status]').textContent) || [])[1] || 0);
      return done >= 200 && done;
    }, null, { timeout: 60_000, polling: 20 });
    const seen = await handle.jsonValue();
    await b.page.reload();
    const restored = await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    const kept = Number((/(\d+) result\(s\) from your last visit restored/.exec(restored) || [])[1]);
    console.log(`# long batch: reloaded at image ≥ ${seen} of a second run: ${kept} result(s) restored`);
    assert.ok(kept >= seen && kept < LONG_BATCH, `restored ${kept} result(s) after a reload at image ${seen}: ${restored}`);
  } finally {
    await b.close();
  }
});

test('bench view (?bench): adapter, encoder ms, decoder ms/prompt on the CPU model, tiny config', async () => {
  const b = await launch();
  try {
    // The CPU model: one WebGPU encoder pass takes minutes on SwiftShader here.
    await b.page.goto(`${server.origin}/?nodemo&bench&backend=cpu&points=0&decoder-batch=1`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('weights-input').setInputFiles(path.join(sharedDir(), 'fixtures/sam/weights', WEIGHTS));
    await waitForStatus(b.page, b.consoleLines, /weights loaded/, 120_000);
    await b.page.getByTestId('bench-run').click();
    const out = b.page.getByTestId('bench');
    await b.page.waitForFunction(() => document.querySelector('[data-testid=bench]').dataset.result || /^error/.test(document.querySelector('[data-testid=bench]').textContent), null, { timeout: RUN_TIMEOUT_MS });
    console.log((await out.textContent()).split('\n').map((l) => `# bench: ${l}`).join('\n'));
    const r = JSON.parse(await out.getAttribute('data-result'));
    assert.equal(r.backend, 'cpu');
    assert.ok(r.adapter.length > 0, 'the adapter (or none) is printed');
    assert.ok(r.encoder_ms > 0 && r.decoder_ms_per_prompt > 0, JSON.stringify(r));
    assert.equal(r.everything_s_per_image, null, 'points 0 skips everything-mode');
  } finally {
    await b.close();
  }
});
