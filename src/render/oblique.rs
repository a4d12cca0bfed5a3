//! Rotated cross-sections: which chunks a rotated plane crosses and where on the panel,
//! the per-chunk affine maps from panel pixels to voxels the GPU samples with, and the CPU
//! composition of a rotated slice (nearest voxel, finest loaded level per pixel) that the
//! GPU is tested against.

use std::collections::HashMap;
use std::sync::Arc;

use super::cache::{Chunk, ChunkCache, ChunkKey};
use super::gather::{Cell, CellAffine, CellSource, GatherPlan};
use super::layer::{LayerData, LayerKind};
use super::slice::{
    blank_values, copy_voxel, note_error, pick_level_for, slice_values, status, wanted_of,
    LayerSlice, PixelRect, SliceView, Wanted,
};

/// The continuous voxel coordinate (z, y, x) of `level` at panel position (`x`, `y`).
fn voxel_coord(layer: &LayerData, level: usize, view: &SliceView, x: f64, y: f64) -> [f64; 3] {
    let l = &layer.levels[level];
    let p = view.world_at(x, y);
    std::array::from_fn(|a| (p.0[a] - l.offset_nm[a]) / l.voxel_size_nm[a])
}

/// The voxel of `level` a pixel centre at panel position (`x`, `y`) samples, or `None`
/// outside the level.
fn voxel_at(layer: &LayerData, level: usize, view: &SliceView, x: f64, y: f64) -> Option<[u64; 3]> {
    let l = &layer.levels[level];
    let c = voxel_coord(layer, level, view, x, y);
    let mut out = [0u64; 3];
    for a in 0..3 {
        let f = c[a].floor();
        if !(f >= 0.0 && f < l.shape[a] as f64) {
            return None;
        }
        out[a] = f as u64;
    }
    Some(out)
}

/// The affine map from panel pixel positions to the continuous voxel coordinates of
/// `level`, relative to voxel `origin` (`size` voxels from it are inside).
fn affine(
    layer: &LayerData,
    level: usize,
    view: &SliceView,
    origin: [u64; 3],
    size: [u64; 3],
) -> ([f32; 3], [f32; 3], [f32; 3], [u32; 3]) {
    let l = &layer.levels[level];
    let [u, v, _] = view.directions();
    let at0 = view.world_at(0.0, 0.0);
    let o = std::array::from_fn(|a| {
        ((at0.0[a] - l.offset_nm[a]) / l.voxel_size_nm[a] - origin[a] as f64) as f32
    });
    let du = std::array::from_fn(|a| (view.nm_per_px * u[a] / l.voxel_size_nm[a]) as f32);
    let dv = std::array::from_fn(|a| (view.nm_per_px * v[a] / l.voxel_size_nm[a]) as f32);
    (o, du, dv, size.map(|s| s.min(u64::from(u32::MAX)) as u32))
}

/// The chunks of `level` that the plane of `view` crosses inside the panel, with the
/// rectangle of pixels around each one's cut (grid order).
pub fn crossed_chunks(
    layer: &LayerData,
    level: usize,
    view: &SliceView,
) -> Vec<([u64; 3], PixelRect)> {
    let l = &layer.levels[level];
    let (w, h) = (f64::from(view.width_px), f64::from(view.height_px));
    let corners = [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)]
        .map(|(x, y)| voxel_coord(layer, level, view, x, y));
    let grid: [u64; 3] = std::array::from_fn(|a| l.shape[a].div_ceil(l.chunk[a].max(1)));
    let range: [(u64, u64); 3] = std::array::from_fn(|a| {
        let lo = corners.iter().map(|c| c[a]).fold(f64::INFINITY, f64::min);
        let hi = corners
            .iter()
            .map(|c| c[a])
            .fold(f64::NEG_INFINITY, f64::max);
        let chunk = l.chunk[a].max(1) as f64;
        let first = (lo / chunk).floor().max(0.0);
        let last = (hi / chunk).floor().min(grid[a] as f64 - 1.0);
        if last < first || grid[a] == 0 {
            (1, 0)
        } else {
            (first as u64, last as u64)
        }
    });
    let n = view.directions()[2];
    // Signed distance (nm) of a voxel-space point from the plane.
    let depth = |p: [f64; 3]| -> f64 {
        (0..3)
            .map(|a| (l.offset_nm[a] + p[a] * l.voxel_size_nm[a] - view.center.0[a]) * n[a])
            .sum()
    };
    let pixel = |p: [f64; 3]| {
        view.pixel_of(&super::layer::WorldNm(std::array::from_fn(|a| {
            l.offset_nm[a] + p[a] * l.voxel_size_nm[a]
        })))
    };
    let mut out = Vec::new();
    for kz in range[0].0..=range[0].1 {
        if range[0].0 > range[0].1 {
            break;
        }
        for ky in range[1].0..=range[1].1 {
            if range[1].0 > range[1].1 {
                break;
            }
            for kx in range[2].0..=range[2].1 {
                if range[2].0 > range[2].1 {
                    break;
                }
                let k = [kz, ky, kx];
                let lo: [f64; 3] = std::array::from_fn(|a| (k[a] * l.chunk[a]) as f64);
                let hi: [f64; 3] =
                    std::array::from_fn(|a| (((k[a] + 1) * l.chunk[a]).min(l.shape[a])) as f64);
                let corner = |i: usize| -> [f64; 3] {
                    std::array::from_fn(|a| if i >> a & 1 == 1 { hi[a] } else { lo[a] })
                };
                let d: Vec<f64> = (0..8).map(|i| depth(corner(i))).collect();
                // Where the plane cuts the box's edges: the corners of the cut.
                let (mut x0, mut y0, mut x1, mut y1) = (
                    f64::INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NEG_INFINITY,
                );
                let mut any = false;
                for i in 0..8usize {
                    for a in 0..3 {
                        let j = i | 1 << a;
                        if j == i {
                            continue;
                        }
                        let (di, dj) = (d[i], d[j]);
                        if (di > 0.0 && dj > 0.0) || (di < 0.0 && dj < 0.0) {
                            continue;
                        }
                        let t = if di == dj { 0.0 } else { di / (di - dj) };
                        let (ci, cj) = (corner(i), corner(j));
                        let p: [f64; 3] = std::array::from_fn(|b| ci[b] + t * (cj[b] - ci[b]));
                        let (px, py) = pixel(p);
                        x0 = x0.min(px);
                        y0 = y0.min(py);
                        x1 = x1.max(px);
                        y1 = y1.max(py);
                        any = true;
                    }
                }
                if !any {
                    continue;
                }
                // Pixels whose centres may fall in the cut (one more on each side against
                // rounding), within the panel.
                let fx0 = (x0 - 1.0).floor().max(0.0);
                let fy0 = (y0 - 1.0).floor().max(0.0);
                let fx1 = (x1 + 1.0).ceil().min(w);
                let fy1 = (y1 + 1.0).ceil().min(h);
                if fx1 <= fx0 || fy1 <= fy0 {
                    continue;
                }
                out.push((
                    k,
                    PixelRect {
                        x0: fx0 as u32,
                        y0: fy0 as u32,
                        width: (fx1 - fx0) as u32,
                        height: (fy1 - fy0) as u32,
                    },
                ));
            }
        }
    }
    out
}

/// The whole-chunk key of chunk `index` of `level`.
fn chunk_key(uid: u64, level: usize, index: [u64; 3], labels: bool) -> ChunkKey {
    ChunkKey {
        layer: uid,
        level,
        index,
        labels,
        slab: None,
    }
}

/// Draws `window` of the rotated `view` of `layer` from whole chunks in `cache` on the
/// CPU (the reference of the GPU's sampling: each pixel centre's nearest voxel of the
/// finest loaded level, coarser ones standing in), and lists the chunks still wanted.
pub fn compose_oblique(
    uid: u64,
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    window: PixelRect,
    cache: &ChunkCache,
) -> (LayerSlice, Wanted) {
    let (w, h) = (window.width as usize, window.height as usize);
    let pixels = w * h;
    let chosen = pick_level_for(layer, view);
    let coarsest = layer.levels.len() - 1;
    let (labels, channels, mut lvals, mut fvals) = blank_values(layer, kind, pixels);
    let mut stat = vec![status::OUTSIDE; pixels];
    let mut memo: HashMap<ChunkKey, Option<Arc<Chunk>>> = HashMap::new();
    let mut wanted_chosen: Vec<ChunkKey> = Vec::new();
    let mut wanted_coarse: Vec<ChunkKey> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let (mut coarser, mut loading) = (0usize, 0usize);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (px, py) = (
                f64::from(window.x0) + x as f64 + 0.5,
                f64::from(window.y0) + y as f64 + 0.5,
            );
            for level in chosen..=coarsest {
                let gi = level - chosen;
                let Some(v) = voxel_at(layer, level, view, px, py) else {
                    if gi == 0 {
                        break;
                    }
                    if level == coarsest {
                        stat[i] = status::LOADING;
                        loading += 1;
                    }
                    continue;
                };
                let l = &layer.levels[level];
                let index: [u64; 3] = std::array::from_fn(|a| v[a] / l.chunk[a]);
                let key = chunk_key(uid, level, index, labels);
                let chunk = match memo.get(&key) {
                    Some(c) => c.clone(),
                    None => {
                        let c = cache.get(&key);
                        if c.is_none() {
                            if gi == 0 {
                                wanted_chosen.push(key);
                            }
                            if level == coarsest {
                                wanted_coarse.push(key);
                            }
                        }
                        memo.insert(key, c.clone());
                        c
                    }
                };
                match chunk.as_deref() {
                    Some(Chunk::Ready(values)) => {
                        let s = values.shape();
                        let local: [usize; 3] =
                            std::array::from_fn(|a| (v[a] % l.chunk[a]) as usize);
                        let off = (local[0] * s[1] + local[1]) * s[2] + local[2];
                        let to = (&mut lvals[..], &mut fvals[..]);
                        copy_voxel(values, off, labels, channels, (pixels, i), to);
                        stat[i] = status::DATA;
                        if gi > 0 {
                            coarser += 1;
                        }
                        break;
                    }
                    Some(Chunk::Failed(message)) if gi == 0 => {
                        stat[i] = status::FAILED;
                        note_error(&mut errors, message);
                        break;
                    }
                    _ => {}
                }
                if level == coarsest {
                    stat[i] = status::LOADING;
                    loading += 1;
                }
            }
        }
    }
    let wanted = wanted_of(
        layer,
        kind,
        view,
        chosen,
        wanted_chosen.into_iter(),
        wanted_coarse.into_iter(),
    );
    (
        LayerSlice {
            width: window.width,
            height: window.height,
            values: slice_values(labels, channels, lvals, fvals),
            status: stat,
            level: chosen,
            coarser,
            loading,
            errors,
        },
        wanted,
    )
}

/// Plans the rotated `view` of `layer` for the GPU: cells drawn in order over each
/// other, each with its affine map to voxels — the panel as outside, the chosen level's
/// extent as loading, then the loaded chunks of each level from the coarsest to the
/// chosen one (finer ones drawn over their stand-ins), then the chosen level's failed
/// chunks. Also lists the chunks still wanted.
pub fn plan_oblique(
    uid: u64,
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    cache: &ChunkCache,
) -> (GatherPlan, Wanted) {
    let chosen = pick_level_for(layer, view);
    let coarsest = layer.levels.len() - 1;
    let labels = kind == LayerKind::Segmentation && layer.channels == 1;
    let channels = if labels { 1 } else { layer.channels.max(1) };
    let whole = PixelRect::whole(view);
    let top = &layer.levels[chosen];
    let clip = affine(layer, chosen, view, [0; 3], top.shape);
    let everywhere = CellAffine {
        origin: [0.0; 3],
        du: [0.0; 3],
        dv: [0.0; 3],
        size: [1; 3],
        clip_origin: [0.0; 3],
        clip_du: [0.0; 3],
        clip_dv: [0.0; 3],
        clip_size: [1; 3],
    };
    let with = |a: ([f32; 3], [f32; 3], [f32; 3], [u32; 3])| CellAffine {
        origin: a.0,
        du: a.1,
        dv: a.2,
        size: a.3,
        clip_origin: clip.0,
        clip_du: clip.1,
        clip_dv: clip.2,
        clip_size: clip.3,
    };
    let mut cells = vec![
        Cell {
            rect: whole,
            source: CellSource::Outside,
            affine: Some(everywhere),
        },
        Cell {
            rect: whole,
            source: CellSource::Loading,
            affine: Some(with(clip)),
        },
    ];
    let mut wanted_chosen: Vec<ChunkKey> = Vec::new();
    let mut wanted_coarse: Vec<ChunkKey> = Vec::new();
    let mut failed: Vec<Cell> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut missing: Vec<PixelRect> = Vec::new();
    for level in (chosen..=coarsest).rev() {
        let slot = level - chosen;
        let l = &layer.levels[level];
        for (index, rect) in crossed_chunks(layer, level, view) {
            let key = chunk_key(uid, level, index, labels);
            let origin: [u64; 3] = std::array::from_fn(|a| index[a] * l.chunk[a]);
            let nominal: [u64; 3] = std::array::from_fn(|a| l.chunk[a].min(l.shape[a] - origin[a]));
            match cache.get(&key) {
                Some(chunk) => match chunk.as_ref() {
                    Chunk::Ready(values) => {
                        let s = values.shape();
                        let size = [s[0] as u64, s[1] as u64, s[2] as u64];
                        cells.push(Cell {
                            rect,
                            source: CellSource::Chunk { key, slot, chunk },
                            affine: Some(with(affine(layer, level, view, origin, size))),
                        });
                    }
                    Chunk::Failed(message) => {
                        if slot == 0 {
                            note_error(&mut errors, message);
                            failed.push(Cell {
                                rect,
                                source: CellSource::Failed,
                                affine: Some(with(affine(layer, level, view, origin, nominal))),
                            });
                        }
                    }
                },
                None => {
                    if slot == 0 {
                        missing.push(rect);
                        wanted_chosen.push(key);
                    }
                    if level == coarsest {
                        wanted_coarse.push(key);
                    }
                }
            }
        }
    }
    cells.extend(failed);
    let wanted = wanted_of(
        layer,
        kind,
        view,
        chosen,
        wanted_chosen.into_iter(),
        wanted_coarse.into_iter(),
    );
    let mut plan = GatherPlan {
        width: view.width_px,
        height: view.height_px,
        labels,
        channels,
        fill: layer.fill_value,
        level: chosen,
        voxel_tables: Vec::new(),
        normals: Vec::new(),
        axes: view.plane.axes(),
        cells,
        coarser: 0,
        loading: 0,
        errors,
        oblique: true,
    };
    // Counts from every other pixel when some chunk of the chosen level is missing (they
    // only tell how much is still loading; exact when nothing is).
    if !missing.is_empty() {
        let map = plan.cell_map_every(2);
        let scale = f64::from(plan.width * plan.height) / map.len().max(1) as f64;
        let (mut loading, mut coarser) = (0usize, 0usize);
        for c in map {
            match plan.cells.get(c as usize).map(|c| &c.source) {
                Some(CellSource::Loading) => loading += 1,
                Some(CellSource::Chunk { slot, .. }) if *slot > 0 => coarser += 1,
                _ => {}
            }
        }
        plan.loading = (loading as f64 * scale).round() as usize;
        plan.coarser = (coarser as f64 * scale).round() as usize;
        // Whether anything loads at all is exact: every pixel where a missing chunk is.
        if plan.loading == 0 && missing.iter().any(|r| plan.loads_in(*r)) {
            plan.loading = 1;
        }
    }
    (plan, wanted)
}

/// The polygon (in order around it) where the plane through `point` with unit normal
/// `normal` cuts the box `lo`..`hi` (world z, y, x); `along` is a direction in the plane
/// the points are ordered from.
pub fn plane_cut(
    lo: [f64; 3],
    hi: [f64; 3],
    point: [f64; 3],
    normal: [f64; 3],
    along: [f64; 3],
) -> Vec<[f64; 3]> {
    let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let corner = |i: usize| -> [f64; 3] {
        std::array::from_fn(|a| if i >> a & 1 == 1 { hi[a] } else { lo[a] })
    };
    let depth = |p: [f64; 3]| dot(std::array::from_fn(|a| p[a] - point[a]), normal);
    let mut out: Vec<[f64; 3]> = Vec::new();
    for i in 0..8usize {
        for a in 0..3 {
            let j = i | 1 << a;
            if j == i {
                continue;
            }
            let (ci, cj) = (corner(i), corner(j));
            let (di, dj) = (depth(ci), depth(cj));
            if (di > 0.0 && dj > 0.0) || (di < 0.0 && dj < 0.0) || di == dj {
                continue;
            }
            let t = di / (di - dj);
            let p: [f64; 3] = std::array::from_fn(|b| ci[b] + t * (cj[b] - ci[b]));
            // A corner on the plane is reached from several edges.
            let scale = (0..3).map(|a| hi[a] - lo[a]).fold(1e-9, f64::max);
            if !out
                .iter()
                .any(|q| (0..3).all(|a| (p[a] - q[a]).abs() <= 1e-9 * scale))
            {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        return out;
    }
    let n = out.len() as f64;
    let mid: [f64; 3] = std::array::from_fn(|a| out.iter().map(|p| p[a]).sum::<f64>() / n);
    let other = [
        normal[1] * along[2] - normal[2] * along[1],
        normal[2] * along[0] - normal[0] * along[2],
        normal[0] * along[1] - normal[1] * along[0],
    ];
    let angle = |p: &[f64; 3]| {
        let d: [f64; 3] = std::array::from_fn(|a| p[a] - mid[a]);
        dot(d, other).atan2(dot(d, along))
    };
    out.sort_by(|p, q| angle(p).total_cmp(&angle(q)));
    out
}

#[cfg(test)]
mod cut_tests {
    #[test]
    fn a_tilted_plane_cuts_the_unit_box_in_an_ordered_polygon() {
        // The plane z = x through the box's centre cuts a rectangle.
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let cut = super::plane_cut([0.0; 3], [1.0; 3], [0.5; 3], [s, 0.0, -s], [0.0, 1.0, 0.0]);
        assert_eq!(cut.len(), 4);
        for p in &cut {
            assert!((p[0] - p[2]).abs() < 1e-12, "{p:?}");
        }
        // In order around the polygon: consecutive corners share an edge of length 1 or √2.
        for k in 0..4 {
            let (p, q) = (cut[k], cut[(k + 1) % 4]);
            let d = (0..3).map(|a| (p[a] - q[a]).powi(2)).sum::<f64>().sqrt();
            assert!(
                (d - 1.0).abs() < 1e-9 || (d - 2f64.sqrt()).abs() < 1e-9,
                "{d}"
            );
        }
    }
}
