// The 3D panel (src/render/gpu_volume.rs), in two passes: fs_cast ray casts the volumes
// (when the camera, the volumes or their looks change) into a colour and a depth image;
// fs_planes draws the planes over it (also when only the planes moved). Orthographic
// rays cross a coarse scale level of an image layer (maximum-intensity projection) and of
// a segmentation layer (the first segment each ray meets, in its neuroglancer colour,
// nearer brighter, lit by the face of the voxel it entered; only the selected segments
// when some are); the three cross-section planes are drawn textured where the rays cross
// them. The nearest surface (a plane or a segment) is drawn; where a ray meets none, the
// projection. The CPU reference in src/render/volume_render.rs computes the same colours
// with the same f32 arithmetic in the same order.

struct Uniforms {
    right: vec4<f32>,     // world step (z, y, x, nm) of one nm to the right on screen
    down: vec4<f32>,      // ... one nm down
    forward: vec4<f32>,   // ... one nm into the screen
    centre: vec4<f32>,    // world point at the image centre (z, y, x), ray half-length (nm)
    view: vec4<f32>,      // image width, height (px), nm per px, samples per ray
    origin: vec4<f32>,    // the image's top-left corner in the target (px)
    image_off: vec4<f32>, // image volume: world corner of its first voxel (z, y, x)
    image_inv: vec4<f32>, // 1 / voxel size (z, y, x)
    image_shape: vec4<u32>, // voxels (z, y, x), drawn (1)
    label_off: vec4<f32>,
    label_inv: vec4<f32>,
    label_shape: vec4<u32>,
    image_look: vec4<f32>,  // range lo, 1 / (hi - lo) (0: a step at lo), invert (1)
    label_look: vec4<u32>,  // colour seed, selected count, opacity on planes (f32 bits), planes drawn (1)
    position: vec4<f32>,    // the point the planes cross (z, y, x)
    normals: array<vec4<f32>, 3>, // each plane's normal (z, y, x), 1 / (forward · normal) (0: edge-on)
    inv_forward: vec4<f32>, // 1 / forward per axis (0 where forward is 0)
    bounds_lo: vec4<f32>,   // the volumes' box: lowest corner (z, y, x), samples per nm of ray
    bounds_hi: vec4<f32>,   // highest corner
    face_inv: vec4<f32>,    // 1 / (forward × segmentation voxels per nm) per axis (0 where forward is 0)
    selected: array<vec4<u32>, 16>, // 32 ids as (low, high) pairs
    lut: array<vec4<u32>, 64>,      // the image colormap: 256 RGBA8 colours
};

@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var image_tex: texture_3d<f32>;
@group(0) @binding(2) var label_tex: texture_3d<u32>;

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

// The voxel (z, y, x) of a volume at world point p, or x = -1 outside it.
fn voxel(off: vec4<f32>, inv: vec4<f32>, shape: vec4<u32>, p: vec3<f32>) -> vec3<i32> {
    let z = floor((p.x - off.x) * inv.x);
    let y = floor((p.y - off.y) * inv.y);
    let x = floor((p.z - off.z) * inv.z);
    if (z < 0.0 || y < 0.0 || x < 0.0 || z >= f32(shape.x) || y >= f32(shape.y) || x >= f32(shape.z)) {
        return vec3<i32>(-1);
    }
    return vec3<i32>(i32(z), i32(y), i32(x));
}

fn image_at(p: vec3<f32>) -> vec2<f32> {
    let v = voxel(u.image_off, u.image_inv, u.image_shape, p);
    if (v.x < 0) { return vec2<f32>(0.0, 0.0); }
    return vec2<f32>(textureLoad(image_tex, vec3<i32>(v.z, v.y, v.x), 0).x, 1.0);
}

// The id at p (x = y = 0 outside) and whether the volume holds p (z).
fn label_at(p: vec3<f32>) -> vec3<u32> {
    let v = voxel(u.label_off, u.label_inv, u.label_shape, p);
    if (v.x < 0) { return vec3<u32>(0u, 0u, 0u); }
    return vec3<u32>(textureLoad(label_tex, vec3<i32>(v.z, v.y, v.x), 0).xy, 1u);
}

fn shown(id: vec2<u32>) -> bool {
    if (id.x == 0u && id.y == 0u) { return false; }
    let count = u.label_look.y;
    if (count == 0u) { return true; }
    for (var k = 0u; k < count; k = k + 1u) {
        let pair = u.selected[k / 2u];
        var s = pair.xy;
        if ((k & 1u) == 1u) { s = pair.zw; }
        if (s.x == id.x && s.y == id.y) { return true; }
    }
    return false;
}

fn image_color(v: f32) -> vec3<f32> {
    var t = clamp((v - u.image_look.x) * u.image_look.y, 0.0, 1.0);
    if (u.image_look.y == 0.0) { t = select(0.0, 1.0, v >= u.image_look.x); }
    if (u.image_look.z == 1.0) { t = 1.0 - t; }
    let i = u32(floor(t * 255.0 + 0.5));
    let word = u.lut[i / 4u][i % 4u];
    return vec3<f32>(f32(word & 0xffu), f32((word >> 8u) & 0xffu), f32((word >> 16u) & 0xffu)) / 255.0;
}

// The pixel's ray: the world point where it crosses the screen plane.
fn ray_base(pos: vec4<f32>) -> vec3<f32> {
    let px = pos.x - u.origin.x;
    let py = pos.y - u.origin.y;
    let sx = (px - u.view.x * 0.5) * u.view.z;
    let sy = (py - u.view.y * 0.5) * u.view.z;
    return u.centre.xyz + sx * u.right.xyz + sy * u.down.xyz;
}

// The samples (k0, k1) of a ray from base that may fall inside a volume's box, with a
// margin of a sample on each side; (0, 0) when it misses the box.
fn sample_range(base: vec3<f32>) -> vec2<u32> {
    var t0 = -u.centre.w;
    var t1 = u.centre.w;
    for (var a = 0u; a < 3u; a = a + 1u) {
        let inv = u.inv_forward[a];
        if (inv == 0.0) {
            if (base[a] < u.bounds_lo[a] || base[a] > u.bounds_hi[a]) { return vec2<u32>(0u, 0u); }
            continue;
        }
        let ta = (u.bounds_lo[a] - base[a]) * inv;
        let tb = (u.bounds_hi[a] - base[a]) * inv;
        t0 = max(t0, min(ta, tb));
        t1 = min(t1, max(ta, tb));
    }
    if (t0 > t1) { return vec2<u32>(0u, 0u); }
    let steps = u.view.w;
    let k0 = max(floor((t0 + u.centre.w) * u.bounds_lo.w - 0.5) - 1.0, 0.0);
    let k1 = min(ceil((t1 + u.centre.w) * u.bounds_lo.w - 0.5) + 2.0, steps);
    return vec2<u32>(u32(k0), u32(max(k1, k0)));
}

// Light on the face of the segmentation voxel where the ray at depth d entered it: a face
// seen straight on is lit fully, one seen edge-on at 55 %.
fn face_light(base: vec3<f32>, d: f32) -> f32 {
    let fwd = u.forward.xyz;
    let p = base + d * fwd;
    let v = vec3<f32>(
        floor((p.x - u.label_off.x) * u.label_inv.x),
        floor((p.y - u.label_off.y) * u.label_inv.y),
        floor((p.z - u.label_off.z) * u.label_inv.z),
    );
    let b = vec3<f32>(
        (base.x - u.label_off.x) * u.label_inv.x,
        (base.y - u.label_off.y) * u.label_inv.y,
        (base.z - u.label_off.z) * u.label_inv.z,
    );
    var best = -3.0e38;
    var facing = 1.0;
    for (var a = 0u; a < 3u; a = a + 1u) {
        let inv = u.face_inv[a];
        if (inv == 0.0) { continue; }
        var edge = v[a] + 1.0;
        if (fwd[a] > 0.0) { edge = v[a]; }
        let t = (edge - b[a]) * inv;
        if (t > best) {
            best = t;
            facing = abs(fwd[a]);
        }
    }
    return 0.55 + 0.45 * facing;
}

struct Cast {
    @location(0) color: vec4<f32>,
    @location(1) depth: f32,
};

// The volumes without the planes: the nearest segment (and its depth along the ray) or
// the projection.
@fragment
fn fs_cast(@builtin(position) pos: vec4<f32>) -> Cast {
    let base = ray_base(pos);
    let radius = u.centre.w;
    let steps = u32(u.view.w);
    let fwd = u.forward.xyz;
    var best = 0.0;
    var any_image = false;
    var hit = false;
    var hit_d = 0.0;
    var hit_id = vec2<u32>(0u, 0u);
    let range = sample_range(base);
    for (var k = range.x; k < range.y; k = k + 1u) {
        let d = -radius + (2.0 * radius) * ((f32(k) + 0.5) / f32(steps));
        let p = base + d * fwd;
        if (u.image_shape.w == 1u) {
            let v = image_at(p);
            if (v.y == 1.0) {
                if (!any_image || v.x > best) { best = v.x; }
                any_image = true;
            }
        }
        if (u.label_shape.w == 1u && !hit) {
            let l = label_at(p);
            if (l.z == 1u && shown(l.xy)) {
                hit = true;
                hit_d = d;
                hit_id = l.xy;
            }
        }
    }
    var out: Cast;
    out.color = vec4<f32>(0.0, 0.0, 0.0, 1.0);
    out.depth = 3.0e38;
    if (hit) {
        let shade = (1.0 - 0.5 * ((hit_d + radius) / (2.0 * radius))) * face_light(base, hit_d);
        out.color = vec4<f32>(segment_color(u.label_look.x, hit_id) * shade, 1.0);
        out.depth = hit_d;
    } else if (any_image) {
        out.color = vec4<f32>(image_color(best), 1.0);
    }
    return out;
}

@group(0) @binding(3) var cast_color: texture_2d<f32>;
@group(0) @binding(4) var cast_depth: texture_2d<f32>;

// The planes over the cast image: where the nearest plane the ray crosses inside a volume
// is nearer than the segment it met.
@fragment
fn fs_planes(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let texel = vec2<i32>(i32(pos.x - u.origin.x), i32(pos.y - u.origin.y));
    let cast_rgba = textureLoad(cast_color, texel, 0);
    let depth = textureLoad(cast_depth, texel, 0).x;
    if (u.label_look.w != 1u) { return cast_rgba; }
    let base = ray_base(pos);
    let radius = u.centre.w;
    let fwd = u.forward.xyz;
    var plane = false;
    var plane_d = 0.0;
    var plane_p = vec3<f32>(0.0);
    for (var i = 0u; i < 3u; i = i + 1u) {
        let n = u.normals[i];
        if (n.w == 0.0) { continue; }
        let q = u.position.xyz - base;
        let d = (q.x * n.x + q.y * n.y + q.z * n.z) * n.w;
        if (d < -radius || d > radius) { continue; }
        let p = base + d * fwd;
        let inside = (u.image_shape.w == 1u && image_at(p).y == 1.0)
            || (u.label_shape.w == 1u && label_at(p).z == 1u);
        if (inside && (!plane || d < plane_d)) {
            plane = true;
            plane_d = d;
            plane_p = p;
        }
    }
    if (!plane || plane_d > depth) { return cast_rgba; }
    var c = vec3<f32>(0.2);
    if (u.image_shape.w == 1u) {
        let v = image_at(plane_p);
        if (v.y == 1.0) { c = image_color(v.x); }
    }
    if (u.label_shape.w == 1u) {
        let l = label_at(plane_p);
        if (l.z == 1u && shown(l.xy)) {
            let a = bitcast<f32>(u.label_look.z);
            c = c * (1.0 - a) + segment_color(u.label_look.x, l.xy) * a;
        }
    }
    return vec4<f32>(c, 1.0);
}
