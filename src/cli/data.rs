//! `segno array info`, `datasplit`, `neuroglancer` and `info`: each builds its options,
//! makes one call and prints the report.

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
    use crate::datasplit::GeneratorOptions;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| crate::ops::datasplit::default_name(&args.csv));
    let mut options = GeneratorOptions::new(&name, args.input_resolution, args.output_resolution);
    options.targets = (!args.targets.is_empty()).then(|| args.targets.clone());
    options.binarize_gt = args.binarize_gt;
    options.use_negative_class = args.use_negative_class;
    options.raw_min = args.raw_min;
    options.raw_max = args.raw_max;
    options.separator = args.separator.clone();
    options.max_validation_volume_size = args.max_validation_volume_size;
    let project = args.project.open()?;
    let report =
        crate::ops::datasplit::generate_datasplit(&project, &args.csv, &options, args.store)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    print(out, &report, args.project.json)
}

pub(super) fn neuroglancer(args: &NeuroglancerArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::render::neuroglancer::{export_view, ExportError};
    let export = export_view(
        &args.view,
        &args.base_url,
        args.root.as_deref(),
        args.output.as_deref(),
    )
    .map_err(|e| {
        let code = match e {
            ExportError::Write { .. } => exit::IO,
            ExportError::State(_) | ExportError::Layer { .. } => exit::INVALID,
        };
        Failure::new(code, e.to_string())
    })?;
    emit(out, &format!("{}\n", export.url))?;
    if !export.left_out.is_empty() {
        eprintln!(
            "left out (computed in Segno, no array neuroglancer can read): {}",
            export.left_out.join(", ")
        );
    }
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
