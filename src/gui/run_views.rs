//! A run's data in the viewer: the training crop with its targets, and a validation
//! iteration's prediction and output over the ground truth with the error overlay.

use super::window::project_array_path;
use super::*;

/// The validation datasets of a datasplit: name, and the zarr sources of raw and ground truth.
/// A validation dataset's name with the zarr sources of its raw data, ground truth and
/// (when it is a stored array) mask.
pub(super) type ValidationDataset = (
    String,
    Option<(String, String)>,
    Option<(String, String)>,
    Option<(String, String)>,
);

pub(super) fn validation_datasets(
    split: &crate::config::DataSplitConfig,
) -> Vec<ValidationDataset> {
    let crate::config::DataSplitConfig::TrainValidate(s) = split else {
        return Vec::new();
    };
    s.validate_configs
        .iter()
        .map(|d| match d {
            crate::config::DatasetConfig::RawGt(d) => (
                d.name.clone(),
                d.raw_config.as_ref().and_then(|a| a.zarr_source()),
                d.gt_config.as_ref().and_then(|a| a.zarr_source()),
                // A mask made from other arrays (ones over the ground truth, …) has no
                // array of its own to show.
                match &d.mask_config {
                    Some(m @ crate::config::ArrayConfig::Zarr(_)) => m.zarr_source(),
                    _ => None,
                },
            ),
            other => (other.name().to_string(), None, None, None),
        })
        .collect()
}

/// The array to open for `path`: an OME-Zarr scale level (`…/s0`) opens as its multiscale
/// group so the viewer gets every level.
pub(super) fn open_path(path: &Path) -> PathBuf {
    let level = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() > 1 && n.starts_with('s') && n[1..].parse::<u32>().is_ok());
    match path.parent() {
        Some(parent) if level && crate::render::layer::open_layer(parent).is_ok() => {
            parent.to_path_buf()
        }
        _ => path.to_path_buf(),
    }
}

impl SegnoApp {
    /// Removes every layer and overlay from the viewer, keeping its view settings.
    pub(super) fn clear_viewer(&mut self) {
        let mut state = self.viewer.state.clone();
        state.layers.clear();
        state.overlays.clear();
        state.selected_layer = None;
        self.viewer.set_state(state);
    }

    /// Shows `run`'s latest checkpoint computing over its first validation dataset's raw
    /// data (with its ground truth), or over the project's raw array, following new
    /// checkpoints as the run trains.
    pub fn predict_here(&mut self, run: &str) {
        let Some(p) = &self.project else {
            return;
        };
        let root = p.root.clone();
        let dataset = match p
            .store()
            .configs()
            .retrieve(crate::config::Family::Runs, run)
        {
            Ok(crate::config::AnyConfig::Run(c)) => validation_datasets(&c.datasplit_config)
                .into_iter()
                .find(|d| d.1.is_some()),
            _ => None,
        };
        let resolve = |source: (String, String)| open_path(&project_array_path(&root, source));
        let (raw, gt) = match dataset {
            Some((_, raw, gt, _)) => (raw.map(resolve), gt.map(resolve)),
            None => (None, None),
        };
        let raw = raw.or_else(|| {
            self.project_arrays
                .iter()
                .find(|p| p.file_name().is_some_and(|n| n == "raw"))
                .cloned()
        });
        let Some(raw) = raw else {
            self.message = Some(format!("no raw data to predict with run {run:?}"));
            return;
        };
        self.clear_viewer();
        self.viewer.add_layer(&raw);
        if let Some(gt) = gt {
            self.viewer.add_layer(&gt);
        }
        self.viewer.centre_on(0);
        self.viewer.add_model_layer(crate::ops::live::LiveSource {
            project: root,
            run: run.to_string(),
            iteration: None,
            raw,
            segmentation: None,
        });
        self.settings.section = Section::Viewer;
    }

    /// Writes the targets and weights of a run's task for its first training crop into
    /// `<run>/targets.zarr` and shows them in the viewer over the crop's raw data and
    /// ground truth.
    pub fn view_targets(&mut self, run: &str) {
        let Some(p) = &self.project else {
            return;
        };
        let root = p.root.clone();
        let config = match p
            .store()
            .configs()
            .retrieve(crate::config::Family::Runs, run)
        {
            Ok(crate::config::AnyConfig::Run(c)) => c,
            Ok(_) => return,
            Err(e) => {
                self.message = Some(e.to_string());
                return;
            }
        };
        let container = RunDir::new(&root, run).targets_container();
        let (report, dataset) =
            match crate::ops::inspect::write_run_targets(&root, &config, None, &container, true) {
                Ok(r) => r,
                Err(e) => {
                    self.message = Some(format!("targets of run {run:?}: {e}"));
                    return;
                }
            };
        self.clear_viewer();
        self.viewer.validation = None;
        let resolve = |source: (String, String)| project_array_path(&root, source);
        for source in [
            dataset.raw_config.as_ref().and_then(|a| a.zarr_source()),
            dataset.gt_config.as_ref().and_then(|a| a.zarr_source()),
        ]
        .into_iter()
        .flatten()
        {
            self.viewer.add_layer(&resolve(source));
        }
        self.viewer.add_layer(&report.target);
        let n = self.viewer.state.layers.len();
        self.viewer.state.layers[n - 1].name = format!("target ({})", dataset.name);
        self.viewer.centre_on(n - 1);
        self.viewer.add_layer(&report.weight);
        let n = self.viewer.state.layers.len();
        self.viewer.state.layers[n - 1].name = format!("weight ({})", dataset.name);
        self.viewer.state.layers[n - 1].visible = false;
        self.message = Some(format!(
            "targets of run {run} on {}: {}",
            dataset.name,
            report.target.display()
        ));
        self.settings.section = Section::Viewer;
    }

    /// Shows an applied run's result in the viewer: the input, the prediction and the
    /// segmentation over it, centred on the prediction.
    pub fn view_applied(&mut self, raw: &Path, prediction: &Path, segmentation: &Path) {
        self.clear_viewer();
        self.viewer.validation = None;
        for path in [raw, prediction, segmentation] {
            self.viewer.add_layer(&open_path(path));
        }
        if let Some(i) = self.viewer.state.layers.len().checked_sub(2) {
            self.viewer.centre_on(i);
        }
        self.message = Some(format!("applied: {}", segmentation.display()));
        self.settings.section = Section::Viewer;
    }

    /// Shows a run's validation in the viewer: the validation dataset's raw data and
    /// ground truth with the prediction and the output of `parameters` at `iteration`
    /// (the latest iteration and the first stored parameters when not given). The
    /// viewer's iteration slider and parameter choice then swap the prediction and output.
    pub fn view_iteration(
        &mut self,
        run: &str,
        iteration: Option<u64>,
        parameters: Option<String>,
    ) {
        let Some(p) = &self.project else {
            return;
        };
        let root = p.root.clone();
        let layout = RunDir::new(&root, run);
        let run_dir = layout.dir().to_path_buf();
        let iterations = layout.validated_iterations();
        let Some(latest) = iterations.last().copied() else {
            self.message = Some(format!("run {run:?} has no validation arrays yet"));
            return;
        };
        let config = match p
            .store()
            .configs()
            .retrieve(crate::config::Family::Runs, run)
        {
            Ok(crate::config::AnyConfig::Run(c)) => Some(c),
            _ => None,
        };
        // The validation dataset: the one validation wrote arrays for, with its sources.
        let datasets = config
            .as_ref()
            .map(|c| validation_datasets(&c.datasplit_config))
            .unwrap_or_default();
        let index = iterations
            .iter()
            .position(|i| Some(*i) == iteration)
            .unwrap_or(iterations.len() - 1);
        let it = iterations[index];
        let chosen = datasets
            .iter()
            .find(|d| layout.validation_prediction(it, &d.0).exists())
            .cloned()
            .or_else(|| {
                // Without the config: the first dataset of that iteration.
                layout
                    .validation_arrays(latest)
                    .into_iter()
                    .next()
                    .map(|a| (a.dataset, None, None, None))
            });
        let Some((dataset, raw, gt, mask)) = chosen else {
            self.message = Some(format!("no validation prediction of run {run:?} found"));
            return;
        };
        self.clear_viewer();
        let resolve = |source: (String, String)| project_array_path(&root, source);
        let raw = raw.map(resolve).or_else(|| {
            self.project_arrays
                .iter()
                .find(|p| p.file_name().is_some_and(|n| n == "raw"))
                .cloned()
        });
        if let Some(raw) = raw {
            self.viewer.add_layer(&raw);
        }
        let mut truth_layer = None;
        if let Some(gt) = gt.map(resolve) {
            self.viewer.add_layer(&gt);
            truth_layer = self.viewer.state.layers.last().map(|l| l.name.clone());
        }
        let mut mask_layer = None;
        if let Some(mask) = mask.map(resolve) {
            self.viewer.add_layer(&mask);
            if let Some(l) = self.viewer.state.layers.last_mut() {
                l.visible = false;
                mask_layer = Some(l.name.clone());
            }
        }
        let mut browse = viewer::ValidationBrowse {
            run: run.to_string(),
            run_dir: run_dir.clone(),
            dataset,
            iterations,
            index,
            parameters: Vec::new(),
            parameter: None,
            prediction_layer: String::new(),
            output_layer: None,
        };
        browse.parameters = browse.stored_parameters();
        browse.parameter = parameters
            .filter(|p| browse.parameters.contains(p))
            .or_else(|| browse.parameters.first().cloned());
        self.viewer.add_layer(&browse.prediction_path());
        let n = self.viewer.state.layers.len();
        browse.prediction_layer = self.viewer.state.layers[n - 1].name.clone();
        self.viewer.centre_on(n - 1);
        if let Some(out) = browse.output_path() {
            self.viewer.add_layer(&out);
            let n = self.viewer.state.layers.len();
            let name = format!("output {}", browse.parameter.clone().unwrap_or_default());
            self.viewer.state.layers[n - 1].name = name.clone();
            browse.output_layer = Some(name);
        }
        self.viewer.validation = Some(browse);
        // Errors against the ground truth, judged where it is known.
        if let Some(truth) = truth_layer {
            self.viewer.overlay_validation(&truth, mask_layer);
        }
        self.settings.section = Section::Viewer;
    }
}
