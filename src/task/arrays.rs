//! Post-processing of predictions stored as arrays: the output geometry and reading a
//! prediction back in the network's units.

use std::path::PathBuf;

use crate::array::write::ArraySpec;
use crate::array::{ArraySource, DataType};
use crate::geometry::Roi;

/// What a post-processing pass did.
#[derive(Debug, Clone, PartialEq)]
pub struct PostProcessReport {
    /// The output array.
    pub output: PathBuf,
    /// Chunks written.
    pub chunks: usize,
    /// Non-zero output voxels, per channel (one entry for label outputs).
    pub foreground: Vec<u64>,
}

/// The spec of a post-processed output: the prediction's region, voxel size and spatial
/// chunking, `channels` channels (or none), `attributes` under `segno_post_process`.
pub fn output_spec(
    info: &crate::array::ArrayInfo,
    data_type: DataType,
    channels: Option<u64>,
    attributes: serde_json::Value,
) -> ArraySpec {
    let mut spec = ArraySpec::new(data_type, info.roi, info.geometry.voxel_size, channels);
    spec.chunk_voxels = Some(
        info.spatial_axes()
            .iter()
            .map(|&a| info.chunk_shape[a])
            .collect(),
    );
    spec.attributes
        .insert("segno_post_process".into(), attributes);
    spec
}

/// Reads a prediction over `roi` in the network's units: a uint8 prediction written with a
/// `segno_prediction.uint8` encoding (`value = stored · scale + offset`) is decoded.
pub fn read_prediction(
    prediction: &dyn ArraySource,
    roi: &Roi,
) -> Result<ndarray::ArrayD<f32>, crate::array::ArrayError> {
    let values = prediction.read(roi)?.to_f32();
    let encoding = prediction
        .attributes()
        .and_then(|a| a.get("segno_prediction"))
        .and_then(|p| p.get("uint8"))
        .and_then(|e| Some((e.get("scale")?.as_f64()?, e.get("offset")?.as_f64()?)));
    Ok(match encoding {
        Some((scale, offset)) if prediction.info().data_type == DataType::U8 => {
            values.mapv(|v| (f64::from(v) * scale + offset) as f32)
        }
        _ => values,
    })
}
