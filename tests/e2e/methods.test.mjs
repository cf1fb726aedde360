// The page and the CLI refine alike: for each method that runs MobileSAM (everything-mode SEPL,
// cpm, cpm+sepl) the page's labels equal `camsam refine`'s pixel for pixel, and its
// report.json records the same settings. Fixture weights on the page's CPU model (WebGPU off),
// the native CLI on its CPU backend, 4×4 points per side to keep segment-everything short and
// the generator's IoU and stability filters at 0 so the random-weight masks are kept and merged.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { sharedDir, startServer, launch, waitForStatus, readZip, decodePng, camsamBin, tmpDir, camFromGt, download } from './lib.mjs';

const RUN_TIMEOUT_MS = 300_000;
const POINTS = 4;
let server;
before(async () => { server = await startServer(); });
after(() => server?.close());

test('every SAM method gives the CLI\'s labels and report settings in the page (sepl everything-mode, cpm, cpm+sepl; CPU model)', async () => {
  const shared = sharedDir();
  const crops = path.join(shared, 'data/voc_val_crops');
  const weights = path.join(shared, 'fixtures/sam/weights/mobile_sam_random.safetensors');
  const name = '2007_000033'; // an aeroplane (class 1)
  const work = tmpDir('methods');
  for (const d of ['images', 'cams']) fs.mkdirSync(path.join(work, d), { recursive: true });
  const gt = decodePng(fs.readFileSync(path.join(crops, 'gt', `${name}.png`)));
  fs.copyFileSync(path.join(crops, 'images', `${name}.png`), path.join(work, 'images', `${name}.png`));
  fs.writeFileSync(path.join(work, 'cams', `${name}_1.png`), camFromGt(gt, 1));

  const b = await launch({ webgpu: false });
  try {
    await b.page.goto(`${server.origin}/?nodemo&points=${POINTS}&iou=0&stability=0`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('weights-input').setInputFiles(weights);
    await waitForStatus(b.page, b.consoleLines, /weights loaded/, 120_000);
    assert.equal(await b.page.getByTestId('backend').textContent(), 'cpu');
    await b.page.getByTestId('images-input').setInputFiles(path.join(work, 'images', `${name}.png`));
    await b.page.getByTestId('cams-input').setInputFiles(path.join(work, 'cams', `${name}_1.png`));
    for (const [method, select] of [['sepl', 'official-imp2'], ['cpm', 'cpm'], ['cpm+sepl', 'cpm+sepl']]) {
      const out = path.join(work, `cli-${method.replace('+', '-')}`);
      execFileSync(camsamBin(), ['refine', '--mode', method, '--backend', 'cpu', '--weights', weights, '--points-per-side', `${POINTS}`, '--pred-iou-thresh', '0', '--stability-score-thresh', '0',
        '--images', path.join(work, 'images'), '--cams', path.join(work, 'cams'), '--format', 'gray', '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
      await b.page.getByTestId('preset-select').selectOption(select);
      await b.page.waitForFunction(() => !document.querySelector('[data-testid=run]').disabled);
      await b.page.getByTestId('run').click();
      const status = await waitForStatus(b.page, b.consoleLines, /done/, RUN_TIMEOUT_MS);
      assert.match(status, /1 image\(s\) refined/, `${method}: ${status}; issues: ${await b.page.getByTestId('issues').textContent()}`);
      await b.page.locator('#export-gray').check();
      const zip = readZip((await download(b.page, 'export')).bytes);
      const got = decodePng(zip.get(`${name}.png`)), want = decodePng(fs.readFileSync(path.join(out, `${name}.png`)));
      assert.equal(`${got.width}x${got.height}`, `${want.width}x${want.height}`);
      let diff = 0, first = -1;
      for (let i = 0; i < want.data.length; i++) if (got.data[i] !== want.data[i]) { diff++; if (first < 0) first = i; }
      assert.equal(diff, 0, `${method}: ${diff} pixels differ from camsam refine (first at x ${first % want.width}, y ${Math.floor(first / want.width)}: page ${got.data[first]}, CLI ${want.data[first]})`);
      const page = JSON.parse(zip.get('report.json')), cli = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
      if (method !== 'cpm') assert.ok(cli.images[0].sam_masks > 0, `${method}: segment-everything kept masks, so the merge is tested`);
      assert.equal(page.images[0].sam_masks, cli.images[0].sam_masks, `${method}: the page merged as many SAM masks as the CLI`);
      assert.equal(page.method, method);
      assert.deepEqual(page.settings, cli.settings, `${method}: the page's report.json settings equal the CLI's`);
      assert.equal(page.images[0].backend, 'cpu');
    }
  } finally {
    await b.close();
  }
});
