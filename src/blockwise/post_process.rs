//! Post-processing of a written prediction as block jobs of whole output chunks:
//! thresholds and the run's point-wise post-processors over regions of any size, each
//! output chunk written once, resumable through the job's ledger.

use super::*;

/// Voxels a block of a point-wise post-processing job holds at least (unless it covers
/// the region).
pub(super) const POINTWISE_BLOCK_VOXELS: u64 = 1 << 22;

/// The block size of a post-processing job over an output chunked as `chunk_voxels` at
/// `voxel_size`: whole chunks, doubled along one axis after another until a block holds
/// at least `target_voxels` voxels or covers `region` (so the ledger's work per block
/// stays small next to the block's).
pub fn post_block_nm(
    chunk_voxels: &[u64],
    voxel_size: &crate::geometry::Coordinate,
    region: &Roi,
    target_voxels: u64,
) -> Result<crate::geometry::Coordinate, TrainError> {
    let dims = chunk_voxels.len();
    let span: Vec<i64> = (0..dims)
        .map(|a| region.shape()[a] / voxel_size[a].max(1))
        .collect();
    let mut block: Vec<i64> = chunk_voxels.iter().map(|c| (*c).max(1) as i64).collect();
    let voxels = |b: &[i64]| b.iter().map(|v| *v as f64).product::<f64>();
    let mut axis = dims;
    while voxels(&block) < target_voxels as f64 {
        let Some(a) = (0..dims)
            .map(|k| (axis + dims - 1 - k) % dims)
            .find(|&a| block[a] < span[a])
        else {
            break;
        };
        block[a] *= 2;
        axis = a;
    }
    let nm: Vec<i64> = (0..dims).map(|a| block[a] * voxel_size[a]).collect();
    crate::geometry::Coordinate::new(&nm).map_err(|e| TrainError::Data(e.to_string()))
}

/// Prepares the block job of `kind` with blocks of `block_nm` that writes a
/// post-processing as `spec` into `container/dataset`: an unfinished job with the same
/// `source` is continued, a finished one or any other array is handled as `mode` says.
pub(super) fn prepare_post_job(
    spec: &ArraySpec,
    (container, dataset, mode): (&Path, &str, WriteMode),
    (kind, block_nm): (JobKind, crate::geometry::Coordinate),
    source: serde_json::Value,
    worker: serde_json::Value,
) -> Result<JobFile, TrainError> {
    let dataset = write::output_dataset_name(container, dataset)?;
    let path = container.join(&dataset);
    let grid = BlockGrid::new(spec.roi, block_nm)?;
    let existing = if mode == WriteMode::Overwrite {
        None
    } else {
        JobFile::load(&path).ok().flatten()
    };
    if mode == WriteMode::Resume {
        if let Some(j) = existing
            .as_ref()
            .filter(|j| j.source != source || j.grid != grid)
        {
            let done = j
                .ledger("status")?
                .done_count()
                .map_err(|e| TrainError::Data(e.to_string()))?;
            return Err(TrainError::OutputExists {
                path: path.display().to_string(),
                what: format!(
                    "an unfinished post-processing made otherwise ({done} of {} blocks done, from {})",
                    j.grid.len(),
                    j.source
                ),
            });
        }
    }
    let mode = match &existing {
        Some(j) if j.source == source && j.grid == grid => {
            let done = j
                .ledger("status")?
                .done_count()
                .map_err(|e| TrainError::Data(e.to_string()))?;
            if done < j.grid.len() {
                WriteMode::Resume
            } else {
                mode
            }
        }
        _ => mode,
    };
    write::create(container, &dataset, spec, mode)?;
    if mode == WriteMode::Resume {
        if let Some(j) = existing.filter(|j| j.source == source && j.grid == grid) {
            return Ok(j);
        }
    }
    let job = JobFile {
        format: 1,
        kind,
        container: container.to_path_buf(),
        dataset,
        grid,
        ledger: ledger::LedgerSettings::default(),
        provenance: None,
        source,
        worker,
        then: Vec::new(),
    };
    job.store()?;
    Ok(job)
}

/// Post-processes `region` of `prediction` with `f` and writes it with `writer`; returns
/// the non-zero voxels per channel.
pub(super) fn post_process_region(
    prediction: &dyn ArraySource,
    writer: &write::ArrayWriter,
    region: &Roi,
    data_type: DataType,
    channels: Option<u64>,
    f: &(dyn Fn(&ndarray::ArrayD<f32>) -> Result<Segmentation, TrainError> + Sync),
) -> Result<Vec<u64>, TrainError> {
    let has_channel_axis = prediction.info().geometry.axes.iter().any(|a| !a.spatial);
    let n_channels = channels.unwrap_or(1) as usize;
    let mut p = crate::task::arrays::read_prediction(prediction, region)?;
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
    writer.write(region, &data)?;
    Ok(fg)
}

/// Applies a point-wise post-processing `f` to a prediction as a block job of whole
/// output chunks, run by this process's threads, into `container/dataset` (same region,
/// voxel size and chunking; `channels` output channels or none for label outputs). An
/// interrupted run of the same post-processing is continued.
pub(super) fn map_chunks(
    prediction: &dyn ArraySource,
    (data_type, channels, compression): (DataType, Option<u64>, write::Compression),
    attributes: serde_json::Value,
    (container, dataset, mode): (&Path, &str, WriteMode),
    f: &(dyn Fn(&ndarray::ArrayD<f32>) -> Result<Segmentation, TrainError> + Sync),
) -> Result<PostProcessReport, TrainError> {
    let (spec, source) = post_output(prediction, (data_type, channels, compression), attributes)?;
    let chunk = spec.chunk_voxels.clone().unwrap_or_default();
    let block_nm = post_block_nm(&chunk, &spec.voxel_size, &spec.roi, POINTWISE_BLOCK_VOXELS)?;
    let job = prepare_post_job(
        &spec,
        (container, dataset, mode),
        (JobKind::PostProcess, block_nm),
        source,
        serde_json::Value::Null,
    )?;
    let writer = write::reopen(container, &job.dataset)?;
    let work = job::work_blocks(
        &job,
        &WorkOptions::sweeping(),
        rayon::current_num_threads(),
        &|_, region| {
            let fg = post_process_region(prediction, &writer, region, data_type, channels, f)?;
            Ok(serde_json::json!(fg))
        },
        &|_, _| {},
    )?;
    finished_post_report(&job, &writer, channels, &work)
}

/// The spec of a post-processed output of `prediction` (its region, voxel size and
/// chunks; `data_type`, `channels`, `compression`) with `attributes`, the prediction's
/// record and Segno's version under `segno_post_process`, and the job source a
/// continued job must match (the prediction, its identity and `attributes`).
pub(super) fn post_output(
    prediction: &dyn ArraySource,
    (data_type, channels, compression): (DataType, Option<u64>, write::Compression),
    attributes: serde_json::Value,
) -> Result<(ArraySpec, serde_json::Value), TrainError> {
    let info = prediction.info();
    let attributes = with_prediction_record(prediction, attributes);
    let mut spec = output_spec(info, data_type, channels, with_version(&attributes));
    spec.compression = compression;
    let path = crate::ops::job::absolute(Path::new(&info.path));
    let source = serde_json::json!({
        "prediction": info.path,
        "prediction_identity": input_identity(&path)?,
        "attributes": attributes,
    });
    Ok((spec, source))
}

/// `attributes` of a post-processed output with the record of the prediction it was made
/// from (run, iteration, checkpoint, input, region, how the input was read), when the
/// prediction has one.
fn with_prediction_record(
    prediction: &dyn ArraySource,
    mut attributes: serde_json::Value,
) -> serde_json::Value {
    let record = prediction
        .attributes()
        .and_then(|a| a.get("segno_prediction"))
        .and_then(|r| r.get("provenance"))
        .cloned();
    if let (Some(o), Some(record)) = (attributes.as_object_mut(), record) {
        o.insert("prediction_provenance".into(), record);
    }
    attributes
}

/// `attributes` with the version of Segno that writes them (stored on the output, not
/// compared when a job is continued).
fn with_version(attributes: &serde_json::Value) -> serde_json::Value {
    let mut a = attributes.clone();
    if let Some(o) = a.as_object_mut() {
        o.insert(
            "segno_version".into(),
            serde_json::json!(env!("CARGO_PKG_VERSION")),
        );
    }
    a
}

/// The report of a finished post-processing job: its foreground counts summed over the
/// done records of every worker; blocks given up are an error listing them.
pub(super) fn finished_post_report(
    job: &JobFile,
    writer: &write::ArrayWriter,
    channels: Option<u64>,
    work: &WorkReport,
) -> Result<PostProcessReport, TrainError> {
    work.check_complete(job)?;
    let n_channels = channels.unwrap_or(1) as usize;
    let mut foreground = vec![0u64; n_channels];
    let records = job
        .ledger("status")?
        .done_records(job.grid.len())
        .map_err(|e| TrainError::Data(e.to_string()))?;
    for (_, record) in records {
        if let Some(counts) = record.extra.as_array() {
            for (a, b) in foreground.iter_mut().zip(counts) {
                *a += b.as_u64().unwrap_or(0);
            }
        }
    }
    let chunks = crate::array::ArraySource::chunk_grid_shape(writer)
        .iter()
        .product::<u64>() as usize;
    Ok(PostProcessReport {
        output: job.output(),
        chunks,
        foreground,
    })
}

/// Thresholds a prediction chunk by chunk, in parallel, into `container/dataset` (uint8,
/// same geometry and chunking): `prediction > threshold`. `mode` says what happens to an
/// array already at the output.
pub fn threshold_array(
    prediction: &dyn ArraySource,
    threshold: f64,
    (container, dataset, mode): (&Path, &str, WriteMode),
    compression: write::Compression,
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
        (DataType::U8, channels, compression),
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
    (predictor, parameters): (&Predictor, &PostProcessorParameters),
    (container, dataset, mode): (&Path, &str, WriteMode),
    compression: write::Compression,
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
    if let Some(method) = super::segment::SegmentMethod::for_task(predictor, parameters) {
        return super::segment::segment_array(
            prediction,
            &method,
            &super::segment::SegmentOptions {
                compression,
                ..Default::default()
            },
            (container, dataset, mode),
            &|_, _| {},
        );
    }
    let data_type = match predictor {
        Predictor::OneHot { .. } => DataType::U8,
        _ if channels.is_some() => DataType::U8,
        _ => DataType::U64,
    };
    map_chunks(
        prediction,
        (data_type, channels, compression),
        serde_json::json!({"parameters": parameters.name(), "source": info.path}),
        (container, dataset, mode),
        &|p| Ok(predictor.post_process(p, parameters)?),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Coordinate;

    #[test]
    fn post_processing_blocks_are_whole_chunks_of_about_four_million_voxels() {
        let vs = Coordinate::from([4, 4, 4]);
        let big = Roi::new(Coordinate::from([0, 0, 0]), vs * 1000).unwrap();
        let b = post_block_nm(&[64, 64, 64], &vs, &big, POINTWISE_BLOCK_VOXELS).unwrap();
        // 64³ = 2¹⁸ voxels doubled on x, y, z, x: 2²² voxels.
        assert_eq!(b, Coordinate::from([4 * 128, 4 * 128, 4 * 256]));
        // A small region: a block covers it, no more doubling.
        let small = Roi::new(Coordinate::from([0, 0, 0]), vs * 100).unwrap();
        let b = post_block_nm(&[64, 64, 64], &vs, &small, POINTWISE_BLOCK_VOXELS).unwrap();
        assert_eq!(b, Coordinate::from([4 * 128, 4 * 128, 4 * 128]));
    }
}
