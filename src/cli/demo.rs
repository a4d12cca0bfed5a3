//! `segno demo` and `segno demo-data`.

use super::*;

pub(super) fn demo(args: &DemoArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let dir = &args.project;
    let say = |text: String| {
        if !args.json {
            eprintln!("{text}");
        }
    };
    if !dir.join("data/synthetic.zarr/raw").exists() {
        say(format!(
            "writing synthetic data ({0}³ voxels) to {1}/data/synthetic.zarr",
            args.size,
            dir.display()
        ));
        crate::demo::generate(
            dir,
            &crate::demo::DemoOptions {
                seed: args.seed,
                size: args.size,
                overwrite: false,
            },
        )?;
    }
    let project = Project::open(dir)?;
    let run = crate::demo::project::demo_run(args.iterations, args.validation_interval.max(1));
    let outcome = project
        .configs()
        .store(&AnyConfig::Run(Box::new(run.clone())))?;
    say(format!(
        "run config `{}`: {outcome:?} in {}/configs/runs",
        run.name,
        dir.display()
    ));
    let train_args = TrainArgs {
        run: run.name.clone(),
        seed: Some(args.seed),
        device: "auto".into(),
        loader_threads: None,
        no_validation: false,
        keep_validation: "all".into(),
        iterations: None,
        project: ProjectArgs {
            project: Some(dir.clone()),
            json: true,
        },
    };
    let mut sink = Vec::new();
    say(format!(
        "training `{}` for {} iterations (validation every {})…",
        run.name, run.num_iterations, run.validation_interval
    ));
    let started = std::time::Instant::now();
    train(&train_args, &mut sink)?;
    let duration_secs = started.elapsed().as_secs_f64();
    // Results: the stored validation scores, best threshold per class and iteration.
    let scores_path = RunDir::new(dir, &run.name).validation_scores();
    let doc: Value = std::fs::read_to_string(&scores_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            Failure::new(
                exit::IO,
                format!(
                    "{}: no validation scores were written",
                    scores_path.display()
                ),
            )
        })?;
    let criteria: Vec<String> = doc["criteria"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let params: Vec<String> = doc["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let at = |name: &str| criteria.iter().position(|c| c == name);
    let mut rows = Vec::new();
    for it in doc["iterations"].as_array().into_iter().flatten() {
        let iteration = it["iteration"].as_u64().unwrap_or(0);
        let block = &it["scores"][0];
        let mut row = json!({"iteration": iteration});
        for class in crate::demo::project::CLASSES {
            let (Some(f1), Some(dice)) = (
                at(&format!("{class}__f1_score")),
                at(&format!("{class}__dice")),
            ) else {
                continue;
            };
            let mut best: Option<(usize, f64)> = None;
            for p in 0..params.len() {
                let v = block[p][f1].as_f64().unwrap_or(f64::NAN);
                if v.is_finite() && best.is_none_or(|(_, b)| v > b) {
                    best = Some((p, v));
                }
            }
            if let Some((p, f)) = best {
                row[class] =
                    json!({"threshold": params[p], "f1_score": f, "dice": block[p][dice].as_f64()});
            }
        }
        rows.push(row);
    }
    let stats =
        crate::store::stats::read_training_stats(&RunDir::new(dir, &run.name).training_stats())
            .map_err(|e| Failure::new(exit::IO, e.to_string()))?;
    // Apply the best checkpoint and threshold to the whole raw volume.
    say(format!(
        "applying the best checkpoint to {}/data/synthetic.zarr/raw…",
        dir.display()
    ));
    let apply_args = ApplyArgs {
        run: run.name.clone(),
        iteration: None,
        parameters: None,
        validation_dataset: None,
        criterion: None,
        job: JobArgs {
            input: dir.join("data/synthetic.zarr/raw"),
            output: dir.join("outputs/synthetic.zarr"),
            roi: None,
            device: "auto".into(),
            max_block_input: None,
            like: None,
            resample: false,
            accept_data_type: false,
            // Running the demo again recomputes its outputs.
            overwrite: true,
            project: ProjectArgs {
                project: Some(dir.clone()),
                json: true,
            },
        },
    };
    let mut sink = Vec::new();
    apply(&apply_args, &mut sink)?;
    let applied: Value = serde_json::from_slice(&sink)
        .map_err(|e| Failure::new(exit::IO, format!("apply report: {e}")))?;
    let view = demo_view(dir, &applied);
    if args.json {
        emit_json(
            out,
            &json!({"project": dir.display().to_string(), "run": run.name, "duration_secs": duration_secs, "validations": rows, "iterations": stats.len(), "applied": applied, "view": view.as_ref().map(|v| v.display().to_string())}),
        )?;
        return Ok(exit::OK);
    }
    let mean_loss = |from: usize, to: usize| {
        let s = &stats[from.min(stats.len())..to.min(stats.len())];
        s.iter().map(|x| x.loss).sum::<f64>() / s.len().max(1) as f64
    };
    let mut text = format!("\ntrained {} iterations in {duration_secs:.0} s; loss {:.4} (first 20) → {:.4} (last 20)\n\n", stats.len(), mean_loss(0, 20), mean_loss(stats.len().saturating_sub(20), stats.len()));
    text.push_str(&format!(
        "{:>9}  {:<24} {:<24}\n",
        "iteration", "mito: best F1 (threshold)", "er: best F1 (threshold)"
    ));
    for r in &rows {
        let cell = |c: &str| {
            r.get(c)
                .map(|v| {
                    format!(
                        "{:.3} ({})",
                        v["f1_score"].as_f64().unwrap_or(f64::NAN),
                        v["threshold"].as_str().unwrap_or("")
                    )
                })
                .unwrap_or_else(|| "-".into())
        };
        text.push_str(&format!(
            "{:>9}  {:<24} {:<24}\n",
            r["iteration"].as_u64().unwrap_or(0),
            cell("mito"),
            cell("er")
        ));
    }
    let voxels = applied["voxels"].as_u64().unwrap_or(0).max(1) as f64;
    let fg: Vec<String> = crate::demo::project::CLASSES
        .iter()
        .zip(
            applied["foreground_voxels"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .map(|(c, n)| format!("{c} {:.1}%", 100.0 * n.as_f64().unwrap_or(0.0) / voxels))
        .collect();
    text.push_str(&format!(
        "\napplied iteration {} with {} to the whole volume ({:.0} s): {}\n",
        applied["iteration"],
        applied["parameters"].as_str().unwrap_or(""),
        applied["predict_secs"].as_f64().unwrap_or(0.0)
            + applied["post_process_secs"].as_f64().unwrap_or(0.0),
        fg.join(", ")
    ));
    text.push_str(&format!(
        "\nproject: {0}\n  checkpoints  {1}/\n  predictions  {2}/<iteration>/synthetic_crop2/\n  scores       {3}\n  prediction   {4}\n  segmentation {5}\n",
        dir.display(),
        RunDir::new(dir, &run.name).checkpoints_dir().display(),
        RunDir::new(dir, &run.name).validation_container().display(),
        scores_path.display(),
        applied["prediction"].as_str().unwrap_or(""),
        applied["output"].as_str().unwrap_or("")
    ));
    if let Some(v) = &view {
        text.push_str(&format!(
            "  view         segno gui {} --view {}\n",
            dir.display(),
            v.display()
        ));
    }
    emit(out, &text)?;
    let display = crate::gui::has_display();
    if display && !args.no_gui {
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

/// Writes `<project>/demo.view.json`: the raw data with the applied prediction and
/// segmentation in the 4-panel layout. `None` (with a warning) when it cannot be written.
pub(super) fn demo_view(dir: &Path, applied: &Value) -> Option<PathBuf> {
    use crate::render::state::{LayerSettings, LayerState, ViewState};
    let mut viewer = crate::gui::viewer::Viewer::new(1 << 20);
    viewer.add_layer(&dir.join("data/synthetic.zarr/raw"));
    for key in ["prediction", "output"] {
        if let Some(p) = applied[key].as_str() {
            viewer.add_layer(Path::new(p));
        }
    }
    let mut state: ViewState = viewer.state.clone();
    // The prediction starts hidden (press 2 to show it); the segmentation is on top.
    if let Some(LayerState {
        visible,
        settings: LayerSettings::Prediction(_),
        ..
    }) = state.layers.get_mut(1)
    {
        *visible = false;
    }
    let path = dir.join("demo.view.json");
    match state.save(&path) {
        Ok(()) => Some(path),
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    }
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
