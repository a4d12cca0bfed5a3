//! Integer coordinate vectors in world units ([`Coordinate`]) and voxel units
//! ([`VoxelCoordinate`]).

use std::fmt;
use std::ops::{Add, AddAssign, Div, DivAssign, Index, Mul, MulAssign, Neg, Sub, SubAssign};

use serde::{Deserialize, Serialize};

use super::GeometryError;

/// Floor division (rounds towards negative infinity, like Python's `//`).
///
/// Returns `None` for a zero divisor or on overflow (`i64::MIN / -1`).
pub(crate) fn floor_div(a: i64, b: i64) -> Option<i64> {
    let q = a.checked_div(b)?;
    // `checked_div` succeeded, so `a % b` cannot overflow or divide by zero.
    let r = a % b;
    if r != 0 && ((r < 0) != (b < 0)) {
        Some(q - 1)
    } else {
        Some(q)
    }
}

/// Whether `a` is an integer multiple of `b` (`a == k * b` for some integer `k`).
///
/// Only `0` is a multiple of `0`.
pub(crate) fn is_multiple(a: i64, b: i64) -> bool {
    if b == 0 {
        a == 0
    } else {
        // `checked_rem` only fails for `i64::MIN % -1`, whose remainder is 0.
        a.checked_rem(b).is_none_or(|r| r == 0)
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Unwraps the result of a fallible geometry operation inside a panicking operator.
fn or_panic<T>(result: Result<T, GeometryError>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{err}"),
    }
}

/// An integer vector of 1 to 4 components in world units (nanometres), axes in C order
/// (`z, y, x`).
///
/// It is `Copy`; arithmetic is element-wise and `/` is floor division. Operators panic on
/// a dimension mismatch, a zero divisor or an overflow; use the `checked_*` methods for a
/// [`GeometryError`] instead. Serialized as a sequence of integers, e.g. `[40, 4, 4]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<i64>", into = "Vec<i64>")]
pub struct Coordinate {
    /// Components; entries at index `>= dims` are always zero so that derived `Eq`/`Hash`
    /// are correct.
    values: [i64; Coordinate::MAX_DIMS],
    dims: u8,
}

impl Coordinate {
    /// The largest supported number of dimensions.
    pub const MAX_DIMS: usize = 4;

    /// Builds a coordinate from its components; fails unless there are 1 to 4 of them.
    pub fn new(values: &[i64]) -> Result<Self, GeometryError> {
        if values.is_empty() || values.len() > Self::MAX_DIMS {
            return Err(GeometryError::InvalidDims {
                dims: values.len(),
                values: values.to_vec(),
            });
        }
        let mut out = [0; Self::MAX_DIMS];
        out[..values.len()].copy_from_slice(values);
        Ok(Self {
            values: out,
            dims: values.len() as u8,
        })
    }

    /// Builds a `dims`-dimensional coordinate whose components all equal `value`.
    ///
    /// # Panics
    /// Panics unless `1 <= dims <= 4`.
    pub fn splat(value: i64, dims: usize) -> Self {
        assert!(
            (1..=Self::MAX_DIMS).contains(&dims),
            "invalid number of dimensions {dims}: expected 1 to {}",
            Self::MAX_DIMS
        );
        let mut out = [0; Self::MAX_DIMS];
        out[..dims].fill(value);
        Self {
            values: out,
            dims: dims as u8,
        }
    }

    /// Builds the `dims`-dimensional zero coordinate.
    ///
    /// # Panics
    /// Panics unless `1 <= dims <= 4`.
    pub fn zeros(dims: usize) -> Self {
        Self::splat(0, dims)
    }

    /// Builds a coordinate of `dims` components from a per-axis function (internal helper).
    fn try_from_fn(dims: usize, mut f: impl FnMut(usize) -> Option<i64>) -> Option<Self> {
        let mut out = [0; Self::MAX_DIMS];
        for (i, slot) in out.iter_mut().enumerate().take(dims) {
            *slot = f(i)?;
        }
        Some(Self {
            values: out,
            dims: dims as u8,
        })
    }

    /// The number of dimensions (1 to 4).
    pub fn dims(&self) -> usize {
        self.dims as usize
    }

    /// The components as a slice of length [`dims`](Self::dims).
    pub fn as_slice(&self) -> &[i64] {
        &self.values[..self.dims as usize]
    }

    /// The components as a new `Vec`.
    pub fn to_vec(&self) -> Vec<i64> {
        self.as_slice().to_vec()
    }

    /// Iterates over the components by value.
    pub fn iter(&self) -> std::iter::Copied<std::slice::Iter<'_, i64>> {
        self.as_slice().iter().copied()
    }

    /// The component on axis `axis`, or `None` when out of range.
    pub fn get(&self, axis: usize) -> Option<i64> {
        self.as_slice().get(axis).copied()
    }

    /// The product of all components (e.g. the number of voxels of a shape), saturating at
    /// `i64::MIN`/`i64::MAX` on overflow.
    pub fn product(&self) -> i64 {
        self.iter().fold(1i64, |acc, v| acc.saturating_mul(v))
    }

    /// Whether every component is strictly positive (as required of voxel sizes and grids).
    pub fn is_positive(&self) -> bool {
        self.iter().all(|v| v > 0)
    }

    /// Whether every component is zero or positive (as required of shapes).
    pub fn is_non_negative(&self) -> bool {
        self.iter().all(|v| v >= 0)
    }

    /// Whether every component is an integer multiple of the matching component of
    /// `other` (negative values allowed; only 0 is a multiple of 0).
    ///
    /// Returns `false` on a dimension mismatch.
    pub fn is_multiple_of(&self, other: &Coordinate) -> bool {
        self.dims == other.dims
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| is_multiple(a, b))
    }

    fn check_dims(&self, other: &Coordinate) -> Result<(), GeometryError> {
        if self.dims == other.dims {
            Ok(())
        } else {
            Err(GeometryError::DimensionMismatch {
                lhs: *self,
                rhs: *other,
            })
        }
    }

    fn zip_checked(
        &self,
        other: &Coordinate,
        symbol: &str,
        f: impl Fn(i64, i64) -> Option<i64>,
    ) -> Result<Coordinate, GeometryError> {
        self.check_dims(other)?;
        Self::try_from_fn(self.dims(), |i| f(self.values[i], other.values[i]))
            .ok_or_else(|| GeometryError::Overflow(format!("{self} {symbol} {other}")))
    }

    fn map_checked(
        &self,
        scalar: i64,
        symbol: &str,
        f: impl Fn(i64, i64) -> Option<i64>,
    ) -> Result<Coordinate, GeometryError> {
        Self::try_from_fn(self.dims(), |i| f(self.values[i], scalar))
            .ok_or_else(|| GeometryError::Overflow(format!("{self} {symbol} {scalar}")))
    }

    /// Element-wise sum; errors on a dimension mismatch or overflow.
    pub fn checked_add(&self, other: &Coordinate) -> Result<Coordinate, GeometryError> {
        self.zip_checked(other, "+", i64::checked_add)
    }

    /// Element-wise difference; errors on a dimension mismatch or overflow.
    pub fn checked_sub(&self, other: &Coordinate) -> Result<Coordinate, GeometryError> {
        self.zip_checked(other, "-", i64::checked_sub)
    }

    /// Element-wise product; errors on a dimension mismatch or overflow.
    pub fn checked_mul(&self, other: &Coordinate) -> Result<Coordinate, GeometryError> {
        self.zip_checked(other, "*", i64::checked_mul)
    }

    /// Element-wise floor division; errors on a dimension mismatch, a zero component in
    /// `other`, or overflow.
    pub fn checked_div(&self, other: &Coordinate) -> Result<Coordinate, GeometryError> {
        self.check_dims(other)?;
        if other.iter().any(|v| v == 0) {
            return Err(GeometryError::DivisionByZero {
                lhs: *self,
                rhs: *other,
            });
        }
        self.zip_checked(other, "/", floor_div)
    }

    /// Element-wise least common multiple (always non-negative; `lcm(0, x) == 0`); errors
    /// on a dimension mismatch or overflow.
    pub fn checked_lcm(&self, other: &Coordinate) -> Result<Coordinate, GeometryError> {
        self.zip_checked(other, "lcm", |a, b| {
            let (a, b) = (u128::from(a.unsigned_abs()), u128::from(b.unsigned_abs()));
            if a == 0 || b == 0 {
                return Some(0);
            }
            i64::try_from(a / gcd(a, b) * b).ok()
        })
    }

    /// Element-wise least common multiple, e.g. of two voxel sizes.
    ///
    /// # Panics
    /// Panics on a dimension mismatch or overflow; see [`checked_lcm`](Self::checked_lcm).
    pub fn lcm(&self, other: &Coordinate) -> Coordinate {
        or_panic(self.checked_lcm(other))
    }

    /// Element-wise minimum; errors on a dimension mismatch.
    pub fn checked_min(&self, other: &Coordinate) -> Result<Coordinate, GeometryError> {
        self.zip_checked(other, "min", |a, b| Some(a.min(b)))
    }

    /// Element-wise maximum; errors on a dimension mismatch.
    pub fn checked_max(&self, other: &Coordinate) -> Result<Coordinate, GeometryError> {
        self.zip_checked(other, "max", |a, b| Some(a.max(b)))
    }

    /// Element-wise minimum.
    ///
    /// # Panics
    /// Panics on a dimension mismatch; see [`checked_min`](Self::checked_min).
    pub fn min(&self, other: &Coordinate) -> Coordinate {
        or_panic(self.checked_min(other))
    }

    /// Element-wise maximum.
    ///
    /// # Panics
    /// Panics on a dimension mismatch; see [`checked_max`](Self::checked_max).
    pub fn max(&self, other: &Coordinate) -> Coordinate {
        or_panic(self.checked_max(other))
    }

    /// Converts a world-unit coordinate to voxel units by dividing by `voxel_size`.
    ///
    /// Errors on a dimension mismatch, a non-positive voxel size, or when `self` is not an
    /// exact multiple of `voxel_size`.
    pub fn to_voxels(&self, voxel_size: &Coordinate) -> Result<VoxelCoordinate, GeometryError> {
        self.check_dims(voxel_size)?;
        if !voxel_size.is_positive() {
            return Err(GeometryError::InvalidVoxelSize(*voxel_size));
        }
        if !self.is_multiple_of(voxel_size) {
            return Err(GeometryError::NotAMultiple {
                value: self.to_string(),
                divisor: *voxel_size,
            });
        }
        Ok(VoxelCoordinate(self.checked_div(voxel_size)?))
    }
}

impl fmt::Display for Coordinate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(")?;
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v}")?;
        }
        write!(f, ")")
    }
}

impl fmt::Debug for Coordinate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Coordinate{self}")
    }
}

impl Index<usize> for Coordinate {
    type Output = i64;

    /// The component on axis `index`; panics when `index >= dims()`.
    fn index(&self, index: usize) -> &i64 {
        &self.as_slice()[index]
    }
}

macro_rules! impl_from_array {
    ($($n:literal),*) => {$(
        impl From<[i64; $n]> for Coordinate {
            /// Builds a coordinate from a fixed-size array.
            fn from(values: [i64; $n]) -> Self {
                let mut out = [0; Coordinate::MAX_DIMS];
                out[..$n].copy_from_slice(&values);
                Coordinate { values: out, dims: $n }
            }
        }

        impl From<[i64; $n]> for VoxelCoordinate {
            /// Builds a voxel coordinate from a fixed-size array.
            fn from(values: [i64; $n]) -> Self {
                VoxelCoordinate(Coordinate::from(values))
            }
        }
    )*};
}

impl_from_array!(1, 2, 3, 4);

impl TryFrom<Vec<i64>> for Coordinate {
    type Error = GeometryError;

    fn try_from(values: Vec<i64>) -> Result<Self, Self::Error> {
        Coordinate::new(&values)
    }
}

impl TryFrom<&[i64]> for Coordinate {
    type Error = GeometryError;

    fn try_from(values: &[i64]) -> Result<Self, Self::Error> {
        Coordinate::new(values)
    }
}

impl From<Coordinate> for Vec<i64> {
    fn from(c: Coordinate) -> Self {
        c.to_vec()
    }
}

impl<'a> IntoIterator for &'a Coordinate {
    type Item = i64;
    type IntoIter = std::iter::Copied<std::slice::Iter<'a, i64>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Implements a binary operator for all owned/borrowed combinations, delegating to the
/// `checked_*` method and panicking on error.
macro_rules! impl_binop {
    ($Trait:ident, $method:ident, $checked:ident, $Assign:ident, $assign:ident) => {
        impl $Trait<Coordinate> for Coordinate {
            type Output = Coordinate;
            fn $method(self, rhs: Coordinate) -> Coordinate {
                or_panic(self.$checked(&rhs))
            }
        }
        impl $Trait<&Coordinate> for Coordinate {
            type Output = Coordinate;
            fn $method(self, rhs: &Coordinate) -> Coordinate {
                or_panic(self.$checked(rhs))
            }
        }
        impl $Trait<Coordinate> for &Coordinate {
            type Output = Coordinate;
            fn $method(self, rhs: Coordinate) -> Coordinate {
                or_panic(self.$checked(&rhs))
            }
        }
        impl $Trait<&Coordinate> for &Coordinate {
            type Output = Coordinate;
            fn $method(self, rhs: &Coordinate) -> Coordinate {
                or_panic(self.$checked(rhs))
            }
        }
        impl $Assign<Coordinate> for Coordinate {
            fn $assign(&mut self, rhs: Coordinate) {
                *self = or_panic(self.$checked(&rhs));
            }
        }
        impl $Assign<&Coordinate> for Coordinate {
            fn $assign(&mut self, rhs: &Coordinate) {
                *self = or_panic(self.$checked(rhs));
            }
        }
    };
}

impl_binop!(Add, add, checked_add, AddAssign, add_assign);
impl_binop!(Sub, sub, checked_sub, SubAssign, sub_assign);
impl_binop!(Mul, mul, checked_mul, MulAssign, mul_assign);
impl_binop!(Div, div, checked_div, DivAssign, div_assign);

/// Implements a scalar operator (`Coordinate op i64`), panicking on error.
macro_rules! impl_scalar_op {
    ($Trait:ident, $method:ident, $symbol:literal, $f:expr) => {
        impl $Trait<i64> for Coordinate {
            type Output = Coordinate;
            fn $method(self, rhs: i64) -> Coordinate {
                or_panic(self.map_checked(rhs, $symbol, $f))
            }
        }
        impl $Trait<i64> for &Coordinate {
            type Output = Coordinate;
            fn $method(self, rhs: i64) -> Coordinate {
                or_panic(self.map_checked(rhs, $symbol, $f))
            }
        }
    };
}

impl_scalar_op!(Add, add, "+", i64::checked_add);
impl_scalar_op!(Sub, sub, "-", i64::checked_sub);
impl_scalar_op!(Mul, mul, "*", i64::checked_mul);
impl_scalar_op!(Div, div, "/", |a, b| {
    assert!(b != 0, "division by zero: coordinate / 0");
    floor_div(a, b)
});

impl Neg for Coordinate {
    type Output = Coordinate;
    fn neg(self) -> Coordinate {
        or_panic(self.map_checked(-1, "*", i64::checked_mul))
    }
}

impl Neg for &Coordinate {
    type Output = Coordinate;
    fn neg(self) -> Coordinate {
        -*self
    }
}

/// A coordinate in voxel units (voxel indices or voxel counts), kept apart from world-unit
/// [`Coordinate`]s by the type system.
///
/// Obtain one with [`Coordinate::to_voxels`] or [`VoxelCoordinate::new`]; convert back
/// with [`VoxelCoordinate::to_world`]. Serialized like a [`Coordinate`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VoxelCoordinate(Coordinate);

impl VoxelCoordinate {
    /// Wraps a coordinate whose components are voxel indices or counts.
    pub fn new(voxels: Coordinate) -> Self {
        Self(voxels)
    }

    /// The underlying integer vector (in voxel units).
    pub fn coordinate(&self) -> &Coordinate {
        &self.0
    }

    /// Unwraps into the underlying integer vector (in voxel units).
    pub fn into_inner(self) -> Coordinate {
        self.0
    }

    /// The number of dimensions.
    pub fn dims(&self) -> usize {
        self.0.dims()
    }

    /// The components as a slice.
    pub fn as_slice(&self) -> &[i64] {
        self.0.as_slice()
    }

    /// Iterates over the components by value.
    pub fn iter(&self) -> std::iter::Copied<std::slice::Iter<'_, i64>> {
        self.0.iter()
    }

    /// The product of all components (the voxel count of a shape), saturating on overflow.
    pub fn product(&self) -> i64 {
        self.0.product()
    }

    /// The components as `usize`s, e.g. for an array shape or index; errors if any
    /// component is negative.
    pub fn to_usize(&self) -> Result<Vec<usize>, GeometryError> {
        self.iter()
            .map(|v| usize::try_from(v).map_err(|_| GeometryError::NegativeComponent(self.0)))
            .collect()
    }

    /// Converts to world units by multiplying with `voxel_size`.
    ///
    /// # Panics
    /// Panics on a dimension mismatch or overflow.
    pub fn to_world(&self, voxel_size: &Coordinate) -> Coordinate {
        or_panic(self.0.checked_mul(voxel_size))
    }
}

impl fmt::Display for VoxelCoordinate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for VoxelCoordinate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VoxelCoordinate{}", self.0)
    }
}

impl Index<usize> for VoxelCoordinate {
    type Output = i64;

    fn index(&self, index: usize) -> &i64 {
        &self.0[index]
    }
}

impl Add for VoxelCoordinate {
    type Output = VoxelCoordinate;

    /// Element-wise sum; panics on a dimension mismatch or overflow.
    fn add(self, rhs: VoxelCoordinate) -> VoxelCoordinate {
        VoxelCoordinate(self.0 + rhs.0)
    }
}

impl Sub for VoxelCoordinate {
    type Output = VoxelCoordinate;

    /// Element-wise difference; panics on a dimension mismatch or overflow.
    fn sub(self, rhs: VoxelCoordinate) -> VoxelCoordinate {
        VoxelCoordinate(self.0 - rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(values: &[i64]) -> Coordinate {
        Coordinate::new(values).unwrap()
    }

    #[test]
    #[allow(clippy::op_ref)] // exercises the by-reference operator impls
    fn floor_division_rounds_towards_negative_infinity() {
        assert_eq!(floor_div(7, 2), Some(3));
        assert_eq!(floor_div(-7, 2), Some(-4));
        assert_eq!(floor_div(7, -2), Some(-4));
        assert_eq!(floor_div(-7, -2), Some(3));
        assert_eq!(floor_div(4, 8), Some(0));
        assert_eq!(floor_div(-1, 2), Some(-1));
        assert_eq!(floor_div(-8, 4), Some(-2));
        assert_eq!(floor_div(1, 0), None);
        assert_eq!(floor_div(i64::MIN, -1), None);

        let a = Coordinate::from([7, -7, 4]);
        let b = Coordinate::from([2, 2, 8]);
        assert_eq!(a / b, Coordinate::from([3, -4, 0]));
        assert_eq!(&a / &b, Coordinate::from([3, -4, 0]));
        assert_eq!(a / 2, Coordinate::from([3, -4, 2]));
        assert_eq!(Coordinate::from([-1, 1]) / 2, Coordinate::from([-1, 0]));
    }

    #[test]
    #[allow(clippy::op_ref)] // exercises the by-reference operator impls
    fn element_wise_and_scalar_arithmetic() {
        let a = Coordinate::from([1, 2, 3]);
        let b = Coordinate::from([10, 20, 30]);
        assert_eq!(a + b, Coordinate::from([11, 22, 33]));
        assert_eq!(b - a, Coordinate::from([9, 18, 27]));
        assert_eq!(a * b, Coordinate::from([10, 40, 90]));
        assert_eq!(&a + &b, Coordinate::from([11, 22, 33]));
        assert_eq!(a + 1, Coordinate::from([2, 3, 4]));
        assert_eq!(a - 1, Coordinate::from([0, 1, 2]));
        assert_eq!(a * -2, Coordinate::from([-2, -4, -6]));
        assert_eq!(-a, Coordinate::from([-1, -2, -3]));
        let mut m = a;
        m += b;
        m -= Coordinate::from([1, 1, 1]);
        m *= Coordinate::from([2, 2, 2]);
        m /= Coordinate::from([4, 4, 4]);
        assert_eq!(m, Coordinate::from([5, 10, 16]));
    }

    #[test]
    fn checked_ops_report_errors_with_values() {
        let a = Coordinate::from([1, 2]);
        let b = Coordinate::from([1, 2, 3]);
        let err = a.checked_add(&b).unwrap_err();
        assert_eq!(err.to_string(), "dimension mismatch: (1, 2) vs (1, 2, 3)");
        assert!(matches!(
            a.checked_sub(&b),
            Err(GeometryError::DimensionMismatch { .. })
        ));
        assert!(a.checked_mul(&b).is_err());
        assert!(a.checked_div(&b).is_err());

        let err = a.checked_div(&Coordinate::from([1, 0])).unwrap_err();
        assert_eq!(err.to_string(), "division by zero: (1, 2) / (1, 0)");

        let err = Coordinate::from([i64::MAX, 0])
            .checked_add(&Coordinate::from([1, 0]))
            .unwrap_err();
        assert!(matches!(err, GeometryError::Overflow(_)));
        assert!(err.to_string().contains("+"));

        assert_eq!(
            a.checked_div(&Coordinate::from([2, 2])).unwrap(),
            Coordinate::from([0, 1])
        );
    }

    #[test]
    #[should_panic(expected = "dimension mismatch: (1, 2) vs (1, 2, 3)")]
    fn operator_panics_on_dimension_mismatch() {
        let _ = Coordinate::from([1, 2]) + Coordinate::from([1, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "division by zero")]
    fn operator_panics_on_zero_divisor() {
        let _ = Coordinate::from([1, 2]) / Coordinate::from([0, 1]);
    }

    #[test]
    #[should_panic(expected = "division by zero")]
    fn scalar_division_panics_on_zero() {
        let _ = Coordinate::from([1, 2]) / 0;
    }

    #[test]
    fn lcm_min_max_product() {
        let a = Coordinate::from([4, 6, 8]);
        let b = Coordinate::from([6, 4, 8]);
        assert_eq!(a.lcm(&b), Coordinate::from([12, 12, 8]));
        assert_eq!(
            Coordinate::from([40, 4, 3]).lcm(&Coordinate::from([8, 6, 5])),
            Coordinate::from([40, 12, 15])
        );
        assert_eq!(
            Coordinate::from([0, -4]).lcm(&Coordinate::from([5, 6])),
            Coordinate::from([0, 12])
        );
        assert!(a.checked_lcm(&Coordinate::from([1, 2])).is_err());
        assert!(matches!(
            Coordinate::from([i64::MAX]).checked_lcm(&Coordinate::from([2])),
            Err(GeometryError::Overflow(_))
        ));

        assert_eq!(a.min(&b), Coordinate::from([4, 4, 8]));
        assert_eq!(a.max(&b), Coordinate::from([6, 6, 8]));
        assert_eq!(a.product(), 192);
        assert_eq!(Coordinate::from([2, -3]).product(), -6);
        assert_eq!(Coordinate::from([i64::MAX, 2]).product(), i64::MAX);
    }

    #[test]
    fn is_multiple_of_uses_exact_divisibility() {
        let grid = Coordinate::from([4, 8]);
        assert!(Coordinate::from([8, 16]).is_multiple_of(&grid));
        assert!(Coordinate::from([-4, 0]).is_multiple_of(&grid));
        assert!(!Coordinate::from([-2, 0]).is_multiple_of(&grid));
        assert!(!Coordinate::from([8, 12]).is_multiple_of(&grid));
        assert!(Coordinate::from([8, 12]).is_multiple_of(&Coordinate::from([-4, 3])));
        // Only 0 is a multiple of 0.
        assert!(Coordinate::from([0, 4]).is_multiple_of(&Coordinate::from([0, 2])));
        assert!(!Coordinate::from([1, 4]).is_multiple_of(&Coordinate::from([0, 2])));
        // Dimension mismatch is never a multiple.
        assert!(!Coordinate::from([8, 8, 8]).is_multiple_of(&grid));
        assert!(Coordinate::from([i64::MIN]).is_multiple_of(&Coordinate::from([-1])));
    }

    #[test]
    fn constructors_and_accessors() {
        assert_eq!(Coordinate::zeros(3), Coordinate::from([0, 0, 0]));
        assert_eq!(Coordinate::splat(7, 2), Coordinate::from([7, 7]));
        assert_eq!(Coordinate::splat(7, 2).dims(), 2);
        assert_eq!(c(&[1, 2, 3, 4]).dims(), 4);
        assert!(matches!(
            Coordinate::new(&[]),
            Err(GeometryError::InvalidDims { dims: 0, .. })
        ));
        assert!(Coordinate::new(&[1, 2, 3, 4, 5]).is_err());
        assert_eq!(
            Coordinate::try_from(vec![4, 8, 8]).unwrap(),
            Coordinate::from([4, 8, 8])
        );
        assert!(Coordinate::try_from(Vec::<i64>::new()).is_err());

        let a = Coordinate::from([4, 8, 9]);
        assert_eq!(a[0], 4);
        assert_eq!(a[2], 9);
        assert_eq!(a.get(3), None);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![4, 8, 9]);
        assert_eq!((&a).into_iter().sum::<i64>(), 21);
        assert_eq!(a.to_vec(), vec![4, 8, 9]);
        assert_eq!(a.as_slice(), &[4, 8, 9]);
        assert!(a.is_positive());
        assert!(!Coordinate::from([0, 1]).is_positive());
        assert!(Coordinate::from([0, 1]).is_non_negative());
        assert!(!Coordinate::from([0, -1]).is_non_negative());
    }

    #[test]
    #[should_panic(expected = "invalid number of dimensions 5")]
    fn zeros_panics_on_too_many_dims() {
        let _ = Coordinate::zeros(5);
    }

    #[test]
    #[should_panic]
    fn index_out_of_range_panics() {
        let _ = Coordinate::from([1, 2])[2];
    }

    #[test]
    fn equality_and_hash_ignore_unused_slots() {
        use std::collections::HashSet;
        // A coordinate built by arithmetic equals one built from an array.
        let sum = Coordinate::from([1, 2]) + Coordinate::from([3, 4]);
        assert_eq!(sum, Coordinate::from([4, 6]));
        assert_ne!(Coordinate::from([4, 6]), Coordinate::from([4, 6, 0]));
        let set: HashSet<_> = [sum, Coordinate::from([4, 6])].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn display_and_debug() {
        assert_eq!(Coordinate::from([4, 8, 8]).to_string(), "(4, 8, 8)");
        assert_eq!(Coordinate::from([-1]).to_string(), "(-1)");
        assert_eq!(
            format!("{:?}", Coordinate::from([1, 2])),
            "Coordinate(1, 2)"
        );
        assert_eq!(VoxelCoordinate::from([1, 2]).to_string(), "(1, 2)");
        assert_eq!(
            format!("{:?}", VoxelCoordinate::from([1, 2])),
            "VoxelCoordinate(1, 2)"
        );
    }

    #[test]
    fn serde_round_trip() {
        let a = Coordinate::from([40, 4, 4]);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "[40,4,4]");
        assert_eq!(serde_json::from_str::<Coordinate>(&json).unwrap(), a);
        assert_eq!(
            serde_json::from_str::<Coordinate>("[1, 2]").unwrap(),
            Coordinate::from([1, 2])
        );
        let err = serde_json::from_str::<Coordinate>("[]").unwrap_err();
        assert!(err.to_string().contains("invalid number of dimensions 0"));
        assert!(serde_json::from_str::<Coordinate>("[1,2,3,4,5]").is_err());
        assert!(serde_json::from_str::<Coordinate>("[1.5, 2]").is_err());
        assert!(serde_json::from_str::<Coordinate>("{\"a\": 1}").is_err());

        let yaml: Coordinate = serde_yaml_ng::from_str("- 8\n- 8\n- 8\n").unwrap();
        assert_eq!(yaml, Coordinate::from([8, 8, 8]));
        assert_eq!(
            serde_yaml_ng::from_str::<Coordinate>("[4, 4]").unwrap(),
            Coordinate::from([4, 4])
        );

        let v = VoxelCoordinate::from([1, 2, 3]);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, "[1,2,3]");
        assert_eq!(serde_json::from_str::<VoxelCoordinate>(&json).unwrap(), v);
    }

    #[test]
    fn world_voxel_conversions() {
        let voxel_size = Coordinate::from([40, 4, 4]);
        let world = Coordinate::from([400, 8, -12]);
        let voxels = world.to_voxels(&voxel_size).unwrap();
        assert_eq!(voxels, VoxelCoordinate::from([10, 2, -3]));
        assert_eq!(voxels.to_world(&voxel_size), world);
        assert_eq!(voxels.coordinate(), &Coordinate::from([10, 2, -3]));
        assert_eq!(voxels.into_inner(), Coordinate::from([10, 2, -3]));
        assert_eq!(voxels[1], 2);
        assert_eq!(voxels.dims(), 3);
        assert_eq!(voxels.product(), -60);
        assert!(matches!(
            voxels.to_usize(),
            Err(GeometryError::NegativeComponent(_))
        ));
        assert_eq!(
            VoxelCoordinate::from([3, 4]).to_usize().unwrap(),
            vec![3usize, 4]
        );

        let err = Coordinate::from([401, 8, 8])
            .to_voxels(&voxel_size)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "(401, 8, 8) is not a multiple of (40, 4, 4)"
        );
        assert!(matches!(
            world.to_voxels(&Coordinate::from([40, 0, 4])),
            Err(GeometryError::InvalidVoxelSize(_))
        ));
        assert!(matches!(
            world.to_voxels(&Coordinate::from([4, 4])),
            Err(GeometryError::DimensionMismatch { .. })
        ));

        let sum = VoxelCoordinate::from([1, 2]) + VoxelCoordinate::from([3, 4]);
        assert_eq!(sum, VoxelCoordinate::from([4, 6]));
        assert_eq!(
            sum - VoxelCoordinate::from([1, 1]),
            VoxelCoordinate::from([3, 5])
        );
        assert_eq!(
            VoxelCoordinate::new(Coordinate::from([5])),
            VoxelCoordinate::from([5])
        );
    }

    proptest! {
        #[test]
        fn floor_div_matches_definition(a in -10_000i64..10_000, b in -100i64..100) {
            prop_assume!(b != 0);
            let q = floor_div(a, b).unwrap();
            let r = a - q * b;
            if b > 0 {
                prop_assert!((0..b).contains(&r));
            } else {
                prop_assert!(r <= 0 && r > b);
            }
            prop_assert_eq!(is_multiple(a, b), r == 0);
        }

        #[test]
        fn lcm_is_common_multiple(a in 1i64..1000, b in 1i64..1000) {
            let l = Coordinate::from([a]).lcm(&Coordinate::from([b]));
            prop_assert!(l.is_multiple_of(&Coordinate::from([a])));
            prop_assert!(l.is_multiple_of(&Coordinate::from([b])));
            prop_assert!(l[0] <= a * b);
        }

        #[test]
        fn to_voxels_round_trips(v in proptest::collection::vec((-1000i64..1000, 1i64..50), 1..=4)) {
            let voxels: Vec<i64> = v.iter().map(|&(x, _)| x).collect();
            let size: Vec<i64> = v.iter().map(|&(_, s)| s).collect();
            let (voxels, size) = (c(&voxels), c(&size));
            let world = voxels * size;
            prop_assert_eq!(world.to_voxels(&size).unwrap(), VoxelCoordinate::new(voxels));
        }
    }
}
