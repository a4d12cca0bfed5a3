//! The benchmark volume: declared at full size with every scale level, with only the
//! chunks the benchmark's panels show written, at every level (each run writes those it
//! lacks, so runs at several screens and layouts share one volume).

use std::collections::BTreeSet;
use std::path::PathBuf;

use ndarray::ArrayD;
use rayon::prelude::*;

use super::{band_a, band_b, world_centre, ViewerBenchOptions, CHUNK, VOXEL_NM};
use crate::array::write::{self, ArraySpec, ArrayWriter, Compression, WriteMode};
use crate::array::{ArrayData, DataType};
use crate::geometry::{Coordinate, Roi};
use crate::render::layer::WorldNm;

/// The chunk indices (z, y, x) at scale level `level` (voxels 2^`level` times as large)
/// the cross-section panels of `options`' layout show with the view at `centre` and at
/// every point of a pan `pan_vox` voxels along x from there: each panel's plane (one voxel
/// per screen point, `options.pixels_per_point` pixels) with the neighbouring slices the
/// viewer prefetches (one voxel either side along its normal). Coarser levels stand in
/// while finer ones load, and draw a plane moving fast along its normal.
fn chunks_at_level(
    options: &ViewerBenchOptions,
    centre: WorldNm,
    pan_vox: u64,
    level: u32,
) -> BTreeSet<[u64; 3]> {
    let centre_vox = centre.0.map(|nm| (nm / VOXEL_NM as f64).floor() as i64);
    let last = (options.size >> level) as i64 - 1;
    let mut out = BTreeSet::new();
    let rects = crate::gui::screenshot::layout_rects(options.layout, options.width, options.height);
    for (plane, r) in rects {
        let Some(plane) = plane else { continue };
        let [across, down, normal] = plane.axes();
        let (mut lo, mut hi) = (centre_vox, centre_vox);
        for (axis, px) in [(across, r[2]), (down, r[3])] {
            let half = (f64::from(px) / options.pixels_per_point / 2.0).ceil() as i64 + 1;
            lo[axis] -= half;
            hi[axis] += half;
        }
        lo[normal] -= 1;
        hi[normal] += 1;
        hi[2] += pan_vox as i64;
        let chunk = |v: i64| ((v >> level).clamp(0, last) as u64) / CHUNK;
        for cz in chunk(lo[0])..=chunk(hi[0]) {
            for cy in chunk(lo[1])..=chunk(hi[1]) {
                for cx in chunk(lo[2])..=chunk(hi[2]) {
                    out.insert([cz, cy, cx]);
                }
            }
        }
    }
    out
}

/// The number of scale levels of the benchmark volume (down to one chunk a side).
fn levels(options: &ViewerBenchOptions) -> u32 {
    (options.size / CHUNK).max(1).ilog2() + 1
}

/// Every chunk (level, z, y, x) a run of `options` reads: band A with the pan, and band B
/// (the jumps'), at every level.
pub(super) fn chunks_of_run(options: &ViewerBenchOptions) -> BTreeSet<(u32, [u64; 3])> {
    let pan_vox = u64::from(options.pan_px) * options.frames as u64;
    let (a, b) = (
        world_centre(options, band_a(options)),
        world_centre(options, band_b(options)),
    );
    let mut chunks = BTreeSet::new();
    for level in 0..levels(options) {
        let at_level = chunks_at_level(options, a, pan_vox, level)
            .into_iter()
            .chain(chunks_at_level(options, b, 0, level));
        chunks.extend(at_level.map(|idx| (level, idx)));
    }
    chunks
}

fn hash(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Writes the chunks of the benchmark volume under `options.dir` that this run reads and
/// that are not stored yet (a volume of another size is written afresh); returns the
/// container.
pub(super) fn ensure_volume(
    options: &ViewerBenchOptions,
    out: &mut dyn std::io::Write,
) -> Result<PathBuf, String> {
    let container = options.dir.join("volume.zarr");
    let n = i64::try_from(options.size).map_err(|e| e.to_string())? * VOXEL_NM;
    let roi = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([n, n, n]))
        .map_err(|e| e.to_string())?;
    let vs = Coordinate::from([VOXEL_NM; 3]);
    let levels = levels(options) as usize;
    let mut out_err = String::new();
    let mut make =
        |name: &str, dt: DataType, compression: Compression| -> Result<Vec<ArrayWriter>, String> {
            let mut spec = ArraySpec::new(dt, roi, vs, None);
            spec.chunk_voxels = Some(vec![CHUNK; 3]);
            spec.compression = compression;
            let w = match write::create_image(&container, name, &spec, levels, WriteMode::Resume) {
                Ok(w) => w,
                Err(e) => {
                    out_err.push_str(&format!("{name}: {e}; "));
                    write::create_image(&container, name, &spec, levels, WriteMode::Overwrite)
                        .map_err(|e| e.to_string())?
                }
            };
            if w.len() != levels {
                return Err(format!(
                    "{name}: {} levels written, {levels} wanted",
                    w.len()
                ));
            }
            Ok(w)
        };
    let raw = make("raw", DataType::U8, Compression::BloscLz4)?;
    let labels = make("labels", DataType::U64, Compression::BloscLz4)?;
    let pred = make("prediction", DataType::F32, Compression::BloscLz4)?;
    if !out_err.is_empty() {
        let _ = writeln!(out, "the benchmark volume was written afresh ({out_err})");
    }
    let arrays = [&raw, &labels, &pred];
    let mut missing = Vec::new();
    for (level, idx) in chunks_of_run(options) {
        for a in arrays {
            if !a[level as usize]
                .chunk_stored(&idx)
                .map_err(|e| e.to_string())?
            {
                missing.push((level, idx));
                break;
            }
        }
    }
    if missing.is_empty() {
        return Ok(container);
    }
    let _ = writeln!(
        out,
        "writing {} chunks of {CHUNK}³ per array (all scale levels) of the {}³ benchmark volume to {} …",
        missing.len(),
        options.size,
        container.display()
    );
    let shape = vec![CHUNK as usize; 3];
    missing
        .par_iter()
        .try_for_each(|(level, idx)| -> Result<(), String> {
            let origin = idx.map(|i| i * CHUNK);
            // A coarser level samples every 2^level-th voxel of the finest.
            let at = |i: &ndarray::IxDyn| {
                [
                    (origin[0] + i[0] as u64) << level,
                    (origin[1] + i[1] as u64) << level,
                    (origin[2] + i[2] as u64) << level,
                ]
            };
            let l = *level as usize;
            let r = ArrayD::from_shape_fn(shape.clone(), |i| {
                let [z, y, x] = at(&i);
                let cell = hash((z / 48) << 40 | (y / 48) << 20 | (x / 48));
                ((cell % 160) as u8 + 40).wrapping_add((hash(z * 7919 + y * 31 + x) % 24) as u8)
            });
            raw[l]
                .write_chunk(idx, &ArrayData::U8(r))
                .map_err(|e| e.to_string())?;
            let ids = ArrayD::from_shape_fn(shape.clone(), |i| {
                let [z, y, x] = at(&i);
                hash((z / 48) << 40 | (y / 48) << 20 | (x / 48)) | 1 << 62
            });
            labels[l]
                .write_chunk(idx, &ArrayData::U64(ids))
                .map_err(|e| e.to_string())?;
            let p = ArrayD::from_shape_fn(shape.clone(), |i| {
                let [z, y, x] = at(&i);
                ((x as f32 / 23.0).sin() * (y as f32 / 17.0).cos() + (z as f32 / 31.0).sin()) * 0.25
                    + 0.5
            });
            pred[l]
                .write_chunk(idx, &ArrayData::F32(p))
                .map_err(|e| e.to_string())
        })?;
    Ok(container)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::state::Layout;

    fn options(layout: Layout, image: [u32; 2], pixels_per_point: f64) -> ViewerBenchOptions {
        ViewerBenchOptions {
            dir: PathBuf::new(),
            size: 2048,
            width: image[0],
            height: image[1],
            pixels_per_point,
            frames: 120,
            pan_px: 4,
            jumps: 5,
            layout,
            layers: 3,
            model: None,
            model_iterations: 0,
        }
    }

    /// The chunks (z, y, x) of the box `lo..=hi` in voxels.
    fn chunks_of_box(lo: [i64; 3], hi: [i64; 3]) -> BTreeSet<[u64; 3]> {
        let c = |v: i64| v.clamp(0, 2047) as u64 / CHUNK;
        let mut out = BTreeSet::new();
        for z in c(lo[0])..=c(hi[0]) {
            for y in c(lo[1])..=c(hi[1]) {
                for x in c(lo[2])..=c(hi[2]) {
                    out.insert([z, y, x]);
                }
            }
        }
        out
    }

    #[test]
    fn the_chunks_written_are_those_each_panel_shows_with_its_neighbouring_slices() {
        let o = options(Layout::FourPanel, [1280, 800], 1.0);
        let centre = world_centre(&o, band_a(&o));
        let c = centre.0.map(|nm| (nm / VOXEL_NM as f64).floor() as i64);
        // 4panel at 1280×800: panels of 639×399 pixels, one voxel each; the pan adds
        // 480 voxels along x.
        let (w, h) = (639 / 2 + 1 + 1, 399 / 2 + 1 + 1);
        let pan = 480;
        let mut expected = BTreeSet::new();
        // xy: x across, y down; xz: x across, z down; yz: z across, y down, moving
        // along x with the pan.
        expected.extend(chunks_of_box(
            [c[0] - 1, c[1] - h, c[2] - w],
            [c[0] + 1, c[1] + h, c[2] + w + pan],
        ));
        expected.extend(chunks_of_box(
            [c[0] - h, c[1] - 1, c[2] - w],
            [c[0] + h, c[1] + 1, c[2] + w + pan],
        ));
        expected.extend(chunks_of_box(
            [c[0] - w, c[1] - h, c[2] - 1],
            [c[0] + w, c[1] + h, c[2] + 1 + pan],
        ));
        let got = chunks_at_level(&o, centre, pan as u64, 0);
        assert_eq!(got, expected);
        // The yz panel shows z across its 639 pixels: 11 chunks of z at its column.
        let zs: BTreeSet<u64> = got
            .iter()
            .filter(|i| i[2] == c[2] as u64 / CHUNK && i[1] == c[1] as u64 / CHUNK)
            .map(|i| i[0])
            .collect();
        assert_eq!(zs.len(), 11, "{zs:?}");
        // Voxels shown per point, not per pixel: a 4K screen at 2 pixels per point shows
        // what a 1920×1080 one does at 1.
        let hidpi = options(Layout::FourPanel, [3840, 2160], 2.0);
        let plain = options(Layout::FourPanel, [1920, 1080], 1.0);
        assert_eq!(chunks_of_run(&hidpi), chunks_of_run(&plain));
        assert!(chunks_of_run(&hidpi).len() > chunks_of_run(&o).len());
        // Every level of the 2048³ volume (2048 to 64 voxels a side) under the same
        // regions: the coarsest is one chunk.
        let run = chunks_of_run(&o);
        assert_eq!(levels(&o), 6);
        let level = |l: u32| -> BTreeSet<[u64; 3]> {
            run.iter()
                .filter(|(k, _)| *k == l)
                .map(|(_, i)| *i)
                .collect()
        };
        assert_eq!(level(5), [[0, 0, 0]].into_iter().collect());
        assert!(level(0).is_superset(&got));
        // A level-1 chunk covers 2³ level-0 chunks.
        let halved: BTreeSet<[u64; 3]> = level(0).iter().map(|i| i.map(|v| v / 2)).collect();
        assert_eq!(level(1), halved);
    }
}
