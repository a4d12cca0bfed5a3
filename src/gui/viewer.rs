//! The Viewer section: layers from any zarr/N5/OME-Zarr path drawn in cross-sections (xy,
//! xz, yz) with neuroglancer's mouse and key bindings, per-layer drawing settings, the
//! value under the cursor, error overlays, and the view state saved as JSON.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use eframe::egui_wgpu;

use crate::render::cache::{ChunkCache, Request, DEFAULT_CPU_CACHE_BYTES};
use crate::render::colors::Colormap;
use crate::render::gpu::{PanelUpload, SliceCallback};
use crate::render::layer::{open_layer, LayerData, LayerKind, WorldNm};
use crate::render::shade::{self, DrawLayer, DrawOverlay, GpuUniforms, PanelTextures};
use crate::render::slice::{compose, Histogram, LayerSlice, PixelValue, Plane, SliceView, Wanted};
use crate::render::state::{Blend, ErrorOverlay, LayerSettings, LayerState, Layout, ViewState};
use crate::render::volume::{mip_rgba, read_coarse, CoarseVolume, Orbit};
use crate::store::layout::RunDir;

/// A layer as the viewer holds it: its state plus the opened data (or why it failed).
struct Layer {
    uid: u64,
    data: Result<Arc<LayerData>, String>,
}

/// What a panel drew last, to redraw only when something changed.
#[derive(Default)]
struct PanelCache {
    view: Option<SliceView>,
    completed: u64,
    layers_key: Vec<(u64, LayerKind, bool)>,
    /// The chunks the last composition still wanted (asked for again every frame, so the
    /// cache does not drop them).
    wanted: Vec<Request>,
    slices: Vec<Option<LayerSlice>>,
    settings_key: String,
    upload: Option<(GpuUniforms, Arc<PanelTextures>)>,
    fresh: bool,
    version: u64,
    cpu_texture: Option<egui::TextureHandle>,
}

/// The viewer's state and caches.
pub struct Viewer {
    /// What is saved and restored.
    pub state: ViewState,
    layers: Vec<Layer>,
    cache: Arc<ChunkCache>,
    next_uid: u64,
    panels: HashMap<Plane, PanelCache>,
    /// Whether the wgpu pipeline is installed (else panels are shaded on the CPU).
    pub gpu: bool,
    /// The last problem to show (a bad path, a state file that does not load …).
    pub message: Option<String>,
    path_field: String,
    hover: Option<(Plane, f64, f64)>,
    waker_set: bool,
    truth_pick: usize,
    prediction_pick: usize,
    /// Where each cross-section was drawn last frame (points).
    pub panel_rects: HashMap<Plane, egui::Rect>,
    mip: MipJob,
    mip_texture: Option<egui::TextureHandle>,
    /// The directory neuroglancer exports serve (the project), and the URL it is served at.
    pub serve_root: Option<PathBuf>,
    /// The project's saved views (newest first), offered while the viewer is empty.
    pub project_views: Vec<PathBuf>,
    ng_base_url: String,
    /// The last export's note (where the file went, that the URL was copied).
    pub note: Option<String>,
    /// A run's validation arrays on show, whose iteration and parameters can be changed.
    pub validation: Option<ValidationBrowse>,
    /// Per layer: the histogram of its shown slice and the slice it was counted from.
    histograms: HashMap<usize, (Option<HistogramKey>, Option<Histogram>)>,
}

/// What a panel's slices were composed from: the view, the chunks loaded, the layers.
type HistogramKey = (Option<SliceView>, u64, Vec<(u64, LayerKind, bool)>);

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

/// The 3D panel's projection: the coarse volume and the image, computed on a background
/// thread; the UI shows the last finished image.
#[derive(Default)]
struct MipJob {
    layer: Option<u64>,
    volume: Option<Arc<CoarseVolume>>,
    error: Option<String>,
    loading: Option<std::sync::mpsc::Receiver<Result<CoarseVolume, String>>>,
    rendering: Option<std::sync::mpsc::Receiver<egui::ColorImage>>,
    drawn: Option<String>,
}

impl MipJob {
    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Reading the volume or rendering the projection is under way.
    fn busy(&self) -> bool {
        self.loading.is_some() || self.rendering.is_some()
    }

    /// A new image when one finished; starts reading the volume or rendering as needed.
    fn poll(
        &mut self,
        layer: &Arc<LayerData>,
        uid: u64,
        orbit: Orbit,
        (rect, scale): (egui::Rect, f64),
        settings: &LayerSettings,
        ctx: &egui::Context,
    ) -> Option<egui::ColorImage> {
        if self.layer != Some(uid) {
            *self = MipJob {
                layer: Some(uid),
                ..MipJob::default()
            };
            let (tx, rx) = std::sync::mpsc::channel();
            let l = Arc::clone(layer);
            let c = ctx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(read_coarse(&l));
                c.request_repaint();
            });
            self.loading = Some(rx);
        }
        if let Some(rx) = &self.loading {
            match rx.try_recv() {
                Ok(Ok(v)) => {
                    self.volume = Some(Arc::new(v));
                    self.loading = None;
                }
                Ok(Err(e)) => {
                    self.error = Some(e);
                    self.loading = None;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return None,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.error = Some("reading the 3D volume stopped".into());
                    self.loading = None;
                }
            }
        }
        let mut finished = None;
        if let Some(rx) = &self.rendering {
            match rx.try_recv() {
                Ok(img) => {
                    finished = Some(img);
                    self.rendering = None;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => self.rendering = None,
            }
        }
        let volume = self.volume.clone()?;
        let key = format!("{orbit:?}{rect:?}{scale}{settings:?}");
        if self.rendering.is_none() && self.drawn.as_deref() != Some(key.as_str()) {
            self.drawn = Some(key);
            let factor = (rect.width().max(rect.height()) / 192.0).ceil().max(1.0);
            let (w, h) = (
                (rect.width() / factor).max(1.0) as usize,
                (rect.height() / factor).max(1.0) as usize,
            );
            let nm_per_px = f64::from(factor) / scale.max(1e-12);
            let settings = settings.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            let c = ctx.clone();
            std::thread::spawn(move || {
                let m = volume.mip(&orbit, w, h, nm_per_px);
                let rgba = mip_rgba(&m, &settings);
                let _ = tx.send(egui::ColorImage::from_rgba_unmultiplied([w, h], &rgba));
                c.request_repaint();
            });
            self.rendering = Some(rx);
        }
        finished
    }
}

impl Default for Viewer {
    fn default() -> Self {
        Self::new(DEFAULT_CPU_CACHE_BYTES)
    }
}

/// Neuroglancer's axis colours: x red, y green, z blue (by world axis z, y, x).
const AXIS_COLORS: [[u8; 3]; 3] = [[0, 96, 255], [0, 200, 0], [255, 40, 40]];

impl Viewer {
    /// An empty viewer whose chunk cache holds at most `cpu_cache_bytes`.
    pub fn new(cpu_cache_bytes: usize) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8);
        Self {
            state: ViewState::default(),
            layers: Vec::new(),
            cache: Arc::new(ChunkCache::new(cpu_cache_bytes, threads)),
            next_uid: 1,
            panels: HashMap::new(),
            gpu: false,
            message: None,
            path_field: String::new(),
            hover: None,
            waker_set: false,
            truth_pick: 0,
            prediction_pick: 0,
            panel_rects: HashMap::new(),
            project_views: Vec::new(),
            mip: MipJob::default(),
            mip_texture: None,
            serve_root: None,
            ng_base_url: "http://127.0.0.1:9000/".into(),
            note: None,
            validation: None,
            histograms: HashMap::new(),
        }
    }

    /// The opened data of layer `i` (`None` when it did not open).
    pub fn layer_data(&self, i: usize) -> Option<&Arc<LayerData>> {
        self.layers.get(i).and_then(|l| l.data.as_ref().ok())
    }

    /// The chunk cache (for statistics and tests).
    pub fn cache(&self) -> &ChunkCache {
        &self.cache
    }

    /// Adds the array at `path` as a layer drawn as its guessed kind. A path that cannot be
    /// opened still becomes a layer, showing the error in its status line.
    pub fn add_layer(&mut self, path: &Path) {
        let data = open_layer(path).map_err(|e| e.to_string());
        let (name, kind) = match &data {
            Ok(d) => (d.name.clone(), d.default_kind),
            Err(_) => (
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string()),
                LayerKind::Image,
            ),
        };
        let mut settings = LayerSettings::for_kind(kind);
        if let (Ok(d), LayerSettings::Image(s)) = (&data, &mut settings) {
            s.range = default_range(d.data_type);
        }
        let name = self.unique_name(&name);
        let first = self.layers.iter().all(|l| l.data.is_err());
        if let Ok(d) = &data {
            if first {
                self.fit_to(d);
            }
        }
        self.push(
            LayerState {
                name,
                source: path.to_path_buf(),
                visible: true,
                settings,
            },
            data,
        );
    }

    fn push(&mut self, state: LayerState, data: Result<Arc<LayerData>, String>) {
        self.layers.push(Layer {
            uid: self.next_uid,
            data,
        });
        self.next_uid += 1;
        self.state.layers.push(state);
        self.invalidate();
    }

    fn unique_name(&self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 2;
        while self.state.layers.iter().any(|l| l.name == name) {
            name = format!("{base} ({k})");
            k += 1;
        }
        name
    }

    /// Centres the view on `d` with the whole volume in a 512-pixel panel.
    fn fit_to(&mut self, d: &LayerData) {
        let (b, e) = d.levels[0].bounds_nm();
        self.state.position_nm = WorldNm(std::array::from_fn(|a| {
            let vs = d.levels[0].voxel_size_nm[a];
            // The centre voxel's centre, so slices start on a voxel.
            let mid = (b[a] + e[a]) / 2.0;
            ((mid - b[a]) / vs).floor() * vs + b[a] + vs / 2.0
        }));
        let extent = (0..3).map(|a| e[a] - b[a]).fold(0.0, f64::max);
        self.state.zoom_nm_per_px = (extent / 512.0).max(1e-3);
    }

    /// Points layer `i` at the array at `path`, keeping its name and drawing settings.
    pub fn replace_source(&mut self, i: usize, path: &Path) {
        let data = open_layer(path).map_err(|e| e.to_string());
        if let (Some(l), Some(s)) = (self.layers.get_mut(i), self.state.layers.get_mut(i)) {
            l.uid = self.next_uid;
            l.data = data;
            s.source = path.to_path_buf();
            self.next_uid += 1;
        }
        self.invalidate();
    }

    /// The index of the layer named `name`.
    pub fn layer_index(&self, name: &str) -> Option<usize> {
        self.state.layers.iter().position(|l| l.name == name)
    }

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

    fn browse_ui(&mut self, ui: &mut egui::Ui) {
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

    /// Centres the view on layer `i` (when it opened).
    pub fn centre_on(&mut self, i: usize) {
        let Some(Ok(d)) = self.layers.get(i).map(|l| l.data.clone()) else {
            return;
        };
        let zoom = self.state.zoom_nm_per_px;
        self.fit_to(&d);
        if self.layers.len() > 1 {
            self.state.zoom_nm_per_px = zoom;
        }
    }

    /// Replaces the view by `state`, opening its layers.
    pub fn set_state(&mut self, state: ViewState) {
        self.layers.clear();
        self.state = ViewState {
            layers: Vec::new(),
            ..state.clone()
        };
        for l in state.layers {
            let data = open_layer(&l.source).map_err(|e| e.to_string());
            self.push(l, data);
        }
    }

    /// Loads a view state file; a bad file is reported and the current view kept.
    pub fn load_state(&mut self, path: &Path) {
        match ViewState::load(path) {
            Ok(s) => {
                self.set_state(s);
                self.message = None;
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// The view as a neuroglancer state and URL, with the arrays served from `base_url`
    /// (the directory `root` served over HTTP).
    pub fn neuroglancer(&self, base_url: &str, root: &Path) -> (serde_json::Value, String) {
        use crate::render::neuroglancer::{state_json, state_url, Served, NEUROGLANCER_APP};
        let layers: Vec<Option<&LayerData>> = self
            .layers
            .iter()
            .map(|l| l.data.as_ref().ok().map(|d| d.as_ref()))
            .collect();
        let state = state_json(&self.state, &layers, &Served { base_url, root });
        let url = state_url(NEUROGLANCER_APP, &state);
        (state, url)
    }

    /// Whether anything shown is still loading (chunks queued or being read, or pixels
    /// without data).
    pub fn loading(&self) -> bool {
        let st = self.cache.stats();
        let three_d = matches!(self.state.layout, Layout::FourPanel | Layout::ThreeD);
        (three_d && self.mip.busy())
            || st.queued > 0
            || st.in_flight > 0
            || self.panels.values().any(|p| {
                p.slices
                    .iter()
                    .flatten()
                    .any(|s| s.loading > 0 || s.coarser > 0)
            })
    }

    /// The drawn uniforms and textures of `plane`'s panel, as last composed.
    pub fn panel_upload(&self, plane: Plane) -> Option<(GpuUniforms, Arc<PanelTextures>)> {
        self.panels.get(&plane).and_then(|p| p.upload.clone())
    }

    /// The status line of layer `i`: its level and loading progress, or its error.
    pub fn layer_status(&self, i: usize) -> String {
        let Some(layer) = self.layers.get(i) else {
            return String::new();
        };
        match &layer.data {
            Err(e) => format!("error: {e}"),
            Ok(d) => {
                let mut errors: Vec<&String> = Vec::new();
                let (mut loading, mut coarser, mut level) = (0, 0, None);
                for p in self.panels.values() {
                    if let Some(Some(s)) = p.slices.get(i) {
                        loading += s.loading;
                        coarser += s.coarser;
                        level.get_or_insert(s.level);
                        for e in &s.errors {
                            if !errors.contains(&e) {
                                errors.push(e);
                            }
                        }
                    }
                }
                if let Some(e) = errors.first() {
                    return format!("error: {} chunk(s) failed: {e}", errors.len());
                }
                let mut text = format!(
                    "{} · {} ch · {} level{}",
                    d.data_type,
                    d.channels,
                    d.levels.len(),
                    if d.levels.len() == 1 { "" } else { "s" }
                );
                if let Some(l) = level {
                    text.push_str(&format!(" · showing s{l}"));
                }
                if loading > 0 || coarser > 0 {
                    text.push_str(" · loading");
                }
                text
            }
        }
    }

    fn invalidate(&mut self) {
        for p in self.panels.values_mut() {
            p.view = None;
        }
    }

    /// Redraws every panel of the layout from the cache now (for headless renders and
    /// tests): the slices of `plane` at `size` pixels.
    pub fn compose_panel(
        &mut self,
        plane: Plane,
        size: [u32; 2],
    ) -> (GpuUniforms, Arc<PanelTextures>) {
        let view = SliceView {
            plane,
            center: self.state.position_nm,
            nm_per_px: self.state.zoom_nm_per_px,
            width_px: size[0].max(1),
            height_px: size[1].max(1),
        };
        self.cache.begin_frame();
        let wanted = self.refresh_panel(plane, view);
        self.cache.request(wanted);
        let p = self.panels.entry(plane).or_default();
        p.upload.clone().unwrap_or_else(|| {
            let (u, t) = shade::pack(&[], None, [0.0, 0.0], None);
            (u, Arc::new(t))
        })
    }

    /// Recomposes `plane`'s slices when the view, the cache or the settings changed;
    /// returns the chunks it still wants.
    fn refresh_panel(&mut self, plane: Plane, view: SliceView) -> Vec<Request> {
        let completed = self.cache.stats().completed;
        let settings_key = format!(
            "{:?}{:?}{:?}{:?}",
            self.state.layers, self.state.overlays, self.hover, self.state.cross_hairs
        );
        let used: Vec<bool> = self
            .state
            .layers
            .iter()
            .map(|st| {
                st.visible
                    || self.state.overlays.iter().any(|o| {
                        o.visible
                            && (o.truth == st.name
                                || o.prediction == st.name
                                || o.mask.as_deref() == Some(st.name.as_str()))
                    })
            })
            .collect();
        let layers_key: Vec<(u64, LayerKind, bool)> = self
            .layers
            .iter()
            .zip(&self.state.layers)
            .zip(&used)
            .map(|((l, st), u)| (l.uid, st.settings.kind(), *u))
            .collect();
        let p = self.panels.entry(plane).or_default();
        let same_data = p.completed == completed && p.layers_key == layers_key;
        let stale = p.view != Some(view) || !same_data;
        let shift = p
            .view
            .and_then(|old| pixel_shift(&old, &view))
            .filter(|_| same_data);
        if let (true, Some((dx, dy))) = (stale, shift) {
            // Panned by whole pixels with nothing new loaded: move what is drawn and
            // compose only the strips that came into view.
            use rayon::prelude::*;
            let cache = &self.cache;
            let strips = exposed_strips(&view, dx, dy);
            let slices = std::mem::take(&mut p.slices);
            let results: Vec<(Option<LayerSlice>, Vec<Request>)> = slices
                .into_par_iter()
                .zip(self.layers.par_iter())
                .zip(self.state.layers.par_iter())
                .map(|((slice, layer), st)| {
                    let (Some(old), Ok(d)) = (slice, &layer.data) else {
                        return (None, Vec::new());
                    };
                    let mut moved = old.shifted(dx, dy);
                    let mut wanted = Wanted::default();
                    for (x0, y0, sv) in &strips {
                        let (part, w) = compose(layer.uid, d, st.settings.kind(), sv, cache);
                        moved.paste(&part, *x0, *y0);
                        wanted.extend(w);
                    }
                    (Some(moved), wanted.into_requests())
                })
                .collect();
            let mut extra = Vec::new();
            for (s, w) in results {
                p.slices.push(s);
                extra.extend(w);
            }
            extra.extend(std::mem::take(&mut p.wanted));
            p.wanted = extra;
            p.view = Some(view);
        } else if stale {
            let mut wanted = Wanted::default();
            // Layers are composed in parallel (each is independent).
            use rayon::prelude::*;
            let cache = &self.cache;
            let composed: Vec<Option<(LayerSlice, Wanted)>> = self
                .layers
                .par_iter()
                .zip(self.state.layers.par_iter())
                .zip(used.par_iter())
                .map(|((layer, st), used)| match (&layer.data, *used) {
                    (Ok(d), true) => Some(compose(layer.uid, d, st.settings.kind(), &view, cache)),
                    _ => None,
                })
                .collect();
            p.slices = Vec::with_capacity(composed.len());
            for c in composed {
                match c {
                    Some((s, w)) => {
                        wanted.extend(w);
                        p.slices.push(Some(s));
                    }
                    None => p.slices.push(None),
                }
            }
            p.view = Some(view);
            p.completed = completed;
            p.layers_key = layers_key;
            p.wanted = wanted.into_requests();
        }
        let wanted = p.wanted.clone();
        if stale || p.settings_key != settings_key || p.upload.is_none() {
            let hover_id =
                self.hover.filter(|h| h.0 == plane).and_then(|(_, x, y)| {
                    p.slices.iter().rev().flatten().find_map(|s| {
                        match s.value_at(x as u32, y as u32) {
                            Some(PixelValue::Label(id)) => Some(id),
                            _ => None,
                        }
                    })
                });
            let mut draw = Vec::new();
            let mut index_of: HashMap<&str, usize> = HashMap::new();
            for (slice, st) in p.slices.iter().zip(&self.state.layers) {
                if let Some(s) = slice {
                    index_of.insert(st.name.as_str(), draw.len());
                    draw.push(DrawLayer {
                        slice: s,
                        settings: &st.settings,
                        visible: st.visible,
                        hover: hover_id,
                    });
                }
            }
            let overlay = self
                .state
                .overlays
                .iter()
                .filter(|o| o.visible)
                .find_map(|o| {
                    Some(DrawOverlay {
                        truth: *index_of.get(o.truth.as_str())?,
                        prediction: *index_of.get(o.prediction.as_str())?,
                        instances: o.instances,
                        threshold: o.threshold,
                        alpha: o.alpha,
                        mask: match &o.mask {
                            Some(m) => Some(*index_of.get(m.as_str())?),
                            None => None,
                        },
                    })
                });
            let [h, v, _] = plane.axes();
            let cross = self.state.cross_hairs.then(|| {
                (
                    // On the pixel right of / below the centre, so the line is one pixel wide.
                    [
                        (view.width_px / 2) as f32 + 0.5,
                        (view.height_px / 2) as f32 + 0.5,
                    ],
                    AXIS_COLORS[h],
                    AXIS_COLORS[v],
                )
            });
            let (u, t) = shade::pack(&draw, overlay, [0.0, 0.0], cross);
            p.upload = Some((u, Arc::new(t)));
            p.fresh = true;
            p.version += 1;
            p.settings_key = settings_key;
        }
        wanted
    }

    /// The value every layer shows at panel pixel (`x`, `y`) of `plane`, with the layer
    /// names: `error` for layers that did not open, `hidden` for layers not drawn.
    pub fn values_at(&self, plane: Plane, x: f64, y: f64) -> Vec<(String, String)> {
        let slices = self
            .panels
            .get(&plane)
            .map(|p| p.slices.as_slice())
            .unwrap_or(&[]);
        self.state
            .layers
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let value = match (&self.layers[i].data, slices.get(i).and_then(|s| s.as_ref())) {
                    (Err(_), _) => "error".to_string(),
                    (Ok(_), None) => "hidden".to_string(),
                    (Ok(_), Some(s)) => s
                        .value_at(x as u32, y as u32)
                        .map(|v| format_value(&v))
                        .unwrap_or_default(),
                };
                (st.name.clone(), value)
            })
            .collect()
    }

    /// Draws the viewer section.
    pub fn ui(&mut self, ui: &mut egui::Ui, project_arrays: &[PathBuf]) {
        if !self.waker_set {
            let ctx = ui.ctx().clone();
            self.cache.set_waker(move || ctx.request_repaint());
            self.waker_set = true;
        }
        self.handle_drops(ui);
        egui::Panel::right("viewer-layers")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.side_panel(ui, project_arrays));
            });
        egui::Panel::bottom("viewer-status")
            .exact_size(44.0)
            .show(ui, |ui| self.status_bar(ui));
        egui::CentralPanel::default_margins().show(ui, |ui| {
            if self.state.layers.is_empty() {
                let views = std::mem::take(&mut self.project_views);
                super::viewer_start::ui(self, ui, project_arrays, &views);
                self.project_views = views;
            } else {
                self.panels_ui(ui);
            }
        });
        self.keys(ui);
    }

    fn handle_drops(&mut self, ui: &egui::Ui) {
        for p in super::dropped_paths(ui.ctx()) {
            if p.extension().is_some_and(|e| e == "json") {
                self.load_state(&p);
            } else {
                self.add_layer(&p);
            }
        }
    }

    fn keys(&mut self, ui: &egui::Ui) {
        if ui.ctx().egui_wants_keyboard_input() {
            return;
        }
        let (space, digits) = ui.ctx().input(|i| {
            let digits: Vec<usize> = [
                egui::Key::Num1,
                egui::Key::Num2,
                egui::Key::Num3,
                egui::Key::Num4,
                egui::Key::Num5,
                egui::Key::Num6,
                egui::Key::Num7,
                egui::Key::Num8,
                egui::Key::Num9,
            ]
            .iter()
            .enumerate()
            .filter(|(_, k)| i.key_pressed(**k))
            .map(|(n, _)| n)
            .collect();
            (i.key_pressed(egui::Key::Space), digits)
        });
        if space {
            self.state.layout = self.state.layout.next();
        }
        for d in digits {
            if let Some(l) = self.state.layers.get_mut(d) {
                l.visible = !l.visible;
            }
        }
    }

    fn panels_ui(&mut self, ui: &mut egui::Ui) {
        let rect = ui.available_rect_before_wrap();
        ui.allocate_rect(rect, egui::Sense::hover());
        let gap = 2.0;
        let half = |r: egui::Rect, col: usize, row: usize| {
            let w = (r.width() - gap) / 2.0;
            let h = (r.height() - gap) / 2.0;
            egui::Rect::from_min_size(
                r.min + egui::vec2(col as f32 * (w + gap), row as f32 * (h + gap)),
                egui::vec2(w, h),
            )
        };
        let mut panels: Vec<(Option<Plane>, egui::Rect)> = match self.state.layout {
            Layout::FourPanel => vec![
                (Some(Plane::Xy), half(rect, 0, 0)),
                (Some(Plane::Xz), half(rect, 1, 0)),
                (Some(Plane::Yz), half(rect, 0, 1)),
                (None, half(rect, 1, 1)),
            ],
            Layout::Xy => vec![(Some(Plane::Xy), rect)],
            Layout::Xz => vec![(Some(Plane::Xz), rect)],
            Layout::Yz => vec![(Some(Plane::Yz), rect)],
            Layout::ThreeD => vec![(None, rect)],
        };
        self.cache.begin_frame();
        let mut wanted = Vec::new();
        for (plane, r) in panels.drain(..) {
            match plane {
                Some(p) => wanted.extend(self.slice_panel(ui, p, r)),
                None => self.overview_panel(ui, r),
            }
        }
        self.cache.request(wanted);
    }

    fn slice_panel(&mut self, ui: &mut egui::Ui, plane: Plane, rect: egui::Rect) -> Vec<Request> {
        let ppp = ui.ctx().pixels_per_point();
        self.panel_rects.insert(plane, rect);
        let id = ui.scope_id().with(("panel", plane.label()));
        let response = ui.interact(rect, id, egui::Sense::click_and_drag());
        self.navigate(ui, plane, rect, &response);
        let size = [
            (rect.width() * ppp).round().max(1.0) as u32,
            (rect.height() * ppp).round().max(1.0) as u32,
        ];
        // Zoom is per screen point; slices are composed per physical pixel.
        let view = SliceView {
            plane,
            center: self.state.position_nm,
            nm_per_px: self.state.zoom_nm_per_px / f64::from(ppp),
            width_px: size[0],
            height_px: size[1],
        };
        self.hover = response
            .hover_pos()
            .map(|p| {
                let l = (p - rect.min) * ppp;
                (plane, f64::from(l.x), f64::from(l.y))
            })
            .or(self.hover.filter(|h| h.0 != plane));
        let wanted = self.refresh_panel(plane, view);
        let painter = ui.painter_at(rect);
        let gpu = self.gpu;
        let p = self.panels.entry(plane).or_default();
        if let Some((mut u, t)) = p.upload.clone() {
            // egui places the callback's viewport on whole physical pixels.
            u.origin_size[0] = (rect.min.x * ppp).round();
            u.origin_size[1] = (rect.min.y * ppp).round();
            if gpu {
                let panel_id = match plane {
                    Plane::Xy => 1,
                    Plane::Xz => 2,
                    Plane::Yz => 3,
                };
                painter.add(egui_wgpu::Callback::new_paint_callback(
                    rect,
                    SliceCallback {
                        panel: panel_id,
                        upload: PanelUpload {
                            uniforms: u,
                            textures: t,
                            version: p.version,
                        },
                    },
                ));
            } else {
                if std::mem::take(&mut p.fresh) || p.cpu_texture.is_none() {
                    let rgba = shade::shade_all(&u, &t);
                    let image = egui::ColorImage::from_rgba_unmultiplied(
                        [t.width as usize, t.height as usize],
                        &rgba,
                    );
                    match &mut p.cpu_texture {
                        Some(h) => h.set(image, egui::TextureOptions::NEAREST),
                        None => {
                            p.cpu_texture = Some(ui.ctx().load_texture(
                                format!("segno-panel-{}", plane.label()),
                                image,
                                egui::TextureOptions::NEAREST,
                            ))
                        }
                    }
                }
                if let Some(h) = &p.cpu_texture {
                    painter.image(
                        h.id(),
                        rect,
                        egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                        egui::Color32::WHITE,
                    );
                }
            }
        }
        self.decorations(&painter, plane, rect);
        wanted
    }

    fn decorations(&self, painter: &egui::Painter, plane: Plane, rect: egui::Rect) {
        let text = egui::Color32::from_gray(230);
        painter.text(
            rect.min + egui::vec2(6.0, 4.0),
            egui::Align2::LEFT_TOP,
            plane.label(),
            egui::FontId::proportional(13.0),
            text,
        );
        if self.state.scale_bar {
            let (len_nm, label) =
                scale_bar(self.state.zoom_nm_per_px, f64::from(rect.width()) / 4.0);
            let px = (len_nm / self.state.zoom_nm_per_px) as f32;
            let y = rect.max.y - 12.0;
            let x0 = rect.max.x - 12.0 - px;
            painter.line_segment(
                [egui::pos2(x0, y), egui::pos2(x0 + px, y)],
                egui::Stroke::new(3.0, egui::Color32::WHITE),
            );
            painter.text(
                egui::pos2(x0 + px / 2.0, y - 4.0),
                egui::Align2::CENTER_BOTTOM,
                label,
                egui::FontId::proportional(12.0),
                text,
            );
        }
    }

    fn navigate(
        &mut self,
        ui: &egui::Ui,
        plane: Plane,
        rect: egui::Rect,
        response: &egui::Response,
    ) {
        let [h, v, n] = plane.axes();
        let zoom = self.state.zoom_nm_per_px;
        if response.dragged_by(egui::PointerButton::Primary) {
            let d = response.drag_delta();
            self.state.position_nm.0[h] -= f64::from(d.x) * zoom;
            self.state.position_nm.0[v] -= f64::from(d.y) * zoom;
        }
        let world_at = |pos: egui::Pos2, state: &ViewState| {
            let mut p = state.position_nm;
            p.0[h] += f64::from(pos.x - rect.center().x) * state.zoom_nm_per_px;
            p.0[v] += f64::from(pos.y - rect.center().y) * state.zoom_nm_per_px;
            p
        };
        if response.secondary_clicked() {
            if let Some(pos) = response.interact_pointer_pos() {
                self.state.position_nm = world_at(pos, &self.state);
            }
        }
        if response.clicked() {
            if let Some(pos) = response.interact_pointer_pos() {
                self.select_at(plane, rect, pos, ui.ctx().pixels_per_point());
            }
        }
        if !response.hovered() {
            return;
        }
        // Wheel events: ctrl zooms about the cursor, otherwise one slice (shift: ten).
        let wheels: Vec<(f32, egui::Modifiers)> = ui.ctx().input(|i| {
            i.raw
                .events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::MouseWheel {
                        delta, modifiers, ..
                    } => {
                        let d = if delta.y != 0.0 { delta.y } else { delta.x };
                        (d != 0.0).then_some((d, *modifiers))
                    }
                    _ => None,
                })
                .collect()
        });
        let pinch = ui.ctx().input(|i| i.multi_touch().map(|t| t.zoom_delta));
        let mut factor = pinch.map(f64::from).unwrap_or(1.0);
        for (d, m) in wheels {
            if m.ctrl || m.command {
                factor *= if d > 0.0 { 1.25 } else { 0.8 };
            } else {
                let step = self.normal_step(n) * if m.shift { 10.0 } else { 1.0 };
                // Wheel up (content moves down) goes one slice back, as in neuroglancer.
                self.state.position_nm.0[n] += if d > 0.0 { -step } else { step };
            }
        }
        if factor != 1.0 {
            if let Some(pos) = response.hover_pos() {
                // Zoom about the cursor: the world point under it stays put.
                let before = world_at(pos, &self.state);
                self.state.zoom_nm_per_px = (zoom / factor).clamp(1e-3, 1e7);
                let after = world_at(pos, &self.state);
                for a in [h, v] {
                    self.state.position_nm.0[a] += before.0[a] - after.0[a];
                }
            }
        }
    }

    /// One voxel of the finest layer along world axis `axis` (1 nm without layers).
    fn normal_step(&self, axis: usize) -> f64 {
        self.layers
            .iter()
            .filter_map(|l| l.data.as_ref().ok())
            .map(|d| d.levels[0].voxel_size_nm[axis])
            .fold(f64::INFINITY, f64::min)
            .min(1e9)
            .max(if self.layers.is_empty() { 1.0 } else { 0.0 })
    }

    /// A click on a segment toggles its selection in the chosen (or topmost) segmentation.
    fn select_at(&mut self, plane: Plane, rect: egui::Rect, pos: egui::Pos2, ppp: f32) {
        let l = (pos - rect.min) * ppp;
        let Some(p) = self.panels.get(&plane) else {
            return;
        };
        let preferred = self.state.selected_layer.clone();
        let mut target = None;
        for (i, (st, s)) in self.state.layers.iter().zip(&p.slices).enumerate().rev() {
            if !st.visible || !matches!(st.settings, LayerSettings::Segmentation(_)) {
                continue;
            }
            if let Some(PixelValue::Label(id)) =
                s.as_ref().and_then(|s| s.value_at(l.x as u32, l.y as u32))
            {
                if id == 0 {
                    continue;
                }
                let is_pref = preferred.as_deref() == Some(st.name.as_str());
                if target.is_none() || is_pref {
                    target = Some((i, id));
                }
                if is_pref {
                    break;
                }
            }
        }
        if let Some((i, id)) = target {
            if let LayerSettings::Segmentation(s) = &mut self.state.layers[i].settings {
                if let Some(k) = s.selected.iter().position(|x| *x == id) {
                    s.selected.remove(k);
                } else {
                    s.selected.push(id);
                }
            }
        }
    }

    fn overview_panel(&mut self, ui: &mut egui::Ui, rect: egui::Rect) {
        let id = ui.scope_id().with("panel-3d");
        let response = ui.interact(rect, id, egui::Sense::drag());
        if response.dragged_by(egui::PointerButton::Primary) {
            let d = response.drag_delta();
            self.state.orbit_deg[0] = (self.state.orbit_deg[0] + f64::from(d.x) * 0.5) % 360.0;
            self.state.orbit_deg[1] =
                (self.state.orbit_deg[1] + f64::from(d.y) * 0.5).clamp(-89.0, 89.0);
        }
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, egui::Color32::BLACK);
        let Some((i, d)) = self
            .layers
            .iter()
            .enumerate()
            .find_map(|(i, l)| l.data.as_ref().ok().map(|d| (i, Arc::clone(d))))
        else {
            return;
        };
        let orbit = Orbit {
            yaw_deg: self.state.orbit_deg[0],
            pitch_deg: self.state.orbit_deg[1],
        };
        let (b, e) = d.levels[0].bounds_nm();
        let extent = (0..3).map(|a| e[a] - b[a]).fold(1e-9, f64::max);
        let scale = f64::from(rect.width().min(rect.height())) * 0.45 / extent;
        // The projection of the first image layer, computed off the UI thread.
        let ctx = ui.ctx().clone();
        let settings = &self.state.layers[i].settings;
        if let Some(img) =
            self.mip
                .poll(&d, self.layers[i].uid, orbit, (rect, scale), settings, &ctx)
        {
            match &mut self.mip_texture {
                Some(h) => h.set(img, egui::TextureOptions::LINEAR),
                None => {
                    self.mip_texture =
                        Some(ctx.load_texture("segno-mip", img, egui::TextureOptions::LINEAR))
                }
            }
        }
        if let Some(h) = &self.mip_texture {
            painter.image(
                h.id(),
                rect,
                egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                egui::Color32::WHITE,
            );
        }
        painter.text(
            rect.min + egui::vec2(6.0, 4.0),
            egui::Align2::LEFT_TOP,
            "3d",
            egui::FontId::proportional(13.0),
            egui::Color32::from_gray(230),
        );
        if let Some(m) = self.mip.error() {
            painter.text(
                rect.left_bottom() + egui::vec2(6.0, -4.0),
                egui::Align2::LEFT_BOTTOM,
                m,
                egui::FontId::proportional(12.0),
                ui.visuals().error_fg_color,
            );
        }
        // The box and the three planes through the position.
        let centre = rect.center();
        let mid: [f64; 3] = std::array::from_fn(|a| (b[a] + e[a]) / 2.0);
        let project = |p: [f64; 3]| {
            let s = orbit.project([p[2] - mid[2], p[1] - mid[1], p[0] - mid[0]]);
            egui::pos2(
                centre.x + (s[0] * scale) as f32,
                centre.y + (s[1] * scale) as f32,
            )
        };
        let box_edges = |lo: [f64; 3], hi: [f64; 3], color: egui::Color32| {
            let corner = |i: usize| [0, 1, 2].map(|a| if i >> a & 1 == 1 { hi[a] } else { lo[a] });
            for i in 0..8usize {
                for a in 0..3 {
                    let j = i | (1 << a);
                    if j != i {
                        painter.line_segment(
                            [project(corner(i)), project(corner(j))],
                            egui::Stroke::new(1.0, color),
                        );
                    }
                }
            }
        };
        box_edges(b, e, egui::Color32::from_gray(120));
        let pos = self.state.position_nm.0;
        for (axis, c) in AXIS_COLORS.iter().enumerate() {
            let mut lo = b;
            let mut hi = e;
            lo[axis] = pos[axis].clamp(b[axis], e[axis]);
            hi[axis] = lo[axis];
            box_edges(lo, hi, egui::Color32::from_rgb(c[0], c[1], c[2]));
        }
    }

    fn status_bar(&self, ui: &mut egui::Ui) {
        let names = self
            .layers
            .iter()
            .find_map(|l| l.data.as_ref().ok())
            .map(|d| d.axis_names.clone())
            .unwrap_or_else(|| ["z".into(), "y".into(), "x".into()]);
        let p = self.state.position_nm.0;
        let voxel = self
            .layers
            .iter()
            .find_map(|l| l.data.as_ref().ok())
            .map(|d| {
                let l = &d.levels[0];
                format!(
                    "{} {} {} {} {} {} (voxels)",
                    names[2],
                    ((p[2] - l.offset_nm[2]) / l.voxel_size_nm[2]).floor(),
                    names[1],
                    ((p[1] - l.offset_nm[1]) / l.voxel_size_nm[1]).floor(),
                    names[0],
                    ((p[0] - l.offset_nm[0]) / l.voxel_size_nm[0]).floor()
                )
            })
            .unwrap_or_default();
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} {:.1} {} {:.1} {} {:.1} nm · {voxel} · {:.3} nm/px",
                names[2], p[2], names[1], p[1], names[0], p[0], self.state.zoom_nm_per_px
            ));
        });
        if let Some((plane, x, y)) = self.hover {
            let values: Vec<String> = self
                .values_at(plane, x, y)
                .into_iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect();
            ui.label(values.join("   "));
        }
    }

    fn side_panel(&mut self, ui: &mut egui::Ui, project_arrays: &[PathBuf]) {
        ui.heading("Layers");
        if let Some(m) = &self.message {
            ui.colored_label(ui.visuals().error_fg_color, m);
        }
        self.browse_ui(ui);
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.path_field)
                    .desired_width(170.0)
                    .hint_text("array path"),
            );
            if ui.button("Add").clicked() && !self.path_field.trim().is_empty() {
                let p = PathBuf::from(self.path_field.trim());
                self.add_layer(&p);
            }
            if ui.button("Browse…").clicked() {
                if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                    self.add_layer(&dir);
                }
            }
        });
        ui.horizontal(|ui| {
            for l in Layout::CYCLE {
                if ui
                    .selectable_label(self.state.layout == l, l.name())
                    .clicked()
                {
                    self.state.layout = l;
                }
            }
        });
        ui.horizontal(|ui| {
            if ui.button("Save view…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("view state", &["json"])
                    .set_file_name("view.json")
                    .save_file()
                {
                    if let Err(e) = self.state.save(&p) {
                        self.message = Some(e.to_string());
                    }
                }
            }
            if ui.button("Open view…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("view state", &["json"])
                    .pick_file()
                {
                    self.load_state(&p);
                }
            }
        });
        egui::CollapsingHeader::new("Neuroglancer").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label("data served at");
                ui.add(egui::TextEdit::singleline(&mut self.ng_base_url).desired_width(160.0));
            });
            if ui
                .button("Copy URL and save state…")
                .on_hover_text("neuroglancer reads the arrays over HTTP: serve the project directory with neuroglancer's cors_webserver.py")
                .clicked()
            {
                let root = self
                    .serve_root
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/"));
                let (state, url) = self.neuroglancer(&self.ng_base_url, &root);
                ui.ctx().copy_text(url);
                let mut note = format!(
                    "neuroglancer URL copied; serve {} at {} (cors_webserver.py -d {} -p 9000)",
                    root.display(),
                    self.ng_base_url,
                    root.display()
                );
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("neuroglancer state", &["json"])
                    .set_file_name("neuroglancer.json")
                    .save_file()
                {
                    let text = serde_json::to_string_pretty(&state).unwrap_or_default();
                    match crate::store::atomic::write_atomic(&p, text.as_bytes(), true) {
                        Ok(()) => note.push_str(&format!("; state saved to {}", p.display())),
                        Err(e) => self.message = Some(format!("{}: {e}", p.display())),
                    }
                }
                self.note = Some(note);
            }
            if let Some(n) = &self.note {
                ui.weak(n);
            }
        });
        ui.separator();
        let mut remove = None;
        for i in 0..self.state.layers.len() {
            let status = self.layer_status(i);
            let failed = status.starts_with("error");
            let l = &mut self.state.layers[i];
            ui.horizontal(|ui| {
                ui.checkbox(&mut l.visible, format!("{}", i + 1))
                    .on_hover_text("shown (key 1-9 toggles)");
                let selected = self.state.selected_layer.as_deref() == Some(l.name.as_str());
                if ui.selectable_label(selected, l.name.as_str()).clicked() {
                    self.state.selected_layer = Some(l.name.clone());
                }
                if ui
                    .small_button("x")
                    .on_hover_text("remove the layer")
                    .clicked()
                {
                    remove = Some(i);
                }
            });
            if failed {
                ui.colored_label(ui.visuals().error_fg_color, status);
            } else {
                ui.weak(status);
            }
            let kind = l.settings.kind();
            egui::ComboBox::new(("kind", i), "drawn as")
                .selected_text(kind.label())
                .show_ui(ui, |ui| {
                    for k in LayerKind::ALL {
                        if ui.selectable_label(k == kind, k.label()).clicked() && k != kind {
                            l.settings = LayerSettings::for_kind(k);
                        }
                    }
                });
            // The histogram of the xy panel's slice, counted again only when it changes.
            let panel = self
                .panels
                .get(&Plane::Xy)
                .or_else(|| self.panels.values().next());
            let hist = panel.and_then(|p| {
                let key: HistogramKey = (p.view, p.completed, p.layers_key.clone());
                let entry = self.histograms.entry(i).or_insert((None, None));
                if entry.0.as_ref() != Some(&key) {
                    let h = p
                        .slices
                        .get(i)
                        .and_then(|s| s.as_ref())
                        .and_then(Histogram::of);
                    *entry = (Some(key), h);
                }
                entry.1.as_ref()
            });
            settings_ui(ui, i, &mut l.settings, hist);
            ui.separator();
        }
        if let Some(i) = remove {
            self.state.layers.remove(i);
            let layer = self.layers.remove(i);
            self.cache.forget_layer(layer.uid);
            let names: Vec<String> = self.state.layers.iter().map(|l| l.name.clone()).collect();
            self.state
                .overlays
                .retain(|o| names.contains(&o.truth) && names.contains(&o.prediction));
            self.invalidate();
        }
        self.overlay_ui(ui);
        if !project_arrays.is_empty() {
            ui.separator();
            egui::CollapsingHeader::new("Project arrays").show(ui, |ui| {
                let mut add = None;
                for p in project_arrays {
                    if ui.link(p.display().to_string()).clicked() {
                        add = Some(p.clone());
                    }
                }
                if let Some(p) = add {
                    self.add_layer(&p);
                }
            });
        }
    }

    fn overlay_ui(&mut self, ui: &mut egui::Ui) {
        ui.label(egui::RichText::new("Error overlay").strong());
        let names: Vec<String> = self.state.layers.iter().map(|l| l.name.clone()).collect();
        if names.len() < 2 {
            ui.weak("needs a ground-truth and a prediction layer");
            return;
        }
        self.truth_pick = self.truth_pick.min(names.len() - 1);
        self.prediction_pick = self.prediction_pick.min(names.len() - 1);
        ui.horizontal(|ui| {
            egui::ComboBox::new("overlay-truth", "truth")
                .selected_text(&names[self.truth_pick])
                .show_ui(ui, |ui| {
                    for (k, n) in names.iter().enumerate() {
                        ui.selectable_value(&mut self.truth_pick, k, n);
                    }
                });
            egui::ComboBox::new("overlay-prediction", "vs")
                .selected_text(&names[self.prediction_pick])
                .show_ui(ui, |ui| {
                    for (k, n) in names.iter().enumerate() {
                        ui.selectable_value(&mut self.prediction_pick, k, n);
                    }
                });
        });
        if ui.button("Add overlay").clicked() && self.truth_pick != self.prediction_pick {
            let prediction = names[self.prediction_pick].clone();
            let threshold = self.default_threshold(&prediction);
            self.state.overlays.push(ErrorOverlay {
                truth: names[self.truth_pick].clone(),
                prediction,
                visible: true,
                instances: false,
                threshold,
                alpha: 0.6,
                mask: None,
            });
        }
        let mut remove = None;
        for (k, o) in self.state.overlays.iter_mut().enumerate() {
            ui.horizontal(|ui| {
                ui.checkbox(&mut o.visible, format!("{} vs {}", o.truth, o.prediction));
                ui.checkbox(&mut o.instances, "split/merge");
                if ui.small_button("x").clicked() {
                    remove = Some(k);
                }
            });
            ui.horizontal(|ui| {
                let l = ui.label("threshold");
                ui.add(egui::DragValue::new(&mut o.threshold).speed(0.01))
                    .labelled_by(l.id)
                    .on_hover_text("float predictions above this count as foreground (the run's post-processing threshold, in its units)");
                egui::ComboBox::from_id_salt(("overlay-mask", k))
                    .selected_text(o.mask.clone().unwrap_or_else(|| "no mask".into()))
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut o.mask, None, "no mask");
                        for n in &names {
                            ui.selectable_value(&mut o.mask, Some(n.clone()), n);
                        }
                    })
                    .response
                    .on_hover_text("errors are coloured only where this layer is non-zero (where the truth is annotated)");
            });
        }
        if let Some(k) = remove {
            self.state.overlays.remove(k);
        }
    }
}

/// The threshold of a thresholding parameter set's name (`threshold_-0.2` → -0.2).
pub fn threshold_of(parameters: &str) -> Option<f32> {
    parameters.strip_prefix("threshold_")?.parse().ok()
}

fn settings_ui(
    ui: &mut egui::Ui,
    i: usize,
    settings: &mut LayerSettings,
    shown: Option<&Histogram>,
) {
    match settings {
        LayerSettings::Image(s) => {
            histogram_ui(ui, shown, &mut s.range);
            range_ui(ui, &mut s.range);
            ui.horizontal(|ui| {
                colormap_ui(ui, ("cmap", i), &mut s.colormap);
                ui.checkbox(&mut s.invert, "invert");
            });
            opacity_blend_ui(ui, &mut s.opacity, &mut s.blend);
        }
        LayerSettings::Segmentation(s) => {
            ui.horizontal(|ui| {
                ui.checkbox(&mut s.hide_zero, "hide 0");
                ui.checkbox(&mut s.isolate, "only selected");
            });
            ui.add(egui::Slider::new(&mut s.selected_alpha, 0.0..=1.0).text("selected opacity"));
            ui.add(egui::Slider::new(&mut s.unselected_alpha, 0.0..=1.0).text("others opacity"));
            ui.horizontal(|ui| {
                let l = ui.label("colour seed");
                ui.add(egui::DragValue::new(&mut s.color_seed))
                    .labelled_by(l.id);
            });
            if !s.selected.is_empty() {
                let ids: Vec<String> = s.selected.iter().map(|v| v.to_string()).collect();
                ui.horizontal_wrapped(|ui| {
                    ui.label(format!("selected: {}", ids.join(", ")));
                    if ui.small_button("clear").clicked() {
                        s.selected.clear();
                    }
                });
            }
        }
        LayerSettings::Prediction(s) => {
            histogram_ui(ui, shown, &mut s.range);
            range_ui(ui, &mut s.range);
            colormap_ui(ui, ("pcmap", i), &mut s.colormap);
            opacity_blend_ui(ui, &mut s.opacity, &mut s.blend);
            threshold_ui(ui, s);
        }
    }
}

/// The threshold preview of a prediction layer: on or off, and the threshold within the
/// layer's range.
fn threshold_ui(ui: &mut egui::Ui, s: &mut crate::render::state::PredictionSettings) {
    let mut on = s.threshold.is_some();
    if ui
        .checkbox(&mut on, "threshold preview")
        .on_hover_text(
            "draw each channel where it is above the threshold, as post-processing segments it",
        )
        .changed()
    {
        s.threshold = on.then(|| ((s.range[0] + s.range[1]) / 2.0) as f32);
    }
    if let Some(t) = &mut s.threshold {
        let (lo, hi) = (
            s.range[0].min(s.range[1]) as f32,
            s.range[0].max(s.range[1]) as f32,
        );
        ui.add(egui::Slider::new(t, lo..=hi).text("threshold"));
    }
}

/// A histogram of the values shown on a panel (first channel), with the contrast range
/// drawn on it: a click or drag moves the nearer end of the range.
fn histogram_ui(ui: &mut egui::Ui, hist: Option<&Histogram>, range: &mut [f64; 2]) {
    let Some(hist) = hist else { return };
    let (dmin, dmax) = (hist.min, hist.max);
    let lo = dmin.min(range[0].min(range[1]));
    let hi = dmax.max(range[0].max(range[1]));
    let span = if hi > lo { hi - lo } else { 1.0 };
    const BINS: usize = 64;
    let counts = hist.rebin(lo, hi, BINS);
    let peak = counts.iter().copied().max().unwrap_or(1).max(1) as f32;
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(ui.available_width().min(260.0), 40.0),
        egui::Sense::click_and_drag(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
    let bw = rect.width() / BINS as f32;
    for (k, c) in counts.iter().enumerate() {
        // Log-scaled heights so sparse values stay visible.
        let h = ((*c as f32 + 1.0).ln() / (peak + 1.0).ln()) * rect.height();
        let x = rect.min.x + k as f32 * bw;
        painter.rect_filled(
            egui::Rect::from_min_max(
                egui::pos2(x, rect.max.y - h),
                egui::pos2(x + bw, rect.max.y),
            ),
            0.0,
            ui.visuals().weak_text_color(),
        );
    }
    let to_x = |v: f64| rect.min.x + ((v - lo) / span) as f32 * rect.width();
    for (v, color) in [
        (range[0], egui::Color32::from_rgb(80, 160, 255)),
        (range[1], egui::Color32::from_rgb(255, 200, 60)),
    ] {
        let x = to_x(v);
        painter.line_segment(
            [egui::pos2(x, rect.min.y), egui::pos2(x, rect.max.y)],
            egui::Stroke::new(2.0, color),
        );
    }
    if let Some(pos) = response.interact_pointer_pos() {
        if response.dragged() || response.clicked() {
            let v = lo + f64::from((pos.x - rect.min.x) / rect.width()) * span;
            let k = if (v - range[0]).abs() <= (v - range[1]).abs() {
                0
            } else {
                1
            };
            range[k] = v;
        }
    }
    response.on_hover_text(format!(
        "values shown: {dmin} to {dmax}; click or drag to set the range"
    ));
}

fn range_ui(ui: &mut egui::Ui, range: &mut [f64; 2]) {
    ui.horizontal(|ui| {
        ui.label("range");
        let speed = ((range[1] - range[0]).abs() / 200.0).max(1e-4);
        let lo = ui.label("from");
        ui.add(egui::DragValue::new(&mut range[0]).speed(speed))
            .labelled_by(lo.id);
        let hi = ui.label("to");
        ui.add(egui::DragValue::new(&mut range[1]).speed(speed))
            .labelled_by(hi.id);
    });
}

fn colormap_ui(ui: &mut egui::Ui, id: (&str, usize), c: &mut Colormap) {
    egui::ComboBox::new(id, "colormap")
        .selected_text(format!("{c:?}").to_lowercase())
        .show_ui(ui, |ui| {
            for m in Colormap::ALL {
                ui.selectable_value(c, m, format!("{m:?}").to_lowercase());
            }
        });
}

fn opacity_blend_ui(ui: &mut egui::Ui, opacity: &mut f32, blend: &mut Blend) {
    ui.horizontal(|ui| {
        ui.add(egui::Slider::new(opacity, 0.0..=1.0).text("opacity"));
        let mut additive = *blend == Blend::Additive;
        if ui.checkbox(&mut additive, "additive").changed() {
            *blend = if additive {
                Blend::Additive
            } else {
                Blend::Default
            };
        }
    });
}

/// The whole-pixel shift (dx, dy) from `old` to `new` when they differ only by panning
/// in the plane by less than the panel size.
fn pixel_shift(old: &SliceView, new: &SliceView) -> Option<(i64, i64)> {
    if old.plane != new.plane
        || old.nm_per_px != new.nm_per_px
        || old.width_px != new.width_px
        || old.height_px != new.height_px
    {
        return None;
    }
    let [h, v, n] = new.plane.axes();
    if old.center.0[n] != new.center.0[n] {
        return None;
    }
    let whole = |d: f64| {
        let r = d.round();
        ((d - r).abs() < 1e-6).then_some(r as i64)
    };
    let dx = whole((new.center.0[h] - old.center.0[h]) / new.nm_per_px)?;
    let dy = whole((new.center.0[v] - old.center.0[v]) / new.nm_per_px)?;
    let fits = dx.unsigned_abs() < u64::from(new.width_px) / 2
        && dy.unsigned_abs() < u64::from(new.height_px) / 2;
    (fits && (dx, dy) != (0, 0)).then_some((dx, dy))
}

/// The strips of `view` a pan by (dx, dy) pixels exposes: their top-left pixel and the
/// view of just that strip (same pixel grid).
fn exposed_strips(view: &SliceView, dx: i64, dy: i64) -> Vec<(u32, u32, SliceView)> {
    let (w, h) = (i64::from(view.width_px), i64::from(view.height_px));
    let mut rects = Vec::new();
    if dx > 0 {
        rects.push((w - dx, 0, dx, h));
    } else if dx < 0 {
        rects.push((0, 0, -dx, h));
    }
    // Rows exposed by dy, without the columns already covered.
    let (cx0, cw) = if dx > 0 {
        (0, w - dx)
    } else {
        (-dx.min(0), w + dx.min(0))
    };
    if dy > 0 && cw > 0 {
        rects.push((cx0, h - dy, cw, dy));
    } else if dy < 0 && cw > 0 {
        rects.push((cx0, 0, cw, -dy));
    }
    rects
        .into_iter()
        .map(|(x0, y0, sw, sh)| {
            let centre = view.world_at(x0 as f64 + sw as f64 / 2.0, y0 as f64 + sh as f64 / 2.0);
            (
                x0 as u32,
                y0 as u32,
                SliceView {
                    center: centre,
                    width_px: sw as u32,
                    height_px: sh as u32,
                    ..*view
                },
            )
        })
        .collect()
}

/// The display range an image of `dt` starts with.
fn default_range(dt: crate::array::DataType) -> [f64; 2] {
    use crate::array::DataType as D;
    match dt {
        D::U8 | D::I8 => [0.0, 255.0],
        D::U16 | D::I16 => [0.0, 65535.0],
        D::Bool => [0.0, 1.0],
        _ => [0.0, 1.0],
    }
}

fn format_value(v: &PixelValue) -> String {
    match v {
        PixelValue::Float(c) if c.len() == 1 => format!("{}", c[0]),
        PixelValue::Float(c) => {
            let parts: Vec<String> = c.iter().map(|x| format!("{x}")).collect();
            format!("[{}]", parts.join(", "))
        }
        PixelValue::Label(id) => id.to_string(),
        PixelValue::Outside => "outside".into(),
        PixelValue::Loading => "loading".into(),
        PixelValue::Failed => "failed".into(),
    }
}

/// A round scale-bar length (1, 2 or 5 × 10ⁿ nm) of at most `max_px` pixels, and its label.
pub fn scale_bar(nm_per_px: f64, max_px: f64) -> (f64, String) {
    let max_nm = (nm_per_px * max_px).max(1e-9);
    let p = 10f64.powf(max_nm.log10().floor());
    let len = [5.0, 2.0, 1.0]
        .iter()
        .map(|m| m * p)
        .find(|l| *l <= max_nm)
        .unwrap_or(p);
    let label = if len >= 1e6 {
        format!("{} mm", len / 1e6)
    } else if len >= 1e3 {
        format!("{} µm", len / 1e3)
    } else {
        format!("{len} nm")
    };
    (len, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_bars_are_round() {
        assert_eq!(scale_bar(1.0, 120.0), (100.0, "100 nm".to_string()));
        assert_eq!(scale_bar(4.0, 130.0), (500.0, "500 nm".to_string()));
        assert_eq!(scale_bar(40.0, 100.0), (2000.0, "2 µm".to_string()));
    }
}
