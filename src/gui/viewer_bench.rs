//! `segno bench viewer`: frame times while panning three layers (raw uint8, labels uint64,
//! prediction float32) over a large multiscale volume, drawn offscreen with wgpu, and the
//! time from a jump to the first complete slice.
//!
//! The volume is declared at full size (default 2048³, six levels) but only the chunks the
//! benchmark looks at are written (once, kept in `--dir`); every other chunk is missing and
//! reads as the fill value, as zarr defines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ndarray::ArrayD;
use rayon::prelude::*;

use crate::array::write::{self, ArraySpec, ArrayWriter, Compression, WriteMode};
use crate::array::{ArrayData, DataType};
use crate::geometry::{Coordinate, Roi};
use crate::render::gpu::Headless;
use crate::render::layer::WorldNm;
use crate::render::slice::Plane;
use crate::render::state::{
    ImageSettings, LayerSettings, LayerState, Layout, PredictionSettings, SegmentationSettings,
    ViewState,
};

use super::viewer::Viewer;

/// Voxel size of the benchmark volume's finest level, in nm.
const VOXEL_NM: i64 = 4;
/// Chunk edge in voxels.
const CHUNK: u64 = 64;

/// What to measure.
#[derive(Debug, Clone)]
pub struct ViewerBenchOptions {
    /// Where the volume is kept between runs.
    pub dir: PathBuf,
    /// Edge of the volume in voxels (finest level).
    pub size: u64,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Timed frames of panning.
    pub frames: usize,
    /// Pixels panned per frame.
    pub pan_px: u32,
    /// Jumps timed (each with an empty chunk cache).
    pub jumps: usize,
    /// Panel layout.
    pub layout: Layout,
}

/// The figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ViewerBenchReport {
    /// The adapter that drew.
    pub adapter: String,
    /// Frame time percentiles in ms: 50, 90, 99.
    pub frame_ms: [f64; 3],
    /// Median frames per second.
    pub median_fps: f64,
    /// Median time composing slices on the CPU, ms.
    pub compose_ms: f64,
    /// Median time uploading, drawing and reading back on the GPU, ms.
    pub gpu_ms: f64,
    /// Median GPU time of a frame whose textures did not change (uniforms only), ms.
    pub gpu_static_ms: f64,
    /// Frames that still had pixels loading (new chunks entering the view).
    pub incomplete_frames: usize,
    /// Time from each jump to the first complete slice, ms.
    pub jump_ms: Vec<f64>,
    /// Pixels drawn per frame (all layers of all panels).
    pub pixels_per_frame: u64,
}

fn world_centre(options: &ViewerBenchOptions, band_z: u64) -> WorldNm {
    let c = (options.size / 2) as f64 * VOXEL_NM as f64 + 2.0;
    WorldNm([
        (band_z * CHUNK + CHUNK / 2) as f64 * VOXEL_NM as f64 + 2.0,
        c,
        c / 2.0,
    ])
}

/// The chunk indices (z, y, x) an `w`×`h` xy view at `centre` needs, with `pan_px` more
/// to the right.
fn chunks_for(centre: WorldNm, w: u32, h: u32, pan_px: u32, size: u64) -> Vec<[u64; 3]> {
    let vox = |nm: f64| (nm / VOXEL_NM as f64).floor() as i64;
    let z = vox(centre.0[0]) as u64 / CHUNK;
    let y0 = vox(centre.0[1]) - i64::from(h) / 2 - 1;
    let y1 = vox(centre.0[1]) + i64::from(h) / 2 + 1;
    let x0 = vox(centre.0[2]) - i64::from(w) / 2 - 1;
    let x1 = vox(centre.0[2]) + i64::from(w) / 2 + i64::from(pan_px) + 1;
    let clamp = |v: i64| (v.max(0) as u64).min(size - 1) / CHUNK;
    let mut out = Vec::new();
    for cy in clamp(y0)..=clamp(y1) {
        for cx in clamp(x0)..=clamp(x1) {
            out.push([z, cy, cx]);
        }
    }
    out
}

fn hash(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Writes the benchmark volume's chunks under `dir` (skipped when already complete).
fn ensure_volume(
    options: &ViewerBenchOptions,
    out: &mut dyn std::io::Write,
) -> Result<PathBuf, String> {
    let container = options.dir.join("volume.zarr");
    let (a, b) = (band_a(options), band_b(options));
    let mut chunks = chunks_for(
        world_centre(options, a),
        options.width,
        options.height,
        options.pan_px * options.frames as u32,
        options.size,
    );
    chunks.extend(chunks_for(
        world_centre(options, b),
        options.width,
        options.height,
        0,
        options.size,
    ));
    let marker = container.join("segno-bench-complete.json");
    let signature = serde_json::json!({"size": options.size, "chunks": chunks.len(),
        "width": options.width, "height": options.height, "pan": options.pan_px * options.frames as u32});
    if std::fs::read_to_string(&marker)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        == Some(signature.clone())
    {
        return Ok(container);
    }
    let _ = writeln!(
        out,
        "writing the {}³ benchmark volume ({} chunks of {CHUNK}³ per array) to {} …",
        options.size,
        chunks.len(),
        container.display()
    );
    let n = i64::try_from(options.size).map_err(|e| e.to_string())? * VOXEL_NM;
    let roi = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([n, n, n]))
        .map_err(|e| e.to_string())?;
    let vs = Coordinate::from([VOXEL_NM; 3]);
    let levels = (options.size / CHUNK).ilog2() as usize + 1;
    let make =
        |name: &str, dt: DataType, compression: Compression| -> Result<ArrayWriter, String> {
            let mut spec = ArraySpec::new(dt, roi, vs, None);
            spec.chunk_voxels = Some(vec![CHUNK; 3]);
            spec.compression = compression;
            let mut w = write::create_image(&container, name, &spec, levels, WriteMode::Overwrite)
                .map_err(|e| e.to_string())?;
            Ok(w.remove(0))
        };
    let raw = make("raw", DataType::U8, Compression::BloscLz4)?;
    let labels = make("labels", DataType::U64, Compression::BloscLz4)?;
    let pred = make("prediction", DataType::F32, Compression::BloscLz4)?;
    let shape = vec![CHUNK as usize; 3];
    chunks
        .par_iter()
        .try_for_each(|idx| -> Result<(), String> {
            let origin = idx.map(|i| i * CHUNK);
            let at = |i: &ndarray::IxDyn| {
                [
                    origin[0] + i[0] as u64,
                    origin[1] + i[1] as u64,
                    origin[2] + i[2] as u64,
                ]
            };
            let r = ArrayD::from_shape_fn(shape.clone(), |i| {
                let [z, y, x] = at(&i);
                let cell = hash((z / 48) << 40 | (y / 48) << 20 | (x / 48));
                ((cell % 160) as u8 + 40).wrapping_add((hash(z * 7919 + y * 31 + x) % 24) as u8)
            });
            raw.write_chunk(idx, &ArrayData::U8(r))
                .map_err(|e| e.to_string())?;
            let l = ArrayD::from_shape_fn(shape.clone(), |i| {
                let [z, y, x] = at(&i);
                hash((z / 48) << 40 | (y / 48) << 20 | (x / 48)) | 1 << 62
            });
            labels
                .write_chunk(idx, &ArrayData::U64(l))
                .map_err(|e| e.to_string())?;
            let p = ArrayD::from_shape_fn(shape.clone(), |i| {
                let [z, y, x] = at(&i);
                ((x as f32 / 23.0).sin() * (y as f32 / 17.0).cos() + (z as f32 / 31.0).sin()) * 0.25
                    + 0.5
            });
            pred.write_chunk(idx, &ArrayData::F32(p))
                .map_err(|e| e.to_string())
        })?;
    crate::store::atomic::write_atomic(&marker, signature.to_string().as_bytes(), true)
        .map_err(|e| e.to_string())?;
    Ok(container)
}

fn band_a(options: &ViewerBenchOptions) -> u64 {
    options.size / CHUNK / 2
}

fn band_b(options: &ViewerBenchOptions) -> u64 {
    (options.size / CHUNK * 3 / 4).min(options.size / CHUNK - 1)
}

fn view(container: &Path, centre: WorldNm, layout: Layout) -> ViewState {
    let layer = |name: &str, settings: LayerSettings| LayerState {
        name: name.into(),
        source: container.join(name),
        visible: true,
        settings,
        model: None,
    };
    ViewState {
        position_nm: centre,
        zoom_nm_per_px: VOXEL_NM as f64,
        layout,
        layers: vec![
            layer("raw", LayerSettings::Image(ImageSettings::default())),
            layer(
                "labels",
                LayerSettings::Segmentation(SegmentationSettings::default()),
            ),
            layer(
                "prediction",
                LayerSettings::Prediction(PredictionSettings::default()),
            ),
        ],
        ..ViewState::default()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the benchmark.
pub fn bench_viewer(
    options: &ViewerBenchOptions,
    out: &mut dyn std::io::Write,
) -> Result<ViewerBenchReport, String> {
    if options.size < 2 * CHUNK || !options.size.is_power_of_two() {
        return Err(format!(
            "--size must be a power of two of at least {}, got {}",
            2 * CHUNK,
            options.size
        ));
    }
    let container = ensure_volume(options, out)?;
    let gpu = Headless::new().map_err(|e| e.to_string())?;
    let (w, h) = (options.width, options.height);
    let rects = super::screenshot::layout_rects(options.layout, w, h);
    let planes: Vec<(Plane, [u32; 4])> = rects
        .iter()
        .filter_map(|(p, r)| p.map(|p| (p, *r)))
        .collect();
    let draw = |viewer: &mut Viewer| -> Result<(f64, f64, bool), String> {
        let t0 = Instant::now();
        let mut panels = Vec::new();
        for (plane, r) in &planes {
            let (mut u, t) = viewer.compose_panel(*plane, [r[2], r[3]]);
            u.origin_size[0] = r[0] as f32;
            u.origin_size[1] = r[1] as f32;
            panels.push((*r, u, t));
        }
        let complete = !viewer.loading();
        let t1 = Instant::now();
        gpu.render(w, h, &panels).map_err(|e| e.to_string())?;
        let t2 = Instant::now();
        Ok((
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            complete,
        ))
    };
    // Panning over band A, after its first view has loaded.
    let mut viewer = Viewer::default();
    viewer.set_state(view(
        &container,
        world_centre(options, band_a(options)),
        options.layout,
    ));
    let start = Instant::now();
    loop {
        let (_, _, complete) = draw(&mut viewer)?;
        if complete {
            break;
        }
        if start.elapsed() > Duration::from_secs(300) {
            return Err("the first view did not load within 300 s".into());
        }
        viewer.cache().wait_idle(Duration::from_millis(100));
    }
    let (mut frames, mut compose, mut gpu_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut incomplete = 0;
    for _ in 0..options.frames {
        viewer.state.position_nm.0[2] += f64::from(options.pan_px) * VOXEL_NM as f64;
        let t = Instant::now();
        let (c, g, complete) = draw(&mut viewer)?;
        frames.push(t.elapsed().as_secs_f64() * 1e3);
        compose.push(c);
        gpu_times.push(g);
        if !complete {
            incomplete += 1;
        }
    }
    // Frames with nothing new: what drawing alone costs.
    let mut statics = Vec::new();
    for _ in 0..10 {
        let (_, g, _) = draw(&mut viewer)?;
        statics.push(g);
    }
    statics.sort_by(|a, b| a.total_cmp(b));
    // Jumps to band B, each with an empty chunk cache.
    let mut jump_ms = Vec::new();
    for _ in 0..options.jumps {
        let mut v = Viewer::default();
        v.set_state(view(
            &container,
            world_centre(options, band_b(options)),
            options.layout,
        ));
        let t = Instant::now();
        loop {
            let (_, _, complete) = draw(&mut v)?;
            if complete {
                break;
            }
            if t.elapsed() > Duration::from_secs(60) {
                return Err("a jump did not complete within 60 s".into());
            }
            // Draw again once the requested chunks are in (or after 100 ms).
            v.cache().wait_idle(Duration::from_millis(100));
        }
        jump_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let sort = |v: &mut Vec<f64>| v.sort_by(|a, b| a.total_cmp(b));
    sort(&mut frames);
    sort(&mut compose);
    sort(&mut gpu_times);
    let median = percentile(&frames, 0.5);
    let pixels: u64 = planes
        .iter()
        .map(|(_, r)| u64::from(r[2]) * u64::from(r[3]) * 3)
        .sum();
    Ok(ViewerBenchReport {
        adapter: gpu.adapter.clone(),
        frame_ms: [median, percentile(&frames, 0.9), percentile(&frames, 0.99)],
        median_fps: 1e3 / median,
        compose_ms: percentile(&compose, 0.5),
        gpu_ms: percentile(&gpu_times, 0.5),
        gpu_static_ms: percentile(&statics, 0.5),
        incomplete_frames: incomplete,
        jump_ms,
        pixels_per_frame: pixels,
    })
}
