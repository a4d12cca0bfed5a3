//! What one panel hands the GPU: the layers' slices packed into textures and a uniform
//! block of drawing settings, plus a CPU implementation of `shaders/slice.wgsl` that
//! computes the same colour for any pixel (the reference the GPU output is tested against,
//! and the fallback when no GPU renderer is available).

use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};

use super::colors::{segment_color, Colormap};
use super::slice::{status, LayerSlice, SliceValues};
use super::state::{overlay_colors, Blend, LayerSettings, Sampling};

/// Most layers drawn in one panel.
pub const MAX_LAYERS: usize = 8;
/// Most selected segment ids passed to the shader (over all layers).
pub const MAX_SELECTED: usize = 32;

/// One layer's settings as the shader reads them (see `shaders/slice.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq)]
pub struct GpuLayer {
    /// Kind (0 image, 1 segmentation, 2 prediction), texture index, channels, status index.
    pub kind_tex: [u32; 4],
    /// Colormap row, invert, blend (0 over, 1 additive), flags (1 hide zero, 2 isolate, 4 hover).
    pub opts: [u32; 4],
    /// Range lo, hi, opacity, selected alpha.
    pub range: [f32; 4],
    /// Colour seed, first selected id, selected count, unselected alpha (f32 bits).
    pub seg: [u32; 4],
    /// Hovered id low and high halves, visible, pending look for loading pixels (1).
    pub hover: [u32; 4],
    /// Linear sampling (see [`super::slice::linear_mapping`]): voxels per pixel and the
    /// voxel position at the panel's edge, horizontally then vertically; all 0: nearest.
    pub sampling: [f32; 4],
    /// Channel colours of multi-channel predictions.
    pub colors: [[f32; 4]; 4],
}

/// The uniform block of one panel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq)]
pub struct GpuUniforms {
    /// Panel origin x, y in physical pixels, width, height.
    pub origin_size: [f32; 4],
    /// Layers, overlay on, truth layer, prediction layer.
    pub counts: [u32; 4],
    /// Overlay alpha, threshold, instances (1) or voxels (0), mask layer + 1 (0 for none).
    pub overlay: [f32; 4],
    /// Cross-hair x, y (pixels in the panel), on, unused.
    pub cross: [f32; 4],
    /// Colour of the horizontal cross-hair.
    pub cross_h: [f32; 4],
    /// Colour of the vertical cross-hair.
    pub cross_v: [f32; 4],
    /// Selected ids as (low, high) pairs, two per entry.
    pub selected: [[u32; 4]; MAX_SELECTED / 2],
    /// The layers, bottom first.
    pub layers: [GpuLayer; MAX_LAYERS],
}

/// The panel's texture contents, one texel per pixel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PanelTextures {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Float layers (one per channel), each `width * height` values.
    pub floats: Vec<f32>,
    /// Number of float layers (at least 1).
    pub float_layers: u32,
    /// Label layers as (low, high) u32 pairs.
    pub labels: Vec<u32>,
    /// Number of label layers (at least 1).
    pub label_layers: u32,
    /// Status layers (one per drawn layer, then the overlay's split/merge flags).
    pub status: Vec<u8>,
    /// Number of status layers.
    pub status_layers: u32,
}

/// A layer as the panel draws it.
pub struct DrawLayer<'a> {
    /// Its values on this panel.
    pub slice: &'a LayerSlice,
    /// Its settings.
    pub settings: &'a LayerSettings,
    /// Drawn (hidden layers may still feed an overlay).
    pub visible: bool,
    /// The segment under the mouse, for highlighting.
    pub hover: Option<u64>,
    /// Its missing chunks are being computed (a live prediction): they are drawn as
    /// pending (thin grey diagonal lines) instead of left empty.
    pub pending: bool,
    /// How its chosen level maps onto the panel for linear sampling
    /// ([`super::slice::linear_mapping`]); used when its settings ask for it.
    pub linear: Option<[f32; 4]>,
}

/// An error overlay between two of the panel's layers (indices into the layer list).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawOverlay {
    /// The ground-truth layer.
    pub truth: usize,
    /// The prediction or output layer.
    pub prediction: usize,
    /// Highlight split and merged objects.
    pub instances: bool,
    /// Float predictions above this are foreground.
    pub threshold: f32,
    /// Opacity.
    pub alpha: f32,
    /// A layer marking where the truth is known (non-zero), if any.
    pub mask: Option<usize>,
}

/// Split/merge flags of the overlay's instance mode: bit 1 where the true object is
/// covered by several predicted ids, bit 2 where the predicted object covers several true
/// ids (counted over the pixels of the slice).
pub fn instance_flags(truth: &LayerSlice, prediction: &LayerSlice) -> Vec<u8> {
    let (SliceValues::Labels(t), SliceValues::Labels(p)) = (&truth.values, &prediction.values)
    else {
        return vec![0; (truth.width * truth.height) as usize];
    };
    let shown = |i: usize| truth.status[i] == status::DATA && prediction.status[i] == status::DATA;
    let mut preds_of: HashMap<u64, (u64, bool)> = HashMap::new();
    let mut truths_of: HashMap<u64, (u64, bool)> = HashMap::new();
    let note = |map: &mut HashMap<u64, (u64, bool)>, key: u64, other: u64| {
        let e = map.entry(key).or_insert((other, false));
        if e.0 != other {
            e.1 = true;
        }
    };
    for i in 0..t.len() {
        if shown(i) && t[i] != 0 && p[i] != 0 {
            note(&mut preds_of, t[i], p[i]);
            note(&mut truths_of, p[i], t[i]);
        }
    }
    (0..t.len())
        .map(|i| {
            if !shown(i) {
                return 0;
            }
            let split = t[i] != 0 && preds_of.get(&t[i]).is_some_and(|e| e.1);
            let merge = p[i] != 0 && truths_of.get(&p[i]).is_some_and(|e| e.1);
            u8::from(split) | (u8::from(merge) << 1)
        })
        .collect()
}

fn colormap_row(c: Colormap) -> u32 {
    Colormap::ALL.iter().position(|m| *m == c).unwrap_or(0) as u32
}

fn rgb_f(c: [u8; 3]) -> [f32; 4] {
    [
        f32::from(c[0]) / 255.0,
        f32::from(c[1]) / 255.0,
        f32::from(c[2]) / 255.0,
        1.0,
    ]
}

/// The values a drawn layer has on a panel, which decide its uniforms and texture layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueShape {
    /// Label ids.
    Labels,
    /// Float channels.
    Float {
        /// Number of channels.
        channels: usize,
    },
    /// Label ids drawn as grey values (a label slice with image settings).
    LabelsAsFloat,
}

impl ValueShape {
    /// The shape of `slice`'s values under `settings`.
    pub fn of(slice: &LayerSlice, settings: &LayerSettings) -> ValueShape {
        match (&slice.values, settings) {
            (SliceValues::Labels(_), LayerSettings::Segmentation(_)) => ValueShape::Labels,
            (SliceValues::Labels(_), _) => ValueShape::LabelsAsFloat,
            (SliceValues::Float { channels, .. }, _) => ValueShape::Float {
                channels: *channels,
            },
        }
    }
}

/// A layer as the uniforms describe it (no values: those are in textures, uploaded from
/// composed slices or gathered on the GPU).
#[derive(Clone, Copy)]
pub struct UniformLayer<'a> {
    /// Its values' shape.
    pub shape: ValueShape,
    /// Its settings.
    pub settings: &'a LayerSettings,
    /// Drawn (hidden layers may still feed an overlay).
    pub visible: bool,
    /// The segment under the mouse, for highlighting.
    pub hover: Option<u64>,
    /// Its missing chunks are being computed and drawn as pending.
    pub pending: bool,
    /// How its chosen level maps onto the panel for linear sampling; used when its
    /// settings ask for it.
    pub linear: Option<[f32; 4]>,
}

/// How many texture layers of each kind a panel's uniforms index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextureLayers {
    /// Float layers (one per channel; at least 1).
    pub floats: u32,
    /// Label layers (at least 1).
    pub labels: u32,
    /// Status layers (one per layer, then the overlay's split/merge flags).
    pub status: u32,
}

/// The uniforms of a panel of `size` pixels with `layers` (bottom first, at most
/// [`MAX_LAYERS`]), and the texture layers they index. `origin` is the panel's top-left
/// corner in physical pixels; `cross` the cross-hair position in panel pixels with the
/// colours of its horizontal and vertical line.
pub fn pack_uniforms(
    layers: &[UniformLayer<'_>],
    overlay: Option<DrawOverlay>,
    size: (u32, u32),
    origin: [f32; 2],
    cross: Option<([f32; 2], [u8; 3], [u8; 3])>,
) -> (GpuUniforms, TextureLayers) {
    let layers = &layers[..layers.len().min(MAX_LAYERS)];
    let mut u = GpuUniforms::zeroed();
    u.origin_size = [origin[0], origin[1], size.0 as f32, size.1 as f32];
    let (mut floats, mut labels) = (0u32, 0u32);
    let mut selected: Vec<u64> = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let g = &mut u.layers[i];
        g.hover[2] = u32::from(l.visible);
        g.hover[3] = u32::from(l.pending);
        g.kind_tex[3] = i as u32;
        match (l.shape, l.settings) {
            (ValueShape::Labels, LayerSettings::Segmentation(s)) => {
                g.kind_tex[0] = 1;
                g.kind_tex[1] = labels;
                g.kind_tex[2] = 1;
                labels += 1;
                let first = selected.len();
                let take = s.selected.len().min(MAX_SELECTED - first);
                selected.extend_from_slice(&s.selected[..take]);
                g.seg = [
                    s.color_seed,
                    first as u32,
                    take as u32,
                    s.unselected_alpha.to_bits(),
                ];
                g.range[3] = s.selected_alpha;
                g.opts[3] = u32::from(s.hide_zero) | (u32::from(s.isolate) << 1);
                if let Some(h) = l.hover {
                    g.opts[3] |= 4;
                    g.hover[0] = h as u32;
                    g.hover[1] = (h >> 32) as u32;
                }
            }
            (ValueShape::Float { channels }, settings) => {
                g.kind_tex[1] = floats;
                g.kind_tex[2] = channels as u32;
                floats += channels as u32;
                match settings {
                    LayerSettings::Image(s) => {
                        g.kind_tex[0] = 0;
                        if s.sampling == Sampling::Linear {
                            g.sampling = l.linear.unwrap_or_default();
                        }
                        g.opts = [
                            colormap_row(s.colormap),
                            u32::from(s.invert),
                            blend(s.blend),
                            0,
                        ];
                        g.range = [s.range[0] as f32, s.range[1] as f32, s.opacity, 0.0];
                    }
                    LayerSettings::Prediction(s) => {
                        g.kind_tex[0] = 2;
                        if s.sampling == Sampling::Linear && s.threshold.is_none() {
                            g.sampling = l.linear.unwrap_or_default();
                        }
                        let (flag, threshold) = match s.threshold {
                            Some(t) => (8, t),
                            None => (0, 0.0),
                        };
                        g.opts = [colormap_row(s.colormap), 0, blend(s.blend), flag];
                        g.range = [s.range[0] as f32, s.range[1] as f32, s.opacity, threshold];
                        for (k, c) in s.channel_colors.iter().take(4).enumerate() {
                            g.colors[k] = rgb_f(*c);
                        }
                    }
                    // Labels drawn from a float slice: should not happen; show as an image.
                    LayerSettings::Segmentation(_) => {
                        g.kind_tex[0] = 0;
                        g.range = [0.0, 1.0, 1.0, 0.0];
                    }
                }
            }
            (ValueShape::Labels | ValueShape::LabelsAsFloat, _) => {
                // A label slice with image settings: draw the ids as grey values.
                g.kind_tex[0] = 0;
                g.kind_tex[1] = floats;
                g.kind_tex[2] = 1;
                floats += 1;
                g.range = [0.0, 255.0, 1.0, 0.0];
            }
        }
    }
    u.counts[0] = layers.len() as u32;
    for (j, id) in selected.iter().enumerate() {
        let e = &mut u.selected[j / 2];
        let k = (j % 2) * 2;
        e[k] = *id as u32;
        e[k + 1] = (*id >> 32) as u32;
    }
    if let Some(o) = overlay.filter(|o| o.truth < layers.len() && o.prediction < layers.len()) {
        u.counts[1] = 1;
        u.counts[2] = o.truth as u32;
        u.counts[3] = o.prediction as u32;
        u.overlay = [
            o.alpha,
            o.threshold,
            if o.instances { 1.0 } else { 0.0 },
            o.mask
                .filter(|m| *m < layers.len())
                .map_or(0.0, |m| (m + 1) as f32),
        ];
    }
    if let Some((p, h, v)) = cross {
        u.cross = [p[0], p[1], 1.0, 0.0];
        u.cross_h = rgb_f(h);
        u.cross_v = rgb_f(v);
    }
    (
        u,
        TextureLayers {
            floats: floats.max(1),
            labels: labels.max(1),
            status: layers.len() as u32 + 1,
        },
    )
}

/// Packs a panel's layers (bottom first, at most [`MAX_LAYERS`]) into textures and
/// uniforms. `origin` is the panel's top-left corner in physical pixels; `cross` the
/// cross-hair position in panel pixels with the colours of its horizontal and vertical line.
pub fn pack(
    layers: &[DrawLayer<'_>],
    overlay: Option<DrawOverlay>,
    origin: [f32; 2],
    cross: Option<([f32; 2], [u8; 3], [u8; 3])>,
) -> (GpuUniforms, PanelTextures) {
    let layers = &layers[..layers.len().min(MAX_LAYERS)];
    let (width, height) = layers
        .first()
        .map(|l| (l.slice.width, l.slice.height))
        .unwrap_or((1, 1));
    let n = (width * height) as usize;
    let described: Vec<UniformLayer> = layers
        .iter()
        .map(|l| UniformLayer {
            shape: ValueShape::of(l.slice, l.settings),
            settings: l.settings,
            visible: l.visible,
            hover: l.hover,
            pending: l.pending,
            linear: l.linear,
        })
        .collect();
    let (u, counts) = pack_uniforms(&described, overlay, (width, height), origin, cross);
    let mut tex = PanelTextures {
        width,
        height,
        float_layers: counts.floats,
        label_layers: counts.labels,
        status_layers: counts.status,
        ..PanelTextures::default()
    };
    for l in layers {
        tex.status.extend_from_slice(&l.slice.status);
        match &l.slice.values {
            SliceValues::Labels(ids)
                if ValueShape::of(l.slice, l.settings) == ValueShape::Labels =>
            {
                tex.labels.reserve(ids.len() * 2);
                for id in ids {
                    tex.labels.push(*id as u32);
                    tex.labels.push((*id >> 32) as u32);
                }
            }
            SliceValues::Labels(ids) => tex.floats.extend(ids.iter().map(|v| *v as f32)),
            SliceValues::Float { values, .. } => tex.floats.extend_from_slice(values),
        }
    }
    let flags = match overlay.filter(|o| {
        o.instances && u.counts[1] == 1 && o.truth < layers.len() && o.prediction < layers.len()
    }) {
        Some(o) => instance_flags(layers[o.truth].slice, layers[o.prediction].slice),
        None => vec![0u8; n],
    };
    tex.status.extend_from_slice(&flags);
    if tex.floats.is_empty() {
        tex.floats = vec![0.0; n];
    }
    if tex.labels.is_empty() {
        tex.labels = vec![0; n * 2];
    }
    (u, tex)
}

fn blend(b: Blend) -> u32 {
    match b {
        Blend::Default => 0,
        Blend::Additive => 1,
    }
}

fn lut(row: u32, t: f32) -> [f32; 3] {
    let cmap = Colormap::ALL[(row as usize).min(Colormap::ALL.len() - 1)];
    let i = (t.clamp(0.0, 1.0) * 255.0).round().clamp(0.0, 255.0);
    let [r, g, b] = cmap.rgb(f64::from(i) / 255.0);
    [
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
    ]
}

fn invlerp(v: f32, lo: f32, hi: f32) -> f32 {
    if hi == lo {
        return if v >= hi { 1.0 } else { 0.0 };
    }
    ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    std::array::from_fn(|k| a[k] * (1.0 - t) + b[k] * t)
}

/// Pixels between the thin diagonal lines drawn over a computed layer's pending blocks.
pub const PENDING_SPACING: u32 = 8;

/// Linear sampling at pixel `p` of a `size` panel with `sampling` (see
/// [`GpuLayer::sampling`]): per magnified axis the two voxel centres around the pixel
/// centre, weighted by distance, each read (`value`) from the pixel that shows it; voxels
/// beyond the panel or whose pixel's status (`stat`) is not data count for nothing.
/// `None` when none counts. Computed in `f32` in the order `shaders/slice.wgsl` does.
fn sample_linear(
    sampling: [f32; 4],
    p: (u32, u32),
    size: (u32, u32),
    stat: impl Fn((u32, u32)) -> u8,
    value: impl Fn((u32, u32)) -> f32,
) -> Option<f32> {
    let (a, b) = ([sampling[0], sampling[2]], [sampling[1], sampling[3]]);
    let pix = [p.0 as f32, p.1 as f32];
    let on = [a[0] > 0.0, a[1] > 0.0];
    let c: [f32; 2] = std::array::from_fn(|k| b[k] + (pix[k] + 0.5) * a[k] - 0.5);
    let i0 = c.map(f32::floor);
    let f: [f32; 2] = std::array::from_fn(|k| if on[k] { c[k] - i0[k] } else { 0.0 });
    let (mut sum, mut weight) = (0.0f32, 0.0f32);
    for k in 0..4u32 {
        let o = [(k & 1) as f32, (k >> 1) as f32];
        let w2: [f32; 2] = std::array::from_fn(|d| if o[d] == 1.0 { f[d] } else { 1.0 - f[d] });
        let w = w2[0] * w2[1];
        if w == 0.0 {
            continue;
        }
        let q: [i64; 2] = std::array::from_fn(|d| {
            if on[d] {
                ((i0[d] + o[d] + 0.5 - b[d]) / a[d]).floor() as i64
            } else {
                i64::from([p.0, p.1][d])
            }
        });
        if q[0] < 0 || q[1] < 0 || q[0] >= i64::from(size.0) || q[1] >= i64::from(size.1) {
            continue;
        }
        let q = (q[0] as u32, q[1] as u32);
        if stat(q) != status::DATA {
            continue;
        }
        sum += w * value(q);
        weight += w;
    }
    (weight > 0.0).then(|| sum / weight)
}

/// The colour the shader gives pixel (`x`, `y`) of the panel, as 8-bit RGBA.
pub fn shade(u: &GpuUniforms, tex: &PanelTextures, x: u32, y: u32) -> [u8; 4] {
    let n = (tex.width * tex.height) as usize;
    let i = (y * tex.width + x) as usize;
    let float = |layer: u32| tex.floats[layer as usize * n + i];
    // A float layer's value as `l` samples it (shaders/slice.wgsl's `sample_linear`).
    let sampled = |l: &GpuLayer, layer: u32| {
        if l.sampling[0] > 0.0 || l.sampling[2] > 0.0 {
            let stat = |q: (u32, u32)| {
                tex.status[l.kind_tex[3] as usize * n + (q.1 * tex.width + q.0) as usize]
            };
            let value =
                |q: (u32, u32)| tex.floats[layer as usize * n + (q.1 * tex.width + q.0) as usize];
            sample_linear(l.sampling, (x, y), (tex.width, tex.height), stat, value)
                .unwrap_or_else(|| float(layer))
        } else {
            float(layer)
        }
    };
    let label = |layer: u32| {
        let j = (layer as usize * n + i) * 2;
        u64::from(tex.labels[j]) | (u64::from(tex.labels[j + 1]) << 32)
    };
    let stat = |layer: u32| tex.status[layer as usize * n + i];
    let selected = |id: u64, first: u32, count: u32| {
        (first..first + count).any(|j| {
            let e = u.selected[(j / 2) as usize];
            let k = ((j % 2) * 2) as usize;
            (u64::from(e[k]) | (u64::from(e[k + 1]) << 32)) == id
        })
    };
    let mut color = [0.0f32; 3];
    for l in &u.layers[..u.counts[0] as usize] {
        if l.hover[2] == 0 {
            continue;
        }
        let st = stat(l.kind_tex[3]);
        if st == status::LOADING && l.hover[3] == 1 && (x + y).is_multiple_of(PENDING_SPACING) {
            color = color.map(|c| c * 0.5 + 0.3);
            continue;
        }
        if st == status::OUTSIDE || st == status::LOADING {
            continue;
        }
        if st == status::FAILED {
            let stripe = ((x + y) / 4).is_multiple_of(2);
            color = if stripe {
                [1.0, 0.3, 0.3]
            } else {
                [0.25, 0.0, 0.0]
            };
            continue;
        }
        let (c, a) = match l.kind_tex[0] {
            0 => {
                let mut t = invlerp(sampled(l, l.kind_tex[1]), l.range[0], l.range[1]);
                if l.opts[1] == 1 {
                    t = 1.0 - t;
                }
                (lut(l.opts[0], t), l.range[2])
            }
            1 => {
                let id = label(l.kind_tex[1]);
                if id == 0 && l.opts[3] & 1 != 0 {
                    continue;
                }
                let sel = selected(id, l.seg[1], l.seg[2]);
                if l.opts[3] & 2 != 0 && !sel {
                    continue;
                }
                let rgb = segment_color(l.seg[0], id).map(|v| f32::from(v) / 255.0);
                let mut a = if sel {
                    l.range[3]
                } else {
                    f32::from_bits(l.seg[3])
                };
                let mut c = rgb;
                let hovered = u64::from(l.hover[0]) | (u64::from(l.hover[1]) << 32);
                if l.opts[3] & 4 != 0 && id == hovered {
                    a = l.range[3];
                    c = mix(c, [1.0; 3], 0.35);
                }
                (c, a)
            }
            _ => {
                let channels = l.kind_tex[2];
                // With a threshold preview, a channel is on (1) above it and off (0) below,
                // as thresholding post-processing makes it, and pixels with no channel on
                // are not drawn.
                let thresholded = l.opts[3] & 8 != 0;
                let level = |k: u32| {
                    let v = if thresholded {
                        float(l.kind_tex[1] + k)
                    } else {
                        sampled(l, l.kind_tex[1] + k)
                    };
                    if thresholded {
                        if v > l.range[3] {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        invlerp(v, l.range[0], l.range[1])
                    }
                };
                if thresholded && (0..channels.clamp(1, 4)).all(|k| level(k) == 0.0) {
                    continue;
                }
                let c = if channels <= 1 {
                    lut(l.opts[0], level(0))
                } else {
                    let mut c = [0.0f32; 3];
                    for k in 0..channels.min(4) {
                        let t = level(k);
                        for (ch, cv) in c.iter_mut().enumerate() {
                            *cv += l.colors[k as usize][ch] * t;
                        }
                    }
                    c.map(|v| v.min(1.0))
                };
                (c, l.range[2])
            }
        };
        color = if l.opts[2] == 1 {
            std::array::from_fn(|k| (color[k] + c[k] * a).min(1.0))
        } else {
            mix(color, c, a)
        };
    }
    // Status of layer `index` at pixel offset (dx, dy), OUTSIDE beyond the panel.
    let stat_at = |index: u32, dx: i64, dy: i64| {
        let (nx, ny) = (i64::from(x) + dx, i64::from(y) + dy);
        if nx < 0 || ny < 0 || nx >= i64::from(tex.width) || ny >= i64::from(tex.height) {
            return status::OUTSIDE;
        }
        let j = (ny * i64::from(tex.width) + nx) as usize;
        tex.status[u.layers[index as usize].kind_tex[3] as usize * n + j]
    };
    // Errors are judged only where the truth has data (and its mask, if any, is set).
    let known = || {
        if stat_at(u.counts[2], 0, 0) != status::DATA {
            return false;
        }
        if u.overlay[3] >= 1.0 {
            let m = u.overlay[3] as u32 - 1;
            if stat_at(m, 0, 0) != status::DATA {
                return false;
            }
            let l = &u.layers[m as usize];
            return if l.kind_tex[0] == 1 {
                label(l.kind_tex[1]) != 0
            } else {
                float(l.kind_tex[1]) > 0.0
            };
        }
        true
    };
    if u.counts[1] == 1 && known() {
        let fg = |index: u32| {
            let l = &u.layers[index as usize];
            if l.kind_tex[0] == 1 {
                label(l.kind_tex[1]) != 0
            } else {
                float(l.kind_tex[1]) > u.overlay[1]
            }
        };
        let (t, p) = (fg(u.counts[2]), fg(u.counts[3]));
        let mut oc = match (t, p) {
            (true, true) => Some(overlay_colors::TRUE_POSITIVE),
            (false, true) => Some(overlay_colors::FALSE_POSITIVE),
            (true, false) => Some(overlay_colors::FALSE_NEGATIVE),
            _ => None,
        };
        if u.overlay[2] == 1.0 {
            let flags = stat(u.counts[0]);
            if flags & 2 != 0 {
                oc = Some(overlay_colors::MERGE);
            } else if flags & 1 != 0 {
                oc = Some(overlay_colors::SPLIT);
            }
        }
        if let Some(oc) = oc {
            color = mix(
                color,
                rgb_f(oc)[..3].try_into().unwrap_or([0.0; 3]),
                u.overlay[0],
            );
        }
    }
    // The outline of the truth's region: the pixels just outside it, next to one inside
    // (so no judged pixel is covered).
    if u.counts[1] == 1 && stat_at(u.counts[2], 0, 0) == status::OUTSIDE {
        let t = u.counts[2];
        let edge = [(-1, 0), (1, 0), (0, -1), (0, 1)]
            .iter()
            .any(|(dx, dy)| stat_at(t, *dx, *dy) == status::DATA);
        if edge {
            color = rgb_f(overlay_colors::REGION)[..3]
                .try_into()
                .unwrap_or([1.0; 3]);
        }
    }
    if u.cross[2] == 1.0 {
        let (lx, ly) = (x as f32 + 0.5, y as f32 + 0.5);
        if (ly - u.cross[1]).abs() < 0.5 {
            color = [u.cross_h[0], u.cross_h[1], u.cross_h[2]];
        }
        if (lx - u.cross[0]).abs() < 0.5 {
            color = [u.cross_v[0], u.cross_v[1], u.cross_v[2]];
        }
    }
    let byte = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
    [byte(color[0]), byte(color[1]), byte(color[2]), 255]
}

/// The whole panel shaded on the CPU, RGBA row-major.
pub fn shade_all(u: &GpuUniforms, tex: &PanelTextures) -> Vec<u8> {
    let mut out = Vec::with_capacity((tex.width * tex.height * 4) as usize);
    for y in 0..tex.height {
        for x in 0..tex.width {
            out.extend_from_slice(&shade(u, tex, x, y));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_sampling_interpolates_between_voxel_centres_read_from_their_pixels() {
        // A row of 8 pixels showing 2 voxels (4 pixels each) of values 0 and 200.
        let values = [0.0f32, 0.0, 0.0, 0.0, 200.0, 200.0, 200.0, 200.0];
        let sampling = [0.25, 0.0, 0.0, 0.0];
        let row = |stat: &dyn Fn(u32) -> u8| -> Vec<Option<f32>> {
            (0..8)
                .map(|x| {
                    sample_linear(
                        sampling,
                        (x, 0),
                        (8, 1),
                        |q| stat(q.0),
                        |q| values[q.0 as usize],
                    )
                })
                .collect()
        };
        let all = row(&|_| status::DATA);
        // Pixel 3's centre is 0.375 voxels past voxel 0's centre: 200 · 0.375 = 75. Pixels
        // 0, 1 and 6, 7 lie beyond the outer voxel centres, whose other neighbours are off
        // the panel: their own voxel's value.
        let want = [0.0, 0.0, 25.0, 75.0, 125.0, 175.0, 200.0, 200.0];
        assert_eq!(all, want.map(Some).to_vec());
        // Voxel 1 loading: its pixels count for nothing (pixel 3 shows voxel 0 alone, and
        // pixels of voxel 1 have no voxel with data to read).
        let loading = row(&|x| {
            if x >= 4 {
                status::LOADING
            } else {
                status::DATA
            }
        });
        assert_eq!(loading[3], Some(0.0));
        assert_eq!(loading[5], Some(0.0));
        // Through the uniforms: a grey image layer with linear sampling.
        let slice = LayerSlice {
            width: 8,
            height: 1,
            values: SliceValues::Float {
                channels: 1,
                values: values.to_vec(),
            },
            status: vec![status::DATA; 8],
            level: 0,
            coarser: 0,
            loading: 0,
            errors: Vec::new(),
        };
        let linear = LayerSettings::Image(super::super::state::ImageSettings {
            sampling: Sampling::Linear,
            ..Default::default()
        });
        let draw = |settings: &LayerSettings| {
            let layer = DrawLayer {
                slice: &slice,
                settings,
                visible: true,
                hover: None,
                pending: false,
                linear: Some(sampling),
            };
            let (u, t) = pack(&[layer], None, [0.0, 0.0], None);
            (0..8).map(|x| shade(&u, &t, x, 0)[0]).collect::<Vec<u8>>()
        };
        assert_eq!(draw(&linear), vec![0, 0, 25, 75, 125, 175, 200, 200]);
        // Nearest (the default) ignores the mapping.
        let nearest = LayerSettings::Image(super::super::state::ImageSettings::default());
        assert_eq!(draw(&nearest), vec![0, 0, 0, 0, 200, 200, 200, 200]);
    }

    fn labels(ids: &[u64]) -> LayerSlice {
        LayerSlice {
            width: ids.len() as u32,
            height: 1,
            values: SliceValues::Labels(ids.to_vec()),
            status: vec![status::DATA; ids.len()],
            level: 0,
            coarser: 0,
            loading: 0,
            errors: Vec::new(),
        }
    }

    #[test]
    fn splits_and_merges_are_flagged_per_object() {
        // Truth 1 is covered by predictions 5 and 6: split. Prediction 7 covers only truth 2.
        let f = instance_flags(&labels(&[1, 1, 2, 2]), &labels(&[5, 6, 7, 7]));
        assert_eq!(f, vec![1, 1, 0, 0]);
        // Prediction 5 covers truths 1 and 2: merged; background is never flagged.
        let f = instance_flags(&labels(&[1, 1, 2, 0]), &labels(&[5, 5, 5, 5]));
        assert_eq!(f, vec![2, 2, 2, 2]);
        let f = instance_flags(&labels(&[1, 0, 2, 0]), &labels(&[5, 0, 6, 0]));
        assert_eq!(f, vec![0, 0, 0, 0]);
    }

    #[test]
    fn uniforms_match_the_shader_layout() {
        // WGSL: 6 vec4 + 16 vec4 + 8 layers of 10 vec4.
        assert_eq!(std::mem::size_of::<GpuLayer>(), 10 * 16);
        assert_eq!(std::mem::size_of::<GpuUniforms>(), (6 + 16 + 8 * 10) * 16);
    }
}
