// End-to-end test of the page's medical view (issue 17): a DICOM and a NIfTI from the shared
// fixtures (pydicom's and nibabel's test files, with their decodings) dropped into the image
// input, their slices in the image selector, the displayed 8-bit image against the fixture's,
// the window control (preset, numbers, drag) against DICOM's linear VOI function, labelling
// with no CAM (a SAM box on the fixture weights, the CPU model), and the export: label PNGs per
// slice and the NIfTI's label volume, read back here.
// Run: `bash www/build.sh && cd tests/e2e && npm ci && node --test --test-concurrency=1 medical.test.mjs`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { screenshots, sharedDir, startServer, launch, waitForStatus, readZip, decodePng, encodePng, readNpyF32, download, tmpDir } from './lib.mjs';

let server;

before(async () => {
  fs.mkdirSync(screenshots, { recursive: true });
  server = await startServer();
});
after(() => server?.close());

const MEDICAL = () => path.join(sharedDir(), 'fixtures/medical');
const WEIGHTS = () => path.join(sharedDir(), 'fixtures/sam/weights/mobile_sam_random.safetensors');

/** Every request must go to the app's own origin (or be a blob:/data: URL it made itself). */
function assertSameOrigin(requests, origin) {
  const foreign = requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert.deepEqual(foreign, [], `requests to other origins: ${foreign.join(', ')}`);
  assert.ok(requests.some((u) => u.endsWith('.wasm')), 'the request log saw the wasm module (so it logs the worker too)');
}

/** The image the review shows now (the page's bitmap of the slice), as gray levels: it must be
 *  gray (R = G = B). Read from the page's own module state. */
async function shownImage(page) {
  const { width, height, rgba } = await page.evaluate(async () => {
    const { ui } = await import('/www/ui/state.js');
    const bmp = ui.bitmap;
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const ctx = c.getContext('2d');
    ctx.drawImage(bmp, 0, 0);
    return { width: bmp.width, height: bmp.height, rgba: Array.from(ctx.getImageData(0, 0, bmp.width, bmp.height).data) };
  });
  const gray = new Uint8Array(width * height);
  for (let i = 0; i < gray.length; i++) {
    const [r, g, b] = rgba.slice(4 * i, 4 * i + 3);
    assert.ok(r === g && g === b, `pixel ${i} is not gray: ${r},${g},${b}`);
    gray[i] = r;
  }
  return { width, height, gray };
}

/** The labels the page shows for the image under review (class ids, row-major). */
const shownLabels = (page) => page.evaluate(async () => {
  const { ui } = await import('/www/ui/state.js');
  return { name: ui.current.name, width: ui.current.width, height: ui.current.height, ids: Array.from(ui.current.refined) };
});

/** Largest |a − b| over two equal-size level arrays, with where it is. */
function maxDiff(got, want, what) {
  assert.equal(got.length, want.length, `${what}: size`);
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (d > worst) { worst = d; at = i; }
  }
  return { worst, at, msg: `${what}: max |Δ| ${worst} at pixel ${at} (${got[at]} vs ${want[at]})` };
}

/** DICOM's linear VOI function onto 0..255 (PS3.3 C.11.2.1.2.1), rounded: the oracle here,
 *  written from the standard, not from the page's code. */
function voi(values, center, width) {
  const low = center - 0.5 - (width - 1) / 2, high = center - 0.5 + (width - 1) / 2;
  return Uint8Array.from(values, (x) => (x <= low ? 0 : x > high ? 255 : Math.min(255, Math.max(0, Math.round(((x - (center - 0.5)) / (width - 1) + 0.5) * 255)))));
}

/** Wait until the window control says the window was set, and return the status. */
const windowSet = (b, re) => waitForStatus(b.page, b.consoleLines, re, 30_000);

/** A gzipped NIfTI-1 read back (either byte order, as its sizeof_hdr says): {dims, datatype,
 *  voxOffset, header, voxels}. */
function readNiftiGz(buf) {
  const raw = zlib.gunzipSync(buf);
  const le = raw.readInt32LE(0) === 348;
  assert.ok(le || raw.readInt32BE(0) === 348, 'sizeof_hdr 348 (NIfTI-1)');
  const i16 = (at) => (le ? raw.readInt16LE(at) : raw.readInt16BE(at));
  const ndim = i16(40);
  const dims = [ndim, ...Array.from({ length: ndim }, (_, i) => i16(42 + 2 * i))];
  const voxOffset = le ? raw.readFloatLE(108) : raw.readFloatBE(108);
  return { dims, datatype: i16(70), voxOffset, header: raw.subarray(0, 348), voxels: raw.subarray(voxOffset) };
}

test('medical view: a DICOM and a NIfTI dropped, windowed, labelled with a SAM box without a CAM, exported as label PNGs and a .nii.gz', async () => {
  const med = MEDICAL();
  const files = path.join(med, 'files');
  const expected = (slice) => decodePng(fs.readFileSync(path.join(med, 'expected', `${slice}.png`)));
  const values = (slice) => readNpyF32(fs.readFileSync(path.join(med, 'expected', `${slice}.npy`))).data;
  const b = await launch({ webgpu: false });
  try {
    await b.page.goto(`${server.origin}/?nodemo&backend=cpu`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);

    // Drop: a CT slice (no window in the file: min–max), a 3-D NIfTI (25 slices), and an RT plan
    // (not an image: refused, naming the file).
    await b.page.getByTestId('images-input').setInputFiles([path.join(files, 'CT_small.dcm'), path.join(files, 'anatomical.nii'), path.join(files, 'rtplan.dcm')]);
    await b.page.waitForFunction(() => document.querySelector('[data-testid=review-info]').textContent.startsWith('CT_small:'), null, { timeout: 30_000 });
    const slices = Array.from({ length: 25 }, (_, k) => `anatomical_${String(k).padStart(4, '0')}`);
    assert.deepEqual(await b.page.getByTestId('image-select').locator('option').allTextContents(), ['CT_small', ...slices], 'the slices in the image selector, named as the library names them');
    assert.match(await b.page.getByTestId('summary').textContent(), /^26 image name\(s\), 26 ready to refine \(26 with no CAM/);
    assert.match(await b.page.getByTestId('issues').textContent(), /rtplan\.dcm: .*no pixel data/);

    // The CT slice opened at once, under its default window (min–max), as the fixture's PNG.
    assert.equal(await b.page.getByTestId('window-row').isVisible(), true, 'the window control shows for a gray slice');
    assert.equal(await b.page.getByTestId('window-preset').inputValue(), 'minmax');
    let shown = await shownImage(b.page);
    const ctPng = expected('CT_small');
    assert.equal(`${shown.width}x${shown.height}`, `${ctPng.width}x${ctPng.height}`);
    let d = maxDiff(shown.gray, ctPng.data, 'CT_small min–max vs the fixture');
    assert.ok(d.worst <= 1, d.msg);
    await b.page.screenshot({ path: path.join(screenshots, 'medical-ct-minmax.png'), fullPage: true });

    // A preset: ct-soft (40, 400), as DICOM's linear VOI function says.
    const ct = values('CT_small');
    await b.page.getByTestId('window-preset').selectOption('ct-soft');
    await windowSet(b, /^window: ct-soft \(centre 40, width 400\)$/);
    shown = await shownImage(b.page);
    d = maxDiff(shown.gray, voi(ct, 40, 400), 'CT_small under ct-soft');
    assert.ok(d.worst <= 1, d.msg);
    assert.notDeepEqual(Array.from(shown.gray), Array.from(ctPng.data), 'the window changed the image');
    assert.equal(await b.page.getByTestId('window-center').inputValue(), '40');
    assert.equal(await b.page.getByTestId('window-width').inputValue(), '400');
    await b.page.screenshot({ path: path.join(screenshots, 'medical-ct-soft.png'), fullPage: true });

    // Numbers typed in: centre 300, width 1200.
    await b.page.getByTestId('window-center').fill('300');
    await b.page.getByTestId('window-width').fill('1200');
    await b.page.getByTestId('window-width').press('Enter');
    await windowSet(b, /^window: custom \(centre 300, width 1200\)$/);
    assert.equal(await b.page.getByTestId('window-preset').inputValue(), 'custom');
    d = maxDiff((await shownImage(b.page)).gray, voi(ct, 300, 1200), 'CT_small at 300/1200');
    assert.ok(d.worst <= 1, d.msg);

    // A drag with the window tool: right widens, down raises the centre; the preview follows and
    // the window reached is set (the numbers shown are the ones drawn).
    await b.page.getByTestId('window-tool').check();
    const box = await b.page.getByTestId('canvas').boundingBox();
    const [cx, cy] = [box.x + box.width / 2, box.y + box.height / 2];
    await b.page.mouse.move(cx, cy);
    await b.page.mouse.down();
    await b.page.mouse.move(cx + 60, cy + 30, { steps: 6 });
    await b.page.mouse.up();
    await b.page.waitForFunction(() => /^window: custom \(centre -?\d+, width \d+\)$/.test(document.querySelector('[data-testid=status]').textContent)
      && !/centre 300, width 1200/.test(document.querySelector('[data-testid=status]').textContent), null, { timeout: 30_000 });
    const c = Number(await b.page.getByTestId('window-center').inputValue());
    const w = Number(await b.page.getByTestId('window-width').inputValue());
    assert.ok(w > 1200 && c > 300, `the drag widened the window and raised its centre: ${c}, ${w}`);
    assert.equal(await b.page.getByTestId('status').textContent(), `window: custom (centre ${c}, width ${w})`);
    d = maxDiff((await shownImage(b.page)).gray, voi(ct, c, w), `CT_small at ${c}/${w} after the drag`);
    assert.ok(d.worst <= 1, d.msg);

    // A NIfTI slice: min–max over the whole volume, as nibabel's data shown with imshow(origin='lower').
    const target = 'anatomical_0012';
    await b.page.getByTestId('image-select').selectOption(target);
    await b.page.waitForFunction((n) => document.querySelector('[data-testid=review-info]').textContent.startsWith(`${n}:`), target, { timeout: 30_000 });
    assert.equal(await b.page.getByTestId('window-preset').inputValue(), 'minmax');
    const niiPng = expected(target);
    shown = await shownImage(b.page);
    assert.equal(`${shown.width}x${shown.height}`, `${niiPng.width}x${niiPng.height}`);
    d = maxDiff(shown.gray, niiPng.data, `${target} vs the fixture`);
    assert.ok(d.worst <= 1, d.msg);

    // Labelling with no CAM: Run makes every slice a result, all background (no weights yet:
    // no SAM masks); then the weights, and a SAM box on the slice gives a region class 1.
    await b.page.getByTestId('run').click();
    assert.match(await waitForStatus(b.page, b.consoleLines, /^done/, 120_000), /^done: 26 image\(s\) refined$/);
    await b.page.getByTestId('image-select').selectOption(target);
    await b.page.waitForFunction((n) => document.querySelector('[data-testid=review-info]').textContent.startsWith(`${n}:`), target, { timeout: 30_000 });
    assert.ok((await shownLabels(b.page)).ids.every((k) => k === 0), 'a slice with no CAM starts as all background');
    d = maxDiff((await shownImage(b.page)).gray, niiPng.data, `${target} after the run`);
    assert.ok(d.worst <= 1, d.msg);
    await b.page.getByTestId('weights-input').setInputFiles(WEIGHTS());
    await waitForStatus(b.page, b.consoleLines, /weights loaded/, 120_000);
    assert.equal(await b.page.getByTestId('backend').textContent(), 'cpu');
    await b.page.locator('input[name=tool][value=box]').check();
    await b.page.getByTestId('paint-class').selectOption('1');
    const view = await b.page.getByTestId('canvas').boundingBox();
    // The slice (33×41) is fitted to the canvas: a box over its middle half.
    await b.page.mouse.move(view.x + view.width * 0.35, view.y + view.height * 0.25);
    await b.page.mouse.down();
    await b.page.mouse.move(view.x + view.width * 0.65, view.y + view.height * 0.75, { steps: 5 });
    await b.page.mouse.up();
    await waitForStatus(b.page, b.consoleLines, /SAM: mask added/, 240_000);
    assert.match(await b.page.getByTestId('review-info').textContent(), new RegExp(`^${target}: 1 SAM masks, 1 edit\\(s\\)`));
    const labels = await shownLabels(b.page);
    assert.equal(labels.name, target);
    const labelled = labels.ids.filter((k) => k === 1).length;
    assert.ok(labelled > 0, 'the SAM box labelled a region');
    assert.ok(labels.ids.every((k) => k === 0 || k === 1), 'only background and the box\'s class');
    // Undo and redo go through the library's edit replay.
    await b.page.getByTestId('undo').click();
    await b.page.waitForFunction(() => /0 edit\(s\), 1 to redo/.test(document.querySelector('[data-testid=review-info]').textContent), null, { timeout: 10_000 });
    assert.ok((await shownLabels(b.page)).ids.every((k) => k === 0), 'undone: background again');
    await b.page.getByTestId('redo').click();
    await b.page.waitForFunction(() => /1 edit\(s\), 0 to redo/.test(document.querySelector('[data-testid=review-info]').textContent), null, { timeout: 10_000 });
    assert.deepEqual((await shownLabels(b.page)).ids, labels.ids, 'redone: the box region again');
    await b.page.screenshot({ path: path.join(screenshots, 'medical-nifti-labelled.png'), fullPage: true });

    // Export: one label PNG per slice, and the NIfTI's label volume whose voxels are the
    // page's labels on the reference's grid (slice K = data[:, :, K], rows from the highest j).
    await b.page.locator('#export-gray').check();
    const zip = readZip((await download(b.page, 'export')).bytes);
    assert.deepEqual([...zip.keys()].filter((k) => k.endsWith('.png')).sort(), ['CT_small.png', ...slices.map((s) => `${s}.png`)].sort());
    const png = decodePng(zip.get(`${target}.png`));
    assert.deepEqual(Array.from(png.data), labels.ids, 'the label PNG is the page\'s labels');
    assert.ok(zip.has('anatomical.nii.gz'), `the label volume is in the zip: ${[...zip.keys()].join(', ')}`);
    assert.ok(!zip.has('CT_small.nii.gz'), 'a DICOM gets no volume');
    const vol = readNiftiGz(zip.get('anatomical.nii.gz'));
    const ref = fs.readFileSync(path.join(files, 'anatomical.nii'));
    assert.deepEqual(vol.dims, [3, 33, 41, 25]);
    assert.equal(vol.datatype, 2, 'uint8 labels');
    assert.ok(vol.header.subarray(76, 108).equals(ref.subarray(76, 108)), 'pixdim: the reference\'s');
    assert.ok(vol.header.subarray(252, 348).equals(ref.subarray(252, 348)), 'qform/sform: the reference\'s');
    const [nx, ny, nz] = [33, 41, 25];
    assert.equal(vol.voxels.length, nx * ny * nz);
    let ones = 0;
    for (let k = 0; k < nz; k++) {
      const ids = decodePng(zip.get(`${slices[k]}.png`)).data;
      for (let r = 0; r < ny; r++) {
        for (let i = 0; i < nx; i++) {
          const v = vol.voxels[i + nx * ((ny - 1 - r) + ny * k)];
          if (v !== ids[r * nx + i]) assert.fail(`voxel (${i}, ${ny - 1 - r}, ${k}) is ${v}; slice ${slices[k]} has ${ids[r * nx + i]} at row ${r}, column ${i}`);
          if (v === 1) ones++;
        }
      }
    }
    assert.equal(ones, labelled, 'the volume holds exactly the labelled region');

    // Another window for the volume: every slice's image follows (a stored one too), and SAM
    // sees the new image: the next prompt embeds it again (a second cached embedding).
    const embeddings = () => b.page.evaluate(() => new Promise((resolve, reject) => {
      const req = indexedDB.open('camsam');
      req.onsuccess = () => {
        const q = req.result.transaction('embeddings').objectStore('embeddings').count();
        q.onsuccess = () => { resolve(q.result); req.result.close(); };
        q.onerror = () => reject(q.error);
      };
      req.onerror = () => reject(req.error);
    }));
    assert.equal(await embeddings(), 1, 'one embedding: the slice under its first window');
    await b.page.getByTestId('window-center').fill('2000');
    await b.page.getByTestId('window-width').fill('6000');
    await b.page.getByTestId('window-width').press('Enter');
    await windowSet(b, /^window: custom \(centre 2000, width 6000\)$/);
    d = maxDiff((await shownImage(b.page)).gray, voi(values(target), 2000, 6000), `${target} at 2000/6000`);
    assert.ok(d.worst <= 1, d.msg);
    await b.page.locator('input[name=tool][value=point]').check();
    await b.page.mouse.click(view.x + view.width / 2, view.y + view.height / 2);
    await waitForStatus(b.page, b.consoleLines, /SAM: mask added/, 240_000);
    assert.equal(await embeddings(), 2, 'the new window\'s image was embedded');
    const other = 'anatomical_0003';
    await b.page.getByTestId('image-select').selectOption(other);
    await b.page.waitForFunction((n) => document.querySelector('[data-testid=review-info]').textContent.startsWith(`${n}:`), other, { timeout: 30_000 });
    assert.equal(await b.page.getByTestId('window-center').inputValue(), '2000');
    d = maxDiff((await shownImage(b.page)).gray, voi(values(other), 2000, 6000), `${other} (stored) at 2000/6000`);
    assert.ok(d.worst <= 1, d.msg);
    assertSameOrigin(b.requests, server.origin);
  } finally {
    await b.close();
  }
});

test('a DICOM series folder opens in series order (InstanceNumber, not file name); a 16-bit PNG keeps its range (min–max, not ÷257); Run gives images with no CAM segment-everything masks to click', async () => {
  const work = tmpDir('series');
  const dir = path.join(work, 'series');
  fs.mkdirSync(dir);
  // Three copies of one MR slice whose InstanceNumber (IS, 2 bytes: "1 ") is rewritten: a → 3, b → 1, c → 2.
  const mr = fs.readFileSync(path.join(MEDICAL(), 'files/MR_small.dcm'));
  const at = mr.indexOf(Buffer.from([0x20, 0x00, 0x13, 0x00, 0x49, 0x53, 0x02, 0x00]));
  assert.ok(at > 0, 'MR_small.dcm has an InstanceNumber element');
  for (const [name, instance] of [['a', '3 '], ['b', '1 '], ['c', '2 ']]) {
    const copy = Buffer.from(mr);
    copy.write(instance, at + 8, 'latin1');
    fs.writeFileSync(path.join(dir, `${name}.dcm`), copy);
  }
  // A 16-bit gray PNG, 4×2, values 0 … 4000: an 8-bit reading would show it nearly black.
  const values = [0, 500, 1000, 1500, 2000, 2500, 3000, 4000];
  fs.writeFileSync(path.join(work, 'scan16.png'), encodePng(4, 2, 1, values, 16));
  const b = await launch({ webgpu: false });
  try {
    // 2×2 points, every mask kept: a short segment-everything on the CPU model.
    await b.page.goto(`${server.origin}/?nodemo&backend=cpu&points=2&iou=0&stability=0`);
    await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
    await b.page.getByTestId('images-folder').setInputFiles(dir);
    await b.page.waitForFunction(() => document.querySelectorAll('#image-select option').length === 3, null, { timeout: 30_000 });
    assert.deepEqual(await b.page.getByTestId('image-select').locator('option').allTextContents(), ['b', 'c', 'a'], 'series order: InstanceNumber 1, 2, 3');
    // MR_small has its own window (600, 1600): the default.
    await b.page.waitForFunction(() => document.querySelector('[data-testid=review-info]').textContent.startsWith('b:'), null, { timeout: 30_000 });
    assert.equal(await b.page.getByTestId('window-preset').inputValue(), 'file');
    const mrValues = readNpyF32(fs.readFileSync(path.join(MEDICAL(), 'expected/MR_small.npy'))).data;
    let d = maxDiff((await shownImage(b.page)).gray, voi(mrValues, 600, 1600), 'b under the file\'s window');
    assert.ok(d.worst <= 1, d.msg);

    // Dropped on the drop zone (a DataTransfer with the file, as a drag from the desktop gives).
    const dt = await b.page.evaluateHandle((b64) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const t = new DataTransfer();
      t.items.add(new File([bytes], 'scan16.png', { type: 'image/png' }));
      return t;
    }, fs.readFileSync(path.join(work, 'scan16.png')).toString('base64'));
    await b.page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer: dt });
    await b.page.waitForFunction(() => [...document.querySelectorAll('#image-select option')].some((o) => o.textContent === 'scan16'), null, { timeout: 30_000 });
    await b.page.getByTestId('image-select').selectOption('scan16');
    await b.page.waitForFunction(() => document.querySelector('[data-testid=review-info]').textContent.startsWith('scan16:'), null, { timeout: 30_000 });
    assert.equal(await b.page.getByTestId('window-preset').inputValue(), 'minmax');
    d = maxDiff((await shownImage(b.page)).gray, Uint8Array.from(values, (v) => Math.round((v / 4000) * 255)), 'scan16 min–max');
    assert.ok(d.worst <= 1, d.msg);

    // With weights, Run gives the images with no CAM segment-everything's masks (labels still all
    // background); a click with the mask tool gives one a class.
    await b.page.getByTestId('weights-input').setInputFiles(WEIGHTS());
    await waitForStatus(b.page, b.consoleLines, /weights loaded/, 120_000);
    await b.page.getByTestId('run').click();
    assert.match(await waitForStatus(b.page, b.consoleLines, /^done/, 240_000), /^done: 4 image\(s\) refined$/);
    assert.deepEqual(await b.page.getByTestId('image-select').locator('option').allTextContents(), ['b', 'c', 'a', 'scan16'], 'run order: medical files as loaded, the series in series order');
    await b.page.getByTestId('image-select').selectOption('b');
    await b.page.waitForFunction(() => document.querySelector('[data-testid=review-info]').textContent.startsWith('b:'), null, { timeout: 30_000 });
    const info = await b.page.getByTestId('review-info').textContent();
    const masks = Number(/(\d+) SAM masks/.exec(info)[1]);
    assert.ok(masks > 0, `segment-everything found masks: ${info}`);
    assert.ok((await shownLabels(b.page)).ids.every((k) => k === 0), 'no CAM: all background before any edit');
    await b.page.locator('input[name=tool][value=mask]').check();
    await b.page.getByTestId('paint-class').selectOption('2');
    const view = await b.page.getByTestId('canvas').boundingBox();
    await b.page.mouse.click(view.x + view.width / 2, view.y + view.height / 2);
    await b.page.waitForFunction(() => /1 edit\(s\), 0 to redo/.test(document.querySelector('[data-testid=review-info]').textContent), null, { timeout: 10_000 })
      .catch(async () => assert.fail(`no edit after a mask click: ${await b.page.getByTestId('review-info').textContent()}`));
    assert.ok((await shownLabels(b.page)).ids.some((k) => k === 2), 'the clicked mask took class 2');
    assertSameOrigin(b.requests, server.origin);
  } finally {
    await b.close();
  }
});
