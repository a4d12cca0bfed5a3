//! Elastic deformation with rotation (DaCapo's ElasticAugment): a smooth random
//! displacement field on a coarse grid interpolated by Catmull-Rom splines, composed with a
//! rotation, raw resampled linearly and labels by nearest neighbour; and the margin it
//! needs around a patch.

use super::*;

/// Largest `a·|cos θ| + b·|sin θ|` over θ in `[low, high]`.
pub(super) fn max_rotated_extent(low: f64, high: f64, a: f64, b: f64) -> f64 {
    let width = high - low;
    if width.is_nan() || width >= PI || low.abs() > 1e6 || high.abs() > 1e6 {
        return a.hypot(b);
    }
    let f = |t: f64| a * t.cos().abs() + b * t.sin().abs();
    let phi = b.atan2(a);
    let mut best = f(low).max(f(high));
    let k0 = (low / PI).floor() as i64 - 1;
    let k1 = (high / PI).ceil() as i64 + 1;
    for k in k0..=k1 {
        for c in [phi + k as f64 * PI, -phi + k as f64 * PI] {
            if c >= low && c <= high {
                best = best.max(f(c));
            }
        }
    }
    best
}

/// Extra voxels per side (per spatial axis) an elastic augment needs around an output of `shape`.
pub fn elastic_margin(
    config: &ElasticAugmentConfig,
    shape: &[usize],
    voxel_size_nm: &[f64],
) -> Vec<usize> {
    // Worst-case rotation over the configured interval (any rotation for uniform 3D) plus 3σ
    // of displacement. Axes of equal voxel size and extent get the same margin, so they stay
    // transposable. Missing or invalid voxel sizes count as 1.
    let d = shape.len();
    let vs: Vec<f64> = (0..d).map(|a| voxel_or_one(voxel_size_nm.get(a))).collect();
    // Half extents of the output in world units, measured between outermost voxel centres.
    let half: Vec<f64> = (0..d)
        .map(|a| shape[a].saturating_sub(1) as f64 / 2.0 * vs[a])
        .collect();
    let (low, high) = config.rotation_interval;
    let (low, high) = if low.is_finite() && high.is_finite() {
        (low.min(high), low.max(high))
    } else {
        (f64::NEG_INFINITY, f64::INFINITY)
    };
    let reach: Vec<f64> = if config.uniform_3d_rotation && d == 3 {
        let norm = half.iter().map(|h| h * h).sum::<f64>().sqrt();
        vec![norm; d]
    } else if d >= 2 {
        let (y, x) = (d - 2, d - 1);
        let mut r = half.clone();
        r[y] = max_rotated_extent(low, high, half[y], half[x]);
        r[x] = max_rotated_extent(low, high, half[x], half[y]);
        r
    } else {
        half.clone()
    };
    let raw: Vec<usize> = (0..d)
        .map(|a| {
            let sigma = config
                .control_point_displacement_sigma
                .get(a)
                .copied()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(0.0);
            let need = (reach[a] - half[a]) / vs[a] + 3.0 * sigma / vs[a];
            (need - 1e-9).ceil().max(0.0) as usize
        })
        .collect();
    (0..d)
        .map(|a| {
            (0..d)
                .filter(|&b| shape[b] == shape[a] && same_size(vs[a], vs[b]))
                .map(|b| raw[b])
                .max()
                .unwrap_or(raw[a])
        })
        .collect()
}

/// Spatial shape lifted to (z, y, x), with z = 1 for 2D data.
pub(super) fn lift(spatial: &[usize]) -> [usize; 3] {
    match spatial {
        [y, x] => [1, *y, *x],
        [z, y, x] => [*z, *y, *x],
        _ => [1, 1, 1],
    }
}

/// Adds `w` to the weight of control point `idx`.
pub(super) fn add_weight(ws: &mut Vec<(usize, f64)>, idx: usize, w: f64) {
    match ws.iter_mut().find(|(i, _)| *i == idx) {
        Some(entry) => entry.1 += w,
        None => ws.push((idx, w)),
    }
}

/// Catmull-Rom weights of `n` control points (ends repeated) at control coordinate `t`.
pub(super) fn catmull_rom(n: usize, t: f64) -> Vec<(usize, f64)> {
    if n <= 1 {
        return vec![(0, 1.0)];
    }
    let last = n - 1;
    let t = t.clamp(0.0, last as f64);
    let i = (t.floor() as usize).min(last - 1);
    let f = t - i as f64;
    let (f2, f3) = (f * f, f * f * f);
    let w = [
        (-f3 + 2.0 * f2 - f) / 2.0,
        (3.0 * f3 - 5.0 * f2 + 2.0) / 2.0,
        (-3.0 * f3 + 4.0 * f2 + f) / 2.0,
        (f3 - f2) / 2.0,
    ];
    let mut out = Vec::with_capacity(4);
    for (k, wk) in w.iter().enumerate() {
        let idx = (i + k).saturating_sub(1).min(last);
        add_weight(&mut out, idx, *wk);
    }
    out
}

/// Per output index along one axis of length `len`, the weights of the `n` control points:
/// Catmull-Rom on a grid subsampled by `subsample`, then linear up to full resolution.
pub(super) fn axis_weights(len: usize, n: usize, subsample: usize) -> Vec<Vec<(usize, f64)>> {
    let to_control = |pos: f64, span: usize| {
        if span <= 1 {
            0.0
        } else {
            pos * n.saturating_sub(1) as f64 / (span - 1) as f64
        }
    };
    let sub_len = if subsample > 1 && len > 1 {
        ((len - 1).div_ceil(subsample) + 1).min(len)
    } else {
        len
    };
    if sub_len == len {
        return (0..len)
            .map(|i| catmull_rom(n, to_control(i as f64, len)))
            .collect();
    }
    (0..len)
        .map(|i| {
            let u = i as f64 * (sub_len - 1) as f64 / (len - 1) as f64;
            let u0 = (u.floor() as usize).min(sub_len - 2);
            let fr = u - u0 as f64;
            let mut ws = Vec::with_capacity(8);
            for (k, wk) in [(u0, 1.0 - fr), (u0 + 1, fr)] {
                for (idx, w) in catmull_rom(n, to_control(k as f64, sub_len)) {
                    add_weight(&mut ws, idx, w * wk);
                }
            }
            ws
        })
        .collect()
}

/// Output-to-source rotation in voxel coordinates, (z, y, x) order.
pub(super) fn rotation<R: Rng + ?Sized>(
    cfg: &ElasticAugmentConfig,
    vs: &[f64; 3],
    rng: &mut R,
) -> [[f64; 3]; 3] {
    let world = if cfg.uniform_3d_rotation {
        // Shoemake's uniformly random unit quaternion.
        let (u1, u2, u3) = (rng.gen::<f64>(), rng.gen::<f64>(), rng.gen::<f64>());
        let (a, b) = ((1.0 - u1).sqrt(), u1.sqrt());
        let (x, y) = (a * (2.0 * PI * u2).sin(), a * (2.0 * PI * u2).cos());
        let (z, w) = (b * (2.0 * PI * u3).sin(), b * (2.0 * PI * u3).cos());
        [
            [
                1.0 - 2.0 * (y * y + z * z),
                2.0 * (x * y - w * z),
                2.0 * (x * z + w * y),
            ],
            [
                2.0 * (x * y + w * z),
                1.0 - 2.0 * (x * x + z * z),
                2.0 * (y * z - w * x),
            ],
            [
                2.0 * (x * z - w * y),
                2.0 * (y * z + w * x),
                1.0 - 2.0 * (x * x + y * y),
            ],
        ]
    } else {
        let (low, high) = cfg.rotation_interval;
        let theta = uniform(rng, low, high);
        let (s, c) = theta.sin_cos();
        [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]
    };
    let mut r = [[0.0; 3]; 3];
    for a in 0..3 {
        for b in 0..3 {
            r[a][b] = world[a][b] * vs[b] / vs[a];
        }
    }
    r
}

/// Flat offsets and weights of the (up to 8) in-bounds voxels for linear interpolation at `q`.
pub(super) fn linear_taps(q: &[f64; 3], dims: &[usize; 3]) -> ([(usize, f64); 8], usize) {
    let mut taps = [(0usize, 0.0f64); 8];
    let mut count = 0;
    let base = [q[0].floor(), q[1].floor(), q[2].floor()];
    let frac = [q[0] - base[0], q[1] - base[1], q[2] - base[2]];
    'corners: for corner in 0..8usize {
        let mut w = 1.0;
        let mut off = 0usize;
        for a in 0..3 {
            let bit = (corner >> (2 - a)) & 1;
            let wa = if bit == 1 { frac[a] } else { 1.0 - frac[a] };
            let i = base[a] + bit as f64;
            if wa == 0.0 || !(i >= 0.0 && i < dims[a] as f64) {
                continue 'corners;
            }
            w *= wa;
            off = off * dims[a] + i as usize;
        }
        taps[count] = (off, w);
        count += 1;
    }
    (taps, count)
}

/// Flat offset of the voxel nearest to `q`, if inside `dims`.
pub(super) fn nearest(q: &[f64; 3], dims: &[usize; 3]) -> Option<usize> {
    let mut off = 0usize;
    for a in 0..3 {
        let i = q[a].round();
        if !(i >= 0.0 && i < dims[a] as f64) {
            return None;
        }
        off = off * dims[a] + i as usize;
    }
    Some(off)
}

/// Elastic deformation plus rotation; shrinks every spatial axis by `2·margin`.
pub(super) fn elastic<R: Rng + ?Sized>(
    s: Sample,
    cfg: &ElasticAugmentConfig,
    margin: &[usize],
    voxel_size_nm: &[f64],
    rng: &mut R,
) -> Result<Sample, AugmentError> {
    let d = margin.len();
    let shrink = |shape: &[usize]| -> Result<Vec<usize>, AugmentError> {
        shape[1..]
            .iter()
            .zip(margin)
            .map(|(n, m)| {
                m.checked_mul(2)
                    .and_then(|mm| n.checked_sub(mm))
                    .filter(|v| *v > 0)
                    .ok_or_else(|| {
                        input_error(format!(
                            "shape {shape:?} is too small for an elastic margin of {margin:?}"
                        ))
                    })
            })
            .collect()
    };
    let raw_out_sp = shrink(s.raw.shape())?;
    let gt_out_sp = shrink(s.gt.shape())?;
    if rng.gen::<f64>() >= cfg.augmentation_probability {
        return Ok(Sample {
            raw: crop_centre(s.raw, &raw_out_sp)?,
            gt: crop_centre(s.gt, &gt_out_sp)?,
            mask: crop_centre(s.mask, &gt_out_sp)?,
        });
    }
    let lifted = 3 - d;
    let at = |v: &[f64], a: usize, default: f64| {
        if a < lifted {
            default
        } else {
            v.get(a - lifted).copied().unwrap_or(default)
        }
    };
    let vs = [0, 1, 2].map(|a| voxel_or_one(Some(&at(voxel_size_nm, a, 1.0))));
    let spacing_i: Vec<f64> = cfg
        .control_point_spacing
        .iter()
        .map(|s| *s as f64)
        .collect();
    let spacing = [0, 1, 2].map(|a| at(&spacing_i, a, 1.0).max(1.0));
    let sigma = [0, 1, 2].map(|a| at(&cfg.control_point_displacement_sigma, a, 0.0) / vs[a]);
    let raw_in = lift(&s.raw.shape()[1..]);
    let gt_in = lift(&s.gt.shape()[1..]);
    let raw_out = lift(&raw_out_sp);
    let gt_out = lift(&gt_out_sp);
    let (nc, ngc) = (s.raw.shape()[0], s.gt.shape()[0]);

    // Control-point displacements (voxels), truncated at 3σ.
    let controls = [0, 1, 2].map(|a| {
        if a < lifted {
            1
        } else {
            ((raw_out[a] as f64 / spacing[a]).round() as usize).max(1) + 1
        }
    });
    let n_controls = controls[0] * controls[1] * controls[2];
    let mut gauss = Gauss::default();
    let mut control_values: [Option<Vec<f64>>; 3] = [None, None, None];
    for (a, slot) in control_values.iter_mut().enumerate() {
        if sigma[a] > 0.0 {
            *slot = Some(
                (0..n_controls)
                    .map(|_| gauss.next(rng).clamp(-3.0, 3.0) * sigma[a])
                    .collect(),
            );
        }
    }
    let rot = rotation(cfg, &vs, rng);

    // Separable interpolation of the control grid: x, then y, kept per control z; z per slice.
    let sub = cfg.subsample.max(1) as usize;
    let wz = axis_weights(raw_out[0], controls[0], sub);
    let wy = axis_weights(raw_out[1], controls[1], sub);
    let wx = axis_weights(raw_out[2], controls[2], sub);
    let [cz, cy, cx] = controls;
    let [_, yo, xo] = raw_out;
    let plane = yo * xo;
    let partial: [Option<Vec<f64>>; 3] = control_values.map(|values| {
        values.map(|c| {
            let mut b = vec![0.0; cz * cy * xo];
            for row in 0..cz * cy {
                for (px, ws) in wx.iter().enumerate() {
                    b[row * xo + px] = ws.iter().map(|(k, w)| w * c[row * cx + k]).sum();
                }
            }
            let mut a = vec![0.0; cz * plane];
            for i in 0..cz {
                for (py, ws) in wy.iter().enumerate() {
                    for &(j, w) in ws {
                        let src = &b[(i * cy + j) * xo..(i * cy + j + 1) * xo];
                        let dst = &mut a[i * plane + py * xo..i * plane + (py + 1) * xo];
                        for (o, v) in dst.iter_mut().zip(src) {
                            *o += w * v;
                        }
                    }
                }
            }
            a
        })
    });

    // Row-major data (copied once if an earlier augment left strided views).
    let (raw_std, gt_std, mask_std) = (standard(s.raw), standard(s.gt), standard(s.mask));
    let layout = || input_error("elastic input is not contiguous".to_string());
    let raw_data = raw_std.as_slice().ok_or_else(layout)?;
    let gt_data = gt_std.as_slice().ok_or_else(layout)?;
    let mask_data = mask_std.as_slice().ok_or_else(layout)?;
    let vol_in = raw_in.iter().product::<usize>();
    let vol_out = raw_out.iter().product::<usize>();
    let gvol_in = gt_in.iter().product::<usize>();
    let gvol_out = gt_out.iter().product::<usize>();
    let mut raw_res = vec![0.0f32; nc * vol_out];
    let mut gt_res = vec![0u64; ngc * gvol_out];
    let mut mask_res = vec![0.0f32; ngc * gvol_out];
    let centre = |n: usize| (n as f64 - 1.0) / 2.0;
    let c_in = raw_in.map(centre);
    let c_out = raw_out.map(centre);
    let off_in = [0, 1, 2].map(|a| ((raw_in[a] - gt_in[a].min(raw_in[a])) / 2) as f64);
    let off_out = [0, 1, 2].map(|a| (raw_out[a] - gt_out[a].min(raw_out[a])) / 2);
    let inside_gt = |p: usize, a: usize| p.checked_sub(off_out[a]).filter(|g| *g < gt_out[a]);
    let mut slice: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (pz, wz_row) in wz.iter().enumerate() {
        for (a, field) in partial.iter().enumerate() {
            if let Some(field) = field {
                let dst = &mut slice[a];
                dst.clear();
                dst.resize(plane, 0.0);
                for &(i, w) in wz_row {
                    for (o, v) in dst.iter_mut().zip(&field[i * plane..(i + 1) * plane]) {
                        *o += w * v;
                    }
                }
                // Catmull-Rom can overshoot the control values a little: keep within the margin.
                let limit = 3.0 * sigma[a];
                for o in dst.iter_mut() {
                    *o = o.clamp(-limit, limit);
                }
            }
        }
        let gz = inside_gt(pz, 0);
        for py in 0..yo {
            let gy = inside_gt(py, 1);
            for px in 0..xo {
                let idx = py * xo + px;
                let rel = [
                    pz as f64 - c_out[0],
                    py as f64 - c_out[1],
                    px as f64 - c_out[2],
                ];
                let q = [0, 1, 2].map(|a| {
                    let disp = slice[a].get(idx).copied().unwrap_or(0.0);
                    c_in[a] + rot[a][0] * rel[0] + rot[a][1] * rel[1] + rot[a][2] * rel[2] + disp
                });
                let (taps, count) = linear_taps(&q, &raw_in);
                let out_idx = pz * plane + idx;
                for c in 0..nc {
                    let base = c * vol_in;
                    let acc: f64 = taps[..count]
                        .iter()
                        .map(|(o, w)| w * f64::from(raw_data[base + o]))
                        .sum();
                    raw_res[c * vol_out + out_idx] = acc as f32;
                }
                if let (Some(gz), Some(gy), Some(gx)) = (gz, gy, inside_gt(px, 2)) {
                    let qg = [q[0] - off_in[0], q[1] - off_in[1], q[2] - off_in[2]];
                    if let Some(src) = nearest(&qg, &gt_in) {
                        let dst = (gz * gt_out[1] + gy) * gt_out[2] + gx;
                        for c in 0..ngc {
                            gt_res[c * gvol_out + dst] = gt_data[c * gvol_in + src];
                            mask_res[c * gvol_out + dst] = mask_data[c * gvol_in + src];
                        }
                    }
                }
            }
        }
    }
    let with_channels = |c: usize, sp: &[usize]| -> Vec<usize> {
        std::iter::once(c).chain(sp.iter().copied()).collect()
    };
    let shape_error = |e: ndarray::ShapeError| input_error(format!("elastic output: {e}"));
    Ok(Sample {
        raw: ArrayD::from_shape_vec(IxDyn(&with_channels(nc, &raw_out_sp)), raw_res)
            .map_err(shape_error)?,
        gt: ArrayD::from_shape_vec(IxDyn(&with_channels(ngc, &gt_out_sp)), gt_res)
            .map_err(shape_error)?,
        mask: ArrayD::from_shape_vec(IxDyn(&with_channels(ngc, &gt_out_sp)), mask_res)
            .map_err(shape_error)?,
    })
}
