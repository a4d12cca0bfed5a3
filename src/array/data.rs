//! Operations on [`ArrayData`] that every array node needs: filled buffers, element-type
//! conversion, sub-region copies and concatenation along the channel axis.

use std::ops::Range;

use ndarray::{ArrayD, Axis, IxDyn, SliceInfoElem};

use super::{ArrayData, DataType};

/// A voxel element type: converts to and from `f64` (integers round and saturate; booleans
/// are 0 or 1 and any non-zero value is `true`).
pub trait Scalar: Copy + Clone + Send + Sync + PartialEq + Default + 'static {
    /// The value as `f64`.
    fn to_f64(self) -> f64;
    /// The nearest representable value (rounded, clamped to the type's range; NaN → 0).
    fn from_f64(v: f64) -> Self;
}

impl Scalar for half::f16 {
    fn to_f64(self) -> f64 {
        half::f16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        half::f16::from_f64(v)
    }
}

impl Scalar for bool {
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0 && !v.is_nan()
    }
}

macro_rules! int_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                // `as` saturates at the bounds and maps NaN to 0.
                v.round() as $t
            }
        }
    )*};
}
int_scalar!(u8, u16, u32, u64, i8, i16, i32, i64);

impl Scalar for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Scalar for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

fn cast<A: Scalar, B: Scalar>(a: &ArrayD<A>) -> ArrayD<B> {
    a.mapv(|v| B::from_f64(v.to_f64()))
}

/// Builds an [`ArrayData`] of type `dt` from `f64` values (rounded and clamped for integers).
pub fn from_f64(dt: DataType, a: &ArrayD<f64>) -> ArrayData {
    match dt {
        DataType::Bool => ArrayData::Bool(cast(a)),
        DataType::U8 => ArrayData::U8(cast(a)),
        DataType::U16 => ArrayData::U16(cast(a)),
        DataType::U32 => ArrayData::U32(cast(a)),
        DataType::U64 => ArrayData::U64(cast(a)),
        DataType::I8 => ArrayData::I8(cast(a)),
        DataType::I16 => ArrayData::I16(cast(a)),
        DataType::I32 => ArrayData::I32(cast(a)),
        DataType::I64 => ArrayData::I64(cast(a)),
        DataType::F32 => ArrayData::F32(cast(a)),
        // float16 values are held as float32 (each rounded to the nearest half).
        DataType::F16 => ArrayData::F32(a.mapv(|v| half::f16::from_f64(v).to_f32())),
        DataType::F64 => ArrayData::F64(a.clone()),
    }
}

/// The chunks a non-empty voxel region touches: the grid index of the first one and how
/// many there are along each axis.
pub fn chunk_span(ranges: &[Range<u64>], chunk: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let first: Vec<u64> = ranges
        .iter()
        .zip(chunk)
        .map(|(r, c)| r.start / c.max(&1))
        .collect();
    let counts = ranges
        .iter()
        .zip(chunk)
        .zip(&first)
        .map(|((r, c), f)| (r.end.max(r.start + 1) - 1) / c.max(&1) - f + 1)
        .collect();
    (first, counts)
}

/// A zero-filled array for a large read. On Linux the buffer is marked for transparent
/// huge pages before it is touched, which makes filling it several times faster (the same
/// hint numpy gives for its large arrays).
pub fn zeroed<T: Copy + Default>(shape: &[usize]) -> ArrayD<T> {
    let n: usize = shape.iter().product();
    let v = vec![T::default(); n];
    advise_huge_pages(&v);
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap_or_else(|_| ArrayD::default(IxDyn(shape)))
}

#[cfg(target_os = "linux")]
fn advise_huge_pages<T>(buf: &[T]) {
    let len = std::mem::size_of_val(buf);
    if len < 8 << 20 {
        return;
    }
    const PAGE: usize = 4096;
    let start = buf.as_ptr() as usize;
    let aligned = (start + PAGE - 1) & !(PAGE - 1);
    let end = (start + len) & !(PAGE - 1);
    if end > aligned {
        // SAFETY: madvise only changes how the kernel backs these pages of our own live
        // allocation; it does not read or write them, and failure is harmless.
        unsafe {
            libc::madvise(
                aligned as *mut libc::c_void,
                end - aligned,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<T>(_buf: &[T]) {}

/// Copies `src` into `dst` with its first element at `offset`, row by row (both in
/// standard layout, `src` fitting inside `dst`; falls back to ndarray's assignment
/// otherwise). Much faster than an element-wise assignment over dynamic dimensions.
pub fn copy_block<T: Copy>(dst: &mut ArrayD<T>, src: &ArrayD<T>, offset: &[usize]) {
    let ndim = dst.ndim();
    let dshape = dst.shape().to_vec();
    let sshape = src.shape().to_vec();
    let fits = ndim > 0
        && src.ndim() == ndim
        && offset.len() == ndim
        && (0..ndim).all(|i| offset[i] + sshape[i] <= dshape[i]);
    if !fits || sshape.contains(&0) {
        if fits {
            return;
        }
        let ranges: Vec<Range<usize>> =
            offset.iter().zip(&sshape).map(|(o, n)| *o..o + n).collect();
        dst.slice_mut(slice_info(&ranges).as_slice()).assign(src);
        return;
    }
    let (Some(d), Some(s)) = (dst.as_slice_mut(), src.as_slice()) else {
        let ranges: Vec<Range<usize>> =
            offset.iter().zip(&sshape).map(|(o, n)| *o..o + n).collect();
        dst.slice_mut(slice_info(&ranges).as_slice()).assign(src);
        return;
    };
    // Strides in elements of the destination.
    let mut dstride = vec![1usize; ndim];
    for i in (0..ndim - 1).rev() {
        dstride[i] = dstride[i + 1] * dshape[i + 1];
    }
    let row = sshape[ndim - 1];
    let rows: usize = sshape[..ndim - 1].iter().product();
    let mut index = vec![0usize; ndim];
    let mut start: usize = (0..ndim).map(|k| offset[k] * dstride[k]).sum();
    for r in 0..rows {
        d[start..start + row].copy_from_slice(&s[r * row..(r + 1) * row]);
        // Advance to the next row, carrying into the outer axes.
        let mut k = ndim - 1;
        while k > 0 {
            k -= 1;
            index[k] += 1;
            start += dstride[k];
            if index[k] < sshape[k] {
                break;
            }
            start -= sshape[k] * dstride[k];
            index[k] = 0;
        }
    }
}

/// Copies the sub-box `part` of `src` (a C-order buffer of shape `src_shape`) into `dst`
/// at `dst_offset`, row by row. Boxes that do not fit are clipped to `dst`.
pub fn copy_sub_block<T: Copy>(
    dst: &mut ArrayD<T>,
    dst_offset: &[usize],
    src: &[T],
    src_shape: &[usize],
    part: &[Range<usize>],
) {
    let dshape = dst.shape().to_vec();
    if let Some(d) = dst.as_slice_mut() {
        copy_sub_block_into(d, &dshape, dst_offset, src, src_shape, part);
    }
}

/// [`copy_sub_block`] into a C-order buffer `d` of shape `dshape`.
pub fn copy_sub_block_into<T: Copy>(
    d: &mut [T],
    dshape: &[usize],
    dst_offset: &[usize],
    src: &[T],
    src_shape: &[usize],
    part: &[Range<usize>],
) {
    let ndim = dshape.len();
    if ndim == 0 || src_shape.len() != ndim || part.len() != ndim || dst_offset.len() != ndim {
        return;
    }
    let size: Vec<usize> = (0..ndim)
        .map(|k| {
            let p = part[k].end.min(src_shape[k]).saturating_sub(part[k].start);
            p.min(dshape[k].saturating_sub(dst_offset[k]))
        })
        .collect();
    if size.contains(&0)
        || src.len() < src_shape.iter().product::<usize>()
        || d.len() < dshape.iter().product::<usize>()
    {
        return;
    }
    let mut dstride = vec![1usize; ndim];
    let mut sstride = vec![1usize; ndim];
    for k in (0..ndim - 1).rev() {
        dstride[k] = dstride[k + 1] * dshape[k + 1];
        sstride[k] = sstride[k + 1] * src_shape[k + 1];
    }
    let row = size[ndim - 1];
    let rows: usize = size[..ndim - 1].iter().product();
    let mut index = vec![0usize; ndim];
    let mut di: usize = (0..ndim).map(|k| dst_offset[k] * dstride[k]).sum();
    let mut si: usize = (0..ndim).map(|k| part[k].start * sstride[k]).sum();
    for _ in 0..rows {
        d[di..di + row].copy_from_slice(&src[si..si + row]);
        let mut k = ndim - 1;
        while k > 0 {
            k -= 1;
            index[k] += 1;
            di += dstride[k];
            si += sstride[k];
            if index[k] < size[k] {
                break;
            }
            di -= size[k] * dstride[k];
            si -= size[k] * sstride[k];
            index[k] = 0;
        }
    }
}

fn slice_info(ranges: &[Range<usize>]) -> Vec<SliceInfoElem> {
    ranges
        .iter()
        .map(|r| SliceInfoElem::Slice {
            start: r.start as isize,
            end: Some(r.end as isize),
            step: 1,
        })
        .collect()
}

impl ArrayData {
    /// An array of type `dt` and `shape` with every element `value` (converted to `dt`).
    pub fn filled(dt: DataType, shape: &[usize], value: f64) -> ArrayData {
        fn f<T: Scalar>(shape: &[usize], value: f64) -> ArrayD<T> {
            ArrayD::from_elem(IxDyn(shape), T::from_f64(value))
        }
        match dt {
            DataType::Bool => ArrayData::Bool(f(shape, value)),
            DataType::U8 => ArrayData::U8(f(shape, value)),
            DataType::U16 => ArrayData::U16(f(shape, value)),
            DataType::U32 => ArrayData::U32(f(shape, value)),
            DataType::U64 => ArrayData::U64(f(shape, value)),
            DataType::I8 => ArrayData::I8(f(shape, value)),
            DataType::I16 => ArrayData::I16(f(shape, value)),
            DataType::I32 => ArrayData::I32(f(shape, value)),
            DataType::I64 => ArrayData::I64(f(shape, value)),
            DataType::F32 => ArrayData::F32(f(shape, value)),
            DataType::F16 => ArrayData::F32(f(shape, half::f16::from_f64(value).to_f64())),
            DataType::F64 => ArrayData::F64(f(shape, value)),
        }
    }

    /// The values as `f64`.
    pub fn to_f64(&self) -> ArrayD<f64> {
        crate::with_array_data!(self, a => cast(a))
    }

    /// The values as `f32` (what networks consume).
    pub fn to_f32(&self) -> ArrayD<f32> {
        crate::with_array_data!(self, a => cast(a))
    }

    /// The values as `u64` label ids; negative values and fractions are errors.
    pub fn to_labels(&self) -> Result<ArrayD<u64>, String> {
        match self {
            ArrayData::U64(a) => Ok(a.clone()),
            ArrayData::U8(a) => Ok(a.mapv(u64::from)),
            ArrayData::U16(a) => Ok(a.mapv(u64::from)),
            ArrayData::U32(a) => Ok(a.mapv(u64::from)),
            ArrayData::Bool(a) => Ok(a.mapv(u64::from)),
            other => {
                let v = other.to_f64();
                if let Some(bad) = v.iter().find(|x| **x < 0.0 || x.fract() != 0.0) {
                    return Err(format!(
                        "label arrays must hold non-negative whole numbers, found {bad} ({})",
                        other.data_type()
                    ));
                }
                Ok(v.mapv(|x| x as u64))
            }
        }
    }

    /// The same values converted to `dt` (rounded and clamped for integer types).
    pub fn cast(&self, dt: DataType) -> ArrayData {
        if self.data_type() == dt {
            return self.clone();
        }
        from_f64(dt, &self.to_f64())
    }

    /// Copies `src` into this array with its first element at `offset` (per axis).
    /// Both must have the same type and number of axes, and `src` must fit.
    pub fn assign_at(&mut self, offset: &[usize], src: &ArrayData) -> Result<(), String> {
        let shape = self.shape().to_vec();
        let src_shape = src.shape();
        if offset.len() != shape.len() || src_shape.len() != shape.len() {
            return Err(format!(
                "cannot place a {src_shape:?} block at {offset:?} into a {shape:?} array"
            ));
        }
        let ranges: Vec<Range<usize>> = offset
            .iter()
            .zip(src_shape)
            .map(|(o, n)| *o..o + n)
            .collect();
        if ranges.iter().zip(&shape).any(|(r, n)| r.end > *n) {
            return Err(format!(
                "a {src_shape:?} block at {offset:?} does not fit into a {shape:?} array"
            ));
        }
        macro_rules! assign {
            ($($v:ident),*) => {
                match (self, src) {
                    $((ArrayData::$v(dst), ArrayData::$v(s)) => {
                        copy_block(dst, s, offset);
                        Ok(())
                    })*
                    (dst, s) => Err(format!(
                        "cannot copy {} values into a {} array",
                        s.data_type(),
                        dst.data_type()
                    )),
                }
            };
        }
        assign!(Bool, U8, U16, U32, U64, I8, I16, I32, I64, F32, F64)
    }

    /// A copy of the sub-region `ranges` (one range per axis).
    pub fn slice_region(&self, ranges: &[Range<usize>]) -> ArrayData {
        let info = slice_info(ranges);
        macro_rules! sl {
            ($($v:ident),*) => {
                match self {
                    $(ArrayData::$v(a) => ArrayData::$v(a.slice(info.as_slice()).to_owned()),)*
                }
            };
        }
        sl!(Bool, U8, U16, U32, U64, I8, I16, I32, I64, F32, F64)
    }

    /// This array with a new leading axis of length 1 (a channel axis).
    pub fn with_channel_axis(self) -> ArrayData {
        macro_rules! ins {
            ($($v:ident),*) => {
                match self {
                    $(ArrayData::$v(a) => ArrayData::$v(a.insert_axis(Axis(0))),)*
                }
            };
        }
        ins!(Bool, U8, U16, U32, U64, I8, I16, I32, I64, F32, F64)
    }

    /// Concatenates arrays of one type along their first axis.
    pub fn concat(parts: &[ArrayData]) -> Result<ArrayData, String> {
        let Some(first) = parts.first() else {
            return Err("nothing to concatenate".into());
        };
        macro_rules! cat {
            ($($v:ident),*) => {
                match first {
                    $(ArrayData::$v(_) => {
                        let mut views = Vec::with_capacity(parts.len());
                        for p in parts {
                            match p {
                                ArrayData::$v(a) => views.push(a.view()),
                                other => return Err(format!(
                                    "cannot concatenate {} with {} channels",
                                    first.data_type(),
                                    other.data_type()
                                )),
                            }
                        }
                        ndarray::concatenate(Axis(0), &views)
                            .map(ArrayData::$v)
                            .map_err(|e| format!("cannot concatenate channels: {e}"))
                    })*
                }
            };
        }
        cat!(Bool, U8, U16, U32, U64, I8, I16, I32, I64, F32, F64)
    }
}

/// Every index of a chunk grid, in C order.
pub fn grid_indices(grid: &[u64]) -> Vec<Vec<u64>> {
    let total: u64 = grid.iter().product();
    let mut out = Vec::with_capacity(total as usize);
    if total == 0 {
        return out;
    }
    let mut index = vec![0u64; grid.len()];
    loop {
        out.push(index.clone());
        let mut axis = grid.len();
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < grid[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_round_and_clamp() {
        let a = ArrayD::from_shape_vec(IxDyn(&[4]), vec![-3.0, 1.5, 254.6, 999.0]).unwrap();
        assert_eq!(
            from_f64(DataType::U8, &a),
            ArrayData::U8(ArrayD::from_shape_vec(IxDyn(&[4]), vec![0, 2, 255, 255]).unwrap())
        );
        assert_eq!(
            from_f64(DataType::Bool, &a),
            ArrayData::Bool(
                ArrayD::from_shape_vec(IxDyn(&[4]), vec![true, true, true, true]).unwrap()
            )
        );
    }

    #[test]
    fn assign_slice_and_concat() {
        let mut a = ArrayData::filled(DataType::U16, &[3, 4], 7.0);
        let b = ArrayData::filled(DataType::U16, &[2, 2], 1.0);
        a.assign_at(&[1, 2], &b).unwrap();
        let v = a.to_f64();
        assert_eq!(v[[0, 0]], 7.0);
        assert_eq!(v[[1, 2]], 1.0);
        assert_eq!(v[[2, 3]], 1.0);
        assert_eq!(v[[2, 1]], 7.0);
        assert!(a
            .assign_at(&[2, 3], &b)
            .unwrap_err()
            .contains("does not fit"));
        let wrong = ArrayData::filled(DataType::U8, &[1, 1], 0.0);
        assert!(a.assign_at(&[0, 0], &wrong).unwrap_err().contains("uint8"));
        let s = a.slice_region(&[1..3, 2..4]);
        assert_eq!(s, b);
        let c = ArrayData::concat(&[b.clone().with_channel_axis(), b.with_channel_axis()]).unwrap();
        assert_eq!(c.shape(), &[2, 2, 2]);
        // Row-wise copies agree with ndarray's assignment.
        let mut big = ArrayD::<u32>::zeros(IxDyn(&[3, 4, 5]));
        let small = ArrayD::from_shape_fn(IxDyn(&[2, 2, 3]), |i| {
            (i[0] * 100 + i[1] * 10 + i[2] + 1) as u32
        });
        copy_block(&mut big, &small, &[1, 2, 1]);
        assert_eq!(big[[1, 2, 1]], 1);
        assert_eq!(big[[2, 3, 3]], 113);
        assert_eq!(big[[1, 2, 0]], 0);
        assert_eq!(big.iter().filter(|v| **v != 0).count(), 12);
        assert_eq!(c.shape(), &[2, 2, 2]);
    }

    #[test]
    fn labels_reject_negative_and_fractional_values() {
        let a = ArrayData::F32(ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0, 2.5]).unwrap());
        assert!(a.to_labels().unwrap_err().contains("2.5"));
        let b = ArrayData::I32(ArrayD::from_shape_vec(IxDyn(&[2]), vec![3, 4]).unwrap());
        assert_eq!(b.to_labels().unwrap().as_slice().unwrap(), &[3, 4]);
    }
}
