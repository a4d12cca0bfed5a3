//! The 3D panel: an orbit camera (yaw about y, then pitch about x, orthographic) shared by
//! the plane outlines and a maximum-intensity projection (MIP) of a coarse scale level,
//! read and rendered off the UI thread by [`MipJob`].

use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;

use super::layer::{ChunkValues, LayerData, LayerKind};
use super::state::LayerSettings;

/// Most voxels of the level a MIP reads (the coarsest level is used; finer ones while they
/// stay below this).
pub const MIP_MAX_VOXELS: u64 = 1 << 21;

/// The 3D panel's camera angles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Orbit {
    /// Rotation about the vertical (y) axis, degrees.
    pub yaw_deg: f64,
    /// Rotation about the horizontal (x) axis after the yaw, degrees.
    pub pitch_deg: f64,
}

impl Orbit {
    /// Screen coordinates (right, down) and depth (into the screen) of a point given as
    /// (x, y, z) relative to the volume centre.
    pub fn project(&self, p: [f64; 3]) -> [f64; 3] {
        let (sa, ca) = self.yaw_deg.to_radians().sin_cos();
        let (sb, cb) = self.pitch_deg.to_radians().sin_cos();
        let [x, y, z] = p;
        let x1 = x * ca + z * sa;
        let z1 = -x * sa + z * ca;
        [x1, y * cb - z1 * sb, y * sb + z1 * cb]
    }

    /// The inverse of [`Orbit::project`].
    pub fn unproject(&self, s: [f64; 3]) -> [f64; 3] {
        let (sa, ca) = self.yaw_deg.to_radians().sin_cos();
        let (sb, cb) = self.pitch_deg.to_radians().sin_cos();
        let [x1, y1, d] = s;
        let y = y1 * cb + d * sb;
        let z1 = -y1 * sb + d * cb;
        [x1 * ca - z1 * sa, y, x1 * sa + z1 * ca]
    }
}

/// A whole scale level in memory, for projections.
pub struct CoarseVolume {
    /// Values z, y, x (first channel).
    pub values: Vec<f32>,
    /// Voxels along z, y, x.
    pub shape: [usize; 3],
    /// Voxel size along z, y, x in nm.
    pub voxel_size_nm: [f64; 3],
    /// World position of the first voxel's corner in nm.
    pub offset_nm: [f64; 3],
}

/// The voxels of a level of `shape` (saturating: sizes from a file never overflow).
fn voxel_count(shape: &[u64]) -> u64 {
    shape.iter().fold(1u64, |a, b| a.saturating_mul(*b))
}

/// Reads the finest level of `layer` with at most [`MIP_MAX_VOXELS`] voxels (else the
/// coarsest), chunk by chunk.
pub fn read_coarse(layer: &LayerData) -> Result<CoarseVolume, String> {
    let level = layer
        .levels
        .iter()
        .position(|l| voxel_count(&l.shape) <= MIP_MAX_VOXELS)
        .unwrap_or(layer.levels.len().saturating_sub(1));
    let l = layer
        .levels
        .get(level)
        .ok_or_else(|| format!("{}: no scale level", layer.path.display()))?;
    if voxel_count(&l.shape) > 4 * MIP_MAX_VOXELS {
        return Err(format!(
            "{}: no scale level small enough for the 3D view (coarsest {:?})",
            layer.path.display(),
            l.shape
        ));
    }
    let shape = l.shape.map(|s| s as usize);
    let mut values = vec![0f32; shape.iter().product()];
    for cz in 0..l.grid[0] {
        for cy in 0..l.grid[1] {
            for cx in 0..l.grid[2] {
                let chunk = layer.read_chunk(level, [cz, cy, cx], LayerKind::Image)?;
                let ChunkValues::Float {
                    values: v,
                    shape: s,
                    ..
                } = chunk
                else {
                    continue;
                };
                let base = [cz, cy, cx]
                    .iter()
                    .zip(&l.chunk)
                    .map(|(i, c)| (i * c) as usize)
                    .collect::<Vec<_>>();
                for z in 0..s[0] {
                    for y in 0..s[1] {
                        let src = (z * s[1] + y) * s[2];
                        let dst = ((base[0] + z) * shape[1] + base[1] + y) * shape[2] + base[2];
                        values[dst..dst + s[2]].copy_from_slice(&v[src..src + s[2]]);
                    }
                }
            }
        }
    }
    Ok(CoarseVolume {
        values,
        shape,
        voxel_size_nm: l.voxel_size_nm,
        offset_nm: l.offset_nm,
    })
}

impl CoarseVolume {
    /// The volume's centre in world nm (z, y, x).
    pub fn centre_nm(&self) -> [f64; 3] {
        std::array::from_fn(|a| {
            self.offset_nm[a] + self.shape[a] as f64 * self.voxel_size_nm[a] / 2.0
        })
    }

    /// The maximum value along each pixel's ray through the volume, row-major
    /// `width × height`; NaN where the ray misses. `nm_per_px` sets the zoom; the volume
    /// centre is drawn at the image centre.
    pub fn mip(&self, orbit: &Orbit, width: usize, height: usize, nm_per_px: f64) -> Vec<f32> {
        let centre = self.centre_nm();
        let half: [f64; 3] =
            std::array::from_fn(|a| self.shape[a] as f64 * self.voxel_size_nm[a] / 2.0);
        let radius = (half[0].powi(2) + half[1].powi(2) + half[2].powi(2)).sqrt();
        let step_nm = self
            .voxel_size_nm
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            * 0.75;
        let steps = ((2.0 * radius / step_nm).ceil() as usize).clamp(2, 1024);
        let mut out = vec![f32::NAN; width * height];
        for py in 0..height {
            for px in 0..width {
                let sx = (px as f64 + 0.5 - width as f64 / 2.0) * nm_per_px;
                let sy = (py as f64 + 0.5 - height as f64 / 2.0) * nm_per_px;
                let mut best = f32::NEG_INFINITY;
                for k in 0..steps {
                    let d = -radius + 2.0 * radius * (k as f64 + 0.5) / steps as f64;
                    // (x, y, z) relative to the centre, back to z, y, x voxel indices.
                    let [x, y, z] = orbit.unproject([sx, sy, d]);
                    let w = [z + centre[0], y + centre[1], x + centre[2]];
                    let mut idx = [0usize; 3];
                    let mut inside = true;
                    for a in 0..3 {
                        let v = ((w[a] - self.offset_nm[a]) / self.voxel_size_nm[a]).floor();
                        if v < 0.0 || v >= self.shape[a] as f64 {
                            inside = false;
                            break;
                        }
                        idx[a] = v as usize;
                    }
                    if inside {
                        let v =
                            self.values[(idx[0] * self.shape[1] + idx[1]) * self.shape[2] + idx[2]];
                        best = best.max(v);
                    }
                }
                if best > f32::NEG_INFINITY {
                    out[py * width + px] = best;
                }
            }
        }
        out
    }
}

/// RGBA pixels of a MIP drawn with a layer's range and colormap (black where rays miss).
pub fn mip_rgba(mip: &[f32], settings: &LayerSettings) -> Vec<u8> {
    let (range, cmap, invert) = match settings {
        LayerSettings::Image(s) => (s.range, s.colormap, s.invert),
        LayerSettings::Prediction(s) => (s.range, s.colormap, false),
        LayerSettings::Segmentation(_) => ([0.0, 1.0], super::colors::Colormap::Grey, false),
    };
    let span = range[1] - range[0];
    mip.iter()
        .flat_map(|v| {
            if v.is_nan() {
                return [0, 0, 0, 255];
            }
            let mut t = if span == 0.0 {
                1.0
            } else {
                (f64::from(*v) - range[0]) / span
            };
            if invert {
                t = 1.0 - t;
            }
            let [r, g, b] = cmap.rgb(t);
            [r, g, b, 255]
        })
        .collect()
}

/// A rendered projection: `width` × `height` RGBA pixels, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct MipImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// RGBA bytes (unmultiplied).
    pub rgba: Vec<u8>,
}

/// What a projection is drawn with: the camera, the panel size in points, its scale and the
/// layer's drawing settings.
#[derive(Debug, Clone, PartialEq)]
struct MipKey {
    orbit: Orbit,
    panel: [f32; 2],
    scale: f64,
    settings: LayerSettings,
}

/// The 3D panel's projection: the coarse volume of one layer and its image, each computed
/// on a background thread; the panel shows the last finished image.
#[derive(Default)]
pub struct MipJob {
    layer: Option<u64>,
    volume: Option<Arc<CoarseVolume>>,
    error: Option<String>,
    loading: Option<Receiver<Result<CoarseVolume, String>>>,
    rendering: Option<Receiver<MipImage>>,
    drawn: Option<MipKey>,
}

impl MipJob {
    /// Why the volume could not be read, if it could not.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Reading the volume or rendering the projection is under way.
    pub fn busy(&self) -> bool {
        self.loading.is_some() || self.rendering.is_some()
    }

    /// A new image when one finished; starts reading layer `uid`'s volume or rendering its
    /// projection for a `panel` of width × height points at `scale` points per nm when
    /// they changed. `wake` is called from the background thread when a result is ready.
    pub fn poll(
        &mut self,
        layer: &Arc<LayerData>,
        uid: u64,
        orbit: Orbit,
        (panel, scale): ([f32; 2], f64),
        settings: &LayerSettings,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Option<MipImage> {
        if self.layer != Some(uid) {
            *self = MipJob {
                layer: Some(uid),
                ..MipJob::default()
            };
            let (tx, rx) = channel();
            let l = Arc::clone(layer);
            let w = Arc::clone(&wake);
            std::thread::spawn(move || {
                let _ = tx.send(read_coarse(&l));
                w();
            });
            self.loading = Some(rx);
        }
        if let Some(rx) = &self.loading {
            match rx.try_recv() {
                Ok(Ok(v)) => {
                    self.volume = Some(Arc::new(v));
                    self.loading = None;
                }
                Ok(Err(e)) => {
                    self.error = Some(e);
                    self.loading = None;
                }
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => {
                    self.error = Some("reading the 3D volume stopped".into());
                    self.loading = None;
                }
            }
        }
        let mut finished = None;
        if let Some(rx) = &self.rendering {
            match rx.try_recv() {
                Ok(img) => {
                    finished = Some(img);
                    self.rendering = None;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.rendering = None,
            }
        }
        let volume = self.volume.clone()?;
        let key = MipKey {
            orbit,
            panel,
            scale,
            settings: settings.clone(),
        };
        if self.rendering.is_none() && self.drawn.as_ref() != Some(&key) {
            self.drawn = Some(key);
            let factor = (panel[0].max(panel[1]) / 192.0).ceil().max(1.0);
            let (w, h) = (
                (panel[0] / factor).max(1.0) as usize,
                (panel[1] / factor).max(1.0) as usize,
            );
            let nm_per_px = f64::from(factor) / scale.max(1e-12);
            let settings = settings.clone();
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                let m = volume.mip(&orbit, w, h, nm_per_px);
                let rgba = mip_rgba(&m, &settings);
                let _ = tx.send(MipImage {
                    width: w,
                    height: h,
                    rgba,
                });
                wake();
            });
            self.rendering = Some(rx);
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_round_trips_and_starts_axis_aligned() {
        let o = Orbit {
            yaw_deg: 35.0,
            pitch_deg: 25.0,
        };
        let p = [3.0, -2.0, 7.0];
        let back = o.unproject(o.project(p));
        assert!((0..3).all(|a| (back[a] - p[a]).abs() < 1e-12));
        let flat = Orbit {
            yaw_deg: 0.0,
            pitch_deg: 0.0,
        };
        assert_eq!(flat.project(p), p);
    }

    #[test]
    fn the_mip_of_a_bright_voxel_shows_where_it_projects() {
        // 8³ volume of 1 nm voxels, one bright voxel at (z, y, x) = (1, 2, 6).
        let mut values = vec![0.1f32; 512];
        values[(8 + 2) * 8 + 6] = 1.0;
        let v = CoarseVolume {
            values,
            shape: [8, 8, 8],
            voxel_size_nm: [1.0; 3],
            offset_nm: [0.0; 3],
        };
        let straight = Orbit {
            yaw_deg: 0.0,
            pitch_deg: 0.0,
        };
        let m = v.mip(&straight, 8, 8, 1.0);
        // Looking down z: pixel (x 6, y 2) is the maximum, the rest the background.
        assert_eq!(m[2 * 8 + 6], 1.0);
        assert_eq!(m[2 * 8 + 5], 0.1);
        // A 20-pixel image has a margin the rays miss.
        let m = v.mip(&straight, 20, 20, 1.0);
        assert!(m[0].is_nan());
    }
}
