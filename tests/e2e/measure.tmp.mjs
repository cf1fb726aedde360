import { startServer, launch, waitForStatus, sharedDir } from './lib.mjs';
import path from 'node:path';
const server = await startServer();
const b = await launch({ webgpu: process.argv[2] !== 'cpu' });
try {
  await b.page.goto(`${server.origin}/?nodemo&bench&points=0&decoder-points=1${process.argv[2] === "cpu" ? "&backend=cpu" : ""}`);
  await waitForStatus(b.page, b.consoleLines, /ready/, 60_000);
  const t0 = Date.now();
  await b.page.getByTestId('weights-input').setInputFiles(path.join(sharedDir(), 'fixtures/sam/weights/mobile_sam_random.safetensors'));
  await waitForStatus(b.page, b.consoleLines, /weights loaded|error/, 300_000);
  console.log('load s', (Date.now() - t0) / 1000, await b.page.getByTestId('status').textContent());
  console.log('backend', await b.page.getByTestId('backend').textContent(), await b.page.getByTestId('adapter').textContent(), await b.page.getByTestId('backend-notice').textContent());
  const t1 = Date.now();
  await b.page.getByTestId('bench-run').click();
  await b.page.waitForFunction(() => !/running|waiting/.test(document.querySelector('[data-testid=bench]').textContent), null, { timeout: 590_000 });
  console.log('bench s', (Date.now() - t1) / 1000);
  console.log(await b.page.getByTestId('bench').textContent());
} finally { console.log(b.consoleLines.slice(-20).join('\n')); await b.close(); server.close(); }
