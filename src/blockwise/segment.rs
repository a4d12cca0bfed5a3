//! Segmentation into objects across workers (mutex watershed of affinities, connected
//! components of a thresholded prediction) as a block job of four stages, each with its
//! own ledger so that any number of workers share it and an interrupted job continues:
//!
//! 1. **fragments** — every block is segmented on its own (the mutex watershed with
//!    [`WATERSHED_CONTEXT_VOXELS`] of context around it) and written with ids unique to
//!    the block, marked with [`FRAGMENT_BIT`];
//! 2. **faces** — for every block, the fragments touching across its upper faces, with
//!    the affinities between them, kept in a file per block (`faces/<block>.bin`);
//! 3. **merge** — one worker joins fragments that touch (components) or whose mean
//!    affinity across the face exceeds the bias (mutex watershed), numbers the objects
//!    `1..=K` in block order and stores the table in the job's directory;
//! 4. **relabel** — every block's fragment ids are replaced by object ids. Ids without
//!    the fragment bit are final, so a block relabelled twice is unchanged.
//!
//! Workers wait between stages until every block of the previous one is done.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::job::{work_stage, Stage, MAIN_LEDGER};
use super::*;
use crate::geometry::Coordinate;

/// Context (voxels per side) each block of a blockwise mutex watershed sees around itself.
pub const WATERSHED_CONTEXT_VOXELS: i64 = 32;

/// Set on the ids of fragments written by the first stage; object ids never have it.
pub const FRAGMENT_BIT: u64 = 1 << 63;

/// Voxels a mutex-watershed block holds at least when the region is cut (before its
/// context is added).
const WATERSHED_BLOCK_VOXELS: u64 = 1 << 20;

/// The stages' ledgers: fragments, faces, merge; relabelling uses the job's own.
const FRAGMENTS: &str = "ledger-fragments";
const FACES: &str = "ledger-faces";
const MERGE: &str = "ledger-merge";

/// The kind of a face-contact file (in the job's `faces/`): rows of two fragments, then
/// for the mutex watershed the bits of their affinities' sum and the number of edges.
const FACES_MAGIC: &[u8; 8] = b"SGNFACE1";

/// The merge's result in the job's directory.
const TABLE: &str = "objects.bin";

/// How a segmentation job turns a prediction into objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum SegmentMethod {
    /// The mutex watershed of affinities (the first `offsets.len()` channels) with `bias`
    /// subtracted; fragments whose mean affinity is below the bias are background.
    MutexWatershed {
        /// The affinities' offsets (voxels).
        offsets: Vec<Vec<i64>>,
        /// Subtracted from every affinity.
        bias: f64,
        /// Context each block is segmented with (voxels per side).
        context_voxels: i64,
    },
    /// Face-connected components of `prediction > threshold` (a one-channel prediction).
    Components {
        /// Foreground above this value (prediction units).
        threshold: f64,
    },
}

impl SegmentMethod {
    /// The segmentation a task's post-processing parameters ask for (the mutex watershed
    /// of an affinities task), or `None` for a point-wise one.
    pub fn for_task(predictor: &Predictor, parameters: &PostProcessorParameters) -> Option<Self> {
        match (predictor, parameters) {
            (
                Predictor::Affinities { offsets, .. },
                PostProcessorParameters::Watershed { bias, .. },
            ) => Some(SegmentMethod::MutexWatershed {
                offsets: offsets.clone(),
                bias: *bias,
                context_voxels: WATERSHED_CONTEXT_VOXELS,
            }),
            _ => None,
        }
    }

    /// The name outputs are given by default (`bias_0.5`, `components_0.2`).
    pub fn name(&self) -> String {
        match self {
            SegmentMethod::MutexWatershed { bias, .. } => format!("bias_{bias}"),
            SegmentMethod::Components { threshold } => format!("components_{threshold}"),
        }
    }

    /// Refuses a prediction the method cannot segment, naming it.
    fn check(&self, info: &crate::array::ArrayInfo) -> Result<(), TrainError> {
        let dims = info.spatial_axes().len();
        match self {
            SegmentMethod::MutexWatershed {
                offsets,
                bias,
                context_voxels,
            } => {
                if let Some(o) = offsets.iter().find(|o| o.len() != dims) {
                    return Err(TrainError::Data(format!(
                        "{}: the offset {o:?} does not fit its {dims} spatial axes",
                        info.path
                    )));
                }
                if (info.channels() as usize) < offsets.len() {
                    return Err(TrainError::Data(format!(
                        "{}: {} channel(s), the mutex watershed needs one per offset ({})",
                        info.path,
                        info.channels(),
                        offsets.len()
                    )));
                }
                if !bias.is_finite() || *context_voxels < 0 {
                    return Err(TrainError::Data(format!(
                        "mutex watershed: bias {bias} and context {context_voxels} must be finite and not negative"
                    )));
                }
            }
            SegmentMethod::Components { threshold } => {
                if info.channels() != 1 {
                    return Err(TrainError::Data(format!(
                        "{}: {} channels; connected components need a one-channel prediction",
                        info.path,
                        info.channels()
                    )));
                }
                if !threshold.is_finite() {
                    return Err(TrainError::Data(format!(
                        "connected components: the threshold {threshold} is not a number"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What a worker of a segmentation job needs, stored in its description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentSpec {
    /// The prediction segmented (absolute).
    pub prediction: PathBuf,
    /// How.
    pub method: SegmentMethod,
}

/// Options of [`segment_array`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentOptions {
    /// The block size in voxels (whole output chunks per axis); by default the mutex
    /// watershed segments a region of up to `max_one_piece_voxels` in one block, and
    /// larger regions in blocks of about 2²⁰ voxels; components use blocks of about 2²²
    /// voxels.
    pub block_voxels: Option<Vec<u64>>,
    /// The largest region the mutex watershed segments in one piece.
    pub max_one_piece_voxels: u64,
    /// Threads of this process (default: all).
    pub threads: Option<usize>,
    /// Chunk compression of the output.
    pub compression: write::Compression,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            block_voxels: None,
            max_one_piece_voxels: crate::task::predictor::MAX_WATERSHED_VOXELS as u64,
            threads: None,
            compression: write::Compression::default(),
        }
    }
}

/// The block size (nm) of a segmentation of `region` chunked as `chunk` at `vs`.
fn segment_block_nm(
    method: &SegmentMethod,
    chunk: &[u64],
    vs: &Coordinate,
    region: &Roi,
    options: &SegmentOptions,
) -> Result<Coordinate, TrainError> {
    let dims = chunk.len();
    let span: Vec<u64> = (0..dims)
        .map(|a| (region.shape()[a] / vs[a].max(1)).max(1) as u64)
        .collect();
    let to_nm = |b: &[u64]| {
        let nm: Vec<i64> = (0..dims).map(|a| b[a] as i64 * vs[a]).collect();
        Coordinate::new(&nm).map_err(|e| TrainError::Data(e.to_string()))
    };
    if let Some(block) = &options.block_voxels {
        let fits = block.len() == dims
            && block
                .iter()
                .zip(chunk)
                .all(|(b, c)| *b > 0 && *c > 0 && b % c == 0);
        if !fits {
            return Err(TrainError::Data(format!(
                "a block of {block:?} voxels is not a whole number of the output's {chunk:?}-voxel chunks on every axis"
            )));
        }
        return to_nm(block);
    }
    let region_voxels: u64 = span.iter().product();
    match method {
        SegmentMethod::MutexWatershed { .. } if region_voxels <= options.max_one_piece_voxels => {
            // One block covering the region, in whole chunks: the one-piece result.
            let block: Vec<u64> = (0..dims)
                .map(|a| span[a].div_ceil(chunk[a].max(1)) * chunk[a].max(1))
                .collect();
            to_nm(&block)
        }
        SegmentMethod::MutexWatershed { .. } => post_process::post_block_nm(
            chunk,
            vs,
            region,
            WATERSHED_BLOCK_VOXELS.min(options.max_one_piece_voxels),
        ),
        SegmentMethod::Components { .. } => {
            post_process::post_block_nm(chunk, vs, region, post_process::POINTWISE_BLOCK_VOXELS)
        }
    }
}

/// Prepares the segmentation job of `prediction` by `method` into `container/dataset`
/// (uint64 objects, 0 = background; the prediction's region, voxel size and chunks): an
/// unfinished job of the same segmentation is continued, anything else at the output is
/// handled as `mode` says. Workers then take part with [`work_segment`].
pub fn prepare_segment_job(
    prediction: &dyn ArraySource,
    method: &SegmentMethod,
    options: &SegmentOptions,
    (container, dataset, mode): (&Path, &str, WriteMode),
) -> Result<JobFile, TrainError> {
    let info = prediction.info();
    method.check(info)?;
    let (spec, source) = post_process::post_output(
        prediction,
        (DataType::U64, None, options.compression),
        serde_json::json!({
            "parameters": method.name(),
            "method": method,
            "source": info.path,
        }),
    )?;
    let chunk = spec.chunk_voxels.clone().unwrap_or_default();
    let block_nm = segment_block_nm(method, &chunk, &spec.voxel_size, &spec.roi, options)?;
    let path = crate::ops::job::absolute(Path::new(&info.path));
    let worker = serde_json::to_value(SegmentSpec {
        prediction: path,
        method: method.clone(),
    })
    .map_err(|e| TrainError::Data(e.to_string()))?;
    post_process::prepare_post_job(
        &spec,
        (container, dataset, mode),
        (JobKind::Segment, block_nm),
        source,
        worker,
    )
}

/// Segments `prediction` by `method` into `container/dataset` with this process's threads
/// (see [`prepare_segment_job`]); `progress(done, total)` counts the blocks of all four
/// stages.
pub fn segment_array(
    prediction: &dyn ArraySource,
    method: &SegmentMethod,
    options: &SegmentOptions,
    output: (&Path, &str, WriteMode),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PostProcessReport, TrainError> {
    let job = prepare_segment_job(prediction, method, options, output)?;
    let threads = options
        .threads
        .unwrap_or_else(rayon::current_num_threads)
        .max(1);
    let work = work_segment(&job, &WorkOptions::sweeping(), threads, progress)?;
    finished_segment_report(&job, &work)
}

/// The report of a finished segmentation job: objects' voxels summed over the
/// relabelling's done records.
pub fn finished_segment_report(
    job: &JobFile,
    work: &WorkReport,
) -> Result<PostProcessReport, TrainError> {
    let writer = write::reopen(&job.container, &job.dataset)?;
    post_process::finished_post_report(job, &writer, None, work)
}

/// The stages of a segmentation job of `n` blocks.
pub(super) fn stages(n: u64) -> [Stage; 4] {
    let stage = |name, ledger, blocks| Stage {
        name,
        ledger,
        blocks,
    };
    [
        stage("fragments", FRAGMENTS, n),
        stage("faces", FACES, n),
        stage("merge", MERGE, 1),
        stage("relabel", MAIN_LEDGER, n),
    ]
}

/// Takes part in the segmentation job `job` as one worker of `threads` threads, through
/// all its stages (waiting at each for the other workers' blocks), until it is complete
/// or a stage has blocks given up. `progress(done, total)` counts the blocks of all
/// stages.
pub fn work_segment(
    job: &JobFile,
    options: &WorkOptions,
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<WorkReport, TrainError> {
    let opened = Opened::of(job)?;
    let stages = stages(job.grid.len());
    let steps: u64 = stages.iter().map(|s| s.blocks).sum();
    // Workers wait at every stage for the blocks of the others.
    let options = WorkOptions {
        sweep: true,
        ..options.clone()
    };
    let segmenter = opened.segmenter(job, &options.worker);
    let mut before = 0u64;
    let (mut ledger_secs, mut block_secs, mut failed_attempts) = (0.0, 0.0, 0);
    let mut last = WorkReport::default();
    for (i, stage) in stages.iter().enumerate() {
        let report = work_stage(
            job,
            (stage.ledger, stage.blocks),
            &options,
            threads,
            &|k, region| match i {
                0 => segmenter.fragments(k, region),
                1 => segmenter.faces(k, region),
                2 => segmenter.merge(),
                _ => segmenter.relabel(k, region),
            },
            &|done, _| progress(before as usize + done, steps as usize),
        )?;
        report.check_complete(job)?;
        before += stage.blocks;
        ledger_secs += report.ledger_secs;
        block_secs += report.block_secs;
        failed_attempts += report.failed_attempts;
        last = report;
    }
    // The relabelling's counts, with the time and failures of every stage.
    Ok(WorkReport {
        ledger_secs,
        block_secs,
        failed_attempts,
        ..last
    })
}

/// What a worker of a segmentation job opens: its spec, the prediction and the output.
struct Opened {
    spec: SegmentSpec,
    prediction: Box<dyn ArraySource>,
    writer: write::ArrayWriter,
}

impl Opened {
    fn of(job: &JobFile) -> Result<Self, TrainError> {
        let spec: SegmentSpec = serde_json::from_value(job.worker.clone()).map_err(|e| {
            TrainError::Data(format!(
                "{}: not a segmentation job ({e})",
                job.dir().join("job.json").display()
            ))
        })?;
        let prediction = crate::array::open(&spec.prediction)?;
        let writer = write::reopen(&job.container, &job.dataset)?;
        Ok(Self {
            spec,
            prediction,
            writer,
        })
    }

    fn segmenter<'a>(&'a self, job: &'a JobFile, worker: &'a str) -> Segmenter<'a> {
        Segmenter {
            job,
            method: &self.spec.method,
            prediction: self.prediction.as_ref(),
            writer: &self.writer,
            table: OnceLock::new(),
            worker,
        }
    }
}

/// One worker's view of a segmentation job.
struct Segmenter<'a> {
    job: &'a JobFile,
    method: &'a SegmentMethod,
    prediction: &'a dyn ArraySource,
    writer: &'a write::ArrayWriter,
    /// The merge's table, read once.
    table: OnceLock<Result<ObjectTable, String>>,
    worker: &'a str,
}

/// Fragment ids → object ids: `ids[offsets[k] + local - 1]` for fragment `local` of
/// block `k`.
#[derive(Debug, Clone, PartialEq)]
struct ObjectTable {
    offsets: Vec<u64>,
    ids: Vec<u64>,
}

impl ObjectTable {
    /// Little-endian u64s: block count, `count + 1` offsets, the ids.
    fn to_bytes(&self) -> Vec<u8> {
        let n = self.offsets.len().saturating_sub(1) as u64;
        std::iter::once(n)
            .chain(self.offsets.iter().copied())
            .chain(self.ids.iter().copied())
            .flat_map(u64::to_le_bytes)
            .collect()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let n = usize::try_from(*words.first()?).ok()?;
        let offsets = words.get(1..n.checked_add(2)?)?.to_vec();
        let ids = words.get(n + 2..)?.to_vec();
        (offsets.last().copied() == Some(ids.len() as u64)).then_some(Self { offsets, ids })
    }
}

/// Union–find over sparse fragment ids; the smaller id of two becomes the root.
#[derive(Default)]
struct Fragments {
    parent: HashMap<u64, u64>,
}

impl Fragments {
    fn find(&mut self, id: u64) -> u64 {
        let mut root = id;
        while let Some(&p) = self.parent.get(&root) {
            if p == root {
                break;
            }
            root = p;
        }
        let mut x = id;
        while x != root {
            let next = self.parent.get(&x).copied().unwrap_or(root);
            self.parent.insert(x, root);
            x = next;
        }
        root
    }

    fn union(&mut self, a: u64, b: u64) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent.insert(ra.max(rb), ra.min(rb));
        }
    }
}

fn data_error(e: impl std::fmt::Display) -> TrainError {
    TrainError::Data(e.to_string())
}

impl Segmenter<'_> {
    fn vs(&self) -> Coordinate {
        self.prediction.info().geometry.voxel_size
    }

    /// Voxels of a whole block: fragment `local` of block `k` is `k · this + local`.
    fn block_voxels(&self) -> u64 {
        (self.job.grid.block_nm / self.vs())
            .iter()
            .map(|v| v.max(1) as u64)
            .product()
    }

    /// Stage 1: block `k` segmented alone, written with fragment ids.
    fn fragments(&self, k: u64, region: &Roi) -> Result<serde_json::Value, TrainError> {
        let info = self.prediction.info();
        let vs = self.vs();
        let labels = match self.method {
            SegmentMethod::MutexWatershed {
                offsets,
                bias,
                context_voxels,
            } => {
                let context = Coordinate::splat(*context_voxels, vs.dims()) * vs;
                let read = region
                    .grow(&context, &context)
                    .map_err(data_error)?
                    .intersect(&info.roi);
                let p = crate::task::arrays::read_prediction(self.prediction, &read)?;
                let view = p.view();
                let mut labels = crate::task::affinities::mutex_watershed(&view, offsets, *bias)
                    .map_err(data_error)?;
                crate::task::affinities::filter_fragments(&mut labels, &view, offsets.len(), *bias)
                    .map_err(data_error)?;
                let off = (region.begin() - read.begin()) / vs;
                let n = region.shape() / vs;
                labels
                    .slice_each_axis(|ax| {
                        let a = ax.axis.index();
                        ndarray::Slice::from(off[a] as usize..(off[a] + n[a]) as usize)
                    })
                    .to_owned()
            }
            SegmentMethod::Components { threshold } => {
                let mut p = crate::task::arrays::read_prediction(self.prediction, region)?;
                if p.ndim() > vs.dims() {
                    p = p.index_axis_move(ndarray::Axis(0), 0);
                }
                let mask = crate::task::postprocess::threshold(&p, *threshold);
                crate::task::components::connected_components(&mask.view()).0
            }
        };
        let mut own = labels;
        let count = crate::task::affinities::relabel_consecutive(&mut own);
        let base = k * self.block_voxels();
        own.mapv_inplace(|v| if v == 0 { 0 } else { FRAGMENT_BIT | (base + v) });
        self.writer.write(region, &ArrayData::U64(own))?;
        Ok(serde_json::json!({ "fragments": count }))
    }

    /// Stage 2: the fragments of block `k` and of its upper neighbours that touch across
    /// their faces, as `[a, b]` (components) or `[a, b, bits of the affinity sum, edges]`
    /// (mutex watershed).
    fn faces(&self, k: u64, region: &Roi) -> Result<serde_json::Value, TrainError> {
        let grid = &self.job.grid;
        let (counts, index) = (grid.counts(), grid.index(k));
        let vs = self.vs();
        let mut contacts: BTreeSet<(u64, u64)> = BTreeSet::new();
        let mut sums: BTreeMap<(u64, u64), (f64, u64)> = BTreeMap::new();
        for axis in (0..vs.dims()).filter(|a| index[*a] + 1 < counts[*a]) {
            // The last layer of this block and the first of the next along `axis`.
            let mut begin = region.begin().to_vec();
            let mut shape = region.shape().to_vec();
            begin[axis] = region.end()[axis] - vs[axis];
            shape[axis] = 2 * vs[axis];
            let face = Roi::new(
                Coordinate::new(&begin).map_err(data_error)?,
                Coordinate::new(&shape).map_err(data_error)?,
            )
            .map_err(data_error)?;
            let labels = self
                .writer
                .read(&face)?
                .to_labels()
                .map_err(TrainError::Data)?;
            let side = |i: usize| labels.index_axis(ndarray::Axis(axis), i).to_owned();
            let (la, lb) = (side(0), side(1));
            match self.method {
                SegmentMethod::Components { .. } => {
                    for (a, b) in la.iter().zip(lb.iter()) {
                        if *a != 0 && *b != 0 {
                            contacts.insert((*a.min(b), *a.max(b)));
                        }
                    }
                }
                SegmentMethod::MutexWatershed { offsets, .. } => {
                    let affs = crate::task::arrays::read_prediction(self.prediction, &face)?;
                    // The nearest-neighbour channel along `axis`; an edge (u, u + o) is
                    // stored at u: the first layer for +1, the second for −1.
                    let channel = offsets.iter().enumerate().find_map(|(c, o)| {
                        let unit = o.iter().enumerate().all(|(b, v)| {
                            if b == axis {
                                v.abs() == 1
                            } else {
                                *v == 0
                            }
                        });
                        unit.then_some((c, o[axis] > 0))
                    });
                    let w = channel.map(|(c, positive)| {
                        affs.index_axis(ndarray::Axis(0), c)
                            .index_axis(ndarray::Axis(axis), if positive { 0 } else { 1 })
                            .to_owned()
                    });
                    // Without a nearest-neighbour offset along the axis, touching attracts.
                    let w = w.unwrap_or_else(|| ndarray::ArrayD::from_elem(la.raw_dim(), 1.0));
                    for ((a, b), w) in la.iter().zip(lb.iter()).zip(w.iter()) {
                        if *a != 0 && *b != 0 {
                            let e = sums.entry((*a.min(b), *a.max(b))).or_insert((0.0, 0));
                            e.0 += f64::from(*w);
                            e.1 += 1;
                        }
                    }
                }
            }
        }
        let rows: Vec<[u64; 4]> = match self.method {
            SegmentMethod::Components { .. } => {
                contacts.into_iter().map(|(a, b)| [a, b, 0, 0]).collect()
            }
            SegmentMethod::MutexWatershed { .. } => sums
                .into_iter()
                .map(|((a, b), (sum, n))| [a, b, sum.to_bits(), n])
                .collect(),
        };
        super::rows::store(&self.faces_path(k), FACES_MAGIC, &rows)?;
        Ok(serde_json::json!({ "pairs": rows.len() }))
    }

    /// Where block `k`'s face contacts are kept.
    fn faces_path(&self, k: u64) -> PathBuf {
        self.job.dir().join("faces").join(format!("{k}.bin"))
    }

    /// Stage 3: fragments joined into objects, numbered in block order, the table stored.
    fn merge(&self) -> Result<serde_json::Value, TrainError> {
        let n = self.job.grid.len();
        let ledger_error = |e: ledger::LedgerError| TrainError::Data(e.to_string());
        let counts: Vec<(u64, u64)> = self
            .job
            .stage_ledger(FRAGMENTS, self.worker)?
            .done_records(n)
            .map_err(ledger_error)?
            .into_iter()
            .map(|(k, r)| (k, r.extra["fragments"].as_u64().unwrap_or(0)))
            .collect();
        if counts.len() as u64 != n {
            return Err(TrainError::Data(format!(
                "{} of {n} blocks have their fragments; the merge needs all",
                counts.len()
            )));
        }
        let bias = match self.method {
            SegmentMethod::MutexWatershed { bias, .. } => Some(*bias),
            SegmentMethod::Components { .. } => None,
        };
        let mut fragments = Fragments::default();
        let faces = self
            .job
            .stage_ledger(FACES, self.worker)?
            .done_records(n)
            .map_err(ledger_error)?;
        for (k, _) in faces {
            for [a, b, bits, edges] in super::rows::load::<4>(&self.faces_path(k), FACES_MAGIC)? {
                let join = match bias {
                    None => true,
                    Some(bias) => edges > 0 && f64::from_bits(bits) / edges as f64 > bias,
                };
                if join {
                    fragments.union(a, b);
                }
            }
        }
        let block_voxels = self.block_voxels();
        let mut offsets = vec![0u64];
        let mut ids = Vec::new();
        let mut object_of_root: HashMap<u64, u64> = HashMap::new();
        for (k, count) in &counts {
            for local in 1..=*count {
                let root = fragments.find(FRAGMENT_BIT | (k * block_voxels + local));
                let next = object_of_root.len() as u64 + 1;
                ids.push(*object_of_root.entry(root).or_insert(next));
            }
            offsets.push(ids.len() as u64);
        }
        let table = ObjectTable { offsets, ids };
        let path = self.job.dir().join(TABLE);
        let tmp = self.job.dir().join(format!(
            ".{TABLE}.tmp-{}-{}",
            self.worker,
            std::process::id()
        ));
        std::fs::write(&tmp, table.to_bytes())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))?;
        Ok(serde_json::json!({
            "fragments": table.ids.len(),
            "objects": object_of_root.len(),
        }))
    }

    fn table(&self) -> Result<&ObjectTable, TrainError> {
        self.table
            .get_or_init(|| {
                let path = self.job.dir().join(TABLE);
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                ObjectTable::from_bytes(&bytes)
                    .ok_or_else(|| format!("{}: not a table of objects", path.display()))
            })
            .as_ref()
            .map_err(|e| TrainError::Data(e.clone()))
    }

    /// Stage 4: block `k`'s fragment ids replaced by object ids; returns its labelled
    /// voxels.
    fn relabel(&self, _k: u64, region: &Roi) -> Result<serde_json::Value, TrainError> {
        let table = self.table()?;
        let block_voxels = self.block_voxels();
        let mut labels = self
            .writer
            .read(region)?
            .to_labels()
            .map_err(TrainError::Data)?;
        let mut unknown = None;
        labels.mapv_inplace(|v| {
            if v & FRAGMENT_BIT == 0 {
                return v;
            }
            let id = v & !FRAGMENT_BIT;
            let (block, local) = ((id - 1) / block_voxels, (id - 1) % block_voxels);
            let object = usize::try_from(block)
                .ok()
                .and_then(|b| Some((*table.offsets.get(b)?, *table.offsets.get(b + 1)?)))
                .filter(|(begin, end)| begin + local < *end)
                .and_then(|(begin, _)| table.ids.get(usize::try_from(begin + local).ok()?));
            match object {
                Some(o) => *o,
                None => {
                    unknown = Some(id);
                    0
                }
            }
        });
        if let Some(id) = unknown {
            return Err(TrainError::Data(format!(
                "fragment {id} in {region} is not in {}",
                self.job.dir().join(TABLE).display()
            )));
        }
        let labelled = labels.iter().filter(|v| **v != 0).count() as u64;
        self.writer.write(region, &ArrayData::U64(labels))?;
        Ok(serde_json::json!([labelled]))
    }
}

/// Segments the fragments of `blocks` of `job` alone, as a worker stopped in the first
/// stage would have left them (tests of resumption).
#[cfg(test)]
pub(super) fn fragments_only(
    job: &JobFile,
    blocks: std::ops::Range<u64>,
) -> Result<(), TrainError> {
    let opened = Opened::of(job)?;
    let segmenter = opened.segmenter(job, "stopped");
    let ledger = job.stage_ledger(FRAGMENTS, "stopped")?;
    for k in blocks {
        let ledger::Claim::Mine(attempt) = ledger.claim(k).map_err(data_error)? else {
            return Err(TrainError::Data(format!("block {k} is not free")));
        };
        let extra = segmenter.fragments(k, &job.grid.written(k))?;
        ledger
            .complete_with(k, attempt, 0.0, extra)
            .map_err(data_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_tables_survive_their_bytes_and_refuse_torn_ones() {
        let t = ObjectTable {
            offsets: vec![0, 2, 2, 5],
            ids: vec![1, 2, 1, 3, 3],
        };
        let bytes = t.to_bytes();
        assert_eq!(bytes.len(), 8 * (1 + 4 + 5));
        assert_eq!(ObjectTable::from_bytes(&bytes), Some(t));
        assert_eq!(ObjectTable::from_bytes(&bytes[..bytes.len() - 8]), None);
        assert_eq!(ObjectTable::from_bytes(&bytes[..13]), None);
        assert_eq!(ObjectTable::from_bytes(&[]), None);
    }

    #[test]
    fn block_sizes_are_whole_chunks_or_refused() {
        let vs = Coordinate::from([4, 4, 4]);
        let roi = Roi::new(Coordinate::from([0, 0, 0]), vs * 100).unwrap();
        let mws = SegmentMethod::MutexWatershed {
            offsets: vec![vec![1, 0, 0]],
            bias: 0.5,
            context_voxels: 8,
        };
        let mut options = SegmentOptions::default();
        // 100³ voxels fit in one piece: one block of whole chunks covering the region.
        let b = segment_block_nm(&mws, &[32, 32, 32], &vs, &roi, &options).unwrap();
        assert_eq!(b, vs * 128);
        options.max_one_piece_voxels = 1000;
        let b = segment_block_nm(&mws, &[8, 8, 8], &vs, &roi, &options).unwrap();
        assert_eq!(b, Coordinate::from([32, 32, 64]));
        options.block_voxels = Some(vec![16, 16, 24]);
        let b = segment_block_nm(&mws, &[8, 8, 8], &vs, &roi, &options).unwrap();
        assert_eq!(b, Coordinate::from([64, 64, 96]));
        options.block_voxels = Some(vec![16, 16, 20]);
        let e = segment_block_nm(&mws, &[8, 8, 8], &vs, &roi, &options).unwrap_err();
        assert!(e.to_string().contains("[16, 16, 20]"), "{e}");
    }
}
