//! Post-processing of a written prediction chunk by chunk: thresholds and the run's
//! post-processor over regions of any size, each output chunk written once.

use super::*;

/// Applies a point-wise post-processing `f` to a prediction chunk by chunk, in parallel,
/// into `container/dataset` (same region, voxel size and chunking; `channels` output
/// channels or none for label outputs).
pub(super) fn map_chunks(
    prediction: &dyn ArraySource,
    data_type: DataType,
    channels: Option<u64>,
    attributes: serde_json::Value,
    (container, dataset, mode): (&Path, &str, WriteMode),
    f: &(dyn Fn(&ndarray::ArrayD<f32>) -> Result<Segmentation, TrainError> + Sync),
) -> Result<PostProcessReport, TrainError> {
    use rayon::prelude::*;
    let info = prediction.info();
    let spec = output_spec(info, data_type, channels, attributes);
    let writer = write::create(container, dataset, &spec, mode)?;
    let indices = write::grid_indices(&writer.chunk_grid_shape());
    let n_channels = channels.unwrap_or(1) as usize;
    let has_channel_axis = info.geometry.axes.iter().any(|a| !a.spatial);
    let counts = indices
        .par_iter()
        .map(|index| -> Result<Vec<u64>, TrainError> {
            let roi = writer.info().chunk_roi(index)?;
            let mut p = crate::task::arrays::read_prediction(prediction, &roi)?;
            if !has_channel_axis {
                p = p.insert_axis(ndarray::Axis(0));
            }
            let mut fg = vec![0u64; n_channels];
            let data = match f(&p)? {
                Segmentation::Binary(out) => {
                    for (c, lane) in out.outer_iter().enumerate().take(n_channels) {
                        fg[c] = lane.iter().filter(|v| **v != 0).count() as u64;
                    }
                    if channels.is_some() {
                        ArrayData::U8(out)
                    } else {
                        ArrayData::U8(out.index_axis_move(ndarray::Axis(0), 0))
                    }
                }
                Segmentation::Labels(out) => {
                    fg[0] = out.iter().filter(|v| **v != 0).count() as u64;
                    match data_type {
                        DataType::U8 => ArrayData::U8(out.mapv(|v| v.min(255) as u8)),
                        _ => ArrayData::U64(out),
                    }
                }
            };
            writer.write(&roi, &data)?;
            Ok(fg)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut foreground = vec![0u64; n_channels];
    for c in counts {
        for (a, b) in foreground.iter_mut().zip(c) {
            *a += b;
        }
    }
    Ok(PostProcessReport {
        output: container.join(dataset),
        chunks: indices.len(),
        foreground,
    })
}

/// Thresholds a prediction chunk by chunk, in parallel, into `container/dataset` (uint8,
/// same geometry and chunking): `prediction > threshold`. `mode` says what happens to an
/// array already at the output.
pub fn threshold_array(
    prediction: &dyn ArraySource,
    threshold: f64,
    container: &Path,
    dataset: &str,
    mode: WriteMode,
) -> Result<PostProcessReport, TrainError> {
    let info = prediction.info();
    let channels = info
        .geometry
        .axes
        .iter()
        .any(|a| !a.spatial)
        .then(|| info.channels());
    map_chunks(
        prediction,
        DataType::U8,
        channels,
        serde_json::json!({"threshold": threshold, "source": info.path}),
        (container, dataset, mode),
        &|p| {
            Ok(Segmentation::Binary(crate::task::postprocess::threshold(
                p, threshold,
            )))
        },
    )
}

/// Post-processes a prediction of `predictor`'s task with `parameters` into
/// `container/dataset`, chunk by chunk in parallel. `mode` says what happens to an array
/// already at the output.
pub fn post_process_array(
    prediction: &dyn ArraySource,
    predictor: &Predictor,
    parameters: &PostProcessorParameters,
    container: &Path,
    dataset: &str,
    mode: WriteMode,
) -> Result<PostProcessReport, TrainError> {
    let info = prediction.info();
    let want = predictor.head().channels as u64;
    if info.channels() != want {
        return Err(TrainError::Data(format!(
            "{}: the prediction has {} channel(s), the task predicts {want}",
            info.path,
            info.channels()
        )));
    }
    let channels = predictor.output_channels().map(|c| c as u64);
    if let PostProcessorParameters::Watershed { .. } = parameters {
        return watershed_array(
            prediction,
            predictor,
            parameters,
            container,
            dataset,
            crate::task::predictor::MAX_WATERSHED_VOXELS,
            mode,
        )
        .map_err(TrainError::from);
    }
    let data_type = match predictor {
        Predictor::OneHot { .. } => DataType::U8,
        _ if channels.is_some() => DataType::U8,
        _ => DataType::U64,
    };
    map_chunks(
        prediction,
        data_type,
        channels,
        serde_json::json!({"parameters": parameters.name(), "source": info.path}),
        (container, dataset, mode),
        &|p| Ok(predictor.post_process(p, parameters)?),
    )
}
