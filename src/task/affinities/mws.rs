//! The mutex watershed (Wolf et al. 2018, "The Mutex Watershed") and
//! post-processing of its fragments.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice, Zip};

use super::targets::check_offsets;
use super::{c_strides, for_each_in_box, AffError};

/// Segments a volume from affinities with the mutex watershed.
///
/// `affs` has shape `(C, spatial...)` with `C >= offsets.len()`; only the first
/// `offsets.len()` channels are used. Every voxel `u` whose partner `u + o_c` is
/// inside the volume gives an edge `(u, u + o_c)` of weight
/// `w = affs[c][u] − bias`. Edges are processed by decreasing `|w|` (ties broken by
/// the edge index `c · n_voxels + raster_index(u)`, so the result is
/// deterministic): an attractive edge (`w > 0`) merges the two clusters unless a
/// mutex constraint separates them, a repulsive edge (`w ≤ 0`) adds a mutex
/// constraint between two different clusters.
///
/// Returns one label per voxel, consecutive ids `1..=K` in raster order of first
/// appearance (no 0).
///
/// # Errors
/// [`AffError::InvalidParameter`] for a 0-dimensional `affs`, a non-finite `bias`
/// or a non-finite affinity value; [`AffError::OffsetDims`] if an offset does not
/// have one entry per spatial axis; [`AffError::TooFewChannels`] if `affs` has
/// fewer channels than offsets; [`AffError::TooLarge`] if there are `2³²` or more
/// voxels or candidate edges.
pub fn mutex_watershed(
    affs: &ArrayViewD<f32>,
    offsets: &[Vec<i64>],
    bias: f64,
) -> Result<ArrayD<u64>, AffError> {
    let Some((&channels, spatial)) = affs.shape().split_first() else {
        return Err(AffError::InvalidParameter(
            "affinities need a channel axis".into(),
        ));
    };
    check_offsets(offsets, spatial.len())?;
    if channels < offsets.len() {
        return Err(AffError::TooFewChannels {
            got: channels,
            needed: offsets.len(),
        });
    }
    if !bias.is_finite() {
        return Err(AffError::InvalidParameter(format!(
            "bias must be finite, got {bias}"
        )));
    }
    let volume: usize = spatial.iter().product();
    let n_slots = offsets.len().checked_mul(volume);
    if volume >= u32::MAX as usize || n_slots.is_none_or(|n| n as u64 > 1 << 32) {
        return Err(AffError::TooLarge(format!(
            "{volume} voxels with {} offsets; at most 2^32 - 1 voxels and 2^32 edges \
             are supported",
            offsets.len()
        )));
    }

    let weights: Vec<f32> = affs
        .slice_axis(Axis(0), Slice::from(0..offsets.len()))
        .iter()
        .copied()
        .collect();
    if let Some(pos) = weights.iter().position(|w| !w.is_finite()) {
        return Err(AffError::InvalidParameter(format!(
            "affinity channel {} has a non-finite value ({})",
            pos / volume,
            weights[pos]
        )));
    }

    let strides = c_strides(spatial);
    let (edges, flat_offsets) = sorted_edges(&weights, spatial, &strides, offsets, bias);

    let mut clusters = Clusters::new(volume);
    for key in edges {
        let e = edge_index(key);
        let (c, u) = (e / volume, e % volume);
        let v = u.wrapping_add_signed(flat_offsets[c]);
        let (ru, rv) = (clusters.find(u), clusters.find(v));
        if ru == rv {
            continue;
        }
        if is_attractive(key) {
            if !clusters.separated(ru, rv) {
                clusters.union(ru, rv);
            }
        } else {
            clusters.add_mutex(ru, rv);
        }
    }

    let mut label_of_root = vec![0u64; volume];
    let mut next = 0u64;
    let mut labels = Vec::with_capacity(volume);
    for u in 0..volume {
        let root = clusters.find(u);
        if label_of_root[root] == 0 {
            next += 1;
            label_of_root[root] = next;
        }
        labels.push(label_of_root[root]);
    }
    ArrayD::from_shape_vec(IxDyn(spatial), labels)
        .map_err(|e| AffError::ShapeMismatch(e.to_string()))
}

/// `|affinity − bias|` of an edge, the quantity edges are sorted by.
fn abs_weight(affinity: f32, bias: f64) -> f64 {
    (f64::from(affinity) - bias).abs()
}

/// Sort key of an edge: the complemented bits of `|w|` rounded to `f32` (so
/// that ascending keys mean descending `|w|`; 31 bits, the sign bit of a
/// non-negative float is 0), then the 32-bit edge index, then 1 bit telling
/// whether the edge is attractive.
fn edge_key(affinity: f32, bias: f64, index: usize) -> u64 {
    let w = f64::from(affinity) - bias;
    let coarse = (w.abs() as f32).to_bits();
    (u64::from(!coarse & 0x7FFF_FFFF) << 33) | ((index as u64) << 1) | u64::from(w > 0.0)
}

/// Edge index stored in a key.
fn edge_index(key: u64) -> usize {
    ((key >> 1) & 0xFFFF_FFFF) as usize
}

/// Whether the edge of a key is attractive (`w > 0`).
fn is_attractive(key: u64) -> bool {
    key & 1 == 1
}

/// Enumerates all edges, sorted by (`|w|` descending, edge index ascending), and
/// the flat (raster) offset of each channel.
fn sorted_edges(
    weights: &[f32],
    spatial: &[usize],
    strides: &[usize],
    offsets: &[Vec<i64>],
    bias: f64,
) -> (Vec<u64>, Vec<isize>) {
    let volume: usize = spatial.iter().product();
    let boxes: Vec<Option<(Vec<usize>, Vec<usize>)>> =
        offsets.iter().map(|o| valid_box(spatial, o)).collect();
    let n_edges: usize = boxes
        .iter()
        .flatten()
        .map(|(lo, hi)| hi.iter().zip(lo).map(|(h, l)| h - l).product::<usize>())
        .sum();
    let mut keys = Vec::with_capacity(n_edges);
    let mut flat_offsets = vec![0isize; offsets.len()];
    for (c, (valid, offset)) in boxes.iter().zip(offsets).enumerate() {
        let Some((lo, hi)) = valid else {
            continue;
        };
        // Every |o_d| is below the axis length here, so this cannot overflow.
        flat_offsets[c] = offset
            .iter()
            .zip(strides)
            .map(|(&o, &s)| o as isize * s as isize)
            .sum();
        let base = c * volume;
        let channel = &weights[base..base + volume];
        for_each_in_box(strides, lo, hi, |u, _| {
            keys.push(edge_key(channel[u], bias, base + u));
        });
    }
    keys.sort_unstable();
    // Keys agree with the exact order except inside runs whose |w| round to the
    // same f32; re-sort those runs exactly (they are already in index order).
    let exact = |key: u64| abs_weight(weights[edge_index(key)], bias);
    for run in keys.chunk_by_mut(|a, b| a >> 33 == b >> 33) {
        let first = exact(run[0]);
        if run.iter().any(|&k| exact(k) != first) {
            run.sort_by(|&a, &b| exact(b).total_cmp(&exact(a)).then(a.cmp(&b)));
        }
    }
    (keys, flat_offsets)
}

/// Box `lo..hi` of voxels `u` with `u + offset` inside the volume, `None` if empty.
fn valid_box(spatial: &[usize], offset: &[i64]) -> Option<(Vec<usize>, Vec<usize>)> {
    let mut lo = Vec::with_capacity(spatial.len());
    let mut hi = Vec::with_capacity(spatial.len());
    for (&n, &o) in spatial.iter().zip(offset) {
        let k = usize::try_from(o.unsigned_abs()).ok().filter(|&k| k < n)?;
        if o >= 0 {
            lo.push(0);
            hi.push(n - k);
        } else {
            lo.push(k);
            hi.push(n);
        }
    }
    Some((lo, hi))
}

/// Hasher for `u32` ids (multiplicative hashing; far cheaper than SipHash).
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        let h = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

type IdSet = HashSet<u32, BuildHasherDefault<IdHasher>>;

const NO_SET: u32 = u32::MAX;

/// Per-voxel state of [`Clusters`].
#[derive(Clone, Copy)]
struct Node {
    /// Union–find parent (itself for a root).
    parent: u32,
    /// For a root: the token naming its cluster in the mutex sets.
    token: u32,
    /// For a token: index of its mutex set in `Clusters::sets`, or `NO_SET`.
    slot: u32,
    /// Union-by-rank rank (for roots).
    rank: u8,
}

/// Clusters of voxels with mutex constraints between them.
///
/// Union–find with path compression and union by rank. Each cluster carries a
/// token (a voxel id); the mutex set of a token holds the tokens of all
/// clusters it has a mutex with, so a check is one hash lookup. When two
/// clusters merge, the token with the smaller set is retired and its entries
/// move to the other token (smaller into larger), independently of which
/// union–find root survives. Per-voxel fields live in one struct for locality.
struct Clusters {
    nodes: Vec<Node>,
    sets: Vec<IdSet>,
    free: Vec<u32>,
}

impl Clusters {
    /// `n` singletons; `n` must be below `u32::MAX`.
    fn new(n: usize) -> Self {
        Self {
            nodes: (0..n as u32)
                .map(|i| Node {
                    parent: i,
                    token: i,
                    slot: NO_SET,
                    rank: 0,
                })
                .collect(),
            sets: Vec::new(),
            free: Vec::new(),
        }
    }

    fn find(&mut self, x: usize) -> usize {
        let mut root = x;
        while self.nodes[root].parent as usize != root {
            root = self.nodes[root].parent as usize;
        }
        let mut cur = x;
        while cur != root {
            let next = self.nodes[cur].parent as usize;
            self.nodes[cur].parent = root as u32;
            cur = next;
        }
        root
    }

    fn set(&self, token: u32) -> Option<&IdSet> {
        let slot = self.nodes[token as usize].slot;
        (slot != NO_SET).then(|| &self.sets[slot as usize])
    }

    fn set_mut(&mut self, token: u32) -> &mut IdSet {
        let t = token as usize;
        if self.nodes[t].slot == NO_SET {
            self.nodes[t].slot = match self.free.pop() {
                Some(slot) => slot,
                None => {
                    self.sets.push(IdSet::default());
                    (self.sets.len() - 1) as u32
                }
            };
        }
        &mut self.sets[self.nodes[t].slot as usize]
    }

    fn set_len(&self, token: u32) -> usize {
        self.set(token).map_or(0, HashSet::len)
    }

    /// Whether the clusters with roots `a` and `b` have a mutex constraint.
    fn separated(&self, a: usize, b: usize) -> bool {
        let (ta, tb) = (self.nodes[a].token, self.nodes[b].token);
        match (self.set(ta), self.set(tb)) {
            (Some(sa), Some(sb)) if sa.len() <= sb.len() => sa.contains(&tb),
            (Some(_), Some(sb)) => sb.contains(&ta),
            _ => false,
        }
    }

    /// Adds a mutex constraint between the clusters with roots `a` and `b`.
    fn add_mutex(&mut self, a: usize, b: usize) {
        let (ta, tb) = (self.nodes[a].token, self.nodes[b].token);
        self.set_mut(ta).insert(tb);
        self.set_mut(tb).insert(ta);
    }

    /// Merges the clusters with distinct roots `a` and `b`.
    fn union(&mut self, a: usize, b: usize) {
        let (root, child) = if self.nodes[a].rank < self.nodes[b].rank {
            (b, a)
        } else {
            (a, b)
        };
        if self.nodes[root].rank == self.nodes[child].rank {
            self.nodes[root].rank = self.nodes[root].rank.saturating_add(1);
        }
        self.nodes[child].parent = root as u32;

        let (tr, tc) = (self.nodes[root].token, self.nodes[child].token);
        let (keep, retire) = if self.set_len(tr) >= self.set_len(tc) {
            (tr, tc)
        } else {
            (tc, tr)
        };
        self.nodes[root].token = keep;
        let slot = self.nodes[retire as usize].slot;
        if slot == NO_SET {
            return;
        }
        self.nodes[retire as usize].slot = NO_SET;
        let retired = std::mem::take(&mut self.sets[slot as usize]);
        self.free.push(slot);
        self.set_mut(keep).reserve(retired.len());
        for other in retired {
            let set = self.set_mut(other);
            set.remove(&retire);
            set.insert(keep);
            self.set_mut(keep).insert(other);
        }
    }
}

/// Sets to 0 every fragment whose mean affinity is below `threshold`.
///
/// A voxel's affinity is the mean over the first `n_affinity_channels`
/// channels of `affs` (shape `(C, labels.shape()...)`); a fragment's score is
/// the mean of that over its voxels. Used after the mutex watershed to drop
/// background fragments. Label 0 is left untouched; ids are not renumbered
/// (see [`relabel_consecutive`]).
///
/// # Errors
/// [`AffError::ShapeMismatch`] if the spatial shape of `affs` differs from
/// `labels`; [`AffError::InvalidParameter`] if `n_affinity_channels == 0`;
/// [`AffError::TooFewChannels`] if `affs` has fewer channels.
pub fn filter_fragments(
    labels: &mut ArrayD<u64>,
    affs: &ArrayViewD<f32>,
    n_affinity_channels: usize,
    threshold: f64,
) -> Result<(), AffError> {
    if affs.shape().split_first().map(|(_, s)| s) != Some(labels.shape()) {
        return Err(AffError::ShapeMismatch(format!(
            "affinities of shape {:?} do not fit labels of shape {:?}",
            affs.shape(),
            labels.shape()
        )));
    }
    if n_affinity_channels == 0 {
        return Err(AffError::InvalidParameter(
            "n_affinity_channels must be at least 1".into(),
        ));
    }
    let channels = affs.shape()[0];
    if channels < n_affinity_channels {
        return Err(AffError::TooFewChannels {
            got: channels,
            needed: n_affinity_channels,
        });
    }
    let mut sum = ArrayD::<f64>::zeros(labels.raw_dim());
    for channel in affs.axis_iter(Axis(0)).take(n_affinity_channels) {
        Zip::from(&mut sum)
            .and(&channel)
            .for_each(|s, &a| *s += f64::from(a));
    }
    let mut stats: HashMap<u64, (f64, usize)> = HashMap::new();
    Zip::from(&*labels).and(&sum).for_each(|&label, &s| {
        if label != 0 {
            let entry = stats.entry(label).or_insert((0.0, 0));
            entry.0 += s;
            entry.1 += 1;
        }
    });
    let n = n_affinity_channels as f64;
    let dropped: HashSet<u64> = stats
        .into_iter()
        .filter(|&(_, (s, count))| s / (n * count as f64) < threshold)
        .map(|(label, _)| label)
        .collect();
    if !dropped.is_empty() {
        labels.mapv_inplace(|l| if dropped.contains(&l) { 0 } else { l });
    }
    Ok(())
}

/// Renumbers labels to `1..=K` in raster order of first appearance, keeping 0
/// as 0, and returns `K`.
pub fn relabel_consecutive(labels: &mut ArrayD<u64>) -> u64 {
    let mut map: HashMap<u64, u64> = HashMap::new();
    let mut next = 0u64;
    for label in labels.iter_mut().filter(|l| **l != 0) {
        *label = *map.entry(*label).or_insert_with(|| {
            next += 1;
            next
        });
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2, Array3, Array4, Dimension};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn off(v: &[&[i64]]) -> Vec<Vec<i64>> {
        v.iter().map(|o| o.to_vec()).collect()
    }

    /// Straightforward reference: explicit edge list, stable sort, clusters as a
    /// label per voxel (relabelled on every merge) and mutexes as cluster pairs.
    fn brute_mws(affs: &ArrayD<f32>, offsets: &[Vec<i64>], bias: f64) -> Vec<u64> {
        let spatial = affs.shape()[1..].to_vec();
        let n = spatial.len();
        let volume: usize = spatial.iter().product();
        let to_flat = |idx: &[i64]| -> usize {
            idx.iter()
                .zip(&spatial)
                .fold(0usize, |acc, (&i, &s)| acc * s + i as usize)
        };
        let mut edges = Vec::new();
        for (c, o) in offsets.iter().enumerate() {
            for (u, idx) in ndarray::indices(IxDyn(&spatial)).into_iter().enumerate() {
                let partner: Vec<i64> = (0..n).map(|d| idx[d] as i64 + o[d]).collect();
                if partner
                    .iter()
                    .zip(&spatial)
                    .any(|(&p, &s)| p < 0 || p >= s as i64)
                {
                    continue;
                }
                let mut full = vec![c];
                full.extend_from_slice(idx.slice());
                let w = f64::from(affs[IxDyn(&full)]) - bias;
                edges.push((w, c * volume + u, u, to_flat(&partner)));
            }
        }
        edges.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(&b.1)));
        let mut cluster: Vec<usize> = (0..volume).collect();
        let mut mutex: HashSet<(usize, usize)> = HashSet::new();
        let pair = |a: usize, b: usize| (a.min(b), a.max(b));
        for (w, _, u, v) in edges {
            let (cu, cv) = (cluster[u], cluster[v]);
            if cu == cv {
                continue;
            }
            if w > 0.0 {
                if mutex.contains(&pair(cu, cv)) {
                    continue;
                }
                for x in cluster.iter_mut().filter(|x| **x == cv) {
                    *x = cu;
                }
                let rename = |a: usize| if a == cv { cu } else { a };
                mutex = mutex
                    .into_iter()
                    .map(|(a, b)| pair(rename(a), rename(b)))
                    .collect();
            } else {
                mutex.insert(pair(cu, cv));
            }
        }
        let mut ids = HashMap::new();
        cluster
            .iter()
            .map(|c| {
                let k = ids.len() as u64 + 1;
                *ids.entry(*c).or_insert(k)
            })
            .collect()
    }

    #[test]
    fn chain_with_mutex_by_hand() {
        // Edges: (0,1) w=+0.4, (1,2) w=+0.1, (0,2) w=-0.45 (long range).
        // Sorted by |w|: (0,2) repulsive → mutex; (0,1) merges; (1,2) blocked.
        let affs = arr2(&[[0.9f32, 0.6, 0.0], [0.05, 0.0, 0.0]]).into_dyn();
        let labels = mutex_watershed(&affs.view(), &off(&[&[1], &[2]]), 0.5).unwrap();
        assert_eq!(labels.iter().copied().collect::<Vec<_>>(), vec![1, 1, 2]);
        // Without the long-range repulsion everything merges.
        let affs = arr2(&[[0.9f32, 0.6, 0.0], [0.9, 0.0, 0.0]]).into_dyn();
        let labels = mutex_watershed(&affs.view(), &off(&[&[1], &[2]]), 0.5).unwrap();
        assert_eq!(labels.iter().copied().collect::<Vec<_>>(), vec![1, 1, 1]);
        // Negative offsets: edge (u, u-1) stored at u.
        let affs = arr2(&[[0.0f32, 0.9, 0.1, 0.8]]).into_dyn();
        let labels = mutex_watershed(&affs.view(), &off(&[&[-1]]), 0.5).unwrap();
        assert_eq!(labels.iter().copied().collect::<Vec<_>>(), vec![1, 1, 2, 2]);
    }

    #[test]
    fn two_touching_cubes() {
        let (d, h, w) = (4, 5, 8);
        let offsets = off(&[&[-1, 0, 0], &[0, -1, 0], &[0, 0, -1], &[0, 0, -3]]);
        let mut affs = Array4::<f32>::from_elem((4, d, h, w), 0.95);
        // Edges crossing the interface between x = 3 and x = 4 are low.
        for z in 0..d {
            for y in 0..h {
                affs[[2, z, y, 4]] = 0.2;
                for x in 4..7 {
                    affs[[3, z, y, x]] = 0.1;
                }
            }
        }
        let affs = affs.into_dyn();
        let labels = mutex_watershed(&affs.view(), &offsets, 0.5).unwrap();
        let expected = Array3::from_shape_fn((d, h, w), |(_, _, x)| if x < 4 { 1u64 } else { 2 });
        assert_eq!(labels, expected.into_dyn());
        assert_eq!(
            brute_mws(&affs, &offsets, 0.5),
            labels.iter().copied().collect::<Vec<_>>()
        );
    }

    #[test]
    fn all_high_and_all_low() {
        let offsets = off(&[&[-1, 0, 0], &[0, -1, 0], &[0, 0, -1], &[-2, 0, 0]]);
        let high = ArrayD::from_elem(IxDyn(&[4, 3, 4, 5]), 0.9f32);
        let labels = mutex_watershed(&high.view(), &offsets, 0.5).unwrap();
        assert_eq!(labels.shape(), &[3, 4, 5]);
        assert!(labels.iter().all(|&l| l == 1));
        let low = ArrayD::from_elem(IxDyn(&[4, 3, 4, 5]), 0.1f32);
        let labels = mutex_watershed(&low.view(), &offsets, 0.5).unwrap();
        let expected: Vec<u64> = (1..=60).collect();
        assert_eq!(labels.iter().copied().collect::<Vec<_>>(), expected);
        // Exactly at the bias the weight is 0, which counts as repulsive.
        let at_bias = ArrayD::from_elem(IxDyn(&[4, 3, 4, 5]), 0.5f32);
        let labels = mutex_watershed(&at_bias.view(), &offsets, 0.5).unwrap();
        assert_eq!(labels.iter().copied().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn extra_channels_are_ignored() {
        let mut affs = Array3::<f32>::from_elem((3, 2, 3), 0.9);
        affs.index_axis_mut(Axis(0), 2).fill(0.0);
        let affs = affs.into_dyn();
        let labels = mutex_watershed(&affs.view(), &off(&[&[-1, 0], &[0, -1]]), 0.5).unwrap();
        assert!(labels.iter().all(|&l| l == 1));
    }

    fn random_case(
        rng: &mut StdRng,
        shape: &[usize],
        quantized: bool,
    ) -> (ArrayD<f32>, Vec<Vec<i64>>) {
        let n = shape.len();
        let mut offsets: Vec<Vec<i64>> = (0..n)
            .map(|d| (0..n).map(|e| if d == e { -1 } else { 0 }).collect())
            .collect();
        for _ in 0..rng.gen_range(1..4) {
            offsets.push((0..n).map(|_| rng.gen_range(-3..=3)).collect());
        }
        let mut full = vec![offsets.len()];
        full.extend_from_slice(shape);
        let affs = ArrayD::from_shape_simple_fn(IxDyn(&full), || {
            if quantized {
                f32::from(rng.gen_range(0u8..5)) * 0.25
            } else {
                rng.gen::<f32>()
            }
        });
        (affs, offsets)
    }

    #[test]
    fn matches_brute_force_on_random_inputs() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let shapes: [&[usize]; 5] = [&[7, 9], &[5, 6], &[3, 4, 5], &[4, 4, 4], &[11]];
        for round in 0..60 {
            let shape = shapes[round % shapes.len()];
            let quantized = round % 3 == 0;
            let (affs, offsets) = random_case(&mut rng, shape, quantized);
            let bias = [0.5, 0.3, 0.7][round % 3];
            let labels = mutex_watershed(&affs.view(), &offsets, bias).unwrap();
            assert_eq!(labels.shape(), shape);
            let expected = brute_mws(&affs, &offsets, bias);
            assert_eq!(
                labels.iter().copied().collect::<Vec<_>>(),
                expected,
                "round {round}, offsets {offsets:?}"
            );
        }
    }

    #[test]
    fn near_ties_are_ordered_exactly() {
        // |w| values that differ only beyond f32 precision, and exact ties
        // between an attractive and a repulsive edge (0.5 ± 0.25).
        let affs = arr2(&[[0.75f32, 0.25, 0.75, 0.25, 0.75, 0.0]]).into_dyn();
        let offsets = off(&[&[1]]);
        let labels = mutex_watershed(&affs.view(), &offsets, 0.5).unwrap();
        assert_eq!(
            labels.iter().copied().collect::<Vec<_>>(),
            brute_mws(&affs, &offsets, 0.5)
        );
        assert_eq!(
            labels.iter().copied().collect::<Vec<_>>(),
            vec![1, 1, 2, 2, 3, 3]
        );
        // A repulsive long-range edge whose |w| exceeds that of the attractive
        // edges by less than an f32 ulp: it must still come first (then the chain
        // splits as in `chain_with_mutex_by_hand`), although its index is larger.
        let x = f32::from_bits((1.0f32 - 0.9f32).to_bits() - 1);
        let (att, rep) = (f64::from(0.9f32) - 0.5, 0.5 - f64::from(x));
        assert!(rep > att && rep as f32 == att as f32);
        let affs = arr2(&[[0.9f32, 0.9, 0.0], [x, 0.0, 0.0]]).into_dyn();
        let offsets = off(&[&[1], &[2]]);
        let labels = mutex_watershed(&affs.view(), &offsets, 0.5).unwrap();
        assert_eq!(labels.iter().copied().collect::<Vec<_>>(), vec![1, 1, 2]);
        assert_eq!(brute_mws(&affs, &offsets, 0.5), vec![1, 1, 2]);
        let bias = 0.5 + 1e-12;
        let affs = arr2(&[[0.9f32, 0.1, 0.9, 0.1], [0.1, 0.9, 0.0, 0.0]]).into_dyn();
        let offsets = off(&[&[1], &[2]]);
        let labels = mutex_watershed(&affs.view(), &offsets, bias).unwrap();
        assert_eq!(
            labels.iter().copied().collect::<Vec<_>>(),
            brute_mws(&affs, &offsets, bias)
        );
    }

    #[test]
    fn mws_errors() {
        let affs = ArrayD::<f32>::zeros(IxDyn(&[2, 3, 3]));
        assert_eq!(
            mutex_watershed(&affs.view(), &off(&[&[1, 0], &[0]]), 0.5).unwrap_err(),
            AffError::OffsetDims {
                index: 1,
                got: 1,
                expected: 2
            }
        );
        assert_eq!(
            mutex_watershed(&affs.view(), &off(&[&[1, 0], &[0, 1], &[1, 1]]), 0.5).unwrap_err(),
            AffError::TooFewChannels { got: 2, needed: 3 }
        );
        assert!(matches!(
            mutex_watershed(&affs.view(), &off(&[&[1, 0]]), f64::NAN),
            Err(AffError::InvalidParameter(_))
        ));
        let mut bad = affs.clone();
        bad[[1, 2, 2]] = f32::NAN;
        let err = mutex_watershed(&bad.view(), &off(&[&[1, 0], &[0, 1]]), 0.5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid parameter: affinity channel 1 has a non-finite value (NaN)"
        );
        let scalar = ArrayD::<f32>::zeros(IxDyn(&[]));
        assert!(mutex_watershed(&scalar.view(), &[], 0.5).is_err());
        // Offsets longer than the volume give no edges.
        let labels = mutex_watershed(&affs.view(), &off(&[&[5, 0], &[0, -3]]), 0.5).unwrap();
        assert_eq!(
            labels.iter().copied().collect::<Vec<_>>(),
            (1..=9).collect::<Vec<_>>()
        );
    }

    #[test]
    fn filter_fragments_by_hand() {
        let mut labels = arr2(&[[1u64, 1, 2], [3, 3, 0]]).into_dyn();
        let affs = ndarray::arr3(&[
            [[0.9f32, 0.7, 0.2], [0.6, 0.5, 1.0]],
            [[0.7, 0.5, 0.4], [0.4, 0.3, 1.0]],
            [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
        ])
        .into_dyn();
        // Fragment means over 2 channels: 1 → (0.8 + 0.6)/2 = 0.7, 2 → 0.3,
        // 3 → (0.5 + 0.4)/2 = 0.45.
        let mut l = labels.clone();
        filter_fragments(&mut l, &affs.view(), 2, 0.45).unwrap();
        assert_eq!(l, arr2(&[[1u64, 1, 0], [3, 3, 0]]).into_dyn());
        let mut l = labels.clone();
        filter_fragments(&mut l, &affs.view(), 2, 0.5).unwrap();
        assert_eq!(l, arr2(&[[1u64, 1, 0], [0, 0, 0]]).into_dyn());
        // With the third (all-zero) channel the means drop to 2/3 of the above.
        let mut l = labels.clone();
        filter_fragments(&mut l, &affs.view(), 3, 0.4).unwrap();
        assert_eq!(l, arr2(&[[1u64, 1, 0], [0, 0, 0]]).into_dyn());
        assert!(matches!(
            filter_fragments(&mut labels, &affs.view(), 4, 0.5),
            Err(AffError::TooFewChannels { got: 3, needed: 4 })
        ));
        assert!(matches!(
            filter_fragments(&mut labels, &affs.view(), 0, 0.5),
            Err(AffError::InvalidParameter(_))
        ));
        let mut wrong = arr1(&[1u64, 2]).into_dyn();
        assert!(matches!(
            filter_fragments(&mut wrong, &affs.view(), 2, 0.5),
            Err(AffError::ShapeMismatch(_))
        ));
    }

    #[test]
    fn relabel_by_hand() {
        let mut labels = arr2(&[[7u64, 0, 3], [3, 9, 7], [0, 42, 9]]).into_dyn();
        assert_eq!(relabel_consecutive(&mut labels), 4);
        assert_eq!(
            labels,
            arr2(&[[1u64, 0, 2], [2, 3, 1], [0, 4, 3]]).into_dyn()
        );
        let mut zeros = ArrayD::<u64>::zeros(IxDyn(&[2, 2]));
        assert_eq!(relabel_consecutive(&mut zeros), 0);
        assert!(zeros.iter().all(|&l| l == 0));
    }

    #[test]
    fn pipeline_from_affinity_target() {
        // Ground truth with background: the MWS of its own affinities plus
        // filtering recovers it up to renumbering.
        let gt = Array3::from_shape_fn((6, 8, 8), |(z, y, x)| {
            if x == 0 {
                0
            } else {
                1 + u64::from(y >= 4) + 2 * u64::from(z >= 3)
            }
        })
        .into_dyn();
        let offsets = off(&[
            &[-1, 0, 0],
            &[0, -1, 0],
            &[0, 0, -1],
            &[-2, 0, 0],
            &[0, -3, 0],
            &[0, 0, -3],
        ]);
        let affs = super::super::affinity_target(&gt.view(), &offsets, false).unwrap();
        let mut labels = mutex_watershed(&affs.view(), &offsets, 0.5).unwrap();
        filter_fragments(&mut labels, &affs.view(), 3, 0.5).unwrap();
        let k = relabel_consecutive(&mut labels);
        assert_eq!(k, 4);
        let mut gt_relabelled = gt.clone();
        relabel_consecutive(&mut gt_relabelled);
        assert_eq!(labels, gt_relabelled);
    }
}
