//! A run's validation arrays in the viewer: the prediction and output layers whose
//! iteration and post-processing parameters can be changed, and the error overlay against
//! the ground truth with the run's best threshold.

use super::side_panel::threshold_ui;
use super::*;

/// A run's validation prediction and output on show in the viewer: the iteration slider
/// and parameter choice swap these layers' arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationBrowse {
    /// The run's name.
    pub run: String,
    /// The run's directory.
    pub run_dir: PathBuf,
    /// The validation dataset shown.
    pub dataset: String,
    /// Iterations with stored validation arrays, ascending.
    pub iterations: Vec<u64>,
    /// Index into `iterations` of the one shown.
    pub index: usize,
    /// Parameter sets with a stored output at the shown iteration.
    pub parameters: Vec<String>,
    /// The parameter set whose output is shown.
    pub parameter: Option<String>,
    /// Name of the prediction layer.
    pub prediction_layer: String,
    /// Name of the output layer, if one is shown.
    pub output_layer: Option<String>,
}

impl ValidationBrowse {
    /// The iteration shown.
    pub fn iteration(&self) -> u64 {
        self.iterations.get(self.index).copied().unwrap_or(0)
    }

    /// The prediction array of the shown iteration.
    pub fn prediction_path(&self) -> PathBuf {
        RunDir::from_dir(&self.run_dir).validation_prediction(self.iteration(), &self.dataset)
    }

    /// The output array of the shown iteration and parameter set.
    pub fn output_path(&self) -> Option<PathBuf> {
        let p = self.parameter.as_ref()?;
        Some(RunDir::from_dir(&self.run_dir).validation_output(self.iteration(), &self.dataset, p))
    }

    /// The parameter sets with an output stored at the shown iteration, sorted.
    pub fn stored_parameters(&self) -> Vec<String> {
        let key = crate::store::layout::dataset_key(&self.dataset);
        RunDir::from_dir(&self.run_dir)
            .validation_arrays(self.iteration())
            .into_iter()
            .find(|a| a.dataset == key)
            .map(|a| a.outputs.into_iter().map(|(name, _)| name).collect())
            .unwrap_or_default()
    }
}

impl Viewer {
    /// Shows the validation iteration at `index` (and `parameter`'s output) of the browsed
    /// run in its prediction and output layers.
    pub fn browse_to(&mut self, index: usize, parameter: Option<String>) {
        let Some(mut b) = self.validation.clone() else {
            return;
        };
        b.index = index.min(b.iterations.len().saturating_sub(1));
        b.parameters = b.stored_parameters();
        b.parameter = parameter
            .filter(|p| b.parameters.contains(p))
            .or_else(|| b.parameters.first().cloned());
        if let Some(i) = self.layer_index(&b.prediction_layer) {
            self.replace_source(i, &b.prediction_path());
        }
        if let (Some(name), Some(path)) = (&b.output_layer, b.output_path()) {
            if let Some(i) = self.layer_index(name) {
                self.replace_source(i, &path);
            }
        }
        // Overlays of the prediction follow the parameter set's threshold.
        if let Some(t) = b.parameter.as_deref().and_then(threshold_of) {
            for o in &mut self.state.overlays {
                if o.prediction == b.prediction_layer {
                    o.threshold = t;
                }
            }
        }
        self.validation = Some(b);
    }

    pub(super) fn browse_ui(&mut self, ui: &mut egui::Ui) {
        let Some(b) = self.validation.clone() else {
            return;
        };
        if self.layer_index(&b.prediction_layer).is_none() {
            self.validation = None;
            return;
        }
        ui.label(egui::RichText::new(format!("Run {} on {}", b.run, b.dataset)).strong());
        let mut index = b.index;
        let last = b.iterations.len().saturating_sub(1);
        ui.horizontal(|ui| {
            let l = ui.label(format!("iteration {}", b.iteration()));
            ui.add_enabled(
                last > 0,
                egui::Slider::new(&mut index, 0..=last).show_value(false),
            )
            .labelled_by(l.id)
            .on_hover_text("the validation iterations of the run");
        });
        let mut parameter = b.parameter.clone();
        if !b.parameters.is_empty() {
            egui::ComboBox::from_label("output parameters")
                .selected_text(parameter.clone().unwrap_or_default())
                .show_ui(ui, |ui| {
                    for p in &b.parameters {
                        ui.selectable_value(&mut parameter, Some(p.clone()), p);
                    }
                });
        }
        if index != b.index || parameter != b.parameter {
            self.browse_to(index, parameter);
        }
        if let Some(i) = self.layer_index(&b.prediction_layer) {
            if let LayerSettings::Prediction(s) = &mut self.state.layers[i].settings {
                threshold_ui(ui, s);
            }
        }
        ui.separator();
    }

    /// The threshold an error overlay applies to the float layer named `name` by default:
    /// the run's chosen post-processing threshold — of the browsed validation's parameter
    /// set, or as `segno predict` recorded it in the array's attributes — else 0.5.
    pub fn default_threshold(&self, name: &str) -> f32 {
        if let Some(b) = &self.validation {
            if b.prediction_layer == name {
                if let Some(t) = b.parameter.as_deref().and_then(threshold_of) {
                    return t;
                }
            }
        }
        let recorded = self
            .layer_index(name)
            .and_then(|i| crate::array::open(&self.state.layers[i].source).ok())
            .and_then(|a| {
                a.attributes()?
                    .get("segno_prediction")?
                    .get("threshold")?
                    .as_f64()
            });
        recorded.map_or(0.5, |t| t as f32)
    }

    /// Adds (or updates) the error overlay of the browsed run's ground truth against its
    /// prediction, thresholded at the shown parameter set and limited to the dataset's mask.
    pub fn overlay_validation(&mut self, truth: &str, mask: Option<String>) {
        let Some(b) = &self.validation else { return };
        let prediction = b.prediction_layer.clone();
        let threshold = self.default_threshold(&prediction);
        self.state
            .overlays
            .retain(|o| !(o.truth == truth && o.prediction == prediction));
        self.state.overlays.push(ErrorOverlay {
            truth: truth.to_string(),
            prediction,
            visible: true,
            instances: false,
            threshold,
            alpha: 0.6,
            mask,
        });
    }
}

/// The threshold of a thresholding parameter set's name (`threshold_-0.2` → -0.2).
pub fn threshold_of(parameters: &str) -> Option<f32> {
    parameters.strip_prefix("threshold_")?.parse().ok()
}
