//! The Viewer section: layers from any zarr/N5/OME-Zarr path drawn in cross-sections (xy,
//! xz, yz) with neuroglancer's mouse and key bindings, per-layer drawing settings, the
//! value under the cursor, error overlays, and the view state saved as JSON.
//!
//! This file holds the layers and the view state and hands each panel to
//! `render::composer`; `input` turns mouse and keys into the view, `panels` paints the
//! central area, `side_panel` the layer list and settings, and `validation` a run's
//! validation layers.

mod input;
mod model_layer;
mod overlay;
mod panels;
mod side_panel;
pub mod statistics;
mod three_d;
mod validation;

pub use overlay::{BlockMap, RegionDraft};
pub use panels::scale_bar;
pub use validation::{threshold_of, ValidationBrowse};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use eframe::egui_wgpu;

use crate::render::cache::{ChunkCache, DEFAULT_CPU_CACHE_BYTES};
use crate::render::colors::{Colormap, AXIS_COLORS};
use crate::render::composer::{PanelComposer, Scene, SceneLayer};
use crate::render::gpu::SliceCallback;
use crate::render::gpu_gather::{GpuStorePublished, GpuStoreStats};
use crate::render::layer::{open_layer, LayerData, LayerKind, WorldNm};
use crate::render::orientation::Orientation;
use crate::render::shade::{self, GpuUniforms, PanelTextures};
use crate::render::slice::{Histogram, PixelValue, Plane, SliceView, Wanted};
use crate::render::state::{Blend, ErrorOverlay, LayerSettings, LayerState, Layout, ViewState};
use crate::render::volume::{Orbit, VolumeJob};
use crate::store::layout::RunDir;

/// A layer as the viewer holds it: its state plus the opened data (or why it failed).
struct Layer {
    uid: u64,
    data: Result<Arc<LayerData>, String>,
    /// A model layer's checkpoints computed before (most recently shown last), kept so
    /// that going back to one shows what it computed at once.
    versions: Vec<model_layer::ModelVersion>,
}

/// A neuroglancer export with the computed layers written out: the state, its URL, and
/// per computed layer its name and what was written.
pub type NeuroglancerExport = (
    serde_json::Value,
    String,
    Vec<(String, crate::ops::live::ComputedExport)>,
);

/// The viewer's state and caches.
pub struct Viewer {
    /// What is saved and restored.
    pub state: ViewState,
    layers: Vec<Layer>,
    composer: PanelComposer,
    /// Increases whenever what the panels draw changes (see [`Viewer::note_changes`]).
    revision: u64,
    /// The layer states, overlays and cross-hair switch the panels were last drawn with.
    drawn: Option<(Vec<LayerState>, Vec<ErrorOverlay>, bool)>,
    /// Where the panels looked at the last frame (position, zoom, orientation) and when that
    /// last changed, to tell the chunk cache when the view keeps moving.
    looked_at: Option<((WorldNm, f64, Orientation), std::time::Instant)>,
    /// CPU-shaded panel images (without the wgpu pipeline) and the upload version shaded.
    cpu_textures: HashMap<Plane, (u64, egui::TextureHandle)>,
    next_uid: u64,
    /// Whether the wgpu pipeline is installed (else panels are shaded on the CPU); see
    /// [`Viewer::use_gpu`].
    gpu: bool,
    /// GPU memory for chunks, in bytes (a setting).
    pub gpu_budget_bytes: u64,
    /// The GPU chunk store's counts, as the renderer last published them.
    gpu_stats: Arc<std::sync::Mutex<GpuStorePublished>>,
    /// The last problem to show (a bad path, a state file that does not load …).
    pub message: Option<String>,
    path_field: String,
    hover: Option<(Plane, f64, f64)>,
    waker_set: bool,
    truth_pick: usize,
    prediction_pick: usize,
    /// Where each cross-section was drawn last frame (points).
    pub panel_rects: HashMap<Plane, egui::Rect>,
    volume_job: VolumeJob,
    volume_texture: Option<egui::TextureHandle>,
    three_d_planes: crate::render::volume_render::SettledPlanes,
    /// The directory neuroglancer exports serve (the project), and the URL it is served at.
    pub serve_root: Option<PathBuf>,
    /// The project's saved views (newest first), offered while the viewer is empty.
    pub project_views: Vec<PathBuf>,
    ng_base_url: String,
    /// Whether a neuroglancer export writes the computed layers' blocks out (into the
    /// project) so that the state can show them.
    pub ng_write_computed: bool,
    /// The last export's note (where the file went, that the URL was copied).
    pub note: Option<String>,
    /// A run's validation arrays on show, whose iteration and parameters can be changed.
    pub validation: Option<ValidationBrowse>,
    /// The blocks of the Apply section's job, drawn over the data.
    pub block_map: Option<BlockMap>,
    /// A region being drawn for the Apply section.
    pub region: Option<RegionDraft>,
    /// The open project (runs for "Add prediction…" come from it).
    pub project: Option<PathBuf>,
    /// Its runs.
    pub project_runs: Vec<String>,
    model_form: model_layer::ModelForm,
    /// The live predictions of model layers, by layer id.
    live: HashMap<u64, Arc<crate::blockwise::live::LivePrediction>>,
    /// Model layers whose networks are opening: their layer ids and where the result comes.
    #[allow(clippy::type_complexity)]
    opening: Vec<(
        u64,
        std::sync::mpsc::Receiver<
            Result<(Arc<LayerData>, Arc<crate::blockwise::live::LivePrediction>), String>,
        >,
    )>,
    /// The checkpoint iterations of runs shown by model layers, by (project, run), with
    /// when they were listed.
    checkpoint_lists: HashMap<(PathBuf, String), (std::time::Instant, Vec<u64>)>,
}

/// One layer's row of the chunk statistics (neuroglancer's statistics panel).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChunkStatistics {
    /// The layer's name.
    pub layer: String,
    /// Chunks waiting to be read or computed.
    pub queued: usize,
    /// Being read or computed now.
    pub loading: usize,
    /// Decoded in the CPU cache.
    pub in_memory: usize,
    /// Their bytes.
    pub in_memory_bytes: u64,
    /// In GPU memory (as last drawn).
    pub on_gpu: usize,
    /// Their bytes.
    pub on_gpu_bytes: u64,
    /// Shown as missing on the panels: wanted and not held yet.
    pub missing: usize,
    /// Reads that failed.
    pub failed: usize,
}

impl Default for Viewer {
    fn default() -> Self {
        Self::new(DEFAULT_CPU_CACHE_BYTES)
    }
}

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
            composer: PanelComposer::new(Arc::new(ChunkCache::with_compute_lanes(
                cpu_cache_bytes,
                threads,
                crate::ops::live::default_lanes(),
            ))),
            revision: 0,
            drawn: None,
            looked_at: None,
            cpu_textures: HashMap::new(),
            next_uid: 1,
            gpu: false,
            gpu_budget_bytes: crate::render::gpu_gather::DEFAULT_GPU_CACHE_BYTES,
            gpu_stats: Arc::default(),
            message: None,
            path_field: String::new(),
            hover: None,
            waker_set: false,
            truth_pick: 0,
            prediction_pick: 0,
            panel_rects: HashMap::new(),
            project_views: Vec::new(),
            volume_job: VolumeJob::default(),
            volume_texture: None,
            three_d_planes: Default::default(),
            serve_root: None,
            ng_base_url: "http://127.0.0.1:9000/".into(),
            ng_write_computed: false,
            note: None,
            validation: None,
            block_map: None,
            region: None,
            project: None,
            project_runs: Vec::new(),
            model_form: model_layer::ModelForm::default(),
            live: HashMap::new(),
            checkpoint_lists: HashMap::new(),
            opening: Vec::new(),
        }
    }

    /// The opened data of layer `i` (`None` when it did not open).
    pub fn layer_data(&self, i: usize) -> Option<&Arc<LayerData>> {
        self.layers.get(i).and_then(|l| l.data.as_ref().ok())
    }

    /// Draws with the wgpu pipeline (installed with `crate::render::gpu::install`): slices
    /// are gathered from chunks in GPU memory when `gather`, else composed on the CPU and
    /// uploaded. Without it, panels are shaded on the CPU.
    pub fn use_gpu(&mut self, gpu: bool, gather: bool) {
        self.gpu = gpu;
        self.composer.set_gather(gpu && gather);
    }

    /// Whether panels are drawn with the wgpu pipeline.
    pub fn uses_gpu(&self) -> bool {
        self.gpu
    }

    /// Whether slices are gathered from chunks in GPU memory.
    pub fn gathers_on_gpu(&self) -> bool {
        self.composer.gathers()
    }

    /// The GPU chunk store's counts as last drawn.
    pub fn gpu_store_stats(&self) -> GpuStoreStats {
        self.gpu_stats.lock().map(|s| s.stats).unwrap_or_default()
    }

    /// Each layer's chunks by state: in the CPU cache (queued, loading, in memory,
    /// failed), wanted by the panels and not held, and in GPU memory (as last drawn).
    pub fn chunk_statistics(&self) -> Vec<ChunkStatistics> {
        let cache = self.composer.cache().counts_by_layer();
        let gpu = self
            .gpu_stats
            .lock()
            .map(|s| s.by_layer.clone())
            .unwrap_or_default();
        let wanted = self.composer.wanted_by_layer();
        self.state
            .layers
            .iter()
            .zip(&self.layers)
            .map(|(st, l)| {
                let c = cache.get(&l.uid).copied().unwrap_or_default();
                let (on_gpu, on_gpu_bytes) = gpu.get(&l.uid).copied().unwrap_or_default();
                ChunkStatistics {
                    layer: st.name.clone(),
                    queued: c.queued,
                    loading: c.loading,
                    in_memory: c.in_memory,
                    in_memory_bytes: c.in_memory_bytes as u64,
                    on_gpu,
                    on_gpu_bytes,
                    missing: wanted.get(&l.uid).copied().unwrap_or(0),
                    failed: c.failed,
                }
            })
            .collect()
    }

    /// The chunk cache (for statistics and tests).
    pub fn cache(&self) -> &ChunkCache {
        self.composer.cache()
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
                model: None,
            },
            data,
        );
    }

    fn push(&mut self, state: LayerState, data: Result<Arc<LayerData>, String>) {
        self.layers.push(Layer {
            uid: self.next_uid,
            data,
            versions: Vec::new(),
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
            self.live.remove(&l.uid);
            l.uid = self.next_uid;
            l.data = data;
            s.source = path.to_path_buf();
            s.model = None;
            self.next_uid += 1;
        }
        self.invalidate();
    }

    /// The index of the layer named `name`.
    pub fn layer_index(&self, name: &str) -> Option<usize> {
        self.state.layers.iter().position(|l| l.name == name)
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
        self.live.clear();
        self.opening.clear();
        for l in state.layers {
            match l.model {
                Some(_) => self.push_model(l),
                None => {
                    let data = open_layer(&l.source).map_err(|e| e.to_string());
                    self.push(l, data);
                }
            }
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
        let layers: Vec<Option<&LayerData>> = self
            .layers
            .iter()
            .map(|l| l.data.as_ref().ok().map(|d| d.as_ref()))
            .collect();
        crate::render::neuroglancer::state_and_url(&self.state, &layers, base_url, root)
    }

    /// Like [`Viewer::neuroglancer`], with the computed layers (live predictions and their
    /// segmentations) in it too: the blocks each has computed so far are first written to
    /// its project's `exports/neuroglancer.zarr` (see [`crate::ops::live::write_computed`]),
    /// and the state points at those arrays. Returns what was written, per layer.
    pub fn neuroglancer_with_computed(
        &self,
        base_url: &str,
        root: &Path,
    ) -> Result<NeuroglancerExport, String> {
        let mut written = Vec::new();
        let mut opened: Vec<Option<Arc<LayerData>>> = Vec::new();
        for (layer, st) in self.layers.iter().zip(&self.state.layers) {
            let data = layer.data.as_ref().ok();
            let (Some(d), Some(model), Some(live)) =
                (data, st.model.as_ref(), self.live.get(&layer.uid))
            else {
                opened.push(data.cloned());
                continue;
            };
            let container = model.project.join(crate::ops::live::EXPORT_CONTAINER);
            let dataset = crate::ops::live::export_dataset_name(&st.name);
            let export =
                crate::ops::live::write_computed(&*d.levels[0].source, live, &container, &dataset)
                    .map_err(|e| format!("layer {:?}: {e}", st.name))?;
            let reopened = crate::render::layer::open_layer(&export.path)
                .map_err(|e| format!("layer {:?}: {e}", st.name))?;
            opened.push(Some(reopened));
            written.push((st.name.clone(), export));
        }
        let layers: Vec<Option<&LayerData>> = opened.iter().map(|d| d.as_deref()).collect();
        let (state, url) =
            crate::render::neuroglancer::state_and_url(&self.state, &layers, base_url, root);
        Ok((state, url, written))
    }

    /// Whether the panels' slices as last drawn are complete: every pixel from its chosen
    /// level, nothing loading and no coarser level standing in.
    pub fn slices_complete(&self) -> bool {
        !self.composer.loading() && self.opening.is_empty()
    }

    /// Whether anything is still loading: chunks queued or being read (also the
    /// neighbouring slices read ahead), coarser levels standing in, layers opening or the
    /// 3D panel's volume.
    pub fn loading(&self) -> bool {
        let st = self.composer.cache().stats();
        let three_d = matches!(self.state.layout, Layout::FourPanel | Layout::ThreeD);
        (three_d && self.volume_job.busy())
            || st.queued > 0
            || st.in_flight > 0
            || self.composer.loading()
            || !self.opening.is_empty()
    }

    /// The drawn uniforms and textures of `plane`'s panel, as last composed (gathered
    /// slices are drawn on the CPU as the GPU draws them).
    pub fn panel_upload(&self, plane: Plane) -> Option<(GpuUniforms, Arc<PanelTextures>)> {
        let scene = scene(&self.layers, &self.state, self.revision);
        self.composer.upload_with_textures(&scene, plane)
    }

    /// `plane`'s panel as last planned for gathering on the GPU (`None` unless slices are
    /// gathered).
    pub fn panel_gathered(
        &self,
        plane: Plane,
    ) -> Option<(GpuUniforms, Arc<crate::render::gpu::GatheredContent>)> {
        let u = self.composer.upload(plane)?;
        Some((u.uniforms, u.gathered.clone()?))
    }

    /// The status line of layer `i`: its level and loading progress, or its error.
    pub fn layer_status(&self, i: usize) -> String {
        let Some(layer) = self.layers.get(i) else {
            return String::new();
        };
        match &layer.data {
            Err(_) if self.model_opening(i) => "opening the network…".to_string(),
            Err(e) => format!("error: {e}"),
            Ok(d) => {
                let progress = self.composer.progress(i);
                if let Some(e) = progress.errors.first() {
                    return format!("error: {} chunk(s) failed: {e}", progress.errors.len());
                }
                let mut text = format!(
                    "{} · {} ch · {} level{}",
                    d.data_type,
                    d.channels,
                    d.levels.len(),
                    if d.levels.len() == 1 { "" } else { "s" }
                );
                if let Some(l) = progress.level {
                    text.push_str(&format!(" · showing s{l}"));
                }
                if let Some(model) = self.model_status(i) {
                    text.push_str(&model);
                } else if progress.loading > 0 || progress.coarser > 0 {
                    text.push_str(" · loading");
                }
                text
            }
        }
    }

    fn invalidate(&mut self) {
        self.composer.invalidate();
    }

    /// Increases the revision when the layer states, overlays or cross hairs differ from
    /// what the panels were last drawn with (widgets and callers edit `state` directly);
    /// one comparison per frame, no copy unless something changed.
    fn note_changes(&mut self) {
        let looking_at = (
            self.state.position_nm,
            self.state.zoom_nm_per_px,
            self.state.orientation,
        );
        match self.looked_at {
            Some((at, _)) if at == looking_at => {}
            Some((_, since)) => {
                // A second change soon after the first is a motion (panning, scrolling
                // through slices); a single jump wants its chunks as fast as possible.
                let now = std::time::Instant::now();
                if now - since < crate::render::cache::VIEW_MOVING_HOLD {
                    self.composer.cache().view_moved();
                }
                self.looked_at = Some((looking_at, now));
            }
            None => self.looked_at = Some((looking_at, std::time::Instant::now())),
        }
        let same = self
            .drawn
            .as_ref()
            .is_some_and(|(layers, overlays, cross)| {
                *layers == self.state.layers
                    && *overlays == self.state.overlays
                    && *cross == self.state.cross_hairs
            });
        if !same {
            self.drawn = Some((
                self.state.layers.clone(),
                self.state.overlays.clone(),
                self.state.cross_hairs,
            ));
            self.revision += 1;
        }
    }

    /// Redraws every panel of the layout from the cache now (for headless renders and
    /// tests): the slices of `plane` at `size` pixels.
    pub fn compose_panel(
        &mut self,
        plane: Plane,
        size: [u32; 2],
    ) -> (GpuUniforms, Arc<PanelTextures>) {
        self.refresh_panels(&[(plane, size)]);
        self.panel_upload_or_blank(plane)
    }

    /// [`Viewer::panel_upload`], or a blank panel when there is none yet.
    pub fn panel_upload_or_blank(&self, plane: Plane) -> (GpuUniforms, Arc<PanelTextures>) {
        self.panel_upload(plane).unwrap_or_else(|| {
            let (u, t) = shade::pack(&[], None, [0.0, 0.0], None);
            (u, Arc::new(t))
        })
    }

    /// Like [`Viewer::compose_panel`] when slices are gathered on the GPU: the uniforms
    /// and what to gather (`None` unless they are).
    pub fn gather_panel(
        &mut self,
        plane: Plane,
        size: [u32; 2],
    ) -> Option<(GpuUniforms, Arc<crate::render::gpu::GatheredContent>)> {
        self.refresh_panels(&[(plane, size)]);
        self.panel_gathered(plane)
    }

    /// Brings the panels of `panels` (each a plane and its size in pixels) up to date
    /// from the cache now, as one frame of the app does, and asks for the chunks they
    /// still want together (for headless renders and benchmarks; read each panel with
    /// [`Viewer::panel_upload`] or [`Viewer::panel_gathered`]).
    pub fn refresh_panels(&mut self, panels: &[(Plane, [u32; 2])]) {
        self.poll_models();
        self.note_changes();
        self.composer.begin_frame();
        let mut wanted = Wanted::default();
        for &(plane, size) in panels {
            let view = SliceView {
                plane,
                center: self.state.position_nm,
                nm_per_px: self.state.zoom_nm_per_px,
                width_px: size[0].max(1),
                height_px: size[1].max(1),
                orientation: self.state.orientation,
            };
            wanted.extend(self.refresh_panel(view));
        }
        self.composer.request(wanted);
    }

    /// Brings `view.plane`'s panel up to date; returns the chunks it still wants.
    fn refresh_panel(&mut self, view: SliceView) -> Wanted {
        let hover = self
            .hover
            .filter(|h| h.0 == view.plane)
            .map(|(_, x, y)| (x, y));
        let scene = scene(&self.layers, &self.state, self.revision);
        self.composer.compose(&scene, view, hover)
    }

    /// The value layer `i` shows at panel pixel (`x`, `y`) of `plane` (`None` when it is not
    /// drawn there).
    pub fn pixel_value(&self, plane: Plane, i: usize, x: f64, y: f64) -> Option<PixelValue> {
        self.composer.value_at(plane, i, x, y)
    }

    /// The value every layer shows at panel pixel (`x`, `y`) of `plane`, with the layer
    /// names: `error` for layers that did not open, `hidden` for layers not drawn.
    pub fn values_at(&self, plane: Plane, x: f64, y: f64) -> Vec<(String, String)> {
        self.state
            .layers
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let value = match (&self.layers[i].data, self.composer.shows(plane, i)) {
                    (Err(_), _) => "error".to_string(),
                    (Ok(_), false) => "hidden".to_string(),
                    (Ok(_), true) => self
                        .composer
                        .value_at(plane, i, x, y)
                        .map(|v| format_value(&v))
                        .unwrap_or_default(),
                };
                (st.name.clone(), value)
            })
            .collect()
    }

    /// Draws the viewer section.
    pub fn ui(&mut self, ui: &mut egui::Ui, project_arrays: &[PathBuf]) {
        self.poll_models();
        if !self.waker_set {
            let ctx = ui.ctx().clone();
            self.composer
                .cache()
                .set_waker(move || ctx.request_repaint());
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
                self.region_bar(ui);
                self.panels_ui(ui);
            }
        });
        self.keys(ui);
    }
}

/// The composer's view of the viewer's layers and state.
fn scene<'a>(layers: &'a [Layer], state: &'a ViewState, revision: u64) -> Scene<'a> {
    Scene {
        layers: layers
            .iter()
            .zip(&state.layers)
            .map(|(l, st)| SceneLayer {
                uid: l.uid,
                data: l.data.as_ref().ok(),
                state: st,
            })
            .collect(),
        overlays: &state.overlays,
        cross_hairs: state.cross_hairs,
        revision,
    }
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
