//! The WGSL of the gather passes (`render::gpu_gather`), written per panel orientation and
//! layer shape: axis-aligned panels read each pixel's voxel from per-column and per-row
//! tables, rotated ones evaluate each cell's affine maps.

use super::gpu_gather::{CELLS_PER_ROW, CELL_WORDS};

/// The vertex stage both gather passes share (one triangle over the viewport, clipped to
/// a cell by the scissor, passing the instance index on as `tag`) and their fragment
/// outputs `out_fields`.
fn vertex_wgsl(out_fields: &str) -> String {
    format!(
        r#"struct VsOut {{
    @builtin(position) pos: vec4<f32>,
    @location(0) @interpolate(flat) tag: u32,
}};

@vertex
fn vs_main(@builtin(vertex_index) i: u32, @builtin(instance_index) s: u32) -> VsOut {{
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return VsOut(vec4<f32>(x, y, 0.0, 1.0), s);
}}

struct Out {{
{out_fields}}};
"#
    )
}

/// The WGSL of the gather pass writing `channels` float targets (or one label target)
/// and the status target, for a panel showing world axes `axes` (horizontal, vertical,
/// normal; 0 z, 1 y, 2 x): the voxel coordinate is written out per orientation rather
/// than indexed at run time.
pub(crate) fn gather_wgsl(labels: bool, channels: usize, axes: [usize; 3]) -> String {
    // The table value (h, v or n) that gives the chunk's voxel along world axis `a`.
    let along = |a: usize| ["h", "v", "n"][axes.iter().position(|x| *x == a).unwrap_or(2)];
    let (cx, cy, cz) = (along(2), along(1), along(0));
    let (voxel_type, targets) = if labels {
        ("u32", 1)
    } else {
        ("f32", channels)
    };
    let mut out_fields = String::new();
    for c in 0..targets {
        let ty = if labels { "vec2<u32>" } else { "f32" };
        out_fields.push_str(&format!("    @location({c}) v{c}: {ty},\n"));
    }
    out_fields.push_str(&format!("    @location({targets}) status: u32,\n"));
    let mut samples = String::new();
    for c in 0..targets {
        if labels {
            samples.push_str(&format!(
                "    out.v{c} = textureLoad(voxels, vec3<u32>({cx}, {cy}, {cz}), 0).xy;\n"
            ));
        } else {
            samples.push_str(&format!(
                "    out.v{c} = textureLoad(voxels, vec3<u32>({cx}, {cy}, {cz} + {c}u * chunk.info.y), 0).x;\n"
            ));
        }
    }
    let mut zeros = String::new();
    for c in 0..targets {
        zeros.push_str(&if labels {
            format!("    out.v{c} = panel.fill.xy;\n")
        } else {
            format!("    out.v{c} = bitcast<f32>(panel.fill.x);\n")
        });
    }
    format!(
        r#"// Gathers one layer of a panel from chunks (src/render/gpu_gather.rs).
struct Panel {{
    axes: vec4<u32>,   // world axes (0 z, 1 y, 2 x) shown horizontally, vertically, along the normal
    size: vec4<u32>,   // panel width, height
    fill: vec4<u32>,   // the value of pixels without data (f32 bits, or an id's low and high halves)
}};
struct ChunkInfo {{
    info: vec4<u32>,   // scale level (row of the tables), voxels along z per channel
}};
@group(0) @binding(0) var<uniform> panel: Panel;
@group(0) @binding(1) var tables: texture_2d<u32>;
@group(1) @binding(0) var<uniform> chunk: ChunkInfo;
@group(1) @binding(1) var voxels: texture_3d<{voxel_type}>;

{vertex}
// A cell showing a chunk: each pixel's voxel inside it from the tables.
@fragment
fn fs_sample(input: VsOut) -> Out {{
    let p = vec2<u32>(input.pos.xy);
    let row = chunk.info.x;
    let h = textureLoad(tables, vec2<u32>(p.x, row), 0).x;
    let v = textureLoad(tables, vec2<u32>(panel.size.x + p.y, row), 0).x;
    let n = textureLoad(tables, vec2<u32>(panel.size.x + panel.size.y, row), 0).x;
    var out: Out;
{samples}    out.status = 0u;
    return out;
}}

// A cell without data: its status (the instance index) and the fill value.
@fragment
fn fs_status(input: VsOut) -> Out {{
    var out: Out;
{zeros}    out.status = input.tag;
    return out;
}}
"#,
        vertex = vertex_wgsl(&out_fields),
    )
}

/// The WGSL of the gather pass for a rotated plane: each cell (its index in the instance
/// index, above a status in the low two bits) reads its affine maps from the cell texture
/// and draws the pixels whose voxels fall inside its chunk and the chosen level.
pub(crate) fn oblique_wgsl(labels: bool, channels: usize) -> String {
    let (voxel_type, targets) = if labels {
        ("u32", 1)
    } else {
        ("f32", channels)
    };
    let mut out_fields = String::new();
    let mut samples = String::new();
    let mut zeros = String::new();
    for c in 0..targets {
        let ty = if labels { "vec2<u32>" } else { "f32" };
        out_fields.push_str(&format!("    @location({c}) v{c}: {ty},\n"));
        if labels {
            samples.push_str(&format!(
                "    out.v{c} = textureLoad(voxels, vec3<u32>(q.z, q.y, q.x), 0).xy;\n"
            ));
            zeros.push_str(&format!("    out.v{c} = panel.fill.xy;\n"));
        } else {
            samples.push_str(&format!(
                "    out.v{c} = textureLoad(voxels, vec3<u32>(q.z, q.y, q.x + {c}u * chunk.info.y), 0).x;\n"
            ));
            zeros.push_str(&format!("    out.v{c} = bitcast<f32>(panel.fill.x);\n"));
        }
    }
    out_fields.push_str(&format!("    @location({targets}) status: u32,\n"));
    format!(
        r#"// Gathers one layer of a rotated panel from chunks (src/render/gpu_gather.rs).
struct Panel {{
    axes: vec4<u32>,
    size: vec4<u32>,   // panel width, height
    fill: vec4<u32>,   // the value of pixels without data (f32 bits, or an id's low and high halves)
}};
struct ChunkInfo {{
    info: vec4<u32>,   // scale level, voxels along z per channel
}};
@group(0) @binding(0) var<uniform> panel: Panel;
@group(0) @binding(1) var tables: texture_2d<u32>;
@group(0) @binding(2) var cells: texture_2d<u32>;
@group(1) @binding(0) var<uniform> chunk: ChunkInfo;
@group(1) @binding(1) var voxels: texture_3d<{voxel_type}>;

{vertex}
fn word(cell: u32, k: u32) -> u32 {{
    return textureLoad(cells, vec2<u32>((cell % {per_row}u) * {words}u + k, cell / {per_row}u), 0).x;
}}

fn vec_at(cell: u32, k: u32) -> vec3<f32> {{
    return vec3<f32>(bitcast<f32>(word(cell, k)), bitcast<f32>(word(cell, k + 1u)), bitcast<f32>(word(cell, k + 2u)));
}}

fn size_at(cell: u32, k: u32) -> vec3<f32> {{
    return vec3<f32>(f32(word(cell, k)), f32(word(cell, k + 1u)), f32(word(cell, k + 2u)));
}}

// floor(origin + x du + y dv) of the map at word k, or -1 outside its size.
fn voxel_of(cell: u32, k: u32, p: vec2<f32>) -> vec3<f32> {{
    let q = floor(vec_at(cell, k) + p.x * vec_at(cell, k + 3u) + p.y * vec_at(cell, k + 6u));
    if (any(q < vec3<f32>(0.0)) || any(q >= size_at(cell, k + 9u))) {{
        return vec3<f32>(-1.0);
    }}
    return q;
}}

@fragment
fn fs_sample(input: VsOut) -> Out {{
    let cell = input.tag >> 2u;
    let p = input.pos.xy;
    if (voxel_of(cell, 12u, p).x < 0.0) {{
        discard;
    }}
    let f = voxel_of(cell, 0u, p);
    if (f.x < 0.0) {{
        discard;
    }}
    let q = vec3<u32>(f);
    var out: Out;
{samples}    out.status = 0u;
    return out;
}}

@fragment
fn fs_status(input: VsOut) -> Out {{
    let cell = input.tag >> 2u;
    let p = input.pos.xy;
    if (voxel_of(cell, 12u, p).x < 0.0 || voxel_of(cell, 0u, p).x < 0.0) {{
        discard;
    }}
    var out: Out;
{zeros}    out.status = input.tag & 3u;
    return out;
}}
"#,
        per_row = CELLS_PER_ROW,
        words = CELL_WORDS,
        vertex = vertex_wgsl(&out_fields),
    )
}
