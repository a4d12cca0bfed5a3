// The error overlay's split/merge flags, counted on the GPU from a panel's two label
// layers (src/render/gpu_split_merge.rs). The CPU reference is `shade::instance_flags`:
// a pixel where both layers have data and non-zero ids is flagged "split" (bit 1) when its
// true object meets more than one predicted id on the panel, and "merge" (bit 2) when its
// predicted object meets more than one true id.
//
// Two open-addressing hash tables, one keyed by the true id and one by the predicted id,
// hold per slot the index + 1 of the first pixel that claimed it (0: empty) and, in the
// top bit, whether another pixel with the same key has a different partner id. A slot's
// key is never stored: it is the id at its owner pixel, read from the label texture, so
// 64-bit ids are compared exactly with 32-bit atomics. Which pixel owns a slot depends on
// the scheduling, the flags do not.

struct Params {
    size: vec4<u32>,    // panel width, height, slots per table (a power of two), words per output row
    layers: vec4<u32>,  // true and predicted ids' label layers, their status layers
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var labels: texture_2d_array<u32>;
@group(0) @binding(2) var status: texture_2d_array<u32>;
@group(0) @binding(3) var<storage, read_write> tables: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> flags_out: array<u32>;

const CONFLICT: u32 = 0x80000000u;
const NOT_FOUND: u32 = 0xffffffffu;

fn pixel(i: u32) -> vec2<u32> {
    return vec2<u32>(i % params.size.x, i / params.size.x);
}

fn id_at(layer: u32, p: vec2<u32>) -> vec2<u32> {
    return textureLoad(labels, p, layer, 0).xy;
}

// Both layers have data at `p`.
fn shown(p: vec2<u32>) -> bool {
    return textureLoad(status, p, params.layers.z, 0).x == 0u
        && textureLoad(status, p, params.layers.w, 0).x == 0u;
}

fn hash(id: vec2<u32>) -> u32 {
    var h = id.x * 0x9e3779b1u ^ (id.y + 0x7f4a7c15u) * 0x85ebca77u;
    h = h ^ (h >> 15u);
    h = h * 0x2c1b3c6du;
    h = h ^ (h >> 12u);
    return h;
}

// The slot (index into `tables`) of `id` in table `table` (ids of label layer `layer`),
// claimed for pixel `i` when `id` has none yet.
fn claim(table: u32, layer: u32, id: vec2<u32>, i: u32) -> u32 {
    let slots = params.size.z;
    var s = hash(id) & (slots - 1u);
    for (var n = 0u; n < slots; n = n + 1u) {
        let at = table * slots + s;
        let r = atomicCompareExchangeWeak(&tables[at], 0u, i + 1u);
        if (r.exchanged) {
            return at;
        }
        let owner = r.old_value & ~CONFLICT;
        if (owner == 0u) {
            // A spurious failure of the weak exchange: try the slot again.
            continue;
        }
        if (all(id_at(layer, pixel(owner - 1u)) == id)) {
            return at;
        }
        s = (s + 1u) & (slots - 1u);
    }
    return NOT_FOUND;
}

// Whether `id` (of label layer `layer`) met more than one partner id, in table `table`.
fn conflicted(table: u32, layer: u32, id: vec2<u32>) -> bool {
    let slots = params.size.z;
    var s = hash(id) & (slots - 1u);
    for (var n = 0u; n < slots; n = n + 1u) {
        let word = atomicLoad(&tables[table * slots + s]);
        let owner = word & ~CONFLICT;
        if (owner == 0u) {
            return false;
        }
        if (all(id_at(layer, pixel(owner - 1u)) == id)) {
            return (word & CONFLICT) != 0u;
        }
        s = (s + 1u) & (slots - 1u);
    }
    return false;
}

@compute @workgroup_size(8, 8)
fn count(@builtin(global_invocation_id) g: vec3<u32>) {
    if (g.x >= params.size.x || g.y >= params.size.y) {
        return;
    }
    let p = g.xy;
    if (!shown(p)) {
        return;
    }
    let t = id_at(params.layers.x, p);
    let q = id_at(params.layers.y, p);
    if (all(t == vec2<u32>(0u)) || all(q == vec2<u32>(0u))) {
        return;
    }
    let i = p.y * params.size.x + p.x;
    let st = claim(0u, params.layers.x, t, i);
    if (st != NOT_FOUND) {
        let owner = (atomicLoad(&tables[st]) & ~CONFLICT) - 1u;
        if (any(id_at(params.layers.y, pixel(owner)) != q)) {
            atomicOr(&tables[st], CONFLICT);
        }
    }
    let sq = claim(1u, params.layers.y, q, i);
    if (sq != NOT_FOUND) {
        let owner = (atomicLoad(&tables[sq]) & ~CONFLICT) - 1u;
        if (any(id_at(params.layers.x, pixel(owner)) != t)) {
            atomicOr(&tables[sq], CONFLICT);
        }
    }
}

fn flags_at(p: vec2<u32>) -> u32 {
    if (!shown(p)) {
        return 0u;
    }
    let t = id_at(params.layers.x, p);
    let q = id_at(params.layers.y, p);
    var f = 0u;
    if (any(t != vec2<u32>(0u)) && conflicted(0u, params.layers.x, t)) {
        f = f | 1u;
    }
    if (any(q != vec2<u32>(0u)) && conflicted(1u, params.layers.y, q)) {
        f = f | 2u;
    }
    return f;
}

// Four pixels' flags per invocation, one byte each, in rows padded for the copy into the
// status texture.
@compute @workgroup_size(16, 4)
fn write_flags(@builtin(global_invocation_id) g: vec3<u32>) {
    if (g.x >= params.size.w || g.y >= params.size.y) {
        return;
    }
    var word = 0u;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let x = g.x * 4u + k;
        if (x < params.size.x) {
            word = word | (flags_at(vec2<u32>(x, g.y)) << (8u * k));
        }
    }
    flags_out[g.y * params.size.w + g.x] = word;
}
