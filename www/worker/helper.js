// A helper worker of the CPU model (pool.js): its own instance of the library and copy of the
// weights, running the jobs the model worker writes into its shared buffer until it is stopped.
// Control words: [0] state (0 idle, 1 posted, 2 done, 3 failed, 4 stopped after a trap), [1] header length, [2..] the
// header; bytes 64.. the error text of a failed job; the job's bytes from 4096.

const POSTED = 1, DONE = 2, FAILED = 3, STOPPED = 4;
const CONTROL = 4096;

self.onmessage = async ({ data: { bytes, name, sab, library } }) => {
  let helper;
  try {
    // The model worker's build (library.js), so that both compute with the same instructions.
    const lib = await import(library);
    await lib.default();
    helper = lib.Helper.load(new Uint8Array(bytes), name);
  } catch (err) {
    self.postMessage({ error: err && err.message ? err.message : String(err) });
    return;
  }
  self.postMessage({ ready: true });
  const ctl = new Int32Array(sab, 0, 16);
  const text = new Uint8Array(sab, 64, CONTROL - 64);
  const buffer = new Uint8Array(sab, CONTROL);
  for (;;) {
    let s;
    while ((s = Atomics.load(ctl, 0)) !== POSTED) Atomics.wait(ctl, 0, s);
    let result = DONE;
    try {
      helper.run(ctl.slice(2, 2 + ctl[1]), buffer);
    } catch (err) {
      // After a trap this instance cannot be trusted: report it, then take no more jobs.
      const message = new TextEncoder().encode(`helper: ${err && err.message ? err.message : String(err)}`).slice(0, text.length - 1);
      text.fill(0);
      text.set(message);
      result = FAILED;
      if (err instanceof WebAssembly.RuntimeError) {
        Atomics.store(ctl, 0, STOPPED);
        Atomics.notify(ctl, 0);
        self.close();
        return;
      }
    }
    Atomics.store(ctl, 0, result);
    Atomics.notify(ctl, 0);
  }
};
