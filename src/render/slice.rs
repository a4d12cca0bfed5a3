//! Cross-sections: which world point each screen pixel of a panel shows, and the values of
//! one layer at those points, gathered from cached chunks of the best scale level (coarser
//! cached levels stand in while the finer one loads). Also lists the chunks still needed,
//! centre of the view first.

use std::collections::HashMap;
use std::sync::Arc;

use super::cache::{Chunk, ChunkCache, ChunkKey, Request};
use super::layer::{ChunkValues, LayerData, LayerKind, WorldNm};
use super::orientation::Orientation;

/// The three cross-section orientations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plane {
    /// x to the right, y down; normal z.
    Xy,
    /// x to the right, z down; normal y.
    Xz,
    /// z to the right, y down; normal x.
    Yz,
}

impl Plane {
    /// Every plane, in panel order.
    pub const ALL: [Plane; 3] = [Plane::Xy, Plane::Xz, Plane::Yz];

    /// World axes (indices into z, y, x) shown horizontally, vertically, and along the normal.
    pub fn axes(self) -> [usize; 3] {
        match self {
            Plane::Xy => [2, 1, 0],
            Plane::Xz => [2, 0, 1],
            Plane::Yz => [0, 1, 2],
        }
    }

    /// The panel's name (`xy`, …).
    pub fn label(self) -> &'static str {
        match self {
            Plane::Xy => "xy",
            Plane::Xz => "xz",
            Plane::Yz => "yz",
        }
    }
}

/// One panel's view: a plane through `center`, `nm_per_px` nanometres per screen pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SliceView {
    /// The orientation.
    pub plane: Plane,
    /// The world point at the panel's centre (and the plane's position along its normal).
    pub center: WorldNm,
    /// Zoom: nanometres per screen pixel.
    pub nm_per_px: f64,
    /// Panel width in pixels.
    pub width_px: u32,
    /// Panel height in pixels.
    pub height_px: u32,
    /// The rotation of the plane about `center` (identity: axis-aligned).
    pub orientation: Orientation,
}

impl SliceView {
    /// An axis-aligned view.
    pub fn aligned(
        plane: Plane,
        center: WorldNm,
        nm_per_px: f64,
        width_px: u32,
        height_px: u32,
    ) -> Self {
        Self {
            plane,
            center,
            nm_per_px,
            width_px,
            height_px,
            orientation: Orientation::IDENTITY,
        }
    }

    /// Whether the plane is rotated (sampled per pixel from whole chunks rather than from
    /// voxel-thick slabs).
    pub fn oblique(&self) -> bool {
        !self.orientation.is_identity()
    }

    /// The world directions (z, y, x; unit length) of the panel's right, down and normal.
    pub fn directions(&self) -> [[f64; 3]; 3] {
        self.plane.axes().map(|a| self.orientation.axis(a))
    }

    /// The world point at panel position (`x`, `y`) in pixels from the top-left corner
    /// (pixel centres are at half-integers).
    pub fn world_at(&self, x: f64, y: f64) -> WorldNm {
        let dx = (x - f64::from(self.width_px) / 2.0) * self.nm_per_px;
        let dy = (y - f64::from(self.height_px) / 2.0) * self.nm_per_px;
        let mut p = self.center;
        if self.oblique() {
            let [u, v, _] = self.directions();
            for a in 0..3 {
                p.0[a] += dx * u[a] + dy * v[a];
            }
            return p;
        }
        let [h, v, _] = self.plane.axes();
        p.0[h] += dx;
        p.0[v] += dy;
        p
    }

    /// The panel position (pixels from the top-left corner) of world point `p`'s projection.
    pub fn pixel_of(&self, p: &WorldNm) -> (f64, f64) {
        if self.oblique() {
            let [u, v, _] = self.directions();
            let d: [f64; 3] = std::array::from_fn(|a| p.0[a] - self.center.0[a]);
            let dot = |w: [f64; 3]| d[0] * w[0] + d[1] * w[1] + d[2] * w[2];
            return (
                dot(u) / self.nm_per_px + f64::from(self.width_px) / 2.0,
                dot(v) / self.nm_per_px + f64::from(self.height_px) / 2.0,
            );
        }
        let [h, v, _] = self.plane.axes();
        (
            (p.0[h] - self.center.0[h]) / self.nm_per_px + f64::from(self.width_px) / 2.0,
            (p.0[v] - self.center.0[v]) / self.nm_per_px + f64::from(self.height_px) / 2.0,
        )
    }

    /// The signed distance (nm) of world point `p` from the plane, along its normal.
    pub fn depth_of(&self, p: &WorldNm) -> f64 {
        let n = self.directions()[2];
        (0..3).map(|a| (p.0[a] - self.center.0[a]) * n[a]).sum()
    }
}

/// What a slice pixel shows.
pub mod status {
    /// Data from the chosen level or a coarser stand-in.
    pub const DATA: u8 = 0;
    /// The point is outside the array.
    pub const OUTSIDE: u8 = 1;
    /// No level has the chunk yet.
    pub const LOADING: u8 = 2;
    /// The chunk could not be read.
    pub const FAILED: u8 = 3;
}

/// Values of a layer's slice, one per pixel (row-major).
#[derive(Debug, Clone, PartialEq)]
pub enum SliceValues {
    /// Per channel: `values[c * width * height + y * width + x]`.
    Float {
        /// Number of channels.
        channels: usize,
        /// The values.
        values: Vec<f32>,
    },
    /// Label ids.
    Labels(Vec<u64>),
}

/// One layer drawn on one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSlice {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The values.
    pub values: SliceValues,
    /// Per pixel, one of [`status`]'s values.
    pub status: Vec<u8>,
    /// The scale level chosen for this zoom.
    pub level: usize,
    /// Pixels shown from a coarser level while the chosen one loads.
    pub coarser: usize,
    /// Pixels with no data yet.
    pub loading: usize,
    /// Distinct read errors of the chunks shown as failed.
    pub errors: Vec<String>,
}

/// The value a layer shows at one pixel.
#[derive(Debug, Clone, PartialEq)]
pub enum PixelValue {
    /// Float values, one per channel.
    Float(Vec<f32>),
    /// A label id.
    Label(u64),
    /// Outside the array.
    Outside,
    /// Not loaded yet.
    Loading,
    /// The chunk could not be read.
    Failed,
}

/// Copies `len` pixels (status and every channel) from pixel `src` of `from` to pixel
/// `dst` of `to`.
fn copy_run(to: &mut LayerSlice, dst: usize, from: &LayerSlice, src: usize, len: usize) {
    let (n_to, n_from) = (
        (to.width * to.height) as usize,
        (from.width * from.height) as usize,
    );
    to.status[dst..dst + len].copy_from_slice(&from.status[src..src + len]);
    match (&mut to.values, &from.values) {
        (SliceValues::Labels(o), SliceValues::Labels(s)) => {
            o[dst..dst + len].copy_from_slice(&s[src..src + len])
        }
        (
            SliceValues::Float {
                channels,
                values: o,
            },
            SliceValues::Float { values: s, .. },
        ) => {
            for c in 0..*channels {
                o[c * n_to + dst..c * n_to + dst + len]
                    .copy_from_slice(&s[c * n_from + src..c * n_from + src + len]);
            }
        }
        _ => {}
    }
}

impl LayerSlice {
    /// This slice moved by (`dx`, `dy`) pixels: pixel (x, y) of the result is pixel
    /// (x + dx, y + dy) of this one; pixels from outside it are marked [`status::LOADING`].
    pub fn shifted(&self, dx: i64, dy: i64) -> LayerSlice {
        let (w, h) = (self.width as i64, self.height as i64);
        let mut out = self.clone();
        out.status.fill(status::LOADING);
        let xs = (0.max(-dx), w.min(w - dx));
        for y in 0.max(-dy)..h.min(h - dy) {
            if xs.0 >= xs.1 {
                break;
            }
            let dst = (y * w + xs.0) as usize..(y * w + xs.1) as usize;
            let src = ((y + dy) * w + xs.0 + dx) as usize;
            let len = dst.len();
            copy_run(&mut out, dst.start, self, src, len);
        }
        out
    }

    /// Copies `part` into this slice with its top-left pixel at (`x0`, `y0`), and adds its
    /// loading counts and errors.
    pub fn paste(&mut self, part: &LayerSlice, x0: u32, y0: u32) {
        let (w, pw) = (self.width as usize, part.width as usize);
        for y in 0..part.height as usize {
            let dst = (y0 as usize + y) * w + x0 as usize;
            let src = y * pw;
            copy_run(self, dst, part, src, pw);
        }
        // Stand-ins kept from before the shift still count (an upper bound until the next
        // full composition).
        self.coarser += part.coarser;
        self.loading = self
            .status
            .iter()
            .filter(|s| **s == status::LOADING)
            .count();
        for e in &part.errors {
            if !self.errors.contains(e) {
                self.errors.push(e.clone());
            }
        }
    }

    /// The value at pixel (`x`, `y`), or `None` outside the panel.
    pub fn value_at(&self, x: u32, y: u32) -> Option<PixelValue> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y * self.width + x) as usize;
        Some(match self.status[i] {
            status::OUTSIDE => PixelValue::Outside,
            status::LOADING => PixelValue::Loading,
            status::FAILED => PixelValue::Failed,
            _ => match &self.values {
                SliceValues::Float { channels, values } => {
                    let n = (self.width * self.height) as usize;
                    PixelValue::Float((0..*channels).map(|c| values[c * n + i]).collect())
                }
                SliceValues::Labels(v) => PixelValue::Label(v[i]),
            },
        })
    }
}

/// Chunks a slice still needs, in three priorities.
#[derive(Default, Clone)]
pub struct Wanted {
    /// Chunks of the coarsest level (small, shown first as stand-ins).
    pub coarse: Vec<Request>,
    /// Chunks of the chosen level, with their distance (nm) from the view centre.
    pub visible: Vec<(f64, Request)>,
    /// Neighbouring chunks along the plane's normal (the next slices).
    pub prefetch: Vec<Request>,
}

impl Wanted {
    /// Adds `other`'s chunks.
    pub fn extend(&mut self, other: Wanted) {
        self.coarse.extend(other.coarse);
        self.visible.extend(other.visible);
        self.prefetch.extend(other.prefetch);
    }

    /// The chunks the panel shows as missing (coarse and visible; not the prefetched
    /// next slices): the ones whose arrival changes what it draws.
    pub fn shown_keys(&self) -> Vec<crate::render::cache::ChunkKey> {
        self.coarse
            .iter()
            .chain(self.visible.iter().map(|(_, r)| r))
            .map(|r| r.key)
            .collect()
    }

    /// One list in priority order: coarse, then visible by distance, then prefetch.
    pub fn into_requests(mut self) -> Vec<Request> {
        self.visible.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = self.coarse;
        out.extend(self.visible.into_iter().map(|(_, r)| r));
        out.extend(self.prefetch);
        out
    }
}

/// The level to draw at `nm_per_px` on `plane`: the coarsest whose in-plane voxels are no
/// larger than a screen pixel (so no detail is lost), or the finest when all are larger.
pub fn pick_level(layer: &LayerData, plane: Plane, nm_per_px: f64) -> usize {
    pick_level_among(layer, plane.axes(), 2, nm_per_px)
}

/// [`pick_level`] for `view`: a rotated plane crosses voxels along every axis, so all
/// three voxel sizes must fit a pixel.
pub fn pick_level_for(layer: &LayerData, view: &SliceView) -> usize {
    if view.oblique() {
        pick_level_among(layer, [0, 1, 2], 3, view.nm_per_px)
    } else {
        pick_level(layer, view.plane, view.nm_per_px)
    }
}

/// How linear sampling reads level `level` of `layer` on `view`: per panel axis
/// (horizontal, then vertical) the voxels per pixel and the voxel position at the panel's
/// left or top edge, so that pixel `x`'s centre is at voxel position `b + (x + 0.5)·a`
/// (the voxel it shows is its floor). An axis along which a voxel does not cover more
/// than a pixel gets 0 voxels per pixel (nearest along it). `None` on rotated planes and
/// when neither axis is magnified.
pub fn linear_mapping(layer: &LayerData, level: usize, view: &SliceView) -> Option<[f32; 4]> {
    let l = layer.levels.get(level)?;
    if view.oblique() {
        return None;
    }
    let [h, v, _] = view.plane.axes();
    let axis = |a: usize, pixels: u32| {
        let per_px = view.nm_per_px / l.voxel_size_nm[a];
        let edge_nm = view.center.0[a] - f64::from(pixels) / 2.0 * view.nm_per_px;
        let at_edge = (edge_nm - l.offset_nm[a]) / l.voxel_size_nm[a];
        if per_px < 1.0 && per_px > 0.0 {
            [per_px as f32, at_edge as f32]
        } else {
            [0.0, at_edge as f32]
        }
    };
    let [ah, bh] = axis(h, view.width_px);
    let [av, bv] = axis(v, view.height_px);
    (ah > 0.0 || av > 0.0).then_some([ah, bh, av, bv])
}

/// The coarsest level whose voxels along the first `n` of `axes` are no larger than
/// `nm_per_px` (the finest when none is).
fn pick_level_among(layer: &LayerData, axes: [usize; 3], n: usize, nm_per_px: f64) -> usize {
    let mut best = 0;
    for (i, l) in layer.levels.iter().enumerate() {
        let largest = axes[..n]
            .iter()
            .map(|a| l.voxel_size_nm[*a])
            .fold(0.0, f64::max);
        if largest <= nm_per_px * 1.000_001 {
            best = i;
        }
    }
    best
}

/// Per level: for each column and row (and the plane) the chunk index along that axis
/// (-1 outside the level) and the voxel's position inside the chunk.
pub(crate) struct LevelGrid {
    pub(crate) cols: Vec<(i64, u32)>,
    pub(crate) rows: Vec<(i64, u32)>,
    pub(crate) normal: (i64, u32),
}

/// A rectangle of a panel's pixels: its top-left pixel and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    /// Leftmost column.
    pub x0: u32,
    /// Top row.
    pub y0: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

impl PixelRect {
    /// All of `view`'s pixels.
    pub fn whole(view: &SliceView) -> Self {
        Self {
            x0: 0,
            y0: 0,
            width: view.width_px,
            height: view.height_px,
        }
    }
}

/// The pixels of `view` that show chunk `index` of `layer`'s `level` (`None` when the
/// panel does not show it): the only ones its arrival changes, since pixels sample their
/// nearest voxel.
pub fn chunk_rect(
    layer: &LayerData,
    level: usize,
    view: &SliceView,
    index: [u64; 3],
) -> Option<PixelRect> {
    let g = level_grid(layer, level, view, PixelRect::whole(view));
    let [h, v, n] = view.plane.axes();
    if g.normal.0 != index[n] as i64 {
        return None;
    }
    let span = |cells: &[(i64, u32)], want: u64| -> Option<(u32, u32)> {
        let first = cells.iter().position(|(c, _)| *c == want as i64)?;
        let last = cells.iter().rposition(|(c, _)| *c == want as i64)?;
        Some((first as u32, (last - first + 1) as u32))
    };
    let (x0, width) = span(&g.cols, index[h])?;
    let (y0, height) = span(&g.rows, index[v])?;
    Some(PixelRect {
        x0,
        y0,
        width,
        height,
    })
}

/// The chunk grid of `layer`'s `level` under the pixels of `window` of `view`.
impl LevelGrid {
    /// The key of the voxel-thick slab of the chunk at chunk indices `(h, v)` along the
    /// panel's axes `axes` (horizontal, vertical, normal), at this grid's plane.
    pub(crate) fn slab_key(
        &self,
        uid: u64,
        level: usize,
        axes: [usize; 3],
        (h, v): (i64, i64),
        labels: bool,
    ) -> ChunkKey {
        let mut index = [0u64; 3];
        index[axes[0]] = h as u64;
        index[axes[1]] = v as u64;
        index[axes[2]] = self.normal.0 as u64;
        ChunkKey {
            layer: uid,
            level,
            index,
            labels,
            slab: Some((axes[2] as u8, self.normal.1)),
        }
    }
}

pub(crate) fn level_grid(
    layer: &LayerData,
    level: usize,
    view: &SliceView,
    window: PixelRect,
) -> LevelGrid {
    let l = &layer.levels[level];
    let [h, v, n] = view.plane.axes();
    let index = |axis: usize, world: f64| -> (i64, u32) {
        let x = ((world - l.offset_nm[axis]) / l.voxel_size_nm[axis]).floor();
        if x >= 0.0 && x < l.shape[axis] as f64 {
            let x = x as u64;
            ((x / l.chunk[axis]) as i64, (x % l.chunk[axis]) as u32)
        } else {
            (-1, 0)
        }
    };
    let cols = (window.x0..window.x0 + window.width)
        .map(|x| index(h, view.world_at(f64::from(x) + 0.5, 0.0).0[h]))
        .collect();
    let rows = (window.y0..window.y0 + window.height)
        .map(|y| index(v, view.world_at(0.0, f64::from(y) + 0.5).0[v]))
        .collect();
    LevelGrid {
        cols,
        rows,
        normal: index(n, view.center.0[n]),
    }
}

/// How `layer` drawn as `kind` is sampled — as label ids (else floats) and how many
/// channels — and `pixels` pixels of its fill value: ids (labels) or floats per channel.
pub(crate) fn blank_values(
    layer: &LayerData,
    kind: LayerKind,
    pixels: usize,
) -> (bool, usize, Vec<u64>, Vec<f32>) {
    let labels = kind == LayerKind::Segmentation && layer.channels == 1;
    let channels = if labels { 1 } else { layer.channels.max(1) };
    let fill = layer.fill_value;
    if labels {
        (
            labels,
            channels,
            vec![fill.max(0.0) as u64; pixels],
            Vec::new(),
        )
    } else {
        (
            labels,
            channels,
            Vec::new(),
            vec![fill as f32; pixels * channels],
        )
    }
}

/// Adds a chunk's read error to the distinct ones a slice lists (at most eight).
pub(crate) fn note_error(errors: &mut Vec<String>, message: &str) {
    if !errors.iter().any(|e| e == message) && errors.len() < 8 {
        errors.push(message.to_string());
    }
}

/// The values of a slice: `lvals` as label ids, else `fvals` as `channels` float channels.
pub(crate) fn slice_values(
    labels: bool,
    channels: usize,
    lvals: Vec<u64>,
    fvals: Vec<f32>,
) -> SliceValues {
    if labels {
        SliceValues::Labels(lvals)
    } else {
        SliceValues::Float {
            channels,
            values: fvals,
        }
    }
}

/// Copies voxel `off` of `values` to pixel `i` of a slice of `pixels` pixels: its id into
/// `to.0` (labels) or its first `channels` channels into `to.1` (floats, channel-major).
pub(crate) fn copy_voxel(
    values: &ChunkValues,
    off: usize,
    labels: bool,
    channels: usize,
    (pixels, i): (usize, usize),
    to: (&mut [u64], &mut [f32]),
) {
    match values {
        ChunkValues::Labels { values, .. } if labels => to.0[i] = values[off],
        ChunkValues::Float {
            values,
            channels: cc,
            shape,
        } if !labels => {
            let n = shape.iter().product::<usize>();
            for c in 0..channels.min(*cc) {
                to.1[c * pixels + i] = values[c * n + off];
            }
        }
        _ => {}
    }
}

/// A chunk index and what the cache held for it.
type LastChunk = ([u64; 3], Option<Arc<Chunk>>);

/// Draws `layer` (viewer id `uid`, drawn as `kind`) on `view` from what `cache` holds, and
/// lists the chunks still wanted.
pub fn compose(
    uid: u64,
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    cache: &ChunkCache,
) -> (LayerSlice, Wanted) {
    compose_moving(uid, layer, kind, view, 0.0, PixelRect::whole(view), cache)
}

/// Draws just the pixels `window` of `view` as [`compose`] draws them (the same values,
/// bit for bit): a slice of the window's size, and the chunks it still wants.
pub fn compose_window(
    uid: u64,
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    window: PixelRect,
    cache: &ChunkCache,
) -> (LayerSlice, Wanted) {
    compose_moving(uid, layer, kind, view, 0.0, window, cache)
}

/// [`compose_window`] for a plane moving `step_nm` along its normal per frame (0 at rest):
/// drawn from [`pick_level_moving`]'s level.
pub fn compose_moving(
    uid: u64,
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    step_nm: f64,
    window: PixelRect,
    cache: &ChunkCache,
) -> (LayerSlice, Wanted) {
    if view.oblique() {
        return super::oblique::compose_oblique(uid, layer, kind, view, window, cache);
    }
    let (w, h) = (window.width as usize, window.height as usize);
    let pixels = w * h;
    let chosen = pick_level_moving(layer, view.plane, view.nm_per_px, step_nm);
    let coarsest = layer.levels.len() - 1;
    let grids: Vec<LevelGrid> = (chosen..=coarsest)
        .map(|l| level_grid(layer, l, view, window))
        .collect();
    let [ah, av, an] = view.plane.axes();
    let (labels, channels, mut lvals, mut fvals) = blank_values(layer, kind, pixels);
    let mut stat = vec![status::OUTSIDE; pixels];
    let mut memo: HashMap<ChunkKey, Option<Arc<Chunk>>> = HashMap::new();
    let mut wanted_chosen: HashMap<ChunkKey, ()> = HashMap::new();
    let mut wanted_coarse: HashMap<ChunkKey, ()> = HashMap::new();
    let mut errors: Vec<String> = Vec::new();
    let (mut coarser, mut loading) = (0usize, 0usize);
    let mut lookup = |key: ChunkKey| -> Option<Arc<Chunk>> {
        memo.entry(key).or_insert_with(|| cache.get(&key)).clone()
    };
    // The chunk last looked up per level: neighbouring pixels nearly always share it.
    let mut last: Vec<Option<LastChunk>> = vec![None; grids.len()];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            for (gi, g) in grids.iter().enumerate() {
                let level = chosen + gi;
                let ((hc, hl), (vc, vl)) = (g.cols[x], g.rows[y]);
                if hc < 0 || vc < 0 || g.normal.0 < 0 {
                    // Outside the chosen level is outside; a coarser level that ends a
                    // little earlier (odd sizes) cannot stand in here.
                    if gi > 0 && level == coarsest {
                        stat[i] = status::LOADING;
                        loading += 1;
                    }
                    if gi == 0 {
                        break;
                    }
                    continue;
                }
                let key = g.slab_key(uid, level, view.plane.axes(), (hc, vc), labels);
                let index = key.index;
                let (chunk, fresh) = match &last[gi] {
                    Some((k, c)) if *k == index => (c.clone(), false),
                    _ => {
                        let c = lookup(key);
                        last[gi] = Some((index, c.clone()));
                        (c, true)
                    }
                };
                match chunk.as_deref() {
                    Some(Chunk::Ready(values)) => {
                        let mut local = [0usize; 3];
                        local[ah] = hl as usize;
                        local[av] = vl as usize;
                        local[an] = 0;
                        let s = values.shape();
                        let off = (local[0] * s[1] + local[1]) * s[2] + local[2];
                        let to = (&mut lvals[..], &mut fvals[..]);
                        copy_voxel(values, off, labels, channels, (pixels, i), to);
                        stat[i] = status::DATA;
                        if gi > 0 {
                            coarser += 1;
                        }
                        break;
                    }
                    Some(Chunk::Failed(message)) => {
                        if gi == 0 {
                            stat[i] = status::FAILED;
                            note_error(&mut errors, message);
                            break;
                        }
                    }
                    None => {
                        // Listed once per run of pixels in the same chunk, not per pixel.
                        if fresh && gi == 0 {
                            wanted_chosen.insert(key, ());
                        }
                        if fresh && level == coarsest {
                            wanted_coarse.insert(key, ());
                        }
                    }
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
        wanted_chosen.into_keys(),
        wanted_coarse.into_keys(),
    );
    let values = slice_values(labels, channels, lvals, fvals);
    (
        LayerSlice {
            width: window.width,
            height: window.height,
            values,
            status: stat,
            level: chosen,
            coarser,
            loading,
            errors,
        },
        wanted,
    )
}

/// The chunks a slice still needs: the chosen level's missing chunks by distance from the
/// view centre with their neighbouring slabs to prefetch, and the coarsest level's (unless
/// it is the chosen one).
pub(crate) fn wanted_of(
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    chosen: usize,
    wanted_chosen: impl Iterator<Item = ChunkKey>,
    wanted_coarse: impl Iterator<Item = ChunkKey>,
) -> Wanted {
    let coarsest = layer.levels.len() - 1;
    let an = view.plane.axes()[2];
    let request = |key: ChunkKey| Request {
        key,
        layer: Arc::clone(layer),
        kind,
        read_from: None,
    };
    let mut wanted = Wanted::default();
    if chosen != coarsest {
        wanted.coarse = wanted_coarse.map(request).collect();
    }
    let l = &layer.levels[chosen];
    for key in wanted_chosen {
        let centre: [f64; 3] = std::array::from_fn(|a| {
            l.offset_nm[a] + ((key.index[a] as f64 + 0.5) * l.chunk[a] as f64) * l.voxel_size_nm[a]
        });
        let d = (0..3)
            .filter(|&a| a != an)
            .map(|a| (centre[a] - view.center.0[a]).powi(2))
            .sum::<f64>()
            .sqrt();
        wanted.visible.push((d, request(key)));
        // The slabs just before and after, for scrolling through slices. A computed layer's
        // neighbours in the same block cost nothing when asked for; one in the next block
        // would cost a whole block's computation, so it waits until it is shown.
        if let Some((axis, off)) = key.slab {
            let chunk = l.chunk[an];
            let pos = key.index[an] * chunk + u64::from(off);
            for next in [pos.checked_sub(1), Some(pos + 1)].into_iter().flatten() {
                if next < l.shape[an] && !(layer.computed && next / chunk != key.index[an]) {
                    let mut index = key.index;
                    index[an] = next / chunk;
                    wanted.prefetch.push(request(ChunkKey {
                        index,
                        slab: Some((axis, (next % chunk) as u32)),
                        ..key
                    }));
                }
            }
        }
    }
    wanted
}

/// Frames of motion that reading ahead covers: while a plane moves along its normal, the
/// slabs it reaches within about this many frames are read with the one it shows.
pub const READ_AHEAD_FRAMES: f64 = 4.0;

/// The fastest motion along a plane's normal, in voxels per frame of the level drawn, at
/// which a panel keeps its level: a plane moving faster (scrolling quickly through slices,
/// or the panel cut across a pan) is drawn from the finest level at which it moves at
/// most this far per frame, and read ahead there, until it rests. Every slab it passes
/// would otherwise be read and uploaded for one frame: with the finest level read ahead,
/// a pan of 4 panels at 1280×800 on a software rasteriser fell from 33.5 to 21.8 fps for
/// the slab uploads alone.
pub const MOVING_MAX_STEP_VOX: f64 = 1.0;

/// Whether a step of `step_nm` along `plane`'s normal is motion for `layer` at
/// `nm_per_px` (not zero, and no longer than a chunk of [`pick_level`]'s level) rather than
/// a jump.
pub fn is_motion(layer: &LayerData, plane: Plane, nm_per_px: f64, step_nm: f64) -> bool {
    let n = plane.axes()[2];
    let step = step_nm.abs();
    layer
        .levels
        .get(pick_level(layer, plane, nm_per_px))
        .is_some_and(|l| step > 0.0 && step <= l.chunk[n] as f64 * l.voxel_size_nm[n])
}

/// The level to draw `layer` at on `plane` at `nm_per_px` while the plane moves `step_nm`
/// along its normal per frame (0 at rest): [`pick_level`]'s, or the finest coarser one at
/// which the plane moves at most [`MOVING_MAX_STEP_VOX`] voxels per frame (the coarsest
/// when none does). A step longer than a chunk of [`pick_level`]'s level is a jump, not
/// motion, and keeps that level.
pub fn pick_level_moving(layer: &LayerData, plane: Plane, nm_per_px: f64, step_nm: f64) -> usize {
    let base = pick_level(layer, plane, nm_per_px);
    if !is_motion(layer, plane, nm_per_px, step_nm) {
        return base;
    }
    let n = plane.axes()[2];
    let step = step_nm.abs();
    (base..layer.levels.len())
        .find(|&i| step <= layer.levels[i].voxel_size_nm[n] * MOVING_MAX_STEP_VOX * 1.000_001)
        .unwrap_or(layer.levels.len() - 1)
}

/// How far (nm, signed) the plane of `new` moved along its normal from `old`, when both
/// are the same axis-aligned plane and it moved; `None` otherwise.
pub(crate) fn normal_step_nm(old: &SliceView, new: &SliceView) -> Option<f64> {
    if old.plane != new.plane || old.oblique() || new.oblique() {
        return None;
    }
    let n = new.plane.axes()[2];
    let step = new.center.0[n] - old.center.0[n];
    (step != 0.0 && step.is_finite()).then_some(step)
}

/// The slabs to read ahead of `layer`'s plane in `view` (viewer id `uid`, drawn as
/// `kind`) when it moved `step_nm` along its normal since the last frame: for every chunk
/// the plane shows at the chosen level (read or not), about [`READ_AHEAD_FRAMES`] frames'
/// worth of slabs in the direction of motion, rounded out to a whole block of that many
/// slabs, one request per chunk the range crosses (its far slab, read from its near one).
/// A chunk is then read once per block of frames instead of once per frame, and the slab
/// a frame shows is there when it comes. The level is [`pick_level_moving`]'s. Motion of
/// less than half a voxel or more than [`MOVING_MAX_STEP_VOX`] voxels per frame of that
/// level, and rotated planes (drawn from whole chunks), read nothing ahead.
pub(crate) fn read_ahead(
    uid: u64,
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    step_nm: f64,
) -> Vec<Request> {
    let mut ahead = Vec::new();
    if view.oblique() || layer.levels.is_empty() {
        return ahead;
    }
    let level = pick_level_moving(layer, view.plane, view.nm_per_px, step_nm);
    let l = &layer.levels[level];
    let axes = view.plane.axes();
    let an = axes[2];
    let step_vox = step_nm / l.voxel_size_nm[an];
    let g = level_grid(layer, level, view, PixelRect::whole(view));
    if !(0.5..=MOVING_MAX_STEP_VOX * 1.000_001).contains(&step_vox.abs())
        || l.shape[an] == 0
        || g.normal.0 < 0
    {
        return ahead;
    }
    let distinct = |cells: &[(i64, u32)]| -> Vec<i64> {
        let mut v: Vec<i64> = cells.iter().map(|(c, _)| *c).filter(|c| *c >= 0).collect();
        v.dedup();
        v
    };
    let (cols, rows) = (distinct(&g.cols), distinct(&g.rows));
    let labels = kind == LayerKind::Segmentation && layer.channels == 1;
    let chunk = l.chunk[an].max(1);
    let lead = ((step_vox.abs() * READ_AHEAD_FRAMES).ceil() as u64).clamp(2, chunk.max(2));
    let pos = g.normal.0 as u64 * chunk + u64::from(g.normal.1);
    let last = l.shape[an] - 1;
    let forward = step_vox > 0.0;
    let (near, far) = if forward {
        if pos >= last {
            return ahead;
        }
        (pos + 1, (((pos + lead) / lead + 1) * lead - 1).min(last))
    } else {
        if pos == 0 {
            return ahead;
        }
        (pos - 1, (pos.saturating_sub(lead) / lead) * lead)
    };
    let (lo, hi) = (near.min(far), near.max(far));
    let mut chunks: Vec<u64> = (lo / chunk..=hi / chunk)
        // A computed layer's next block would cost a whole block's computation.
        .filter(|c| !layer.computed || *c == g.normal.0 as u64)
        .collect();
    if !forward {
        chunks.reverse();
    }
    for c in chunks {
        let (a, b) = (
            (c * chunk).max(lo) - c * chunk,
            ((c + 1) * chunk - 1).min(hi) - c * chunk,
        );
        let (from, to) = if forward { (a, b) } else { (b, a) };
        for &vc in &rows {
            for &hc in &cols {
                let mut key = g.slab_key(uid, level, axes, (hc, vc), labels);
                key.index[an] = c;
                key.slab = Some((an as u8, to as u32));
                ahead.push(Request {
                    key,
                    layer: Arc::clone(layer),
                    kind,
                    read_from: Some(from as u32),
                });
            }
        }
    }
    ahead
}

/// Value counts of a slice's first channel (pixels with data only), for contrast controls:
/// computed once per slice, drawn every frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Smallest value shown.
    pub min: f64,
    /// Largest value shown.
    pub max: f64,
    /// [`Histogram::BINS`] counts over `min..=max`.
    pub counts: Vec<u32>,
}

impl Histogram {
    /// Number of bins counted.
    pub const BINS: usize = 256;

    /// The histogram of `slice`'s first channel, or `None` without float data.
    pub fn of(slice: &LayerSlice) -> Option<Self> {
        let SliceValues::Float { values, .. } = &slice.values else {
            return None;
        };
        let n = (slice.width * slice.height) as usize;
        let shown = || {
            values[..n.min(values.len())]
                .iter()
                .zip(&slice.status)
                .filter(|(v, s)| **s == status::DATA && v.is_finite())
                .map(|(v, _)| f64::from(*v))
        };
        let (min, max) = shown().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if min > max {
            return None;
        }
        let span = if max > min { max - min } else { 1.0 };
        let mut counts = vec![0u32; Self::BINS];
        for v in shown() {
            let b = ((v - min) / span * Self::BINS as f64) as usize;
            counts[b.min(Self::BINS - 1)] += 1;
        }
        Some(Self { min, max, counts })
    }

    /// The counts in `n` bins over `lo..=hi` (a wider span than the data's, to show a
    /// contrast range beyond it); each counted bin goes where its centre falls.
    pub fn rebin(&self, lo: f64, hi: f64, n: usize) -> Vec<u32> {
        let mut out = vec![0u32; n.max(1)];
        let span = if hi > lo { hi - lo } else { 1.0 };
        let width = (self.max - self.min) / Self::BINS as f64;
        for (k, c) in self.counts.iter().enumerate() {
            let centre = self.min + (k as f64 + 0.5) * width;
            let b = ((centre - lo) / span * out.len() as f64).max(0.0) as usize;
            let last = out.len() - 1;
            out[b.min(last)] += c;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_and_world_points_round_trip_on_every_plane() {
        for plane in Plane::ALL {
            let v = SliceView {
                plane,
                center: WorldNm([100.0, 200.0, 300.0]),
                nm_per_px: 4.0,
                width_px: 40,
                height_px: 20,
                orientation: crate::render::orientation::Orientation::IDENTITY,
            };
            let p = v.world_at(30.5, 2.5);
            let (x, y) = v.pixel_of(&p);
            assert!((x - 30.5).abs() < 1e-9 && (y - 2.5).abs() < 1e-9);
            // The panel centre is the view centre; the normal coordinate never changes.
            assert_eq!(v.world_at(20.0, 10.0), v.center);
            assert_eq!(p.0[plane.axes()[2]], v.center.0[plane.axes()[2]]);
        }
        let v = SliceView {
            plane: Plane::Xz,
            center: WorldNm([0.0, 0.0, 0.0]),
            nm_per_px: 2.0,
            width_px: 10,
            height_px: 10,
            orientation: crate::render::orientation::Orientation::IDENTITY,
        };
        // One pixel right is +2 nm in x; one pixel down is +2 nm in z.
        assert_eq!(v.world_at(6.0, 5.0), WorldNm([0.0, 0.0, 2.0]));
        assert_eq!(v.world_at(5.0, 6.0), WorldNm([2.0, 0.0, 0.0]));
    }

    #[test]
    fn a_histogram_counts_shown_values_and_rebins_over_a_wider_span() {
        let slice = LayerSlice {
            width: 4,
            height: 1,
            values: SliceValues::Float {
                channels: 1,
                values: vec![0.0, 10.0, 10.0, 99.0],
            },
            status: vec![status::DATA, status::DATA, status::DATA, status::LOADING],
            level: 0,
            coarser: 0,
            loading: 1,
            errors: Vec::new(),
        };
        let h = Histogram::of(&slice).unwrap();
        assert_eq!((h.min, h.max), (0.0, 10.0));
        assert_eq!(h.counts.iter().sum::<u32>(), 3);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[255], 2);
        // Over 0..20 in 2 bins: everything is in the lower half.
        assert_eq!(h.rebin(0.0, 20.0, 2), vec![3, 0]);
        assert_eq!(h.rebin(0.0, 10.0, 2), vec![1, 2]);
    }

    #[test]
    fn reading_ahead_asks_for_whole_blocks_of_slabs_in_the_direction_of_motion() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::render::fixtures::small_volume(dir.path());
        // 16 voxels of 4 nm along z in chunks of 8.
        let layer = crate::render::layer::open_layer(&c.join("raw")).unwrap();
        // What reading ahead of the z slab `z` asks for after a step of `step_nm` along z,
        // for a one-pixel panel showing chunk (_, 1, 0): (chunk along z, far slab, first
        // slab).
        let ahead = |z: u64, step_nm: f64| -> Vec<(u64, u32, Option<u32>)> {
            let view = SliceView::aligned(
                Plane::Xy,
                WorldNm([z as f64 * 4.0 + 2.0, 38.0, 2.0]),
                4.0,
                1,
                1,
            );
            read_ahead(1, &layer, LayerKind::Image, &view, step_nm)
                .iter()
                .map(|r| {
                    assert_eq!((r.key.index[1], r.key.index[2]), (1, 0));
                    let (axis, far) = r.key.slab.unwrap();
                    assert_eq!(axis, 0);
                    (r.key.index[0], far, r.read_from)
                })
                .collect()
        };
        // One voxel per frame: 4 frames ahead, out to the end of the block of 4 (slabs 4–7).
        assert_eq!(ahead(3, 4.0), vec![(0, 7, Some(4))]);
        // When the plane enters that block, the next one (8–11) is asked for too; slabs
        // 5–7 were read with the first (the cache skips what it holds).
        assert_eq!(ahead(4, 4.0), vec![(0, 7, Some(5)), (1, 3, Some(0))]);
        assert_eq!(ahead(6, 4.0), vec![(0, 7, Some(7)), (1, 3, Some(0))]);
        // 3/4 voxel per frame: 3 frames ahead, to the end of the block of 3 slabs (6–8)
        // in the next chunk: one request per chunk.
        assert_eq!(ahead(3, 3.0), vec![(0, 7, Some(4)), (1, 0, Some(0))]);
        // Backwards: from slab 2 down to the start of the block of 4 below slab 3 - 4.
        assert_eq!(ahead(3, -4.0), vec![(0, 0, Some(2))]);
        assert_eq!(ahead(12, -4.0), vec![(1, 0, Some(3))]);
        // Nearest chunk first.
        assert_eq!(ahead(9, -4.0), vec![(1, 0, Some(0)), (0, 4, Some(7))]);
        // Less than half a voxel or (with no coarser level to draw) more than a voxel per
        // frame, or at the volume's end: nothing.
        assert_eq!(ahead(3, 1.0), vec![]);
        assert_eq!(ahead(3, 8.0), vec![]);
        assert_eq!(ahead(15, 4.0), vec![]);
        assert_eq!(ahead(0, -4.0), vec![]);
    }

    #[test]
    fn a_window_composes_the_same_pixels_as_the_whole_panel() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::render::fixtures::small_volume(dir.path());
        let layer = crate::render::layer::open_layer(&c.join("raw")).unwrap();
        let cache = ChunkCache::new(16 << 20, 2);
        // An odd zoom and centre, so that chunk borders fall between pixels unevenly.
        let view = SliceView {
            plane: Plane::Xz,
            center: WorldNm([30.3, 17.0, 29.1]),
            nm_per_px: 1.7,
            width_px: 41,
            height_px: 37,
            orientation: crate::render::orientation::Orientation::IDENTITY,
        };
        let compose_all = |cache: &ChunkCache| loop {
            let (slice, wanted) = compose(1, &layer, LayerKind::Image, &view, cache);
            if wanted.visible.is_empty() {
                return slice;
            }
            cache.request(wanted.into_requests());
            assert!(cache.wait_idle(std::time::Duration::from_secs(10)));
        };
        let whole = compose_all(&cache);
        assert_eq!(whole.loading, 0);
        let [h, v, n] = view.plane.axes();
        let l = &layer.levels[0];
        let mut covered = 0;
        for cz in 0..2u64 {
            for cx in 0..2u64 {
                let mut index = [0u64; 3];
                index[h] = cx;
                index[v] = cz;
                // The plane is at y = 17 nm: voxel 4, chunk 0.
                index[n] = 0;
                let rect = chunk_rect(&layer, 0, &view, index).unwrap();
                let (part, _) = compose_window(1, &layer, LayerKind::Image, &view, rect, &cache);
                assert_eq!((part.width, part.height), (rect.width, rect.height));
                for y in 0..rect.height {
                    for x in 0..rect.width {
                        assert_eq!(
                            part.value_at(x, y),
                            whole.value_at(rect.x0 + x, rect.y0 + y),
                            "chunk {index:?}, pixel ({x}, {y}) of {rect:?}"
                        );
                    }
                }
                // Every pixel of the rectangle shows that chunk, and the ones next to it
                // do not.
                let vx = |x: u32| ((view.world_at(f64::from(x) + 0.5, 0.0).0[h]) / 4.0).floor();
                let chunk_of = |x: u32| (vx(x) / l.chunk[h] as f64).floor() as i64;
                assert_eq!(chunk_of(rect.x0), cx as i64);
                assert_eq!(chunk_of(rect.x0 + rect.width - 1), cx as i64);
                if rect.x0 > 0 {
                    assert_ne!(chunk_of(rect.x0 - 1), cx as i64);
                }
                covered += rect.width * rect.height;
            }
        }
        // The four chunks the plane crosses cover the pixels inside the volume.
        let inside = (0..whole.status.len())
            .filter(|i| whole.status[*i] != status::OUTSIDE)
            .count();
        assert_eq!(covered as usize, inside);
        // Another plane's chunk is not on screen.
        assert_eq!(chunk_rect(&layer, 0, &view, [0, 1, 0]), None);
    }
}
