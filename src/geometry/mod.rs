//! Integer geometry for large volumes: coordinates and regions of interest.
//!
//! Everything here follows the DaCapo / funlib conventions:
//!
//! * [`Coordinate`] is an integer vector (1 to 4 dimensions, in practice 2D or 3D) in
//!   **world units (nanometres)**, with axes in C order (`z, y, x`).
//! * [`VoxelCoordinate`] is a thin newtype for voxel indices or counts, so that world and
//!   voxel units cannot be mixed up by accident. Convert with [`Coordinate::to_voxels`]
//!   and [`VoxelCoordinate::to_world`].
//! * [`Roi`] is a half-open box `[offset, offset + shape)` in world units; [`VoxelRoi`] is
//!   its voxel-unit counterpart.
//!
//! Division of coordinates is **floor** division (like Python's `//`), so `-1 / 2 == -1`.
//! Binary operators (`+`, `-`, `*`, `/`) panic on a dimension mismatch, a zero divisor or
//! an overflow; the `checked_*` methods return a [`GeometryError`] instead.

mod coordinate;
mod roi;

pub use coordinate::{Coordinate, VoxelCoordinate};
pub use roi::{Roi, SnapMode, VoxelRoi};

use thiserror::Error;

/// Errors produced by geometry operations; every message names the offending values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GeometryError {
    /// Two operands of a binary operation have different numbers of dimensions.
    #[error("dimension mismatch: {lhs} vs {rhs}")]
    DimensionMismatch {
        /// The left-hand operand.
        lhs: Coordinate,
        /// The right-hand operand.
        rhs: Coordinate,
    },
    /// A coordinate was built with an unsupported number of dimensions (not 1 to 4).
    #[error(
        "invalid number of dimensions {dims} in {values:?}: expected 1 to {}",
        Coordinate::MAX_DIMS
    )]
    InvalidDims {
        /// The number of dimensions that was given.
        dims: usize,
        /// The values that were given.
        values: Vec<i64>,
    },
    /// A division where the divisor has a zero component.
    #[error("division by zero: {lhs} / {rhs}")]
    DivisionByZero {
        /// The dividend.
        lhs: Coordinate,
        /// The divisor (with at least one zero component).
        rhs: Coordinate,
    },
    /// An intermediate or final value does not fit into an `i64`.
    #[error("arithmetic overflow: {0}")]
    Overflow(String),
    /// A value (coordinate or ROI, as text) is not an exact multiple of a divisor.
    #[error("{value} is not a multiple of {divisor}")]
    NotAMultiple {
        /// The value that should have been a multiple, formatted for display.
        value: String,
        /// The divisor, e.g. a voxel size.
        divisor: Coordinate,
    },
    /// A voxel size with a zero or negative component.
    #[error("invalid voxel size {0}: all components must be positive")]
    InvalidVoxelSize(Coordinate),
    /// A snapping grid with a zero or negative component.
    #[error("invalid grid {0}: all components must be positive")]
    InvalidGrid(Coordinate),
    /// A ROI shape with a negative component.
    #[error("negative ROI shape {shape} (offset {offset})")]
    NegativeShape {
        /// The offset of the rejected ROI.
        offset: Coordinate,
        /// The rejected shape.
        shape: Coordinate,
    },
    /// Growing (or shrinking) a ROI would make its shape negative.
    #[error("cannot grow ROI {roi} by -{neg} / +{pos}: the resulting shape would be negative")]
    NegativeGrow {
        /// The ROI that was grown, formatted for display.
        roi: String,
        /// The amount added before the offset.
        neg: Coordinate,
        /// The amount added after the end.
        pos: Coordinate,
    },
    /// A coordinate that must be non-negative (e.g. an array shape) has a negative component.
    #[error("negative component in {0}: all components must be >= 0")]
    NegativeComponent(Coordinate),
    /// A slice specification such as `"[0:10, 0:20]"` could not be parsed.
    #[error("invalid slice specification {input:?}: {reason}")]
    Parse {
        /// The whole input string.
        input: String,
        /// What was wrong, naming the bad part.
        reason: String,
    },
}
