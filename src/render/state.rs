//! The viewer's state as users save it: position, zoom, layout, layers with their drawing
//! settings and error overlays, kept as JSON (`*.view.json`) and exportable as a
//! neuroglancer state.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::colors::Colormap;
use super::layer::{LayerKind, WorldNm};
use super::orientation::Orientation;

/// Errors reading or writing a view state; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file cannot be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The file is not a valid view state.
    #[error("{path}: not a Segno view state: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (serde's message names the field).
        message: String,
    },
}

/// Panel arrangements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Layout {
    /// xy, xz, yz and 3D in a 2×2 grid (neuroglancer's `4panel`).
    #[serde(rename = "4panel")]
    FourPanel,
    /// The xy plane alone.
    #[serde(rename = "xy")]
    Xy,
    /// The xz plane alone.
    #[serde(rename = "xz")]
    Xz,
    /// The yz plane alone.
    #[serde(rename = "yz")]
    Yz,
    /// The 3D view alone.
    #[serde(rename = "3d")]
    ThreeD,
}

impl Layout {
    /// The order space cycles through.
    pub const CYCLE: [Layout; 5] = [
        Layout::FourPanel,
        Layout::Xy,
        Layout::Xz,
        Layout::Yz,
        Layout::ThreeD,
    ];

    /// The next layout in [`Layout::CYCLE`].
    pub fn next(self) -> Layout {
        let i = Self::CYCLE.iter().position(|l| *l == self).unwrap_or(0);
        Self::CYCLE[(i + 1) % Self::CYCLE.len()]
    }

    /// Neuroglancer's name of the layout.
    pub fn name(self) -> &'static str {
        match self {
            Layout::FourPanel => "4panel",
            Layout::Xy => "xy",
            Layout::Xz => "xz",
            Layout::Yz => "yz",
            Layout::ThreeD => "3d",
        }
    }
}

/// How a layer's colour combines with the layers below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Blend {
    /// Over the layers below, by opacity.
    #[default]
    Default,
    /// Added to the layers below.
    Additive,
}

/// How an image or prediction layer's values are read between voxel centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// Each pixel shows the voxel it falls in.
    #[default]
    Nearest,
    /// Zoomed in past one pixel per voxel on an axis-aligned plane, each pixel shows the
    /// bilinear interpolation of the four voxel centres around it in the plane, along each
    /// axis where a voxel covers more than a pixel. Rotated planes, threshold previews
    /// and error overlays always show the voxels themselves.
    Linear,
}

impl Sampling {
    /// Both samplings, in the order the side panel lists them.
    pub const ALL: [Sampling; 2] = [Sampling::Nearest, Sampling::Linear];

    /// Its name in the side panel.
    pub fn label(self) -> &'static str {
        match self {
            Sampling::Nearest => "nearest",
            Sampling::Linear => "linear",
        }
    }
}

/// Drawing settings of an image layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageSettings {
    /// Values mapped to the colormap's ends (an invlerp range; lo > hi inverts too).
    pub range: [f64; 2],
    /// Flip the colormap.
    pub invert: bool,
    /// The colormap.
    pub colormap: Colormap,
    /// Opacity in [0, 1].
    pub opacity: f32,
    /// Blending with the layers below.
    pub blend: Blend,
    /// Reading values between voxel centres.
    pub sampling: Sampling,
}

impl Default for ImageSettings {
    fn default() -> Self {
        Self {
            range: [0.0, 255.0],
            invert: false,
            colormap: Colormap::Grey,
            opacity: 1.0,
            blend: Blend::Default,
            sampling: Sampling::Nearest,
        }
    }
}

/// Drawing settings of a segmentation layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentationSettings {
    /// Selected segment ids (drawn at `selected_alpha`).
    pub selected: Vec<u64>,
    /// Show only the selected segments.
    pub isolate: bool,
    /// Do not draw id 0 (background).
    pub hide_zero: bool,
    /// Opacity of selected (and hovered) segments.
    pub selected_alpha: f32,
    /// Opacity of the other segments.
    pub unselected_alpha: f32,
    /// Neuroglancer's colour seed.
    pub color_seed: u32,
}

impl Default for SegmentationSettings {
    fn default() -> Self {
        Self {
            selected: Vec::new(),
            isolate: false,
            hide_zero: true,
            selected_alpha: 0.75,
            unselected_alpha: 0.5,
            color_seed: 0,
        }
    }
}

/// Drawing settings of a prediction layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictionSettings {
    /// Values mapped to zero and full intensity.
    pub range: [f64; 2],
    /// One channel: its heatmap colormap.
    pub colormap: Colormap,
    /// More channels: the colour of each (up to four are drawn).
    pub channel_colors: Vec<[u8; 3]>,
    /// Opacity in [0, 1].
    pub opacity: f32,
    /// Blending with the layers below.
    pub blend: Blend,
    /// Threshold preview: when set, a channel is drawn fully above this value and not at
    /// all below it, as thresholding post-processing would segment it.
    pub threshold: Option<f32>,
    /// Reading values between voxel centres (the threshold preview always reads voxels).
    pub sampling: Sampling,
}

/// Colours of the first four channels of multi-channel predictions.
pub const CHANNEL_COLORS: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [0, 96, 255], [255, 255, 0]];

impl Default for PredictionSettings {
    fn default() -> Self {
        Self {
            range: [0.0, 1.0],
            colormap: Colormap::Magma,
            channel_colors: CHANNEL_COLORS.to_vec(),
            opacity: 0.6,
            blend: Blend::Default,
            threshold: None,
            sampling: Sampling::Nearest,
        }
    }
}

/// A layer's drawing settings, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LayerSettings {
    /// An image layer.
    Image(ImageSettings),
    /// A segmentation layer.
    Segmentation(SegmentationSettings),
    /// A prediction layer.
    Prediction(PredictionSettings),
}

impl LayerSettings {
    /// The default settings of `kind`.
    pub fn for_kind(kind: LayerKind) -> Self {
        match kind {
            LayerKind::Image => LayerSettings::Image(ImageSettings::default()),
            LayerKind::Segmentation => LayerSettings::Segmentation(SegmentationSettings::default()),
            LayerKind::Prediction => LayerSettings::Prediction(PredictionSettings::default()),
        }
    }

    /// The kind these settings draw.
    pub fn kind(&self) -> LayerKind {
        match self {
            LayerSettings::Image(_) => LayerKind::Image,
            LayerSettings::Segmentation(_) => LayerKind::Segmentation,
            LayerSettings::Prediction(_) => LayerKind::Prediction,
        }
    }
}

/// One layer of a view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerState {
    /// The name shown (unique within the view).
    pub name: String,
    /// The array path (absolute, or relative to the state file's directory).
    pub source: PathBuf,
    /// Drawn or hidden.
    #[serde(default = "yes")]
    pub visible: bool,
    /// How it is drawn.
    pub settings: LayerSettings,
    /// For a layer computed by a network (a live prediction over `source`): which run and
    /// checkpoint compute it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<crate::ops::live::LiveSource>,
}

fn yes() -> bool {
    true
}

/// Colours errors between a ground-truth layer and a prediction or output layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorOverlay {
    /// The ground-truth layer's name.
    pub truth: String,
    /// The prediction or output layer's name.
    pub prediction: String,
    /// Shown or not.
    #[serde(default = "yes")]
    pub visible: bool,
    /// Instance mode: highlight split and merged objects, not only voxel errors.
    #[serde(default)]
    pub instances: bool,
    /// Predictions (floats) above this count as foreground.
    #[serde(default = "half")]
    pub threshold: f32,
    /// Opacity of the overlay.
    #[serde(default = "overlay_alpha")]
    pub alpha: f32,
    /// A layer marking where the truth is annotated (non-zero); errors are coloured only
    /// there (and always only inside the truth's region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
}

fn half() -> f32 {
    0.5
}

fn overlay_alpha() -> f32 {
    0.6
}

/// Colours of the error overlay (RGB): true positive, false positive, false negative,
/// a split object, a merged object.
pub mod overlay_colors {
    /// Truth and prediction agree on foreground.
    pub const TRUE_POSITIVE: [u8; 3] = [0, 200, 0];
    /// Predicted foreground where the truth has background.
    pub const FALSE_POSITIVE: [u8; 3] = [255, 0, 255];
    /// Truth foreground the prediction misses.
    pub const FALSE_NEGATIVE: [u8; 3] = [0, 160, 255];
    /// A true object covered by several predicted objects.
    pub const SPLIT: [u8; 3] = [255, 160, 0];
    /// A predicted object covering several true objects.
    pub const MERGE: [u8; 3] = [255, 0, 0];
    /// The outline of the ground truth's region (outside it nothing is judged).
    pub const REGION: [u8; 3] = [255, 220, 0];
}

/// The saved state of a view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewState {
    /// The world point at the centre of every panel (z, y, x in nm).
    pub position_nm: WorldNm,
    /// Zoom of the cross-sections: nanometres per screen pixel.
    pub zoom_nm_per_px: f64,
    /// The rotation of the cross-sections about `position_nm` (neuroglancer's
    /// `crossSectionOrientation`, a quaternion `[x, y, z, w]`); absent: axis-aligned.
    #[serde(default, skip_serializing_if = "Orientation::is_identity")]
    pub orientation: Orientation,
    /// The panel arrangement.
    pub layout: Layout,
    /// Layers, bottom first.
    pub layers: Vec<LayerState>,
    /// Error overlays between pairs of layers.
    #[serde(default)]
    pub overlays: Vec<ErrorOverlay>,
    /// The layer whose settings are shown.
    #[serde(default)]
    pub selected_layer: Option<String>,
    /// Draw cross-hairs at the centre.
    #[serde(default = "yes")]
    pub cross_hairs: bool,
    /// Draw a scale bar.
    #[serde(default = "yes")]
    pub scale_bar: bool,
    /// The 3D panel's camera: yaw about y, then pitch about x, in degrees.
    #[serde(default = "default_orbit")]
    pub orbit_deg: [f64; 2],
    /// The 3D panel's zoom: 1 fits the volume in the panel.
    #[serde(default = "one")]
    pub orbit_zoom: f64,
}

fn one() -> f64 {
    1.0
}

fn default_orbit() -> [f64; 2] {
    [35.0, 25.0]
}

impl Default for ViewState {
    fn default() -> Self {
        Self {
            position_nm: WorldNm::default(),
            zoom_nm_per_px: 1.0,
            orientation: Orientation::IDENTITY,
            layout: Layout::FourPanel,
            layers: Vec::new(),
            overlays: Vec::new(),
            selected_layer: None,
            cross_hairs: true,
            scale_bar: true,
            orbit_deg: default_orbit(),
            orbit_zoom: 1.0,
        }
    }
}

impl ViewState {
    /// Reads a state file; relative layer paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<ViewState, StateError> {
        let text = std::fs::read_to_string(path).map_err(|e| StateError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut state: ViewState =
            serde_json::from_str(&text).map_err(|e| StateError::Invalid {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for l in &mut state.layers {
            if l.source.is_relative() {
                l.source = base.join(&l.source);
            }
            if let Some(m) = &mut l.model {
                for p in [&mut m.project, &mut m.raw] {
                    if p.is_relative() {
                        *p = base.join(&*p);
                    }
                }
            }
        }
        state.check().map_err(|message| StateError::Invalid {
            path: path.display().to_string(),
            message,
        })?;
        Ok(state)
    }

    /// Checks values serde cannot: a positive zoom, unique layer names, overlays naming
    /// existing layers.
    pub fn check(&self) -> Result<(), String> {
        if !(self.zoom_nm_per_px.is_finite() && self.zoom_nm_per_px > 0.0) {
            return Err(format!(
                "zoom_nm_per_px must be a positive number, got {}",
                self.zoom_nm_per_px
            ));
        }
        self.orientation.check()?;
        if !(self.orbit_zoom.is_finite() && self.orbit_zoom > 0.0) {
            return Err(format!(
                "orbit_zoom must be a positive number, got {}",
                self.orbit_zoom
            ));
        }
        for (i, l) in self.layers.iter().enumerate() {
            if self.layers[..i].iter().any(|o| o.name == l.name) {
                return Err(format!("layers: the name {:?} is used twice", l.name));
            }
        }
        for o in &self.overlays {
            for n in [Some(&o.truth), Some(&o.prediction), o.mask.as_ref()]
                .into_iter()
                .flatten()
            {
                if !self.layers.iter().any(|l| &l.name == n) {
                    return Err(format!("overlays: no layer named {n:?}"));
                }
            }
        }
        Ok(())
    }

    /// Writes the state atomically (temp file + rename), replacing an older one.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| StateError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        crate::store::atomic::write_atomic(path, text.as_bytes(), true).map_err(|e| {
            StateError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            }
        })
    }

    /// The index of the layer named `name`.
    pub fn layer_index(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ViewState {
        ViewState {
            position_nm: WorldNm([10.0, 20.0, 30.0]),
            zoom_nm_per_px: 2.5,
            orientation: Orientation::IDENTITY,
            layout: Layout::Xz,
            layers: vec![
                LayerState {
                    name: "raw".into(),
                    source: "data.zarr/raw".into(),
                    visible: true,
                    settings: LayerSettings::Image(ImageSettings {
                        colormap: Colormap::Viridis,
                        ..ImageSettings::default()
                    }),
                    model: None,
                },
                LayerState {
                    name: "gt".into(),
                    source: "/abs/data.zarr/gt".into(),
                    visible: false,
                    settings: LayerSettings::Segmentation(SegmentationSettings {
                        selected: vec![7, u64::MAX],
                        ..SegmentationSettings::default()
                    }),
                    model: None,
                },
            ],
            overlays: vec![ErrorOverlay {
                truth: "gt".into(),
                prediction: "raw".into(),
                visible: true,
                instances: false,
                threshold: 0.5,
                alpha: 0.6,
                mask: None,
            }],
            selected_layer: Some("gt".into()),
            cross_hairs: true,
            scale_bar: false,
            orbit_deg: [10.0, 20.0],
            orbit_zoom: 1.0,
        }
    }

    #[test]
    fn a_saved_state_loads_back_with_relative_paths_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.view.json");
        let s = state();
        s.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"layout\": \"xz\""), "{text}");
        assert!(text.contains("\"type\": \"segmentation\""), "{text}");
        // Axis-aligned planes write no orientation.
        assert!(!text.contains("orientation"), "{text}");
        let back = ViewState::load(&path).unwrap();
        assert_eq!(back.layers[0].source, dir.path().join("data.zarr/raw"));
        assert_eq!(back.layers[1].source, PathBuf::from("/abs/data.zarr/gt"));
        let mut expected = s;
        expected.layers[0].source = dir.path().join("data.zarr/raw");
        assert_eq!(back, expected);
        // A rotation is kept exactly.
        let mut rotated = expected.clone();
        rotated.orientation = Orientation::IDENTITY.rotated([0.3, 0.2, 1.0], 0.7);
        rotated.save(&path).unwrap();
        assert_eq!(ViewState::load(&path).unwrap(), rotated);
    }

    #[test]
    fn bad_states_name_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        let mut s = state();
        s.zoom_nm_per_px = -1.0;
        std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
        let e = ViewState::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("bad.json") && e.contains("zoom_nm_per_px"),
            "{e}"
        );
        let mut s = state();
        s.overlays[0].truth = "nope".into();
        std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
        let e = ViewState::load(&path).unwrap_err().to_string();
        assert!(e.contains("\"nope\""), "{e}");
        std::fs::write(
            &path,
            r#"{"position_nm":[0,0,0],"zoom_nm_per_px":1,"layout":"5panel","layers":[]}"#,
        )
        .unwrap();
        let e = ViewState::load(&path).unwrap_err().to_string();
        assert!(e.contains("5panel"), "{e}");
        let mut s = state();
        s.orientation = Orientation([0.0; 4]);
        std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
        let e = ViewState::load(&path).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("orientation"), "{e}");
        assert_eq!(Layout::ThreeD.next(), Layout::FourPanel);
        assert_eq!(Layout::FourPanel.next(), Layout::Xy);
    }
}
