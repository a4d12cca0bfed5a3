//! The batch loader: threads that sample and augment batches ahead of the network and
//! hand them out in order, whichever thread made each.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use ndarray::{ArrayD, Axis};
use tch::Tensor;

use super::sample::{Sampler, TrainingSample};
use super::TrainError;

/// A batch as the loader delivers it.
pub struct Batch {
    /// The batch's samples, in order.
    pub samples: Vec<TrainingSample>,
}

/// Loader threads making batches `start..end` ahead of the network: batch `i` holds samples
/// `i·B … i·B + B − 1` and is handed out in order whatever thread made it.
pub struct BatchLoader {
    rx: Option<mpsc::Receiver<(u64, Result<Batch, TrainError>)>>,
    pending: BTreeMap<u64, Result<Batch, TrainError>>,
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl BatchLoader {
    /// Starts `threads` loader threads (at least one) over `sampler`.
    pub fn start(
        sampler: Arc<Sampler>,
        batch_size: usize,
        start: u64,
        end: u64,
        threads: usize,
    ) -> Self {
        let next = Arc::new(AtomicU64::new(start));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel(threads.max(1) * 2);
        let b = batch_size.max(1) as u64;
        let workers = (0..threads.max(1))
            .map(|_| {
                let (next, stop, tx, sampler) =
                    (next.clone(), stop.clone(), tx.clone(), sampler.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= end {
                            break;
                        }
                        let batch = (0..b)
                            .map(|k| sampler.sample(i * b + k))
                            .collect::<Result<Vec<_>, _>>()
                            .map(|samples| Batch { samples });
                        if tx.send((i, batch)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        Self {
            rx: Some(rx),
            pending: BTreeMap::new(),
            stop,
            workers,
        }
    }

    /// Batch `i`, waiting for it if it is not made yet.
    pub fn next(&mut self, i: u64) -> Result<Batch, TrainError> {
        loop {
            if let Some(b) = self.pending.remove(&i) {
                return b;
            }
            match self.rx.as_ref().map(|rx| rx.recv()) {
                Some(Ok((j, b))) => {
                    self.pending.insert(j, b);
                }
                _ => {
                    return Err(TrainError::Data(format!(
                        "the batch loader stopped before iteration {i}"
                    )))
                }
            }
        }
    }
}

impl Drop for BatchLoader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Closing the channel fails the senders' next send, so every thread ends.
        drop(self.rx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

pub(super) fn stack(arrays: Vec<ArrayD<f32>>, device: tch::Device) -> Result<Tensor, TrainError> {
    let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
    let stacked = ndarray::stack(Axis(0), &views).map_err(|e| TrainError::Data(e.to_string()))?;
    let shape: Vec<i64> = stacked.shape().iter().map(|n| *n as i64).collect();
    let contiguous = stacked.as_standard_layout();
    let data = contiguous
        .as_slice()
        .ok_or_else(|| TrainError::Data("a batch is not contiguous".into()))?;
    Ok(Tensor::from_slice(data)
        .f_view(shape.as_slice())?
        .f_to_device(device)?)
}
