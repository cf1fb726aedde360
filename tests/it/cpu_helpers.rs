//! The CPU model's helper split (`sam::cpu::helpers`, the page's helper workers) gives the
//! same bits as one thread: the encoder's row jobs and shared products, and the decoder's
//! prompt groups, run here by a second copy of the model on its own thread through the same
//! job buffer the page's workers use.

use crate::common::{fixture_weights, voc};
use camsam::sam::cpu::helpers::{self, Buffer, Helpers, Served};
use camsam::sam::cpu::CpuSam;
use camsam::sam::predictor::Prompt;
use camsam::sam::weights::Weights;
use camsam::sam::{preprocess, SamBackend};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Mutex;

/// One helper: a second model serving jobs from a byte buffer on a scoped thread.
struct Thread {
    model: CpuSam,
    served: Mutex<Served>,
    buf: Mutex<Vec<u8>>,
    job: RefCell<Option<Vec<u32>>>,
    jobs: Cell<usize>,
}

struct Bytes<'a>(&'a Mutex<Vec<u8>>);

impl Buffer for Bytes<'_> {
    fn capacity(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn read(&self, at: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.0.lock().unwrap()[at..at + out.len()]);
    }
    fn write(&self, at: usize, bytes: &[u8]) {
        self.0.lock().unwrap()[at..at + bytes.len()].copy_from_slice(bytes);
    }
}

impl Helpers for Thread {
    fn count(&self) -> usize {
        1
    }
    fn capacity(&self) -> usize {
        self.buf.lock().unwrap().len()
    }
    fn write(&self, _: usize, at: usize, bytes: &[u8]) {
        Bytes(&self.buf).write(at, bytes)
    }
    fn read(&self, _: usize, at: usize, out: &mut [u8]) {
        Bytes(&self.buf).read(at, out)
    }
    fn start(&self, _: usize, header: &[u32]) {
        *self.job.borrow_mut() = Some(header.to_vec());
    }
    fn wait(&self, _: usize) -> Result<(), String> {
        let header = self.job.borrow_mut().take().ok_or("no job started")?;
        self.jobs.set(self.jobs.get() + 1);
        // Another thread: its (empty) helper registry is its own, as in a helper worker.
        let (model, served, buf) = (&self.model, &self.served, &self.buf);
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut served = served.lock().unwrap();
                helpers::serve(model, &mut served, &header, &Bytes(buf))
            })
            .join()
        })
        .map_err(|_| "the helper thread panicked".to_string())?
        .map_err(|e| e.to_string())
    }
}

#[test]
fn helpers_give_the_same_embedding_and_masks_as_one_thread() {
    let weights = Weights::load(&fixture_weights()).unwrap();
    let model = CpuSam::new(&weights).unwrap();
    let image = preprocess::read_rgb(&voc().join("images/2007_000033.png")).unwrap();
    let input = preprocess::prepare(&image);
    let (h, w) = input.input_size;
    let prompts: Vec<Prompt> = (0..40)
        .map(|i| Prompt {
            points: vec![(
                (i % 8) as f64 * w as f64 / 8.0 + 3.5,
                (i / 8) as f64 * h as f64 / 5.0 + 7.25,
            )],
            labels: vec![1],
            bbox: (i % 5 == 0).then_some([1.0, 2.0, w as f64 / 2.0, h as f64 / 3.0]),
            ..Default::default()
        })
        .collect();
    let run = || {
        let e = pollster::block_on(model.embed(&input)).unwrap();
        let m = pollster::block_on(model.decode(&e, &prompts, true)).unwrap();
        (pollster::block_on(model.download_embedding(&e)).unwrap(), m)
    };
    let (alone_embedding, alone_masks) = run();

    let helper = Rc::new(Thread {
        model: CpuSam::new(&weights).unwrap(),
        served: Mutex::new(Served::default()),
        buf: Mutex::new(vec![0; 64 << 20]),
        job: RefCell::new(None),
        jobs: Cell::new(0),
    });
    helpers::set(Some(helper.clone()));
    assert_eq!(helpers::threads(), 2);
    let (shared_embedding, shared_masks) = run();
    helpers::set(None);
    assert!(
        helper.jobs.get() > 20,
        "the helper took {} jobs",
        helper.jobs.get()
    );

    let worst = alone_embedding
        .iter()
        .zip(&shared_embedding)
        .enumerate()
        .find(|(_, (a, b))| a.to_bits() != b.to_bits());
    assert_eq!(
        worst, None,
        "the embedding differs (index, (one thread, with a helper))"
    );
    assert_eq!(alone_masks.len(), shared_masks.len());
    for (i, (a, b)) in alone_masks.iter().zip(&shared_masks).enumerate() {
        assert_eq!(a.iou, b.iou, "prompt {i}: IoU predictions differ");
        let diff = a
            .logits
            .iter()
            .zip(&b.logits)
            .position(|(x, y)| x.to_bits() != y.to_bits());
        assert_eq!(diff, None, "prompt {i}: first differing logit");
    }
}
