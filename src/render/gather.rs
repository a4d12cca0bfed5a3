//! Slices the GPU gathers from chunks: instead of composing every pixel on the CPU, a
//! panel's layer is cut into rectangles ("cells") within which every pixel shows the same
//! chunk at every scale level, and each cell names the chunk the GPU samples there (the
//! finest one loaded, coarser ones standing in), or says the cell is loading, failed or
//! outside. Per-column and per-row tables give each pixel's voxel inside its chunk, computed
//! here exactly as [`super::slice::compose`] computes them, so the GPU draws the same
//! voxels bit for bit. The CPU work per frame depends on the number of chunks in view, not
//! on the number of pixels.

use std::collections::HashSet;
use std::sync::Arc;

use super::cache::{Chunk, ChunkCache, ChunkKey};
use super::layer::{ChunkValues, LayerData, LayerKind};
use super::slice::{
    level_grid, note_error, pick_level_moving, status, wanted_of, LayerSlice, PixelRect,
    PixelValue, SliceValues, SliceView, Wanted,
};

/// What a cell of a gathered slice shows.
#[derive(Debug, Clone, PartialEq)]
pub enum CellSource {
    /// Voxels of a loaded chunk, of level `slot` of the plan's levels (0: the chosen one).
    Chunk {
        /// The chunk (as the cache and the GPU store key it).
        key: ChunkKey,
        /// Index into the plan's levels (its rows of the voxel tables).
        slot: usize,
        /// The voxels.
        chunk: Arc<Chunk>,
    },
    /// The chosen level's chunk could not be read.
    Failed,
    /// Inside the layer, no level loaded yet.
    Loading,
    /// Outside the layer.
    Outside,
}

/// A rectangle of pixels that all show the same thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Its pixels.
    pub rect: PixelRect,
    /// What they show.
    pub source: CellSource,
    /// On a rotated plane: which of its pixels it draws and the voxel each samples (the
    /// cells of such plans overlap and are drawn in order).
    pub affine: Option<CellAffine>,
}

/// The affine maps of a cell of a rotated plane from panel positions (pixel centres) to
/// continuous voxel coordinates (z, y, x): one to its chunk's voxels, one to the chosen
/// level's. A pixel is drawn when both fall inside their sizes; it samples the chunk's
/// voxel `floor(origin + x·du + y·dv)`, computed in `f32` in this order on the CPU and the
/// GPU alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellAffine {
    /// Chunk voxel coordinate at panel position (0, 0).
    pub origin: [f32; 3],
    /// Its change per pixel to the right.
    pub du: [f32; 3],
    /// Its change per pixel down.
    pub dv: [f32; 3],
    /// The chunk's voxels (its stored shape).
    pub size: [u32; 3],
    /// The chosen level's voxel coordinate at panel position (0, 0).
    pub clip_origin: [f32; 3],
    /// Its change per pixel to the right.
    pub clip_du: [f32; 3],
    /// Its change per pixel down.
    pub clip_dv: [f32; 3],
    /// The chosen level's shape.
    pub clip_size: [u32; 3],
}

/// `floor(o + x·du + y·dv)` when inside `size`.
fn affine_voxel(
    o: [f32; 3],
    du: [f32; 3],
    dv: [f32; 3],
    size: [u32; 3],
    x: f32,
    y: f32,
) -> Option<[usize; 3]> {
    let mut out = [0usize; 3];
    for a in 0..3 {
        let q = (o[a] + x * du[a] + y * dv[a]).floor();
        if !(q >= 0.0 && q < size[a] as f32) {
            return None;
        }
        out[a] = q as usize;
    }
    Some(out)
}

impl CellAffine {
    /// The chunk voxel (z, y, x) pixel (`x`, `y`) samples, or `None` when the cell does
    /// not draw that pixel.
    pub fn voxel(&self, x: u32, y: u32) -> Option<[usize; 3]> {
        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
        affine_voxel(
            self.clip_origin,
            self.clip_du,
            self.clip_dv,
            self.clip_size,
            px,
            py,
        )?;
        affine_voxel(self.origin, self.du, self.dv, self.size, px, py)
    }
}

/// How to draw one layer on one panel from chunks.
#[derive(Debug, Clone)]
pub struct GatherPlan {
    /// Panel width in pixels.
    pub width: u32,
    /// Panel height in pixels.
    pub height: u32,
    /// Label ids (else floats).
    pub labels: bool,
    /// Float channels drawn (1 for labels).
    pub channels: usize,
    /// The value of pixels without data.
    pub fill: f64,
    /// The scale level chosen for this zoom.
    pub level: usize,
    /// Per level slot (chosen level first, then each coarser one): each column's voxel
    /// position inside its chunk along the panel's horizontal axis (`width` values), then
    /// each row's along the vertical axis (`height` values).
    pub voxel_tables: Vec<Vec<u32>>,
    /// Per level slot: the voxel position along the plane's normal inside the chunk's
    /// stored values (0 for a voxel-thick slab).
    pub normals: Vec<u32>,
    /// The panel's world axes (z 0, y 1, x 2) shown horizontally, vertically, along the normal.
    pub axes: [usize; 3],
    /// The cells, covering the panel without overlap.
    pub cells: Vec<Cell>,
    /// Pixels shown from a coarser level while the chosen one loads.
    pub coarser: usize,
    /// Pixels with no data yet.
    pub loading: usize,
    /// Distinct read errors of the chunks shown as failed.
    pub errors: Vec<String>,
    /// A rotated plane: the cells overlap, each with its affine map, and are drawn in
    /// order (later ones over earlier ones).
    pub oblique: bool,
}

/// Where a per-pixel chunk index changes along one axis (with 0 and `len`).
fn breaks(into: &mut Vec<u32>, cells: &[(i64, u32)]) {
    for (i, w) in cells.windows(2).enumerate() {
        if w[0].0 != w[1].0 {
            into.push(i as u32 + 1);
        }
    }
}

/// Plans `layer` (viewer id `uid`, drawn as `kind`) on `view` from what `cache` holds, and
/// lists the chunks still wanted (the same lists [`super::slice::compose`] makes).
pub fn plan(
    uid: u64,
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    cache: &ChunkCache,
) -> (GatherPlan, Wanted) {
    plan_moving(uid, layer, kind, view, 0.0, cache)
}

/// [`plan`] for a plane moving `step_nm` along its normal per frame (0 at rest): planned
/// at [`pick_level_moving`]'s level, as [`super::slice::compose_moving`] composes it.
pub fn plan_moving(
    uid: u64,
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    step_nm: f64,
    cache: &ChunkCache,
) -> (GatherPlan, Wanted) {
    if view.oblique() {
        return super::oblique::plan_oblique(uid, layer, kind, view, cache);
    }
    let whole = PixelRect::whole(view);
    let chosen = pick_level_moving(layer, view.plane, view.nm_per_px, step_nm);
    let coarsest = layer.levels.len() - 1;
    let grids: Vec<_> = (chosen..=coarsest)
        .map(|l| level_grid(layer, l, view, whole))
        .collect();
    let axes = view.plane.axes();
    let labels = kind == LayerKind::Segmentation && layer.channels == 1;
    let channels = if labels { 1 } else { layer.channels.max(1) };
    let (mut xs, mut ys) = (vec![0, view.width_px], vec![0, view.height_px]);
    for g in &grids {
        breaks(&mut xs, &g.cols);
        breaks(&mut ys, &g.rows);
    }
    xs.sort_unstable();
    xs.dedup();
    ys.sort_unstable();
    ys.dedup();
    let mut cells = Vec::new();
    let mut wanted_chosen: Vec<ChunkKey> = Vec::new();
    let mut wanted_coarse: Vec<ChunkKey> = Vec::new();
    let mut seen: HashSet<ChunkKey> = HashSet::new();
    let mut errors: Vec<String> = Vec::new();
    let (mut coarser, mut loading) = (0usize, 0usize);
    for yw in ys.windows(2) {
        for xw in xs.windows(2) {
            let rect = PixelRect {
                x0: xw[0],
                y0: yw[0],
                width: xw[1] - xw[0],
                height: yw[1] - yw[0],
            };
            if rect.width == 0 || rect.height == 0 {
                continue;
            }
            let area = (rect.width * rect.height) as usize;
            let mut source = CellSource::Loading;
            for (gi, g) in grids.iter().enumerate() {
                let level = chosen + gi;
                let (hc, vc) = (g.cols[rect.x0 as usize].0, g.rows[rect.y0 as usize].0);
                if hc < 0 || vc < 0 || g.normal.0 < 0 {
                    // Outside the chosen level is outside; a coarser level that ends a
                    // little earlier (odd sizes) cannot stand in here.
                    if gi == 0 {
                        source = CellSource::Outside;
                        break;
                    }
                    continue;
                }
                let key = g.slab_key(uid, level, axes, (hc, vc), labels);
                match cache.get(&key) {
                    Some(chunk) => match chunk.as_ref() {
                        Chunk::Ready(_) => {
                            source = CellSource::Chunk {
                                key,
                                slot: gi,
                                chunk,
                            };
                            break;
                        }
                        Chunk::Failed(message) => {
                            if gi == 0 {
                                note_error(&mut errors, message);
                                source = CellSource::Failed;
                                break;
                            }
                        }
                    },
                    None => {
                        if seen.insert(key) {
                            if gi == 0 {
                                wanted_chosen.push(key);
                            }
                            if level == coarsest {
                                wanted_coarse.push(key);
                            }
                        }
                    }
                }
            }
            match &source {
                CellSource::Loading => loading += area,
                CellSource::Chunk { slot, .. } if *slot > 0 => coarser += area,
                _ => {}
            }
            cells.push(Cell {
                rect,
                source,
                affine: None,
            });
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
    let voxel_tables = grids
        .iter()
        .map(|g| {
            g.cols
                .iter()
                .chain(&g.rows)
                .map(|(c, local)| if *c < 0 { 0 } else { *local })
                .collect()
        })
        .collect();
    (
        GatherPlan {
            width: view.width_px,
            height: view.height_px,
            labels,
            channels,
            fill: layer.fill_value,
            level: chosen,
            voxel_tables,
            // Chunks are read as voxel-thick slabs: the plane is their only voxel.
            normals: vec![0; grids.len()],
            axes,
            cells,
            coarser,
            loading,
            errors,
            oblique: false,
        },
        wanted,
    )
}

/// Whether two cells show the same thing (the same chunk at the same level, or the same
/// status).
fn same_source(a: &CellSource, b: &CellSource) -> bool {
    match (a, b) {
        (
            CellSource::Chunk {
                key: ka, slot: sa, ..
            },
            CellSource::Chunk {
                key: kb, slot: sb, ..
            },
        ) => ka == kb && sa == sb,
        (CellSource::Failed, CellSource::Failed)
        | (CellSource::Loading, CellSource::Loading)
        | (CellSource::Outside, CellSource::Outside) => true,
        _ => false,
    }
}

/// The intersection of two rectangles, if not empty.
fn intersect(a: PixelRect, b: PixelRect) -> Option<PixelRect> {
    let x0 = a.x0.max(b.x0);
    let y0 = a.y0.max(b.y0);
    let x1 = (a.x0 + a.width).min(b.x0 + b.width);
    let y1 = (a.y0 + a.height).min(b.y0 + b.height);
    (x0 < x1 && y0 < y1).then(|| PixelRect {
        x0,
        y0,
        width: x1 - x0,
        height: y1 - y0,
    })
}

/// What must be drawn of `new` over `old`'s pixels moved by `shift` (pixel (x, y) of the
/// new panel is pixel (x + dx, y + dy) of the old one, as
/// [`super::slice::LayerSlice::shifted`] moves them): per cell of `new` (its index), the
/// rectangles of it that the moved pixels do not already show. A cell whose source
/// differs from the old cells under it is drawn whole; otherwise only the part that came
/// into view.
pub fn dirty(old: &GatherPlan, new: &GatherPlan, shift: (i64, i64)) -> Vec<(usize, PixelRect)> {
    if old.oblique || new.oblique {
        // Rotated planes are drawn whole: their cells overlap.
        return new
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.rect))
            .collect();
    }
    let (dx, dy) = shift;
    let (w, h) = (i64::from(new.width), i64::from(new.height));
    // The new pixels whose old position is inside the old panel.
    let kept = {
        let x0 = (-dx).max(0);
        let y0 = (-dy).max(0);
        let x1 = (w - dx).min(w);
        let y1 = (h - dy).min(h);
        (x0 < x1 && y0 < y1 && old.width == new.width && old.height == new.height).then(|| {
            PixelRect {
                x0: x0 as u32,
                y0: y0 as u32,
                width: (x1 - x0) as u32,
                height: (y1 - y0) as u32,
            }
        })
    };
    let old_cells = CellIndex::of(old);
    let mut out = Vec::new();
    for (i, cell) in new.cells.iter().enumerate() {
        let Some(inside) = kept.and_then(|k| intersect(cell.rect, k)) else {
            out.push((i, cell.rect));
            continue;
        };
        // The old cells under the kept part, in old coordinates.
        let moved = PixelRect {
            x0: (i64::from(inside.x0) + dx) as u32,
            y0: (i64::from(inside.y0) + dy) as u32,
            ..inside
        };
        let unchanged = old_cells
            .under(moved)
            .map(|o| &old.cells[o])
            .filter(|o| intersect(o.rect, moved).is_some())
            .all(|o| same_source(&o.source, &cell.source));
        if !unchanged {
            out.push((i, cell.rect));
            continue;
        }
        // Only the part of the cell that came into view: up to four bands around `inside`.
        let r = cell.rect;
        let (rx1, ry1) = (r.x0 + r.width, r.y0 + r.height);
        let (ix1, iy1) = (inside.x0 + inside.width, inside.y0 + inside.height);
        let bands = [
            (r.x0, r.y0, r.width, inside.y0 - r.y0),
            (r.x0, iy1, r.width, ry1 - iy1),
            (r.x0, inside.y0, inside.x0 - r.x0, inside.height),
            (ix1, inside.y0, rx1 - ix1, inside.height),
        ];
        for (x0, y0, width, height) in bands {
            if width > 0 && height > 0 {
                out.push((
                    i,
                    PixelRect {
                        x0,
                        y0,
                        width,
                        height,
                    },
                ));
            }
        }
    }
    out
}

/// A plan's cells by the squares of a grid their rectangles touch, so that the cells under
/// a rectangle are found without looking at every cell (a 4K panel has thousands).
struct CellIndex {
    /// Edge of a grid square in pixels.
    square: u32,
    /// Grid squares per row.
    columns: usize,
    /// Per square (row-major), the indices of the cells touching it.
    squares: Vec<Vec<usize>>,
}

impl CellIndex {
    /// `plan`'s cells indexed by squares about a cell's size.
    fn of(plan: &GatherPlan) -> CellIndex {
        let area = f64::from(plan.width) * f64::from(plan.height);
        let square = (area / plan.cells.len().max(1) as f64).sqrt().max(4.0) as u32;
        let columns = plan.width.div_ceil(square).max(1) as usize;
        let rows = plan.height.div_ceil(square).max(1) as usize;
        let mut squares = vec![Vec::new(); columns * rows];
        for (i, c) in plan.cells.iter().enumerate() {
            for index in Self::squares_of(square, columns, rows, c.rect) {
                squares[index].push(i);
            }
        }
        CellIndex {
            square,
            columns,
            squares,
        }
    }

    /// The squares (row-major indices) `r` touches, within a `columns` × `rows` grid.
    fn squares_of(
        square: u32,
        columns: usize,
        rows: usize,
        r: PixelRect,
    ) -> impl Iterator<Item = usize> {
        let span = |from: u32, len: u32, count: usize| {
            let first = (from / square) as usize;
            let last = ((from + len.max(1) - 1) / square) as usize;
            first.min(count)..(last + 1).min(count)
        };
        let xs = span(r.x0, r.width, columns);
        span(r.y0, r.height, rows).flat_map(move |y| xs.clone().map(move |x| y * columns + x))
    }

    /// The cells touching the squares under `r` (a cell may come more than once; some
    /// may not meet `r` itself).
    fn under(&self, r: PixelRect) -> impl Iterator<Item = usize> + '_ {
        let rows = self.squares.len() / self.columns;
        Self::squares_of(self.square, self.columns, rows, r)
            .flat_map(move |s| self.squares[s].iter().copied())
    }
}

impl GatherPlan {
    /// The voxel inside a cell's chunk that pixel (`x`, `y`) shows, as an offset into its
    /// stored values (z, y, x order of `shape`).
    fn voxel_offset(&self, slot: usize, shape: [usize; 3], x: u32, y: u32) -> usize {
        let table = &self.voxel_tables[slot];
        let mut local = [0usize; 3];
        local[self.axes[0]] = table[x as usize] as usize;
        local[self.axes[1]] = table[(self.width + y) as usize] as usize;
        local[self.axes[2]] = self.normals[slot] as usize;
        (local[0] * shape[1] + local[1]) * shape[2] + local[2]
    }

    /// The slice this plan draws, computed on the CPU the way the GPU samples it (the
    /// reference the GPU is tested against; equal to [`super::slice::compose`]'s).
    pub fn rasterize(&self) -> LayerSlice {
        self.rasterize_every(1)
    }

    /// Every `step`-th pixel along both axes of [`GatherPlan::rasterize`]'s slice (pixels
    /// `(x·step, y·step)`), for counts that need no more than a sample (histograms).
    pub fn rasterize_every(&self, step: u32) -> LayerSlice {
        let step = step.max(1);
        let (w, h) = (self.width.div_ceil(step), self.height.div_ceil(step));
        let pixels = (w * h) as usize;
        let mut stat = vec![status::OUTSIDE; pixels];
        let mut fvals = vec![
            self.fill as f32;
            if self.labels {
                0
            } else {
                pixels * self.channels
            }
        ];
        let mut lvals = vec![self.fill.max(0.0) as u64; if self.labels { pixels } else { 0 }];
        let first = |from: u32| from.div_ceil(step);
        for cell in &self.cells {
            let r = cell.rect;
            for y in first(r.y0)..first(r.y0 + r.height) {
                for x in first(r.x0)..first(r.x0 + r.width) {
                    let i = (y * w + x) as usize;
                    let sampled = match &cell.affine {
                        Some(a) => match a.voxel(x * step, y * step) {
                            Some(v) => Some(v),
                            None => continue,
                        },
                        None => None,
                    };
                    stat[i] = match &cell.source {
                        CellSource::Outside => status::OUTSIDE,
                        CellSource::Loading => status::LOADING,
                        CellSource::Failed => status::FAILED,
                        CellSource::Chunk { slot, chunk, .. } => {
                            let Chunk::Ready(values) = chunk.as_ref() else {
                                continue;
                            };
                            let shape = values.shape();
                            let off = match sampled {
                                Some(v) => (v[0] * shape[1] + v[1]) * shape[2] + v[2],
                                None => self.voxel_offset(*slot, shape, x * step, y * step),
                            };
                            match values {
                                ChunkValues::Labels { values, .. } if self.labels => {
                                    lvals[i] = values[off];
                                }
                                ChunkValues::Float {
                                    values,
                                    channels,
                                    shape,
                                } if !self.labels => {
                                    let n = shape.iter().product::<usize>();
                                    for c in 0..self.channels.min(*channels) {
                                        fvals[c * pixels + i] = values[c * n + off];
                                    }
                                }
                                _ => {}
                            }
                            status::DATA
                        }
                    };
                }
            }
        }
        LayerSlice {
            width: w,
            height: h,
            values: if self.labels {
                SliceValues::Labels(lvals)
            } else {
                SliceValues::Float {
                    channels: self.channels,
                    values: fvals,
                }
            },
            status: stat,
            level: self.level,
            coarser: self.coarser,
            loading: self.loading,
            errors: self.errors.clone(),
        }
    }

    /// Draws the pixels `rect` of cell `cell` into `target` (a slice of this plan's size)
    /// as the GPU draws them, for testing partial redraws.
    pub fn paint(&self, target: &mut LayerSlice, cell: usize, rect: PixelRect) {
        let Some(c) = self.cells.get(cell) else {
            return;
        };
        let Some(rect) = intersect(rect, c.rect) else {
            return;
        };
        let pixels = (self.width * self.height) as usize;
        for y in rect.y0..rect.y0 + rect.height {
            for x in rect.x0..rect.x0 + rect.width {
                let i = (y * self.width + x) as usize;
                let value = self.value_at(x, y);
                target.status[i] = match &value {
                    Some(PixelValue::Outside) | None => status::OUTSIDE,
                    Some(PixelValue::Loading) => status::LOADING,
                    Some(PixelValue::Failed) => status::FAILED,
                    _ => status::DATA,
                };
                match (&mut target.values, value) {
                    (SliceValues::Labels(v), Some(PixelValue::Label(id))) => v[i] = id,
                    (SliceValues::Labels(v), _) => v[i] = self.fill.max(0.0) as u64,
                    (SliceValues::Float { channels, values }, Some(PixelValue::Float(f))) => {
                        for c in 0..*channels {
                            values[c * pixels + i] = f.get(c).copied().unwrap_or(self.fill as f32);
                        }
                    }
                    (SliceValues::Float { channels, values }, _) => {
                        for c in 0..*channels {
                            values[c * pixels + i] = self.fill as f32;
                        }
                    }
                }
            }
        }
    }

    /// The value pixel (`x`, `y`) shows, or `None` outside the panel.
    pub fn value_at(&self, x: u32, y: u32) -> Option<PixelValue> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let (cell, sampled) = self.cell_at(x, y)?;
        Some(match &cell.source {
            CellSource::Outside => PixelValue::Outside,
            CellSource::Loading => PixelValue::Loading,
            CellSource::Failed => PixelValue::Failed,
            CellSource::Chunk { slot, chunk, .. } => {
                let Chunk::Ready(values) = chunk.as_ref() else {
                    return Some(PixelValue::Failed);
                };
                let shape = values.shape();
                let off = match sampled {
                    Some(v) => (v[0] * shape[1] + v[1]) * shape[2] + v[2],
                    None => self.voxel_offset(*slot, shape, x, y),
                };
                match values {
                    ChunkValues::Labels { values, .. } => PixelValue::Label(values[off]),
                    ChunkValues::Float {
                        values,
                        channels,
                        shape,
                    } => {
                        let n = shape.iter().product::<usize>();
                        PixelValue::Float(
                            (0..self.channels.min(*channels))
                                .map(|c| values[c * n + off])
                                .collect(),
                        )
                    }
                }
            }
        })
    }

    /// The cell that draws pixel (`x`, `y`) (the last one drawing it, for rotated planes)
    /// and, on rotated planes, the voxel of its chunk it samples.
    fn cell_at(&self, x: u32, y: u32) -> Option<(&Cell, Option<[usize; 3]>)> {
        let inside = |c: &Cell| {
            let r = c.rect;
            (r.x0..r.x0 + r.width).contains(&x) && (r.y0..r.y0 + r.height).contains(&y)
        };
        if !self.oblique {
            return self.cells.iter().find(|c| inside(c)).map(|c| (c, None));
        }
        self.cells.iter().rev().filter(|c| inside(c)).find_map(|c| {
            let v = c.affine.and_then(|a| a.voxel(x, y))?;
            Some((c, Some(v)))
        })
    }

    /// Whether some pixel of `rect` shows as loading.
    pub fn loads_in(&self, rect: PixelRect) -> bool {
        let over: Vec<&Cell> = self
            .cells
            .iter()
            .filter(|c| intersect(c.rect, rect).is_some())
            .collect();
        for y in rect.y0..rect.y0 + rect.height {
            for x in rect.x0..rect.x0 + rect.width {
                let drawn = over.iter().rev().find(|c| {
                    let r = c.rect;
                    (r.x0..r.x0 + r.width).contains(&x)
                        && (r.y0..r.y0 + r.height).contains(&y)
                        && c.affine.is_none_or(|a| a.voxel(x, y).is_some())
                });
                if drawn.is_some_and(|c| c.source == CellSource::Loading) {
                    return true;
                }
            }
        }
        false
    }

    /// For every `step`-th pixel along both axes (row-major), the index of the cell that
    /// draws it (`u32::MAX` where none does).
    pub fn cell_map_every(&self, step: u32) -> Vec<u32> {
        let step = step.max(1);
        let (w, h) = (self.width.div_ceil(step), self.height.div_ceil(step));
        let mut map = vec![u32::MAX; (w * h) as usize];
        let first = |from: u32| from.div_ceil(step);
        for (ci, cell) in self.cells.iter().enumerate() {
            let r = cell.rect;
            for y in first(r.y0)..first(r.y0 + r.height) {
                for x in first(r.x0)..first(r.x0 + r.width) {
                    if cell
                        .affine
                        .is_some_and(|a| a.voxel(x * step, y * step).is_none())
                    {
                        continue;
                    }
                    map[(y * w + x) as usize] = ci as u32;
                }
            }
        }
        map
    }

    /// The chunks its cells sample.
    pub fn chunks(&self) -> impl Iterator<Item = (&ChunkKey, &Arc<Chunk>)> {
        self.cells.iter().filter_map(|c| match &c.source {
            CellSource::Chunk { key, chunk, .. } => Some((key, chunk)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::layer::WorldNm;
    use crate::render::slice::{compose, Plane};
    use std::time::Duration;

    fn keys(w: &Wanted) -> Vec<Vec<ChunkKey>> {
        let mut lists = vec![
            w.coarse.iter().map(|r| r.key).collect::<Vec<_>>(),
            w.visible.iter().map(|(_, r)| r.key).collect(),
            w.prefetch.iter().map(|r| r.key).collect(),
        ];
        for l in &mut lists {
            l.sort_by_key(|k| (k.level, k.index, k.slab));
        }
        lists
    }

    /// Every plane at odd zooms and centres, while chunks arrive one request at a time:
    /// the plan's slice equals the composed one pixel for pixel, with the same counts and
    /// the same wanted chunks.
    #[test]
    fn a_plan_draws_what_composing_draws() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::render::fixtures::small_volume(dir.path());
        let p = crate::render::fixtures::pyramid_volume(dir.path());
        let (mut saw_coarser, mut saw_failed, mut saw_loading) = (false, false, false);
        for (path, kind) in [
            (c.join("raw"), LayerKind::Image),
            (c.join("labels"), LayerKind::Segmentation),
            (p.join("raw"), LayerKind::Image),
            (p.join("pred"), LayerKind::Prediction),
        ] {
            let name = path.display().to_string();
            let layer = crate::render::layer::open_layer(&path).unwrap();
            for plane in Plane::ALL {
                for (nm_per_px, center) in [
                    (1.7, [30.3, 17.0, 29.1]),
                    (4.0, [32.0, 37.0, 32.0]),
                    (0.9, [9.5, 40.2, 51.0]),
                    // Coarser levels chosen, and the finest standing in for nothing.
                    (8.5, [41.0, 45.0, 39.0]),
                    (17.0, [40.0, 40.0, 40.0]),
                ] {
                    let cache = ChunkCache::new(16 << 20, 2);
                    let view = SliceView {
                        plane,
                        center: WorldNm(center),
                        nm_per_px,
                        width_px: 43,
                        height_px: 29,
                        orientation: crate::render::orientation::Orientation::IDENTITY,
                    };
                    for round in 0..12 {
                        let (composed, cw) = compose(1, &layer, kind, &view, &cache);
                        let (p, pw) = plan(1, &layer, kind, &view, &cache);
                        assert_eq!(
                            p.rasterize(),
                            composed,
                            "{name} {plane:?} {nm_per_px} round {round}"
                        );
                        assert_eq!(keys(&pw), keys(&cw));
                        for (x, y) in [(0, 0), (42, 28), (17, 9), (30, 20), (43, 0)] {
                            assert_eq!(p.value_at(x, y), composed.value_at(x, y));
                        }
                        let every3 = p.rasterize_every(3);
                        assert_eq!((every3.width, every3.height), (15, 10));
                        for (x, y) in [(0, 0), (14, 9), (5, 7)] {
                            assert_eq!(every3.value_at(x, y), composed.value_at(3 * x, 3 * y));
                        }
                        saw_coarser |= p.coarser > 0;
                        saw_loading |= p.loading > 0;
                        saw_failed |= p.cells.iter().any(|c| c.source == CellSource::Failed);
                        // Cells cover the panel exactly once.
                        let area: u32 = p.cells.iter().map(|c| c.rect.width * c.rect.height).sum();
                        assert_eq!(area, 43 * 29);
                        // Fewer cells than pixels by far: the work is per chunk.
                        assert!(p.cells.len() <= 36, "{} cells", p.cells.len());
                        let mut first = cw.into_requests();
                        first.truncate(1);
                        if first.is_empty() {
                            break;
                        }
                        cache.request(first);
                        assert!(cache.wait_idle(Duration::from_secs(10)));
                    }
                }
            }
        }
        assert!(saw_coarser && saw_failed && saw_loading);
    }

    /// The cell index finds every cell that meets a rectangle, whatever the zoom (cells of
    /// a few pixels to cells larger than the panel), as looking at every cell does.
    #[test]
    fn the_cell_index_finds_every_cell_under_a_rectangle() {
        let dir = tempfile::tempdir().unwrap();
        let p = crate::render::fixtures::pyramid_volume(dir.path());
        let layer = crate::render::layer::open_layer(&p.join("raw")).unwrap();
        let cache = ChunkCache::new(16 << 20, 2);
        let mut checked = 0;
        for (nm_per_px, (w, h)) in [(0.3, (97, 61)), (1.1, (45, 31)), (4.0, (200, 150))] {
            let view = SliceView {
                plane: Plane::Xy,
                center: WorldNm([37.3, 41.1, 39.7]),
                nm_per_px,
                width_px: w,
                height_px: h,
                orientation: crate::render::orientation::Orientation::IDENTITY,
            };
            let (plan, _) = plan(1, &layer, LayerKind::Image, &view, &cache);
            let index = CellIndex::of(&plan);
            for (x0, y0, width, height) in [
                (0, 0, w, h),
                (0, 0, 1, 1),
                (w - 1, h - 1, 1, 1),
                (13, 7, 9, 5),
                (w / 2, 3, w - w / 2, 2),
            ] {
                let r = PixelRect {
                    x0,
                    y0,
                    width,
                    height,
                };
                let every: std::collections::BTreeSet<usize> = (0..plan.cells.len())
                    .filter(|&i| intersect(plan.cells[i].rect, r).is_some())
                    .collect();
                let found: std::collections::BTreeSet<usize> = index
                    .under(r)
                    .filter(|&i| intersect(plan.cells[i].rect, r).is_some())
                    .collect();
                assert!(!every.is_empty());
                assert_eq!(found, every, "{nm_per_px} {r:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 15);
    }

    /// Redrawing only what [`dirty`] lists over the old slice moved by the pan gives the
    /// new slice, while panning by whole pixels with chunks arriving; and much less than
    /// the whole panel is drawn when nothing arrived.
    #[test]
    fn redrawing_the_dirty_rectangles_over_the_moved_slice_gives_the_new_slice() {
        let dir = tempfile::tempdir().unwrap();
        let p = crate::render::fixtures::pyramid_volume(dir.path());
        let layer = crate::render::layer::open_layer(&p.join("raw")).unwrap();
        let cache = ChunkCache::new(16 << 20, 2);
        for plane in Plane::ALL {
            let mut view = SliceView {
                plane,
                center: WorldNm([37.3, 41.1, 39.7]),
                nm_per_px: 1.1,
                width_px: 45,
                height_px: 31,
                orientation: crate::render::orientation::Orientation::IDENTITY,
            };
            let (mut old, _) = plan(1, &layer, LayerKind::Image, &view, &cache);
            let mut shown = old.rasterize();
            let [h, v, _] = plane.axes();
            for (k, (dx, dy)) in [(3i64, 0i64), (0, -2), (-5, 4), (1, 1), (0, 0), (7, -3)]
                .into_iter()
                .enumerate()
            {
                view.center.0[h] += dx as f64 * view.nm_per_px;
                view.center.0[v] += dy as f64 * view.nm_per_px;
                let (new, wanted) = plan(1, &layer, LayerKind::Image, &view, &cache);
                let mut moved = shown.shifted(dx, dy);
                let rects = dirty(&old, &new, (dx, dy));
                let drawn: u32 = rects.iter().map(|(_, r)| r.width * r.height).sum();
                for (cell, rect) in &rects {
                    new.paint(&mut moved, *cell, *rect);
                }
                let expected = new.rasterize();
                assert_eq!(moved.status, expected.status, "{plane:?} step {k}");
                assert_eq!(moved.values, expected.values, "{plane:?} step {k}");
                if k % 2 == 0 {
                    // Nothing arrived since the last plan: only the strips that came in.
                    let strips = (dx.unsigned_abs() * 31 + dy.unsigned_abs() * 45) as u32;
                    assert!(drawn <= strips, "{plane:?} step {k}: {drawn} > {strips}");
                }
                old = new;
                shown = moved;
                // Every other step, chunks arrive before the next pan.
                if k % 2 == 0 {
                    let mut first = wanted.into_requests();
                    first.truncate(2);
                    cache.request(first);
                    assert!(cache.wait_idle(Duration::from_secs(10)));
                }
            }
        }
    }
}
