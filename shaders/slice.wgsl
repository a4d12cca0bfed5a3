// Cross-section compositing: every layer's values for this panel arrive as textures with
// one texel per screen pixel; the fragment shader colours them (contrast range and colormap
// for images, neuroglancer's segment hash colours for label ids, heatmaps or per-channel
// colours for predictions), blends them bottom to top, draws the error overlay of a
// ground-truth/prediction pair, hatches chunks that failed to load, lines the blocks of a
// live prediction that are still being computed and adds cross-hairs.
//
// This file holds the declarations and helper functions. The fragment entry point and one
// function per drawn layer are generated for each combination of layer kinds and options
// (src/render/shader.rs), so a panel's shader holds only the code its layers use: a
// software rasteriser runs every instruction of a shader for every pixel, branches or not.
// The CPU reference in src/render/shade.rs computes the same colours.

struct Layer {
    kind_tex: vec4<u32>,   // kind (0 image, 1 segmentation, 2 prediction), texture index, channels, status index
    opts: vec4<u32>,       // colormap row, invert, blend (0 over, 1 additive), flags (1 hide zero, 2 isolate, 4 hover valid)
    range: vec4<f32>,      // lo, hi, opacity, selected alpha
    seg: vec4<u32>,        // colour seed, first selected id, selected count, unselected alpha (f32 bits)
    hover: vec4<u32>,      // hovered id low, high, visible, pending look for loading pixels (1)
    sampling: vec4<f32>,   // linear sampling: voxels per pixel and voxel position at the edge, horizontally then vertically (0: nearest)
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

// The grey colormap (row 0), computed without the table.
fn grey(t: f32) -> vec3<f32> {
    return vec3<f32>(round(clamp(t, 0.0, 1.0) * 255.0) / 255.0);
}

// A colormap's colour from its row of the table.
fn lut(row: u32, t: f32) -> vec3<f32> {
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

// A prediction channel's intensity in layer `i`'s range, and 0/1 against its threshold.
fn level(i: u32, tex: u32, p: vec2<i32>) -> f32 {
    let v = textureLoad(floats, p, i32(tex), 0).x;
    return invlerp(v, u.layers[i].range.x, u.layers[i].range.y);
}

fn level_thresholded(i: u32, tex: u32, p: vec2<i32>) -> f32 {
    let v = textureLoad(floats, p, i32(tex), 0).x;
    return select(0.0, 1.0, v > u.layers[i].range.w);
}

// The value of float texture layer `tex` of layer `i` at pixel `p`, sampled linearly: along
// each axis where a voxel covers more than a pixel, the two voxel centres around the pixel
// centre weighted by distance, each read from a pixel that shows it. Voxels beyond the
// panel or without data count for nothing; when none counts, the pixel's own value. The
// CPU reference is `sample_linear` in src/render/shade.rs.
fn sample_linear(i: u32, tex: u32, p: vec2<i32>) -> f32 {
    let s = u.layers[i].sampling;
    let a = s.xz;
    let b = s.yw;
    let on = a > vec2<f32>(0.0);
    let c = b + (vec2<f32>(p) + 0.5) * a - 0.5;
    let i0 = floor(c);
    let f = select(vec2<f32>(0.0), c - i0, on);
    let size = vec2<i32>(u.origin_size.zw);
    let safe_a = select(vec2<f32>(1.0), a, on);
    var sum = 0.0;
    var weight = 0.0;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let o = vec2<f32>(f32(k & 1u), f32(k >> 1u));
        let w2 = select(1.0 - f, f, o == vec2<f32>(1.0));
        let w = w2.x * w2.y;
        if (w == 0.0) { continue; }
        let q = select(p, vec2<i32>(floor((i0 + o + 0.5 - b) / safe_a)), on);
        if (any(q < vec2<i32>(0)) || any(q >= size)) { continue; }
        if (textureLoad(status, q, i32(u.layers[i].kind_tex.w), 0).x != 0u) { continue; }
        sum = sum + w * textureLoad(floats, q, i32(tex), 0).x;
        weight = weight + w;
    }
    if (weight == 0.0) { return textureLoad(floats, p, i32(tex), 0).x; }
    return sum / weight;
}

fn level_linear(i: u32, tex: u32, p: vec2<i32>) -> f32 {
    return invlerp(sample_linear(i, tex, p), u.layers[i].range.x, u.layers[i].range.y);
}

// Status (0 data, 1 outside, 2 loading, 3 failed) of layer `index` at pixel `p`; outside
// beyond the panel.
fn status_at(index: u32, p: vec2<i32>) -> u32 {
    let size = vec2<i32>(u.origin_size.zw);
    if (p.x < 0 || p.y < 0 || p.x >= size.x || p.y >= size.y) { return 1u; }
    return textureLoad(status, p, i32(u.layers[index].kind_tex.w), 0).x;
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

