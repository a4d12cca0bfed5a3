//! Cross-sections: which world point each screen pixel of a panel shows, and the values of
//! one layer at those points, gathered from cached chunks of the best scale level (coarser
//! cached levels stand in while the finer one loads). Also lists the chunks still needed,
//! centre of the view first.

use std::collections::HashMap;
use std::sync::Arc;

use super::cache::{Chunk, ChunkCache, ChunkKey, Request};
use super::layer::{ChunkValues, LayerData, LayerKind, WorldNm};

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
}

impl SliceView {
    /// The world point at panel position (`x`, `y`) in pixels from the top-left corner
    /// (pixel centres are at half-integers).
    pub fn world_at(&self, x: f64, y: f64) -> WorldNm {
        let [h, v, _] = self.plane.axes();
        let mut p = self.center;
        p.0[h] += (x - f64::from(self.width_px) / 2.0) * self.nm_per_px;
        p.0[v] += (y - f64::from(self.height_px) / 2.0) * self.nm_per_px;
        p
    }

    /// The panel position (pixels from the top-left corner) of world point `p`'s projection.
    pub fn pixel_of(&self, p: &WorldNm) -> (f64, f64) {
        let [h, v, _] = self.plane.axes();
        (
            (p.0[h] - self.center.0[h]) / self.nm_per_px + f64::from(self.width_px) / 2.0,
            (p.0[v] - self.center.0[v]) / self.nm_per_px + f64::from(self.height_px) / 2.0,
        )
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

impl LayerSlice {
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
#[derive(Default)]
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
    let [h, v, _] = plane.axes();
    let mut best = 0;
    for (i, l) in layer.levels.iter().enumerate() {
        if l.voxel_size_nm[h].max(l.voxel_size_nm[v]) <= nm_per_px * 1.000_001 {
            best = i;
        }
    }
    best
}

/// Per level: the voxel index of each column and row (-1 outside), and of the plane.
struct LevelGrid {
    cols: Vec<i64>,
    rows: Vec<i64>,
    normal: i64,
}

fn level_grid(layer: &LayerData, level: usize, view: &SliceView) -> LevelGrid {
    let l = &layer.levels[level];
    let [h, v, n] = view.plane.axes();
    let index = |axis: usize, world: f64| -> i64 {
        let x = ((world - l.offset_nm[axis]) / l.voxel_size_nm[axis]).floor();
        if x >= 0.0 && x < l.shape[axis] as f64 {
            x as i64
        } else {
            -1
        }
    };
    let cols = (0..view.width_px)
        .map(|x| index(h, view.world_at(f64::from(x) + 0.5, 0.0).0[h]))
        .collect();
    let rows = (0..view.height_px)
        .map(|y| index(v, view.world_at(0.0, f64::from(y) + 0.5).0[v]))
        .collect();
    LevelGrid {
        cols,
        rows,
        normal: index(n, view.center.0[n]),
    }
}

/// Draws `layer` (viewer id `uid`, drawn as `kind`) on `view` from what `cache` holds, and
/// lists the chunks still wanted.
pub fn compose(
    uid: u64,
    layer: &Arc<LayerData>,
    kind: LayerKind,
    view: &SliceView,
    cache: &ChunkCache,
) -> (LayerSlice, Wanted) {
    let (w, h) = (view.width_px as usize, view.height_px as usize);
    let pixels = w * h;
    let chosen = pick_level(layer, view.plane, view.nm_per_px);
    let coarsest = layer.levels.len() - 1;
    let grids: Vec<LevelGrid> = (chosen..=coarsest)
        .map(|l| level_grid(layer, l, view))
        .collect();
    let [ah, av, an] = view.plane.axes();
    let labels = kind == LayerKind::Segmentation && layer.channels == 1;
    let channels = if labels { 1 } else { layer.channels.max(1) };
    let fill = layer.fill_value;
    let mut fvals = if labels {
        Vec::new()
    } else {
        vec![fill as f32; pixels * channels]
    };
    let mut lvals = if labels {
        vec![fill.max(0.0) as u64; pixels]
    } else {
        Vec::new()
    };
    let mut stat = vec![status::OUTSIDE; pixels];
    let mut memo: HashMap<ChunkKey, Option<Arc<Chunk>>> = HashMap::new();
    let mut wanted_chosen: HashMap<ChunkKey, ()> = HashMap::new();
    let mut wanted_coarse: HashMap<ChunkKey, ()> = HashMap::new();
    let mut errors: Vec<String> = Vec::new();
    let (mut coarser, mut loading) = (0usize, 0usize);
    let mut lookup = |key: ChunkKey| -> Option<Arc<Chunk>> {
        memo.entry(key).or_insert_with(|| cache.get(&key)).clone()
    };
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            for (gi, g) in grids.iter().enumerate() {
                let level = chosen + gi;
                let (cx, cy) = (g.cols[x], g.rows[y]);
                if cx < 0 || cy < 0 || g.normal < 0 {
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
                let l = &layer.levels[level];
                let mut vox = [0i64; 3];
                vox[ah] = cx;
                vox[av] = cy;
                vox[an] = g.normal;
                let index: [u64; 3] = std::array::from_fn(|a| vox[a] as u64 / l.chunk[a]);
                let key = ChunkKey {
                    layer: uid,
                    level,
                    index,
                    labels,
                };
                match lookup(key).as_deref() {
                    Some(Chunk::Ready(values)) => {
                        let local: [usize; 3] = std::array::from_fn(|a| {
                            (vox[a] as u64 - index[a] * l.chunk[a]) as usize
                        });
                        let s = values.shape();
                        let off = (local[0] * s[1] + local[1]) * s[2] + local[2];
                        match values {
                            ChunkValues::Labels { values, .. } if labels => lvals[i] = values[off],
                            ChunkValues::Float {
                                values,
                                channels: cc,
                                ..
                            } if !labels => {
                                let n = s[0] * s[1] * s[2];
                                for c in 0..channels.min(*cc) {
                                    fvals[c * pixels + i] = values[c * n + off];
                                }
                            }
                            _ => {}
                        }
                        stat[i] = status::DATA;
                        if gi > 0 {
                            coarser += 1;
                        }
                        break;
                    }
                    Some(Chunk::Failed(message)) => {
                        if gi == 0 {
                            stat[i] = status::FAILED;
                            if !errors.contains(message) && errors.len() < 8 {
                                errors.push(message.clone());
                            }
                            break;
                        }
                    }
                    None => {
                        if gi == 0 {
                            wanted_chosen.insert(key, ());
                        }
                        if level == coarsest {
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
    let request = |key: ChunkKey| Request {
        key,
        layer: Arc::clone(layer),
        kind,
    };
    let mut wanted = Wanted::default();
    if chosen != coarsest {
        wanted.coarse = wanted_coarse.into_keys().map(request).collect();
    }
    let l = &layer.levels[chosen];
    for key in wanted_chosen.keys() {
        let centre: [f64; 3] = std::array::from_fn(|a| {
            l.offset_nm[a] + ((key.index[a] as f64 + 0.5) * l.chunk[a] as f64) * l.voxel_size_nm[a]
        });
        let d = (0..3)
            .filter(|&a| a != an)
            .map(|a| (centre[a] - view.center.0[a]).powi(2))
            .sum::<f64>()
            .sqrt();
        wanted.visible.push((d, request(*key)));
        for step in [-1i64, 1] {
            let n = key.index[an] as i64 + step;
            if n >= 0 && (n as u64) < l.grid[an] {
                let mut index = key.index;
                index[an] = n as u64;
                wanted.prefetch.push(request(ChunkKey { index, ..*key }));
            }
        }
    }
    let values = if labels {
        SliceValues::Labels(lvals)
    } else {
        SliceValues::Float {
            channels,
            values: fvals,
        }
    };
    (
        LayerSlice {
            width: view.width_px,
            height: view.height_px,
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
        };
        // One pixel right is +2 nm in x; one pixel down is +2 nm in z.
        assert_eq!(v.world_at(6.0, 5.0), WorldNm([0.0, 0.0, 2.0]));
        assert_eq!(v.world_at(5.0, 6.0), WorldNm([2.0, 0.0, 0.0]));
    }
}
