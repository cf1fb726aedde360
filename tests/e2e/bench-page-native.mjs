// The page's CPU model against the native CPU backend, in one run on this machine: encoder
// ms/image, decoder ms/prompt in batches of 64 (3 masks each) and segment-everything s/image
// at 32×32 points, on the same image (the demo's street scene) and weights, then the ratios
// page / native. A benchmark: it prints figures and asserts nothing.
//
//   cargo build --release && bash www/build.sh
//   node tests/e2e/bench-page-native.mjs [--weights mobile_sam.pt] [--threads N] [--points 32] [--simd 128]
//
// Native: `camsam bench sam --backend cpu --image … --repeat 3` (fastest encoder pass of 3).
// Page: headless Chromium, WebGPU off, the bench view (`?bench&backend=cpu`), served cross-origin
// isolated by www/serve.py so the CPU model runs on its helper workers (`--threads 1`: one), in
// the build the browser picks (relaxed SIMD where it has it; `--simd 128`: the SIMD128 build).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repo, sharedDir, startServer, launch, waitForStatus, tmpDir } from './lib.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const weights = path.resolve(arg('weights', path.join(sharedDir(), 'fixtures/sam/weights/mobile_sam_random.safetensors')));
const threads = arg('threads', '');
const points = Number(arg('points', '32'));
const simd = arg('simd', '');
const bin = process.env.CAMSAM_BIN || path.join(repo, 'target/release/camsam');
if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`cargo build --release\` (or set CAMSAM_BIN)`);

const demo = tmpDir('bench');
execFileSync(bin, ['demo', '--out', demo], { stdio: 'ignore' });
const image = path.join(demo, 'images/demo_street.png');

console.log(`machine: ${os.cpus()[0].model}, ${os.cpus().length} cores; weights ${path.basename(weights)}; image demo_street.png`);
const nativeOut = execFileSync(bin, ['bench', 'sam', '--backend', 'cpu', '--weights', weights, '--image', image, '--repeat', '3'], { encoding: 'utf8' });
const grab = (re, what) => {
  const m = re.exec(nativeOut);
  if (!m) throw new Error(`camsam bench sam printed no ${what}:\n${nativeOut}`);
  return Number(m[1]);
};
const native = {
  backend: /backend: ([^\n]*?);/.exec(nativeOut)?.[1] ?? '?',
  encoder: grab(/encoder: ([\d.]+) ms\/image/, 'encoder time'),
  decoder: grab(/decoder: ([\d.]+) ms\/prompt wall[^\n]*in batches of 64 \(3 masks/, 'decoder time'),
  everything: grab(/everything: ([\d.]+) s\/image/, 'everything time'),
};

const server = await startServer();
const b = await launch({ webgpu: false });
let page;
try {
  await b.page.goto(`${server.origin}/?nodemo&bench&backend=cpu&points=${points}&decoder-batch=64${threads ? `&threads=${threads}` : ''}${simd ? `&simd=${simd}` : ''}`);
  await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
  await b.page.getByTestId('weights-input').setInputFiles(weights);
  await waitForStatus(b.page, b.consoleLines, /weights loaded/, 300_000);
  await b.page.getByTestId('bench-run').click();
  await b.page.waitForFunction(() => document.querySelector('[data-testid=bench]').dataset.result || /^error/.test(document.querySelector('[data-testid=bench]').textContent), null, { timeout: 3_600_000 });
  const r = JSON.parse(await b.page.getByTestId('bench').getAttribute('data-result') || 'null');
  if (!r) throw new Error(`the bench view failed: ${await b.page.getByTestId('bench').textContent()}`);
  page = { backend: `${r.model_backend}, SIMD ${r.simd}`, encoder: r.encoder_ms, decoder: r.decoder_ms_per_prompt, everything: r.everything_s_per_image };
} finally {
  await b.close();
  server.close();
}

const row = (name, unit, n, p, target) => {
  const ratio = p / n;
  console.log(`${name.padEnd(26)} ${`${n.toFixed(1)} ${unit}`.padStart(14)} ${`${p.toFixed(1)} ${unit}`.padStart(14)} ${ratio.toFixed(2).padStart(7)}×${target ? `  (target ≤ ${target}×)` : ''}`);
};
console.log(`native: ${native.backend}\npage:   ${page.backend}`);
console.log(`${''.padEnd(26)} ${'native'.padStart(14)} ${'page'.padStart(14)} ${'page/native'.padStart(8)}`);
row('encoder', 'ms', native.encoder, page.encoder, 2.5);
row('decoder, batches of 64', 'ms/prompt', native.decoder, page.decoder, 2.5);
if (page.everything !== null) row(`everything ${points}×${points}`, 's', native.everything, page.everything);
