//! The 3D panel's data: an orbit camera (yaw about y, then pitch about x, orthographic)
//! shared by the plane outlines and the ray caster, the coarse scale levels it draws
//! (read off the UI thread by [`VolumeJob`]) and a maximum-intensity projection on the CPU.

use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;

use super::layer::{ChunkValues, LayerData, LayerKind};

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
    let (values, shape, l) = read_coarse_values(layer, LayerKind::Image, |c| match c {
        ChunkValues::Float { values, shape, .. } => Some((values, shape)),
        ChunkValues::Labels { .. } => None,
    })?;
    Ok(CoarseVolume {
        values,
        shape,
        voxel_size_nm: l.0,
        offset_nm: l.1,
    })
}

/// The label ids of a whole scale level in memory, for the 3D panel.
pub struct CoarseLabels {
    /// Ids z, y, x.
    pub values: Vec<u64>,
    /// Voxels along z, y, x.
    pub shape: [usize; 3],
    /// Voxel size along z, y, x in nm.
    pub voxel_size_nm: [f64; 3],
    /// World position of the first voxel's corner in nm.
    pub offset_nm: [f64; 3],
}

/// [`read_coarse`] for a segmentation layer: its ids.
pub fn read_coarse_labels(layer: &LayerData) -> Result<CoarseLabels, String> {
    let (values, shape, l) = read_coarse_values(layer, LayerKind::Segmentation, |c| match c {
        ChunkValues::Labels { values, shape } => Some((values, shape)),
        ChunkValues::Float { .. } => None,
    })?;
    Ok(CoarseLabels {
        values,
        shape,
        voxel_size_nm: l.0,
        offset_nm: l.1,
    })
}

/// The voxels (first channel) of the level [`read_coarse`] picks, read as `kind` and
/// taken from each chunk by `take`; with their shape, voxel size and offset.
#[allow(clippy::type_complexity)]
fn read_coarse_values<T: Copy + Default>(
    layer: &LayerData,
    kind: LayerKind,
    take: impl Fn(ChunkValues) -> Option<(Vec<T>, [usize; 3])>,
) -> Result<(Vec<T>, [usize; 3], ([f64; 3], [f64; 3])), String> {
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
    let mut values = vec![T::default(); shape.iter().product()];
    for cz in 0..l.grid[0] {
        for cy in 0..l.grid[1] {
            for cx in 0..l.grid[2] {
                let chunk = layer.read_chunk(level, [cz, cy, cx], kind)?;
                let Some((v, s)) = take(chunk) else {
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
    Ok((values, shape, (l.voxel_size_nm, l.offset_nm)))
}

impl CoarseVolume {
    /// The volume's centre in world nm (z, y, x).
    pub fn centre_nm(&self) -> [f64; 3] {
        std::array::from_fn(|a| {
            self.offset_nm[a] + self.shape[a] as f64 * self.voxel_size_nm[a] / 2.0
        })
    }
}

/// The 3D panel rendered on the CPU: `width` × `height` RGBA pixels, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// RGBA bytes (unmultiplied).
    pub rgba: Vec<u8>,
}

/// A volume read off the UI thread: of which layer, the result once there, and the
/// read under way.
struct Loading<T> {
    layer: Option<u64>,
    value: Option<Arc<T>>,
    error: Option<String>,
    rx: Option<Receiver<Result<T, String>>>,
}

impl<T> Default for Loading<T> {
    fn default() -> Self {
        Self {
            layer: None,
            value: None,
            error: None,
            rx: None,
        }
    }
}

impl<T: Send + 'static> Loading<T> {
    /// The volume of `layer` (viewer id `uid`) once read; starts reading it with `read`
    /// when the layer changed (`None`: nothing).
    fn poll(
        &mut self,
        layer: Option<(&Arc<LayerData>, u64)>,
        read: fn(&LayerData) -> Result<T, String>,
        wake: &Arc<dyn Fn() + Send + Sync>,
    ) -> Option<Arc<T>> {
        let uid = layer.map(|(_, u)| u);
        if self.layer != uid {
            *self = Loading {
                layer: uid,
                ..Loading::default()
            };
            if let Some((l, _)) = layer {
                let (tx, rx) = channel();
                let l = Arc::clone(l);
                let w = Arc::clone(wake);
                std::thread::spawn(move || {
                    let _ = tx.send(read(&l));
                    w();
                });
                self.rx = Some(rx);
            }
        }
        if let Some(rx) = &self.rx {
            match rx.try_recv() {
                Ok(Ok(v)) => {
                    self.value = Some(Arc::new(v));
                    self.rx = None;
                }
                Ok(Err(e)) => {
                    self.error = Some(e);
                    self.rx = None;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.error = Some("reading the 3D volume stopped".into());
                    self.rx = None;
                }
            }
        }
        self.value.clone()
    }
}

/// The 3D panel's background work: reading the coarse volumes of its image and
/// segmentation layers, and, without a GPU, ray casting its image on the CPU
/// ([`super::volume_render::render_cpu`]); the panel shows the last finished image.
#[derive(Default)]
pub struct VolumeJob {
    image: Loading<CoarseVolume>,
    labels: Loading<CoarseLabels>,
    rendering: Option<Receiver<VolumeImage>>,
    drawn: Option<String>,
}

impl VolumeJob {
    /// Why a volume could not be read, if one could not.
    pub fn error(&self) -> Option<&str> {
        self.image.error.as_deref().or(self.labels.error.as_deref())
    }

    /// Reading a volume or rendering the image is under way.
    pub fn busy(&self) -> bool {
        self.image.rx.is_some() || self.labels.rx.is_some() || self.rendering.is_some()
    }

    /// The coarse volumes of the image layer `image` and the segmentation layer `labels`
    /// (each with its viewer id) once read; starts reading those that changed. `wake` is
    /// called from the background thread when one is read.
    #[allow(clippy::type_complexity)]
    pub fn volumes(
        &mut self,
        image: Option<(&Arc<LayerData>, u64)>,
        labels: Option<(&Arc<LayerData>, u64)>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> (Option<Arc<CoarseVolume>>, Option<Arc<CoarseLabels>>) {
        (
            self.image.poll(image, read_coarse, &wake),
            self.labels.poll(labels, read_coarse_labels, &wake),
        )
    }

    /// A new CPU image of `draw` (`width` × `height` pixels) when one finished; starts
    /// rendering it when it changed.
    pub fn render_cpu(
        &mut self,
        draw: &super::volume_render::VolumeDraw,
        (width, height): (usize, usize),
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Option<VolumeImage> {
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
        let key = format!("{} {width}x{height}", draw.key());
        if self.rendering.is_none() && self.drawn.as_deref() != Some(key.as_str()) {
            self.drawn = Some(key);
            let draw = draw.clone();
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                let rgba = super::volume_render::render_cpu(&draw, width as u32, height as u32);
                let _ = tx.send(VolumeImage {
                    width,
                    height,
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
}
