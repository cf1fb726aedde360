//! The page's helper workers for the CPU model ([`crate::sam::cpu::helpers`]): the model
//! worker hands [`Sam::use_helpers`] a pool (www/worker/pool.js: one `SharedArrayBuffer` and one
//! worker per helper), and each helper worker runs [`Helper`], its own copy of the model, on the
//! jobs written into its buffer. JS only moves bytes and wakes threads; the split of the work
//! and the jobs themselves are the library's.

use super::{js_err, js_error, model::Sam};
use crate::sam::cpu::helpers::{self, Buffer, Helpers, Served};
use crate::sam::cpu::CpuSam;
use crate::sam::weights::Weights;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The pool as www/worker/pool.js makes it.
    pub type HelperPool;
    #[wasm_bindgen(method)]
    fn count(this: &HelperPool) -> usize;
    #[wasm_bindgen(method)]
    fn capacity(this: &HelperPool) -> usize;
    /// Helper `i`'s buffer, bytes `at .. at + len`.
    #[wasm_bindgen(method)]
    fn view(this: &HelperPool, i: usize, at: usize, len: usize) -> js_sys::Uint8Array;
    #[wasm_bindgen(method)]
    fn start(this: &HelperPool, i: usize, header: &[u32]);
    /// Blocks until helper `i`'s job ends: `undefined`, or why it failed.
    #[wasm_bindgen(method)]
    fn wait(this: &HelperPool, i: usize) -> Option<String>;
}

struct Pool(HelperPool);

impl Helpers for Pool {
    fn count(&self) -> usize {
        self.0.count()
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
    fn write(&self, i: usize, at: usize, bytes: &[u8]) {
        self.0.view(i, at, bytes.len()).copy_from(bytes);
    }
    fn read(&self, i: usize, at: usize, out: &mut [u8]) {
        self.0.view(i, at, out.len()).copy_to(out);
    }
    fn start(&self, i: usize, header: &[u32]) {
        self.0.start(i, header);
    }
    fn wait(&self, i: usize) -> Result<(), String> {
        self.0.wait(i).map_or(Ok(()), Err)
    }
}

#[wasm_bindgen]
impl Sam {
    /// Shares the CPU model's work with `pool`'s helpers from now on (`null`: this thread
    /// alone). Masks are the same either way.
    #[wasm_bindgen(js_name = useHelpers)]
    pub fn use_helpers(&mut self, pool: Option<HelperPool>) {
        helpers::set(pool.map(|p| Rc::new(Pool(p)) as Rc<dyn Helpers>));
        self.refresh_backend_name();
    }

    /// Threads the CPU model runs on (1 + helpers; 1 on WebGPU).
    #[wasm_bindgen(getter)]
    pub fn threads(&self) -> usize {
        if self.kind() == "cpu" {
            helpers::threads()
        } else {
            1
        }
    }
}

/// A helper worker's copy of the CPU model.
#[wasm_bindgen]
pub struct Helper {
    model: CpuSam,
    served: Served,
}

struct View(js_sys::Uint8Array);

impl Buffer for View {
    fn capacity(&self) -> usize {
        self.0.length() as usize
    }
    fn read(&self, at: usize, out: &mut [u8]) {
        self.0
            .subarray(at as u32, (at + out.len()) as u32)
            .copy_to(out);
    }
    fn write(&self, at: usize, bytes: &[u8]) {
        self.0
            .subarray(at as u32, (at + bytes.len()) as u32)
            .copy_from(bytes);
    }
}

#[wasm_bindgen]
impl Helper {
    /// The CPU model from a checkpoint's bytes (as [`Sam::load`] reads them).
    pub fn load(bytes: Vec<u8>, name: String) -> Result<Helper, JsValue> {
        let weights = Weights::from_bytes(&bytes, &name).map_err(js_err)?;
        Ok(Helper {
            model: CpuSam::new(&weights).map_err(js_err)?,
            served: Served::default(),
        })
    }

    /// Runs the job `header` on `buffer` (the helper's whole shared buffer).
    pub fn run(&mut self, header: Vec<u32>, buffer: js_sys::Uint8Array) -> Result<(), JsValue> {
        if buffer.length() == 0 {
            return Err(js_error("model", "a helper's buffer is empty"));
        }
        helpers::serve(&self.model, &mut self.served, &header, &View(buffer)).map_err(js_err)
    }
}
