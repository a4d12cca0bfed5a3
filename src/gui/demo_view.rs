//! The view `segno demo` saves next to its project: the raw data with the applied
//! prediction and segmentation, ready for `segno gui --view`.

use std::path::{Path, PathBuf};

use crate::render::state::{LayerSettings, LayerState, ViewState};

/// Writes `<project>/demo.view.json`: the raw data with the prediction and segmentation
/// in the 4-panel layout, the prediction hidden (press 2 to show it) under the
/// segmentation. Returns the file written, or why it could not be.
pub fn write_demo_view(
    project: &Path,
    raw: &Path,
    prediction: &Path,
    segmentation: &Path,
) -> Result<PathBuf, String> {
    let mut viewer = super::viewer::Viewer::new(1 << 20);
    for layer in [raw, prediction, segmentation] {
        viewer.add_layer(layer);
    }
    let mut state: ViewState = viewer.state.clone();
    if let Some(LayerState {
        visible,
        settings: LayerSettings::Prediction(_),
        ..
    }) = state.layers.get_mut(1)
    {
        *visible = false;
    }
    let path = project.join("demo.view.json");
    state.save(&path).map_err(|e| e.to_string())?;
    Ok(path)
}
