//! Regions of interest: half-open integer boxes in world units ([`Roi`]) and voxel units
//! ([`VoxelRoi`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Coordinate, GeometryError, VoxelCoordinate};

/// How [`Roi::snap_to_grid`] moves the bounds of a ROI onto grid multiples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapMode {
    /// Round the begin down and the end up, so the result contains the original ROI.
    #[default]
    Grow,
    /// Round the begin up and the end down, so the result is contained in the original
    /// ROI; an axis whose snapped end falls before its snapped begin gets size 0 at the
    /// snapped begin.
    Shrink,
    /// Round begin and end each to the nearest multiple; exact ties (half-way) round up,
    /// towards positive infinity (so `-6` on grid `4` snaps to `-4`, `6` to `8`).
    Closest,
}

/// A region of interest: the half-open box `[offset, offset + shape)` in world units (nm).
///
/// Invariants (enforced by every constructor): `offset` and `shape` have the same number of
/// dimensions, every shape component is `>= 0`, and `offset + shape` does not overflow.
/// A ROI with a zero shape component is *empty*. Equality compares offset and shape, so
/// two empty ROIs at different offsets are not equal.
///
/// Serialized as the 2-element sequence `[offset, shape]`, e.g. `[[0, 0, 0], [100, 200, 200]]`,
/// which is how DaCapo files encode a ROI.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    try_from = "(Coordinate, Coordinate)",
    into = "(Coordinate, Coordinate)"
)]
pub struct Roi {
    offset: Coordinate,
    shape: Coordinate,
}

/// Converts an `i128` intermediate back to `i64`, naming the operation on overflow.
fn to_i64(value: i128, what: impl FnOnce() -> String) -> Result<i64, GeometryError> {
    i64::try_from(value).map_err(|_| GeometryError::Overflow(what()))
}

fn or_panic<T>(result: Result<T, GeometryError>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{err}"),
    }
}

impl Roi {
    /// Builds the ROI `[offset, offset + shape)`; errors on a dimension mismatch, a negative
    /// shape component, or if the end overflows.
    pub fn new(offset: Coordinate, shape: Coordinate) -> Result<Self, GeometryError> {
        offset.checked_add(&shape)?;
        if !shape.is_non_negative() {
            return Err(GeometryError::NegativeShape { offset, shape });
        }
        Ok(Self { offset, shape })
    }

    /// Builds the ROI `[begin, end)`; errors on a dimension mismatch or if `end < begin` on
    /// some axis.
    pub fn from_bounds(begin: Coordinate, end: Coordinate) -> Result<Self, GeometryError> {
        Self::new(begin, end.checked_sub(&begin)?)
    }

    /// The offset (first corner, inclusive).
    pub fn offset(&self) -> Coordinate {
        self.offset
    }

    /// The shape (extent per axis, every component `>= 0`).
    pub fn shape(&self) -> Coordinate {
        self.shape
    }

    /// The inclusive lower corner; the same as [`offset`](Self::offset).
    pub fn begin(&self) -> Coordinate {
        self.offset
    }

    /// The exclusive upper corner `offset + shape`.
    pub fn end(&self) -> Coordinate {
        // Cannot fail: the constructors check that the end is representable.
        or_panic(self.offset.checked_add(&self.shape))
    }

    /// The number of dimensions.
    pub fn dims(&self) -> usize {
        self.offset.dims()
    }

    /// The volume (product of the shape), in cubic world units; saturates at `u128::MAX`.
    pub fn size(&self) -> u128 {
        self.shape
            .iter()
            .fold(1u128, |acc, v| acc.saturating_mul(v.unsigned_abs().into()))
    }

    /// Whether the ROI contains no point (some shape component is zero).
    pub fn is_empty(&self) -> bool {
        self.shape.iter().any(|v| v == 0)
    }

    /// The centre `offset + shape / 2`, rounded down (floor) per axis.
    pub fn center(&self) -> Coordinate {
        or_panic(self.offset.checked_add(&(self.shape / 2)))
    }

    /// Whether `point` lies inside the half-open box (`begin <= point < end` on every
    /// axis); `false` on a dimension mismatch.
    pub fn contains_point(&self, point: &Coordinate) -> bool {
        let end = self.end();
        point.dims() == self.dims()
            && (0..self.dims()).all(|i| self.offset[i] <= point[i] && point[i] < end[i])
    }

    /// Whether every point of `other` lies in `self` (set inclusion).
    ///
    /// Choice: an **empty** `other` is contained in every ROI of the same dimensionality
    /// (including empty ones), whatever its offset, as the empty set is a subset of every
    /// set. Returns `false` on a dimension mismatch.
    pub fn contains_roi(&self, other: &Roi) -> bool {
        if other.dims() != self.dims() {
            return false;
        }
        if other.is_empty() {
            return true;
        }
        let (end, other_end) = (self.end(), other.end());
        (0..self.dims()).all(|i| self.offset[i] <= other.offset[i] && other_end[i] <= end[i])
    }

    /// Whether the two ROIs share at least one point; touching ROIs (one's end equals the
    /// other's begin) do not intersect. `false` on a dimension mismatch.
    pub fn intersects(&self, other: &Roi) -> bool {
        if other.dims() != self.dims() {
            return false;
        }
        let (end, other_end) = (self.end(), other.end());
        (0..self.dims()).all(|i| self.offset[i].max(other.offset[i]) < end[i].min(other_end[i]))
    }

    /// The intersection; see [`intersect`](Self::intersect). Errors on a dimension mismatch.
    pub fn checked_intersect(&self, other: &Roi) -> Result<Roi, GeometryError> {
        let begin = self.offset.checked_max(&other.offset)?;
        let end = self.end().min(&other.end());
        if (0..self.dims()).any(|i| end[i] <= begin[i]) {
            return Ok(Roi {
                offset: begin,
                shape: Coordinate::zeros(self.dims()),
            });
        }
        Roi::from_bounds(begin, end)
    }

    /// The intersection of both ROIs (commutative).
    ///
    /// When they share no point (disjoint or only touching), the result is the canonical
    /// empty ROI with offset = element-wise maximum of both begins and an all-zero shape.
    ///
    /// # Panics
    /// Panics on a dimension mismatch; see [`checked_intersect`](Self::checked_intersect).
    pub fn intersect(&self, other: &Roi) -> Roi {
        or_panic(self.checked_intersect(other))
    }

    /// The union bounding box; see [`union`](Self::union). Errors on a dimension mismatch.
    pub fn checked_union(&self, other: &Roi) -> Result<Roi, GeometryError> {
        self.offset.checked_max(&other.offset)?;
        match (self.is_empty(), other.is_empty()) {
            (true, false) => Ok(*other),
            (false, true) => Ok(*self),
            _ => Roi::from_bounds(self.offset.min(&other.offset), self.end().max(&other.end())),
        }
    }

    /// The smallest ROI containing both (bounding box). An empty operand is ignored (the
    /// other one is returned); for two empty ROIs, the bounding box of their bounds.
    ///
    /// # Panics
    /// Panics on a dimension mismatch; see [`checked_union`](Self::checked_union).
    pub fn union(&self, other: &Roi) -> Roi {
        or_panic(self.checked_union(other))
    }

    /// Grows the ROI by `neg` before the begin and `pos` after the end (negative values
    /// shrink): `offset -= neg`, `shape += neg + pos`.
    ///
    /// Errors on a dimension mismatch, overflow, or if the resulting shape is negative.
    pub fn grow(&self, neg: &Coordinate, pos: &Coordinate) -> Result<Roi, GeometryError> {
        let offset = self.offset.checked_sub(neg)?;
        let shape = self.shape.checked_add(neg)?.checked_add(pos)?;
        if !shape.is_non_negative() {
            return Err(GeometryError::NegativeGrow {
                roi: self.to_string(),
                neg: *neg,
                pos: *pos,
            });
        }
        Roi::new(offset, shape)
    }

    /// The ROI moved by `delta`; errors on a dimension mismatch or overflow.
    pub fn checked_shift(&self, delta: &Coordinate) -> Result<Roi, GeometryError> {
        Roi::new(self.offset.checked_add(delta)?, self.shape)
    }

    /// The ROI moved by `delta` (same shape).
    ///
    /// # Panics
    /// Panics on a dimension mismatch or overflow; see
    /// [`checked_shift`](Self::checked_shift).
    pub fn shift(&self, delta: &Coordinate) -> Roi {
        or_panic(self.checked_shift(delta))
    }

    /// Moves begin and end onto multiples of `grid` according to `mode` (see [`SnapMode`];
    /// e.g. `[5, 15)` on grid 4 gives `[4, 16)` for `Grow`, `[8, 12)` for `Shrink` and
    /// `[4, 16)` for `Closest`). Note that `Grow` turns an empty ROI off the grid into a
    /// non-empty one.
    ///
    /// Errors on a dimension mismatch, a non-positive grid component, or overflow.
    pub fn snap_to_grid(&self, grid: &Coordinate, mode: SnapMode) -> Result<Roi, GeometryError> {
        if grid.dims() != self.dims() {
            return Err(GeometryError::DimensionMismatch {
                lhs: self.offset,
                rhs: *grid,
            });
        }
        if !grid.is_positive() {
            return Err(GeometryError::InvalidGrid(*grid));
        }
        let end = self.end();
        let overflow = || format!("snapping {self} to grid {grid}");
        let mut begins = Vec::with_capacity(self.dims());
        let mut ends = Vec::with_capacity(self.dims());
        for i in 0..self.dims() {
            let (b, e, g) = (
                i128::from(self.offset[i]),
                i128::from(end[i]),
                i128::from(grid[i]),
            );
            // `g > 0`, so euclidean division is floor division.
            let floor = |x: i128| x.div_euclid(g) * g;
            let ceil = |x: i128| -((-x).div_euclid(g) * g);
            let nearest = |x: i128| (2 * x + g).div_euclid(2 * g) * g;
            let (nb, ne) = match mode {
                SnapMode::Grow => (floor(b), ceil(e)),
                SnapMode::Shrink => {
                    let nb = ceil(b);
                    (nb, floor(e).max(nb))
                }
                SnapMode::Closest => (nearest(b), nearest(e)),
            };
            begins.push(to_i64(nb, overflow)?);
            ends.push(to_i64(ne, overflow)?);
        }
        Roi::from_bounds(Coordinate::new(&begins)?, Coordinate::new(&ends)?)
    }

    /// Whether both offset and shape are multiples of `grid` (e.g. of a voxel size);
    /// `false` on a dimension mismatch.
    pub fn is_multiple_of(&self, grid: &Coordinate) -> bool {
        self.offset.is_multiple_of(grid) && self.shape.is_multiple_of(grid)
    }

    /// Converts to voxel units by dividing offset and shape by `voxel_size`.
    ///
    /// Errors on a dimension mismatch, a non-positive voxel size, or if the ROI is not a
    /// multiple of `voxel_size` (snap it first with [`snap_to_grid`](Self::snap_to_grid)).
    pub fn to_voxels(&self, voxel_size: &Coordinate) -> Result<VoxelRoi, GeometryError> {
        if voxel_size.dims() != self.dims() {
            return Err(GeometryError::DimensionMismatch {
                lhs: self.offset,
                rhs: *voxel_size,
            });
        }
        if !voxel_size.is_positive() {
            return Err(GeometryError::InvalidVoxelSize(*voxel_size));
        }
        if !self.is_multiple_of(voxel_size) {
            return Err(GeometryError::NotAMultiple {
                value: format!("ROI {self}"),
                divisor: *voxel_size,
            });
        }
        Ok(VoxelRoi(Roi::new(
            self.offset.checked_div(voxel_size)?,
            self.shape.checked_div(voxel_size)?,
        )?))
    }

    /// Parses the command-line form `"[z0:z1, y0:y1, x0:x1]"` (begin:end per axis, 1 to 4
    /// axes). Whitespace is tolerated and the brackets are optional.
    ///
    /// Errors name the bad part: a missing `:`, a non-integer bound, `end < begin`,
    /// unbalanced brackets or a wrong number of axes.
    pub fn parse_slices(s: &str) -> Result<Roi, GeometryError> {
        let err = |reason: String| GeometryError::Parse {
            input: s.to_string(),
            reason,
        };
        let trimmed = s.trim();
        let inner = match (trimmed.strip_prefix('['), trimmed.strip_suffix(']')) {
            (Some(rest), Some(_)) => rest.strip_suffix(']').unwrap_or(rest),
            (None, None) => trimmed,
            _ => return Err(err("unbalanced brackets".to_string())),
        };
        if inner.trim().is_empty() {
            return Err(err("no slices given".to_string()));
        }
        let mut begins = Vec::new();
        let mut ends = Vec::new();
        for (axis, part) in inner.split(',').enumerate() {
            let part = part.trim();
            let Some((b, e)) = part.split_once(':') else {
                return Err(err(format!(
                    "axis {axis}: {part:?} is not of the form begin:end"
                )));
            };
            if e.contains(':') {
                return Err(err(format!(
                    "axis {axis}: {part:?} has a step, which is not supported"
                )));
            }
            let parse = |text: &str, what: &str| {
                text.trim().parse::<i64>().map_err(|e| {
                    err(format!(
                        "axis {axis}: invalid {what} {:?} in {part:?}: {e}",
                        text.trim()
                    ))
                })
            };
            let (b, e) = (parse(b, "begin")?, parse(e, "end")?);
            if e < b {
                return Err(err(format!(
                    "axis {axis}: end {e} is before begin {b} in {part:?}"
                )));
            }
            begins.push(b);
            ends.push(e);
        }
        if begins.len() > Coordinate::MAX_DIMS {
            return Err(err(format!(
                "{} axes given, at most {} are supported",
                begins.len(),
                Coordinate::MAX_DIMS
            )));
        }
        let begin = Coordinate::new(&begins).map_err(|e| err(e.to_string()))?;
        let end = Coordinate::new(&ends).map_err(|e| err(e.to_string()))?;
        Roi::from_bounds(begin, end).map_err(|e| err(e.to_string()))
    }
}

impl fmt::Display for Roi {
    /// Formats as `[0:100, 0:200, 0:200] (100, 200, 200)`: begin:end per axis, then shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.end();
        write!(f, "[")?;
        for i in 0..self.dims() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}:{}", self.offset[i], end[i])?;
        }
        write!(f, "] {}", self.shape)
    }
}

impl fmt::Debug for Roi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Roi{self}")
    }
}

impl FromStr for Roi {
    type Err = GeometryError;

    /// Parses the slice form via [`Roi::parse_slices`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Roi::parse_slices(s)
    }
}

impl TryFrom<(Coordinate, Coordinate)> for Roi {
    type Error = GeometryError;

    /// Builds a ROI from `(offset, shape)`.
    fn try_from((offset, shape): (Coordinate, Coordinate)) -> Result<Self, Self::Error> {
        Roi::new(offset, shape)
    }
}

impl From<Roi> for (Coordinate, Coordinate) {
    /// Splits a ROI into `(offset, shape)`.
    fn from(roi: Roi) -> Self {
        (roi.offset, roi.shape)
    }
}

/// A region of interest in voxel units (voxel indices), kept apart from world-unit
/// [`Roi`]s by the type system.
///
/// Obtain one with [`Roi::to_voxels`] or [`VoxelRoi::new`]; convert back with
/// [`VoxelRoi::to_world`]. Serialized like a [`Roi`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VoxelRoi(Roi);

impl VoxelRoi {
    /// Wraps a ROI whose offset and shape are in voxels.
    pub fn new(voxels: Roi) -> Self {
        Self(voxels)
    }

    /// Builds a voxel ROI from a voxel offset and a voxel shape; errors like [`Roi::new`].
    pub fn from_parts(
        offset: VoxelCoordinate,
        shape: VoxelCoordinate,
    ) -> Result<Self, GeometryError> {
        Ok(Self(Roi::new(offset.into_inner(), shape.into_inner())?))
    }

    /// The underlying box (in voxel units), for set operations such as intersection.
    pub fn roi(&self) -> &Roi {
        &self.0
    }

    /// Unwraps into the underlying box (in voxel units).
    pub fn into_inner(self) -> Roi {
        self.0
    }

    /// The first voxel index (inclusive).
    pub fn offset(&self) -> VoxelCoordinate {
        VoxelCoordinate::new(self.0.offset)
    }

    /// The number of voxels per axis.
    pub fn shape(&self) -> VoxelCoordinate {
        VoxelCoordinate::new(self.0.shape)
    }

    /// The first voxel index (inclusive); the same as [`offset`](Self::offset).
    pub fn begin(&self) -> VoxelCoordinate {
        self.offset()
    }

    /// One past the last voxel index per axis (exclusive).
    pub fn end(&self) -> VoxelCoordinate {
        VoxelCoordinate::new(self.0.end())
    }

    /// The number of dimensions.
    pub fn dims(&self) -> usize {
        self.0.dims()
    }

    /// The number of voxels (saturating at `u128::MAX`).
    pub fn size(&self) -> u128 {
        self.0.size()
    }

    /// Whether the ROI contains no voxel.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Converts to world units by multiplying offset and shape with `voxel_size`.
    ///
    /// Errors on a dimension mismatch, a non-positive voxel size, or overflow.
    pub fn to_world(&self, voxel_size: &Coordinate) -> Result<Roi, GeometryError> {
        if voxel_size.dims() != self.dims() {
            return Err(GeometryError::DimensionMismatch {
                lhs: self.0.offset,
                rhs: *voxel_size,
            });
        }
        if !voxel_size.is_positive() {
            return Err(GeometryError::InvalidVoxelSize(*voxel_size));
        }
        Roi::new(
            self.0.offset.checked_mul(voxel_size)?,
            self.0.shape.checked_mul(voxel_size)?,
        )
    }
}

impl fmt::Display for VoxelRoi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for VoxelRoi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VoxelRoi{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c<const N: usize>(values: [i64; N]) -> Coordinate {
        Coordinate::new(&values).unwrap()
    }

    fn roi<const N: usize>(offset: [i64; N], shape: [i64; N]) -> Roi {
        Roi::new(c(offset), c(shape)).unwrap()
    }

    #[test]
    fn construction_and_accessors() {
        let r = roi([0, 10, -20], [100, 200, 40]);
        assert_eq!(r.offset(), c([0, 10, -20]));
        assert_eq!(r.begin(), c([0, 10, -20]));
        assert_eq!(r.shape(), c([100, 200, 40]));
        assert_eq!(r.end(), c([100, 210, 20]));
        assert_eq!(r.dims(), 3);
        assert_eq!(r.size(), 800_000);
        assert!(!r.is_empty());
        assert_eq!(r.center(), c([50, 110, 0]));
        assert_eq!(roi([-5], [5]).center(), c([-3]));
        assert_eq!(roi([0, 0], [5, 3]).center(), c([2, 1]));

        assert!(roi([0, 0], [0, 10]).is_empty());
        assert_eq!(roi([0, 0], [0, 10]).size(), 0);
        assert_eq!(
            roi([0, 0, 0, 0], [i64::MAX, i64::MAX, 2, 1]).size(),
            (i64::MAX as u128) * (i64::MAX as u128) * 2
        );

        let err = Roi::new(c([0, 0]), c([10, -1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "negative ROI shape (10, -1) (offset (0, 0))"
        );
        assert!(matches!(
            Roi::new(c([0, 0]), c([1, 1, 1])),
            Err(GeometryError::DimensionMismatch { .. })
        ));
        assert!(matches!(
            Roi::new(c([i64::MAX]), c([1])),
            Err(GeometryError::Overflow(_))
        ));

        assert_eq!(
            Roi::from_bounds(c([2, 3]), c([5, 9])).unwrap(),
            roi([2, 3], [3, 6])
        );
        assert!(Roi::from_bounds(c([2, 3]), c([1, 9])).is_err());
    }

    #[test]
    fn contains_point_is_half_open() {
        let r = roi([0, 10], [10, 10]);
        assert!(r.contains_point(&c([0, 10])));
        assert!(r.contains_point(&c([9, 19])));
        assert!(!r.contains_point(&c([10, 15])));
        assert!(!r.contains_point(&c([5, 20])));
        assert!(!r.contains_point(&c([-1, 15])));
        assert!(!r.contains_point(&c([5, 15, 0])));
        assert!(!roi([0], [0]).contains_point(&c([0])));
    }

    #[test]
    fn contains_roi_uses_set_inclusion() {
        let r = roi([0, 0], [10, 10]);
        assert!(r.contains_roi(&r));
        assert!(r.contains_roi(&roi([2, 3], [8, 7])));
        assert!(!r.contains_roi(&roi([2, 3], [9, 7])));
        assert!(!r.contains_roi(&roi([-1, 0], [5, 5])));
        assert!(!roi([2, 2], [4, 4]).contains_roi(&r));
        // Documented choice: an empty ROI is contained everywhere (same dims).
        assert!(r.contains_roi(&roi([100, 100], [0, 5])));
        assert!(roi([0, 0], [0, 0]).contains_roi(&roi([7, 7], [0, 0])));
        assert!(!roi([0, 0], [0, 0]).contains_roi(&roi([0, 0], [1, 1])));
        // Dimension mismatch.
        assert!(!r.contains_roi(&roi([0], [1])));
        assert!(!r.contains_roi(&roi([0], [0])));
    }

    #[test]
    fn intersect_overlapping_disjoint_touching() {
        let a = roi([0, 0], [10, 10]);
        let b = roi([5, -5], [10, 10]);
        assert!(a.intersects(&b));
        assert_eq!(a.intersect(&b), roi([5, 0], [5, 5]));
        assert_eq!(b.intersect(&a), roi([5, 0], [5, 5]));

        // Nested.
        let inner = roi([2, 2], [3, 3]);
        assert_eq!(a.intersect(&inner), inner);

        // Disjoint: canonical empty ROI at the max of the begins.
        let far = roi([20, 30], [5, 5]);
        assert!(!a.intersects(&far));
        let empty = a.intersect(&far);
        assert_eq!(empty, roi([20, 30], [0, 0]));
        assert!(empty.is_empty());
        assert_eq!(far.intersect(&a), empty);

        // Disjoint on one axis only.
        let side = roi([3, 12], [4, 4]);
        assert!(!a.intersects(&side));
        assert_eq!(a.intersect(&side), roi([3, 12], [0, 0]));

        // Touching: [0, 10) and [10, 20) share no point.
        let touching = roi([10, 0], [10, 10]);
        assert!(!a.intersects(&touching));
        assert_eq!(a.intersect(&touching), roi([10, 0], [0, 0]));

        // Empty operand.
        assert!(!a.intersects(&roi([1, 1], [0, 3])));
        assert!(a.intersect(&roi([1, 1], [0, 3])).is_empty());

        assert!(!a.intersects(&roi([0], [5])));
        assert!(matches!(
            a.checked_intersect(&roi([0], [5])),
            Err(GeometryError::DimensionMismatch { .. })
        ));
    }

    #[test]
    #[should_panic(expected = "dimension mismatch")]
    fn intersect_panics_on_dimension_mismatch() {
        let _ = roi([0, 0], [1, 1]).intersect(&roi([0], [1]));
    }

    #[test]
    fn union_is_bounding_box() {
        let a = roi([0, 0], [10, 10]);
        let b = roi([20, -5], [5, 5]);
        assert_eq!(a.union(&b), roi([0, -5], [25, 15]));
        assert_eq!(b.union(&a), roi([0, -5], [25, 15]));
        assert_eq!(a.union(&roi([100, 100], [0, 0])), a);
        assert_eq!(roi([100, 100], [0, 0]).union(&a), a);
        assert_eq!(
            roi([0, 0], [0, 0]).union(&roi([5, 5], [0, 1])),
            roi([0, 0], [5, 6])
        );
        assert!(a.checked_union(&roi([0], [1])).is_err());
    }

    #[test]
    fn grow_and_shrink() {
        let r = roi([10, 20], [100, 200]);
        assert_eq!(
            r.grow(&c([5, 0]), &c([0, 7])).unwrap(),
            roi([5, 20], [105, 207])
        );
        assert_eq!(
            r.grow(&c([-10, -20]), &c([-10, 0])).unwrap(),
            roi([20, 40], [80, 180])
        );
        assert_eq!(
            r.grow(&c([-50, 0]), &c([-50, 0])).unwrap(),
            roi([60, 20], [0, 200])
        );
        let err = r.grow(&c([-60, 0]), &c([-50, 0])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot grow ROI [10:110, 20:220] (100, 200) by -(-60, 0) / +(-50, 0): \
             the resulting shape would be negative"
        );
        assert!(matches!(
            r.grow(&c([1]), &c([1, 1])),
            Err(GeometryError::DimensionMismatch { .. })
        ));
    }

    #[test]
    fn shift_moves_offset() {
        let r = roi([10, 20], [100, 200]);
        assert_eq!(r.shift(&c([-10, 5])), roi([0, 25], [100, 200]));
        assert!(r.checked_shift(&c([1])).is_err());
        assert!(matches!(
            r.checked_shift(&c([i64::MAX, 0])),
            Err(GeometryError::Overflow(_))
        ));
    }

    #[test]
    fn snap_to_grid_all_modes() {
        let r = roi([5], [10]); // [5, 15)
        let g = c([4]);
        assert_eq!(r.snap_to_grid(&g, SnapMode::Grow).unwrap(), roi([4], [12]));
        assert_eq!(r.snap_to_grid(&g, SnapMode::Shrink).unwrap(), roi([8], [4]));
        assert_eq!(
            r.snap_to_grid(&g, SnapMode::Closest).unwrap(),
            roi([4], [12])
        );
        assert_eq!(SnapMode::default(), SnapMode::Grow);

        // Negative coordinates, several axes.
        let r = roi([-7, 3, 0], [10, 2, 8]); // [-7, 3), [3, 5), [0, 8)
        let g = c([4, 4, 4]);
        assert_eq!(
            r.snap_to_grid(&g, SnapMode::Grow).unwrap(),
            Roi::from_bounds(c([-8, 0, 0]), c([4, 8, 8])).unwrap()
        );
        // Axis 1 collapses: ceil(3) = 4 > floor(5) = 4 -> size 0 at 4.
        assert_eq!(
            r.snap_to_grid(&g, SnapMode::Shrink).unwrap(),
            Roi::from_bounds(c([-4, 4, 0]), c([0, 4, 8])).unwrap()
        );
        // Closest: -7 -> -8, 3 -> 4, 5 -> 4, 0 -> 0, 8 -> 8.
        assert_eq!(
            r.snap_to_grid(&g, SnapMode::Closest).unwrap(),
            Roi::from_bounds(c([-8, 4, 0]), c([4, 4, 8])).unwrap()
        );

        // Shrink collapsing below the begin: [5, 7) on grid 4 -> ceil 8, floor 4 -> [8, 8).
        assert_eq!(
            roi([5], [2])
                .snap_to_grid(&c([4]), SnapMode::Shrink)
                .unwrap(),
            roi([8], [0])
        );

        // Ties round half up (towards +infinity): 6 -> 8, -6 -> -4, 2 -> 4, -2 -> 0.
        assert_eq!(
            Roi::from_bounds(c([-6]), c([6]))
                .unwrap()
                .snap_to_grid(&c([4]), SnapMode::Closest)
                .unwrap(),
            Roi::from_bounds(c([-4]), c([8])).unwrap()
        );
        assert_eq!(
            Roi::from_bounds(c([-2]), c([2]))
                .unwrap()
                .snap_to_grid(&c([4]), SnapMode::Closest)
                .unwrap(),
            Roi::from_bounds(c([0]), c([4])).unwrap()
        );

        // Already aligned ROIs are unchanged in all modes.
        let aligned = roi([-8, 16], [4, 32]);
        for mode in [SnapMode::Grow, SnapMode::Shrink, SnapMode::Closest] {
            assert_eq!(aligned.snap_to_grid(&c([4, 8]), mode).unwrap(), aligned);
        }

        assert!(matches!(
            r.snap_to_grid(&c([4, 0, 4]), SnapMode::Grow),
            Err(GeometryError::InvalidGrid(_))
        ));
        assert!(matches!(
            r.snap_to_grid(&c([4, -4, 4]), SnapMode::Grow),
            Err(GeometryError::InvalidGrid(_))
        ));
        assert!(matches!(
            r.snap_to_grid(&c([4]), SnapMode::Grow),
            Err(GeometryError::DimensionMismatch { .. })
        ));
        assert!(matches!(
            roi([0], [i64::MAX - 1]).snap_to_grid(&c([4]), SnapMode::Grow),
            Err(GeometryError::Overflow(_))
        ));
    }

    #[test]
    fn is_multiple_of_checks_offset_and_shape() {
        assert!(roi([8, -16], [40, 8]).is_multiple_of(&c([4, 8])));
        assert!(!roi([8, -16], [42, 8]).is_multiple_of(&c([4, 8])));
        assert!(!roi([9, -16], [40, 8]).is_multiple_of(&c([4, 8])));
        assert!(!roi([8, -16], [40, 8]).is_multiple_of(&c([4])));
    }

    #[test]
    fn voxel_conversions() {
        let voxel_size = c([40, 4, 4]);
        let world = roi([400, 8, -12], [800, 400, 40]);
        let voxels = world.to_voxels(&voxel_size).unwrap();
        assert_eq!(voxels.offset(), VoxelCoordinate::from([10, 2, -3]));
        assert_eq!(voxels.shape(), VoxelCoordinate::from([20, 100, 10]));
        assert_eq!(voxels.begin(), voxels.offset());
        assert_eq!(voxels.end(), VoxelCoordinate::from([30, 102, 7]));
        assert_eq!(voxels.size(), 20_000);
        assert_eq!(voxels.dims(), 3);
        assert!(!voxels.is_empty());
        assert_eq!(voxels.roi(), &roi([10, 2, -3], [20, 100, 10]));
        assert_eq!(voxels.to_world(&voxel_size).unwrap(), world);
        assert_eq!(voxels.into_inner(), roi([10, 2, -3], [20, 100, 10]));
        assert_eq!(
            VoxelRoi::from_parts(VoxelCoordinate::from([1]), VoxelCoordinate::from([2])).unwrap(),
            VoxelRoi::new(roi([1], [2]))
        );
        assert!(
            VoxelRoi::from_parts(VoxelCoordinate::from([1]), VoxelCoordinate::from([-2])).is_err()
        );

        let err = roi([0, 0, 0], [42, 4, 4])
            .to_voxels(&voxel_size)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ROI [0:42, 0:4, 0:4] (42, 4, 4) is not a multiple of (40, 4, 4)"
        );
        assert!(matches!(
            world.to_voxels(&c([40, 0, 4])),
            Err(GeometryError::InvalidVoxelSize(_))
        ));
        assert!(matches!(
            world.to_voxels(&c([4, 4])),
            Err(GeometryError::DimensionMismatch { .. })
        ));
        assert!(voxels.to_world(&c([1, 1])).is_err());
        assert!(voxels.to_world(&c([1, -1, 1])).is_err());
        assert_eq!(format!("{voxels}"), "[10:30, 2:102, -3:7] (20, 100, 10)");
        assert_eq!(
            format!("{voxels:?}"),
            "VoxelRoi[10:30, 2:102, -3:7] (20, 100, 10)"
        );
    }

    #[test]
    fn display_and_debug() {
        let r = roi([0, 0, 0], [100, 200, 200]);
        assert_eq!(r.to_string(), "[0:100, 0:200, 0:200] (100, 200, 200)");
        assert_eq!(format!("{r:?}"), "Roi[0:100, 0:200, 0:200] (100, 200, 200)");
        assert_eq!(roi([-5], [3]).to_string(), "[-5:-2] (3)");
    }

    #[test]
    fn parse_slices_good() {
        assert_eq!(
            Roi::parse_slices("[0:100,0:200,0:200]").unwrap(),
            roi([0, 0, 0], [100, 200, 200])
        );
        assert_eq!(
            Roi::parse_slices("  [ 10 : 20 , -5:5 ]  ").unwrap(),
            roi([10, -5], [10, 10])
        );
        assert_eq!(Roi::parse_slices("1:2,3:4").unwrap(), roi([1, 3], [1, 1]));
        assert_eq!(Roi::parse_slices("[7:7]").unwrap(), roi([7], [0]));
        assert_eq!(Roi::parse_slices("0:1,0:1,0:1,0:1").unwrap().dims(), 4);
        assert_eq!("[0:4, 8:16]".parse::<Roi>().unwrap(), roi([0, 8], [4, 8]));
    }

    #[test]
    fn parse_slices_bad() {
        let reason = |s: &str| match Roi::parse_slices(s) {
            Err(GeometryError::Parse { input, reason }) => {
                assert_eq!(input, s);
                reason
            }
            other => panic!("expected a parse error for {s:?}, got {other:?}"),
        };
        assert!(reason("[0:10, 5, 0:10]").contains("\"5\" is not of the form begin:end"));
        assert!(reason("[0:10, a:10]").contains("invalid begin \"a\""));
        assert!(reason("[0:10, 0:1x]").contains("invalid end \"1x\""));
        assert!(reason("[0:10, 10:5]").contains("end 5 is before begin 10"));
        assert!(reason("[0:10:2]").contains("step"));
        assert!(reason("[0:10").contains("unbalanced brackets"));
        assert!(reason("0:10]").contains("unbalanced brackets"));
        assert!(reason("[]").contains("no slices"));
        assert!(reason("   ").contains("no slices"));
        assert!(reason("0:1,").contains("\"\" is not of the form"));
        assert!(reason("0:1,0:1,0:1,0:1,0:1").contains("5 axes"));
        let msg = Roi::parse_slices("[0:10, a:10]").unwrap_err().to_string();
        assert!(msg.starts_with("invalid slice specification \"[0:10, a:10]\": axis 1"));
    }

    #[test]
    fn serde_round_trip() {
        let r = roi([0, 8, -4], [100, 200, 40]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "[[0,8,-4],[100,200,40]]");
        assert_eq!(serde_json::from_str::<Roi>(&json).unwrap(), r);

        let yaml: Roi = serde_yaml_ng::from_str("- [0, 0]\n- [10, 20]\n").unwrap();
        assert_eq!(yaml, roi([0, 0], [10, 20]));

        let err = serde_json::from_str::<Roi>("[[0,0],[10,-1]]").unwrap_err();
        assert!(err.to_string().contains("negative ROI shape"));
        assert!(serde_json::from_str::<Roi>("[[0,0],[10,1,1]]").is_err());
        assert!(serde_json::from_str::<Roi>("[[0,0]]").is_err());
        assert!(serde_json::from_str::<Roi>("[[0,0],[1,1],[2,2]]").is_err());

        let v = VoxelRoi::new(roi([1], [2]));
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, "[[1],[2]]");
        assert_eq!(serde_json::from_str::<VoxelRoi>(&json).unwrap(), v);

        assert_eq!(
            serde_json::to_string(&SnapMode::Shrink).unwrap(),
            "\"shrink\""
        );
        assert_eq!(
            serde_json::from_str::<SnapMode>("\"closest\"").unwrap(),
            SnapMode::Closest
        );
    }

    /// A strategy for a pair of ROIs with the same (random) dimensionality.
    fn roi_pair() -> impl Strategy<Value = (Roi, Roi)> {
        (1usize..=4).prop_flat_map(|dims| (roi_of(dims), roi_of(dims)))
    }

    fn roi_of(dims: usize) -> impl Strategy<Value = Roi> {
        (
            proptest::collection::vec(-1000i64..1000, dims),
            proptest::collection::vec(0i64..500, dims),
        )
            .prop_map(|(o, s)| {
                Roi::new(Coordinate::new(&o).unwrap(), Coordinate::new(&s).unwrap()).unwrap()
            })
    }

    fn any_roi() -> impl Strategy<Value = Roi> {
        (1usize..=4).prop_flat_map(roi_of)
    }

    fn coord_of(dims: usize, range: std::ops::Range<i64>) -> impl Strategy<Value = Coordinate> {
        proptest::collection::vec(range, dims).prop_map(|v| Coordinate::new(&v).unwrap())
    }

    fn roi_and_coord(range: std::ops::Range<i64>) -> impl Strategy<Value = (Roi, Coordinate)> {
        (1usize..=4).prop_flat_map(move |dims| (roi_of(dims), coord_of(dims, range.clone())))
    }

    proptest! {
        #[test]
        fn intersect_is_commutative_and_contained((a, b) in roi_pair()) {
            let i = a.intersect(&b);
            prop_assert_eq!(i, b.intersect(&a));
            prop_assert!(a.contains_roi(&i));
            prop_assert!(b.contains_roi(&i));
            prop_assert_eq!(a.intersects(&b), !i.is_empty());
            // Every point of the intersection lies in both.
            if !i.is_empty() {
                prop_assert!(a.contains_point(&i.begin()) && b.contains_point(&i.begin()));
                let last = i.end() - 1;
                prop_assert!(a.contains_point(&last) && b.contains_point(&last));
            }
        }

        #[test]
        fn union_contains_both((a, b) in roi_pair()) {
            let u = a.union(&b);
            prop_assert!(u.contains_roi(&a));
            prop_assert!(u.contains_roi(&b));
            prop_assert!(u.contains_roi(&a.intersect(&b)));
        }

        #[test]
        fn grow_then_shrink_restores(
            (r, neg, pos) in (1usize..=4).prop_flat_map(|d| (roi_of(d), coord_of(d, 0..100), coord_of(d, 0..100)))
        ) {
            let grown = r.grow(&neg, &pos).unwrap();
            prop_assert!(grown.contains_roi(&r));
            prop_assert_eq!(grown.grow(&-neg, &-pos).unwrap(), r);
        }

        #[test]
        fn snap_grow_contains_and_is_aligned((r, grid) in roi_and_coord(1..64)) {
            let s = r.snap_to_grid(&grid, SnapMode::Grow).unwrap();
            prop_assert!(s.contains_roi(&r));
            prop_assert!(s.is_multiple_of(&grid));
            // Bounds move by less than one grid step.
            prop_assert!((r.begin() - s.begin()).iter().zip(grid.iter()).all(|(d, g)| (0..g).contains(&d)));
            prop_assert!((s.end() - r.end()).iter().zip(grid.iter()).all(|(d, g)| (0..g).contains(&d)));
        }

        #[test]
        fn snap_shrink_is_contained_and_aligned((r, grid) in roi_and_coord(1..64)) {
            let s = r.snap_to_grid(&grid, SnapMode::Shrink).unwrap();
            prop_assert!(r.contains_roi(&s));
            prop_assert!(s.is_multiple_of(&grid));
        }

        #[test]
        fn snap_closest_is_aligned_and_near((r, grid) in roi_and_coord(1..64)) {
            let s = r.snap_to_grid(&grid, SnapMode::Closest).unwrap();
            prop_assert!(s.is_multiple_of(&grid));
            for i in 0..r.dims() {
                prop_assert!(2 * (s.begin()[i] - r.begin()[i]).abs() <= grid[i]);
                prop_assert!(2 * (s.end()[i] - r.end()[i]).abs() <= grid[i]);
            }
        }

        #[test]
        fn shift_preserves_shape((r, delta) in roi_and_coord(-1000..1000)) {
            let s = r.shift(&delta);
            prop_assert_eq!(s.shape(), r.shape());
            prop_assert_eq!(s.offset(), r.offset() + delta);
            prop_assert_eq!(s.shift(&-delta), r);
        }

        #[test]
        fn serde_and_slices_round_trip(r in any_roi()) {
            let json = serde_json::to_string(&r).unwrap();
            prop_assert_eq!(serde_json::from_str::<Roi>(&json).unwrap(), r);
            let text = r.to_string();
            let slices = &text[..=text.find(']').unwrap()];
            prop_assert_eq!(Roi::parse_slices(slices).unwrap(), r);
        }

        #[test]
        fn voxel_round_trip((r, voxel_size) in roi_and_coord(1..16)) {
            let world = VoxelRoi::new(r).to_world(&voxel_size).unwrap();
            prop_assert!(world.is_multiple_of(&voxel_size));
            prop_assert_eq!(world.to_voxels(&voxel_size).unwrap(), VoxelRoi::new(r));
        }
    }
}
