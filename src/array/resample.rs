//! Resampling by integer factors: the `Resampled` array and the reductions the image
//! pyramid uses.
//!
//! Labels are never interpolated: upsampling repeats voxels (nearest neighbour) and
//! downsampling takes the most frequent value of each window. Intensities are upsampled
//! by linear interpolation between voxel centres (edges replicate) and downsampled by the
//! window mean, which also removes aliasing.

use ndarray::{ArrayD, Axis, IxDyn};

use super::data::Scalar;
use super::{ArrayData, ArrayError, ArrayInfo, ArraySource, Axis as MetaAxis, Geometry};
use crate::geometry::{Coordinate, Roi, SnapMode};

/// Reduces every axis `i` by `factors[i]` (the output has `shape / factor` voxels,
/// a remainder is dropped): window mean for intensities, most frequent value for labels.
pub fn downsample_by(src: &ArrayData, factors: &[usize], labels: bool) -> ArrayData {
    if factors.iter().all(|f| *f <= 1) {
        return src.clone();
    }
    if labels {
        crate::with_array_data!(src, a => mode_reduce(a, factors).into())
    } else {
        let mean = mean_reduce(&src.to_f64(), factors);
        super::data::from_f64(src.data_type(), &mean)
    }
}

macro_rules! into_data {
    ($($t:ty => $v:ident),*) => {$(
        impl From<ArrayD<$t>> for ArrayData {
            fn from(a: ArrayD<$t>) -> Self {
                ArrayData::$v(a)
            }
        }
    )*};
}
into_data!(bool => Bool, u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16,
    i32 => I32, i64 => I64, f32 => F32, f64 => F64);

fn out_shape(shape: &[usize], factors: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .zip(factors)
        .map(|(n, f)| n / (*f).max(1))
        .collect()
}

/// Calls `f(out_index, window_offsets)` for every output voxel of a reduction.
fn for_each_window(shape: &[usize], factors: &[usize], mut f: impl FnMut(&[usize], &[usize])) {
    let out = out_shape(shape, factors);
    if out.contains(&0) {
        return;
    }
    let window: Vec<usize> = factors.iter().map(|f| (*f).max(1)).collect();
    let mut index = vec![0usize; out.len()];
    loop {
        let start: Vec<usize> = index.iter().zip(&window).map(|(i, w)| i * w).collect();
        f(&index, &start);
        let mut axis = out.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < out[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

fn window_values<T: Copy>(a: &ArrayD<T>, start: &[usize], window: &[usize], buf: &mut Vec<T>) {
    buf.clear();
    let mut offset = vec![0usize; start.len()];
    let mut idx = vec![0usize; start.len()];
    loop {
        for k in 0..start.len() {
            idx[k] = start[k] + offset[k];
        }
        buf.push(a[IxDyn(&idx)]);
        let mut axis = start.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            offset[axis] += 1;
            if offset[axis] < window[axis] {
                break;
            }
            offset[axis] = 0;
        }
    }
}

fn mode_reduce<T: Scalar>(a: &ArrayD<T>, factors: &[usize]) -> ArrayD<T> {
    let window: Vec<usize> = factors.iter().map(|f| (*f).max(1)).collect();
    let mut out = ArrayD::from_elem(IxDyn(&out_shape(a.shape(), factors)), T::default());
    let mut buf = Vec::new();
    let mut counts: Vec<(T, usize)> = Vec::new();
    for_each_window(a.shape(), factors, |index, start| {
        window_values(a, start, &window, &mut buf);
        counts.clear();
        for v in &buf {
            match counts.iter_mut().find(|(c, _)| c == v) {
                Some(entry) => entry.1 += 1,
                None => counts.push((*v, 1)),
            }
        }
        let mut best = counts[0];
        for &(v, n) in &counts[1..] {
            if n > best.1 || (n == best.1 && v.to_f64() < best.0.to_f64()) {
                best = (v, n);
            }
        }
        out[IxDyn(index)] = best.0;
    });
    out
}

fn mean_reduce(a: &ArrayD<f64>, factors: &[usize]) -> ArrayD<f64> {
    let window: Vec<usize> = factors.iter().map(|f| (*f).max(1)).collect();
    let mut out = ArrayD::zeros(IxDyn(&out_shape(a.shape(), factors)));
    let mut buf = Vec::new();
    for_each_window(a.shape(), factors, |index, start| {
        window_values(a, start, &window, &mut buf);
        out[IxDyn(index)] = buf.iter().sum::<f64>() / buf.len() as f64;
    });
    out
}

/// Linear interpolation along `axis`: output voxel `j` samples the input at the continuous
/// index `positions[j]` (clamped to the input, so edges replicate).
fn interpolate_axis(a: &ArrayD<f64>, axis: usize, positions: &[f64]) -> ArrayD<f64> {
    let n = a.shape()[axis];
    let mut shape = a.shape().to_vec();
    shape[axis] = positions.len();
    let mut out = ArrayD::zeros(IxDyn(&shape));
    if n == 0 {
        return out;
    }
    for (j, p) in positions.iter().enumerate() {
        let p = p.clamp(0.0, (n - 1) as f64);
        let lo = p.floor() as usize;
        let hi = (lo + 1).min(n - 1);
        let t = p - lo as f64;
        let a_lo = a.index_axis(Axis(axis), lo);
        let a_hi = a.index_axis(Axis(axis), hi);
        let mut dst = out.index_axis_mut(Axis(axis), j);
        ndarray::Zip::from(&mut dst)
            .and(&a_lo)
            .and(&a_hi)
            .for_each(|d, l, h| *d = l * (1.0 - t) + h * t);
    }
    out
}

/// A source array resampled by integer factors per spatial axis (see the module docs).
pub struct Resampled {
    source: Box<dyn ArraySource>,
    info: ArrayInfo,
    up: Vec<i64>,
    down: Vec<i64>,
    interpolate: bool,
}

impl Resampled {
    /// Wraps `source`: voxel size = source voxel size × down / up per axis, which must be
    /// a whole number of nm. `interpolate` selects linear interpolation / window means
    /// (intensities) instead of nearest / most-frequent (labels).
    pub fn new(
        name: &str,
        source: Box<dyn ArraySource>,
        upsample: &Coordinate,
        downsample: &Coordinate,
        interpolate: bool,
    ) -> Result<Self, ArrayError> {
        let src = source.info();
        let src_vs = src.geometry.voxel_size;
        let dims = src_vs.dims();
        let invalid = |message: String| ArrayError::Invalid {
            path: name.to_string(),
            message,
        };
        if upsample.dims() != dims || downsample.dims() != dims {
            return Err(invalid(format!(
                "upsample {upsample} and downsample {downsample} must have one factor per spatial axis of {} (voxel size {src_vs})",
                src.path
            )));
        }
        let up: Vec<i64> = upsample.iter().map(|u| u.max(1)).collect();
        let down: Vec<i64> = downsample.iter().map(|d| d.max(1)).collect();
        let mut vs = Vec::with_capacity(dims);
        for i in 0..dims {
            let scaled = src_vs[i] * down[i];
            if scaled % up[i] != 0 {
                return Err(invalid(format!(
                    "resampling voxel size {src_vs} by up {upsample} / down {downsample} gives a non-integer voxel size on axis {i} ({scaled}/{} nm); choose factors that divide the voxel size",
                    up[i]
                )));
            }
            vs.push(scaled / up[i]);
        }
        let vs = Coordinate::new(&vs).map_err(|e| invalid(e.to_string()))?;
        let grid = src_vs.lcm(&vs);
        let roi = src
            .roi
            .snap_to_grid(&grid, SnapMode::Shrink)
            .map_err(|e| invalid(e.to_string()))?;
        let spatial_shape = roi.shape() / vs;
        let mut shape = Vec::new();
        let mut chunk_shape = Vec::new();
        let mut s = 0;
        for (axis, a) in src.geometry.axes.iter().enumerate() {
            if a.spatial {
                shape.push(spatial_shape[s].max(0) as u64);
                let c = src.chunk_shape[axis] as i64 * up[s] / down[s];
                chunk_shape.push(c.max(1) as u64);
                s += 1;
            } else {
                shape.push(src.shape[axis]);
                chunk_shape.push(src.shape[axis]);
            }
        }
        let geometry = Geometry::derived(
            src.geometry.axes.clone(),
            vs,
            roi.offset(),
            src.geometry.units.clone(),
            "resampled",
        );
        let info = ArrayInfo {
            path: name.to_string(),
            format: "Resampled",
            data_type: src.data_type,
            shape,
            chunk_shape,
            shard_shape: None,
            codecs: format!("resampled ×{upsample} ÷{downsample} from {}", src.path),
            fill_value: src.fill_value.clone(),
            geometry,
            roi,
        };
        Ok(Self {
            source,
            info,
            up,
            down,
            interpolate,
        })
    }
}

impl ArraySource for Resampled {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.info.voxel_ranges(roi)?;
        let src_info = self.source.info();
        let src_vs = src_info.geometry.voxel_size;
        let vs = self.info.geometry.voxel_size;
        let dims = vs.dims();
        let read_err = |e: crate::geometry::GeometryError| ArrayError::Read {
            path: self.info.path.clone(),
            roi: roi.to_string(),
            message: e.to_string(),
        };
        // Source region: the request snapped outward to the source grid, plus one source
        // voxel of context on interpolated axes (clipped to the source).
        let mut src_roi = roi
            .snap_to_grid(&src_vs, SnapMode::Grow)
            .map_err(read_err)?;
        if self.interpolate && self.up.iter().any(|u| *u > 1) {
            let margin: Vec<i64> = (0..dims)
                .map(|i| if self.up[i] > 1 { src_vs[i] } else { 0 })
                .collect();
            let margin = Coordinate::new(&margin).map_err(read_err)?;
            src_roi = src_roi
                .grow(&margin, &margin)
                .map_err(read_err)?
                .intersect(&src_info.roi);
        }
        let data = self.source.read(&src_roi)?;
        let axes: Vec<&MetaAxis> = src_info.geometry.axes.iter().collect();
        let spatial_axes: Vec<usize> = (0..axes.len()).filter(|&i| axes[i].spatial).collect();

        // 1. Reduce the downsampled axes (the region is aligned to them).
        let mut factors = vec![1usize; axes.len()];
        for (s, &axis) in spatial_axes.iter().enumerate() {
            factors[axis] = self.down[s] as usize;
        }
        let data = downsample_by(&data, &factors, !self.interpolate);

        // 2. Expand the upsampled axes.
        if self.up.iter().all(|u| *u <= 1) {
            return Ok(data);
        }
        let block_vs: Vec<i64> = (0..dims).map(|i| src_vs[i] * self.down[i]).collect();
        let positions = |s: usize| -> Vec<f64> {
            let n = (roi.shape()[s] / vs[s]) as usize;
            (0..n)
                .map(|j| {
                    let centre = (roi.offset()[s] - src_roi.offset()[s]) as f64
                        + (j as f64 + 0.5) * vs[s] as f64;
                    centre / block_vs[s] as f64
                })
                .collect()
        };
        if self.interpolate {
            let mut a = data.to_f64();
            for (s, &axis) in spatial_axes.iter().enumerate() {
                if self.up[s] > 1 {
                    let pos: Vec<f64> = positions(s).iter().map(|p| p - 0.5).collect();
                    a = interpolate_axis(&a, axis, &pos);
                }
            }
            Ok(super::data::from_f64(self.info.data_type, &a))
        } else {
            let mut out = data;
            for (s, &axis) in spatial_axes.iter().enumerate() {
                if self.up[s] > 1 {
                    let n = out.shape()[axis];
                    let idx: Vec<usize> = positions(s)
                        .iter()
                        .map(|p| (p.floor().max(0.0) as usize).min(n.saturating_sub(1)))
                        .collect();
                    out = crate::with_array_data!(&out, a => a.select(Axis(axis), &idx).into());
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_and_mean_reductions() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![1u64, 1, 5, 5, 2, 1, 5, 0]).unwrap();
        let d = downsample_by(&ArrayData::U64(a.clone()), &[2, 2], true);
        assert_eq!(
            d,
            ArrayData::U64(ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![1, 5]).unwrap())
        );
        let m = downsample_by(&ArrayData::U64(a), &[2, 2], false);
        assert_eq!(
            m,
            ArrayData::U64(ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![1, 4]).unwrap())
        );
        // Ties go to the smaller id; a remainder is dropped.
        let b = ArrayD::from_shape_vec(IxDyn(&[5]), vec![3u8, 2, 9, 9, 7]).unwrap();
        let d = downsample_by(&ArrayData::U8(b), &[2], true);
        assert_eq!(
            d,
            ArrayData::U8(ArrayD::from_shape_vec(IxDyn(&[2]), vec![2, 9]).unwrap())
        );
    }

    #[test]
    fn linear_interpolation_between_centres() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2]), vec![0.0, 8.0]).unwrap();
        // ×2: centres of the new voxels sit at -0.25, 0.25, 0.75, 1.25 in old voxel units.
        let pos = [-0.25, 0.25, 0.75, 1.25];
        let out = interpolate_axis(&a, 0, &pos);
        assert_eq!(out.as_slice().unwrap(), &[0.0, 2.0, 6.0, 8.0]);
    }
}
