// Cross-section compositing: every layer's values for this panel arrive as textures with
// one texel per screen pixel; this shader colours them (contrast range and colormap for
// images, neuroglancer's segment hash colours for label ids, heatmaps or per-channel
// colours for predictions), blends them bottom to top, draws the error overlay of a
// ground-truth/prediction pair, hatches chunks that failed to load, lines the blocks of a
// live prediction that are still being computed and adds cross-hairs.
// The CPU reference in src/render/shade.rs computes the same colours.

struct Layer {
    kind_tex: vec4<u32>,   // kind (0 image, 1 segmentation, 2 prediction), texture index, channels, status index
    opts: vec4<u32>,       // colormap row, invert, blend (0 over, 1 additive), flags (1 hide zero, 2 isolate, 4 hover valid)
    range: vec4<f32>,      // lo, hi, opacity, selected alpha
    seg: vec4<u32>,        // colour seed, first selected id, selected count, unselected alpha (f32 bits)
    hover: vec4<u32>,      // hovered id low, high, visible, pending look for loading pixels (1)
    colors: array<vec4<f32>, 4>,
};

struct Uniforms {
    origin_size: vec4<f32>,  // panel origin x, y (physical px), width, height
    counts: vec4<u32>,       // layers, overlay on, truth layer, prediction layer
    overlay: vec4<f32>,      // alpha, threshold, instances (1) or voxels (0), mask layer + 1 (0: none)
    cross: vec4<f32>,        // cross-hair x, y (px in the panel), on, _
    cross_h: vec4<f32>,      // colour of the horizontal line
    cross_v: vec4<f32>,      // colour of the vertical line
    selected: array<vec4<u32>, 16>,  // 32 ids as (low, high) pairs
    layers: array<Layer, 8>,
};

@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var floats: texture_2d_array<f32>;
@group(0) @binding(2) var labels: texture_2d_array<u32>;
@group(0) @binding(3) var status: texture_2d_array<u32>;
@group(0) @binding(4) var luts: texture_2d<f32>;

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // One triangle covering the viewport (egui sets it to the panel's rectangle).
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

fn rotl(x: u32, r: u32) -> u32 {
    return (x << r) | (x >> (32u - r));
}

// neuroglancer's hashCombine (a MurmurHash3 block step).
fn hash_combine(state: u32, value: u32) -> u32 {
    var k = value * 0xcc9e2d51u;
    k = rotl(k, 15u);
    k = k * 0x1b873593u;
    var h = state ^ k;
    h = rotl(h, 13u);
    return h * 5u + 0xe6546b64u;
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> vec3<f32> {
    let h6 = h * 6.0;
    let sector = floor(h6);
    let f = h6 - sector;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    let k = i32(sector) % 6;
    if (k == 0) { return vec3<f32>(v, t, p); }
    if (k == 1) { return vec3<f32>(q, v, p); }
    if (k == 2) { return vec3<f32>(p, v, t); }
    if (k == 3) { return vec3<f32>(p, q, v); }
    if (k == 4) { return vec3<f32>(t, p, v); }
    return vec3<f32>(v, p, q);
}

fn segment_color(seed: u32, id: vec2<u32>) -> vec3<f32> {
    let h = hash_combine(hash_combine(seed, id.x), id.y);
    let hue = f32(h & 0xffu) / 255.0;
    let sat = 0.5 + 0.5 * f32((h >> 8u) & 0xffu) / 255.0;
    return hsv_to_rgb(hue, sat, 1.0);
}

fn lut(row: u32, t: f32) -> vec3<f32> {
    if (row == 0u) {
        // Grey: no table lookup needed.
        return vec3<f32>(round(clamp(t, 0.0, 1.0) * 255.0) / 255.0);
    }
    let i = u32(clamp(round(clamp(t, 0.0, 1.0) * 255.0), 0.0, 255.0));
    return textureLoad(luts, vec2<i32>(i32(i), i32(row)), 0).rgb;
}

fn invlerp(v: f32, lo: f32, hi: f32) -> f32 {
    if (hi == lo) { return select(0.0, 1.0, v >= hi); }
    return clamp((v - lo) / (hi - lo), 0.0, 1.0);
}

fn is_selected(id: vec2<u32>, first: u32, count: u32) -> bool {
    for (var k = 0u; k < count; k = k + 1u) {
        let j = first + k;
        let pair = u.selected[j / 2u];
        var s = pair.xy;
        if ((j & 1u) == 1u) { s = pair.zw; }
        if (all(s == id)) { return true; }
    }
    return false;
}

// A prediction channel's intensity: its value in the layer's range, or 0/1 against the
// threshold when the threshold preview is on.
fn level(i: u32, tex: u32, p: vec2<i32>, thresholded: bool) -> f32 {
    let v = textureLoad(floats, p, i32(tex), 0).x;
    if (thresholded) { return select(0.0, 1.0, v > u.layers[i].range.w); }
    return invlerp(v, u.layers[i].range.x, u.layers[i].range.y);
}

// Foreground of a layer at a pixel, for the error overlay.
fn foreground(index: u32, p: vec2<i32>) -> bool {
    let l = u.layers[index];
    if (l.kind_tex.x == 1u) {
        let id = textureLoad(labels, p, i32(l.kind_tex.y), 0).xy;
        return any(id != vec2<u32>(0u, 0u));
    }
    return textureLoad(floats, p, i32(l.kind_tex.y), 0).x > u.overlay.y;
}

// Status (0 data, 1 outside, 2 loading, 3 failed) of layer `index` at pixel `p`; outside
// beyond the panel.
fn status_at(index: u32, p: vec2<i32>) -> u32 {
    let size = vec2<i32>(u.origin_size.zw);
    if (p.x < 0 || p.y < 0 || p.x >= size.x || p.y >= size.y) { return 1u; }
    return textureLoad(status, p, i32(u.layers[index].kind_tex.w), 0).x;
}

// Whether the truth is known at `p`: inside the truth layer's data, and its mask (if any) set.
fn known(p: vec2<i32>) -> bool {
    if (status_at(u.counts.z, p) != 0u) { return false; }
    if (u.overlay.w >= 1.0) {
        let m = u32(u.overlay.w) - 1u;
        if (status_at(m, p) != 0u) { return false; }
        let l = u.layers[m];
        if (l.kind_tex.x == 1u) {
            return any(textureLoad(labels, p, i32(l.kind_tex.y), 0).xy != vec2<u32>(0u, 0u));
        }
        return textureLoad(floats, p, i32(l.kind_tex.y), 0).x > 0.0;
    }
    return true;
}

// The layers blended bottom to top at pixel `p`.
fn layers_color(p: vec2<i32>) -> vec3<f32> {
    var color = vec3<f32>(0.0, 0.0, 0.0);
    for (var i = 0u; i < u.counts.x; i = i + 1u) {
        if (u.layers[i].hover.z == 0u) { continue; }
        let kt = u.layers[i].kind_tex;
        let st = textureLoad(status, p, i32(kt.w), 0).x;
        // A computed layer's pending blocks: thin grey diagonal lines (PENDING_SPACING).
        if (st == 2u && u.layers[i].hover.w == 1u && (p.x + p.y) % 8 == 0) {
            color = color * 0.5 + vec3<f32>(0.3);
            continue;
        }
        if (st == 1u || st == 2u) { continue; }
        if (st == 3u) {
            let stripe = ((p.x + p.y) / 4) % 2 == 0;
            color = select(vec3<f32>(0.25, 0.0, 0.0), vec3<f32>(1.0, 0.3, 0.3), stripe);
            continue;
        }
        var c = vec3<f32>(0.0);
        var a = 0.0;
        if (kt.x == 0u) {
            let v = textureLoad(floats, p, i32(kt.y), 0).x;
            var t = invlerp(v, u.layers[i].range.x, u.layers[i].range.y);
            if (u.layers[i].opts.y == 1u) { t = 1.0 - t; }
            c = lut(u.layers[i].opts.x, t);
            a = u.layers[i].range.z;
        } else if (kt.x == 1u) {
            let id = textureLoad(labels, p, i32(kt.y), 0).xy;
            let zero = all(id == vec2<u32>(0u, 0u));
            if (zero && (u.layers[i].opts.w & 1u) != 0u) { continue; }
            let sel = is_selected(id, u.layers[i].seg.y, u.layers[i].seg.z);
            if ((u.layers[i].opts.w & 2u) != 0u && !sel) { continue; }
            c = segment_color(u.layers[i].seg.x, id);
            a = select(bitcast<f32>(u.layers[i].seg.w), u.layers[i].range.w, sel);
            if ((u.layers[i].opts.w & 4u) != 0u && all(id == u.layers[i].hover.xy)) {
                a = u.layers[i].range.w;
                c = mix(c, vec3<f32>(1.0), 0.35);
            }
        } else {
            let n = kt.z;
            // Threshold preview (flag 8): channels are 1 above range.w and 0 below, and
            // pixels with no channel on are not drawn.
            let thresholded = (u.layers[i].opts.w & 8u) != 0u;
            var any_on = false;
            if (n <= 1u) {
                let t = level(i, kt.y, p, thresholded);
                any_on = t > 0.0;
                c = lut(u.layers[i].opts.x, t);
            } else {
                for (var k = 0u; k < min(n, 4u); k = k + 1u) {
                    let t = level(i, kt.y + k, p, thresholded);
                    any_on = any_on || t > 0.0;
                    c = c + u.layers[i].colors[k].rgb * t;
                }
                c = min(c, vec3<f32>(1.0));
            }
            if (thresholded && !any_on) { continue; }
            a = u.layers[i].range.z;
        }
        if (u.layers[i].opts.z == 1u) {
            color = min(color + c * a, vec3<f32>(1.0));
        } else {
            color = mix(color, c, a);
        }
    }
    return color;
}

// The error overlay of a ground-truth/prediction pair over `color`, and the outline of
// the truth's region.
fn with_overlay(color_in: vec3<f32>, p: vec2<i32>) -> vec3<f32> {
    var color = color_in;
    if (u.counts.y == 1u && known(p)) {
        let truth = foreground(u.counts.z, p);
        let pred = foreground(u.counts.w, p);
        var oc = vec3<f32>(0.0);
        var on = true;
        if (truth && pred) {
            oc = vec3<f32>(0.0, 200.0, 0.0) / 255.0;
        } else if (pred) {
            oc = vec3<f32>(1.0, 0.0, 1.0);
        } else if (truth) {
            oc = vec3<f32>(0.0, 160.0, 255.0) / 255.0;
        } else {
            on = false;
        }
        if (u.overlay.z == 1.0) {
            let flags = textureLoad(status, p, i32(u.counts.x), 0).x;
            if ((flags & 2u) != 0u) {
                oc = vec3<f32>(1.0, 0.0, 0.0);
                on = true;
            } else if ((flags & 1u) != 0u) {
                oc = vec3<f32>(1.0, 160.0 / 255.0, 0.0);
                on = true;
            }
        }
        if (on) {
            color = mix(color, oc, u.overlay.x);
        }
    }
    // The outline of the truth's region: the pixels just outside it, next to one inside
    // (so no judged pixel is covered).
    if (u.counts.y == 1u && status_at(u.counts.z, p) == 1u) {
        var edge = false;
        var steps = array<vec2<i32>, 4>(vec2<i32>(-1, 0), vec2<i32>(1, 0), vec2<i32>(0, -1), vec2<i32>(0, 1));
        for (var k = 0; k < 4; k = k + 1) {
            if (status_at(u.counts.z, p + steps[k]) == 0u) { edge = true; }
        }
        if (edge) { color = vec3<f32>(1.0, 220.0 / 255.0, 0.0); }
    }
    return color;
}

// The cross-hairs over `color` at panel position `local`.
fn with_cross_hairs(color: vec3<f32>, local: vec2<f32>) -> vec3<f32> {
    var out = color;
    if (u.cross.z == 1.0) {
        if (abs(local.y - u.cross.y) < 0.5) { out = u.cross_h.rgb; }
        if (abs(local.x - u.cross.x) < 0.5) { out = u.cross_v.rgb; }
    }
    return out;
}

// Panels with an error overlay.
@fragment
fn fs_main(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    let local = frag.xy - u.origin_size.xy;
    let p = vec2<i32>(floor(local));
    let color = with_overlay(layers_color(p), p);
    return vec4<f32>(with_cross_hairs(color, local), 1.0);
}

// Panels without one: a software rasteriser runs every instruction of a shader for every
// pixel whatever the branches, so the overlay's code is left out rather than skipped.
@fragment
fn fs_plain(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    let local = frag.xy - u.origin_size.xy;
    let p = vec2<i32>(floor(local));
    return vec4<f32>(with_cross_hairs(layers_color(p), local), 1.0);
}
