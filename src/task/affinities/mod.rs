//! Training targets (affinities, local shape descriptors) and the mutex
//! watershed for N-dimensional (usually 2D/3D) microscopy segmentation.
//!
//! All arrays are `ndarray` dynamic-dimensional arrays; multi-channel arrays
//! are channels-first. Offsets are given in voxels, one per affinity channel.

pub mod mws;
pub mod targets;

pub use mws::{filter_fragments, mutex_watershed, relabel_consecutive};
pub use targets::{affinity_target, lsd_target};

/// Error returned when the inputs of a function in this crate are inconsistent
/// or out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AffError {
    /// An offset has a different number of entries than the array has (spatial) axes.
    #[error("offset {index} has {got} entries, the array {expected} spatial axes")]
    OffsetDims {
        /// Position of the offending offset in the offset list.
        index: usize,
        /// Number of entries of that offset.
        got: usize,
        /// Number of (spatial) axes of the array.
        expected: usize,
    },
    /// `voxel_size` has a different number of entries than the array has axes.
    #[error("voxel_size has {got} entries, the array {expected} axes")]
    VoxelSizeDims {
        /// Number of entries of `voxel_size`.
        got: usize,
        /// Number of axes of the array.
        expected: usize,
    },
    /// The affinity array has fewer channels than required.
    #[error("the affinities have {got} channels, but {needed} are needed")]
    TooFewChannels {
        /// Number of channels of the affinity array.
        got: usize,
        /// Number of channels required (e.g. the number of offsets).
        needed: usize,
    },
    /// Two arrays that must agree in shape do not.
    #[error("shape mismatch: {0}")]
    ShapeMismatch(String),
    /// A scalar parameter or an array value is out of its valid range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The input is too large for the index types used internally.
    #[error("input too large: {0}")]
    TooLarge(String),
}

/// Row-major (C order) strides, in elements, of an array with the given shape.
pub(crate) fn c_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for axis in (1..shape.len()).rev() {
        strides[axis - 1] = strides[axis] * shape[axis];
    }
    strides
}

/// Calls `f(flat, index)` for every multi-index in the half-open box
/// `lo..hi` in raster order; `flat` is the row-major flat index of `index`
/// in an array with the given `strides`.
pub(crate) fn for_each_in_box(
    strides: &[usize],
    lo: &[usize],
    hi: &[usize],
    mut f: impl FnMut(usize, &[usize]),
) {
    if lo.iter().zip(hi).any(|(l, h)| l >= h) {
        return;
    }
    let mut index = lo.to_vec();
    let mut flat: usize = lo.iter().zip(strides).map(|(i, s)| i * s).sum();
    loop {
        f(flat, &index);
        let mut axis = index.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            index[axis] += 1;
            flat += strides[axis];
            if index[axis] < hi[axis] {
                break;
            }
            flat -= (index[axis] - lo[axis]) * strides[axis];
            index[axis] = lo[axis];
        }
    }
}
