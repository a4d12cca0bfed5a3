//! `segno demo` and `segno demo-data`.

use super::render::Report;
use super::*;

/// Registers SIGINT and SIGTERM (the app's Stop, a cluster's cancel, Ctrl-C) to set the
/// returned flag, so training stops after the current iteration and keeps it as a
/// checkpoint; a second Ctrl-C ends the process at once.
pub(super) fn stop_on_signals() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, Failure> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
            .and_then(|_| signal_hook::flag::register(signal, stop.clone()))
            .map_err(|e| Failure::new(exit::IO, format!("cannot handle signals: {e}")))?;
    }
    Ok(stop)
}

pub(super) fn demo(args: &DemoArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let json = args.json;
    let say = move |text: String| {
        if !json {
            eprintln!("{text}");
        }
    };
    let report = crate::ops::demo::run_demo(
        crate::ops::demo::DemoRunOptions {
            project: args.project.clone(),
            iterations: args.iterations,
            validation_interval: args.validation_interval,
            size: args.size,
            seed: args.seed,
            stop: Some(stop_on_signals()?),
        },
        &say,
    )?;
    let dir = &args.project;
    let view = match crate::gui::demo_view::write_demo_view(
        dir,
        &dir.join("data/synthetic.zarr/raw"),
        Some(&dir.join("data/synthetic.zarr/labels/crop2/mito")),
        &report.applied.prediction,
        &report.applied.output,
    ) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    };
    if args.json {
        let mut value = serde_json::to_value(&report)
            .map_err(|e| Failure::new(exit::IO, format!("cannot encode JSON: {e}")))?;
        value["view"] = json!(view.as_ref().map(|v| v.display().to_string()));
        emit_json(out, &value)?;
        return Ok(exit::OK);
    }
    let mut text = report.text();
    if let Some(v) = &view {
        text.push_str(&format!(
            "  view         segno gui {} --view {}\n",
            dir.display(),
            v.display()
        ));
    }
    emit(out, &text)?;
    if crate::gui::has_display() && !args.no_gui {
        if let Some(v) = view {
            crate::gui::run(crate::gui::GuiOptions {
                project: Some(dir.clone()),
                view: Some(v),
                screenshot: None,
                size: [1280, 800],
                headless: false,
                section: None,
            })
            .map_err(|e| Failure::new(exit::IO, e.to_string()))?;
        }
    }
    Ok(exit::OK)
}

pub(super) fn demo_data(args: &DemoDataArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let options = crate::demo::DemoOptions {
        seed: args.seed,
        size: args.size,
        overwrite: args.overwrite,
    };
    let started = std::time::Instant::now();
    let data = crate::demo::generate(&args.project, &options)?;
    let duration_secs = started.elapsed().as_secs_f64();
    if args.json {
        let arrays: Vec<Value> = data
            .arrays
            .iter()
            .map(|a| {
                json!({
                    "dataset": a.dataset,
                    "role": a.role,
                    "roi_nm": {"offset": a.roi.offset().to_vec(), "shape": a.roi.shape().to_vec()},
                    "voxel_size_nm": a.voxel_size.to_vec(),
                    "levels": a.levels,
                })
            })
            .collect();
        emit_json(
            out,
            &json!({
                "container": data.container.display().to_string(),
                "csv": data.csv.display().to_string(),
                "seed": args.seed,
                "size": args.size,
                "duration_secs": duration_secs,
                "arrays": arrays,
            }),
        )?;
    } else {
        let mut text = format!(
            "wrote {} in {duration_secs:.1} s\n",
            data.container.display()
        );
        for a in &data.arrays {
            text.push_str(&format!(
                "  {:<24} {:<9} {} nm voxels, region {}{}\n",
                a.dataset,
                a.role,
                join_dims(a.voxel_size.iter(), "×"),
                a.roi,
                if a.levels > 1 {
                    format!(", {} scale levels", a.levels)
                } else {
                    String::new()
                },
            ));
        }
        text.push_str(&format!("DataSplit CSV: {}\n", data.csv.display()));
        emit(out, &text)?;
    }
    Ok(exit::OK)
}
