//! Arrays held in memory: DaCapo's dummy arrays, TIFF stacks read whole, and test data.

use std::path::Path;

use ndarray::{ArrayD, Axis, IxDyn};

use super::transform::invalid;
use serde_json::Value;

use super::{ArrayData, ArrayError, ArrayInfo, ArraySource, Axis as MetaAxis, Geometry};
use crate::geometry::{Coordinate, Roi};

/// An array held in memory (Dummy arrays, TIFF stacks, tests).
pub struct InMemory {
    info: ArrayInfo,
    data: ArrayData,
}

impl InMemory {
    /// Wraps `data` (spatial axes only, or with a leading channel axis when `channels`).
    pub fn new(
        name: &str,
        format: &'static str,
        data: ArrayData,
        voxel_size: Coordinate,
        offset: Coordinate,
        channels: bool,
    ) -> Result<Self, ArrayError> {
        let ndim = data.shape().len();
        let dims = voxel_size.dims();
        if ndim != dims + usize::from(channels) || offset.dims() != dims {
            return Err(invalid(
                name,
                format!(
                    "data of shape {:?} does not fit voxel size {voxel_size} and offset {offset}",
                    data.shape()
                ),
            ));
        }
        let spatial: Vec<i64> = data.shape()[usize::from(channels)..]
            .iter()
            .map(|n| *n as i64)
            .collect();
        let size =
            Coordinate::new(&spatial).map_err(|e| invalid(name, e.to_string()))? * voxel_size;
        let roi = Roi::new(offset, size).map_err(|e| invalid(name, e.to_string()))?;
        let names = super::meta::default_axis_names(ndim);
        let axes = names
            .iter()
            .map(|n| MetaAxis {
                name: n.clone(),
                spatial: !n.ends_with('^'),
            })
            .collect();
        let shape: Vec<u64> = data.shape().iter().map(|n| *n as u64).collect();
        Ok(Self {
            info: ArrayInfo {
                path: name.to_string(),
                format,
                data_type: data.data_type(),
                chunk_shape: shape.clone(),
                shape,
                shard_shape: None,
                codecs: "in memory".into(),
                fill_value: Value::from(0),
                geometry: Geometry::derived(
                    axes,
                    voxel_size,
                    offset,
                    vec!["nm".into(); dims],
                    "config",
                ),
                roi,
            },
            data,
        })
    }

    /// Reads a (multi-page) TIFF file into memory: pages are z slices.
    pub fn tiff(
        name: &str,
        path: &Path,
        voxel_size: Coordinate,
        offset: Coordinate,
    ) -> Result<Self, ArrayError> {
        let display = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| ArrayError::Io {
            path: display.clone(),
            source: e,
        })?;
        let bad = |m: String| ArrayError::Metadata {
            path: display.clone(),
            message: m,
        };
        let mut decoder = tiff::decoder::Decoder::new(std::io::BufReader::new(file))
            .map_err(|e| bad(e.to_string()))?;
        let mut pages: Vec<ArrayData> = Vec::new();
        let mut dims: Option<(u32, u32)> = None;
        loop {
            let (w, h) = decoder.dimensions().map_err(|e| bad(e.to_string()))?;
            if dims.is_some_and(|d| d != (w, h)) {
                return Err(bad(format!(
                    "page {} is {w}×{h}, earlier pages differ",
                    pages.len()
                )));
            }
            dims = Some((w, h));
            let shape = [1usize, h as usize, w as usize];
            use tiff::decoder::DecodingResult as D;
            let img = decoder.read_image().map_err(|e| bad(e.to_string()))?;
            let page = match img {
                D::U8(v) => ArrayData::U8(
                    ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| bad(e.to_string()))?,
                ),
                D::U16(v) => ArrayData::U16(
                    ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| bad(e.to_string()))?,
                ),
                D::U32(v) => ArrayData::U32(
                    ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| bad(e.to_string()))?,
                ),
                D::F32(v) => ArrayData::F32(
                    ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| bad(e.to_string()))?,
                ),
                _ => {
                    return Err(ArrayError::Unsupported {
                        path: display.clone(),
                        what: "TIFF sample format (use 8/16/32-bit grey or float32)".into(),
                    })
                }
            };
            pages.push(page);
            if !decoder.more_images() {
                break;
            }
            decoder.next_image().map_err(|e| bad(e.to_string()))?;
        }
        let mut data = ArrayData::concat(&pages).map_err(bad)?;
        if voxel_size.dims() == 2 {
            if pages.len() != 1 {
                return Err(bad(format!(
                    "{} pages for a 2D voxel size {voxel_size}",
                    pages.len()
                )));
            }
            data = crate::with_array_data!(data, a => a.index_axis_move(Axis(0), 0).into());
        }
        Self::new(name, "TIFF", data, voxel_size, offset, false)
    }
}

impl InMemory {
    /// Names the axes (one name per axis, all spatial); an empty list keeps `z, y, x`.
    /// Errors name the config `name` and its `axis_names` field.
    pub fn name_axes(&mut self, name: &str, names: &[String]) -> Result<(), ArrayError> {
        if names.is_empty() {
            return Ok(());
        }
        let axes = &mut self.info.geometry.axes;
        if names.len() != axes.len() {
            return Err(invalid(
                name,
                format!(
                    "axis_names: {} name(s) {names:?} for an array with {} axes",
                    names.len(),
                    axes.len()
                ),
            ));
        }
        if let Some(n) = names.iter().find(|n| super::meta::is_non_spatial_name(n)) {
            return Err(invalid(
                name,
                format!("axis_names: `{n}` names a channel axis; TIFF stacks are read as spatial axes only"),
            ));
        }
        for (axis, n) in axes.iter_mut().zip(names) {
            axis.name = n.clone();
        }
        Ok(())
    }
}

impl ArraySource for InMemory {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        let ranges = self.info.voxel_ranges(roi)?;
        let r: Vec<std::ops::Range<usize>> = ranges
            .iter()
            .map(|r| r.start as usize..r.end as usize)
            .collect();
        Ok(self.data.slice_region(&r))
    }
}
