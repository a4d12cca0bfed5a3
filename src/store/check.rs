//! Checks of a config against the project it is stored in: the files and arrays it names
//! (a pretrained task's weights file, a run's raw data against its network's axes). What
//! cannot be opened to check is a warning, not a refusal: data may live on another mount.

use std::path::Path;

use crate::config::{
    AnyConfig, ArchitectureConfig, DataSplitConfig, DatasetConfig, Problems, RunConfig, TaskConfig,
};

/// What [`against_project`] found.
#[derive(Debug, Default)]
pub struct ProjectCheck {
    /// Problems that make the config unusable, with their field paths.
    pub problems: Problems,
    /// Things that could not be checked, with their field paths.
    pub warnings: Vec<String>,
}

fn task_files(task: &TaskConfig, path: &str, root: &Path, out: &mut ProjectCheck) {
    if let TaskConfig::Pretrained(t) = task {
        let file = crate::array::open::resolve_path(root, &t.weights);
        if !file.is_file() {
            out.problems.push(
                &crate::config::schema::child(path, "weights"),
                format!(
                    "no such file {} (relative paths are read from the project {})",
                    file.display(),
                    root.display()
                ),
            );
        }
        task_files(
            &t.sub_task_config,
            &crate::config::schema::child(path, "sub_task_config"),
            root,
            out,
        );
    }
}

fn run_data(run: &RunConfig, root: &Path, out: &mut ProjectCheck) {
    let ArchitectureConfig::CnnectomeUnet(unet) = &run.architecture_config else {
        return;
    };
    let DataSplitConfig::TrainValidate(split) = &run.datasplit_config else {
        return;
    };
    let axes = unet.input_shape.dims();
    let roles = [
        ("train_configs", &split.train_configs),
        ("validate_configs", &split.validate_configs),
    ];
    for (key, datasets) in roles {
        for (i, d) in datasets.iter().enumerate() {
            let DatasetConfig::RawGt(d) = d else { continue };
            let Some(raw) = &d.raw_config else { continue };
            let at = format!("datasplit_config.{key}[{i}].raw_config");
            match crate::array::open::open_config(raw, root) {
                Ok(array) => {
                    let vs = array.info().geometry.voxel_size;
                    if vs.dims() != axes {
                        out.problems.push(
                            "architecture_config.input_shape",
                            format!(
                                "{} has {axes} axes, but the raw data of dataset `{}` has {} spatial axes (voxel size {vs} nm): use a {}D network, or give a 2D network a 3D input shape such as (1, …)",
                                unet.input_shape,
                                d.name,
                                vs.dims(),
                                vs.dims()
                            ),
                        );
                        return;
                    }
                }
                Err(e) => out.warnings.push(format!(
                    "{at}: cannot be opened to check it against the architecture: {e}"
                )),
            }
        }
    }
}

/// Checks `config` against the project at `root` (the directory holding `configs/`).
pub fn against_project(config: &AnyConfig, root: &Path) -> ProjectCheck {
    let mut out = ProjectCheck::default();
    match config {
        AnyConfig::Task(t) => task_files(t, "", root, &mut out),
        AnyConfig::Run(r) => {
            task_files(&r.task_config, "task_config", root, &mut out);
            run_data(r, root, &mut out);
        }
        _ => {}
    }
    out
}
