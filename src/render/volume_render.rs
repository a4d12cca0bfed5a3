//! What the 3D panel draws and its CPU reference: an orthographic ray caster over a coarse
//! level of an image layer (maximum-intensity projection) and of a segmentation layer (the
//! first segment each ray meets in its neuroglancer colour, nearer brighter and lit by the
//! face of the voxel it entered; only the selected segments when some are), with the three
//! cross-section planes drawn textured where the rays cross them. The nearest surface — a
//! plane or a segment — is drawn; where a ray meets none, the projection.
//! [`VolumeUniforms`] holds every number the GPU shader (`shaders/volume.wgsl`) uses;
//! [`render_cpu`] computes the same colours from the same `f32` values in the same order.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::colors::{segment_color, Colormap};
use super::orientation::Orientation;
use super::volume::{CoarseLabels, CoarseVolume, Orbit};

/// Most selected segments the 3D panel isolates (as the slice shader).
pub const MAX_SELECTED_3D: usize = 32;

/// Most samples along a ray.
pub const MAX_STEPS: u32 = 512;

/// How the image volume is coloured.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageLook {
    /// Values mapped to the colormap's ends.
    pub range: [f64; 2],
    /// The colormap.
    pub colormap: Colormap,
    /// Flip the colormap.
    pub invert: bool,
}

/// How the segmentation volume is coloured.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelLook {
    /// Segments drawn alone when any (the first [`MAX_SELECTED_3D`]).
    pub selected: Vec<u64>,
    /// neuroglancer's colour seed.
    pub color_seed: u32,
    /// Opacity of segment colours over the image on the planes.
    pub alpha: f32,
}

/// Everything the 3D panel's image depends on.
#[derive(Clone)]
pub struct VolumeDraw {
    /// The camera's angles.
    pub orbit: Orbit,
    /// The world point (z, y, x nm) at the image centre, which the camera orbits.
    pub centre_nm: [f64; 3],
    /// Zoom: nanometres per image pixel.
    pub nm_per_px: f64,
    /// The image layer's coarse volume, projected.
    pub image: Option<(Arc<CoarseVolume>, ImageLook)>,
    /// The segmentation layer's coarse volume, drawn as surfaces.
    pub labels: Option<(Arc<CoarseLabels>, LabelLook)>,
    /// The cross-sections' common point (z, y, x nm) and rotation, when drawn.
    pub planes: Option<([f64; 3], Orientation)>,
}

impl VolumeDraw {
    /// What identifies the image drawn: the volumes' addresses and every setting.
    pub fn key(&self) -> String {
        format!(
            "{:?} {:?} {} {:?} {:?} {:?}",
            self.orbit,
            self.centre_nm,
            self.nm_per_px,
            self.image
                .as_ref()
                .map(|(v, l)| (Arc::as_ptr(v) as usize, l)),
            self.labels
                .as_ref()
                .map(|(v, l)| (Arc::as_ptr(v) as usize, l)),
            self.planes,
        )
    }
}

/// The planes of the 3D panel: their common point (z, y, x nm) and rotation.
pub type Planes = ([f64; 3], Orientation);

/// Keeps the 3D panel's planes where they are while the view keeps moving, and moves
/// them once it has been still for [`SettledPlanes::SETTLE`]: panning then costs no
/// redrawing of the 3D panel frame after frame (its outlines follow at once).
#[derive(Debug, Default)]
pub struct SettledPlanes {
    shown: Option<Planes>,
    seen: Option<(Planes, std::time::Instant)>,
}

impl SettledPlanes {
    /// How long the view must stay still before the planes move.
    pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(150);

    /// The planes to draw at `now` when the view's are `planes`, and how long until they
    /// settle (`None` when the drawn planes are the view's).
    pub fn update(
        &mut self,
        planes: Planes,
        now: std::time::Instant,
    ) -> (Planes, Option<std::time::Duration>) {
        let Some(shown) = self.shown else {
            self.shown = Some(planes);
            self.seen = Some((planes, now));
            return (planes, None);
        };
        if shown == planes {
            self.seen = Some((planes, now));
            return (planes, None);
        }
        let since = match self.seen {
            Some((p, t)) if p == planes => now.saturating_duration_since(t),
            _ => {
                self.seen = Some((planes, now));
                std::time::Duration::ZERO
            }
        };
        if since >= Self::SETTLE {
            self.shown = Some(planes);
            return (planes, None);
        }
        (shown, Some(Self::SETTLE - since))
    }
}

/// The uniforms of `shaders/volume.wgsl` (same layout).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct VolumeUniforms {
    /// World step (z, y, x) of one nm to the right on screen.
    pub right: [f32; 4],
    /// ... one nm down.
    pub down: [f32; 4],
    /// ... one nm into the screen.
    pub forward: [f32; 4],
    /// The world point at the image centre and the rays' half-length (nm).
    pub centre: [f32; 4],
    /// Image width, height (px), nm per px, samples per ray.
    pub view: [f32; 4],
    /// The image's top-left corner in its target (px).
    pub origin: [f32; 4],
    /// Image volume: world corner of its first voxel.
    pub image_off: [f32; 4],
    /// Image volume: 1 / voxel size.
    pub image_inv: [f32; 4],
    /// Image volume: voxels, drawn (1).
    pub image_shape: [u32; 4],
    /// Segmentation volume: world corner of its first voxel.
    pub label_off: [f32; 4],
    /// Segmentation volume: 1 / voxel size.
    pub label_inv: [f32; 4],
    /// Segmentation volume: voxels, drawn (1).
    pub label_shape: [u32; 4],
    /// Range lo, 1 / (hi − lo) (0: a step at lo), invert (1).
    pub image_look: [f32; 4],
    /// Colour seed, selected count, opacity on planes (f32 bits), planes drawn (1).
    pub label_look: [u32; 4],
    /// The planes' common point.
    pub position: [f32; 4],
    /// Each plane's normal and 1 / (forward · normal) (0: seen edge-on).
    pub normals: [[f32; 4]; 3],
    /// 1 / forward per axis (0 where forward is 0).
    pub inv_forward: [f32; 4],
    /// The volumes' box: lowest corner, and samples per nm of ray.
    pub bounds_lo: [f32; 4],
    /// The volumes' box: highest corner.
    pub bounds_hi: [f32; 4],
    /// 1 / (forward × segmentation voxels per nm) per axis (0 where forward is 0).
    pub face_inv: [f32; 4],
    /// Selected ids as (low, high) pairs.
    pub selected: [[u32; 4]; 16],
    /// The image colormap: 256 RGBA8 colours.
    pub lut: [[u32; 4]; 64],
}

/// A vector of the orbit's (x, y, z) in z, y, x order.
fn zyx(v: [f64; 3]) -> [f64; 3] {
    [v[2], v[1], v[0]]
}

fn four(v: [f64; 3], w: f64) -> [f32; 4] {
    [v[0] as f32, v[1] as f32, v[2] as f32, w as f32]
}

/// The uniforms drawing `draw` into a `width` × `height` image whose top-left corner is
/// at `origin` (px) in its target.
pub fn pack(draw: &VolumeDraw, width: u32, height: u32, origin: [f32; 2]) -> VolumeUniforms {
    let mut u = VolumeUniforms::zeroed();
    let o = &draw.orbit;
    let right = zyx(o.unproject([1.0, 0.0, 0.0]));
    let down = zyx(o.unproject([0.0, 1.0, 0.0]));
    let forward = zyx(o.unproject([0.0, 0.0, 1.0]));
    u.right = four(right, 0.0);
    u.down = four(down, 0.0);
    u.forward = four(forward, 0.0);
    // Rays long enough to cross every volume drawn.
    let mut radius: f64 = 1.0;
    let mut finest = f64::INFINITY;
    let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    let mut reach = |offset: [f64; 3], vs: [f64; 3], shape: [usize; 3]| {
        for a in 0..3 {
            lo[a] = lo[a].min(offset[a]);
            hi[a] = hi[a].max(offset[a] + shape[a] as f64 * vs[a]);
        }
        let corners = (0..8).map(|i: usize| {
            let p: [f64; 3] = std::array::from_fn(|a| {
                offset[a]
                    + if i >> a & 1 == 1 {
                        shape[a] as f64 * vs[a]
                    } else {
                        0.0
                    }
            });
            (0..3)
                .map(|a| (p[a] - draw.centre_nm[a]).powi(2))
                .sum::<f64>()
                .sqrt()
        });
        radius = corners.fold(radius, f64::max);
        finest = vs.iter().copied().fold(finest, f64::min);
    };
    if let Some((v, look)) = &draw.image {
        reach(v.offset_nm, v.voxel_size_nm, v.shape);
        u.image_off = four(v.offset_nm, 0.0);
        u.image_inv = four(v.voxel_size_nm.map(|s| 1.0 / s), 0.0);
        u.image_shape = [v.shape[0] as u32, v.shape[1] as u32, v.shape[2] as u32, 1];
        let span = look.range[1] - look.range[0];
        u.image_look = [
            look.range[0] as f32,
            if span == 0.0 {
                0.0
            } else {
                (1.0 / span) as f32
            },
            if look.invert { 1.0 } else { 0.0 },
            0.0,
        ];
        for (i, c) in look.colormap.lut().iter().enumerate() {
            u.lut[i / 4][i % 4] = u32::from_le_bytes(*c);
        }
    }
    if let Some((v, look)) = &draw.labels {
        reach(v.offset_nm, v.voxel_size_nm, v.shape);
        u.label_off = four(v.offset_nm, 0.0);
        u.label_inv = four(v.voxel_size_nm.map(|s| 1.0 / s), 0.0);
        u.label_shape = [v.shape[0] as u32, v.shape[1] as u32, v.shape[2] as u32, 1];
        let ids = &look.selected[..look.selected.len().min(MAX_SELECTED_3D)];
        for (k, id) in ids.iter().enumerate() {
            u.selected[k / 2][(k % 2) * 2] = *id as u32;
            u.selected[k / 2][(k % 2) * 2 + 1] = (id >> 32) as u32;
        }
        let inv = v.voxel_size_nm.map(|s| 1.0 / s);
        u.face_inv = four(
            std::array::from_fn(|a| {
                if forward[a].abs() < 1e-12 {
                    0.0
                } else {
                    1.0 / (forward[a] * inv[a])
                }
            }),
            0.0,
        );
        u.label_look[0] = look.color_seed;
        u.label_look[1] = ids.len() as u32;
        u.label_look[2] = look.alpha.clamp(0.0, 1.0).to_bits();
    }
    if let Some((p, orientation)) = &draw.planes {
        u.label_look[3] = 1;
        u.position = four(*p, 0.0);
        for axis in 0..3 {
            let n = orientation.axis(axis);
            let dot: f64 = (0..3).map(|a| n[a] * forward[a]).sum();
            u.normals[axis] = four(n, if dot.abs() < 1e-6 { 0.0 } else { 1.0 / dot });
        }
    }
    let step = if finest.is_finite() {
        finest * 0.75
    } else {
        1.0
    };
    let steps = ((2.0 * radius / step).ceil() as u32).clamp(2, MAX_STEPS);
    u.centre = four(draw.centre_nm, radius);
    u.inv_forward = four(
        forward.map(|f| if f.abs() < 1e-12 { 0.0 } else { 1.0 / f }),
        0.0,
    );
    if lo[0].is_finite() {
        u.bounds_lo = four(lo, f64::from(steps) / (2.0 * radius));
        u.bounds_hi = four(hi, 0.0);
    }
    u.view = [
        width as f32,
        height as f32,
        draw.nm_per_px as f32,
        steps as f32,
    ];
    u.origin = [origin[0], origin[1], 0.0, 0.0];
    u
}

/// Adds in f32, component by component.
fn add(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn scale(s: f32, v: [f32; 4]) -> [f32; 3] {
    [s * v[0], s * v[1], s * v[2]]
}

/// The samples `k0..k1` of the ray from `base` that may fall inside the volumes' box (with
/// a margin), as the shader finds them.
fn sample_range(u: &VolumeUniforms, base: [f32; 3]) -> (u32, u32) {
    let (mut t0, mut t1) = (-u.centre[3], u.centre[3]);
    for (a, b) in base.iter().enumerate() {
        let inv = u.inv_forward[a];
        if inv == 0.0 {
            if *b < u.bounds_lo[a] || *b > u.bounds_hi[a] {
                return (0, 0);
            }
            continue;
        }
        let ta = (u.bounds_lo[a] - b) * inv;
        let tb = (u.bounds_hi[a] - b) * inv;
        t0 = t0.max(ta.min(tb));
        t1 = t1.min(ta.max(tb));
    }
    if t0 > t1 {
        return (0, 0);
    }
    let steps = u.view[3];
    let k0 = (((t0 + u.centre[3]) * u.bounds_lo[3] - 0.5).floor() - 1.0).max(0.0);
    let k1 = (((t1 + u.centre[3]) * u.bounds_lo[3] - 0.5).ceil() + 2.0).min(steps);
    (k0 as u32, k1.max(k0) as u32)
}

/// The light on the face of the segmentation voxel where the ray from `base` entered it
/// at depth `d`, as the shader computes it: 1 seen straight on, 0.55 edge-on.
fn face_light(u: &VolumeUniforms, base: [f32; 3], d: f32) -> f32 {
    let p = add(base, scale(d, u.forward));
    let v: [f32; 3] = std::array::from_fn(|a| ((p[a] - u.label_off[a]) * u.label_inv[a]).floor());
    let b: [f32; 3] = std::array::from_fn(|a| (base[a] - u.label_off[a]) * u.label_inv[a]);
    let (mut best, mut facing) = (-3.0e38f32, 1.0f32);
    for a in 0..3 {
        let inv = u.face_inv[a];
        if inv == 0.0 {
            continue;
        }
        let edge = if u.forward[a] > 0.0 { v[a] } else { v[a] + 1.0 };
        let t = (edge - b[a]) * inv;
        if t > best {
            best = t;
            facing = u.forward[a].abs();
        }
    }
    0.55 + 0.45 * facing
}

/// The voxel of a volume at `p` as the shader finds it.
fn voxel(off: [f32; 4], inv: [f32; 4], shape: [u32; 4], p: [f32; 3]) -> Option<[usize; 3]> {
    let mut out = [0usize; 3];
    for a in 0..3 {
        let v = ((p[a] - off[a]) * inv[a]).floor();
        if !(v >= 0.0 && v < shape[a] as f32) {
            return None;
        }
        out[a] = v as usize;
    }
    Some(out)
}

/// The CPU reference of the 3D panel: `width` × `height` RGBA pixels of `draw`, as
/// `shaders/volume.wgsl` colours them.
pub fn render_cpu(draw: &VolumeDraw, width: u32, height: u32) -> Vec<u8> {
    let u = pack(draw, width, height, [0.0, 0.0]);
    let image = draw.image.as_ref().map(|(v, _)| v);
    let labels = draw.labels.as_ref().map(|(v, _)| v);
    let image_at = |p: [f32; 3]| -> Option<f32> {
        let v = image?;
        let i = voxel(u.image_off, u.image_inv, u.image_shape, p)?;
        Some(v.values[(i[0] * v.shape[1] + i[1]) * v.shape[2] + i[2]])
    };
    let label_at = |p: [f32; 3]| -> Option<u64> {
        let v = labels?;
        let i = voxel(u.label_off, u.label_inv, u.label_shape, p)?;
        Some(v.values[(i[0] * v.shape[1] + i[1]) * v.shape[2] + i[2]])
    };
    let count = u.label_look[1] as usize;
    let selected: Vec<u64> = draw
        .labels
        .as_ref()
        .map(|(_, l)| l.selected.iter().take(count).copied().collect())
        .unwrap_or_default();
    let shown = |id: u64| id != 0 && (selected.is_empty() || selected.contains(&id));
    let lut: Vec<[u8; 4]> = (0..256)
        .map(|i| u.lut[i / 4][i % 4].to_le_bytes())
        .collect();
    let image_color = |v: f32| -> [f32; 3] {
        let [lo, inv, invert, _] = u.image_look;
        let mut t = ((v - lo) * inv).clamp(0.0, 1.0);
        if inv == 0.0 {
            t = if v >= lo { 1.0 } else { 0.0 };
        }
        if invert == 1.0 {
            t = 1.0 - t;
        }
        let c = lut[(t * 255.0 + 0.5).floor() as usize];
        [c[0], c[1], c[2]].map(|x| f32::from(x) / 255.0)
    };
    let seed = u.label_look[0];
    let seg = |id: u64| segment_color(seed, id).map(|x| f32::from(x) / 255.0);
    let alpha = f32::from_bits(u.label_look[2]);
    let radius = u.centre[3];
    let steps = u.view[3] as u32;
    let mut out = vec![0u8; (width * height * 4) as usize];
    for py in 0..height {
        for px in 0..width {
            let sx = (px as f32 + 0.5 - u.view[0] * 0.5) * u.view[2];
            let sy = (py as f32 + 0.5 - u.view[1] * 0.5) * u.view[2];
            let base = add(
                add([u.centre[0], u.centre[1], u.centre[2]], scale(sx, u.right)),
                scale(sy, u.down),
            );
            let (mut best, mut any_image) = (0f32, false);
            let mut hit: Option<(f32, u64)> = None;
            let (k0, k1) = sample_range(&u, base);
            for k in k0..k1 {
                let d = -radius + (2.0 * radius) * ((k as f32 + 0.5) / steps as f32);
                let p = add(base, scale(d, u.forward));
                if let Some(v) = image_at(p) {
                    if !any_image || v > best {
                        best = v;
                    }
                    any_image = true;
                }
                if hit.is_none() {
                    if let Some(id) = label_at(p).filter(|id| shown(*id)) {
                        hit = Some((d, id));
                    }
                }
            }
            let mut plane: Option<(f32, [f32; 3])> = None;
            if u.label_look[3] == 1 {
                for n in &u.normals {
                    if n[3] == 0.0 {
                        continue;
                    }
                    let q = [
                        u.position[0] - base[0],
                        u.position[1] - base[1],
                        u.position[2] - base[2],
                    ];
                    let d = (q[0] * n[0] + q[1] * n[1] + q[2] * n[2]) * n[3];
                    if d < -radius || d > radius {
                        continue;
                    }
                    let p = add(base, scale(d, u.forward));
                    let inside = image_at(p).is_some() || label_at(p).is_some();
                    if inside && plane.is_none_or(|(pd, _)| d < pd) {
                        plane = Some((d, p));
                    }
                }
            }
            let c: [f32; 3] = match (plane, hit) {
                (Some((pd, p)), h) if h.is_none_or(|(hd, _)| pd <= hd) => {
                    let mut c = match image_at(p) {
                        Some(v) => image_color(v),
                        None => [0.2; 3],
                    };
                    if let Some(id) = label_at(p).filter(|id| shown(*id)) {
                        let s = seg(id);
                        c = std::array::from_fn(|i| c[i] * (1.0 - alpha) + s[i] * alpha);
                    }
                    c
                }
                (_, Some((hd, id))) => {
                    let shade =
                        (1.0 - 0.5 * ((hd + radius) / (2.0 * radius))) * face_light(&u, base, hd);
                    seg(id).map(|x| x * shade)
                }
                _ if any_image => image_color(best),
                _ => [0.0; 3],
            };
            let i = ((py * width + px) * 4) as usize;
            for k in 0..3 {
                out[i + k] = (c[k].clamp(0.0, 1.0) * 255.0).round() as u8;
            }
            out[i + 3] = 255;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8³ volume of 1 nm voxels: image 0.1 with one bright voxel at (1, 2, 6); labels
    /// 5 in the box z 2..4, y 2..4, x 2..4 and 9 in z 5..7, y 5..7, x 5..7.
    fn scene() -> VolumeDraw {
        let mut values = vec![0.1f32; 512];
        values[(8 + 2) * 8 + 6] = 1.0;
        let image = CoarseVolume {
            values,
            shape: [8, 8, 8],
            voxel_size_nm: [1.0; 3],
            offset_nm: [0.0; 3],
        };
        let ids = (0..512)
            .map(|i| {
                let (z, y, x) = (i / 64, i / 8 % 8, i % 8);
                let inside = |lo: usize, hi: usize| {
                    (lo..hi).contains(&z) && (lo..hi).contains(&y) && (lo..hi).contains(&x)
                };
                if inside(2, 4) {
                    5u64
                } else if inside(5, 7) {
                    9
                } else {
                    0
                }
            })
            .collect();
        let labels = CoarseLabels {
            values: ids,
            shape: [8, 8, 8],
            voxel_size_nm: [1.0; 3],
            offset_nm: [0.0; 3],
        };
        VolumeDraw {
            orbit: Orbit {
                yaw_deg: 0.0,
                pitch_deg: 0.0,
            },
            centre_nm: [4.0; 3],
            nm_per_px: 1.0,
            image: Some((
                Arc::new(image),
                ImageLook {
                    range: [0.0, 1.0],
                    colormap: Colormap::Grey,
                    invert: false,
                },
            )),
            labels: Some((
                Arc::new(labels),
                LabelLook {
                    selected: Vec::new(),
                    color_seed: 0,
                    alpha: 0.5,
                },
            )),
            planes: None,
        }
    }

    fn pixel(img: &[u8], width: u32, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * width + x) * 4) as usize;
        [img[i], img[i + 1], img[i + 2]]
    }

    #[test]
    fn rays_project_the_image_and_meet_the_nearest_segment() {
        let mut s = scene();
        s.labels = None;
        let img = render_cpu(&s, 8, 8);
        // Looking down z: pixel (x 6, y 2) is the bright voxel, the rest 0.1 (26 of 255).
        assert_eq!(pixel(&img, 8, 6, 2), [255; 3]);
        assert_eq!(pixel(&img, 8, 5, 2), [26; 3]);
        // A 20-pixel image has a margin the rays miss: black.
        let img = render_cpu(&s, 20, 20);
        assert_eq!(pixel(&img, 20, 0, 0), [0; 3]);
        // With the labels: (x 3, y 3) meets segment 5 at z 2, (x 6, y 6) segment 9 at z 5
        // (farther, darker); (x 1, y 1) meets none and shows the projection.
        let s = scene();
        let img = render_cpu(&s, 8, 8);
        let c5 = segment_color(0, 5);
        let c9 = segment_color(0, 9);
        let radius = (3.0f32 * 16.0).sqrt();
        let shade = |z: f32| 1.0 - 0.5 * ((z - 4.0 + radius) / (2.0 * radius));
        let near = pixel(&img, 8, 3, 3);
        let far = pixel(&img, 8, 6, 6);
        for k in 0..3 {
            // Within a sample step (0.75 nm) of the surface.
            assert!((f32::from(near[k]) - f32::from(c5[k]) * shade(2.0)).abs() <= 8.0);
            assert!((f32::from(far[k]) - f32::from(c9[k]) * shade(5.0)).abs() <= 8.0);
        }
        assert_eq!(pixel(&img, 8, 1, 1), [26; 3]);
        // Selecting 9 hides 5: the ray through (3, 3) shows the projection.
        let mut s = scene();
        if let Some((_, l)) = &mut s.labels {
            l.selected = vec![9];
        }
        let img = render_cpu(&s, 8, 8);
        assert_eq!(pixel(&img, 8, 3, 3), [26; 3]);
        assert_eq!(pixel(&img, 8, 6, 6), far);
    }

    #[test]
    fn a_segment_face_is_lit_by_how_squarely_the_ray_meets_it() {
        let mut u = VolumeUniforms::zeroed();
        u.forward = [0.6, 0.0, 0.8, 0.0];
        u.label_inv = [1.0, 1.0, 1.0, 0.0];
        u.face_inv = [1.0 / 0.6, 0.0, 1.0 / 0.8, 0.0];
        // From (z 0.5, y 0.5, x −5) the ray reaches x = 0 at depth 6.25, after crossing
        // z = 4 at 5.83: at depth 6.3 it is in voxel (4, 0, 0), entered through its x face.
        let light = face_light(&u, [0.5, 0.5, -5.0], 6.3);
        assert!((light - (0.55 + 0.45 * 0.8)).abs() < 1e-6, "{light}");
        // At depth 6.0 it is in voxel (4, 0, −1), entered through its z face.
        let light = face_light(&u, [0.5, 0.5, -5.0], 6.0);
        assert!((light - (0.55 + 0.45 * 0.6)).abs() < 1e-6, "{light}");
    }

    #[test]
    fn the_planes_wait_until_the_view_has_been_still() {
        let t0 = std::time::Instant::now();
        let ms = |n: u64| t0 + std::time::Duration::from_millis(n);
        let at = |z: f64| ([z, 0.0, 0.0], Orientation::IDENTITY);
        let mut s = SettledPlanes::default();
        assert_eq!(s.update(at(1.0), ms(0)), (at(1.0), None));
        // Moving every 40 ms: the planes stay at 1 and say when they would settle.
        assert_eq!(
            s.update(at(2.0), ms(40)),
            (at(1.0), Some(SettledPlanes::SETTLE))
        );
        assert_eq!(
            s.update(at(3.0), ms(80)),
            (at(1.0), Some(SettledPlanes::SETTLE))
        );
        let (p, wait) = s.update(at(3.0), ms(180));
        assert_eq!(
            (p, wait),
            (at(1.0), Some(std::time::Duration::from_millis(50)))
        );
        // Still for 150 ms: they move.
        assert_eq!(s.update(at(3.0), ms(230)), (at(3.0), None));
        assert_eq!(s.update(at(3.0), ms(240)), (at(3.0), None));
    }

    #[test]
    fn the_planes_are_drawn_textured_in_front_of_what_they_cover() {
        // The xy plane at z = 1.5 (in front of both segments), seen from the front.
        let mut s = scene();
        s.planes = Some(([1.5, 4.0, 4.0], Orientation::IDENTITY));
        let img = render_cpu(&s, 8, 8);
        // On the plane at (x 6, y 2) is the bright voxel (z 1); at (3, 3) the image's
        // 0.1 grey, since no segment lies at z 1.
        assert_eq!(pixel(&img, 8, 6, 2), [255; 3]);
        assert_eq!(pixel(&img, 8, 3, 3), [26; 3]);
        // The plane at z = 3.5 lies behind segment 5's front (z 2), which hides it at
        // (3, 3); elsewhere the opaque plane replaces the projection: at (6, 2) it shows
        // the grey at z 3, not the projection's bright voxel (z 1).
        s.planes = Some(([3.5, 4.0, 4.0], Orientation::IDENTITY));
        let img = render_cpu(&s, 8, 8);
        let surface = render_cpu(
            &VolumeDraw {
                planes: None,
                ..s.clone()
            },
            8,
            8,
        );
        assert_eq!(pixel(&img, 8, 3, 3), pixel(&surface, 8, 3, 3));
        assert_ne!(pixel(&img, 8, 3, 3), [26; 3]);
        assert_eq!(pixel(&img, 8, 6, 2), [26; 3]);
        assert_eq!(pixel(&surface, 8, 6, 2), [255; 3]);
    }
}
