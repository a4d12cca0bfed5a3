// neuroglancer's segment colours: the hash of an id and colour seed as a hue and
// saturation (src/render/colors.rs computes the same on the CPU). Shared by the slice and
// volume shaders.

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
