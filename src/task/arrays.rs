//! Post-processing of predictions stored as arrays, chunk by chunk: the output geometry,
//! and the mutex watershed of regions too large to segment in one piece (fragments per
//! block with context, merged across block faces).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::{ArrayData, ArraySource, DataType};
use crate::geometry::{Coordinate, Roi};

use super::postprocess::PostProcessorParameters;
use super::predictor::{Predictor, Segmentation};
use super::TaskError;

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

/// Context (voxels per side) each block of a blockwise watershed sees around itself.
pub const WATERSHED_CONTEXT_VOXELS: i64 = 32;

/// Two fragments touching across a block face, with the affinity of one edge between them.
type FaceEdge = ((u64, u64), f64);

/// Union–find over sparse fragment ids.
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
        // Path compression.
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
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(hi, lo);
        }
    }
}

/// Mutex watershed of an affinity prediction into `container/dataset` (uint64 ids, 0 =
/// background). Up to `max_voxels` the region is segmented in one piece; larger regions
/// block by block (blocks = the prediction's chunks, each segmented with
/// [`WATERSHED_CONTEXT_VOXELS`] of context), then fragments that touch across a block face
/// are merged where the mean affinity of the edges between them exceeds the bias, and ids
/// are made consecutive. `mode` says what happens to an array already at the output.
pub fn watershed_array(
    prediction: &dyn ArraySource,
    predictor: &Predictor,
    parameters: &PostProcessorParameters,
    container: &Path,
    dataset: &str,
    max_voxels: usize,
    mode: WriteMode,
) -> Result<PostProcessReport, TaskError> {
    use rayon::prelude::*;
    let (Predictor::Affinities { offsets, .. }, PostProcessorParameters::Watershed { bias, .. }) =
        (predictor, parameters)
    else {
        return Err(TaskError::Shape(format!(
            "{} is not a watershed of an affinities task",
            parameters.name()
        )));
    };
    let info = prediction.info();
    let vs = info.geometry.voxel_size;
    let dims = vs.dims();
    let spec = output_spec(
        info,
        DataType::U64,
        None,
        serde_json::json!({"parameters": parameters.name(), "source": info.path}),
    );
    let chunk = spec.chunk_voxels.clone().unwrap_or_default();
    let writer = write::create(container, dataset, &spec, mode)?;
    let indices = write::grid_indices(&writer.chunk_grid_shape());
    let region_voxels: i64 = (info.roi.shape() / vs).iter().product();
    let labels_of = |roi: &Roi| -> Result<ndarray::ArrayD<u64>, TaskError> {
        let p = read_prediction(prediction, roi)?;
        match predictor.post_process(&p, parameters)? {
            Segmentation::Labels(l) => Ok(l),
            Segmentation::Binary(_) => {
                Err(TaskError::Shape("the watershed produced no labels".into()))
            }
        }
    };
    if region_voxels as usize <= max_voxels {
        let labels = labels_of(&info.roi)?;
        let labelled = labels.iter().filter(|v| **v != 0).count() as u64;
        writer.write(&info.roi, &ArrayData::U64(labels))?;
        return Ok(PostProcessReport {
            output: container.join(dataset),
            chunks: indices.len(),
            foreground: vec![labelled],
        });
    }
    // 1. Every block with its context; ids made unique by a per-block base.
    let block_voxels: u64 = chunk.iter().product();
    let context = Coordinate::splat(WATERSHED_CONTEXT_VOXELS, dims) * vs;
    let counts = indices
        .par_iter()
        .enumerate()
        .map(|(k, index)| -> Result<u64, TaskError> {
            let block = writer.info().chunk_roi(index)?;
            let read = block
                .grow(&context, &context)
                .map_err(|e| TaskError::Shape(e.to_string()))?
                .intersect(&info.roi);
            let labels = labels_of(&read)?;
            let off = (block.begin() - read.begin()) / vs;
            let n = block.shape() / vs;
            let mut own = labels
                .slice_each_axis(|ax| {
                    let a = ax.axis.index();
                    ndarray::Slice::from(off[a] as usize..(off[a] + n[a]) as usize)
                })
                .to_owned();
            let count = super::affinities::relabel_consecutive(&mut own);
            let base = k as u64 * block_voxels;
            own.mapv_inplace(|v| if v == 0 { 0 } else { v + base });
            writer.write(&block, &ArrayData::U64(own))?;
            Ok(count)
        })
        .collect::<Result<Vec<u64>, _>>()?;
    // 2. Merge fragments across faces by the mean affinity between them.
    let grid = writer.chunk_grid_shape();
    let channel_of = |axis: usize| {
        offsets.iter().enumerate().find_map(|(c, o)| {
            let unit = o
                .iter()
                .enumerate()
                .all(|(b, v)| if b == axis { v.abs() == 1 } else { *v == 0 });
            unit.then_some((c, o[axis] > 0))
        })
    };
    let faces: Vec<(Vec<u64>, usize)> = indices
        .iter()
        .flat_map(|index| {
            (0..dims)
                .filter(|a| index[*a] + 1 < grid[*a])
                .map(move |a| (index.clone(), a))
        })
        .collect();
    let edges = faces
        .par_iter()
        .map(|(index, axis)| -> Result<Vec<FaceEdge>, TaskError> {
            let block = writer.info().chunk_roi(index)?;
            // The last layer of this block and the first of the next along `axis`.
            let mut begin = block.begin().to_vec();
            let mut shape = block.shape().to_vec();
            begin[*axis] = block.end()[*axis] - vs[*axis];
            shape[*axis] = 2 * vs[*axis];
            let coord = |v: &[i64]| Coordinate::new(v).map_err(|e| TaskError::Shape(e.to_string()));
            let face = Roi::new(coord(&begin)?, coord(&shape)?)
                .map_err(|e| TaskError::Shape(e.to_string()))?;
            let labels = writer.read(&face)?.to_labels().map_err(TaskError::Shape)?;
            let affs = read_prediction(prediction, &face)?;
            let side = |arr: &ndarray::ArrayD<u64>, i: usize| {
                arr.index_axis(ndarray::Axis(*axis), i).to_owned()
            };
            let (la, lb) = (side(&labels, 0), side(&labels, 1));
            let aff = channel_of(*axis).map(|(c, positive)| {
                let a = affs.index_axis(ndarray::Axis(0), c);
                // An edge (u, u + o) is stored at u: at the first layer for +1, the second for −1.
                a.index_axis(ndarray::Axis(*axis), if positive { 0 } else { 1 })
                    .to_owned()
            });
            // Without a nearest-neighbour offset along the axis, touching counts as attraction.
            let w = aff.unwrap_or_else(|| ndarray::ArrayD::from_elem(la.raw_dim(), 1.0));
            let mut out = Vec::new();
            for ((a, b), w) in la.iter().zip(lb.iter()).zip(w.iter()) {
                if *a != 0 && *b != 0 && a != b {
                    out.push(((*a.min(b), *a.max(b)), f64::from(*w)));
                }
            }
            Ok(out)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut sums: HashMap<(u64, u64), (f64, u64)> = HashMap::new();
    for (pair, w) in edges.into_iter().flatten() {
        let e = sums.entry(pair).or_insert((0.0, 0));
        e.0 += w;
        e.1 += 1;
    }
    let mut fragments = Fragments::default();
    let mut pairs: Vec<_> = sums.into_iter().collect();
    pairs.sort_by_key(|(p, _)| *p);
    for ((a, b), (sum, n)) in pairs {
        if sum / n as f64 > *bias {
            fragments.union(a, b);
        }
    }
    // 3. Consecutive ids in block order, then every block rewritten.
    let mut final_id: HashMap<u64, u64> = HashMap::new();
    let mut roots: HashMap<u64, u64> = HashMap::new();
    for (k, count) in counts.iter().enumerate() {
        for local in 1..=*count {
            let id = k as u64 * block_voxels + local;
            let root = fragments.find(id);
            let next = roots.len() as u64 + 1;
            let f = *roots.entry(root).or_insert(next);
            final_id.insert(id, f);
        }
    }
    let labelled = indices
        .par_iter()
        .map(|index| -> Result<u64, TaskError> {
            let block = writer.info().chunk_roi(index)?;
            let mut l = writer.read(&block)?.to_labels().map_err(TaskError::Shape)?;
            l.mapv_inplace(|v| final_id.get(&v).copied().unwrap_or(0));
            let n = l.iter().filter(|v| **v != 0).count() as u64;
            writer.write(&block, &ArrayData::U64(l))?;
            Ok(n)
        })
        .collect::<Result<Vec<u64>, _>>()?
        .into_iter()
        .sum();
    Ok(PostProcessReport {
        output: container.join(dataset),
        chunks: indices.len(),
        foreground: vec![labelled],
    })
}
