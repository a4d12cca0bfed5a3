//! `segno bench viewer`: frame times while panning three layers (raw uint8, labels uint64,
//! prediction float32) over a large multiscale volume, drawn offscreen with wgpu, and the
//! time from a jump to the first complete slice.
//!
//! The volume is declared at full size (default 2048³, six levels) but only the chunks the
//! benchmark's panels show are written (kept in `--dir`, each run adding those it lacks);
//! every other chunk is missing and reads as the fill value, as zarr defines.

mod threads;
mod volume;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use threads::ThreadCpu;

use crate::render::gpu::{GatheredPanel, Headless, RenderTimes};
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
    /// Physical pixels per screen point (2 for a 4K screen at 200 % scale): the view shows
    /// one voxel per point, as the app's zoom is per point.
    pub pixels_per_point: f64,
    /// Timed frames of panning.
    pub frames: usize,
    /// Screen points panned per frame (one voxel each).
    pub pan_px: u32,
    /// Jumps timed (each with an empty chunk cache).
    pub jumps: usize,
    /// Panel layout.
    pub layout: Layout,
    /// Layers drawn (1 to 3: raw, then labels, then the prediction).
    pub layers: usize,
    /// Pan once more with a model layer computing: the demo run of this project (made and
    /// trained when missing) over the volume's 8 nm raw level.
    pub model: Option<PathBuf>,
    /// Training iterations of that demo run.
    pub model_iterations: u64,
}

/// The panning frames again with a model layer computing blocks over the view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelFrames {
    /// The run and checkpoint computing.
    pub layer: String,
    /// Where it computed.
    pub device: String,
    /// Frame time percentiles in ms (50, 90, 99) while it computed.
    pub frame_ms: [f64; 3],
    /// Median time composing slices on the CPU, ms.
    pub compose_ms: f64,
    /// Median frame time against the same frames without the model layer (1 = no cost).
    pub frame_ratio: f64,
    /// Blocks computed while panning.
    pub blocks_computed: u64,
    /// Seconds per block it spent computing.
    pub secs_per_block: f64,
    /// Frames in which a block was being computed.
    pub frames_computing: usize,
}

/// The figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ViewerBenchReport {
    /// The adapter that drew.
    pub adapter: String,
    /// Panel layout.
    pub layout: Layout,
    /// Layers drawn.
    pub layers: usize,
    /// Image size in pixels.
    pub image: [u32; 2],
    /// Physical pixels per screen point (the view shows one voxel per point).
    pub pixels_per_point: f64,
    /// Pixels drawn per frame (all layers of all panels).
    pub pixels_per_frame: u64,
    /// The frames with slices gathered from chunks in GPU memory (the app's way).
    #[serde(flatten)]
    pub gathered: PathFrames,
    /// The same frames with slices composed on the CPU and uploaded.
    pub composed: PathFrames,
    /// Median frame time composed over gathered (> 1: gathering is faster).
    pub speedup: f64,
    /// The GPU chunk store after the gathered frames.
    pub gpu_store: crate::render::gpu_gather::GpuStoreStats,
    /// With `--model`: the same panning (gathered) with a model layer computing.
    pub model: Option<ModelFrames>,
}

/// Frame times of one way of drawing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PathFrames {
    /// Frame time percentiles in ms: 50, 90, 99.
    pub frame_ms: [f64; 3],
    /// The 95th percentile of frame times, ms.
    pub frame_p95_ms: f64,
    /// Median frames per second.
    pub median_fps: f64,
    /// Frames per second at the 95th percentile of frame times.
    pub p95_fps: f64,
    /// Median CPU time of the process per panning frame (all threads: composing or
    /// planning, and on a software rasteriser such as lavapipe also drawing), ms.
    pub cpu_ms: f64,
    /// Mean CPU time per panning frame by thread group: the app's own threads apart from
    /// the graphics driver's (`None` where the system does not tell per-thread times).
    pub cpu_threads_ms: Option<ThreadCpu>,
    /// Median time composing (or, gathered, planning) slices on the CPU, ms.
    pub compose_ms: f64,
    /// Median time uploading, drawing and reading back on the GPU, ms.
    pub gpu_ms: f64,
    /// Of which, median time until new textures and chunks were on the device, ms.
    pub gpu_upload_ms: f64,
    /// Of which, median time drawing (gathering and colouring), ms.
    pub gpu_draw_ms: f64,
    /// Median GPU time of a frame whose textures did not change (uniforms only), ms.
    pub gpu_static_ms: f64,
    /// Frames that still had pixels loading or coarser levels standing in (new chunks
    /// entering the view).
    pub incomplete_frames: usize,
    /// Reads of chunks while panning (at lower priority: see `ChunkCache::view_moved`);
    /// one read brings every slab of a chunk wanted along one axis.
    pub panning_chunks_read: u64,
    /// Chunks and slabs those reads brought.
    pub panning_slabs_read: u64,
    /// Time from the last panning frame to the first complete frame (the finest data
    /// read for the view where panning stopped), ms.
    pub pan_settled_ms: f64,
    /// Time from each jump to the first frame whose slices are complete (every pixel of
    /// every panel drawn from its chosen level), ms.
    pub jump_ms: Vec<f64>,
    /// Time from each jump between two places already read (where panning ended and the
    /// jumps' destination: their chunks in the CPU cache and in GPU memory), each from a
    /// view at rest, to the first complete frame, ms.
    pub jump_cached_ms: Vec<f64>,
    /// Time from each jump until the chunk cache was idle as well: also the neighbouring
    /// slices read for scrolling and, in the 4-panel layout, the 3D panel's volume, ms.
    pub jump_settled_ms: Vec<f64>,
    /// Where the GPU time of a frame in which nothing changed goes.
    pub unchanged_frame: UnchangedFrame,
    /// Median time per panning frame spent on the 3D panel (4panel; copying its image:
    /// as in the app, its planes wait until the view has been still for
    /// `SettledPlanes::SETTLE`), included in the GPU time, ms.
    pub three_d_ms: f64,
    /// Time drawing the 3D panel's planes over its cast image once the view settled, ms.
    pub three_d_settled_ms: f64,
    /// Time making the 3D panel's first image (uploading its volumes and casting the
    /// rays), ms.
    pub three_d_first_ms: f64,
}

/// The GPU time of a frame in which nothing changed, by step (medians of 7, ms).
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnchangedFrame {
    /// Uploading the uniforms (the textures are unchanged).
    pub upload_ms: f64,
    /// Drawing: the panels' colours are kept from the last frame, so only shown again.
    pub draw_ms: f64,
    /// Copying the image back (a benchmark's cost; the app's window never reads back).
    pub readback_ms: f64,
    /// Drawing when the look changed (contrast, hover, selection): every layer of every
    /// pixel coloured anew.
    pub recolour_ms: f64,
    /// Colouring every pixel anew with the first layer only, no overlay.
    pub draw_one_layer_ms: f64,
    /// Colouring every pixel anew with no layer (the passes and the full-panel triangle
    /// alone).
    pub draw_no_layer_ms: f64,
    /// The render pass clearing the image, nothing drawn.
    pub clear_only_ms: f64,
}

/// A panel to render: its rectangle, uniforms and textures.
type Panel = (
    [u32; 4],
    crate::render::shade::GpuUniforms,
    std::sync::Arc<crate::render::shade::PanelTextures>,
);

fn world_centre(options: &ViewerBenchOptions, band_z: u64) -> WorldNm {
    let c = (options.size / 2) as f64 * VOXEL_NM as f64 + 2.0;
    WorldNm([
        (band_z * CHUNK + CHUNK / 2) as f64 * VOXEL_NM as f64 + 2.0,
        c,
        c / 2.0,
    ])
}

fn band_a(options: &ViewerBenchOptions) -> u64 {
    options.size / CHUNK / 2
}

fn band_b(options: &ViewerBenchOptions) -> u64 {
    (options.size / CHUNK * 3 / 4).min(options.size / CHUNK - 1)
}

/// The benchmark's view of `container` at `centre`: one voxel per screen point.
fn view(container: &Path, centre: WorldNm, options: &ViewerBenchOptions) -> ViewState {
    let layer = |name: &str, settings: LayerSettings| LayerState {
        name: name.into(),
        source: container.join(name),
        visible: true,
        settings,
        model: None,
    };
    ViewState {
        position_nm: centre,
        // Per physical pixel, as the app's panels compute it from its zoom per point.
        zoom_nm_per_px: VOXEL_NM as f64 / options.pixels_per_point,
        orientation: crate::render::orientation::Orientation::IDENTITY,
        layout: options.layout,
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
        ]
        .into_iter()
        .take(options.layers)
        .collect(),
        ..ViewState::default()
    }
}

/// CPU time the process has used (user and system, all threads), ms.
fn process_cpu_ms() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes the struct it is given; RUSAGE_SELF is always valid.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    if !ok {
        return f64::NAN;
    }
    // SAFETY: initialised by the successful call above.
    let u = unsafe { usage.assume_init() };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(u.ru_utime) + ms(u.ru_stime)
}

/// The `p` quantile of `sorted` (NaN when empty).
pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
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
    if !(1..=3).contains(&options.layers) {
        return Err(format!(
            "--layers must be 1, 2 or 3, got {}",
            options.layers
        ));
    }
    if options.size < 2 * CHUNK || !options.size.is_power_of_two() {
        return Err(format!(
            "--size must be a power of two of at least {}, got {}",
            2 * CHUNK,
            options.size
        ));
    }
    let container = volume::ensure_volume(options, out)?;
    let gpu = Headless::new().map_err(|e| e.to_string())?;
    let (w, h) = (options.width, options.height);
    let rects = super::screenshot::layout_rects(options.layout, w, h);
    let planes: Vec<(Plane, [u32; 4])> = rects
        .iter()
        .filter_map(|(p, r)| p.map(|p| (p, *r)))
        .collect();
    let pixels: u64 = planes
        .iter()
        .map(|(_, r)| u64::from(r[2]) * u64::from(r[3]) * options.layers as u64)
        .sum();
    let three_d = rects.iter().find(|(p, _)| p.is_none()).map(|(_, r)| *r);
    let run = |how: Way, out: &mut dyn std::io::Write| {
        let _ = writeln!(out, "bench viewer: panning, slices {} …", how.label());
        path_frames(options, &container, &gpu, (&planes, three_d), how, out)
    };
    let (gathered, model) = run(Way::Gathered, out)?;
    let gpu_store = gpu.gpu_store_stats();
    let (composed, _) = run(Way::Composed, out)?;
    Ok(ViewerBenchReport {
        adapter: gpu.adapter.clone(),
        layout: options.layout,
        layers: options.layers,
        image: [w, h],
        pixels_per_point: options.pixels_per_point,
        pixels_per_frame: pixels,
        speedup: composed.frame_ms[0] / gathered.frame_ms[0],
        gathered,
        composed,
        gpu_store,
        model,
    })
}

/// How the panels' slices reach the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// Gathered from chunks in GPU memory.
    Gathered,
    /// Composed on the CPU and uploaded.
    Composed,
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::Gathered => "gathered from chunks in GPU memory",
            Way::Composed => "composed on the CPU",
        }
    }
}

/// One frame's panels, either way.
enum Panels {
    Composed(Vec<Panel>),
    Gathered(Vec<GatheredPanel>),
}

impl Panels {
    /// The panels of `viewer`'s view at `planes`' rectangles.
    fn of(viewer: &mut Viewer, planes: &[(Plane, [u32; 4])], how: Way) -> Panels {
        let origin = |u: &mut crate::render::shade::GpuUniforms, r: &[u32; 4]| {
            u.origin_size[0] = r[0] as f32;
            u.origin_size[1] = r[1] as f32;
        };
        // One frame as the app draws it: every panel brought up to date, then the chunks
        // they all want asked for together.
        let sizes: Vec<(Plane, [u32; 2])> =
            planes.iter().map(|(p, r)| (*p, [r[2], r[3]])).collect();
        viewer.refresh_panels(&sizes);
        match how {
            Way::Composed => Panels::Composed(
                planes
                    .iter()
                    .map(|(plane, r)| {
                        let (mut u, t) = viewer.panel_upload_or_blank(*plane);
                        origin(&mut u, r);
                        (*r, u, t)
                    })
                    .collect(),
            ),
            Way::Gathered => Panels::Gathered(
                planes
                    .iter()
                    .filter_map(|(plane, r)| {
                        let (mut u, content) = viewer.panel_gathered(*plane)?;
                        origin(&mut u, r);
                        Some(GatheredPanel {
                            rect: *r,
                            uniforms: u,
                            content,
                        })
                    })
                    .collect(),
            ),
        }
    }

    /// These panels drawing only their first `n` layers (all with `None`), without an
    /// overlay when cut; `nudge` goes into a uniform the shader does not read, so that
    /// panels drawn with a new nudge are coloured anew although they look the same.
    fn with_layers(&self, n: Option<u32>, nudge: f32) -> Panels {
        let cut = |u: &crate::render::shade::GpuUniforms| {
            let mut u = *u;
            if let Some(n) = n {
                u.counts[0] = u.counts[0].min(n);
                u.counts[1] = 0;
            }
            u.cross[3] = nudge;
            u
        };
        match self {
            Panels::Composed(p) => {
                Panels::Composed(p.iter().map(|(r, u, t)| (*r, cut(u), t.clone())).collect())
            }
            Panels::Gathered(p) => Panels::Gathered(
                p.iter()
                    .map(|g| GatheredPanel {
                        rect: g.rect,
                        uniforms: cut(&g.uniforms),
                        content: g.content.clone(),
                    })
                    .collect(),
            ),
        }
    }

    fn render(&self, gpu: &Headless, w: u32, h: u32) -> Result<RenderTimes, String> {
        match self {
            Panels::Composed(p) => gpu.render_timed(w, h, p, true),
            Panels::Gathered(p) => gpu.render_gathered(w, h, p, true),
        }
        .map(|(_, t)| t)
        .map_err(|e| e.to_string())
    }
}

/// A cross-section panel and its rectangle `[x, y, w, h]` in the image.
type PanelRect = (Plane, [u32; 4]);

/// Pans, profiles an unchanged frame and jumps, with slices reaching the GPU `how`; with
/// `--model` (gathered only) pans again with a model layer computing.
fn path_frames(
    options: &ViewerBenchOptions,
    container: &Path,
    gpu: &Headless,
    (planes, three_d): (&[PanelRect], Option<[u32; 4]>),
    how: Way,
    out: &mut dyn std::io::Write,
) -> Result<(PathFrames, Option<ModelFrames>), String> {
    let (w, h) = (options.width, options.height);
    let steps = std::cell::RefCell::new(Vec::new());
    // The 3D panel as the app draws it: its volumes read once, its image made at most
    // VOLUME_MAX_PX a side each frame (the planes move with the position; the camera
    // does not, so the rays are cast once).
    let volume = std::cell::RefCell::new(None::<crate::render::volume_render::VolumeDraw>);
    let three_d_times = std::cell::RefCell::new(Vec::new());
    let settle = std::cell::RefCell::new(crate::render::volume_render::SettledPlanes::default());
    let draw_3d = |viewer: &Viewer| -> Result<(), String> {
        let Some(r) = three_d else {
            return Ok(());
        };
        let size = crate::render::gpu_volume::image_size(
            r[2] as f32,
            r[3] as f32,
            crate::render::gpu_volume::VOLUME_MAX_PX,
        );
        let mut cached = volume.borrow_mut();
        if cached.is_none() {
            *cached = viewer
                .three_d_draw_now([r[2], r[3]], [size.0, size.1])
                .transpose()?;
        }
        if let Some(d) = cached.as_mut() {
            // As the app does: the planes move once the view has been still.
            let planes = (viewer.state.position_nm.0, viewer.state.orientation);
            d.planes = Some(settle.borrow_mut().update(planes, Instant::now()).0);
            let t = Instant::now();
            gpu.render_volume(d, size.0, size.1)
                .map_err(|e| e.to_string())?;
            three_d_times
                .borrow_mut()
                .push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(())
    };
    let draw = |viewer: &mut Viewer| -> Result<(f64, f64, bool), String> {
        let t0 = Instant::now();
        let panels = Panels::of(viewer, planes, how);
        let complete = viewer.slices_complete();
        let t1 = Instant::now();
        let times = panels.render(gpu, w, h)?;
        draw_3d(viewer)?;
        steps.borrow_mut().push(times);
        let t2 = Instant::now();
        Ok((
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            complete,
        ))
    };
    let viewer_for = |centre: WorldNm| {
        let mut v = Viewer::default();
        v.use_gpu(true, how == Way::Gathered);
        v.set_state(view(container, centre, options));
        v
    };
    // Panning over band A, after its first view has loaded.
    let mut viewer = viewer_for(world_centre(options, band_a(options)));
    load_view(&mut viewer, &draw)?;
    let (mut frames, mut compose, mut gpu_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu = Vec::new();
    let mut incomplete = 0;
    steps.borrow_mut().clear();
    let read_before = viewer.cache().stats();
    let threads_before = ThreadCpu::now();
    for _ in 0..options.frames {
        viewer.state.position_nm.0[2] += f64::from(options.pan_px) * VOXEL_NM as f64;
        let t = Instant::now();
        let cpu0 = process_cpu_ms();
        let (c, g, complete) = draw(&mut viewer)?;
        frames.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.push(process_cpu_ms() - cpu0);
        compose.push(c);
        gpu_times.push(g);
        if !complete {
            incomplete += 1;
        }
    }
    let read_after = viewer.cache().stats();
    let panning_chunks_read = read_after.reads - read_before.reads;
    let panning_slabs_read = read_after.completed - read_before.completed;
    let panning: Vec<RenderTimes> = steps.borrow().clone();
    // The main thread's copying the image out stands in for presenting it: apart.
    let readback_cpu_ms: f64 = panning.iter().map(|t| t.readback_cpu_ms).sum();
    let cpu_threads_ms = threads_before.zip(ThreadCpu::now()).map(|(before, after)| {
        after
            .with_read_back(readback_cpu_ms)
            .per_frame_since(before, options.frames)
    });
    let three_d_all = three_d_times.borrow().clone();
    let three_d_ms = if three_d_all.len() > options.frames {
        percentile_of(&three_d_all[three_d_all.len() - options.frames..], 0.5)
    } else {
        0.0
    };
    let three_d_first_ms = three_d_all.first().copied().unwrap_or(0.0);
    // Where panning stopped: drawn as the app does until its slices are complete.
    let pan_settled_ms = ms_to_complete(&mut viewer, &draw, "the view where panning stopped")?;
    // The planes drawn over the cast image once the view has been still.
    let mut three_d_settled_ms = 0.0;
    if three_d.is_some() {
        std::thread::sleep(crate::render::volume_render::SettledPlanes::SETTLE);
        draw(&mut viewer)?;
        three_d_settled_ms = three_d_times.borrow().last().copied().unwrap_or(0.0);
    }
    // Frames with nothing new: what drawing alone costs.
    let mut statics = Vec::new();
    for _ in 0..10 {
        let (_, g, _) = draw(&mut viewer)?;
        statics.push(g);
    }
    // Where an unchanged frame's GPU time goes: uploads, drawing (with every layer, one
    // layer, none: the cost per layer-pixel and of the pass alone) and the read back.
    let panels = Panels::of(&mut viewer, planes, how);
    // Kept colours are shown again unless `recolour`: then every run colours anew.
    let profile =
        |panels: &Panels, layers: Option<u32>, recolour: bool| -> Result<RenderTimes, String> {
            let mut runs = Vec::new();
            for i in 0..7 {
                let nudge = if recolour { i as f32 + 1.0 } else { 0.0 };
                runs.push(panels.with_layers(layers, nudge).render(gpu, w, h)?);
            }
            let median = |f: fn(&RenderTimes) -> f64| {
                percentile_of(&runs.iter().map(f).collect::<Vec<_>>(), 0.5)
            };
            Ok(RenderTimes {
                upload_ms: median(|t| t.upload_ms),
                draw_ms: median(|t| t.draw_ms),
                readback_ms: median(|t| t.readback_ms),
                readback_cpu_ms: median(|t| t.readback_cpu_ms),
            })
        };
    let unchanged = profile(&panels, None, false)?;
    let unchanged_frame = UnchangedFrame {
        upload_ms: unchanged.upload_ms,
        draw_ms: unchanged.draw_ms,
        readback_ms: unchanged.readback_ms,
        recolour_ms: profile(&panels, None, true)?.draw_ms,
        draw_one_layer_ms: profile(&panels, Some(1), true)?.draw_ms,
        draw_no_layer_ms: profile(&panels, Some(0), true)?.draw_ms,
        clear_only_ms: profile(&Panels::Composed(Vec::new()), None, false)?.draw_ms,
    };
    let model = match (&options.model, how) {
        (Some(project), Way::Gathered) => Some(model_frames(
            options,
            container,
            project,
            &draw,
            percentile_of(&frames, 0.5),
            out,
        )?),
        _ => None,
    };
    // Jumps to band B, each with an empty chunk cache.
    let mut jump_ms = Vec::new();
    let mut jump_settled_ms = Vec::new();
    for _ in 0..options.jumps {
        let mut v = viewer_for(world_centre(options, band_b(options)));
        let t = Instant::now();
        let mut complete_ms = None;
        loop {
            let (_, _, complete) = draw(&mut v)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if complete && complete_ms.is_none() {
                complete_ms = Some(ms);
            }
            if complete && !v.loading() {
                jump_settled_ms.push(ms);
                break;
            }
            if t.elapsed() > Duration::from_secs(60) {
                return Err("a jump did not complete within 60 s".into());
            }
            // As the app does: draw again as soon as chunks arrived.
            wait_for_chunks(&v, Duration::from_millis(100));
        }
        jump_ms.push(complete_ms.unwrap_or_default());
    }
    // Jumps back and forth between where panning ended and band B, both read by now.
    let mut jump_cached_ms = Vec::new();
    let ends = [
        viewer.state.position_nm,
        world_centre(options, band_b(options)),
    ];
    viewer.state.position_nm = ends[1];
    load_view(&mut viewer, &draw)?;
    for i in 0..options.jumps {
        // From a view at rest, as a click on a bookmark would jump.
        std::thread::sleep(crate::render::cache::VIEW_MOVING_HOLD);
        viewer.state.position_nm = ends[i % 2];
        jump_cached_ms.push(ms_to_complete(
            &mut viewer,
            &draw,
            "a jump to a place already read",
        )?);
    }
    let median = percentile_of(&frames, 0.5);
    let p95 = percentile_of(&frames, 0.95);
    Ok((
        PathFrames {
            frame_ms: [
                median,
                percentile_of(&frames, 0.9),
                percentile_of(&frames, 0.99),
            ],
            frame_p95_ms: p95,
            median_fps: 1e3 / median,
            p95_fps: 1e3 / p95,
            cpu_ms: percentile_of(&cpu, 0.5),
            cpu_threads_ms,
            compose_ms: percentile_of(&compose, 0.5),
            gpu_ms: percentile_of(&gpu_times, 0.5),
            gpu_upload_ms: percentile_of(
                &panning.iter().map(|t| t.upload_ms).collect::<Vec<_>>(),
                0.5,
            ),
            gpu_draw_ms: percentile_of(&panning.iter().map(|t| t.draw_ms).collect::<Vec<_>>(), 0.5),
            gpu_static_ms: percentile_of(&statics, 0.5),
            incomplete_frames: incomplete,
            panning_chunks_read,
            panning_slabs_read,
            pan_settled_ms,
            jump_ms,
            jump_cached_ms,
            jump_settled_ms,
            unchanged_frame,
            three_d_ms,
            three_d_first_ms,
            three_d_settled_ms,
        },
        model,
    ))
}

/// Draws `viewer` as the app does (again whenever chunks arrived) from now until its
/// slices are complete; the time that took, ms (`what` did not complete within 60 s: an
/// error).
fn ms_to_complete(viewer: &mut Viewer, draw: &Draw<'_>, what: &str) -> Result<f64, String> {
    let t = Instant::now();
    loop {
        let (_, _, complete) = draw(viewer)?;
        if complete {
            return Ok(t.elapsed().as_secs_f64() * 1e3);
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(format!("{what} did not complete within 60 s"));
        }
        wait_for_chunks(viewer, Duration::from_millis(100));
    }
}

/// Waits until `viewer`'s cache has read another chunk or has nothing left to read, or
/// `timeout` passed (the app repaints when a chunk arrives).
fn wait_for_chunks(viewer: &Viewer, timeout: Duration) {
    let start = Instant::now();
    let seen = viewer.cache().stats().completed;
    while start.elapsed() < timeout {
        let st = viewer.cache().stats();
        if st.completed != seen || (st.queued == 0 && st.in_flight == 0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Draws `viewer` until its view has loaded completely (300 s at most).
fn load_view(viewer: &mut Viewer, draw: &Draw<'_>) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let (_, _, complete) = draw(viewer)?;
        if complete && !viewer.loading() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(300) {
            return Err("the first view did not load within 300 s".into());
        }
        viewer.cache().wait_idle(Duration::from_millis(100));
    }
}

/// The `p` quantile of unsorted `v`.
fn percentile_of(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    percentile(&v, p)
}

/// A drawing function: composes and draws a frame, returning compose ms, GPU ms and
/// whether it was complete.
type Draw<'a> = dyn Fn(&mut Viewer) -> Result<(f64, f64, bool), String> + 'a;

/// Pans over band A again with a model layer (the demo run of `project`, trained when
/// missing) computing over the raw data's 8 nm level, and times the frames.
fn model_frames(
    options: &ViewerBenchOptions,
    container: &Path,
    project: &Path,
    draw: &Draw<'_>,
    median_without: f64,
    out: &mut dyn std::io::Write,
) -> Result<ModelFrames, String> {
    let project = crate::ops::job::absolute(project);
    let demo = super::live_bench::prepare_demo(
        "model layer's demo project",
        &project,
        options.model_iterations,
        64,
        out,
    )?;
    let mut viewer = Viewer::default();
    viewer.use_gpu(true, true);
    viewer.set_state(view(
        container,
        world_centre(options, band_a(options)),
        options,
    ));
    load_view(&mut viewer, &draw)?;
    // The demo network reads 8 nm voxels: the volume's second level.
    viewer.add_model_layer(crate::ops::live::LiveSource {
        project,
        run: demo.run.clone(),
        iteration: None,
        raw: container.join("raw/s1"),
        segmentation: None,
    });
    if !viewer.wait_models(Duration::from_secs(120)) {
        return Err("the model layer's network did not open within 120 s".into());
    }
    let i = viewer.state.layers.len() - 1;
    let live = viewer
        .live_prediction(i)
        .cloned()
        .ok_or_else(|| viewer.layer_status(i))?;
    let (mut frames, mut compose) = (Vec::new(), Vec::new());
    let mut computing = 0;
    let before = live.stats();
    for _ in 0..options.frames {
        viewer.state.position_nm.0[2] += f64::from(options.pan_px) * VOXEL_NM as f64;
        let t = Instant::now();
        let (c, _, _) = draw(&mut viewer)?;
        frames.push(t.elapsed().as_secs_f64() * 1e3);
        compose.push(c);
        if live.stats().in_flight > 0 {
            computing += 1;
        }
    }
    let after = live.stats();
    let blocks = after.computed - before.computed;
    frames.sort_by(|a, b| a.total_cmp(b));
    compose.sort_by(|a, b| a.total_cmp(b));
    let median = percentile(&frames, 0.5);
    Ok(ModelFrames {
        layer: viewer.state.layers[i].name.clone(),
        device: live.device_label(),
        frame_ms: [median, percentile(&frames, 0.9), percentile(&frames, 0.99)],
        compose_ms: percentile(&compose, 0.5),
        frame_ratio: median / median_without,
        blocks_computed: blocks,
        secs_per_block: (after.compute_secs - before.compute_secs) / blocks.max(1) as f64,
        frames_computing: computing,
    })
}
