//! `segno bench live`: a model layer on the demo network in the viewer — the time from
//! adding it to its first drawn block and to a fully predicted xy panel, the blocks per
//! second it computes while the viewer draws against the network's pure forward rate on
//! the same blocks, and the panel's compose time per frame while blocks compute.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::ops::live::LiveSource;
use crate::render::layer::WorldNm;
use crate::render::slice::{PixelValue, Plane};

use super::viewer::Viewer;
use super::viewer_bench::percentile;

/// What to measure.
#[derive(Debug, Clone)]
pub struct LiveBenchOptions {
    /// The demo project (created and trained when missing, reused otherwise).
    pub dir: PathBuf,
    /// Edge of the demo volume in voxels.
    pub size: usize,
    /// Training iterations of the demo run.
    pub iterations: u64,
    /// The xy panel's size in pixels.
    pub panel: [u32; 2],
}

/// The figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveBenchReport {
    /// The run and checkpoint computing.
    pub run: String,
    /// Its checkpoint iteration.
    pub iteration: u64,
    /// Where it computed.
    pub device: String,
    /// Blocks in the network's output grid over the volume.
    pub blocks_total: u64,
    /// Blocks computed to fill the panel.
    pub blocks_computed: u64,
    /// From adding the layer to its network being open, ms.
    pub open_ms: f64,
    /// From adding the layer to its first drawn block, ms.
    pub first_block_ms: f64,
    /// From adding the layer to a fully predicted panel, ms.
    pub full_panel_ms: f64,
    /// Blocks per second from the network being open to the full panel.
    pub viewer_blocks_per_sec: f64,
    /// Blocks per second of the network's forward pass alone on the same blocks (inputs
    /// read beforehand).
    pub forward_blocks_per_sec: f64,
    /// `viewer_blocks_per_sec / forward_blocks_per_sec` (goal ≥ 0.9).
    pub ratio: f64,
    /// Seconds per block the layer spent computing (reading inputs and the forward pass),
    /// averaged over the blocks it computed in the viewer.
    pub compute_secs_per_block: f64,
    /// Seconds per block reading the inputs (context and input steps), averaged.
    pub read_secs_per_block: f64,
    /// Compose time per frame while blocks computed, ms: 50th, 90th, 99th percentile.
    pub frame_ms_computing: [f64; 3],
    /// Compose time per frame once everything is in, ms (median).
    pub frame_ms_idle: f64,
    /// Ten quick jumps through the volume (one frame each), then a last position drawn
    /// completely: the blocks computed meanwhile ...
    pub jumps_blocks_computed: u64,
    /// ... the blocks the last position shows ...
    pub jumps_blocks_shown_at_end: u64,
    /// ... and, summed over the jumps, the blocks being computed when the view moved on
    /// (they finish; queued ones are dropped). Goal: computed ≤ shown + in flight.
    pub jumps_blocks_in_flight: u64,
}

/// The demo project in `dir` (`what` it is for, said on `out`), written and its run
/// trained for `iterations` on a `size`³ volume when missing, reused otherwise.
pub(super) fn prepare_demo(
    what: &str,
    dir: &std::path::Path,
    iterations: u64,
    size: usize,
    out: &mut dyn std::io::Write,
) -> Result<crate::ops::demo::DemoReport, String> {
    let _ = writeln!(
        out,
        "preparing the {what} in {} ({iterations} iterations)",
        dir.display()
    );
    crate::ops::demo::run_demo(
        crate::ops::demo::DemoRunOptions {
            project: dir.to_path_buf(),
            iterations,
            validation_interval: iterations.max(1),
            size,
            seed: 0,
            stop: None,
        },
        &|_| {},
    )
    .map_err(|e| e.to_string())
}

/// Runs the benchmark, saying what it prepares on `out`.
pub fn bench_live(
    options: &LiveBenchOptions,
    out: &mut dyn std::io::Write,
) -> Result<LiveBenchReport, String> {
    let dir = crate::ops::job::absolute(&options.dir);
    let demo = prepare_demo("demo project", &dir, options.iterations, options.size, out)?;
    let raw = dir.join("data/synthetic.zarr/raw");
    let source = LiveSource {
        project: dir.clone(),
        run: demo.run.clone(),
        iteration: None,
        raw: raw.clone(),
        segmentation: None,
    };
    let [w, h] = options.panel;
    let mut v = Viewer::default();
    v.add_layer(&raw);
    let Some(raw_data) = v.layer_data(0).cloned() else {
        return Err(v.layer_status(0));
    };
    // The panel spans the whole volume at its centre.
    let (b, e) = raw_data.levels[0].bounds_nm();
    let vs = raw_data.levels[0].voxel_size_nm;
    v.state.position_nm = WorldNm(std::array::from_fn(|a| {
        ((e[a] + b[a]) / 2.0 / vs[a]).floor() * vs[a] + vs[a] / 2.0
    }));
    v.state.zoom_nm_per_px = ((e[1] - b[1]) / f64::from(h)).max((e[2] - b[2]) / f64::from(w));
    v.state.cross_hairs = false;
    loop {
        v.compose_panel(Plane::Xy, [w, h]);
        v.cache().wait_idle(Duration::from_secs(60));
        v.compose_panel(Plane::Xy, [w, h]);
        if !v.loading() {
            break;
        }
    }
    let drawn = |v: &Viewer| {
        (0..h).step_by(4).any(|y| {
            (0..w).step_by(4).any(|x| {
                matches!(
                    v.pixel_value(Plane::Xy, 1, f64::from(x), f64::from(y)),
                    Some(PixelValue::Float(_))
                )
            })
        })
    };
    let added = Instant::now();
    v.add_model_layer(source);
    let (mut open_ms, mut first_ms) = (None, None);
    let mut frames = Vec::new();
    let full_ms = loop {
        let t = Instant::now();
        v.compose_panel(Plane::Xy, [w, h]);
        let frame = t.elapsed().as_secs_f64() * 1e3;
        let since = added.elapsed().as_secs_f64() * 1e3;
        if open_ms.is_none() && v.live_prediction(1).is_some() {
            open_ms = Some(since);
        }
        if open_ms.is_some() {
            frames.push(frame);
        }
        if first_ms.is_none() && drawn(&v) {
            first_ms = Some(since);
        }
        if !v.loading() {
            break since;
        }
        if added.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "the panel was not predicted within 600 s: {}",
                v.layer_status(1)
            ));
        }
        // About 60 frames per second, as the interface asks for while something loads.
        std::thread::sleep(Duration::from_millis(16).saturating_sub(t.elapsed()));
    };
    let live = v
        .live_prediction(1)
        .cloned()
        .ok_or_else(|| v.layer_status(1))?;
    let open_ms = open_ms.unwrap_or(full_ms);
    let stats = live.stats();
    let mut idle = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        v.compose_panel(Plane::Xy, [w, h]);
        idle.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // Ten quick jumps along z, one frame each, then the last position drawn completely.
    let before = live.stats().computed;
    let mut in_flight = 0;
    let (z0, z1) = (b[0], e[0]);
    let steps = [0.9, 0.1, 0.7, 0.3, 0.95, 0.05, 0.6, 0.4, 0.85, 0.15];
    for f in steps {
        v.state.position_nm.0[0] = ((z0 + f * (z1 - z0)) / vs[0]).floor() * vs[0] + vs[0] / 2.0;
        v.compose_panel(Plane::Xy, [w, h]);
        in_flight += live.stats().in_flight;
    }
    v.state.position_nm.0[0] = ((z0 + 0.75 * (z1 - z0)) / vs[0]).floor() * vs[0] + vs[0] / 2.0;
    let settled = Instant::now();
    loop {
        v.compose_panel(Plane::Xy, [w, h]);
        if !v.loading() {
            break;
        }
        if settled.elapsed() > Duration::from_secs(600) {
            return Err("the last jump was not predicted within 600 s".into());
        }
        std::thread::sleep(Duration::from_millis(16));
    }
    let jumps_computed = live.stats().computed - before;
    // The blocks the last xy slice crosses: one layer of the grid along z.
    let counts = live.grid().counts();
    let shown_at_end = counts[1] * counts[2];
    // The reference: the same number of blocks, forward pass alone, one at a time on all
    // cores (as one `segno predict` worker computes them).
    let (mut read, mut forward) = (0.0, 0.0);
    for k in 0..stats.computed.min(live.grid().len()) {
        let (r, f) = live.time_block(k).map_err(|e| e.to_string())?;
        read += r;
        forward += f;
    }
    let n = stats.computed.max(1) as f64;
    let viewer_rate = stats.computed as f64 / ((full_ms - open_ms) / 1e3).max(1e-9);
    let forward_rate = n / forward.max(1e-9);
    let sort = |v: &mut Vec<f64>| v.sort_by(|a, b| a.total_cmp(b));
    sort(&mut frames);
    sort(&mut idle);
    Ok(LiveBenchReport {
        run: demo.run,
        iteration: live.iteration(),
        device: live.device_label(),
        blocks_total: live.grid().len(),
        blocks_computed: stats.computed,
        open_ms,
        first_block_ms: first_ms.unwrap_or(full_ms),
        full_panel_ms: full_ms,
        viewer_blocks_per_sec: viewer_rate,
        forward_blocks_per_sec: forward_rate,
        ratio: viewer_rate / forward_rate,
        compute_secs_per_block: stats.secs_per_block(),
        read_secs_per_block: read / n,
        frame_ms_computing: [
            percentile(&frames, 0.5),
            percentile(&frames, 0.9),
            percentile(&frames, 0.99),
        ],
        frame_ms_idle: percentile(&idle, 0.5),
        jumps_blocks_computed: jumps_computed,
        jumps_blocks_shown_at_end: shown_at_end,
        jumps_blocks_in_flight: in_flight,
    })
}
