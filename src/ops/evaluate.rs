//! Scoring one array against another over the region they share (`segno evaluate`): the
//! binary-segmentation scores DaCapo's binary tasks report, or instance scores of two
//! label volumes, optionally only where a mask is non-zero.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::job::{ClusterLaunch, SubmittedReport};
use super::{NamedScores, OpsError, RoiNm};
use crate::array::{self, ArraySource};
use crate::blockwise::evaluate::{self as blocks, EvaluateArrays, EvaluateSpec, NotComputed};
use crate::blockwise::{BlockGrid, JobFile, WorkOptions};
use crate::geometry::{Coordinate, Roi};

/// The largest region scored in one piece when no block size, workers or cluster are asked
/// for (about 320³ voxels: a few GiB of labels and distances).
pub const ONE_PIECE_VOXELS: u64 = 1 << 25;

/// Voxels a block holds at least when a region is cut for workers.
const BLOCK_VOXELS: u64 = 1 << 22;

/// What to score and how.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvaluateOptions {
    /// The array scored (a segmentation; non-zero is foreground for binary scores).
    pub test: PathBuf,
    /// The ground truth.
    pub truth: PathBuf,
    /// Score only where this array is non-zero.
    pub mask: Option<PathBuf>,
    /// Instance scores of two label volumes instead of binary scores.
    pub instance: bool,
    /// Channel names for binary scores of a multi-channel test array.
    pub channels: Vec<String>,
    /// Distance (nm) beyond which surface distances are clipped.
    pub clip_distance_nm: f64,
    /// Distance (nm) within which a surface voxel counts as matched.
    pub tolerance_nm: f64,
    /// Score only this region (world units; default: all both arrays cover).
    pub roi: Option<Roi>,
    /// How far around each block distances are measured (nm; default and least: the
    /// larger of the clip distance and the tolerance).
    pub context_nm: Option<f64>,
    /// Block size in voxels per spatial axis (default: one piece up to
    /// [`ONE_PIECE_VOXELS`], else blocks of whole test chunks).
    pub block_voxels: Option<Vec<u64>>,
    /// Keep the job and its report in this directory, so that other workers can share
    /// it and the same command run again continues it.
    pub save: Option<PathBuf>,
    /// Start the evaluation in `save` again instead of continuing it.
    pub overwrite: bool,
    /// Worker processes on this machine.
    pub workers: usize,
    /// Send the workers to a cluster (needs `save`).
    pub cluster: Option<ClusterLaunch>,
}

/// The scores of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationReport {
    /// The scored array's path.
    #[serde(skip)]
    pub test: String,
    /// The ground truth's path.
    #[serde(skip)]
    pub truth: String,
    /// The region scored.
    #[serde(skip)]
    pub region: Roi,
    /// The same region in nm.
    pub region_nm: RoiNm,
    /// Each criterion's score, in the order the metrics define (empty while a cluster
    /// job computes them).
    pub scores: NamedScores,
    /// Blocks the region was scored in.
    pub blocks: u64,
    /// Their size (nm).
    pub block_nm: Vec<i64>,
    /// The context read around each block (nm per axis).
    pub context_nm: Vec<i64>,
    /// Criteria left undefined because some voxels' nearest foreground voxel of the other
    /// array lay beyond their block's context.
    pub not_computed: Vec<NotComputed>,
    /// Where the report is kept (with `save`).
    pub saved: Option<PathBuf>,
    /// The cluster jobs the blocks were sent to (then nothing is scored yet).
    pub submitted: Option<SubmittedReport>,
}

/// The arrays of an evaluation, opened and checked against each other.
struct Opened {
    test: Box<dyn ArraySource>,
    truth: Box<dyn ArraySource>,
    mask: Option<Box<dyn ArraySource>>,
    /// The region both cover.
    common: Roi,
}

impl Opened {
    /// Opens `test`, `truth` and `mask`; arrays at different voxel sizes, on different voxel
    /// grids or without overlap are refused, naming both.
    fn open(test: &Path, truth: &Path, mask: Option<&Path>) -> Result<Self, OpsError> {
        let test = array::open(test)?;
        let truth = array::open(truth)?;
        let (ti, gi) = (test.info(), truth.info());
        if ti.geometry.voxel_size != gi.geometry.voxel_size {
            return Err(OpsError::Invalid(format!(
                "{} has voxel size {} but {} has {}",
                ti.path, ti.geometry.voxel_size, gi.path, gi.geometry.voxel_size
            )));
        }
        if !(ti.geometry.offset - gi.geometry.offset).is_multiple_of(&gi.geometry.voxel_size) {
            return Err(OpsError::Invalid(format!(
                "{} (offset {} nm) and {} (offset {} nm) do not share a voxel grid at {} nm: their voxels would be compared shifted, which Segno does not do",
                ti.path, ti.geometry.offset, gi.path, gi.geometry.offset, gi.geometry.voxel_size
            )));
        }
        if !ti.roi.intersects(&gi.roi) {
            return Err(OpsError::Invalid(format!(
                "{} ({}) and {} ({}) do not overlap",
                ti.path, ti.roi, gi.path, gi.roi
            )));
        }
        let common = ti.roi.intersect(&gi.roi);
        let mask = match mask {
            Some(path) => {
                let m = array::open(path)?;
                if m.info().geometry.voxel_size != gi.geometry.voxel_size {
                    return Err(OpsError::Invalid(format!(
                        "--mask {} has voxel size {}, the ground truth {}",
                        m.info().path,
                        m.info().geometry.voxel_size,
                        gi.geometry.voxel_size
                    )));
                }
                Some(m)
            }
            None => None,
        };
        Ok(Self {
            test,
            truth,
            mask,
            common,
        })
    }

    /// The arrays as the block functions take them.
    fn arrays(&self) -> EvaluateArrays<'_> {
        EvaluateArrays {
            test: self.test.as_ref(),
            truth: self.truth.as_ref(),
            mask: self.mask.as_deref(),
        }
    }

    /// The voxel size.
    fn voxel_size(&self) -> Coordinate {
        self.truth.info().geometry.voxel_size
    }

    /// `roi` checked to lie inside the common region on the truth's voxel grid (the common
    /// region without one).
    fn region(&self, roi: Option<Roi>) -> Result<Roi, OpsError> {
        let Some(roi) = roi else {
            return Ok(self.common);
        };
        let info = self.truth.info();
        let vs = info.geometry.voxel_size;
        if roi.dims() != vs.dims() || !self.common.contains_roi(&roi) {
            return Err(OpsError::Invalid(format!(
                "--roi {roi} is not inside the region {} of {} and {} cover",
                self.common,
                self.test.info().path,
                info.path
            )));
        }
        let on_grid = (roi.begin() - info.geometry.offset).is_multiple_of(&vs)
            && roi.shape().is_multiple_of(&vs);
        if !on_grid || roi.is_empty() {
            return Err(OpsError::Invalid(format!(
                "--roi {roi} does not start and end on the {vs} nm voxel grid of {} (offset {} nm): Segno does not shift or round regions",
                info.path, info.geometry.offset
            )));
        }
        Ok(roi)
    }
}

/// The spec of `options` with absolute paths and the context checked.
fn spec_of(options: &EvaluateOptions) -> Result<EvaluateSpec, OpsError> {
    let needed = options.clip_distance_nm.max(options.tolerance_nm);
    for (name, value) in [
        ("--clip-distance", options.clip_distance_nm),
        ("--tol-distance", options.tolerance_nm),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(OpsError::Invalid(format!(
                "{name} {value}: expected a distance in nm, 0 or more"
            )));
        }
    }
    let context_nm = options.context_nm.unwrap_or(needed);
    if !(context_nm.is_finite() && context_nm >= needed) {
        return Err(OpsError::Invalid(format!(
            "--context-nm {context_nm}: distances must be measured at least as far as the clip distance ({}) and the tolerance ({})",
            options.clip_distance_nm, options.tolerance_nm
        )));
    }
    let absolute = |p: &Path| super::job::absolute(p);
    Ok(EvaluateSpec {
        test: absolute(&options.test),
        truth: absolute(&options.truth),
        mask: options.mask.as_deref().map(absolute),
        instance: options.instance,
        channels: options.channels.clone(),
        clip_distance_nm: options.clip_distance_nm,
        tolerance_nm: options.tolerance_nm,
        context_nm,
    })
}

/// The block size (nm) of an evaluation of `region`.
fn block_nm(
    options: &EvaluateOptions,
    opened: &Opened,
    region: &Roi,
) -> Result<Coordinate, OpsError> {
    let vs = opened.voxel_size();
    let dims = vs.dims();
    let to_nm = |b: &[u64]| {
        let nm: Vec<i64> = (0..dims).map(|a| b[a] as i64 * vs[a]).collect();
        Coordinate::new(&nm).map_err(|e| OpsError::Invalid(e.to_string()))
    };
    if let Some(block) = &options.block_voxels {
        if block.len() != dims || block.contains(&0) {
            return Err(OpsError::Invalid(format!(
                "--block-voxels {block:?}: expected {dims} positive sizes, one per spatial axis"
            )));
        }
        return to_nm(block);
    }
    let span: Vec<u64> = (0..dims)
        .map(|a| (region.shape()[a] / vs[a].max(1)).max(1) as u64)
        .collect();
    let voxels: u64 = span.iter().product();
    let shared = options.workers > 1 || options.cluster.is_some();
    if !shared && voxels <= ONE_PIECE_VOXELS {
        return to_nm(&span);
    }
    let chunk = &opened.test.info().chunk_shape;
    let chunk = &chunk[chunk.len().saturating_sub(dims)..];
    crate::blockwise::post_block_nm(chunk, &vs, region, BLOCK_VOXELS).map_err(OpsError::Engine)
}

/// Scores `options.test` against `options.truth` over the region both cover (or
/// `options.roi`): in one piece when it is small and nothing else is asked, else as a block
/// job of this process's threads, `options.workers` processes, or a cluster job array
/// (then the report lists the submission and no scores). `progress(done, total)` follows
/// the blocks.
pub fn evaluate_arrays(
    options: &EvaluateOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvaluationReport, OpsError> {
    let opened = Opened::open(&options.test, &options.truth, options.mask.as_deref())?;
    let region = opened.region(options.roi)?;
    let spec = spec_of(options)?;
    let grid = BlockGrid::new(region, block_nm(options, &opened, &region)?)?;
    if options.cluster.is_some() && options.save.is_none() {
        return Err(OpsError::Usage(
            "--slurm/--lsf need --save DIR: a directory on a file system the cluster's nodes share, where the workers keep what they score".into(),
        ));
    }
    let one_piece = grid.len() == 1 && options.save.is_none() && options.workers <= 1;
    if one_piece {
        let (totals, channel_axis) =
            blocks::block_totals(&opened.arrays(), &spec, &region, &region)?;
        progress(1, 1);
        return Ok(report(&opened, &spec, &grid, &totals, channel_axis, None));
    }
    // A job directory: the one asked for, else a temporary one for this call.
    let temporary = match &options.save {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("segno-evaluate-")
                .tempdir()
                .map_err(|e| OpsError::Io(format!("cannot create a temporary directory: {e}")))?,
        ),
    };
    let dir = match (&options.save, &temporary) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().join("evaluation"),
        (None, None) => unreachable!("a directory is chosen above"),
    };
    let job = blocks::prepare_evaluate_job(&dir, &spec, grid, options.overwrite)?;
    if let Some(launch) = &options.cluster {
        let submitted = super::job::submit_workers(&job.output(), launch)?;
        let mut r = report(
            &opened,
            &spec,
            &job.grid,
            &blocks::Totals::Binary(Vec::new()),
            false,
            None,
        );
        r.scores = NamedScores(Vec::new());
        r.submitted = Some(submitted);
        return Ok(r);
    }
    if options.workers > 1 {
        let failed = super::job::run_local_workers(
            &job.output(),
            options.workers,
            tch::Device::Cpu,
            None,
            progress,
        )?;
        for (worker, error) in failed {
            tracing::warn!("evaluation worker {worker} failed: {error}");
        }
    }
    // This process finishes whatever is left (all of it without workers).
    let work = super::job::relay_progress(progress, |p| {
        blocks::work_evaluate(
            &job,
            &opened.arrays(),
            &WorkOptions::sweeping(),
            rayon::current_num_threads(),
            p,
        )
    })?;
    work.check_complete(&job)?;
    finish(&job, &opened, &spec, options.save.is_some())
}

/// The report of the complete evaluation job `job`, stored in its directory when `keep`.
fn finish(
    job: &JobFile,
    opened: &Opened,
    spec: &EvaluateSpec,
    keep: bool,
) -> Result<EvaluationReport, OpsError> {
    let (totals, channel_axis) = blocks::evaluation_totals(job)?;
    let saved = keep.then(|| job.output().join(blocks::REPORT));
    let r = report(opened, spec, &job.grid, &totals, channel_axis, saved);
    if keep {
        let value = serde_json::to_value(&r).map_err(|e| OpsError::Io(e.to_string()))?;
        blocks::store_report(job, &value)?;
    }
    Ok(r)
}

/// Takes part in the evaluation job `job` as the worker `work` with `threads` threads;
/// whoever sees it complete writes its report.
pub fn work_job(
    job: &JobFile,
    work: &WorkOptions,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<crate::blockwise::WorkReport, OpsError> {
    let spec = blocks::spec_of(job)?;
    let opened = Opened::open(&spec.test, &spec.truth, spec.mask.as_deref())?;
    let report = super::job::relay_progress(progress, |p| {
        blocks::work_evaluate(job, &opened.arrays(), work, threads, p)
    })?;
    if report.done == report.total {
        finish(job, &opened, &spec, true)?;
    }
    Ok(report)
}

/// The report of `totals` over `grid`.
fn report(
    opened: &Opened,
    spec: &EvaluateSpec,
    grid: &BlockGrid,
    totals: &blocks::Totals,
    channel_axis: bool,
    saved: Option<PathBuf>,
) -> EvaluationReport {
    let (scores, not_computed) = totals.scores(spec, channel_axis);
    let vs = opened.voxel_size();
    EvaluationReport {
        test: opened.test.info().path.clone(),
        truth: opened.truth.info().path.clone(),
        region: grid.roi,
        region_nm: RoiNm::from(&grid.roi),
        scores: NamedScores::new(&scores.criteria, &scores.values),
        blocks: grid.len(),
        block_nm: grid.block_nm.to_vec(),
        context_nm: (spec.context_voxels(&vs) * vs).to_vec(),
        not_computed,
        saved,
        submitted: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::write::{self, ArraySpec, WriteMode};
    use crate::array::{ArrayData, DataType};
    use crate::geometry::Coordinate;
    use ndarray::{ArrayD, IxDyn};

    /// Writes a uint64 label volume at 4 nm voxels and offset `offset` nm.
    fn labels_at(
        dir: &std::path::Path,
        name: &str,
        offset: [i64; 3],
        data: ArrayD<u64>,
    ) -> PathBuf {
        labels_sized(dir, name, offset, 4, data)
    }

    /// Writes a uint64 label volume at `vs` nm voxels and offset `offset` nm.
    fn labels_sized(
        dir: &std::path::Path,
        name: &str,
        offset: [i64; 3],
        vs: i64,
        data: ArrayD<u64>,
    ) -> PathBuf {
        let shape: Vec<i64> = data.shape().iter().map(|&s| s as i64 * vs).collect();
        let roi = Roi::new(
            Coordinate::from(offset),
            Coordinate::try_from(shape).unwrap(),
        )
        .unwrap();
        let spec = ArraySpec::new(DataType::U64, roi, Coordinate::from([vs, vs, vs]), None);
        let container = dir.join("a.zarr");
        let w = write::create(&container, name, &spec, WriteMode::CreateNew).unwrap();
        w.write(&roi, &ArrayData::U64(data)).unwrap();
        container.join(name)
    }

    fn evaluate_arrays_quiet(o: &EvaluateOptions) -> Result<EvaluationReport, OpsError> {
        evaluate_arrays(o, &mut |_, _| {})
    }

    fn options(test: PathBuf, truth: PathBuf) -> EvaluateOptions {
        EvaluateOptions {
            test,
            truth,
            channels: vec!["foreground".into()],
            clip_distance_nm: 40.0,
            tolerance_nm: 40.0,
            ..EvaluateOptions::default()
        }
    }

    #[test]
    fn scores_cover_only_the_shared_region() {
        let dir = tempfile::tempdir().unwrap();
        // Truth: foreground in z < 6 of an 8³ cube at offset 0.
        let truth = ArrayD::from_shape_fn(IxDyn(&[8, 8, 8]), |ix| u64::from(ix[0] < 6));
        // Test: 8³ at z offset 16 nm (4 voxels), foreground in its first 3 z planes. Over
        // the shared region (truth's z 4..8) truth has 2 planes, the test 3: one plane of
        // false positives, none missed.
        let test = ArrayD::from_shape_fn(IxDyn(&[8, 8, 8]), |ix| u64::from(ix[0] < 3));
        let g = labels_at(dir.path(), "gt", [0, 0, 0], truth);
        let t = labels_at(dir.path(), "test", [16, 0, 0], test);
        let r = evaluate_arrays_quiet(&options(t, g)).unwrap();
        assert_eq!(
            r.region_nm,
            RoiNm {
                offset: vec![16, 0, 0],
                shape: vec![16, 32, 32]
            }
        );
        // 2 of the 4 shared z planes are false positives: 128 of 256 background voxels.
        let fpr = r
            .scores
            .0
            .iter()
            .find(|(n, _)| n.ends_with("false_positive_rate"))
            .unwrap();
        assert_eq!(fpr.1, 0.5, "{:?}", r.scores);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["region_nm"]["offset"], serde_json::json!([16, 0, 0]));
        assert!(json["scores"].is_object());
    }

    #[test]
    fn instance_scores_of_identical_labels_are_perfect() {
        let dir = tempfile::tempdir().unwrap();
        let data = ArrayD::from_shape_fn(IxDyn(&[8, 8, 8]), |ix| (ix[0] / 4 + 1) as u64);
        let g = labels_at(dir.path(), "gt", [0, 0, 0], data.clone());
        let t = labels_at(dir.path(), "test", [0, 0, 0], data);
        let mut o = options(t, g);
        o.instance = true;
        let r = evaluate_arrays_quiet(&o).unwrap();
        let voi = r.scores.get("voi_split").unwrap() + r.scores.get("voi_merge").unwrap();
        assert_eq!(voi, 0.0, "{:?}", r.scores);
    }

    #[test]
    fn arrays_at_other_voxel_sizes_or_apart_are_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let data = ArrayD::from_elem(IxDyn(&[4, 4, 4]), 1u64);
        let g = labels_at(dir.path(), "gt", [0, 0, 0], data.clone());
        let coarse = labels_sized(dir.path(), "coarse", [0, 0, 0], 8, data.clone());
        let apart = labels_at(dir.path(), "apart", [400, 0, 0], data);
        let e = evaluate_arrays_quiet(&options(coarse, g.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("coarse") && e.contains("gt") && e.contains("voxel size"),
            "{e}"
        );
        let e = evaluate_arrays_quiet(&options(apart, g))
            .unwrap_err()
            .to_string();
        assert!(e.contains("apart") && e.contains("do not overlap"), "{e}");
    }

    /// Truth and test labelings of 24³ voxels at 4 nm: cubes of 4 voxels every 6, the
    /// test's moved by one voxel along x and numbered otherwise.
    fn cubes(dir: &std::path::Path) -> (PathBuf, PathBuf) {
        let cube = |ix: &IxDyn, shift: usize, base: u64| -> u64 {
            let x = ix[2] + 24 - shift;
            if ix[0] % 6 < 4 && ix[1] % 6 < 4 && x % 6 < 4 {
                base + ((ix[0] / 6) * 16 + (ix[1] / 6) * 4 + (x % 24) / 6) as u64
            } else {
                0
            }
        };
        let truth = ArrayD::from_shape_fn(IxDyn(&[24, 24, 24]), |ix| cube(&ix, 0, 1));
        let test = ArrayD::from_shape_fn(IxDyn(&[24, 24, 24]), |ix| cube(&ix, 1, 100));
        (
            labels_at(dir, "test", [0, 0, 0], test),
            labels_at(dir, "truth", [0, 0, 0], truth),
        )
    }

    #[test]
    fn scores_in_blocks_equal_the_one_piece_scores() {
        let dir = tempfile::tempdir().unwrap();
        let (t, g) = cubes(dir.path());
        let one = evaluate_arrays_quiet(&options(t.clone(), g.clone())).unwrap();
        assert_eq!(one.blocks, 1);
        let mut o = options(t.clone(), g.clone());
        o.block_voxels = Some(vec![8, 8, 8]);
        let blocks = evaluate_arrays_quiet(&o).unwrap();
        assert_eq!(blocks.blocks, 27);
        assert_eq!(blocks.block_nm, vec![32, 32, 32]);
        assert_eq!(blocks.context_nm, vec![40, 40, 40]);
        assert!(blocks.not_computed.is_empty(), "{:?}", blocks.not_computed);
        assert_eq!(one.scores.0.len(), 21);
        for ((name, a), (_, b)) in one.scores.0.iter().zip(&blocks.scores.0) {
            assert!(
                a.is_nan() && b.is_nan() || (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                "{name}: one piece {a}, blocks {b}"
            );
        }
        let dice = one.scores.get("dice").unwrap();
        assert!(dice > 0.5 && dice < 1.0, "{dice}");
        // Instance scores come from the same contingency table: bit-identical.
        o.instance = true;
        let mut whole = options(t, g);
        whole.instance = true;
        let (a, b) = (
            evaluate_arrays_quiet(&whole).unwrap(),
            evaluate_arrays_quiet(&o).unwrap(),
        );
        assert_eq!(a.scores, b.scores);
        assert!(a.scores.get("voi_split").unwrap() > 0.0);
    }

    #[test]
    fn a_saved_evaluation_is_continued_reported_and_refused_when_made_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let (t, g) = cubes(dir.path());
        let save = dir.path().join("scores");
        let mut o = options(t.clone(), g.clone());
        o.block_voxels = Some(vec![8, 8, 8]);
        o.save = Some(save.clone());
        let first = evaluate_arrays_quiet(&o).unwrap();
        assert_eq!(first.saved, Some(save.join("report.json")));
        let kept: serde_json::Value =
            serde_json::from_slice(&std::fs::read(save.join("report.json")).unwrap()).unwrap();
        assert_eq!(kept, serde_json::to_value(&first).unwrap());
        let done = || {
            std::fs::read_dir(save.join(".segno-job/ledger/done"))
                .unwrap()
                .count()
        };
        assert_eq!(done(), 27);
        // Again: nothing is scored twice, the same report.
        let job = crate::blockwise::JobFile::load(&save).unwrap().unwrap();
        let before = job.ledger("t").unwrap().done_records(27).unwrap();
        let again = evaluate_arrays_quiet(&o).unwrap();
        assert_eq!(again.scores, first.scores);
        let after = job.ledger("t").unwrap().done_records(27).unwrap();
        assert_eq!(before, after);
        // Other options into the same directory are refused, naming what is there…
        let mut other = o.clone();
        other.clip_distance_nm = 20.0;
        let e = evaluate_arrays_quiet(&other).unwrap_err().to_string();
        assert!(
            e.contains("scores") && e.contains("an evaluation made otherwise (27 of 27 blocks"),
            "{e}"
        );
        // …unless asked to start again.
        other.overwrite = true;
        let redone = evaluate_arrays_quiet(&other).unwrap();
        assert!(redone.scores.get("mean_false_distance_clipped").is_some());
        // A directory with other things in it is never used.
        let busy = dir.path().join("busy");
        std::fs::create_dir(&busy).unwrap();
        std::fs::write(busy.join("notes.txt"), "mine").unwrap();
        o.save = Some(busy.clone());
        let e = evaluate_arrays_quiet(&o).unwrap_err().to_string();
        assert!(
            e.contains("busy") && e.contains("does not hold a Segno evaluation"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(busy.join("notes.txt")).unwrap(),
            "mine"
        );
        // Nor a directory inside an input.
        o.save = Some(t.join("scores"));
        let e = evaluate_arrays_quiet(&o).unwrap_err().to_string();
        assert!(e.contains("lies inside the input"), "{e}");
    }

    #[test]
    fn a_region_must_lie_inside_both_on_their_voxel_grid() {
        let dir = tempfile::tempdir().unwrap();
        let (t, g) = cubes(dir.path());
        let mut o = options(t, g);
        o.roi = Some(Roi::parse_slices("[0:48, 0:96, 0:96]").unwrap());
        let r = evaluate_arrays_quiet(&o).unwrap();
        assert_eq!(r.region_nm.shape, vec![48, 96, 96]);
        o.roi = Some(Roi::parse_slices("[2:50, 0:96, 0:96]").unwrap());
        let e = evaluate_arrays_quiet(&o).unwrap_err().to_string();
        assert!(e.contains("[2:50") && e.contains("voxel grid"), "{e}");
        o.roi = Some(Roi::parse_slices("[0:200, 0:96, 0:96]").unwrap());
        let e = evaluate_arrays_quiet(&o).unwrap_err().to_string();
        assert!(e.contains("is not inside the region"), "{e}");
        o.roi = None;
        o.context_nm = Some(10.0);
        let e = evaluate_arrays_quiet(&o).unwrap_err().to_string();
        assert!(e.contains("--context-nm 10"), "{e}");
    }
}
