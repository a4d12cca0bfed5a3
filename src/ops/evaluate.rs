//! Scoring one array against another over the region they share (`segno evaluate`): the
//! binary-segmentation scores DaCapo's binary tasks report, or instance scores of two
//! label volumes, optionally only where a mask is non-zero.

use std::path::PathBuf;

use ndarray::ArrayD;
use serde::Serialize;

use super::{NamedScores, OpsError, RoiNm};
use crate::array::{self, ArraySource};
use crate::geometry::Roi;
use crate::task::evaluate;

/// What to score and how.
#[derive(Debug, Clone, PartialEq)]
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
    /// The region both cover, where the scores were computed.
    #[serde(skip)]
    pub region: Roi,
    /// The same region in nm.
    pub region_nm: RoiNm,
    /// Each criterion's score, in the order the metrics define.
    pub scores: NamedScores,
}

/// Scores `options.test` against `options.truth` over the region both cover. Arrays at
/// different voxel sizes, on different voxel grids or without overlap are refused, naming
/// both.
pub fn evaluate_arrays(options: &EvaluateOptions) -> Result<EvaluationReport, OpsError> {
    let test = array::open(&options.test)?;
    let truth = array::open(&options.truth)?;
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
    let roi = ti.roi.intersect(&gi.roi);
    let mask = match &options.mask {
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
            Some(m.read_filled(&roi, 0.0)?.to_f32().mapv(|v| v > 0.0))
        }
        None => None,
    };
    let scores = if options.instance {
        let (t, g) = (labels(test.as_ref(), &roi)?, labels(truth.as_ref(), &roi)?);
        if t.shape() != g.shape() {
            return Err(OpsError::Invalid(format!(
                "{} has shape {:?} over the common region, {} {:?}: instance scores need one label per voxel in both",
                ti.path,
                t.shape(),
                gi.path,
                g.shape()
            )));
        }
        evaluate::instance_masked(&t, &g, mask.as_ref())
            .map_err(|e| OpsError::Invalid(e.to_string()))?
    } else {
        let (t, g) = (
            labels(test.as_ref(), &roi)?.mapv(|x| u8::from(x != 0)),
            labels(truth.as_ref(), &roi)?.mapv(|x| u8::from(x != 0)),
        );
        let spacing: Vec<f64> = ti.geometry.voxel_size.iter().map(|v| v as f64).collect();
        let channels: Vec<String> = if t.ndim() == spacing.len() {
            Vec::new()
        } else {
            options.channels.clone()
        };
        evaluate::binary_segmentation_masked(
            &t,
            &g,
            mask.as_ref(),
            &spacing,
            &channels,
            options.clip_distance_nm,
            options.tolerance_nm,
        )
        .map_err(|e| OpsError::Invalid(e.to_string()))?
    };
    Ok(EvaluationReport {
        test: ti.path.clone(),
        truth: gi.path.clone(),
        region: roi,
        region_nm: RoiNm::from(&roi),
        scores: NamedScores::new(&scores.criteria, &scores.values),
    })
}

/// The labels of `a` over `roi`.
fn labels(a: &dyn ArraySource, roi: &Roi) -> Result<ArrayD<u64>, OpsError> {
    a.read(roi)?
        .to_labels()
        .map_err(|m| OpsError::Invalid(format!("{}: {m}", a.info().path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::write::{self, ArraySpec, WriteMode};
    use crate::array::{ArrayData, DataType};
    use crate::geometry::Coordinate;
    use ndarray::IxDyn;

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

    fn options(test: PathBuf, truth: PathBuf) -> EvaluateOptions {
        EvaluateOptions {
            test,
            truth,
            mask: None,
            instance: false,
            channels: vec!["foreground".into()],
            clip_distance_nm: 40.0,
            tolerance_nm: 40.0,
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
        let r = evaluate_arrays(&options(t, g)).unwrap();
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
        let r = evaluate_arrays(&o).unwrap();
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
        let e = evaluate_arrays(&options(coarse, g.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("coarse") && e.contains("gt") && e.contains("voxel size"),
            "{e}"
        );
        let e = evaluate_arrays(&options(apart, g)).unwrap_err().to_string();
        assert!(e.contains("apart") && e.contains("do not overlap"), "{e}");
    }
}
