//! The view `segno demo` saves next to its project: the raw data, a ground-truth crop and
//! the applied prediction with the error overlay on, ready for `segno gui --view`.

use std::path::{Path, PathBuf};

use crate::render::state::{ErrorOverlay, ViewState};

/// Writes `<project>/demo.view.json` in the 4-panel layout: `raw`; the ground truth
/// `truth` (when given) with the error overlay of `prediction` against it, thresholded
/// where post-processing thresholded, the view centred on the crop; the prediction; and the
/// segmentation, hidden (press its number to show it). Returns the file written, or why
/// it could not be.
pub fn write_demo_view(
    project: &Path,
    raw: &Path,
    truth: Option<&Path>,
    prediction: &Path,
    segmentation: &Path,
) -> Result<PathBuf, String> {
    let mut viewer = super::viewer::Viewer::new(1 << 20);
    viewer.add_layer(raw);
    if let Some(t) = truth {
        viewer.add_layer(t);
    }
    viewer.add_layer(prediction);
    viewer.add_layer(segmentation);
    let n = viewer.state.layers.len();
    if let Some(last) = viewer.state.layers.last_mut() {
        last.visible = false;
    }
    if truth.is_some() && n == 4 {
        let truth_name = viewer.state.layers[1].name.clone();
        let prediction_name = viewer.state.layers[2].name.clone();
        let threshold = viewer.default_threshold(&prediction_name);
        viewer.state.overlays.push(ErrorOverlay {
            truth: truth_name,
            prediction: prediction_name,
            visible: true,
            instances: false,
            threshold,
            alpha: 0.6,
            mask: None,
        });
        viewer.centre_on(1);
    }
    let state: ViewState = viewer.state.clone();
    let path = project.join("demo.view.json");
    state.save(&path).map_err(|e| e.to_string())?;
    Ok(path)
}
