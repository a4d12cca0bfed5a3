//! Deterministic synthetic EM-like volumes: a pure function of world position (nm, z/y/x)
//! and a seed, so any block can be generated on its own and match a whole-volume run.
//! Cells are a Voronoi tessellation of jittered grid seeds with dark membranes on the
//! cell faces; mitochondria (rotated ellipsoids with a dark shell) and ER (thin capsules)
//! sit at most one per cell of their own grids, each drawn only inside its host cell.
//! Raw grey values are soft profiles of these distances plus hashed per-voxel noise.
//! It is one file because the hashing, the shapes and the model are one pure function of
//! position, and changing any part changes every generated volume.

use ndarray::Array3;

/// Default pitch of the cell-seed grid in nm.
const DEFAULT_CELL_SPACING_NM: f64 = 400.0;
/// Default half thickness of cell membranes in nm.
const DEFAULT_MEMBRANE_HALF_NM: f64 = 12.0;
/// Default pitch of the mitochondrion grid in nm.
const DEFAULT_MITO_SPACING_NM: f64 = 240.0;
/// Default pitch of the ER grid in nm.
const DEFAULT_ER_SPACING_NM: f64 = 160.0;
/// Default standard deviation of the raw noise in grey levels.
const DEFAULT_NOISE_SIGMA: f64 = 12.0;

// Cell seeds lie in `[JITTER_LO, JITTER_LO + JITTER]` of their grid cell (fraction of pitch).
const JITTER_LO: f64 = 0.1;
const JITTER: f64 = 0.8;
/// Probability that a mito grid cell holds a mitochondrion.
const MITO_PROBABILITY: f64 = 0.6;
/// Semi-axis range of mitochondria at the default mito pitch (nm); scaled down with it.
const MITO_RADIUS_NM: [f64; 2] = [45.0, 90.0];
/// Thickness of the dark mitochondrial boundary shell (nm).
const MITO_SHELL_NM: f64 = 8.0;
/// Probability that an ER grid cell holds a tube.
const ER_PROBABILITY: f64 = 0.5;
/// Tube radius range at the default ER pitch (nm); scaled down with it.
const ER_RADIUS_NM: [f64; 2] = [15.0, 25.0];
/// Number of random centres tried per organelle (the one farthest from membranes wins).
const CANDIDATES: u64 = 8;
/// Free space kept between organelles and the membrane of their cell (nm).
const CLEARANCE_NM: f64 = 4.0;
/// Half width of the smooth intensity transitions (nm).
const EDGE_NM: f64 = 2.0;
/// Signed distance reported far away from any object.
const FAR_NM: f64 = 1.0e9;

// Grey levels of the compartments (cytoplasm varies by +-CELL_VARIATION per cell).
const CYTOPLASM: f64 = 170.0;
const CELL_VARIATION: f64 = 6.0;
const MEMBRANE: f64 = 60.0;
const MITO_INTERIOR: f64 = 115.0;
const MITO_SHELL: f64 = 60.0;
const ER_LUMEN: f64 = 85.0;

// Hash salts separating the random streams.
const SALT_CELL: u64 = 0x243F_6A88_85A3_08D3;
const SALT_MITO: u64 = 0x1319_8A2E_0370_7344;
const SALT_ER: u64 = 0xA409_3822_299F_31D0;
const SALT_NOISE: u64 = 0x082E_FA98_EC4E_6C89;
const SALT_SHADE: u64 = 0x4528_21E6_38D0_1377;

/// 2^64 / golden ratio, the splitmix64 increment.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Parameters of the synthetic generator.
///
/// Non-finite or out-of-range values are replaced by the default or clamped to a usable
/// range (pitches to 1 nm ..= 1e9 nm, half thickness to 0 ..= half the cell pitch,
/// noise to 0 ..= 255).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthParams {
    /// Seed of every random choice; different seeds give unrelated volumes.
    pub seed: u64,
    /// Pitch of the jittered grid of cell seeds (nm).
    pub cell_spacing_nm: f64,
    /// Half thickness of the membranes around cell boundaries (nm).
    pub membrane_half_thickness_nm: f64,
    /// Pitch of the grid holding at most one mitochondrion per grid cell (nm).
    pub mito_spacing_nm: f64,
    /// Pitch of the grid holding at most one ER tube per grid cell (nm).
    pub er_spacing_nm: f64,
    /// Standard deviation of the raw intensity noise (grey levels).
    pub noise_sigma: f64,
}

impl Default for SynthParams {
    fn default() -> Self {
        Self {
            seed: 0,
            cell_spacing_nm: DEFAULT_CELL_SPACING_NM,
            membrane_half_thickness_nm: DEFAULT_MEMBRANE_HALF_NM,
            mito_spacing_nm: DEFAULT_MITO_SPACING_NM,
            er_spacing_nm: DEFAULT_ER_SPACING_NM,
            noise_sigma: DEFAULT_NOISE_SIGMA,
        }
    }
}

/// What lies at one world point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Noise-free raw intensity in 0 ..= 255.
    pub intensity: f32,
    /// Cell instance id, 0 on membranes.
    pub cell: u64,
    /// Mitochondrion instance id, 0 outside mitochondria.
    pub mito: u64,
    /// ER instance id, 0 outside ER (and inside mitochondria).
    pub er: u64,
}

/// Label blocks sampled at voxel centres like [`raw_block`]: (cells, mito, er) instance ids.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelBlocks {
    /// Cell instance ids, 0 on membranes.
    pub cells: Array3<u64>,
    /// Mitochondrion instance ids, 0 elsewhere.
    pub mito: Array3<u64>,
    /// ER instance ids, 0 elsewhere.
    pub er: Array3<u64>,
}

/// What lies at one world point (z, y, x in nm), without noise.
pub fn sample(params: &SynthParams, point_nm: [f64; 3]) -> Sample {
    let model = Model::new(params);
    model.eval(&mut Lookup::empty(), point_nm)
}

/// Raw u8 block: voxel (i,j,k) is sampled at its centre offset_nm + (idx + 0.5) *
/// voxel_size_nm, plus noise.
///
/// The noise of a voxel depends only on the seed, the voxel size and the voxel's integer
/// corner position, so overlapping blocks agree. A shape whose element count cannot be
/// allocated yields an empty (0, 0, 0) array.
pub fn raw_block(
    params: &SynthParams,
    offset_nm: [i64; 3],
    voxel_size_nm: [i64; 3],
    shape: [usize; 3],
) -> Array3<u8> {
    let model = Model::new(params);
    let Some(mut out) = alloc::<u8>(shape) else {
        return empty();
    };
    let mut lookup = Lookup::for_block(&model, offset_nm, voxel_size_nm, shape);
    let noise_prefix = hash_continue(
        mix64(model.seed ^ SALT_NOISE),
        &[
            voxel_size_nm[0] as u64,
            voxel_size_nm[1] as u64,
            voxel_size_nm[2] as u64,
        ],
    );
    let scale = model.sigma * 3.0f64.sqrt();
    for_each_voxel(offset_nm, voxel_size_nm, shape, |p, corner| {
        let s = model.eval(&mut lookup, p);
        let h = hash_continue(
            noise_prefix,
            &[corner[0] as u64, corner[1] as u64, corner[2] as u64],
        );
        let v = f64::from(s.intensity) + noise(h) * scale;
        out.push(v.round().clamp(0.0, 255.0) as u8);
    });
    into_array(shape, out)
}

/// Label blocks sampled at voxel centres like raw_block: (cells, mito, er) instance ids.
///
/// A shape whose element count cannot be allocated yields empty (0, 0, 0) arrays.
pub fn label_blocks(
    params: &SynthParams,
    offset_nm: [i64; 3],
    voxel_size_nm: [i64; 3],
    shape: [usize; 3],
) -> LabelBlocks {
    let model = Model::new(params);
    let (Some(mut cells), Some(mut mito), Some(mut er)) = (
        alloc::<u64>(shape),
        alloc::<u64>(shape),
        alloc::<u64>(shape),
    ) else {
        return LabelBlocks {
            cells: empty(),
            mito: empty(),
            er: empty(),
        };
    };
    let mut lookup = Lookup::for_block(&model, offset_nm, voxel_size_nm, shape);
    for_each_voxel(offset_nm, voxel_size_nm, shape, |p, _| {
        let s = model.eval(&mut lookup, p);
        cells.push(s.cell);
        mito.push(s.mito);
        er.push(s.er);
    });
    LabelBlocks {
        cells: into_array(shape, cells),
        mito: into_array(shape, mito),
        er: into_array(shape, er),
    }
}

// ---------------------------------------------------------------------------------------
// Block plumbing

fn empty<T: Default + Clone>() -> Array3<T> {
    Array3::default((0, 0, 0))
}

/// A vector with room for every voxel of `shape`, or `None` if that cannot be allocated.
fn alloc<T>(shape: [usize; 3]) -> Option<Vec<T>> {
    let n = voxel_count(shape)?;
    let bytes = n.checked_mul(std::mem::size_of::<T>().max(1))?;
    if bytes > isize::MAX as usize {
        return None;
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n).ok()?;
    Some(v)
}

fn voxel_count(shape: [usize; 3]) -> Option<usize> {
    shape[0].checked_mul(shape[1])?.checked_mul(shape[2])
}

fn into_array<T: Default + Clone>(shape: [usize; 3], data: Vec<T>) -> Array3<T> {
    Array3::from_shape_vec((shape[0], shape[1], shape[2]), data).unwrap_or_else(|_| empty())
}

/// World coordinate (nm) of the centre of voxel `i` along one axis.
#[inline]
fn voxel_centre(offset: i64, size: i64, i: usize) -> f64 {
    offset as f64 + (i as f64 + 0.5) * size as f64
}

/// Integer world corner (nm) of voxel `i` along one axis; wraps instead of overflowing.
#[inline]
fn voxel_corner(offset: i64, size: i64, i: usize) -> i64 {
    offset.wrapping_add((i as i64).wrapping_mul(size))
}

/// Calls `f(centre, corner)` for every voxel in z, y, x (C) order.
fn for_each_voxel(
    offset: [i64; 3],
    size: [i64; 3],
    shape: [usize; 3],
    mut f: impl FnMut([f64; 3], [i64; 3]),
) {
    for iz in 0..shape[0] {
        let (pz, cz) = (
            voxel_centre(offset[0], size[0], iz),
            voxel_corner(offset[0], size[0], iz),
        );
        for iy in 0..shape[1] {
            let (py, cy) = (
                voxel_centre(offset[1], size[1], iy),
                voxel_corner(offset[1], size[1], iy),
            );
            for ix in 0..shape[2] {
                let px = voxel_centre(offset[2], size[2], ix);
                let cx = voxel_corner(offset[2], size[2], ix);
                f([pz, py, px], [cz, cy, cx]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hashing

/// splitmix64 finaliser: a bijective 64-bit mixer.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Folds `words` into the hash state `h`; `hash_continue(hash_continue(h, a), b)` equals
/// hashing `a` followed by `b`.
#[inline]
fn hash_continue(mut h: u64, words: &[u64]) -> u64 {
    for &w in words {
        h = mix64(h.wrapping_add(GOLDEN) ^ w);
    }
    h
}

/// Hash of a grid cell of one random stream.
#[inline]
fn hash_cell(seed: u64, salt: u64, g: [i64; 3]) -> u64 {
    hash_continue(mix64(seed ^ salt), &[g[0] as u64, g[1] as u64, g[2] as u64])
}

/// The `k`-th value of the splitmix sequence started at `base`, as a uniform in [0, 1).
#[inline]
fn uniform(base: u64, k: u64) -> f64 {
    let x = mix64(base.wrapping_add(k.wrapping_add(1).wrapping_mul(GOLDEN)));
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Roughly Gaussian value from the four 16-bit lanes of `h`: the sum of four uniforms
/// minus 2 (Irwin-Hall, n = 4), mean 0 and variance 1/3.
#[inline]
fn noise(h: u64) -> f64 {
    let lane = |k: u32| ((h >> (16 * k)) & 0xFFFF) as f64;
    (lane(0) + lane(1) + lane(2) + lane(3) + 2.0) * (1.0 / 65536.0) - 2.0
}

/// Unique nonzero id of a grid cell: 1 + its index packed in 21 bits per axis
/// (unique for indices in -2^20 .. 2^20 on every axis).
#[inline]
fn grid_id(g: [i64; 3]) -> u64 {
    const MASK: u64 = (1 << 21) - 1;
    let (z, y, x) = (g[0] as u64 & MASK, g[1] as u64 & MASK, g[2] as u64 & MASK);
    1 + ((z << 42) | (y << 21) | x)
}

// ---------------------------------------------------------------------------------------
// Geometry helpers

#[inline]
fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

#[inline]
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
fn dist2(a: [f64; 3], b: [f64; 3]) -> f64 {
    let d = sub(a, b);
    dot(d, d)
}

#[inline]
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

#[inline]
fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

#[inline]
fn grid_index(p: f64, spacing: f64) -> i64 {
    // floor() without a libm call; `as` saturates (and maps NaN to 0).
    let x = p / spacing;
    let t = x as i64;
    if (t as f64) > x {
        t.saturating_sub(1)
    } else {
        t
    }
}

#[inline]
fn grid3(p: [f64; 3], spacing: f64) -> [i64; 3] {
    [
        grid_index(p[0], spacing),
        grid_index(p[1], spacing),
        grid_index(p[2], spacing),
    ]
}

#[inline]
fn shift(g: [i64; 3], d: [i64; 3]) -> [i64; 3] {
    [
        g[0].wrapping_add(d[0]),
        g[1].wrapping_add(d[1]),
        g[2].wrapping_add(d[2]),
    ]
}

/// Offset of neighbour `n` (0..27) in the 3x3x3 neighbourhood.
#[inline]
fn neighbour(n: usize) -> [i64; 3] {
    [
        (n / 9) as i64 - 1,
        ((n / 3) % 3) as i64 - 1,
        (n % 3) as i64 - 1,
    ]
}

/// Low and high corner (nm) of grid cell `g` along axis `a`.
#[inline]
fn cell_bounds(g: [i64; 3], a: usize, spacing: f64) -> (f64, f64) {
    let lo = g[a] as f64 * spacing;
    (lo, lo + spacing)
}

// ---------------------------------------------------------------------------------------
// Objects

/// A mitochondrion: ellipsoid with centre, unit axes and semi-axes, drawn only inside
/// its host cell.
#[derive(Debug, Clone, Copy)]
struct Mito {
    id: u64,
    host: u64,
    centre: [f64; 3],
    axes: [[f64; 3]; 3],
    inv_r: [f64; 3],
    r_min: f64,
    bound2: f64,
}

impl Mito {
    /// (inside, approximate signed distance in nm).
    #[inline]
    fn probe(&self, p: [f64; 3]) -> (bool, f64) {
        let d = sub(p, self.centre);
        if dot(d, d) > self.bound2 {
            return (false, FAR_NM);
        }
        let mut k0sq = 0.0;
        let mut k1sq = 0.0;
        for a in 0..3 {
            let q = dot(self.axes[a], d) * self.inv_r[a];
            k0sq += q * q;
            let q2 = q * self.inv_r[a];
            k1sq += q2 * q2;
        }
        let inside = k0sq < 1.0;
        let sd = if k1sq > 0.0 {
            let k0 = k0sq.sqrt();
            k0 * (k0 - 1.0) / k1sq.sqrt()
        } else {
            -self.r_min
        };
        (inside, sd)
    }
}

/// An ER tube: capsule around segment `a` .. `a + ab`, drawn only inside its host cell.
#[derive(Debug, Clone, Copy)]
struct Er {
    id: u64,
    host: u64,
    a: [f64; 3],
    ab: [f64; 3],
    inv_len2: f64,
    radius: f64,
    mid: [f64; 3],
    bound2: f64,
}

impl Er {
    /// Signed distance (nm) to the capsule surface.
    #[inline]
    fn probe(&self, p: [f64; 3]) -> f64 {
        if dist2(p, self.mid) > self.bound2 {
            return FAR_NM;
        }
        let ap = sub(p, self.a);
        let t = (dot(ap, self.ab) * self.inv_len2).clamp(0.0, 1.0);
        let c = [
            self.a[0] + t * self.ab[0],
            self.a[1] + t * self.ab[1],
            self.a[2] + t * self.ab[2],
        ];
        dist2(p, c).sqrt() - self.radius
    }
}

// ---------------------------------------------------------------------------------------
// Lookup: caches of pure functions (results never depend on what is cached)

/// Dense table of per-grid-cell values over an index box.
struct Table<T> {
    lo: [i64; 3],
    dims: [usize; 3],
    data: Vec<T>,
}

impl<T: Copy> Table<T> {
    /// Table of `f(g)` for `g` in `lo ..= hi`, or `None` if it would exceed `limit` entries.
    fn build(
        lo: [i64; 3],
        hi: [i64; 3],
        limit: usize,
        mut f: impl FnMut([i64; 3]) -> T,
    ) -> Option<Self> {
        let mut dims = [0usize; 3];
        for a in 0..3 {
            let d = hi[a].checked_sub(lo[a])?.checked_add(1)?;
            dims[a] = usize::try_from(d).ok()?;
        }
        let n = voxel_count(dims)?;
        if n > limit {
            return None;
        }
        let mut data = Vec::new();
        data.try_reserve_exact(n).ok()?;
        for z in 0..dims[0] {
            for y in 0..dims[1] {
                for x in 0..dims[2] {
                    data.push(f([lo[0] + z as i64, lo[1] + y as i64, lo[2] + x as i64]));
                }
            }
        }
        Some(Self { lo, dims, data })
    }

    #[inline]
    fn get(&self, g: [i64; 3]) -> Option<T> {
        let mut idx = 0usize;
        for ((&g, &lo), &dim) in g.iter().zip(&self.lo).zip(&self.dims) {
            let d = usize::try_from(g.checked_sub(lo)?).ok()?;
            if d >= dim {
                return None;
            }
            idx = idx * dim + d;
        }
        self.data.get(idx).copied()
    }
}

/// Memoised access to cell seeds and organelles.
struct Lookup {
    seeds: Option<Table<[f64; 3]>>,
    mitos: Option<Table<Option<Mito>>>,
    ers: Option<Table<Option<Er>>>,
    nb_key: Option<[i64; 3]>,
    nb: [[f64; 27]; 3],
    mito_memo: Option<([i64; 3], Option<Mito>)>,
    er_memo: Option<([i64; 3], Option<Er>)>,
}

impl Lookup {
    fn empty() -> Self {
        Self {
            seeds: None,
            mitos: None,
            ers: None,
            nb_key: None,
            nb: [[0.0; 27]; 3],
            mito_memo: None,
            er_memo: None,
        }
    }

    /// Lookup with tables covering every grid cell a block can touch (each table only if
    /// it is small next to the block; otherwise values are computed on demand).
    fn for_block(model: &Model, offset: [i64; 3], size: [i64; 3], shape: [usize; 3]) -> Self {
        let mut lk = Self::empty();
        let Some(n) = voxel_count(shape) else {
            return lk;
        };
        if n == 0 {
            return lk;
        }
        let (seed_limit, object_limit) = (n.saturating_add(64), n / 8 + 64);
        let mut pmin = [0.0; 3];
        let mut pmax = [0.0; 3];
        for a in 0..3 {
            let first = voxel_centre(offset[a], size[a], 0);
            let last = voxel_centre(offset[a], size[a], shape[a] - 1);
            pmin[a] = first.min(last);
            pmax[a] = first.max(last);
        }
        let range = |s: f64, margin: i64| {
            let lo = grid3(pmin, s).map(|g| g.saturating_sub(margin));
            let hi = grid3(pmax, s).map(|g| g.saturating_add(margin));
            (lo, hi)
        };
        let (lo, hi) = range(model.cell_s, 1);
        lk.seeds = Table::build(lo, hi, seed_limit, |g| model.cell_seed(g));
        let (lo, hi) = range(model.mito_s, 0);
        lk.mitos = Table::build(lo, hi, object_limit, |g| model.mito_at(g));
        let (lo, hi) = range(model.er_s, 0);
        lk.ers = Table::build(lo, hi, object_limit, |g| model.er_at(g));
        lk
    }

    /// The 27 cell seeds around cell-grid index `g`, in `neighbour` order, as one array
    /// per axis.
    #[inline]
    fn neighbourhood(&mut self, model: &Model, g: [i64; 3]) -> &[[f64; 27]; 3] {
        if self.nb_key != Some(g) {
            for n in 0..27 {
                let c = shift(g, neighbour(n));
                let s = match self.seeds.as_ref().and_then(|t| t.get(c)) {
                    Some(s) => s,
                    None => model.cell_seed(c),
                };
                for (axis, v) in self.nb.iter_mut().zip(s) {
                    axis[n] = v;
                }
            }
            self.nb_key = Some(g);
        }
        &self.nb
    }

    #[inline]
    fn mito(&mut self, model: &Model, g: [i64; 3]) -> Option<Mito> {
        if let Some((k, m)) = self.mito_memo {
            if k == g {
                return m;
            }
        }
        let m = match self.mitos.as_ref().and_then(|t| t.get(g)) {
            Some(m) => m,
            None => model.mito_at(g),
        };
        self.mito_memo = Some((g, m));
        m
    }

    #[inline]
    fn er(&mut self, model: &Model, g: [i64; 3]) -> Option<Er> {
        if let Some((k, e)) = self.er_memo {
            if k == g {
                return e;
            }
        }
        let e = match self.ers.as_ref().and_then(|t| t.get(g)) {
            Some(e) => e,
            None => model.er_at(g),
        };
        self.er_memo = Some((g, e));
        e
    }
}

// ---------------------------------------------------------------------------------------
// Model

/// Sanitised parameters.
#[derive(Debug, Clone, Copy)]
struct Model {
    seed: u64,
    cell_s: f64,
    h: f64,
    mito_s: f64,
    mito_scale: f64,
    er_s: f64,
    er_scale: f64,
    sigma: f64,
}

fn sanitize(v: f64, default: f64, lo: f64, hi: f64) -> f64 {
    if v.is_finite() {
        v.clamp(lo, hi)
    } else {
        default
    }
}

impl Model {
    fn new(p: &SynthParams) -> Self {
        let spacing = |v, d| sanitize(v, d, 1.0, 1.0e9);
        let cell_s = spacing(p.cell_spacing_nm, DEFAULT_CELL_SPACING_NM);
        let mito_s = spacing(p.mito_spacing_nm, DEFAULT_MITO_SPACING_NM);
        let er_s = spacing(p.er_spacing_nm, DEFAULT_ER_SPACING_NM);
        Self {
            seed: p.seed,
            cell_s,
            h: sanitize(
                p.membrane_half_thickness_nm,
                DEFAULT_MEMBRANE_HALF_NM.min(cell_s * 0.5),
                0.0,
                cell_s * 0.5,
            ),
            mito_s,
            mito_scale: (mito_s / DEFAULT_MITO_SPACING_NM).min(1.0),
            er_s,
            er_scale: (er_s / DEFAULT_ER_SPACING_NM).min(1.0),
            sigma: sanitize(p.noise_sigma, DEFAULT_NOISE_SIGMA, 0.0, 255.0),
        }
    }

    /// Seed point (nm) of cell-grid cell `g`.
    #[inline]
    fn cell_seed(&self, g: [i64; 3]) -> [f64; 3] {
        let base = hash_cell(self.seed, SALT_CELL, g);
        let mut s = [0.0; 3];
        for (a, v) in s.iter_mut().enumerate() {
            let j = JITTER_LO + JITTER * uniform(base, a as u64);
            *v = (g[a] as f64 + j) * self.cell_s;
        }
        s
    }

    /// (cell id, distance in nm to the nearest Voronoi face) at `p`; distances beyond
    /// `cap` are reported as `cap` (pass infinity for the exact value).
    ///
    /// The face distance is the minimum over the 26 other seeds of the distance to their
    /// bisector with the nearest seed, (d_j^2 - d_1^2) / (2 |s_j - s_1|).
    #[inline]
    fn cell_at(&self, lk: &mut Lookup, p: [f64; 3], cap: f64) -> (u64, f64) {
        let g = grid3(p, self.cell_s);
        let pts = lk.neighbourhood(self, g);
        let [sz, sy, sx] = pts;
        let mut d2 = [0.0f64; 27];
        for n in 0..27 {
            let (dz, dy, dx) = (p[0] - sz[n], p[1] - sy[n], p[2] - sx[n]);
            d2[n] = dz * dz + dy * dy + dx * dx;
        }
        let mut best = 0usize;
        let mut best_d2 = d2[0];
        for (n, &d) in d2.iter().enumerate().skip(1) {
            if d < best_d2 {
                best_d2 = d;
                best = n;
            }
        }
        let (bz, by, bx) = (sz[best], sy[best], sx[best]);
        // Squared face distance, compared as num^2 < face2 * den to skip most divisions;
        // the nearest seed itself has den == 0 and is skipped.
        let mut face2 = cap * cap;
        for n in 0..27 {
            let (dz, dy, dx) = (sz[n] - bz, sy[n] - by, sx[n] - bx);
            let den = 4.0 * (dz * dz + dy * dy + dx * dx);
            let num = d2[n] - best_d2;
            if den > 0.0 && num * num < face2 * den {
                face2 = num * num / den;
            }
        }
        (grid_id(shift(g, neighbour(best))), face2.sqrt())
    }

    /// (host cell id, room): how far an organelle centred at `p` may reach while keeping
    /// `CLEARANCE_NM` away from the membrane of the cell holding `p`.
    fn room_at(&self, lk: &mut Lookup, p: [f64; 3]) -> (u64, f64) {
        let (id, face) = self.cell_at(lk, p, f64::INFINITY);
        (id, face - self.h - CLEARANCE_NM)
    }

    /// Random point in the box of grid cell `g` (pitch `spacing`) shrunk by `margin`,
    /// from the uniforms `first .. first + 3` of `base`.
    fn point_in(&self, g: [i64; 3], spacing: f64, margin: f64, base: u64, first: u64) -> [f64; 3] {
        let mut c = [0.0; 3];
        for (a, v) in c.iter_mut().enumerate() {
            let (lo, hi) = cell_bounds(g, a, spacing);
            let (lo, hi) = (lo + margin, hi - margin);
            *v = lo + (hi - lo).max(0.0) * uniform(base, first + a as u64);
        }
        c
    }

    /// The mitochondrion of mito-grid cell `g`, if any.
    fn mito_at(&self, g: [i64; 3]) -> Option<Mito> {
        let base = hash_cell(self.seed, SALT_MITO, g);
        let u = |k: u64| uniform(base, k);
        if u(0) >= MITO_PROBABILITY {
            return None;
        }
        let sc = self.mito_scale;
        let r = [
            lerp(MITO_RADIUS_NM[0], MITO_RADIUS_NM[1], u(1)) * sc,
            lerp(MITO_RADIUS_NM[0], MITO_RADIUS_NM[1], u(2)) * sc,
            lerp(MITO_RADIUS_NM[0], MITO_RADIUS_NM[1], u(3)) * sc,
        ];
        let r_max = r[0].max(r[1]).max(r[2]);
        let margin = r_max + EDGE_NM * sc;
        // Of a few random centres, keep the one farthest from the cell membranes.
        let mut lk = Lookup::empty();
        let mut best = ([0.0; 3], 0u64, f64::NEG_INFINITY);
        for k in 0..CANDIDATES {
            let c = self.point_in(g, self.mito_s, margin, base, 16 + 3 * k);
            let (host, room) = self.room_at(&mut lk, c);
            if room > best.2 {
                best = (c, host, room);
            }
        }
        let (centre, host, _) = best;
        // Uniform random rotation (Shoemake) from three uniforms.
        let (u1, u2, u3) = (u(7), u(8), u(9));
        let tau = std::f64::consts::TAU;
        let (a, b) = ((1.0 - u1).sqrt(), u1.sqrt());
        let (w, x, y, z) = (
            a * (tau * u2).sin(),
            a * (tau * u2).cos(),
            b * (tau * u3).sin(),
            b * (tau * u3).cos(),
        );
        // Columns of the rotation matrix = world directions of the local axes.
        let axes = [
            [
                1.0 - 2.0 * (y * y + z * z),
                2.0 * (x * y + w * z),
                2.0 * (x * z - w * y),
            ],
            [
                2.0 * (x * y - w * z),
                1.0 - 2.0 * (x * x + z * z),
                2.0 * (y * z + w * x),
            ],
            [
                2.0 * (x * z + w * y),
                2.0 * (y * z - w * x),
                1.0 - 2.0 * (x * x + y * y),
            ],
        ];
        let reach = r_max + 4.0 * EDGE_NM;
        Some(Mito {
            id: grid_id(g),
            host,
            centre,
            axes,
            inv_r: r.map(|v| 1.0 / v),
            r_min: r[0].min(r[1]).min(r[2]),
            bound2: reach * reach,
        })
    }

    /// The ER tube of ER-grid cell `g`, if any.
    fn er_at(&self, g: [i64; 3]) -> Option<Er> {
        let base = hash_cell(self.seed, SALT_ER, g);
        let u = |k: u64| uniform(base, k);
        if u(0) >= ER_PROBABILITY {
            return None;
        }
        let sc = self.er_scale;
        let radius = lerp(ER_RADIUS_NM[0], ER_RADIUS_NM[1], u(1)) * sc;
        let margin = radius + EDGE_NM * sc;
        // Of a few random endpoint pairs, spanning most of the grid cell along a random
        // main axis, keep the one whose ends are farthest from the cell membranes.
        let mut lk = Lookup::empty();
        let mut best = ([0.0; 3], [0.0; 3], f64::NEG_INFINITY);
        for k in 0..CANDIDATES {
            let first = 16 + 7 * k;
            let mut p = self.point_in(g, self.er_s, margin, base, first);
            let mut q = self.point_in(g, self.er_s, margin, base, first + 3);
            let main = ((uniform(base, first + 6) * 3.0) as usize).min(2);
            let (lo, hi) = cell_bounds(g, main, self.er_s);
            let (lo, hi) = (lo + margin, (hi - margin).max(lo + margin));
            // Ends in the outer fifths of the main axis, on opposite sides.
            p[main] = lo + (p[main] - lo) * 0.2;
            q[main] = hi - (hi - q[main]) * 0.2;
            let (_, room_p) = self.room_at(&mut lk, p);
            let (_, room_q) = self.room_at(&mut lk, q);
            let score = room_p.min(room_q);
            if score > best.2 {
                best = (p, q, score);
            }
        }
        let (a, b, _) = best;
        let mid = [
            0.5 * (a[0] + b[0]),
            0.5 * (a[1] + b[1]),
            0.5 * (a[2] + b[2]),
        ];
        let (host, _) = self.room_at(&mut lk, mid);
        let ab = sub(b, a);
        let len2 = dot(ab, ab);
        let reach = 0.5 * len2.sqrt() + radius + 4.0 * EDGE_NM;
        Some(Er {
            id: grid_id(g),
            host,
            a,
            ab,
            inv_len2: if len2 > 0.0 { 1.0 / len2 } else { 0.0 },
            radius,
            mid,
            bound2: reach * reach,
        })
    }

    /// Everything at world point `p`.
    #[inline]
    fn eval(&self, lk: &mut Lookup, p: [f64; 3]) -> Sample {
        let (cell_id, face) = self.cell_at(lk, p, self.h + EDGE_NM);
        let on_membrane = face < self.h;

        // Organelles only count (and show) inside their host cell.
        let (in_mito, mito_sd, mito_id) = match lk.mito(self, grid3(p, self.mito_s)) {
            Some(m) if m.host == cell_id => {
                let (inside, sd) = m.probe(p);
                (inside, sd, m.id)
            }
            _ => (false, FAR_NM, 0),
        };
        let (er_sd, er_id) = match lk.er(self, grid3(p, self.er_s)) {
            Some(e) if e.host == cell_id => (e.probe(p), e.id),
            _ => (FAR_NM, 0),
        };

        let cell = if on_membrane { 0 } else { cell_id };
        let mito = if cell != 0 && in_mito { mito_id } else { 0 };
        let er = if cell != 0 && mito == 0 && er_sd < 0.0 {
            er_id
        } else {
            0
        };

        let shade = uniform(mix64(self.seed ^ SALT_SHADE ^ cell_id), 0);
        let mut v = CYTOPLASM + CELL_VARIATION * (2.0 * shade - 1.0);
        v = lerp(ER_LUMEN, v, smoothstep(-EDGE_NM, EDGE_NM, er_sd));
        let depth = -mito_sd;
        let mito_v = lerp(
            MITO_SHELL,
            MITO_INTERIOR,
            smoothstep(MITO_SHELL_NM - EDGE_NM, MITO_SHELL_NM + EDGE_NM, depth),
        );
        v = lerp(v, mito_v, smoothstep(-EDGE_NM, EDGE_NM, depth));
        v = lerp(
            MEMBRANE,
            v,
            smoothstep(self.h - EDGE_NM, self.h + EDGE_NM, face),
        );
        Sample {
            // A NaN point (only possible through `sample`) still yields a valid grey value.
            intensity: if v.is_nan() {
                0.0
            } else {
                v.clamp(0.0, 255.0) as f32
            },
            cell,
            mito,
            er,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;
    use std::collections::{BTreeMap, BTreeSet};

    fn seeded(seed: u64) -> SynthParams {
        SynthParams {
            seed,
            ..SynthParams::default()
        }
    }

    fn fraction(a: &Array3<u64>, pred: impl Fn(u64) -> bool) -> f64 {
        a.iter().filter(|&&v| pred(v)).count() as f64 / a.len() as f64
    }

    #[test]
    fn defaults_are_documented_values() {
        let p = SynthParams::default();
        assert_eq!(p.seed, 0);
        assert_eq!(p.cell_spacing_nm, 400.0);
        assert_eq!(p.membrane_half_thickness_nm, 12.0);
        assert_eq!(p.mito_spacing_nm, 240.0);
        assert_eq!(p.er_spacing_nm, 160.0);
        assert_eq!(p.noise_sigma, 12.0);
    }

    #[test]
    fn same_params_give_identical_blocks() {
        let p = seeded(3);
        let (off, vs, shape) = ([-40, 16, 400], [8, 8, 8], [24, 20, 28]);
        assert_eq!(raw_block(&p, off, vs, shape), raw_block(&p, off, vs, shape));
        assert_eq!(
            label_blocks(&p, off, vs, shape),
            label_blocks(&p, off, vs, shape)
        );
        let q = p.clone();
        assert_eq!(
            sample(&p, [1.5, -2.25, 333.0]),
            sample(&q, [1.5, -2.25, 333.0])
        );
    }

    #[test]
    fn different_seeds_give_different_blocks() {
        let (off, vs, shape) = ([0, 0, 0], [8, 8, 8], [32, 32, 32]);
        let raw_a = raw_block(&seeded(1), off, vs, shape);
        let raw_b = raw_block(&seeded(2), off, vs, shape);
        let differing = raw_a
            .iter()
            .zip(raw_b.iter())
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            differing > raw_a.len() / 2,
            "only {differing} voxels differ"
        );
        let la = label_blocks(&seeded(1), off, vs, shape);
        let lb = label_blocks(&seeded(2), off, vs, shape);
        assert_ne!(la.cells, lb.cells);
        assert_ne!(la.mito, lb.mito);
        assert_ne!(la.er, lb.er);
    }

    #[test]
    fn block_equals_slice_of_larger_overlapping_block() {
        let p = seeded(1);
        let vs = [8, 8, 8];
        let small_raw = raw_block(&p, [0, 0, 0], vs, [20, 20, 20]);
        let big_raw = raw_block(&p, [-80, -80, -80], vs, [40, 40, 40]);
        assert_eq!(small_raw, big_raw.slice(s![10..30, 10..30, 10..30]));
        let small = label_blocks(&p, [0, 0, 0], vs, [20, 20, 20]);
        let big = label_blocks(&p, [-80, -80, -80], vs, [40, 40, 40]);
        let sub = s![10..30, 10..30, 10..30];
        assert_eq!(small.cells, big.cells.slice(sub));
        assert_eq!(small.mito, big.mito.slice(sub));
        assert_eq!(small.er, big.er.slice(sub));
        // The region holds real structure, so the comparison is not vacuous.
        assert!(small.cells.iter().any(|&c| c == 0));
        assert!(small.cells.iter().any(|&c| c != 0));
    }

    #[test]
    fn anisotropic_unaligned_blocks_agree() {
        let p = seeded(5);
        let vs = [30, 8, 6];
        let big_off = [-1000, 333, -7];
        let (k, n) = ([5usize, 7, 3], [12usize, 30, 40]);
        let small_off = [
            big_off[0] + k[0] as i64 * vs[0],
            big_off[1] + k[1] as i64 * vs[1],
            big_off[2] + k[2] as i64 * vs[2],
        ];
        let sub = s![k[0]..k[0] + n[0], k[1]..k[1] + n[1], k[2]..k[2] + n[2]];
        let big_raw = raw_block(&p, big_off, vs, [20, 40, 50]);
        assert_eq!(raw_block(&p, small_off, vs, n), big_raw.slice(sub));
        let big = label_blocks(&p, big_off, vs, [20, 40, 50]);
        let small = label_blocks(&p, small_off, vs, n);
        assert_eq!(small.cells, big.cells.slice(sub));
        assert_eq!(small.mito, big.mito.slice(sub));
        assert_eq!(small.er, big.er.slice(sub));
    }

    #[test]
    fn plausible_content_at_8nm() {
        let p = seeded(1);
        let (off, vs, shape) = ([0, 0, 0], [8, 8, 8], [64, 64, 64]);
        let raw = raw_block(&p, off, vs, shape);
        let l = label_blocks(&p, off, vs, shape);
        assert_eq!(raw.shape(), &[64, 64, 64]);

        let membrane = fraction(&l.cells, |c| c == 0);
        let mito = fraction(&l.mito, |m| m != 0);
        let er = fraction(&l.er, |e| e != 0);
        assert!((0.02..=0.25).contains(&membrane), "membrane {membrane}");
        assert!((0.02..=0.30).contains(&mito), "mito {mito}");
        assert!((0.005..=0.15).contains(&er), "er {er}");

        let (mut sums, mut counts) = ([0.0f64; 4], [0usize; 4]);
        for (((&r, &c), &m), &e) in raw.iter().zip(&l.cells).zip(&l.mito).zip(&l.er) {
            assert!(!(m != 0 && e != 0), "mito and er overlap");
            if c == 0 {
                assert_eq!((m, e), (0, 0), "organelle on a membrane");
            }
            let k = match (c, m, e) {
                (0, _, _) => 0,
                (_, m, _) if m != 0 => 1,
                (_, _, e) if e != 0 => 2,
                _ => 3,
            };
            sums[k] += f64::from(r);
            counts[k] += 1;
        }
        let mean = |k: usize| sums[k] / counts[k].max(1) as f64;
        let (mem_mean, mito_mean, er_mean, cyto_mean) = (mean(0), mean(1), mean(2), mean(3));
        assert!(mem_mean < 100.0, "membrane mean {mem_mean}");
        assert!(
            mito_mean + 30.0 <= cyto_mean,
            "mito {mito_mean} vs cytoplasm {cyto_mean}"
        );
        assert!(er_mean + 30.0 <= cyto_mean, "er {er_mean} vs {cyto_mean}");
        assert!(
            (150.0..=190.0).contains(&cyto_mean),
            "cytoplasm {cyto_mean}"
        );

        let cells: BTreeSet<u64> = l.cells.iter().copied().filter(|&c| c != 0).collect();
        assert!(cells.len() >= 3, "only {} cells", cells.len());
    }

    #[test]
    fn organelles_stay_in_one_cell() {
        let l = label_blocks(&seeded(2), [0, 0, 0], [8, 8, 8], [64, 64, 64]);
        let mut host: BTreeMap<(u8, u64), u64> = BTreeMap::new();
        for ((&c, &m), &e) in l.cells.iter().zip(&l.mito).zip(&l.er) {
            for (kind, id) in [(0u8, m), (1u8, e)] {
                if id != 0 {
                    let prev = host.entry((kind, id)).or_insert(c);
                    assert_eq!(*prev, c, "organelle {id} spans two cells");
                }
            }
        }
        assert!(!host.is_empty());
    }

    #[test]
    fn labels_match_sample_at_voxel_centres() {
        let p = seeded(1);
        let l = label_blocks(&p, [0, 0, 0], [8, 8, 8], [64, 64, 64]);
        let raw = raw_block(
            &SynthParams {
                noise_sigma: 0.0,
                ..p.clone()
            },
            [0, 0, 0],
            [8, 8, 8],
            [64, 64, 64],
        );
        let mut mito_seen = 0;
        for z in (0..64).step_by(3) {
            for y in (0..64).step_by(3) {
                for x in (0..64).step_by(3) {
                    let c = [z, y, x].map(|i| 8.0 * i as f64 + 4.0);
                    let s = sample(&p, c);
                    assert_eq!(s.cell, l.cells[[z, y, x]]);
                    assert_eq!(s.mito, l.mito[[z, y, x]]);
                    assert_eq!(s.er, l.er[[z, y, x]]);
                    assert_eq!(f64::from(s.intensity).round() as u8, raw[[z, y, x]]);
                    assert!((0.0..=255.0).contains(&s.intensity));
                    mito_seen += usize::from(s.mito != 0);
                }
            }
        }
        assert!(mito_seen > 0);
    }

    #[test]
    fn four_nm_sampling_is_consistent_with_8nm() {
        let p = seeded(1);
        let l8 = label_blocks(&p, [0, 0, 0], [8, 8, 8], [32, 32, 32]);
        // 4 nm voxels offset by 2 nm: every second one is centred on an 8 nm centre.
        let l4 = label_blocks(&p, [2, 2, 2], [4, 4, 4], [64, 64, 64]);
        let every_other = s![..;2, ..;2, ..;2];
        assert_eq!(l8.cells, l4.cells.slice(every_other));
        assert_eq!(l8.mito, l4.mito.slice(every_other));
        assert_eq!(l8.er, l4.er.slice(every_other));
        // Aligned 4 nm voxels see the same volume fractions up to discretisation.
        let a4 = label_blocks(&p, [0, 0, 0], [4, 4, 4], [64, 64, 64]);
        for (a, b) in [
            (&l8.cells, &a4.cells),
            (&l8.mito, &a4.mito),
            (&l8.er, &a4.er),
        ] {
            let (fa, fb) = (fraction(a, |v| v != 0), fraction(b, |v| v != 0));
            assert!((fa - fb).abs() < 0.02, "{fa} vs {fb}");
        }
    }

    #[test]
    fn noise_is_gaussian_like_with_requested_sigma() {
        let p = seeded(4);
        let quiet = SynthParams {
            noise_sigma: 0.0,
            ..p.clone()
        };
        let (off, vs, shape) = ([0, 0, 0], [8, 8, 8], [32, 48, 48]);
        let noisy = raw_block(&p, off, vs, shape);
        let clean = raw_block(&quiet, off, vs, shape);
        let d: Vec<f64> = noisy
            .iter()
            .zip(clean.iter())
            .filter(|(_, &c)| (60..=195).contains(&c))
            .map(|(&n, &c)| f64::from(n) - f64::from(c))
            .collect();
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        let sd = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d.len() as f64).sqrt();
        assert!(mean.abs() < 0.5, "noise mean {mean}");
        assert!((11.0..=13.0).contains(&sd), "noise sd {sd}");
        // Bounded like a sum of four uniforms: |noise| <= 2 * sqrt(3) * sigma + rounding.
        assert!(d.iter().all(|v| v.abs() <= 2.0 * 3f64.sqrt() * 12.0 + 1.0));
    }

    #[test]
    fn noise_depends_on_voxel_size() {
        let p = seeded(1);
        let flat = SynthParams {
            cell_spacing_nm: 1.0e9,
            mito_spacing_nm: 1.0,
            er_spacing_nm: 1.0,
            ..p
        };
        // Same centres, different voxel sizes: noise patterns must differ.
        let a = raw_block(&flat, [0, 0, 0], [8, 8, 8], [4, 4, 4]);
        let b = raw_block(&flat, [2, 2, 2], [4, 4, 4], [8, 8, 8]);
        let b2 = b.slice(s![..;2, ..;2, ..;2]);
        assert_ne!(a, b2);
    }

    #[test]
    fn grid_ids_are_unique_and_nonzero() {
        let mut seen = BTreeSet::new();
        for z in -6..6i64 {
            for y in -6..6i64 {
                for x in -6..6i64 {
                    let id = grid_id([z, y, x]);
                    assert_ne!(id, 0);
                    assert!(seen.insert(id), "duplicate id for {z} {y} {x}");
                }
            }
        }
        let far = (1i64 << 20) - 1;
        assert_ne!(grid_id([-far - 1, far, 0]), grid_id([far, -far - 1, 0]));
        assert_ne!(grid_id([i64::MIN, i64::MAX, 0]), 0);
    }

    #[test]
    fn empty_and_impossible_shapes_do_not_panic() {
        let p = SynthParams::default();
        let raw = raw_block(&p, [0, 0, 0], [8, 8, 8], [0, 5, 7]);
        assert_eq!(raw.shape(), &[0, 5, 7]);
        let l = label_blocks(&p, [0, 0, 0], [8, 8, 8], [3, 0, 2]);
        assert_eq!(l.cells.shape(), &[3, 0, 2]);
        assert_eq!(l.er.shape(), &[3, 0, 2]);
        let huge = [usize::MAX, usize::MAX, 2];
        assert_eq!(raw_block(&p, [0, 0, 0], [8, 8, 8], huge).len(), 0);
        assert_eq!(label_blocks(&p, [0, 0, 0], [8, 8, 8], huge).mito.len(), 0);
        let one = raw_block(&p, [0, 0, 0], [8, 8, 8], [1, 1, 1]);
        assert_eq!(one.shape(), &[1, 1, 1]);
    }

    #[test]
    fn degenerate_parameters_and_geometry_do_not_panic() {
        let bad = SynthParams {
            seed: u64::MAX,
            cell_spacing_nm: f64::NAN,
            membrane_half_thickness_nm: -5.0,
            mito_spacing_nm: 0.0,
            er_spacing_nm: f64::INFINITY,
            noise_sigma: f64::NEG_INFINITY,
        };
        for (off, vs) in [
            ([0, 0, 0], [0, 0, 0]),
            ([5, -5, 5], [-8, 8, -3]),
            ([i64::MAX, i64::MIN, 0], [i64::MAX, 1, i64::MIN]),
        ] {
            for p in [&bad, &SynthParams::default()] {
                let raw = raw_block(p, off, vs, [3, 4, 5]);
                assert_eq!(raw.shape(), &[3, 4, 5]);
                let l = label_blocks(p, off, vs, [3, 4, 5]);
                assert_eq!(l.cells.shape(), &[3, 4, 5]);
            }
        }
        for point in [
            [f64::NAN, 0.0, 0.0],
            [f64::INFINITY, f64::NEG_INFINITY, 1.0],
            [1e300, -1e300, 0.0],
        ] {
            let s = sample(&bad, point);
            assert!((0.0..=255.0).contains(&s.intensity));
        }
        // A zero voxel size samples one point everywhere.
        let l = label_blocks(
            &SynthParams::default(),
            [100, 100, 100],
            [0, 0, 0],
            [2, 2, 2],
        );
        assert!(l.cells.iter().all(|&c| c == l.cells[[0, 0, 0]]));
    }
}
