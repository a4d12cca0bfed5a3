//! Scoring a segmentation against ground truth over a region of any size as a block job:
//! every block's sufficient statistics — voxel counts and distance sums of the binary
//! criteria, or the contingency table of two labelings — are computed alone and kept in
//! the job's directory, and the scores of the region are computed from their sums, so
//! any number of workers share the work and an interrupted evaluation continues.
//!
//! Counts, the variation of information, clipped distances and tolerance rates are exact
//! (each block is read with a context reaching past the clip distance and the tolerance).
//! The unclipped mean distances and the Hausdorff distance are exact when every voxel's
//! nearest foreground voxel of the other array lies within its block's context; otherwise
//! they are reported as not computed, with the number of voxels that lacked context.
//!
//! An evaluation's directory holds the job (`.segno-job/`, with the contingency tables of
//! instance evaluations in `.segno-job/tables/`) and, once complete, `report.json`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::job::{work_stage, MAIN_LEDGER};
use super::*;
use crate::geometry::Coordinate;
use crate::task::evaluate::{self, BlockContext, ChannelStats};

/// What an evaluation job scores and how: stored in its description for its workers, and
/// compared when the same directory is given again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateSpec {
    /// The array scored (absolute).
    pub test: PathBuf,
    /// The ground truth (absolute).
    pub truth: PathBuf,
    /// Voxels are scored only where this array is non-zero (absolute).
    pub mask: Option<PathBuf>,
    /// Instance scores of two labelings instead of binary scores.
    pub instance: bool,
    /// Channel names of a multi-channel test array (binary scores).
    pub channels: Vec<String>,
    /// Distances are clipped here in the clipped criteria (nm).
    pub clip_distance_nm: f64,
    /// Distances up to this count as matched in the tolerance criteria (nm).
    pub tolerance_nm: f64,
    /// How far around each block distances are measured (nm); at least the clip distance
    /// and the tolerance.
    pub context_nm: f64,
}

impl EvaluateSpec {
    /// The context read around each block, in voxels per axis at `voxel_size` (none for
    /// instance scores, which need no distances).
    pub fn context_voxels(&self, voxel_size: &Coordinate) -> Coordinate {
        let values: Vec<i64> = voxel_size
            .iter()
            .map(|v| {
                if self.instance {
                    0
                } else {
                    // One voxel beyond the reach, so that a distance equal to it is exact.
                    (self.context_nm / v.max(1) as f64).ceil() as i64
                }
            })
            .collect();
        Coordinate::new(&values).unwrap_or_else(|_| Coordinate::zeros(voxel_size.dims()))
    }
}

/// The arrays an evaluation reads, opened.
pub struct EvaluateArrays<'a> {
    /// The array scored.
    pub test: &'a dyn ArraySource,
    /// The ground truth.
    pub truth: &'a dyn ArraySource,
    /// Where voxels are scored.
    pub mask: Option<&'a dyn ArraySource>,
}

/// The sums an evaluation's scores are computed from.
#[derive(Debug, Clone, PartialEq)]
pub enum Totals {
    /// Per channel, the binary criteria's statistics.
    Binary(Vec<ChannelStats>),
    /// Voxels per (test label, truth label).
    Instance(HashMap<(u64, u64), u64>),
}

impl Totals {
    /// Adds the totals of another block (of the same kind).
    pub fn add(&mut self, other: Totals) -> Result<(), TrainError> {
        match (self, other) {
            (Totals::Binary(a), Totals::Binary(b)) if a.len() == b.len() => {
                a.iter_mut().zip(&b).for_each(|(a, b)| a.add(b));
            }
            (Totals::Instance(a), Totals::Instance(b)) => {
                for (key, n) in b {
                    *a.entry(key).or_default() += n;
                }
            }
            _ => {
                return Err(TrainError::Data(
                    "blocks of one evaluation gave statistics of different kinds".into(),
                ))
            }
        }
        Ok(())
    }

    /// The scores (named per channel when the test array has a `channel_axis`), with the
    /// criteria left undefined because distances were unknown and how many voxels lacked
    /// context for each.
    pub fn scores(
        &self,
        spec: &EvaluateSpec,
        channel_axis: bool,
    ) -> (evaluate::Scores, Vec<NotComputed>) {
        match self {
            Totals::Instance(table) => (evaluate::instance_scores(table), Vec::new()),
            Totals::Binary(stats) => {
                let named = channel_axis.then_some(spec.channels.as_slice());
                let scores = evaluate::binary_scores(stats, named);
                let mut missing = Vec::new();
                for (c, s) in stats.iter().enumerate() {
                    for criterion in s.not_computed() {
                        let name = match named.and_then(|n| n.get(c)) {
                            Some(channel) => format!("{channel}__{criterion}"),
                            None => criterion.to_string(),
                        };
                        missing.push(NotComputed {
                            criterion: name,
                            test_voxels: s.test_to_truth.unknown,
                            truth_voxels: s.truth_to_test.unknown,
                        });
                    }
                }
                (scores, missing)
            }
        }
    }
}

/// A criterion an evaluation could not compute from its blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotComputed {
    /// The criterion.
    pub criterion: String,
    /// Scored test voxels whose distance to the truth's foreground was unknown.
    pub test_voxels: u64,
    /// Scored truth voxels whose distance to the test's foreground was unknown.
    pub truth_voxels: u64,
}

/// One block's statistics as kept in its done record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum BlockRecord {
    /// Binary statistics per channel; `channel_axis` when the test array has one.
    Binary {
        channels: Vec<ChannelStats>,
        channel_axis: bool,
    },
    /// The contingency table is in the job's `tables/` (this many label pairs).
    Instance { pairs: u64 },
}

/// The statistics of `block` (clipped to `region`) of `arrays`, read with the spec's
/// context inside `region`. Also says whether the test array has a channel axis.
pub fn block_totals(
    arrays: &EvaluateArrays<'_>,
    spec: &EvaluateSpec,
    region: &Roi,
    block: &Roi,
) -> Result<(Totals, bool), TrainError> {
    let info = arrays.truth.info();
    let vs = info.geometry.voxel_size;
    let block = block.intersect(region);
    let context_nm = spec.context_voxels(&vs) * vs;
    let read = block
        .grow(&context_nm, &context_nm)
        .map_err(|e| TrainError::Data(e.to_string()))?
        .intersect(region);
    let dims = vs.dims();
    let voxels = |nm: i64, a: usize| usize::try_from(nm / vs[a].max(1)).unwrap_or(0);
    let context = BlockContext {
        core: (0..dims)
            .map(|a| {
                let start = voxels(block.begin()[a] - read.begin()[a], a);
                start..start + voxels(block.shape()[a], a)
            })
            .collect(),
        open: (0..dims)
            .map(|a| {
                (
                    read.begin()[a] > region.begin()[a],
                    read.end()[a] < region.end()[a],
                )
            })
            .collect(),
    };
    let labels = |a: &dyn ArraySource, roi: &Roi| -> Result<ndarray::ArrayD<u64>, TrainError> {
        a.read(roi)?
            .to_labels()
            .map_err(|m| TrainError::Data(format!("{}: {m}", a.info().path)))
    };
    let mask = |roi: &Roi| -> Result<Option<ndarray::ArrayD<bool>>, TrainError> {
        arrays
            .mask
            .map(|m| Ok(m.read_filled(roi, 0.0)?.to_f32().mapv(|v| v > 0.0)))
            .transpose()
    };
    let shape_error = |t: &[usize], g: &[usize]| {
        TrainError::Data(format!(
            "{} has shape {t:?} over {read}, {} {g:?}: the scores need one value per voxel in both",
            arrays.test.info().path,
            info.path
        ))
    };
    if spec.instance {
        let (t, g) = (labels(arrays.test, &block)?, labels(arrays.truth, &block)?);
        if t.shape() != g.shape() {
            return Err(shape_error(t.shape(), g.shape()));
        }
        let m = mask(&block)?;
        let table =
            evaluate::label_pairs(&t.view(), &g.view(), m.as_ref().map(|m| m.view()).as_ref())
                .map_err(|e| TrainError::Data(e.to_string()))?;
        return Ok((Totals::Instance(table), false));
    }
    let t = labels(arrays.test, &read)?.mapv(|x| u8::from(x != 0));
    let g = labels(arrays.truth, &read)?.mapv(|x| u8::from(x != 0));
    if t.shape() != g.shape() {
        return Err(shape_error(t.shape(), g.shape()));
    }
    let m = mask(&read)?;
    let spacing: Vec<f64> = vs.iter().map(|v| v as f64).collect();
    let channel_axis = t.ndim() > dims;
    let channels: &[String] = if channel_axis { &spec.channels } else { &[] };
    let stats = evaluate::binary_stats(
        (&t.view(), &g.view(), m.as_ref().map(|m| m.view()).as_ref()),
        &spacing,
        channels,
        (spec.clip_distance_nm, spec.tolerance_nm),
        &context,
    )
    .map_err(|e| TrainError::Data(format!("{}: {e}", arrays.test.info().path)))?;
    Ok((Totals::Binary(stats), channel_axis))
}

/// The name of the report an evaluation's directory holds once it is complete.
pub const REPORT: &str = "report.json";

/// The directory of the contingency tables inside the job's directory.
const TABLES: &str = "tables";

/// The kind of a contingency-table file; its rows are (test, truth, voxels) in key order.
const TABLE_MAGIC: &[u8; 8] = b"SGNPAIR1";

/// Where block `k`'s contingency table is kept.
fn table_path(job: &JobFile, k: u64) -> PathBuf {
    job.dir().join(TABLES).join(format!("{k}.bin"))
}

/// Writes block `k`'s table (temporary file + rename).
fn store_table(job: &JobFile, k: u64, table: &HashMap<(u64, u64), u64>) -> Result<(), TrainError> {
    let mut rows: Vec<[u64; 3]> = table.iter().map(|(&(a, b), &n)| [a, b, n]).collect();
    rows.sort_unstable();
    super::rows::store(&table_path(job, k), TABLE_MAGIC, &rows)
}

/// Reads block `k`'s table.
fn load_table(job: &JobFile, k: u64) -> Result<HashMap<(u64, u64), u64>, TrainError> {
    let rows = super::rows::load::<3>(&table_path(job, k), TABLE_MAGIC)?;
    Ok(rows.into_iter().map(|[a, b, n]| ((a, b), n)).collect())
}

/// Prepares the evaluation job of `spec` over `grid` in the directory `dir` (created): a
/// job of the same evaluation there is continued (or, complete, only reported again);
/// `overwrite` starts it again. Anything else in `dir` is refused, naming it.
pub fn prepare_evaluate_job(
    dir: &Path,
    spec: &EvaluateSpec,
    grid: BlockGrid,
    overwrite: bool,
) -> Result<JobFile, TrainError> {
    let dir = crate::ops::job::absolute(dir);
    for input in std::iter::once(&spec.test)
        .chain(std::iter::once(&spec.truth))
        .chain(spec.mask.iter())
    {
        if dir.starts_with(input) {
            return Err(TrainError::Data(format!(
                "the evaluation directory {} lies inside the input {}: Segno does not write into the arrays it reads",
                dir.display(),
                input.display()
            )));
        }
    }
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(TrainError::Data(format!(
            "{}: not a directory an evaluation can be kept in",
            dir.display()
        )));
    };
    let source = serde_json::to_value(spec).map_err(|e| TrainError::Data(e.to_string()))?;
    let job = JobFile {
        format: 1,
        kind: JobKind::Evaluate,
        container: parent.to_path_buf(),
        dataset: name.to_string_lossy().into_owned(),
        grid,
        ledger: ledger::LedgerSettings::default(),
        provenance: None,
        source: source.clone(),
        worker: source,
        then: Vec::new(),
    };
    match JobFile::load(&dir)? {
        Some(existing) if existing.kind != JobKind::Evaluate => {
            return Err(TrainError::Data(format!(
                "{} is the output of another block job ({:?}), not an evaluation",
                dir.display(),
                existing.kind
            )))
        }
        Some(existing) if !overwrite => {
            if existing.source == job.source && existing.grid == job.grid {
                return Ok(existing);
            }
            let done = existing
                .ledger("status")?
                .done_count()
                .map_err(|e| TrainError::Data(e.to_string()))?;
            return Err(TrainError::OutputExists {
                path: dir.display().to_string(),
                what: format!(
                    "an evaluation made otherwise ({done} of {} blocks scored, of {} against {} over {} in blocks of {} nm)",
                    existing.grid.len(),
                    existing.source["test"].as_str().unwrap_or("?"),
                    existing.source["truth"].as_str().unwrap_or("?"),
                    existing.grid.roi,
                    existing.grid.block_nm
                ),
            });
        }
        Some(_) => {
            // Only what an evaluation wrote is removed.
            let jobs = job.dir();
            std::fs::remove_dir_all(&jobs)
                .map_err(|e| TrainError::Data(format!("cannot remove {}: {e}", jobs.display())))?;
            let report = dir.join(REPORT);
            if report.exists() {
                std::fs::remove_file(&report).map_err(|e| {
                    TrainError::Data(format!("cannot remove {}: {e}", report.display()))
                })?;
            }
        }
        None => {
            let occupied = std::fs::read_dir(&dir)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            if occupied {
                return Err(TrainError::OutputExists {
                    path: dir.display().to_string(),
                    what: "a directory that does not hold a Segno evaluation".into(),
                });
            }
        }
    }
    job.store()?;
    Ok(job)
}

/// The spec stored in an evaluation job.
pub fn spec_of(job: &JobFile) -> Result<EvaluateSpec, TrainError> {
    serde_json::from_value(job.worker.clone()).map_err(|e| {
        TrainError::Data(format!(
            "{}: not an evaluation's description ({e})",
            job.dir().join("job.json").display()
        ))
    })
}

/// Takes part in the evaluation job `job` as one worker of `threads` threads, until no
/// block is left to take (or, with `options.sweep`, every block is scored or given up).
pub fn work_evaluate(
    job: &JobFile,
    arrays: &EvaluateArrays<'_>,
    options: &WorkOptions,
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<WorkReport, TrainError> {
    let spec = spec_of(job)?;
    let region = job.grid.roi;
    work_stage(
        job,
        (MAIN_LEDGER, job.grid.len()),
        options,
        threads,
        &|k, block| {
            let (totals, channel_axis) = block_totals(arrays, &spec, &region, block)?;
            let record = match totals {
                Totals::Binary(channels) => BlockRecord::Binary {
                    channels,
                    channel_axis,
                },
                Totals::Instance(table) => {
                    store_table(job, k, &table)?;
                    BlockRecord::Instance {
                        pairs: table.len() as u64,
                    }
                }
            };
            serde_json::to_value(record).map_err(|e| TrainError::Data(e.to_string()))
        },
        progress,
    )
}

/// The totals of a complete evaluation job, summed over its blocks in block order, and
/// whether the test array has a channel axis. A job with blocks not yet scored is refused,
/// naming how many.
pub fn evaluation_totals(job: &JobFile) -> Result<(Totals, bool), TrainError> {
    let total = job.grid.len();
    let records = job
        .ledger("reader")?
        .done_records(total)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    if (records.len() as u64) < total {
        return Err(TrainError::Data(format!(
            "{}: {} of {total} blocks are scored; run the same command again (or `segno job work {}`) to score the others",
            job.output().display(),
            records.len(),
            job.output().display()
        )));
    }
    let mut sum: Option<Totals> = None;
    let mut axis = false;
    for (k, record) in records {
        let block: BlockRecord = serde_json::from_value(record.extra).map_err(|e| {
            TrainError::Data(format!(
                "{}: block {k}'s record holds no evaluation statistics ({e})",
                job.dir().display()
            ))
        })?;
        let totals = match block {
            BlockRecord::Binary {
                channels,
                channel_axis,
            } => {
                axis = channel_axis;
                Totals::Binary(channels)
            }
            BlockRecord::Instance { .. } => Totals::Instance(load_table(job, k)?),
        };
        match &mut sum {
            Some(s) => s.add(totals)?,
            None => sum = Some(totals),
        }
    }
    sum.map(|s| (s, axis))
        .ok_or_else(|| TrainError::Data(format!("{}: no blocks", job.output().display())))
}

/// Writes an evaluation's report into its directory (temporary file + rename).
pub fn store_report(job: &JobFile, report: &serde_json::Value) -> Result<PathBuf, TrainError> {
    let path = job.output().join(REPORT);
    let bytes = serde_json::to_vec_pretty(report).map_err(|e| TrainError::Data(e.to_string()))?;
    crate::store::atomic::write_atomic(&path, &bytes, true)
        .map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))?;
    Ok(path)
}
