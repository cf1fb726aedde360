// Helpers for the end-to-end tests: the app server, Chromium, and small real parsers for the
// files the app writes (zip, 8-bit grayscale / palette PNG), using only Node's built-ins.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const artifacts = path.join(repo, 'tests/e2e/artifacts');
/** Screenshots of the review view, for a person to look at (gitignored). */
export const screenshots = path.join(repo, 'tests/e2e/screenshots');

/** The shared reference fixtures: $CAMSAM_SHARED or ../shared; a clear failure when missing. */
export function sharedDir() {
  const dir = process.env.CAMSAM_SHARED || path.resolve(repo, '../shared');
  if (!fs.existsSync(path.join(dir, 'README.md'))) {
    throw new Error(`the shared reference fixtures are missing: expected them at ${dir} (put shared/ beside the repo or set CAMSAM_SHARED)`);
  }
  return dir;
}

/** The native CLI: $CAMSAM_BIN or target/debug/camsam (built by `cargo test` / `cargo build`). */
export function camsamBin() {
  const bin = process.env.CAMSAM_BIN || path.join(repo, 'target/debug/camsam');
  if (!fs.existsSync(bin)) throw new Error(`the camsam binary is missing at ${bin}: run \`cargo build\` first (or set CAMSAM_BIN)`);
  return bin;
}

const tmpDirs = [];
// Scratch folders go when the test process ends (what a person should see is written to
// tests/e2e/artifacts and tests/e2e/screenshots instead).
process.on('exit', () => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A scratch folder under the system temp dir, removed when the tests end. */
export function tmpDir(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `camsam-e2e-${name}-`));
  tmpDirs.push(dir);
  return dir;
}

/** Serve the built app with www/serve.py on a free port of 127.0.0.1 (cross-origin isolated
 *  unless `isolated: false`). */
export async function startServer({ isolated = true } = {}) {
  for (const built of ['pkg/camsam_bg.wasm', 'pkg/camsam_relaxed_bg.wasm']) {
    if (!fs.existsSync(path.join(repo, built))) throw new Error(`${built} is missing: run \`bash www/build.sh\` first`);
  }
  const proc = spawn('python3', [path.join(repo, 'www/serve.py'), '--port', '0', '--root', repo, ...(isolated ? [] : ['--no-isolation'])], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CAMSAM_SERVE_QUIET: '1' },
  });
  const origin = await new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = /serving (http:\/\/127\.0\.0\.1:\d+)\//.exec(buf);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`www/serve.py exited with ${code}`)));
    setTimeout(() => reject(new Error('www/serve.py did not start within 20 s')), 20000);
  });
  return { origin, close: () => proc.kill() };
}

/** Headless Debian Chromium with WebGPU (SwiftShader) unless `webgpu: false`, plus `extraArgs`; a
 *  fresh profile (kept across reloads of the page, so IndexedDB survives them). */
export async function launch({ webgpu = true, extraArgs = [] } = {}) {
  const profile = tmpDir('profile');
  const args = [
    '--no-sandbox', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-default-apps', '--disable-domain-reliability',
    ...extraArgs,
  ];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  else args.push('--disable-webgpu', '--disable-gpu');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true, args, acceptDownloads: true, viewport: { width: 1400, height: 1800 },
  });
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = context.pages()[0] || (await context.newPage());
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  return {
    context, page, requests, consoleLines,
    close: async () => { await context.close(); fs.rmSync(profile, { recursive: true, force: true }); },
  };
}

/** Wait until `status` says done (returns its text) or error; fails with the page's console. */
export async function waitForStatus(page, consoleLines, re, timeoutMs) {
  const t0 = Date.now();
  for (;;) {
    const text = await page.getByTestId('status').textContent();
    if (re.test(text)) return text;
    if (/^error/.test(text)) throw new Error(`status: ${text}\nconsole:\n${consoleLines.join('\n')}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`status still "${text}" after ${timeoutMs} ms\nconsole:\n${consoleLines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// ---------------------------------------------------------------- zip

/** A stored (uncompressed) zip of {name: Buffer}. */
export function writeZip(entries) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name, 'utf8');
    const crc = zlib.crc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(0, 6);
    local.writeUInt16LE(0, 8); local.writeUInt16LE(0, 10); local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26); local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8); central.writeUInt16LE(0, 10); central.writeUInt16LE(0, 12); central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16); central.writeUInt32LE(data.length, 20); central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28); central.writeUInt32LE(offset, 42);
    locals.push(local, nameBuf, data);
    centrals.push(central, nameBuf);
    offset += 30 + nameBuf.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** Read a zip (stored or deflated entries) into a Map name → Buffer. */
export function readZip(buf) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('not a zip archive (no end of central directory)');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map();
  for (let k = 0; k < count; k++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = buf.readUInt16LE(p + 10);
    const csize = buf.readUInt32LE(p + 20);
    const nlen = buf.readUInt16LE(p + 28), xlen = buf.readUInt16LE(p + 30), clen = buf.readUInt16LE(p + 32);
    const lho = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nlen);
    const dataStart = lho + 30 + buf.readUInt16LE(lho + 26) + buf.readUInt16LE(lho + 28);
    const raw = buf.subarray(dataStart, dataStart + csize);
    out.set(name, method === 0 ? Buffer.from(raw) : method === 8 ? zlib.inflateRawSync(raw) : (() => { throw new Error(`zip method ${method}`); })());
    p += 46 + nlen + xlen + clen;
  }
  return out;
}

// ---------------------------------------------------------------- .npy / .npz

/** A C-order `.npy` (v1) of a typed array: `descr` as numpy writes it ('<f4', '<i4'). */
export function writeNpy(descr, shape, data) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(head, 0);
  head[6] = 1; head[7] = 0; head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** An IRN-style CAM `.npz`: `keys` (0-based foreground indices: key k = class k + 1) and
 *  `high_res` (len(keys), H, W) f32, from {class id: Float32Array of H·W}. */
export function writeCamNpz(width, height, cams) {
  const classes = Object.keys(cams).map(Number).sort((a, b) => a - b);
  const stack = new Float32Array(classes.length * width * height);
  classes.forEach((c, i) => stack.set(cams[c], i * width * height));
  return writeZip([
    ['keys.npy', writeNpy('<i4', [classes.length], Int32Array.from(classes, (c) => c - 1))],
    ['high_res.npy', writeNpy('<f4', [classes.length, height, width], stack)],
  ]);
}

// ---------------------------------------------------------------- PNG (8-bit gray / palette / RGB)

/** Decode a non-interlaced 8-bit PNG into {width, height, channels, colorType, data}. */
export function decodePng(buf) {
  const sig = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  if (!buf.subarray(0, 8).equals(sig)) throw new Error('not a PNG');
  let p = 8, width = 0, height = 0, depth = 0, colorType = 0, interlace = 0;
  const idat = [];
  while (p < buf.length) {
    const len = buf.readUInt32BE(p);
    const type = buf.toString('latin1', p + 4, p + 8);
    const body = buf.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0); height = body.readUInt32BE(4);
      depth = body[8]; colorType = body[9]; interlace = body[12];
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    p += 12 + len;
  }
  if (depth !== 8 || interlace !== 0) throw new Error(`unsupported PNG (depth ${depth}, interlace ${interlace})`);
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const data = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const prev = y > 0 ? data.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    const cur = data.subarray(y * stride, (y + 1) * stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? cur[x - channels] : 0, b = prev[x], c = x >= channels ? prev[x - channels] : 0;
      let v = line[x];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const pp = a + b - c, pa = Math.abs(pp - a), pb = Math.abs(pp - b), pc = Math.abs(pp - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (f !== 0) throw new Error(`bad PNG filter ${f}`);
      cur[x] = v & 255;
    }
  }
  return { width, height, channels, colorType, data };
}

/** Encode a grayscale (channels 1) or RGB (3) PNG: 8-bit from bytes `data`, or with `bits` 16
 *  from sample values `data` (big-endian in the file). */
export function encodePng(width, height, channels, data, bits = 8) {
  const type = channels === 3 ? 2 : 0;
  const bytes = bits / 8;
  const stride = width * channels * bytes + 1;
  const raw = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width * channels; i++) {
      const v = data[y * width * channels + i];
      if (bits === 16) raw.writeUInt16BE(v, y * stride + 1 + 2 * i);
      else raw[y * stride + 1 + i] = v;
    }
  }
  const chunk = (tag, body) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(body.length);
    const tb = Buffer.concat([Buffer.from(tag, 'latin1'), body]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(tb) >>> 0);
    return Buffer.concat([len, tb, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bits; ihdr[9] = type; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The CLI's `eval --json` on a folder of predictions. */
export function camsamEval(pred, gt, list) {
  const out = execFileSync(camsamBin(), ['eval', '--pred', pred, '--gt', gt, '--list', list, '--json'], { encoding: 'utf8' });
  return JSON.parse(out);
}

/** A little-endian f32 `.npy` (as `camsam embed` writes) → {shape, data: Float32Array}. */
export function readNpyF32(buf) {
  if (buf.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw new Error('not a .npy file');
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.subarray(major === 1 ? 10 : 12, start).toString('latin1');
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header)) throw new Error(`expected a C-order <f4 array, got ${header}`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter((x) => x.trim()).map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
  return { shape, data };
}

/** The native CLI's CPU embedding of `image` (`camsam embed`), for seeding the page's cache. */
export function nativeEmbedding(weights, image) {
  const out = path.join(tmpDir('embed'), 'emb.npy');
  execFileSync(camsamBin(), ['embed', '--weights', weights, '--image', image, '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  return readNpyF32(fs.readFileSync(out));
}

/** Put `embedding` (Float32Array) into the page's IndexedDB embedding cache under the key the
 *  worker uses: `<SHA-256 of the weights file>:<SHA-256 of the image file>`. The worker creates
 *  the database when it starts, so call this once the status says ready. */
export async function seedEmbedding(page, weightsPath, imageBytes, embedding) {
  const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
  const key = `${sha(fs.readFileSync(weightsPath))}:${sha(imageBytes)}`;
  const b64 = Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength).toString('base64');
  await page.evaluate(async ({ key, b64 }) => {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const db = await new Promise((res, rej) => {
      const req = indexedDB.open('camsam');
      req.onsuccess = () => res(req.result);
      req.onerror = () => rej(req.error);
    });
    await new Promise((res, rej) => {
      const tx = db.transaction('embeddings', 'readwrite');
      tx.objectStore('embeddings').put(new Float32Array(bytes.buffer), key);
      tx.oncomplete = res;
      tx.onerror = () => rej(tx.error);
    });
    db.close();
  }, { key, b64 });
}

/** A CAM for `cls` made here from the ground truth: a Gaussian at the class's centroid whose
 *  spread is 0.6× the class's extent, so it covers the object's core and misses its edges.
 *  Values 0–255, one per pixel. */
export function camValuesFromGt(gt, cls) {
  let n = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
  for (let y = 0; y < gt.height; y++) for (let x = 0; x < gt.width; x++) {
    if (gt.data[y * gt.width + x] !== cls) continue;
    n++; sx += x; sy += y; sxx += x * x; syy += y * y;
  }
  if (n === 0) throw new Error(`class ${cls} is not in the ground truth`);
  const mx = sx / n, my = sy / n;
  const vx = Math.max(1, sxx / n - mx * mx), vy = Math.max(1, syy / n - my * my);
  const cam = new Uint8Array(gt.width * gt.height);
  for (let y = 0; y < gt.height; y++) for (let x = 0; x < gt.width; x++) {
    const d = ((x - mx) ** 2) / (2 * 0.36 * vx) + ((y - my) ** 2) / (2 * 0.36 * vy);
    cam[y * gt.width + x] = Math.round(255 * Math.exp(-d));
  }
  return cam;
}

/** camValuesFromGt as a heatmap PNG (`<name>_<class>.png`). */
export const camFromGt = (gt, cls) => encodePng(gt.width, gt.height, 1, camValuesFromGt(gt, cls));

/** Click the control `testId` and return the file it downloads: `{name, bytes}`. */
export async function download(page, testId) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testId).click()]);
  const file = path.join(tmpDir('dl'), dl.suggestedFilename());
  await dl.saveAs(file);
  return { name: dl.suggestedFilename(), bytes: fs.readFileSync(file) };
}
