//! `segno array info`, `datasplit`, `neuroglancer` and `info`.

use super::*;

/// A file of this checkout: relative to the current directory, else to the source tree
/// the binary was built from.
pub(super) fn checkout_file(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub(super) fn datasplit(args: &DatasplitArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::datasplit::{generate, read_csv, GeneratorOptions};
    let specs = read_csv(&args.csv).map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.csv
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "datasplit".into())
    });
    let mut options = GeneratorOptions::new(&name, args.input_resolution, args.output_resolution);
    options.targets = (!args.targets.is_empty()).then(|| args.targets.clone());
    options.binarize_gt = args.binarize_gt;
    options.use_negative_class = args.use_negative_class;
    options.raw_min = args.raw_min;
    options.raw_max = args.raw_max;
    options.separator = args.separator.clone();
    options.max_validation_volume_size = args.max_validation_volume_size;
    let project = args.project.open()?;
    let generated = generate(&specs, &options, project.root())
        .map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    let config = AnyConfig::Datasplit(crate::config::DataSplitConfig::TrainValidate(
        generated.config.clone(),
    ));
    let problems = config.problems();
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        return Err(Failure::new(
            exit::INVALID,
            format!("the generated datasplit is invalid: {}", lines.join("; ")),
        ));
    }
    let stored = if args.store {
        Some(
            match project.configs().store(&config).map_err(Failure::from)? {
                StoreOutcome::Written => "stored",
                StoreOutcome::Unchanged => "already stored (identical)",
            },
        )
    } else {
        None
    };
    for w in &generated.warnings {
        eprintln!("warning: {w}");
    }
    if args.project.json {
        return emit_json(
            out,
            &json!({"name": generated.config.name, "stored": stored, "warnings": generated.warnings,
                    "train": generated.config.train_configs.len(), "validate": generated.config.validate_configs.len(),
                    "yaml": config.to_yaml()}),
        )
        .map(|()| exit::OK);
    }
    match stored {
        Some(s) => emit(
            out,
            &format!(
                "datasplit {} ({} training, {} validation datasets): {s}\n",
                generated.config.name,
                generated.config.train_configs.len(),
                generated.config.validate_configs.len()
            ),
        )?,
        None => emit(out, &config.to_yaml())?,
    }
    Ok(exit::OK)
}

pub(super) fn neuroglancer(args: &NeuroglancerArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let state = crate::render::state::ViewState::load(&args.view)
        .map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    let mut viewer = crate::gui::viewer::Viewer::new(1 << 20);
    viewer.set_state(state);
    for i in 0..viewer.state.layers.len() {
        let s = viewer.layer_status(i);
        if s.starts_with("error") {
            return Err(Failure::new(
                exit::INVALID,
                format!("layer {:?}: {s}", viewer.state.layers[i].name),
            ));
        }
    }
    let root = match &args.root {
        Some(r) => r.clone(),
        None => args
            .view
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let (json, url) = viewer.neuroglancer(&args.base_url, &root);
    if let Some(path) = &args.output {
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        crate::store::atomic::write_atomic(path, text.as_bytes(), true)
            .map_err(|e| Failure::new(exit::IO, format!("{}: {e}", path.display())))?;
    }
    let _ = writeln!(out, "{url}");
    Ok(exit::OK)
}

pub(super) fn join_dims<T: std::fmt::Display>(v: impl IntoIterator<Item = T>, sep: &str) -> String {
    v.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

pub(super) fn array_info(
    path: &std::path::Path,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let report = crate::ops::describe::describe_array(path)?;
    print(out, &report, json)
}

pub(super) fn info(json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let rt = crate::device::RuntimeInfo::query();
    let device = crate::device::choose_device(None)
        .map(|d| format!("{d:?}"))
        .unwrap_or_else(|e| e.to_string());
    if json {
        emit_json(
            out,
            &json!({
                "version": env!("CARGO_PKG_VERSION"),
                "cuda_available": rt.cuda_available,
                "cuda_devices": rt.cuda_devices,
                "cudnn_available": rt.cudnn_available,
                "cpu_threads": rt.cpu_threads,
                "default_device": device,
            }),
        )?;
    } else {
        emit(
            out,
            &format!(
                "segno {}\nlibtorch: {rt}\ndefault device: {device}\n",
                env!("CARGO_PKG_VERSION")
            ),
        )?;
    }
    Ok(exit::OK)
}
