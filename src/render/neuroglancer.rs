//! Export of a view as a neuroglancer state (JSON and a `#!` URL): the same layers, position,
//! zoom, layout and drawing settings, with the arrays served over HTTP from a base URL
//! (neuroglancer cannot read local files). [`export_view`] does it for a saved view file.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::colors::Colormap;
use super::layer::{open_layer, LayerData};
use super::state::{Blend, LayerSettings, StateError, ViewState};

/// The public neuroglancer instance URLs point at.
pub const NEUROGLANCER_APP: &str = "https://neuroglancer-demo.appspot.com/";

/// Where neuroglancer finds each layer's array.
pub struct Served<'a> {
    /// The base URL the directory `root` is served at (e.g. `http://127.0.0.1:9000/`).
    pub base_url: &'a str,
    /// The served directory; layer paths are made relative to it.
    pub root: &'a Path,
}

fn blend(b: Blend) -> &'static str {
    match b {
        Blend::Default => "default",
        Blend::Additive => "additive",
    }
}

/// GLSL for `colormap`: neuroglancer's own jet, grey, or a piecewise-linear copy of ours
/// through 9 control points (older neuroglancer versions have no viridis or magma).
fn colormap_glsl(c: Colormap) -> String {
    match c {
        Colormap::Grey => "vec3 cmap(float t) { return vec3(t); }".into(),
        Colormap::Jet => "vec3 cmap(float t) { return colormapJet(t); }".into(),
        other => {
            let points: Vec<String> = (0..9)
                .map(|i| {
                    let [r, g, b] = other.rgb(f64::from(i) / 8.0);
                    format!(
                        "vec3({:.4}, {:.4}, {:.4})",
                        f64::from(r) / 255.0,
                        f64::from(g) / 255.0,
                        f64::from(b) / 255.0
                    )
                })
                .collect();
            format!(
                "vec3 cmap(float t) {{\n  vec3 p[9] = vec3[9]({});\n  float x = clamp(t, 0.0, 1.0) * 8.0;\n  int i = int(min(floor(x), 7.0));\n  return mix(p[i], p[i + 1], x - float(i));\n}}",
                points.join(", ")
            )
        }
    }
}

fn source(layer: &LayerData, served: &Served<'_>, global_vs: [f64; 3]) -> Value {
    let path = layer
        .path
        .canonicalize()
        .unwrap_or_else(|_| layer.path.clone());
    let root = served
        .root
        .canonicalize()
        .unwrap_or_else(|_| served.root.to_path_buf());
    let rel = path
        .strip_prefix(&root)
        .unwrap_or(&path)
        .to_string_lossy()
        .replace('\\', "/");
    let base = served.base_url.trim_end_matches('/');
    let is_n5 = layer.path.components().any(|c| {
        c.as_os_str()
            .to_string_lossy()
            .to_ascii_lowercase()
            .ends_with(".n5")
    });
    let scheme = if is_n5 { "n5" } else { "zarr" };
    let url = format!("{scheme}://{base}/{}", rel.trim_start_matches('/'));
    if layer.ome_group {
        // OME-Zarr carries its own scales and translations.
        return json!(url);
    }
    let l = &layer.levels[0];
    let m = |v: f64| (v * 1e-9, "m");
    // Rows: global x, y, z; columns: the array's d0, d1, d2 (z, y, x), then translation in
    // global voxels.
    let matrix = json!([
        [0, 0, 1, l.offset_nm[2] / global_vs[2]],
        [0, 1, 0, l.offset_nm[1] / global_vs[1]],
        [1, 0, 0, l.offset_nm[0] / global_vs[0]],
    ]);
    json!({
        "url": url,
        "transform": {
            "inputDimensions": {
                "d0": [m(l.voxel_size_nm[0]).0, "m"],
                "d1": [m(l.voxel_size_nm[1]).0, "m"],
                "d2": [m(l.voxel_size_nm[2]).0, "m"],
            },
            "outputDimensions": {
                "x": [global_vs[2] * 1e-9, "m"],
                "y": [global_vs[1] * 1e-9, "m"],
                "z": [global_vs[0] * 1e-9, "m"],
            },
            "matrix": matrix,
        }
    })
}

/// The neuroglancer state of `view`, whose layers opened as `layers` (same order; `None`
/// for layers that did not open, which are left out).
pub fn state_json(view: &ViewState, layers: &[Option<&LayerData>], served: &Served<'_>) -> Value {
    let global_vs = layers
        .iter()
        .flatten()
        .next()
        .map(|d| d.levels[0].voxel_size_nm)
        .unwrap_or([1.0; 3]);
    let p = view.position_nm.0;
    let mut out = Map::new();
    out.insert(
        "dimensions".into(),
        json!({
            "x": [global_vs[2] * 1e-9, "m"],
            "y": [global_vs[1] * 1e-9, "m"],
            "z": [global_vs[0] * 1e-9, "m"],
        }),
    );
    out.insert(
        "position".into(),
        json!([
            p[2] / global_vs[2],
            p[1] / global_vs[1],
            p[0] / global_vs[0]
        ]),
    );
    let canonical = global_vs.iter().copied().fold(f64::INFINITY, f64::min);
    out.insert(
        "crossSectionScale".into(),
        json!(view.zoom_nm_per_px / canonical),
    );
    if !view.orientation.is_identity() {
        // Both are quaternions [x, y, z, w] over the x, y, z axes.
        out.insert(
            "crossSectionOrientation".into(),
            json!(view.orientation.normalized().0),
        );
    }
    out.insert("layout".into(), json!(view.layout.name()));
    out.insert("showAxisLines".into(), json!(view.cross_hairs));
    out.insert("showScaleBar".into(), json!(view.scale_bar));
    let mut list = Vec::new();
    for (st, data) in view.layers.iter().zip(layers) {
        // Layers computed in Segno (live predictions) have no array neuroglancer could
        // read: they are left out rather than pointed at their raw data, unless the
        // caller wrote their blocks out and passes that array instead.
        let Some(d) = data.filter(|d| !d.computed) else {
            continue;
        };
        let mut l = Map::new();
        l.insert("name".into(), json!(st.name));
        l.insert("source".into(), source(d, served, global_vs));
        if !st.visible {
            l.insert("visible".into(), json!(false));
        }
        match &st.settings {
            LayerSettings::Image(s) => {
                let range = if s.invert {
                    [s.range[1], s.range[0]]
                } else {
                    s.range
                };
                l.insert("type".into(), json!("image"));
                l.insert("opacity".into(), json!(s.opacity));
                l.insert("blend".into(), json!(blend(s.blend)));
                l.insert(
                    "shader".into(),
                    json!(format!(
                        "#uicontrol invlerp normalized\n{}\nvoid main() {{\n  emitRGB(cmap(normalized()));\n}}\n",
                        colormap_glsl(s.colormap)
                    )),
                );
                l.insert(
                    "shaderControls".into(),
                    json!({"normalized": {"range": range}}),
                );
            }
            LayerSettings::Prediction(s) => {
                l.insert("type".into(), json!("image"));
                l.insert("opacity".into(), json!(s.opacity));
                l.insert("blend".into(), json!(blend(s.blend)));
                let (lo, hi) = (s.range[0], s.range[1]);
                let span = if hi == lo { 1.0 } else { hi - lo };
                let shader = if d.channels <= 1 {
                    format!(
                        "{}\nvoid main() {{\n  emitRGB(cmap(clamp((getDataValue() - ({lo:.6})) / ({span:.6}), 0.0, 1.0)));\n}}\n",
                        colormap_glsl(s.colormap)
                    )
                } else {
                    let terms: Vec<String> = s
                        .channel_colors
                        .iter()
                        .take(d.channels.min(4))
                        .enumerate()
                        .map(|(k, c)| {
                            format!(
                                "  c += vec3({:.4}, {:.4}, {:.4}) * clamp((getDataValue({k}) - ({lo:.6})) / ({span:.6}), 0.0, 1.0);",
                                f64::from(c[0]) / 255.0,
                                f64::from(c[1]) / 255.0,
                                f64::from(c[2]) / 255.0
                            )
                        })
                        .collect();
                    format!(
                        "void main() {{\n  vec3 c = vec3(0.0);\n{}\n  emitRGB(min(c, vec3(1.0)));\n}}\n",
                        terms.join("\n")
                    )
                };
                l.insert("shader".into(), json!(shader));
            }
            LayerSettings::Segmentation(s) => {
                l.insert("type".into(), json!("segmentation"));
                let ids: Vec<String> = s.selected.iter().map(|i| i.to_string()).collect();
                l.insert("segments".into(), json!(ids));
                l.insert("hideSegmentZero".into(), json!(s.hide_zero));
                l.insert("selectedAlpha".into(), json!(s.selected_alpha));
                let others = if s.isolate { 0.0 } else { s.unselected_alpha };
                l.insert("notSelectedAlpha".into(), json!(others));
                l.insert("colorSeed".into(), json!(s.color_seed));
            }
        }
        list.push(Value::Object(l));
    }
    out.insert("layers".into(), Value::Array(list));
    if let Some(sel) = &view.selected_layer {
        out.insert(
            "selectedLayer".into(),
            json!({"layer": sel, "visible": true}),
        );
    }
    Value::Object(out)
}

/// `state` as a neuroglancer URL on `app` (`…/#!` and the percent-encoded JSON).
pub fn state_url(app: &str, state: &Value) -> String {
    let text = state.to_string();
    let mut out = String::with_capacity(text.len() * 2 + app.len() + 2);
    out.push_str(app);
    out.push_str("#!");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `view` as a neuroglancer state and its URL on the public instance, with the arrays
/// served from `base_url` (the directory `root` served over HTTP).
pub fn state_and_url(
    view: &ViewState,
    layers: &[Option<&LayerData>],
    base_url: &str,
    root: &Path,
) -> (Value, String) {
    let state = state_json(view, layers, &Served { base_url, root });
    let url = state_url(NEUROGLANCER_APP, &state);
    (state, url)
}

/// Why a saved view cannot be exported for neuroglancer.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The view state file cannot be read or is not a view state.
    #[error(transparent)]
    State(#[from] StateError),
    /// A layer's array does not open.
    #[error("layer {name:?}: error: {message}")]
    Layer {
        /// The layer's name.
        name: String,
        /// Why its array does not open.
        message: String,
    },
    /// The neuroglancer state could not be written.
    #[error("{path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// A saved view as neuroglancer reads it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ViewExport {
    /// The neuroglancer state.
    pub state: Value,
    /// The state as a URL on the public neuroglancer instance.
    pub url: String,
    /// Where the state was written, if asked.
    pub written: Option<PathBuf>,
    /// Layers left out: those computed in Segno (live predictions), which have no array
    /// neuroglancer could read.
    pub left_out: Vec<String>,
}

/// Exports the view state file `view` for neuroglancer, with its arrays served from
/// `base_url` (the directory `root`, default the view file's directory), and writes the
/// state to `output` (atomically) when given. Every layer's array must open.
pub fn export_view(
    view: &Path,
    base_url: &str,
    root: Option<&Path>,
    output: Option<&Path>,
) -> Result<ViewExport, ExportError> {
    let state = ViewState::load(view)?;
    let mut opened = Vec::with_capacity(state.layers.len());
    let mut left_out = Vec::new();
    for l in &state.layers {
        if l.model.is_some() {
            left_out.push(l.name.clone());
            opened.push(None);
            continue;
        }
        let data = open_layer(&l.source).map_err(|e| ExportError::Layer {
            name: l.name.clone(),
            message: e.to_string(),
        })?;
        opened.push(Some(data));
    }
    let root = match root {
        Some(r) => r.to_path_buf(),
        None => view
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let layers: Vec<Option<&LayerData>> = opened.iter().map(|d| d.as_deref()).collect();
    let (json, url) = state_and_url(&state, &layers, base_url, &root);
    if let Some(path) = output {
        let text = serde_json::to_string_pretty(&json).map_err(|e| ExportError::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        crate::store::atomic::write_atomic(path, text.as_bytes(), true).map_err(|e| {
            ExportError::Write {
                path: path.display().to_string(),
                message: e.to_string(),
            }
        })?;
    }
    Ok(ViewExport {
        state: json,
        url,
        written: output.map(Path::to_path_buf),
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(url: &str) -> Value {
        let enc = url.split_once("#!").map(|x| x.1).unwrap_or_default();
        let bytes = enc.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn urls_decode_back_to_the_state() {
        let state = json!({"layers": [{"name": "a b", "segments": ["1", "18446744073709551615"]}], "x": "!'()*;,#"});
        let url = state_url(NEUROGLANCER_APP, &state);
        assert!(url.starts_with("https://neuroglancer-demo.appspot.com/#!%7B"));
        assert!(!url[NEUROGLANCER_APP.len() + 2..].contains(['{', '"', ' ', '#', '!', ',']));
        assert_eq!(decode(&url), state);
    }

    #[test]
    fn a_rotation_exports_as_the_cross_section_orientation() {
        let root = Path::new("/data");
        let served = Served {
            base_url: "http://127.0.0.1:9000/",
            root,
        };
        let mut view = ViewState::default();
        assert!(state_json(&view, &[], &served)
            .get("crossSectionOrientation")
            .is_none());
        view.orientation = crate::render::orientation::Orientation::IDENTITY
            .rotated([1.0, 0.0, 0.0], std::f64::consts::FRAC_PI_2);
        let q = state_json(&view, &[], &served)["crossSectionOrientation"].clone();
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let q: Vec<f64> = serde_json::from_value(q).unwrap();
        // 90° about z: [0, 0, sin 45°, cos 45°] over x, y, z, w.
        assert!(q[0].abs() < 1e-12 && q[1].abs() < 1e-12, "{q:?}");
        assert!(
            (q[2] - s).abs() < 1e-12 && (q[3] - s).abs() < 1e-12,
            "{q:?}"
        );
    }

    #[test]
    fn colormaps_pass_through_their_control_points() {
        let g = colormap_glsl(Colormap::Viridis);
        // viridis(0) = #440154.
        assert!(g.contains("vec3(0.2667, 0.0039, 0.3294)"), "{g}");
        assert!(colormap_glsl(Colormap::Jet).contains("colormapJet"));
    }

    #[test]
    fn a_saved_view_exports_with_every_layer_opened_or_names_the_one_that_does_not() {
        use crate::array::write::{self, ArraySpec, WriteMode};
        use crate::geometry::{Coordinate, Roi};
        use crate::render::state::LayerState;
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("data.zarr");
        let roi = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([32, 32, 32])).unwrap();
        let spec = ArraySpec::new(
            crate::array::DataType::U8,
            roi,
            Coordinate::from([4, 4, 4]),
            None,
        );
        write::create(&c, "raw", &spec, WriteMode::CreateNew).unwrap();
        let mut state = ViewState::default();
        state.layers.push(LayerState {
            name: "raw".into(),
            source: c.join("raw"),
            visible: true,
            settings: LayerSettings::for_kind(crate::render::layer::LayerKind::Image),
            model: None,
        });
        let view = dir.path().join("v.view.json");
        state.save(&view).unwrap();
        let out = dir.path().join("ng.json");
        let export = export_view(&view, "http://127.0.0.1:9000/", None, Some(&out)).unwrap();
        let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(written, export.state);
        assert_eq!(decode(&export.url), export.state);
        // Served from the view's directory: the layer's URL is relative to it.
        let source = export.state["layers"][0]["source"].to_string();
        assert!(
            source.contains("http://127.0.0.1:9000/data.zarr/raw"),
            "{source}"
        );
        assert!(export.left_out.is_empty());

        // A layer computed in Segno is left out, not exported as its raw data.
        let mut model = state.layers[0].clone();
        model.name = "run @ 4".into();
        model.model = Some(crate::ops::live::LiveSource {
            project: dir.path().to_path_buf(),
            run: "run".into(),
            iteration: Some(4),
            raw: c.join("raw"),
            segmentation: None,
        });
        let mut with_model = state.clone();
        with_model.layers.push(model);
        with_model.save(&view).unwrap();
        let export = export_view(&view, "http://127.0.0.1:9000/", None, None).unwrap();
        assert_eq!(export.left_out, vec!["run @ 4".to_string()]);
        let layers = export.state["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["name"], "raw");

        state.layers[0].source = dir.path().join("gone.zarr/raw");
        state.save(&view).unwrap();
        let e = export_view(&view, "http://x/", None, None).unwrap_err();
        assert!(matches!(e, ExportError::Layer { .. }));
        assert!(e.to_string().starts_with("layer \"raw\": error:"), "{e}");
        let e = export_view(&dir.path().join("none.json"), "http://x/", None, None).unwrap_err();
        assert!(matches!(e, ExportError::State(_)), "{e}");
    }
}
