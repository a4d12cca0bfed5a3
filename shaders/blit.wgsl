// Copies the 3D panel's rendered image into the panel, scaled and filtered
// (src/render/gpu_volume.rs).
@group(0) @binding(0) var blit_sampler: sampler;
@group(0) @binding(1) var blit_image: texture_2d<f32>;

struct BlitOut {
    @builtin(position) pos: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> BlitOut {
    let x = f32((i << 1u) & 2u);
    let y = f32(i & 2u);
    return BlitOut(vec4<f32>(x * 2.0 - 1.0, 1.0 - y * 2.0, 0.0, 1.0), vec2<f32>(x, y));
}

@fragment
fn fs_blit(input: BlitOut) -> @location(0) vec4<f32> {
    return textureSample(blit_image, blit_sampler, input.uv);
}
