//! `segno bench arrays|pipeline|model|train|predict|viewer`: options into the benchmarks of
//! `bench` (the engine side by side with zarr-python and DaCapo) and `gui::viewer_bench`
//! (the viewer drawing offscreen), their reports printed.

use super::*;

pub(super) fn bench_live(
    options: &crate::gui::live_bench::LiveBenchOptions,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    // Preparing the project is said on stderr, so that --json prints only the JSON.
    let r = crate::gui::live_bench::bench_live(options, &mut std::io::stderr())
        .map_err(|e| Failure::new(exit::INVALID, e))?;
    if json {
        let value = serde_json::to_value(&r)
            .map_err(|e| Failure::new(exit::IO, format!("cannot encode JSON: {e}")))?;
        emit_json(out, &value)?;
        return Ok(exit::OK);
    }
    emit(
        out,
        &format!(
            "live prediction: run {} at iteration {} on {}, {}×{} xy panel\n  network open     {:.0} ms\n  first block      {:.0} ms after adding the layer\n  full panel       {:.0} ms ({} of {} blocks)\n  blocks/s         {:.2} in the viewer, {:.2} forward pass alone: ratio {:.3} (goal ≥ 0.9) {}\n  reading inputs   {:.3} s per block\n  compose / frame  {:.1} ms median, {:.1} ms p90, {:.1} ms p99 while computing; {:.1} ms after\n  10 quick jumps   {} blocks computed; the last view shows {}, {} were in flight when the view moved {}\n",
            r.run,
            r.iteration,
            r.device,
            options.panel[0],
            options.panel[1],
            r.open_ms,
            r.first_block_ms,
            r.full_panel_ms,
            r.blocks_computed,
            r.blocks_total,
            r.viewer_blocks_per_sec,
            r.forward_blocks_per_sec,
            r.ratio,
            if r.ratio >= 0.9 { "✓" } else { "✗" },
            r.read_secs_per_block,
            r.frame_ms_computing[0],
            r.frame_ms_computing[1],
            r.frame_ms_computing[2],
            r.frame_ms_idle,
            r.jumps_blocks_computed,
            r.jumps_blocks_shown_at_end,
            r.jumps_blocks_in_flight,
            if r.jumps_blocks_computed <= r.jumps_blocks_shown_at_end + r.jumps_blocks_in_flight {
                "✓"
            } else {
                "✗"
            }
        ),
    )?;
    Ok(exit::OK)
}

pub(super) fn bench_viewer(args: &ViewerBenchArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::render::state::Layout;
    let layout = match args.layout.as_str() {
        "4panel" => Layout::FourPanel,
        "xy" => Layout::Xy,
        "xz" => Layout::Xz,
        "yz" => Layout::Yz,
        other => {
            return Err(Failure::new(
                exit::USAGE,
                format!("--layout is 4panel, xy, xz or yz, not `{other}`"),
            ))
        }
    };
    if !(1..=3).contains(&args.layers) {
        return Err(Failure::new(
            exit::USAGE,
            format!("--layers is 1, 2 or 3, not {}", args.layers),
        ));
    }
    // (layout, layers, image, pixels per point) of each run.
    let runs: Vec<(Layout, usize, [u32; 2], f64)> = if args.matrix {
        let mut runs = Vec::new();
        for (image, ppp) in MATRIX_SCREENS {
            for layout in [Layout::Xy, Layout::FourPanel] {
                for layers in [1, 3] {
                    runs.push((layout, layers, image, ppp));
                }
            }
        }
        runs
    } else {
        vec![(layout, args.layers, args.image, args.pixels_per_point)]
    };
    let mut reports = Vec::new();
    for (layout, layers, image, pixels_per_point) in runs {
        let options = crate::gui::viewer_bench::ViewerBenchOptions {
            dir: args.dir.clone(),
            size: args.size,
            width: image[0],
            height: image[1],
            pixels_per_point,
            frames: args.frames.max(1),
            pan_px: args.pan,
            jumps: args.jumps,
            layout,
            layers,
            model: args.model.clone(),
            model_iterations: args.model_iterations,
        };
        // Preparing the volume and progress are said on stderr, so that --json prints
        // only the JSON.
        if args.matrix {
            eprintln!(
                "bench viewer: {} {}x{} at {pixels_per_point} pixel(s) per point, {layers} layer(s) …",
                layout.name(),
                image[0],
                image[1]
            );
        }
        let r = crate::gui::viewer_bench::bench_viewer(&options, &mut std::io::stderr())
            .map_err(|e| Failure::new(exit::INVALID, e))?;
        if !args.json {
            viewer_report_text(args, &r, out);
        }
        reports.push(r);
    }
    if args.json {
        let json = if args.matrix {
            serde_json::json!({ "runs": reports, "cpu_ratios": cpu_ratios(&reports) })
        } else {
            serde_json::to_value(&reports[0]).unwrap_or_default()
        };
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else if args.matrix {
        let _ = writeln!(
            out,
            "\nsummary        layout  layers  fps p50 (p95)   CPU ms/frame   jump ms (median, cache empty)   composed: fps p50, CPU ms"
        );
        for r in &reports {
            let _ = writeln!(
                out,
                "{:>4}x{:<5} @{:<2} {:<7} {:>6}  {:>6.1} ({:>5.1})  {:>12.1}   {:>8.0}                        {:>6.1}, {:>6.1}",
                r.image[0],
                r.image[1],
                r.pixels_per_point,
                r.layout.name(),
                r.layers,
                r.gathered.median_fps,
                r.gathered.p95_fps,
                r.gathered.cpu_ms,
                upper_median(&r.gathered.jump_ms),
                r.composed.median_fps,
                r.composed.cpu_ms
            );
        }
        let _ = writeln!(
            out,
            "\nCPU time per frame against 1280x800 (target ≤ 1.5×):"
        );
        for c in cpu_ratios(&reports) {
            let _ = writeln!(
                out,
                "  {}x{} at {} pixel(s) per point, {} {} layer(s): the app's threads {:.1} / {:.1} ms = {:.2}× {}; without the chunk readers {:.1} / {:.1} ms = {:.2}×; every thread (the graphics driver's, reading back) {:.1} / {:.1} ms = {:.2}×",
                c.image[0],
                c.image[1],
                c.pixels_per_point,
                c.layout,
                c.layers,
                c.app_ms[0],
                c.app_ms[1],
                c.app_ratio,
                if c.app_ratio <= 1.5 { "✓" } else { "✗" },
                c.drawing_ms[0],
                c.drawing_ms[1],
                c.drawing_ratio,
                c.all_ms[0],
                c.all_ms[1],
                c.all_ratio
            );
        }
    }
    Ok(exit::OK)
}

/// The screens of `bench viewer --matrix`: image size and pixels per point.
const MATRIX_SCREENS: [([u32; 2], f64); 3] =
    [([1280, 800], 1.0), ([3840, 2160], 1.0), ([3840, 2160], 2.0)];

/// A larger screen's CPU time per panning frame against 1280x800's, same layout and layers.
#[derive(Debug, serde::Serialize)]
struct CpuRatio {
    layout: &'static str,
    layers: usize,
    image: [u32; 2],
    pixels_per_point: f64,
    /// The app's threads (not the graphics driver's, not reading back), mean ms per
    /// frame: this screen, 1280x800.
    app_ms: [f64; 2],
    /// `app_ms[0] / app_ms[1]`.
    app_ratio: f64,
    /// The app's threads but the chunk readers: the frame's own work.
    drawing_ms: [f64; 2],
    /// `drawing_ms[0] / drawing_ms[1]`.
    drawing_ratio: f64,
    /// Every thread, mean ms per frame: this screen, 1280x800.
    all_ms: [f64; 2],
    /// `all_ms[0] / all_ms[1]`.
    all_ratio: f64,
}

/// Every run but 1280x800's against the 1280x800 run of its layout and layers (runs
/// without per-thread times are left out).
fn cpu_ratios(reports: &[crate::gui::viewer_bench::ViewerBenchReport]) -> Vec<CpuRatio> {
    let mut out = Vec::new();
    for r in reports.iter().filter(|r| r.image != [1280, 800]) {
        let base = reports
            .iter()
            .find(|b| b.image == [1280, 800] && b.layout == r.layout && b.layers == r.layers);
        let (Some(t), Some(b)) = (
            r.gathered.cpu_threads_ms,
            base.and_then(|b| b.gathered.cpu_threads_ms),
        ) else {
            continue;
        };
        out.push(CpuRatio {
            layout: r.layout.name(),
            layers: r.layers,
            image: r.image,
            pixels_per_point: r.pixels_per_point,
            app_ms: [t.app_ms(), b.app_ms()],
            app_ratio: t.app_ms() / b.app_ms(),
            drawing_ms: [t.drawing_ms(), b.drawing_ms()],
            drawing_ratio: t.drawing_ms() / b.drawing_ms(),
            all_ms: [t.total_ms(), b.total_ms()],
            all_ratio: t.total_ms() / b.total_ms(),
        });
    }
    out
}

/// The upper median of `values` (the middle one of an odd count), NaN for none.
fn upper_median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `values` in whole milliseconds, comma-separated.
fn whole_ms(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn viewer_report_text(
    args: &ViewerBenchArgs,
    r: &crate::gui::viewer_bench::ViewerBenchReport,
    out: &mut dyn Write,
) {
    let _ = writeln!(
        out,
        "viewer benchmark: {}³ volume, {}×{} at {} pixel(s) per point, {}, {} layer(s) ({} pixels per frame), {}",
        args.size,
        r.image[0],
        r.image[1],
        r.pixels_per_point,
        r.layout.name(),
        r.layers,
        r.pixels_per_frame,
        r.adapter
    );
    for (name, f) in [
        ("gathered on the GPU", &r.gathered),
        ("composed on the CPU", &r.composed),
    ] {
        let jump_median = upper_median(&f.jump_ms);
        let _ = writeln!(out, "  slices {name}:");
        let _ = writeln!(
            out,
            "    frame time      median {:.1} ms ({:.1} fps), p90 {:.1} ms, p95 {:.1} ms ({:.1} fps), p99 {:.1} ms   target median ≥ 30 fps {}",
            f.frame_ms[0],
            f.median_fps,
            f.frame_ms[1],
            f.frame_p95_ms,
            f.p95_fps,
            f.frame_ms[2],
            if f.median_fps >= 30.0 { "✓" } else { "✗" }
        );
        let _ = writeln!(
            out,
            "      of which     {:.1} ms on the CPU (composing or planning), upload + draw + read back {:.1} ms (GPU: uploads {:.1}, drawing {:.1}; {:.1} ms without new textures); {} of {} frames still loading new chunks",
            f.compose_ms,
            f.gpu_ms,
            f.gpu_upload_ms,
            f.gpu_draw_ms,
            f.gpu_static_ms,
            f.incomplete_frames,
            args.frames
        );
        let _ = writeln!(
            out,
            "    CPU time        median {:.1} ms per frame (all threads of the process)",
            f.cpu_ms
        );
        if let Some(t) = f.cpu_threads_ms {
            let _ = writeln!(
                out,
                "      by thread     mean {:.1} ms per frame: main {:.1}, chunk readers {:.1}, other {:.1}; graphics driver {:.1}, reading the image back {:.1}",
                t.total_ms(),
                t.main_ms,
                t.readers_ms,
                t.other_ms,
                t.driver_ms,
                t.readback_ms
            );
        }
        let _ = writeln!(
            out,
            "    while panning   {} chunk reads ({} slabs); complete {:.0} ms after the last panning frame",
            f.panning_chunks_read, f.panning_slabs_read, f.pan_settled_ms
        );
        if f.three_d_first_ms > 0.0 {
            let _ = writeln!(
                out,
                "    3D panel        {:.1} ms per panning frame (its planes wait for the view to settle), {:.1} ms drawing the planes once settled, first image {:.0} ms (volumes uploaded, rays cast)",
                f.three_d_ms, f.three_d_settled_ms, f.three_d_first_ms
            );
        }
        let _ = writeln!(
            out,
            "    jump → complete median {jump_median:.0} ms ({} ms; chunk cache empty, files as the system caches them)   target < 1 s {}",
            whole_ms(&f.jump_ms),
            if jump_median < 1000.0 { "✓" } else { "✗" }
        );
        let cached_median = upper_median(&f.jump_cached_ms);
        let _ = writeln!(
            out,
            "    jump → complete median {cached_median:.0} ms ({} ms; back and forth between places already read)   target < 300 ms {}",
            whole_ms(&f.jump_cached_ms),
            if cached_median < 300.0 { "✓" } else { "✗" }
        );
        let _ = writeln!(
            out,
            "    jump → settled  {} ms (neighbouring slices and the 3D panel's volume read too)",
            whole_ms(&f.jump_settled_ms)
        );
    }
    let _ = writeln!(
        out,
        "  gathered frames are {:.2}× as fast as composed ones (median); GPU chunk store: {} chunks, {:.1} of {:.0} MiB, {} uploaded, {} evicted, {} refused",
        r.speedup,
        r.gpu_store.chunks,
        r.gpu_store.bytes as f64 / 1048576.0,
        r.gpu_store.budget_bytes as f64 / 1048576.0,
        r.gpu_store.uploaded,
        r.gpu_store.evicted,
        r.gpu_store.refused
    );
    if let Some(m) = &r.model {
        let _ = writeln!(
            out,
            "  with {} computing on {}: frame time median {:.1} ms ({:.2}× without), p90 {:.1} ms, p99 {:.1} ms; compose {:.1} ms; {} blocks computed ({:.3} s each), {} of {} frames while one was computing",
            m.layer,
            m.device,
            m.frame_ms[0],
            m.frame_ratio,
            m.frame_ms[1],
            m.frame_ms[2],
            m.compose_ms,
            m.blocks_computed,
            m.secs_per_block,
            m.frames_computing,
            args.frames
        );
    }
}

pub(super) fn bench_engine(
    mode: crate::bench::engine::EngineMode,
    args: &EngineBenchArgs,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    use crate::bench::engine::{self, BenchNet};
    let net = match args.net.as_str() {
        "bench" => BenchNet::Bench,
        "spec" => BenchNet::Spec,
        other => {
            return Err(Failure::new(
                exit::USAGE,
                format!("--net is bench or spec, not `{other}`"),
            ))
        }
    };
    if args.warmup == 0 {
        return Err(Failure::new(exit::USAGE, "--warmup must be at least 1"));
    }
    let options = engine::EngineBenchOptions {
        dir: args.dir.clone(),
        size: args.size,
        input: args.input,
        net,
        iterations: args.iterations.max(1),
        warmup: args.warmup,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        python: args.python.clone(),
        reference: !args.no_reference,
    };
    let figures = engine::bench_engine(mode, &options)
        .map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    if args.json {
        let rows: Vec<Value> = figures
            .iter()
            .map(|f| {
                json!({"name": f.name, "unit": f.unit, "segno": f.segno, "dacapo": f.dacapo, "ratio": f.ratio(), "target": f.target})
            })
            .collect();
        emit_json(
            out,
            &json!({"mode": mode.name(), "net": args.net, "input": args.input, "threads": options.threads, "iterations": options.iterations, "warmup": options.warmup, "figures": rows}),
        )?;
        return Ok(exit::OK);
    }
    let mut text = format!(
        "{} ({} net, {}³ input, {} threads, {} timed after {} warm-up)\n{:<36} {:>14} {:>14} {:>8}  {}\n",
        mode.name(),
        args.net,
        args.input,
        options.threads,
        options.iterations,
        options.warmup,
        "figure",
        "Segno",
        "DaCapo 0.3.5",
        "ratio",
        "target"
    );
    for f in &figures {
        let fmt = |v: f64| {
            if v >= 1000.0 {
                format!("{v:.3e}")
            } else {
                format!("{v:.4}")
            }
        };
        text.push_str(&format!(
            "{:<36} {:>14} {:>14} {:>8}  {}  ({})\n",
            f.name,
            fmt(f.segno),
            f.dacapo.map(fmt).unwrap_or_else(|| "-".into()),
            f.ratio()
                .map(|r| format!("{r:.2}×"))
                .unwrap_or_else(|| "-".into()),
            f.target.map(|t| format!("≥ {t}")).unwrap_or_default(),
            f.unit
        ));
    }
    emit(out, &text)?;
    Ok(exit::OK)
}

pub(super) fn bench_arrays(
    size: usize,
    dir: PathBuf,
    repeats: usize,
    python: Option<PathBuf>,
    no_reference: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    if size < 64 {
        return Err(Failure::new(
            exit::USAGE,
            format!("--size must be at least 64, got {size}"),
        ));
    }
    let python = if no_reference {
        None
    } else {
        let py = python.unwrap_or_else(|| checkout_file(".venv-zarr/bin/python"));
        if !py.exists() {
            return Err(Failure::new(
                exit::IO,
                format!("{} not found: run scripts/zarr-python-venv.sh, pass --python, or use --no-reference", py.display()),
            ));
        }
        Some(py)
    };
    let options = crate::bench::ArrayBenchOptions {
        size,
        dir,
        repeats,
        python,
        script: checkout_file("scripts/zarr_python_bench.py"),
    };
    if cfg!(debug_assertions) {
        tracing::warn!("this is a debug build: build with --release for meaningful numbers");
    }
    let rows =
        crate::bench::bench_arrays(&options).map_err(|e| Failure::new(exit::IO, e.to_string()))?;
    if json {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "array": r.array,
                    "mode": r.mode,
                    "threads": r.threads,
                    "segno_mb_per_s": r.segno_mb_per_s,
                    "zarr_python_mb_per_s": r.reference_mb_per_s,
                    "ratio": r.ratio(),
                })
            })
            .collect();
        emit_json(
            out,
            &json!({"size": size, "debug_build": cfg!(debug_assertions), "rows": v}),
        )?;
        return Ok(exit::OK);
    }
    let mut text =
        format!(
        "{size}³ uint8 ({:.0} MB), best of {repeats}{}\n{:<22} {:<7} {:>7} {:>12} {:>14} {:>7}\n",
        (size * size * size) as f64 / 1e6,
        if cfg!(debug_assertions) { ", DEBUG BUILD" } else { "" },
        "array", "mode", "threads", "segno MB/s", "zarr-py MB/s", "ratio"
    );
    for r in &rows {
        text.push_str(&format!(
            "{:<22} {:<7} {:>7} {:>12.0} {:>14} {:>7}\n",
            r.array,
            r.mode,
            r.threads,
            r.segno_mb_per_s,
            r.reference_mb_per_s
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into()),
            r.ratio()
                .map(|v| format!("{v:.2}×"))
                .unwrap_or_else(|| "-".into()),
        ));
    }
    emit(out, &text)?;
    Ok(exit::OK)
}
