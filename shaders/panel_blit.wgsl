// Shows a cross-section panel's colours as last drawn (src/render/gpu.rs): the slice shader
// colours only what changed into a texture of the panel's size, and every frame copies it
// into the panel's rectangle, texel for pixel.
@group(0) @binding(0) var<uniform> origin: vec4<f32>;  // panel origin x, y (physical px)
@group(0) @binding(1) var colours: texture_2d<f32>;

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // One triangle covering the viewport (the panel's rectangle).
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

@fragment
fn fs_main(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    return textureLoad(colours, vec2<i32>(floor(frag.xy - origin.xy)), 0);
}
