//! The cross-section shader, specialised per panel: `shaders/slice.wgsl` holds the
//! declarations and helpers, and this module writes the fragment entry point with one
//! function per drawn layer for the combination of layer kinds and options a panel shows.
//!
//! A software rasteriser (lavapipe, llvmpipe) runs every instruction of a fragment shader
//! for every pixel, whatever its branches: a generic shader looping over up to eight layers
//! of any kind cost 35 ms per 1280×800 frame with no layer at all. A shader holding only
//! the code of the layers drawn costs what those layers need. Values that change often
//! (contrast ranges, opacity, colours, selected ids, the hovered id, the cross-hair
//! position) stay uniforms, so moving a slider never builds a new pipeline.

use std::fmt::Write as _;

use super::shade::{GpuUniforms, MAX_LAYERS};
use super::state::overlay_colors;

/// The declarations and helper functions every generated shader starts with.
pub const SLICE_PRELUDE: &str = concat!(
    include_str!("../../shaders/colors.wgsl"),
    "\n",
    include_str!("../../shaders/slice.wgsl")
);

/// What a panel's shader must do: panels with equal keys share one pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShaderKey {
    /// Drawn layers, bottom first (hidden layers have no code).
    pub layers: Vec<LayerKey>,
    /// All layers, drawn or not (the overlay's split/merge flags follow their status).
    pub layer_count: u8,
    /// The error overlay, if on.
    pub overlay: Option<OverlayKey>,
    /// Cross-hairs drawn.
    pub cross: bool,
}

/// One drawn layer's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerKey {
    /// Its index among the panel's layers (into the uniforms and status textures).
    pub index: u8,
    /// What it shows.
    pub kind: KindKey,
    /// Added onto the layers below instead of blended over them.
    pub additive: bool,
    /// Its missing blocks are being computed and drawn as pending.
    pub pending: bool,
}

/// A layer kind with the options that change its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KindKey {
    /// Intensities through a contrast range and a colormap.
    Image {
        /// A colormap table (not grey).
        lut: bool,
        /// Inverted contrast.
        invert: bool,
        /// Linear sampling.
        linear: bool,
    },
    /// Label ids in segment colours.
    Segmentation {
        /// Id 0 not drawn.
        hide_zero: bool,
        /// Only selected segments drawn.
        isolate: bool,
        /// A hovered segment is highlighted.
        hover: bool,
        /// Some segments are selected.
        selection: bool,
    },
    /// Network outputs: one channel through a colormap, or up to four in their colours.
    Prediction {
        /// Channels drawn (1 to 4).
        channels: u8,
        /// A colormap table (one channel, not grey).
        lut: bool,
        /// The threshold preview.
        threshold: bool,
        /// Linear sampling (never with the threshold preview).
        linear: bool,
    },
}

/// The error overlay's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OverlayKey {
    /// The ground-truth layer, and whether it holds labels (else floats).
    pub truth: (u8, bool),
    /// The prediction layer, and whether it holds labels.
    pub prediction: (u8, bool),
    /// Split and merged objects highlighted.
    pub instances: bool,
    /// A mask layer, and whether it holds labels.
    pub mask: Option<(u8, bool)>,
}

impl ShaderKey {
    /// The key of a panel's uniforms (as [`super::shade::pack`] writes them).
    pub fn of(u: &GpuUniforms) -> ShaderKey {
        let count = (u.counts[0] as usize).min(MAX_LAYERS);
        let layers = u.layers[..count]
            .iter()
            .enumerate()
            .filter(|(_, l)| l.hover[2] != 0)
            .map(|(i, l)| {
                let flag = |bit: u32| l.opts[3] & bit != 0;
                let linear = l.sampling[0] > 0.0 || l.sampling[2] > 0.0;
                let kind = match l.kind_tex[0] {
                    0 => KindKey::Image {
                        lut: l.opts[0] != 0,
                        invert: l.opts[1] == 1,
                        linear,
                    },
                    1 => KindKey::Segmentation {
                        hide_zero: flag(1),
                        isolate: flag(2),
                        hover: flag(4),
                        selection: l.seg[2] > 0,
                    },
                    _ => {
                        let channels = l.kind_tex[2].clamp(1, 4) as u8;
                        KindKey::Prediction {
                            channels,
                            lut: channels == 1 && l.opts[0] != 0,
                            threshold: flag(8),
                            linear: linear && !flag(8),
                        }
                    }
                };
                LayerKey {
                    index: i as u8,
                    kind,
                    additive: l.opts[2] == 1,
                    pending: l.hover[3] == 1,
                }
            })
            .collect();
        let labels = |i: u32| {
            u.layers
                .get(i as usize)
                .is_some_and(|l: &super::shade::GpuLayer| l.kind_tex[0] == 1)
        };
        let in_range = |i: u32| (i as usize) < count;
        let overlay =
            (u.counts[1] == 1 && in_range(u.counts[2]) && in_range(u.counts[3])).then(|| {
                OverlayKey {
                    truth: (u.counts[2] as u8, labels(u.counts[2])),
                    prediction: (u.counts[3] as u8, labels(u.counts[3])),
                    instances: u.overlay[2] == 1.0,
                    mask: (u.overlay[3] >= 1.0)
                        .then(|| u.overlay[3] as u32 - 1)
                        .filter(|m| in_range(*m))
                        .map(|m| (m as u8, labels(m))),
                }
            });
        ShaderKey {
            layers,
            layer_count: count as u8,
            overlay,
            cross: u.cross[2] == 1.0,
        }
    }

    /// The complete WGSL source of this key's shader (entry points `vs_main`, `fs_main`).
    pub fn wgsl(&self) -> String {
        let mut s = String::with_capacity(SLICE_PRELUDE.len() + 4096);
        s.push_str(SLICE_PRELUDE);
        s.push_str("\n// ---- generated for this panel's layers ----\n");
        for l in &self.layers {
            layer_function(&mut s, l);
        }
        if let Some(o) = &self.overlay {
            overlay_functions(&mut s, o, self.layer_count);
        }
        s.push_str(
            "\n@fragment\nfn fs_main(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {\n\
             \x20   let local = frag.xy - u.origin_size.xy;\n\
             \x20   let p = vec2<i32>(floor(local));\n\
             \x20   var color = vec3<f32>(0.0, 0.0, 0.0);\n",
        );
        for l in &self.layers {
            let _ = writeln!(s, "    color = layer_{}(p, color);", l.index);
        }
        if self.overlay.is_some() {
            s.push_str("    color = with_overlay(color, p);\n");
        }
        if self.cross {
            s.push_str("    color = with_cross_hairs(color, local);\n");
        }
        s.push_str("    return vec4<f32>(color, 1.0);\n}\n");
        s
    }
}

fn rgb(c: [u8; 3]) -> String {
    format!(
        "vec3<f32>({:?}, {:?}, {:?})",
        f32::from(c[0]) / 255.0,
        f32::from(c[1]) / 255.0,
        f32::from(c[2]) / 255.0
    )
}

/// `fn layer_I(p, color) -> vec3<f32>`: the colours below with layer I drawn over them.
fn layer_function(s: &mut String, l: &LayerKey) {
    let i = l.index;
    let lay = format!("u.layers[{i}]");
    let _ = writeln!(
        s,
        "\nfn layer_{i}(p: vec2<i32>, color: vec3<f32>) -> vec3<f32> {{\n\
         \x20   let st = textureLoad(status, p, i32({lay}.kind_tex.w), 0).x;"
    );
    if l.pending {
        // A computed layer's pending blocks: thin grey diagonal lines (PENDING_SPACING).
        let _ = writeln!(
            s,
            "    if (st == 2u && (p.x + p.y) % {} == 0) {{ return color * 0.5 + vec3<f32>(0.3); }}",
            super::shade::PENDING_SPACING
        );
    }
    s.push_str(
        "    if (st == 3u) {\n\
         \x20       let stripe = ((p.x + p.y) / 4) % 2 == 0;\n\
         \x20       return select(vec3<f32>(0.25, 0.0, 0.0), vec3<f32>(1.0, 0.3, 0.3), stripe);\n\
         \x20   }\n\
         \x20   if (st != 0u) { return color; }\n",
    );
    let color_of = |lut: bool, t: &str| {
        if lut {
            format!("lut({lay}.opts.x, {t})")
        } else {
            format!("grey({t})")
        }
    };
    match l.kind {
        KindKey::Image {
            lut,
            invert,
            linear,
        } => {
            if linear {
                let _ = writeln!(s, "    let v = sample_linear({i}u, {lay}.kind_tex.y, p);");
            } else {
                let _ = writeln!(
                    s,
                    "    let v = textureLoad(floats, p, i32({lay}.kind_tex.y), 0).x;"
                );
            }
            let _ = writeln!(s, "    var t = invlerp(v, {lay}.range.x, {lay}.range.y);");
            if invert {
                s.push_str("    t = 1.0 - t;\n");
            }
            let _ = writeln!(
                s,
                "    let c = {};\n    let a = {lay}.range.z;",
                color_of(lut, "t")
            );
        }
        KindKey::Segmentation {
            hide_zero,
            isolate,
            hover,
            selection,
        } => {
            let _ = writeln!(
                s,
                "    let id = textureLoad(labels, p, i32({lay}.kind_tex.y), 0).xy;"
            );
            if hide_zero {
                s.push_str("    if (all(id == vec2<u32>(0u, 0u))) { return color; }\n");
            }
            if selection {
                let _ = writeln!(
                    s,
                    "    let sel = is_selected(id, {lay}.seg.y, {lay}.seg.z);"
                );
            } else {
                s.push_str("    let sel = false;\n");
            }
            if isolate {
                s.push_str("    if (!sel) { return color; }\n");
            }
            let _ = writeln!(
                s,
                "    var c = segment_color({lay}.seg.x, id);\n\
                 \x20   var a = select(bitcast<f32>({lay}.seg.w), {lay}.range.w, sel);"
            );
            if hover {
                let _ = writeln!(
                    s,
                    "    if (all(id == {lay}.hover.xy)) {{\n\
                     \x20       a = {lay}.range.w;\n\
                     \x20       c = mix(c, vec3<f32>(1.0), 0.35);\n\
                     \x20   }}"
                );
            }
        }
        KindKey::Prediction {
            channels,
            lut,
            threshold,
            linear,
        } => {
            let level = if threshold {
                "level_thresholded"
            } else if linear {
                "level_linear"
            } else {
                "level"
            };
            if channels <= 1 {
                let _ = writeln!(
                    s,
                    "    let t = {level}({i}u, {lay}.kind_tex.y, p);\n\
                     \x20   let any_on = t > 0.0;\n\
                     \x20   let c = {};",
                    color_of(lut, "t")
                );
            } else {
                s.push_str("    var c = vec3<f32>(0.0);\n    var any_on = false;\n");
                for k in 0..channels {
                    let _ = writeln!(
                        s,
                        "    let t{k} = {level}({i}u, {lay}.kind_tex.y + {k}u, p);\n\
                         \x20   any_on = any_on || t{k} > 0.0;\n\
                         \x20   c = c + {lay}.colors[{k}].rgb * t{k};"
                    );
                }
                s.push_str("    c = min(c, vec3<f32>(1.0));\n");
            }
            if threshold {
                s.push_str("    if (!any_on) { return color; }\n");
            }
            let _ = writeln!(s, "    let a = {lay}.range.z;");
        }
    }
    if l.additive {
        s.push_str("    return min(color + c * a, vec3<f32>(1.0));\n}\n");
    } else {
        s.push_str("    return mix(color, c, a);\n}\n");
    }
}

/// Foreground of a layer at pixel `p` (labels: non-zero; floats: above `threshold`).
fn foreground(index: u8, labels: bool, threshold: &str) -> String {
    if labels {
        format!(
            "any(textureLoad(labels, p, i32(u.layers[{index}].kind_tex.y), 0).xy != vec2<u32>(0u, 0u))"
        )
    } else {
        format!("(textureLoad(floats, p, i32(u.layers[{index}].kind_tex.y), 0).x > {threshold})")
    }
}

/// `known(p)` and `with_overlay(color, p)`: the error overlay of a truth/prediction pair.
fn overlay_functions(s: &mut String, o: &OverlayKey, layer_count: u8) {
    let t = o.truth.0;
    s.push_str(
        "\n// Whether the truth is known at `p`: inside its data, and its mask (if any) set.\n",
    );
    let _ = writeln!(
        s,
        "fn known(p: vec2<i32>) -> bool {{\n    if (status_at({t}u, p) != 0u) {{ return false; }}"
    );
    match o.mask {
        Some((m, labels)) => {
            let _ = writeln!(
                s,
                "    if (status_at({m}u, p) != 0u) {{ return false; }}\n    return {};\n}}",
                foreground(m, labels, "0.0")
            );
        }
        None => s.push_str("    return true;\n}\n"),
    }
    let _ = writeln!(
        s,
        "\n// The error overlay over `color`, and the outline of the truth's region.\n\
         fn with_overlay(color_in: vec3<f32>, p: vec2<i32>) -> vec3<f32> {{\n\
         \x20   var color = color_in;\n\
         \x20   if (known(p)) {{\n\
         \x20       let truth = {};\n\
         \x20       let pred = {};\n\
         \x20       var oc = vec3<f32>(0.0);\n\
         \x20       var on = true;\n\
         \x20       if (truth && pred) {{ oc = {}; }}\n\
         \x20       else if (pred) {{ oc = {}; }}\n\
         \x20       else if (truth) {{ oc = {}; }}\n\
         \x20       else {{ on = false; }}",
        foreground(o.truth.0, o.truth.1, "u.overlay.y"),
        foreground(o.prediction.0, o.prediction.1, "u.overlay.y"),
        rgb(overlay_colors::TRUE_POSITIVE),
        rgb(overlay_colors::FALSE_POSITIVE),
        rgb(overlay_colors::FALSE_NEGATIVE),
    );
    if o.instances {
        // The split/merge flags are the status layer after the panel's layers.
        let _ = writeln!(
            s,
            "        let flags = textureLoad(status, p, {layer_count}, 0).x;\n\
             \x20       if ((flags & 2u) != 0u) {{ oc = {}; on = true; }}\n\
             \x20       else if ((flags & 1u) != 0u) {{ oc = {}; on = true; }}",
            rgb(overlay_colors::MERGE),
            rgb(overlay_colors::SPLIT),
        );
    }
    let _ = writeln!(
        s,
        "        if (on) {{ color = mix(color, oc, u.overlay.x); }}\n\
         \x20   }}\n\
         \x20   // The pixels just outside the truth's region next to one inside (no judged\n\
         \x20   // pixel is covered).\n\
         \x20   if (status_at({t}u, p) == 1u) {{\n\
         \x20       let steps = array<vec2<i32>, 4>(vec2<i32>(-1, 0), vec2<i32>(1, 0), vec2<i32>(0, -1), vec2<i32>(0, 1));\n\
         \x20       var edge = false;\n\
         \x20       for (var k = 0; k < 4; k = k + 1) {{\n\
         \x20           if (status_at({t}u, p + steps[k]) == 0u) {{ edge = true; }}\n\
         \x20       }}\n\
         \x20       if (edge) {{ color = {}; }}\n\
         \x20   }}\n\
         \x20   return color;\n}}",
        rgb(overlay_colors::REGION),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytemuck::Zeroable;

    fn uniforms(kinds: &[u32]) -> GpuUniforms {
        let mut u = GpuUniforms::zeroed();
        u.counts[0] = kinds.len() as u32;
        for (i, k) in kinds.iter().enumerate() {
            u.layers[i].kind_tex = [*k, i as u32, 1, i as u32];
            u.layers[i].hover[2] = 1;
        }
        u
    }

    #[test]
    fn keys_follow_the_code_changing_options_and_not_the_values() {
        let mut u = uniforms(&[0, 1, 2]);
        let key = ShaderKey::of(&u);
        assert_eq!(key.layers.len(), 3);
        assert_eq!(key.layer_count, 3);
        assert!(key.overlay.is_none() && !key.cross);
        // Contrast, opacity, colours, the seed and the hovered id are uniforms only.
        u.layers[0].range = [10.0, 90.0, 0.5, 0.0];
        u.layers[1].seg[0] = 7;
        u.layers[1].hover[0] = 12;
        u.layers[2].colors[0] = [1.0, 0.0, 0.0, 1.0];
        assert_eq!(ShaderKey::of(&u), key);
        // A hidden layer has no code; a colormap, a selection or pending blocks do.
        let mut hidden = u;
        hidden.layers[1].hover[2] = 0;
        let h = ShaderKey::of(&hidden);
        assert_eq!(
            h.layers.iter().map(|l| l.index).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert_eq!(h.layer_count, 3);
        let mut lut = u;
        lut.layers[0].opts[0] = 2;
        assert_ne!(ShaderKey::of(&lut), key);
        let mut sel = u;
        sel.layers[1].seg[2] = 1;
        assert_ne!(ShaderKey::of(&sel), key);
        let mut pending = u;
        pending.layers[2].hover[3] = 1;
        assert!(ShaderKey::of(&pending).layers[2].pending);
        // Several channels ignore the colormap (they have their own colours).
        let mut multi = u;
        multi.layers[2].kind_tex[2] = 3;
        multi.layers[2].opts[0] = 4;
        assert_eq!(
            ShaderKey::of(&multi).layers[2].kind,
            KindKey::Prediction {
                channels: 3,
                lut: false,
                threshold: false,
                linear: false
            }
        );
    }

    #[test]
    fn the_overlay_key_names_its_layers_and_their_kinds() {
        let mut u = uniforms(&[0, 1, 2]);
        u.counts[1..4].copy_from_slice(&[1, 1, 2]);
        u.overlay = [0.3, 0.5, 1.0, 1.0];
        let o = ShaderKey::of(&u).overlay.unwrap();
        assert_eq!(o.truth, (1, true));
        assert_eq!(o.prediction, (2, false));
        assert!(o.instances);
        assert_eq!(o.mask, Some((0, false)));
        // A layer index beyond the panel's layers turns the overlay off.
        u.counts[3] = 5;
        assert!(ShaderKey::of(&u).overlay.is_none());
    }

    #[test]
    fn generated_code_holds_only_what_the_layers_use() {
        let u = uniforms(&[0]);
        let image_only = ShaderKey::of(&u).wgsl();
        assert!(image_only.contains("fn layer_0("));
        assert!(image_only.contains("grey(t)"));
        assert!(!image_only.contains("segment_color(u.layers"));
        assert!(!image_only.contains("fn with_overlay"));
        assert!(!image_only.contains("color = with_cross_hairs"));
        let mut u = uniforms(&[0, 1, 2]);
        u.counts[1..4].copy_from_slice(&[1, 1, 2]);
        u.cross[2] = 1.0;
        let all = ShaderKey::of(&u).wgsl();
        for f in [
            "layer_0(p, color)",
            "layer_1(p, color)",
            "layer_2(p, color)",
        ] {
            assert!(all.contains(f), "{f}");
        }
        assert!(all.contains("color = with_overlay(color, p);"));
        assert!(all.contains("color = with_cross_hairs(color, local);"));
        // Overlay colours come from the same constants as the CPU reference.
        assert!(all.contains(&rgb(overlay_colors::FALSE_NEGATIVE)));
    }
}
