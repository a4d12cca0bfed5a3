//! Training snapshots: every `snapshot_interval` iterations the first sample of the batch
//! (what the network saw, its ground truth, targets, weights, prediction and the loss
//! gradient) is written to `<run>/snapshot.zarr/<iteration>/volumes/…` as OME-Zarr arrays
//! at their world positions, so they overlay the raw data in a viewer.

use std::path::Path;

use ndarray::{ArrayD, Axis};

use super::sample::TrainingSample;
use super::TrainError;
use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::ArrayData;
use crate::geometry::{Coordinate, Roi};
use crate::store::layout::RunDir;

/// Whether iteration `i` (counted from 0) is snapshotted with `interval`.
pub fn is_due(interval: Option<u64>, i: u64) -> bool {
    interval.is_some_and(|n| n > 0 && i.is_multiple_of(n))
}

/// The network-side arrays of a snapshot, each `(channels, spatial…)` on the output patch.
pub struct NetworkArrays {
    /// The sample's weights.
    pub weight: ArrayD<f32>,
    /// The network's training-mode output (logits for sigmoid/softmax tasks).
    pub prediction: ArrayD<f32>,
    /// ∂loss/∂prediction.
    pub gradients: ArrayD<f32>,
}

/// Writes `sample` (raw at `raw_vs`, the rest at `out_vs`, raw `context` nm around the
/// output patch) and the network arrays as snapshot `iteration` of the run at `run_dir`.
pub fn write_snapshot(
    run_dir: &Path,
    iteration: u64,
    sample: &TrainingSample,
    network: NetworkArrays,
    raw_vs: Coordinate,
    out_vs: Coordinate,
    context: Coordinate,
) -> Result<(), TrainError> {
    let container = RunDir::from_dir(run_dir).snapshot_container();
    let out_roi = sample.output_roi;
    let raw_roi = out_roi
        .grow(&context, &context)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let chunk: Vec<u64> = (out_roi.shape() / out_vs)
        .iter()
        .map(|v| v as u64)
        .collect();
    let store = |name: &str, roi: Roi, vs: Coordinate, data: ArrayData| {
        // Single-channel arrays are stored without a channel axis.
        let shape = data.shape().to_vec();
        let (data, channels) = if shape.len() == vs.dims() + 1 && shape[0] == 1 {
            (drop_channel(data), None)
        } else if shape.len() == vs.dims() + 1 {
            (data, Some(shape[0] as u64))
        } else {
            (data, None)
        };
        let mut spec = ArraySpec::new(data.data_type(), roi, vs, channels);
        spec.chunk_voxels = Some(chunk.clone());
        spec.attributes.insert(
            "segno_snapshot".into(),
            serde_json::json!({"iteration": iteration}),
        );
        let path = format!("{iteration}/volumes/{name}");
        write::create(&container, &path, &spec, WriteMode::Overwrite)?.write(&roi, &data)?;
        Ok::<(), TrainError>(())
    };
    store("raw", raw_roi, raw_vs, ArrayData::F32(sample.raw.clone()))?;
    store("gt", out_roi, out_vs, ArrayData::U64(sample.gt.clone()))?;
    store("mask", out_roi, out_vs, ArrayData::F32(sample.mask.clone()))?;
    store(
        "target",
        out_roi,
        out_vs,
        ArrayData::F32(sample.targets.target.clone()),
    )?;
    store("weight", out_roi, out_vs, ArrayData::F32(network.weight))?;
    store(
        "prediction",
        out_roi,
        out_vs,
        ArrayData::F32(network.prediction),
    )?;
    store(
        "gradients",
        out_roi,
        out_vs,
        ArrayData::F32(network.gradients),
    )?;
    Ok(())
}

fn drop_channel(data: ArrayData) -> ArrayData {
    match data {
        ArrayData::F32(a) => ArrayData::F32(a.index_axis_move(Axis(0), 0)),
        ArrayData::U64(a) => ArrayData::U64(a.index_axis_move(Axis(0), 0)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_due_from_iteration_zero() {
        assert!(is_due(Some(5), 0));
        assert!(!is_due(Some(5), 4));
        assert!(is_due(Some(5), 10));
        assert!(!is_due(None, 0));
        assert!(!is_due(Some(0), 0));
    }
}
