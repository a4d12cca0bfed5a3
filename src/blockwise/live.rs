//! A prediction computed on demand instead of read from disk: an array whose chunks are the
//! network's output blocks over a raw volume, each computed the first time something reads
//! it (with its context read from the raw volume through the run's own input steps) and
//! kept in a bounded memo, so that every slice a block covers costs one forward pass. The
//! blocks are those `segno predict` computes over the same volume (the same grid from the
//! same origin), so the values are the same.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};

use ndarray::{ArrayD, IxDyn};
use serde::Serialize;

use super::*;
use crate::array::{ArrayError, ArrayInfo, Geometry};
use crate::nn::Model;

/// Bytes of computed blocks a live prediction keeps by default.
pub const DEFAULT_MEMO_BYTES: usize = 512 << 20;

/// What a live prediction has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LiveStats {
    /// Blocks computed (a block evicted and computed again counts twice).
    pub computed: u64,
    /// Seconds spent computing them (reading context and the forward pass).
    pub compute_secs: f64,
    /// Blocks being computed now.
    pub in_flight: u64,
    /// Blocks whose computation failed.
    pub failed: u64,
    /// Blocks kept in the memo.
    pub kept: u64,
}

impl LiveStats {
    /// Seconds per computed block (0 before the first).
    pub fn secs_per_block(&self) -> f64 {
        if self.computed == 0 {
            0.0
        } else {
            self.compute_secs / self.computed as f64
        }
    }
}

/// Computed blocks by index (with their bytes), least recently used first out when over
/// the budget.
struct Memo<T> {
    blocks: HashMap<u64, (std::sync::Arc<T>, usize, u64)>,
    bytes: usize,
    tick: u64,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self {
            blocks: HashMap::new(),
            bytes: 0,
            tick: 0,
        }
    }
}

impl<T> Memo<T> {
    fn get(&mut self, k: u64) -> Option<std::sync::Arc<T>> {
        self.tick += 1;
        let tick = self.tick;
        self.blocks.get_mut(&k).map(|(b, _, used)| {
            *used = tick;
            b.clone()
        })
    }

    fn insert(&mut self, k: u64, block: std::sync::Arc<T>, bytes: usize, budget: usize) {
        self.tick += 1;
        self.bytes += bytes;
        if let Some((_, old, _)) = self.blocks.insert(k, (block, bytes, self.tick)) {
            self.bytes -= old;
        }
        while self.bytes > budget && self.blocks.len() > 1 {
            let Some((&oldest, _)) = self
                .blocks
                .iter()
                .filter(|(key, _)| **key != k)
                .min_by_key(|(_, (_, _, used))| *used)
            else {
                break;
            };
            if let Some((_, b, _)) = self.blocks.remove(&oldest) {
                self.bytes -= b;
            }
        }
    }
}

/// A run's prediction over a raw volume, computed block by block as it is read.
pub struct LivePrediction {
    info: ArrayInfo,
    grid: BlockGrid,
    inference: Inference,
    raw: Box<dyn ArraySource>,
    /// Copies of the network, one per thread computing blocks at once.
    models: Vec<Mutex<Model>>,
    /// Intra-op threads each computing thread uses (0: the library's setting).
    threads_per_lane: usize,
    channels: usize,
    iteration: u64,
    device: tch::Device,
    memo: Mutex<Memo<ArrayD<f32>>>,
    memo_bytes: usize,
    computing: Mutex<HashSet<u64>>,
    computed: Condvar,
    stats: Mutex<LiveStats>,
}

impl LivePrediction {
    /// The prediction of `which` checkpoint of `run` over the raw volume `raw_path`, read as
    /// `options` say (the run's input steps; another voxel size or element type is refused
    /// naming both unless asked for), computed on `device`. A checkpoint that does not exist
    /// or does not fit the run's network is refused here, before anything is computed.
    pub fn open(
        project: &Path,
        run: &RunConfig,
        which: &Checkpoint,
        raw_path: &Path,
        options: &InputOptions,
        device: tch::Device,
    ) -> Result<Self, TrainError> {
        let loaded = load_model(project, run, which, device)?;
        let input = open_input(project, run, raw_path, options)?;
        let mut inference =
            Inference::for_run(run, input.array.info().geometry.voxel_size, device)?;
        inference.normalisation = input.scale_shift;
        let roi = prediction_roi(&inference, input.array.as_ref(), None)?;
        let block_nm = inference.out_vs * inference.output_shape;
        let grid = BlockGrid::new(roi, block_nm)?;
        let vs = inference.out_vs;
        let dims = vs.dims();
        let spatial = roi.shape() / vs;
        let mut shape = vec![loaded.channels as u64];
        shape.extend(spatial.iter().map(|v| v as u64));
        let mut chunk = vec![loaded.channels as u64];
        chunk.extend(inference.output_shape.iter().map(|v| v as u64));
        let mut axes = vec![crate::array::Axis {
            name: "c^".into(),
            spatial: false,
        }];
        axes.extend(
            ["z", "y", "x"][3 - dims.min(3)..]
                .iter()
                .map(|n| crate::array::Axis {
                    name: n.to_string(),
                    spatial: true,
                }),
        );
        let info = ArrayInfo {
            path: format!(
                "{} predicted by {} at iteration {}",
                raw_path.display(),
                run.name,
                loaded.iteration
            ),
            format: "live prediction",
            data_type: DataType::F32,
            shape,
            chunk_shape: chunk,
            shard_shape: None,
            codecs: "computed".into(),
            fill_value: serde_json::Value::from(0),
            geometry: Geometry::derived(axes, vs, roi.begin(), vec!["nm".into(); dims], "run"),
            roi,
        };
        Ok(Self {
            info,
            grid,
            inference,
            raw: input.array,
            channels: loaded.channels,
            iteration: loaded.iteration,
            device,
            models: vec![Mutex::new(loaded.model)],
            threads_per_lane: 0,
            memo: Mutex::new(Memo::default()),
            memo_bytes: DEFAULT_MEMO_BYTES,
            computing: Mutex::new(HashSet::new()),
            computed: Condvar::new(),
            stats: Mutex::new(LiveStats::default()),
        })
    }

    /// The checkpoint iteration it computes with.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// The device it computes on (`cpu`, `cuda:0`).
    pub fn device_label(&self) -> String {
        match self.device {
            tch::Device::Cuda(i) => format!("cuda:{i}"),
            _ => "cpu".to_string(),
        }
    }

    /// The block grid (the network's output blocks over the predicted region).
    pub fn grid(&self) -> &BlockGrid {
        &self.grid
    }

    /// The indices of the blocks it holds computed now, in grid order.
    pub fn computed_keys(&self) -> Vec<u64> {
        let mut keys: Vec<u64> = self
            .memo
            .lock()
            .map(|m| m.blocks.keys().copied().collect())
            .unwrap_or_default();
        keys.sort_unstable();
        keys
    }

    /// What it has done so far.
    pub fn stats(&self) -> LiveStats {
        let mut s = *self.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.kept = self.memo.lock().map(|m| m.blocks.len() as u64).unwrap_or(0);
        s
    }

    /// Block `k`'s values `(channels, block…)`: from the memo, from another thread computing
    /// it, or computed here.
    pub fn block(&self, k: u64) -> Result<std::sync::Arc<ArrayD<f32>>, TrainError> {
        let lock_error = || TrainError::Data("a live prediction's lock was poisoned".into());
        loop {
            if let Some(b) = self.memo.lock().map_err(|_| lock_error())?.get(k) {
                return Ok(b);
            }
            let mut computing = self.computing.lock().map_err(|_| lock_error())?;
            if computing.contains(&k) {
                // Another thread computes it: wait, then look again.
                drop(self.computed.wait(computing).map_err(|_| lock_error())?);
                continue;
            }
            computing.insert(k);
            break;
        }
        if let Ok(mut s) = self.stats.lock() {
            s.in_flight += 1;
        }
        let started = std::time::Instant::now();
        let result = self.compute(k);
        tracing::trace!(
            block = k,
            secs = started.elapsed().as_secs_f64(),
            "live prediction block"
        );
        if let Ok(mut s) = self.stats.lock() {
            s.in_flight -= 1;
            match &result {
                Ok(_) => {
                    s.computed += 1;
                    s.compute_secs += started.elapsed().as_secs_f64();
                }
                Err(_) => s.failed += 1,
            }
        }
        if let Ok(block) = &result {
            if let Ok(mut memo) = self.memo.lock() {
                memo.insert(k, block.clone(), block.len() * 4, self.memo_bytes);
            }
        }
        if let Ok(mut computing) = self.computing.lock() {
            computing.remove(&k);
        }
        self.computed.notify_all();
        result
    }

    /// Lets `lanes` threads compute blocks at once, each with its own copy of the network
    /// (loaded from the same checkpoint iteration) and `threads` intra-op threads (0 keeps
    /// the library's setting). On a CPU of few cores, blocks side by side on one thread
    /// each outrun one block at a time on all of them.
    pub fn with_lanes(
        mut self,
        project: &Path,
        run: &RunConfig,
        lanes: usize,
        threads: usize,
    ) -> Result<Self, TrainError> {
        let which = Checkpoint::Iteration(self.iteration);
        for _ in 1..lanes.max(1) {
            let copy = load_model(project, run, &which, self.device)?;
            self.models.push(Mutex::new(copy.model));
        }
        self.threads_per_lane = threads;
        Ok(self)
    }

    /// Threads computing blocks at once (copies of the network).
    pub fn lanes(&self) -> usize {
        self.models.len()
    }

    /// A copy of the network no other thread is using (or the first, waiting for it).
    fn free_model(&self) -> Result<std::sync::MutexGuard<'_, Model>, TrainError> {
        for m in &self.models {
            if let Ok(guard) = m.try_lock() {
                return Ok(guard);
            }
        }
        self.models[0]
            .lock()
            .map_err(|_| TrainError::Data("the network's lock was poisoned".into()))
    }

    /// Sets this thread's intra-op threads to the lanes' share (once per thread).
    fn use_lane_threads(&self) {
        thread_local! {
            static SET: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        }
        let n = self.threads_per_lane;
        if n > 0 && SET.with(|s| s.get()) != n {
            tch::set_num_threads(n as i32);
            SET.with(|s| s.set(n));
        }
    }

    /// Runs the network once on a block of zeros, so that the first block the viewer asks
    /// for does not also pay for the library's first-call set-up (memory pools, convolution
    /// plans); meant for the thread that opens the prediction.
    pub fn warm_up(&self) -> Result<(), TrainError> {
        let channels = self.raw.info().channels().max(1) as usize;
        let shape: Vec<usize> = std::iter::once(channels)
            .chain(self.inference.input_shape.iter().map(|v| v as usize))
            .collect();
        let x = ArrayD::<f32>::zeros(IxDyn(&shape));
        self.use_lane_threads();
        let model = self.free_model()?;
        self.inference.forward(&model, &x).map(|_| ())
    }

    /// Times block `k` as a benchmark reference, without the memo: seconds reading its
    /// input (context, input steps) and seconds of the network's forward pass alone, on all
    /// cores (as one `segno predict` worker runs it; the calling thread keeps that setting).
    pub fn time_block(&self, k: u64) -> Result<(f64, f64), TrainError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tch::set_num_threads(cores as i32);
        let started = std::time::Instant::now();
        let x = self
            .inference
            .read_input(self.raw.as_ref(), &self.grid.block(k))?;
        let read = started.elapsed().as_secs_f64();
        let model = self.free_model()?;
        let started = std::time::Instant::now();
        self.inference.forward(&model, &x)?;
        Ok((read, started.elapsed().as_secs_f64()))
    }

    /// Computes block `k`.
    fn compute(&self, k: u64) -> Result<std::sync::Arc<ArrayD<f32>>, TrainError> {
        let block = self.grid.block(k);
        let x = self.inference.read_input(self.raw.as_ref(), &block)?;
        let (values, shape) = {
            self.use_lane_threads();
            let model = self.free_model()?;
            self.inference.forward(&model, &x)?
        };
        let expected: Vec<usize> = std::iter::once(self.channels)
            .chain(self.inference.output_shape.iter().map(|v| v as usize))
            .collect();
        if shape != expected {
            return Err(TrainError::Data(format!(
                "the network gave an output of shape {shape:?} for a block of {expected:?}"
            )));
        }
        ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map(std::sync::Arc::new)
            .map_err(|e| TrainError::Data(e.to_string()))
    }

    /// The grid indices of the blocks intersecting `roi`.
    fn blocks_of(&self, roi: &Roi) -> Vec<u64> {
        let counts = self.grid.counts();
        let size = self.grid.block_nm;
        let begin = self.grid.roi.begin();
        let dims = counts.len();
        let range = |a: usize| {
            let lo = (roi.begin()[a] - begin[a]).div_euclid(size[a]).max(0) as u64;
            let hi = ((roi.end()[a] - begin[a] + size[a] - 1)
                .div_euclid(size[a])
                .max(0) as u64)
                .min(counts[a]);
            lo..hi
        };
        let ranges: Vec<std::ops::Range<u64>> = (0..dims).map(range).collect();
        let mut out = Vec::new();
        let mut index: Vec<u64> = ranges.iter().map(|r| r.start).collect();
        if ranges.iter().any(|r| r.is_empty()) {
            return out;
        }
        loop {
            let k = index
                .iter()
                .zip(&counts)
                .fold(0u64, |acc, (i, n)| acc * n + i);
            out.push(k);
            let mut a = dims;
            loop {
                if a == 0 {
                    return out;
                }
                a -= 1;
                index[a] += 1;
                if index[a] < ranges[a].end {
                    break;
                }
                index[a] = ranges[a].start;
            }
        }
    }
}

impl ArraySource for LivePrediction {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        let info = &self.info;
        check_region(info, roi)?;
        let vs = info.geometry.voxel_size;
        let shape: Vec<usize> = std::iter::once(self.channels)
            .chain((roi.shape() / vs).iter().map(|v| v as usize))
            .collect();
        let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
        for k in self.blocks_of(roi) {
            let values = self
                .block(k)
                .map_err(|e| read_error(info, roi, e.to_string()))?;
            paste(&mut out, (roi, &self.grid.block(k)), &vs, &values, info)?;
        }
        Ok(ArrayData::F32(out))
    }
}

/// Refuses a region a live array cannot read: off its voxel grid or outside it.
fn check_region(info: &ArrayInfo, roi: &Roi) -> Result<(), ArrayError> {
    info.check_aligned(roi)?;
    if info.roi.contains_roi(roi) {
        Ok(())
    } else {
        Err(read_error(
            info,
            roi,
            format!("outside the predicted region {}", info.roi),
        ))
    }
}

/// An error reading `roi` of the live array `info` describes.
fn read_error(info: &ArrayInfo, roi: &Roi, message: String) -> ArrayError {
    ArrayError::Read {
        path: info.path.clone(),
        roi: roi.to_string(),
        message,
    }
}

/// Copies the part of block `block_roi` (values `block`, channels first when `out` has more
/// axes than `vs`) inside `roi` into `out`, which covers `roi`.
fn paste<T: Copy>(
    out: &mut ArrayD<T>,
    (roi, block_roi): (&Roi, &Roi),
    vs: &crate::geometry::Coordinate,
    block: &ArrayD<T>,
    info: &ArrayInfo,
) -> Result<(), ArrayError> {
    let part = block_roi.intersect(roi);
    let src_off = (part.begin() - block_roi.begin()) / *vs;
    let dst_off = (part.begin() - roi.begin()) / *vs;
    let len = part.shape() / *vs;
    let channels = (out.ndim() > vs.dims()).then(|| out.shape()[0]);
    let ranges: Vec<std::ops::Range<usize>> = channels
        .map(|c| 0..c)
        .into_iter()
        .chain((0..vs.dims()).map(|a| {
            let s = src_off[a] as usize;
            s..s + len[a] as usize
        }))
        .collect();
    let offset: Vec<usize> = channels
        .map(|_| 0)
        .into_iter()
        .chain(dst_off.iter().map(|v| v as usize))
        .collect();
    let src = block
        .as_slice()
        .ok_or_else(|| read_error(info, roi, "a computed block is not contiguous".into()))?;
    crate::array::data::copy_sub_block(out, &offset, src, block.shape(), &ranges);
    Ok(())
}

impl ArraySource for std::sync::Arc<LiveSegmentation> {
    fn info(&self) -> &ArrayInfo {
        self.as_ref().info()
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.as_ref().read(roi)
    }
}

impl ArraySource for std::sync::Arc<LivePrediction> {
    fn info(&self) -> &ArrayInfo {
        self.as_ref().info()
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.as_ref().read(roi)
    }
}

/// A live prediction post-processed block by block with one of its task's parameter sets: a
/// segmentation of what is on screen, computed from the prediction's blocks (computing
/// them when needed). Every block is post-processed alone, so the ids of a mutex
/// watershed are those of its block, not of the volume.
pub struct LiveSegmentation {
    prediction: std::sync::Arc<LivePrediction>,
    predictor: crate::task::predictor::Predictor,
    parameters: crate::task::postprocess::PostProcessorParameters,
    info: ArrayInfo,
    memo: Mutex<Memo<ArrayData>>,
}

/// Bytes of post-processed blocks a live segmentation keeps.
const SEGMENTATION_MEMO_BYTES: usize = 256 << 20;

impl LiveSegmentation {
    /// The segmentation of `prediction` (of `run`) with `parameters`, which must be one of
    /// the run's task's parameter sets.
    pub fn new(
        prediction: std::sync::Arc<LivePrediction>,
        run: &RunConfig,
        parameters: crate::task::postprocess::PostProcessorParameters,
    ) -> Result<Self, TrainError> {
        let predictor = crate::task::predictor::Predictor::from_task(&run.task_config)?;
        if !predictor.parameters().contains(&parameters) {
            return Err(TrainError::Data(format!(
                "the parameters {} are not among run {}'s post-processing parameters",
                parameters.name(),
                run.name
            )));
        }
        // What the post-processing gives (its element type and channels), from one voxel.
        let p = prediction.info();
        let probe = ArrayD::<f32>::zeros(IxDyn(
            &std::iter::once(prediction.channels)
                .chain(std::iter::repeat_n(1, p.geometry.voxel_size.dims()))
                .collect::<Vec<_>>(),
        ));
        let (data_type, channels) = match predictor.post_process(&probe, &parameters)? {
            crate::task::predictor::Segmentation::Binary(b) => (DataType::U8, Some(b.shape()[0])),
            crate::task::predictor::Segmentation::Labels(_) => (DataType::U64, None),
        };
        let spatial: Vec<u64> = p.shape[1..].to_vec();
        let block: Vec<u64> = p.chunk_shape[1..].to_vec();
        let (shape, chunk_shape, axes) = match channels {
            Some(c) => (
                std::iter::once(c as u64).chain(spatial).collect(),
                std::iter::once(c as u64).chain(block).collect(),
                p.geometry.axes.clone(),
            ),
            None => (
                spatial,
                block,
                p.geometry
                    .axes
                    .iter()
                    .filter(|a| a.spatial)
                    .cloned()
                    .collect(),
            ),
        };
        let dims = p.geometry.voxel_size.dims();
        let info = ArrayInfo {
            path: format!("{} post-processed with {}", p.path, parameters.name()),
            format: "live segmentation",
            data_type,
            shape,
            chunk_shape,
            shard_shape: None,
            codecs: "computed".into(),
            fill_value: serde_json::Value::from(0),
            geometry: Geometry::derived(
                axes,
                p.geometry.voxel_size,
                p.geometry.offset,
                vec!["nm".into(); dims],
                "run",
            ),
            roi: p.roi,
        };
        Ok(Self {
            prediction,
            predictor,
            parameters,
            info,
            memo: Mutex::new(Memo::default()),
        })
    }

    /// The parameters' name (`threshold_0.5`, `bias_0.5` …).
    pub fn parameters_name(&self) -> String {
        self.parameters.name()
    }

    /// The prediction it post-processes.
    pub fn prediction(&self) -> &std::sync::Arc<LivePrediction> {
        &self.prediction
    }

    /// Block `k` post-processed.
    fn block(&self, k: u64) -> Result<std::sync::Arc<ArrayData>, TrainError> {
        if let Some(b) = self.memo.lock().ok().and_then(|mut m| m.get(k)) {
            return Ok(b);
        }
        let values = self.prediction.block(k)?;
        let data = match self.predictor.post_process(&values, &self.parameters)? {
            crate::task::predictor::Segmentation::Binary(b) => ArrayData::U8(b),
            crate::task::predictor::Segmentation::Labels(l) => ArrayData::U64(l),
        };
        let data = std::sync::Arc::new(data);
        if let Ok(mut memo) = self.memo.lock() {
            let bytes = data.shape().iter().product::<usize>() * data.data_type().size_bytes();
            memo.insert(k, data.clone(), bytes, SEGMENTATION_MEMO_BYTES);
        }
        Ok(data)
    }
}

impl ArraySource for LiveSegmentation {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        let info = &self.info;
        check_region(info, roi)?;
        let vs = info.geometry.voxel_size;
        let channels = (info.shape.len() > vs.dims()).then(|| info.shape[0] as usize);
        let shape: Vec<usize> = channels
            .into_iter()
            .chain((roi.shape() / vs).iter().map(|v| v as usize))
            .collect();
        let mut out = ArrayData::filled(info.data_type, &shape, 0.0);
        let grid = self.prediction.grid();
        for k in self.prediction.blocks_of(roi) {
            let block_roi = grid.block(k);
            let values = self
                .block(k)
                .map_err(|e| read_error(info, roi, e.to_string()))?;
            match (&mut out, values.as_ref()) {
                (ArrayData::U8(o), ArrayData::U8(v)) => paste(o, (roi, &block_roi), &vs, v, info)?,
                (ArrayData::U64(o), ArrayData::U64(v)) => {
                    paste(o, (roi, &block_roi), &vs, v, info)?
                }
                _ => {
                    return Err(read_error(
                        info,
                        roi,
                        "a post-processed block of another type".into(),
                    ))
                }
            }
        }
        Ok(out)
    }
}
