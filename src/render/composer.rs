//! What each cross-section panel draws: the layers' slices gathered from the chunk cache
//! (in parallel, one layer per task), reused when the view only pans by whole pixels,
//! packed with the overlays, the hovered segment and the cross hairs for the shader.
//! Work is redone only when the view, the loaded chunks or the scene's revision changed.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::cache::{ChunkCache, ChunkKey};
use super::colors::AXIS_COLORS;
use super::gather::{self, GatherPlan};
use super::gpu::{GatherLayer, GatheredContent, PanelUpload};
use super::gpu_split_merge::SplitMergeSource;
use super::layer::{LayerData, LayerKind};
use super::motion::{exposed_strips, moving_step, pixel_shift, read_ahead};
use super::shade::{self, DrawLayer, DrawOverlay};
use super::slice::{self, compose, Histogram, LayerSlice, PixelValue, Plane, SliceView, Wanted};
use super::state::{ErrorOverlay, LayerSettings, LayerState};

/// One layer as the composer sees it: its identity in the chunk cache, its opened data
/// (`None` when it did not open) and its drawing state.
#[derive(Clone, Copy)]
pub struct SceneLayer<'a> {
    /// Identifies the layer's chunks in the cache; a new uid means new data.
    pub uid: u64,
    /// The opened array, if it opened.
    pub data: Option<&'a Arc<LayerData>>,
    /// Name, visibility and drawing settings.
    pub state: &'a LayerState,
}

/// Everything the panels show besides the view: layers bottom first, error overlays and
/// cross hairs, with a revision number the owner increases whenever any of them changes.
pub struct Scene<'a> {
    /// The layers, bottom first.
    pub layers: Vec<SceneLayer<'a>>,
    /// The error overlays (the first visible one whose layers exist is drawn).
    pub overlays: &'a [ErrorOverlay],
    /// Whether the cross hairs are drawn.
    pub cross_hairs: bool,
    /// Increases whenever a layer's state, the overlays or the cross hairs change; the
    /// composer repacks a panel only when it differs from the one it packed.
    pub revision: u64,
}

impl Scene<'_> {
    /// Whether layer `i` has to be composed: it is visible or an error overlay uses it.
    fn used(&self, i: usize) -> bool {
        let st = self.layers[i].state;
        st.visible
            || self.overlays.iter().any(|o| {
                o.visible
                    && (o.truth == st.name
                        || o.prediction == st.name
                        || o.mask.as_deref() == Some(st.name.as_str()))
            })
    }
}

/// Loading progress of one layer over all panels, for its status line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerProgress {
    /// Pixels whose chunks are still loading.
    pub loading: usize,
    /// Pixels shown from a coarser level while the finer one loads.
    pub coarser: usize,
    /// The scale level shown on the first panel (xy, xz, yz) that has the layer.
    pub level: Option<usize>,
    /// Distinct chunk errors.
    pub errors: Vec<String>,
}

/// Counts of the work done, so tests and benchmarks can tell reuse from recomputation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComposerStats {
    /// Layer pixels gathered from the cache (a full compose of a 64×64 panel with two
    /// layers adds 8192).
    pub composed_px: u64,
    /// Panel uploads packed.
    pub packs: u64,
}

/// One panel's slices and upload, and what they were made from.
#[derive(Default)]
struct PanelState {
    view: Option<SliceView>,
    completed: u64,
    layers_key: Vec<(u64, LayerKind, bool)>,
    /// The chunks the last composition still wanted (asked for again every frame, so the
    /// cache does not drop them).
    wanted: Wanted,
    /// Per layer, what it still wants.
    layer_wanted: Vec<Wanted>,
    /// Per layer, the missing chunks the panel shows (not the prefetched next slices):
    /// only their arrival makes it compose that layer again.
    layer_missing: Vec<Vec<ChunkKey>>,
    slices: Vec<Option<LayerSlice>>,
    /// Per layer, its plan when slices are gathered on the GPU (instead of `slices`).
    plans: Vec<Option<Arc<GatherPlan>>>,
    /// Per layer, what to draw of its plan over the last plans moved by `moved` (`None`:
    /// everything).
    dirty: Vec<Option<DirtyRects>>,
    /// The pixels the view moved by since the last plans (`None`: not a pan).
    moved: Option<(i64, i64)>,
    /// How far the plane moved along its normal in the frame its slices (or plans) were
    /// made for, nm (0 at rest or after a jump): a moving plane is drawn at a coarser level.
    step_nm: f64,
    /// Some layer is drawn at a coarser level than at rest because the plane moves.
    moving_level: bool,
    /// The `slices_version` of the plans in the last upload.
    plans_packed: u64,
    /// Increases whenever `slices` (or `plans`) change.
    slices_version: u64,
    /// (scene revision, slices version, hovered id) of the packed upload.
    packed: Option<(u64, u64, Option<u64>)>,
    upload: Option<PanelUpload>,
}

/// Composes the cross-section panels of one viewer from its chunk cache.
pub struct PanelComposer {
    cache: Arc<ChunkCache>,
    panels: HashMap<Plane, PanelState>,
    /// Per (plane, layer uid): the slices version counted and its histogram.
    histograms: HashMap<(Plane, u64), (u64, Option<Histogram>)>,
    next_version: u64,
    stats: ComposerStats,
    /// Slices are gathered from chunks on the GPU: panels are planned, not composed.
    gather: bool,
}

/// Most pixels a histogram counts (a gathered slice is sampled on a regular grid).
const HISTOGRAM_SAMPLES: u32 = 1 << 16;

/// A layer as a panel shows it: a composed slice, or a plan gathered on the GPU.
enum Shown<'a> {
    Slice(&'a LayerSlice),
    Plan(&'a GatherPlan),
}

impl Shown<'_> {
    fn value_at(&self, x: u32, y: u32) -> Option<PixelValue> {
        match self {
            Shown::Slice(s) => s.value_at(x, y),
            Shown::Plan(p) => p.value_at(x, y),
        }
    }

    /// Level, pixels from a coarser level, pixels loading, errors.
    fn progress(&self) -> (usize, usize, usize, &[String]) {
        match self {
            Shown::Slice(s) => (s.level, s.coarser, s.loading, &s.errors),
            Shown::Plan(p) => (p.level, p.coarser, p.loading, &p.errors),
        }
    }
}

impl PanelComposer {
    /// A composer reading from `cache`.
    pub fn new(cache: Arc<ChunkCache>) -> Self {
        Self {
            cache,
            panels: HashMap::new(),
            histograms: HashMap::new(),
            next_version: 1,
            stats: ComposerStats::default(),
            gather: false,
        }
    }

    /// Gathers slices from chunks on the GPU (`true`: panels are only planned, and their
    /// uploads carry the plans) or composes them on the CPU.
    pub fn set_gather(&mut self, gather: bool) {
        if self.gather != gather {
            self.gather = gather;
            self.panels.clear();
            self.histograms.clear();
        }
    }

    /// Whether slices are gathered on the GPU.
    pub fn gathers(&self) -> bool {
        self.gather
    }

    /// The chunk cache the panels read from.
    pub fn cache(&self) -> &Arc<ChunkCache> {
        &self.cache
    }

    /// Work done so far.
    pub fn stats(&self) -> ComposerStats {
        self.stats
    }

    /// Starts a frame: chunks not asked for again from now on may be dropped.
    pub fn begin_frame(&self) {
        self.cache.begin_frame();
    }

    /// Asks the cache for the chunks the frame's panels want, all panels' together: the
    /// coarse levels standing in first, then the visible chunks nearest the centre first,
    /// then the next slices.
    pub fn request(&self, wanted: Wanted) {
        self.cache.request(wanted.into_requests());
    }

    /// Forces every panel to compose again (layers were added, removed or reopened).
    pub fn invalidate(&mut self) {
        for p in self.panels.values_mut() {
            p.view = None;
        }
    }

    /// Drops a removed layer's chunks and histograms.
    pub fn forget_layer(&mut self, uid: u64) {
        self.cache.forget_layer(uid);
        self.histograms.retain(|(_, u), _| *u != uid);
    }

    /// Brings the panel of `view.plane` up to date with `scene` and returns the chunks it
    /// still wants. `hover` is the mouse position in this panel's pixels, if it is there:
    /// the segment under it is highlighted.
    pub fn compose(
        &mut self,
        scene: &Scene<'_>,
        view: SliceView,
        hover: Option<(f64, f64)>,
    ) -> Wanted {
        if self.gather {
            return self.plan(scene, view, hover);
        }
        let plane = view.plane;
        let completed = self.cache.stats().completed;
        let used: Vec<bool> = (0..scene.layers.len()).map(|i| scene.used(i)).collect();
        let layers_key: Vec<(u64, LayerKind, bool)> = scene
            .layers
            .iter()
            .zip(&used)
            .map(|(l, u)| (l.uid, l.state.settings.kind(), *u))
            .collect();
        let cache = &self.cache;
        let p = self.panels.entry(plane).or_default();
        let (step, coarser_level) = moving_step(scene, &used, p.view, &view);
        // Chunks read since the last composition change a layer only when the panel shows
        // them: only such layers are composed again.
        let ready: Vec<Vec<ChunkKey>> = if p.completed == completed {
            vec![Vec::new(); p.layer_missing.len()]
        } else {
            p.layer_missing
                .iter()
                .map(|k| cache.ready_among(k))
                .collect()
        };
        let arrivals: Vec<bool> = ready.iter().map(|r| !r.is_empty()).collect();
        let arrived = arrivals.iter().any(|a| *a);
        // A plane that moved along its normal, or stopped moving, is drawn at another level.
        let same_layers =
            p.layers_key == layers_key && p.slices.len() == scene.layers.len() && p.step_nm == step;
        let same_data = !arrived && same_layers;
        let stale = p.view != Some(view) || !same_data;
        let shift = p
            .view
            .and_then(|old| pixel_shift(&old, &view))
            .filter(|_| same_layers);
        let shifted = stale && shift.is_some();
        if let (true, Some((dx, dy))) = (stale, shift) {
            // Panned by whole pixels: move what is drawn and compose only the strips that
            // came into view (chunks that arrived meanwhile are drawn just below).
            let strips = exposed_strips(&view, dx, dy);
            let strip_px: u64 = strips
                .iter()
                .map(|(_, _, s)| u64::from(s.width_px) * u64::from(s.height_px))
                .sum();
            let slices = std::mem::take(&mut p.slices);
            let results: Vec<(Option<LayerSlice>, Wanted)> = slices
                .into_par_iter()
                .zip(scene.layers.par_iter())
                .map(|(slice, layer)| {
                    let (Some(old), Some(d)) = (slice, layer.data) else {
                        return (None, Wanted::default());
                    };
                    let mut moved = old.shifted(dx, dy);
                    let mut wanted = Wanted::default();
                    for (x0, y0, sv) in &strips {
                        let (part, w) =
                            compose(layer.uid, d, layer.state.settings.kind(), sv, cache);
                        moved.paste(&part, *x0, *y0);
                        wanted.extend(w);
                    }
                    (Some(moved), wanted)
                })
                .collect();
            for (i, (s, w)) in results.into_iter().enumerate() {
                if s.is_some() {
                    self.stats.composed_px += strip_px;
                }
                p.slices.push(s);
                if let Some(missing) = p.layer_missing.get_mut(i) {
                    missing.extend(w.shown_keys());
                }
                if let Some(wanted) = p.layer_wanted.get_mut(i) {
                    wanted.extend(w);
                }
            }
            p.view = Some(view);
            p.slices_version += 1;
        }
        if stale && (!shifted || arrived) {
            // Layers are composed in parallel (each is independent); when only chunks
            // arrived, just the layers they belong to.
            let partial = p.view == Some(view) && same_layers;
            let recompose: Vec<bool> = (0..scene.layers.len())
                .map(|i| !partial || arrivals.get(i).copied().unwrap_or(true))
                .collect();
            // A layer of one scale level whose chunks arrived composes just their pixels:
            // nothing else of it changed (with several levels, stand-ins change too).
            let patches: Vec<Option<&[ChunkKey]>> = (0..scene.layers.len())
                .map(|i| {
                    let single = !view.oblique()
                        && scene.layers[i].data.is_some_and(|d| d.levels.len() == 1);
                    let had = matches!(p.slices.get(i), Some(Some(_)));
                    (partial && recompose[i] && used[i] && single && had)
                        .then(|| ready.get(i).map_or(&[][..], Vec::as_slice))
                })
                .collect();
            let mut patched_px = 0;
            for (i, keys) in patches.iter().enumerate() {
                let (Some(keys), Some(d), Some(Some(slice))) =
                    (keys, scene.layers[i].data, p.slices.get_mut(i))
                else {
                    continue;
                };
                let layer = &scene.layers[i];
                let mut still = Wanted::default();
                for key in *keys {
                    let Some(rect) = slice::chunk_rect(d, key.level, &view, key.index) else {
                        continue;
                    };
                    let (part, w) = slice::compose_moving(
                        layer.uid,
                        d,
                        layer.state.settings.kind(),
                        &view,
                        step,
                        rect,
                        cache,
                    );
                    slice.paste(&part, rect.x0, rect.y0);
                    patched_px += u64::from(rect.width) * u64::from(rect.height);
                    still.coarse.extend(w.coarse);
                    still.visible.extend(w.visible);
                }
                // The arrived chunks are no longer wanted; what their pixels still miss
                // is (the neighbouring slices stay prefetched as before).
                let gone = |k: &ChunkKey| keys.contains(k);
                if let Some(m) = p.layer_missing.get_mut(i) {
                    m.retain(|k| !gone(k));
                    m.extend(still.shown_keys());
                }
                if let Some(w) = p.layer_wanted.get_mut(i) {
                    w.coarse.retain(|r| !gone(&r.key));
                    w.visible.retain(|(_, r)| !gone(&r.key));
                    w.coarse.extend(still.coarse);
                    w.visible.extend(still.visible);
                }
            }
            self.stats.composed_px += patched_px;
            let recompose: Vec<bool> = recompose
                .iter()
                .zip(&patches)
                .map(|(again, patch)| *again && patch.is_none())
                .collect();
            let composed: Vec<Option<(LayerSlice, Wanted)>> = scene
                .layers
                .par_iter()
                .zip(used.par_iter())
                .zip(recompose.par_iter())
                .map(
                    |((layer, used), again)| match (layer.data, *used && *again) {
                        (Some(d), true) => Some(slice::compose_moving(
                            layer.uid,
                            d,
                            layer.state.settings.kind(),
                            &view,
                            step,
                            slice::PixelRect::whole(&view),
                            cache,
                        )),
                        _ => None,
                    },
                )
                .collect();
            let old_slices = std::mem::take(&mut p.slices);
            let old_wanted = std::mem::take(&mut p.layer_wanted);
            let old_missing = std::mem::take(&mut p.layer_missing);
            let kept = old_slices
                .into_iter()
                .zip(old_wanted)
                .zip(old_missing)
                .map(Some)
                .chain(std::iter::repeat_with(|| None));
            for ((c, again), old) in composed.into_iter().zip(&recompose).zip(kept) {
                match (c, *again, old) {
                    (Some((s, w)), _, _) => {
                        self.stats.composed_px +=
                            u64::from(view.width_px) * u64::from(view.height_px);
                        p.layer_missing.push(w.shown_keys());
                        p.layer_wanted.push(w);
                        p.slices.push(Some(s));
                    }
                    (None, false, Some(((s, w), m))) => {
                        p.slices.push(s);
                        p.layer_wanted.push(w);
                        p.layer_missing.push(m);
                    }
                    (None, _, _) => {
                        p.slices.push(None);
                        p.layer_wanted.push(Wanted::default());
                        p.layer_missing.push(Vec::new());
                    }
                }
            }
            p.view = Some(view);
            p.completed = completed;
            p.layers_key = layers_key;
            p.slices_version += 1;
        }
        if stale {
            let mut all = Wanted::default();
            for w in &p.layer_wanted {
                all.extend(w.clone());
            }
            if step != 0.0 {
                all.prefetch.extend(read_ahead(scene, &used, &view, step));
            }
            p.wanted = all;
            p.step_nm = step;
            p.moving_level = coarser_level;
        }
        let hover_id = hover.and_then(|(x, y)| hovered_label(&p.slices, x, y));
        let key = (scene.revision, p.slices_version, hover_id);
        if p.packed != Some(key) || p.upload.is_none() {
            let (uniforms, textures) = pack(scene, &p.slices, &view, hover_id);
            p.upload = Some(PanelUpload {
                uniforms,
                textures: Arc::new(textures),
                gathered: None,
                version: self.next_version,
            });
            self.next_version += 1;
            self.stats.packs += 1;
            p.packed = Some(key);
        }
        p.wanted.clone()
    }

    /// [`PanelComposer::compose`] when slices are gathered on the GPU: each used layer is
    /// planned (work per chunk in view, not per pixel) again when the view, the loaded
    /// chunks or the layers changed.
    fn plan(&mut self, scene: &Scene<'_>, view: SliceView, hover: Option<(f64, f64)>) -> Wanted {
        let completed = self.cache.stats().completed;
        let layers_key: Vec<(u64, LayerKind, bool)> = scene
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.uid, l.state.settings.kind(), scene.used(i)))
            .collect();
        let cache = &self.cache;
        let p = self.panels.entry(view.plane).or_default();
        let used: Vec<bool> = layers_key.iter().map(|k| k.2).collect();
        let (step, coarser_level) = moving_step(scene, &used, p.view, &view);
        // A plane that moved along its normal, or stopped moving, is drawn at another level.
        let stale = p.view != Some(view)
            || p.step_nm != step
            || p.completed != completed
            || p.layers_key != layers_key
            || p.plans.len() != scene.layers.len();
        if stale {
            // A pan by whole pixels (or none) with the same layers: the GPU moves what it
            // holds and draws only what changed.
            let moved = match p.view {
                Some(old)
                    if p.layers_key == layers_key
                        && p.plans.len() == scene.layers.len()
                        && p.step_nm == step =>
                {
                    if old == view {
                        Some((0, 0))
                    } else {
                        pixel_shift(&old, &view)
                    }
                }
                _ => None,
            };
            let planned: Vec<Option<(GatherPlan, Wanted)>> = scene
                .layers
                .par_iter()
                .zip(layers_key.par_iter())
                .map(|(layer, (_, kind, used))| {
                    let d = layer.data.filter(|_| *used)?;
                    Some(gather::plan_moving(layer.uid, d, *kind, &view, step, cache))
                })
                .collect();
            let mut all = Wanted::default();
            let mut missing = Vec::with_capacity(planned.len());
            let plans: Vec<Option<Arc<GatherPlan>>> = planned
                .into_iter()
                .map(|r| {
                    missing.push(r.as_ref().map(|(_, w)| w.shown_keys()).unwrap_or_default());
                    r.map(|(plan, wanted)| {
                        all.extend(wanted);
                        Arc::new(plan)
                    })
                })
                .collect();
            p.layer_missing = missing;
            p.dirty = plans
                .iter()
                .zip(&p.plans)
                .map(|(new, old)| match (new, old, moved) {
                    (Some(new), Some(old), Some(shift)) => Some(gather::dirty(old, new, shift)),
                    _ => None,
                })
                .collect();
            if step != 0.0 {
                all.prefetch.extend(read_ahead(scene, &used, &view, step));
            }
            p.step_nm = step;
            p.moving_level = coarser_level;
            p.moved = moved;
            p.plans = plans;
            p.wanted = all;
            p.slices.clear();
            p.view = Some(view);
            p.completed = completed;
            p.layers_key = layers_key;
            p.slices_version += 1;
        }
        let hover_id = hover.and_then(|(x, y)| {
            let (x, y) = (px(x)?, px(y)?);
            p.plans
                .iter()
                .rev()
                .flatten()
                .find_map(|plan| match plan.value_at(x, y) {
                    Some(PixelValue::Label(id)) => Some(id),
                    _ => None,
                })
        });
        let key = (scene.revision, p.slices_version, hover_id);
        if p.packed != Some(key) || p.upload.is_none() {
            let last = p.upload.as_ref().and_then(|u| u.gathered.clone());
            let replanned = p.plans_packed != p.slices_version;
            let same_scene = p.packed.map(|k| k.0) == Some(scene.revision);
            let contents = match last {
                // Only the hovered segment changed: the same contents.
                Some(last) if !replanned && same_scene => Contents::Reuse(last),
                // New settings over the same plans: nothing to gather again (the overlay's
                // flags are written anew).
                Some(last) if !replanned => Contents::Over {
                    base: (last.id, (0, 0)),
                    dirty: vec![Some(Vec::new()); p.plans.len()],
                },
                Some(last) => match p.moved {
                    Some(m) => Contents::Over {
                        base: (last.id, m),
                        dirty: p.dirty.clone(),
                    },
                    None => Contents::Whole,
                },
                None => Contents::Whole,
            };
            p.upload = Some(pack_gathered(
                scene,
                p,
                &view,
                hover_id,
                self.next_version,
                contents,
            ));
            p.plans_packed = p.slices_version;
            self.next_version += 1;
            self.stats.packs += 1;
            p.packed = Some(key);
        }
        p.wanted.clone()
    }

    /// The upload of `plane`'s panel with its textures filled on the CPU, also when its
    /// slices are gathered on the GPU (then the plans are drawn on the CPU as the GPU
    /// draws them: for screenshots without a GPU and tests).
    pub fn upload_with_textures(
        &self,
        scene: &Scene<'_>,
        plane: Plane,
    ) -> Option<(shade::GpuUniforms, Arc<shade::PanelTextures>)> {
        let p = self.panels.get(&plane)?;
        let upload = p.upload.as_ref()?;
        if upload.gathered.is_none() {
            return Some((upload.uniforms, upload.textures.clone()));
        }
        let view = p.view?;
        let slices: Vec<Option<LayerSlice>> = p
            .plans
            .iter()
            .map(|plan| plan.as_ref().map(|plan| plan.rasterize()))
            .collect();
        let hover = (upload.uniforms.layers.iter())
            .find(|l| l.opts[3] & 4 != 0)
            .map(|l| u64::from(l.hover[0]) | (u64::from(l.hover[1]) << 32));
        let (mut u, t) = pack(scene, &slices, &view, hover);
        u.origin_size = upload.uniforms.origin_size;
        Some((u, Arc::new(t)))
    }

    /// The upload of `plane`'s panel as last composed.
    pub fn upload(&self, plane: Plane) -> Option<&PanelUpload> {
        self.panels.get(&plane).and_then(|p| p.upload.as_ref())
    }

    /// Layer `layer`'s slice on `plane`'s panel, if it was composed there.
    pub fn slice(&self, plane: Plane, layer: usize) -> Option<&LayerSlice> {
        self.panels
            .get(&plane)
            .and_then(|p| p.slices.get(layer))
            .and_then(|s| s.as_ref())
    }

    /// Layer `layer` as `plane`'s panel shows it.
    fn shown(&self, plane: Plane, layer: usize) -> Option<Shown<'_>> {
        let p = self.panels.get(&plane)?;
        if self.gather {
            p.plans.get(layer)?.as_deref().map(Shown::Plan)
        } else {
            p.slices.get(layer)?.as_ref().map(Shown::Slice)
        }
    }

    /// Whether layer `layer` is drawn on `plane`'s panel (composed or gathered).
    pub fn shows(&self, plane: Plane, layer: usize) -> bool {
        self.shown(plane, layer).is_some()
    }

    /// The value layer `layer` shows at pixel (`x`, `y`) of `plane`'s panel.
    pub fn value_at(&self, plane: Plane, layer: usize, x: f64, y: f64) -> Option<PixelValue> {
        self.shown(plane, layer)?.value_at(px(x)?, px(y)?)
    }

    /// The segment a click at pixel (`x`, `y`) of `plane` selects: the non-zero id of the
    /// topmost visible segmentation layer there, or of the `preferred` layer when it has
    /// one. Returns the layer index and the id.
    pub fn segment_at(
        &self,
        scene: &Scene<'_>,
        plane: Plane,
        x: f64,
        y: f64,
        preferred: Option<&str>,
    ) -> Option<(usize, u64)> {
        let mut target = None;
        for (i, l) in scene.layers.iter().enumerate().rev() {
            if !l.state.visible || !matches!(l.state.settings, LayerSettings::Segmentation(_)) {
                continue;
            }
            let Some(PixelValue::Label(id)) = self.value_at(plane, i, x, y) else {
                continue;
            };
            if id == 0 {
                continue;
            }
            let is_pref = preferred == Some(l.state.name.as_str());
            if target.is_none() || is_pref {
                target = Some((i, id));
            }
            if is_pref {
                break;
            }
        }
        target
    }

    /// Per layer id: the chunks the panels show as missing (wanted and not in the cache;
    /// not counting the next slices prefetched).
    pub fn wanted_by_layer(&self) -> HashMap<u64, usize> {
        let mut out: HashMap<u64, usize> = HashMap::new();
        for p in self.panels.values() {
            for ((uid, _, _), keys) in p.layers_key.iter().zip(&p.layer_missing) {
                let held = self.cache.ready_among(keys).len();
                *out.entry(*uid).or_default() += keys.len().saturating_sub(held);
            }
        }
        out
    }

    /// Whether any panel still shows pixels that are loading or stood in for by a coarser
    /// level, or is drawn at a coarser level while its plane moves (the next frame at rest
    /// draws its own level).
    pub fn loading(&self) -> bool {
        self.panels.values().any(|p| {
            p.moving_level
                || p.slices
                    .iter()
                    .flatten()
                    .any(|s| s.loading > 0 || s.coarser > 0)
                || p.plans
                    .iter()
                    .flatten()
                    .any(|s| s.loading > 0 || s.coarser > 0)
        })
    }

    /// Layer `layer`'s loading progress and errors over all panels.
    pub fn progress(&self, layer: usize) -> LayerProgress {
        let mut out = LayerProgress::default();
        for plane in [Plane::Xy, Plane::Xz, Plane::Yz] {
            let Some(s) = self.shown(plane, layer) else {
                continue;
            };
            let (level, coarser, loading, errors) = s.progress();
            out.loading += loading;
            out.coarser += coarser;
            out.level.get_or_insert(level);
            for e in errors {
                if !out.errors.contains(e) {
                    out.errors.push(e.clone());
                }
            }
        }
        out
    }

    /// The histogram of layer `layer`'s slice on the xy panel (or another one when there is
    /// no xy panel), counted again only when that slice changed.
    pub fn histogram(&mut self, layer: usize) -> Option<&Histogram> {
        let plane = if self.panels.contains_key(&Plane::Xy) {
            Plane::Xy
        } else {
            *self.panels.keys().min_by_key(|p| p.label())?
        };
        let p = self.panels.get(&plane)?;
        let uid = p.layers_key.get(layer)?.0;
        let version = p.slices_version;
        let entry = self.histograms.entry((plane, uid)).or_insert((0, None));
        if entry.0 != version {
            let h = match p.plans.get(layer).and_then(|s| s.as_ref()) {
                // A gathered slice is counted on a grid of at most HISTOGRAM_SAMPLES pixels.
                Some(plan) => {
                    let pixels = u64::from(plan.width) * u64::from(plan.height);
                    let step = (pixels as f64 / f64::from(HISTOGRAM_SAMPLES)).sqrt().ceil();
                    Histogram::of(&plan.rasterize_every(step.max(1.0) as u32))
                }
                None => p
                    .slices
                    .get(layer)
                    .and_then(|s| s.as_ref())
                    .and_then(Histogram::of),
            };
            *entry = (version, h);
        }
        entry.1.as_ref()
    }
}

/// A pixel coordinate as an index (`None` left of or above the panel).
fn px(v: f64) -> Option<u32> {
    (v >= 0.0 && v < f64::from(u32::MAX)).then_some(v as u32)
}

/// The id of the topmost label layer at (`x`, `y`) (hidden ones included: the shader
/// highlights it wherever it is drawn).
fn hovered_label(slices: &[Option<LayerSlice>], x: f64, y: f64) -> Option<u64> {
    let (x, y) = (px(x)?, px(y)?);
    slices
        .iter()
        .rev()
        .flatten()
        .find_map(|s| match s.value_at(x, y) {
            Some(PixelValue::Label(id)) => Some(id),
            _ => None,
        })
}

/// The first visible overlay of `scene` whose layers are all drawn (`index_of`: a drawn
/// layer's name to its index among the drawn layers), and the cross hairs of `view`.
#[allow(clippy::type_complexity)]
fn overlay_and_cross(
    scene: &Scene<'_>,
    index_of: &HashMap<&str, usize>,
    view: &SliceView,
) -> (Option<DrawOverlay>, Option<([f32; 2], [u8; 3], [u8; 3])>) {
    let overlay = scene.overlays.iter().filter(|o| o.visible).find_map(|o| {
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
    let [h, v, _] = view.plane.axes();
    let cross = scene.cross_hairs.then(|| {
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
    (overlay, cross)
}

/// Packs a panel's composed slices with the scene's settings, the first visible overlay
/// whose layers are all composed, the hovered id and the cross hairs.
fn pack(
    scene: &Scene<'_>,
    slices: &[Option<LayerSlice>],
    view: &SliceView,
    hover_id: Option<u64>,
) -> (shade::GpuUniforms, shade::PanelTextures) {
    let mut draw = Vec::new();
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (slice, l) in slices.iter().zip(&scene.layers) {
        if let Some(s) = slice {
            index_of.insert(l.state.name.as_str(), draw.len());
            draw.push(DrawLayer {
                slice: s,
                settings: &l.state.settings,
                visible: l.state.visible,
                hover: hover_id,
                pending: l.data.is_some_and(|d| d.computed),
                linear: l.data.and_then(|d| slice::linear_mapping(d, s.level, view)),
            });
        }
    }
    let (overlay, cross) = overlay_and_cross(scene, &index_of, view);
    shade::pack(&draw, overlay, [0.0, 0.0], cross)
}

/// What to draw of a plan over the last plan's pixels moved: (cell, pixels).
type DirtyRects = Vec<(usize, slice::PixelRect)>;

/// What a gathered upload's contents are, against the last upload's.
enum Contents {
    /// The last upload's.
    Reuse(Arc<GatheredContent>),
    /// New, drawn over contents `base` (id, pan since) by each layer's dirty rectangles.
    Over {
        base: (u64, (i64, i64)),
        dirty: Vec<Option<DirtyRects>>,
    },
    /// New, drawn whole.
    Whole,
}

/// The upload of a panel whose slices are gathered on the GPU from its plans: the
/// uniforms [`pack`] would make, the plans with the texture layers they fill (and what to
/// draw of them after a pan), and where the overlay's split/merge flags are counted from
/// (on the GPU, from the two layers' gathered ids, when shown). New contents take the id `version`.
fn pack_gathered(
    scene: &Scene<'_>,
    p: &PanelState,
    view: &SliceView,
    hover_id: Option<u64>,
    version: u64,
    contents: Contents,
) -> PanelUpload {
    let (base, dirty, reuse) = match contents {
        Contents::Reuse(c) => (None, Vec::new(), Some(c)),
        Contents::Over { base, dirty } => (Some(base), dirty, None),
        Contents::Whole => (None, Vec::new(), None),
    };
    let mut described = Vec::new();
    let mut drawn: Vec<(&Arc<GatherPlan>, Option<&DirtyRects>)> = Vec::new();
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (i, (plan, l)) in p.plans.iter().zip(&scene.layers).enumerate() {
        if let Some(plan) = plan {
            index_of.insert(l.state.name.as_str(), described.len());
            described.push(shade::UniformLayer {
                shape: if plan.labels {
                    shade::ValueShape::Labels
                } else {
                    shade::ValueShape::Float {
                        channels: plan.channels,
                    }
                },
                settings: &l.state.settings,
                visible: l.state.visible,
                hover: hover_id,
                pending: l.data.is_some_and(|d| d.computed),
                linear: l
                    .data
                    .and_then(|d| slice::linear_mapping(d, plan.level, view)),
            });
            drawn.push((plan, dirty.get(i).and_then(|d| d.as_ref())));
        }
    }
    let described = &described[..described.len().min(shade::MAX_LAYERS)];
    let (overlay, cross) = overlay_and_cross(scene, &index_of, view);
    let size = (view.width_px, view.height_px);
    let (uniforms, counts) = shade::pack_uniforms(described, overlay, size, [0.0, 0.0], cross);
    let content = reuse.unwrap_or_else(|| {
        let flags = overlay
            .filter(|o| o.instances && uniforms.counts[1] == 1)
            .map(|o| SplitMergeSource::of(&uniforms, o.truth, o.prediction));
        let layers = drawn
            .iter()
            .take(described.len())
            .enumerate()
            .map(|(i, (plan, dirty))| GatherLayer {
                status_layer: i,
                texture: uniforms.layers[i].kind_tex[1],
                plan: Arc::clone(plan),
                dirty: dirty.cloned(),
            })
            .collect();
        Arc::new(GatheredContent {
            id: version,
            base,
            dims: [size.0, size.1, counts.floats, counts.labels, counts.status],
            layers,
            flags,
        })
    });
    PanelUpload {
        uniforms,
        textures: Arc::new(shade::PanelTextures {
            width: size.0,
            height: size.1,
            float_layers: counts.floats,
            label_layers: counts.labels,
            status_layers: counts.status,
            ..shade::PanelTextures::default()
        }),
        gathered: Some(content),
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::colors::segment_color;
    use crate::render::layer::{open_layer, WorldNm};
    use std::path::Path;
    use std::time::Duration;

    /// The raw and labels layers of [`crate::render::fixtures::small_volume`].
    fn volume(dir: &Path) -> (Arc<LayerData>, Arc<LayerData>) {
        let c = crate::render::fixtures::small_volume(dir);
        (
            open_layer(&c.join("raw")).unwrap(),
            open_layer(&c.join("labels")).unwrap(),
        )
    }

    fn state(name: &str, kind: LayerKind, visible: bool) -> LayerState {
        LayerState {
            name: name.into(),
            source: name.into(),
            visible,
            settings: LayerSettings::for_kind(kind),
            model: None,
        }
    }

    /// The xy panel through the volume's centre at 4 nm per pixel: pixel (x, y) shows
    /// voxel (x, y) of z = 8.
    fn view(dx_px: f64) -> SliceView {
        SliceView {
            plane: Plane::Xy,
            center: WorldNm([34.0, 32.0, 32.0 + 4.0 * dx_px]),
            nm_per_px: 4.0,
            width_px: 16,
            height_px: 16,
            orientation: crate::render::orientation::Orientation::IDENTITY,
        }
    }

    fn scene<'a>(
        data: &'a [Arc<LayerData>],
        states: &'a [LayerState],
        overlays: &'a [ErrorOverlay],
        revision: u64,
    ) -> Scene<'a> {
        Scene {
            layers: data
                .iter()
                .zip(states)
                .enumerate()
                .map(|(i, (d, st))| SceneLayer {
                    uid: i as u64 + 1,
                    data: Some(d),
                    state: st,
                })
                .collect(),
            overlays,
            cross_hairs: false,
            revision,
        }
    }

    /// Composes until every chunk of the view is loaded.
    fn settle(c: &mut PanelComposer, scene: &Scene<'_>, view: SliceView) {
        for _ in 0..50 {
            c.begin_frame();
            let wanted = c.compose(scene, view, None);
            c.request(wanted);
            assert!(c.cache().wait_idle(Duration::from_secs(10)));
            c.compose(scene, view, None);
            if !c.loading() {
                return;
            }
        }
        panic!("the panel never finished loading");
    }

    fn pixel(c: &PanelComposer, x: u32, y: u32) -> [u8; 4] {
        let u = c.upload(Plane::Xy).unwrap();
        shade::shade(&u.uniforms, &u.textures, x, y)
    }

    fn composer() -> PanelComposer {
        PanelComposer::new(Arc::new(ChunkCache::new(16 << 20, 2)))
    }

    #[test]
    fn a_known_volume_gives_known_pixels_values_and_histogram() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, labels) = volume(dir.path());
        let data = [raw, labels];
        let states = [
            state("raw", LayerKind::Image, true),
            state("labels", LayerKind::Segmentation, false),
        ];
        let s = scene(&data, &states, &[], 1);
        let mut c = composer();
        settle(&mut c, &s, view(0.0));
        for x in [0u32, 3, 15] {
            let v = (10 * x) as u8;
            assert_eq!(pixel(&c, x, 5), [v, v, v, 255], "x {x}");
        }
        assert_eq!(
            c.value_at(Plane::Xy, 0, 7.5, 2.0),
            Some(PixelValue::Float(vec![70.0]))
        );
        // The hidden labels are not composed: nothing to show, nothing read for them.
        assert!(c.slice(Plane::Xy, 1).is_none());
        assert_eq!(c.value_at(Plane::Xy, 1, 7.5, 2.0), None);
        let progress = c.progress(0);
        assert_eq!(
            (progress.loading, progress.coarser, progress.level),
            (0, 0, Some(0))
        );
        assert!(progress.errors.is_empty());
        let h = c.histogram(0).unwrap().clone();
        assert_eq!((h.min, h.max), (0.0, 150.0));
        assert_eq!(h.counts.iter().sum::<u32>(), 256);
        // A left of the panel is no pixel.
        assert_eq!(c.value_at(Plane::Xy, 0, -1.0, 2.0), None);
    }

    /// An array whose reads wait until its gate opens.
    struct Gated {
        inner: Box<dyn crate::array::ArraySource>,
        open: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    }

    impl crate::array::ArraySource for Gated {
        fn info(&self) -> &crate::array::ArrayInfo {
            self.inner.info()
        }

        fn read(
            &self,
            roi: &crate::geometry::Roi,
        ) -> Result<crate::array::ArrayData, crate::array::ArrayError> {
            let (lock, opened) = &*self.open;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = opened.wait(open).unwrap();
            }
            drop(open);
            self.inner.read(roi)
        }
    }

    #[test]
    fn chunks_arriving_for_one_layer_compose_only_that_layer_again() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, labels) = volume(dir.path());
        // The labels as a computed layer whose chunks wait for a gate.
        let mut labels = Arc::try_unwrap(labels).unwrap();
        let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let placeholder = crate::array::transform::InMemory::new(
            "placeholder",
            "test",
            crate::array::ArrayData::U8(ndarray::ArrayD::zeros(ndarray::IxDyn(&[1, 1, 1]))),
            crate::geometry::Coordinate::from([1, 1, 1]),
            crate::geometry::Coordinate::from([0, 0, 0]),
            false,
        )
        .unwrap();
        let inner = std::mem::replace(&mut labels.levels[0].source, Box::new(placeholder));
        labels.levels[0].source = Box::new(Gated {
            inner,
            open: Arc::clone(&gate),
        });
        labels.computed = true;
        let data = [raw, Arc::new(labels)];
        let states = [
            state("raw", LayerKind::Image, true),
            state("labels", LayerKind::Segmentation, true),
        ];
        let s = scene(&data, &states, &[], 1);
        let mut c = composer();
        let t0 = std::time::Instant::now();
        loop {
            c.begin_frame();
            let wanted = c.compose(&s, view(0.0), None);
            c.request(wanted);
            if c.progress(0).loading == 0 {
                break;
            }
            assert!(t0.elapsed().as_secs() < 10, "the raw layer never loaded");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(c.progress(1).loading > 0);
        let before = c.stats();
        let raw_slice = c.slice(Plane::Xy, 0).unwrap().clone();
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(c.cache().wait_idle(Duration::from_secs(10)));
        c.begin_frame();
        c.compose(&s, view(0.0), None);
        // The labels arrived: only they are composed again (16 × 16 pixels).
        assert_eq!(c.progress(1).loading, 0);
        assert_eq!(c.stats().composed_px - before.composed_px, 16 * 16);
        assert_eq!(c.slice(Plane::Xy, 0), Some(&raw_slice));
        assert_eq!(
            c.value_at(Plane::Xy, 1, 3.0, 12.0),
            Some(PixelValue::Label(2))
        );
        // Later arrivals the panel does not show (the next slices) compose nothing.
        let after = c.stats();
        std::thread::sleep(Duration::from_millis(20));
        c.begin_frame();
        let wanted = c.compose(&s, view(0.0), None);
        c.request(wanted);
        assert!(c.cache().wait_idle(Duration::from_secs(10)));
        c.compose(&s, view(0.0), None);
        assert_eq!(c.stats().composed_px, after.composed_px);
    }

    /// Both layers of the small volume, shown.
    fn raw_and_labels(dir: &Path) -> ([Arc<LayerData>; 2], [LayerState; 2]) {
        let (raw, labels) = volume(dir);
        (
            [raw, labels],
            [
                state("raw", LayerKind::Image, true),
                state("labels", LayerKind::Segmentation, true),
            ],
        )
    }

    /// Composes `v` frame after frame while the cache reads one chunk per frame, moving the
    /// view `pan_nm` right after each, until nothing loads (after `min_frames` at least);
    /// returns the composer, the frames and the last view.
    fn one_chunk_per_frame(
        s: &Scene<'_>,
        mut v: SliceView,
        pan_nm: f64,
        min_frames: u64,
    ) -> (PanelComposer, u64, SliceView) {
        let mut c = composer();
        let mut frames = 0;
        loop {
            c.begin_frame();
            let wanted = c.compose(s, v, None);
            if !c.loading() && frames >= min_frames {
                return (c, frames, v);
            }
            let first = wanted.into_requests().into_iter().take(1).collect();
            c.cache().request(first);
            assert!(c.cache().wait_idle(Duration::from_secs(10)));
            v.center.0[2] += pan_nm;
            frames += 1;
            assert!(frames < 100, "the panel never finished loading");
        }
    }

    /// Asserts that `c` drew `v` as a composer composing it afresh does.
    fn assert_as_composed_afresh(c: &PanelComposer, s: &Scene<'_>, v: SliceView) {
        let mut fresh = composer();
        settle(&mut fresh, s, v);
        for layer in 0..s.layers.len() {
            assert_eq!(
                c.slice(v.plane, layer),
                fresh.slice(v.plane, layer),
                "layer {layer}"
            );
        }
        assert_eq!(pixel(c, 11, 9), pixel(&fresh, 11, 9));
    }

    #[test]
    fn panels_of_one_frame_ask_for_every_panels_visible_chunks_before_any_next_slices() {
        // As the viewer does for a frame: the three panels' wants merged, then ordered.
        let dir = tempfile::tempdir().unwrap();
        let (data, states) = raw_and_labels(dir.path());
        let s = scene(&data, &states, &[], 1);
        let mut c = composer();
        c.begin_frame();
        let mut merged = Wanted::default();
        // Each wanted chunk's priority (0 coarse, 1 visible, 2 next slices) and distance.
        let mut kind = HashMap::new();
        for plane in [Plane::Xy, Plane::Xz, Plane::Yz] {
            let w = c.compose(
                &s,
                SliceView {
                    plane,
                    center: WorldNm([34.0, 30.6, 29.8]),
                    nm_per_px: 2.9,
                    width_px: 23,
                    height_px: 19,
                    orientation: crate::render::orientation::Orientation::IDENTITY,
                },
                None,
            );
            assert!(!w.visible.is_empty() && !w.prefetch.is_empty(), "{plane:?}");
            for r in &w.coarse {
                kind.insert(r.key, (0, 0.0));
            }
            for (d, r) in &w.visible {
                kind.insert(r.key, (1, *d));
            }
            for r in &w.prefetch {
                kind.insert(r.key, (2, 0.0));
            }
            merged.extend(w);
        }
        let requests = merged.into_requests();
        let order: Vec<(u8, f64)> = requests.iter().map(|r| kind[&r.key]).collect();
        // Coarse stand-ins, then the visible chunks of every panel nearest the centre
        // first, then the next slices of any panel.
        assert!(
            order
                .windows(2)
                .all(|p| p[0].0 < p[1].0 || (p[0].0 == p[1].0 && p[0].1 <= p[1].1)),
            "{order:?}"
        );
        let first_next = order.iter().position(|k| k.0 == 2).unwrap();
        let visible_axes: std::collections::HashSet<u8> = requests[..first_next]
            .iter()
            .filter(|r| kind[&r.key].0 == 1)
            .filter_map(|r| r.key.slab.map(|(axis, _)| axis))
            .collect();
        assert_eq!(visible_axes, [0, 1, 2].into_iter().collect());
        assert_eq!(requests.len(), kind.len());
    }

    #[test]
    fn arriving_chunks_compose_only_their_pixels_and_the_result_equals_a_whole_composition() {
        let dir = tempfile::tempdir().unwrap();
        let (data, states) = raw_and_labels(dir.path());
        let s = scene(&data, &states, &[], 1);
        // An off-grid view: the 8³ chunks cover uneven rectangles of its pixels.
        let v = SliceView {
            plane: Plane::Xy,
            center: WorldNm([34.0, 30.6, 29.8]),
            nm_per_px: 2.9,
            width_px: 23,
            height_px: 19,
            orientation: crate::render::orientation::Orientation::IDENTITY,
        };
        let (c, frames, v) = one_chunk_per_frame(&s, v, 0.0, 0);
        // One whole composition per layer, then only the pixels of each arriving chunk:
        // every pixel once more at most.
        let px = u64::from(v.width_px * v.height_px);
        assert!(frames >= 4, "{frames} frames");
        assert!(
            c.stats().composed_px <= 4 * px,
            "{} pixels composed",
            c.stats().composed_px
        );
        assert_as_composed_afresh(&c, &s, v);
    }

    #[test]
    fn panning_while_chunks_arrive_draws_what_a_whole_composition_draws() {
        let dir = tempfile::tempdir().unwrap();
        let (data, states) = raw_and_labels(dir.path());
        let s = scene(&data, &states, &[], 1);
        let v = SliceView {
            plane: Plane::Xy,
            center: WorldNm([34.0, 30.6, 20.2]),
            nm_per_px: 2.0,
            width_px: 20,
            height_px: 18,
            orientation: crate::render::orientation::Orientation::IDENTITY,
        };
        // A pixel right every frame while the chunks arrive.
        let (c, frames, v) = one_chunk_per_frame(&s, v, 2.0, 8);
        assert_as_composed_afresh(&c, &s, v);
        // Far less than a whole composition per frame.
        let px = u64::from(v.width_px * v.height_px);
        assert!(
            c.stats().composed_px < frames * px,
            "{} pixels composed in {frames} frames",
            c.stats().composed_px
        );
    }

    #[test]
    fn a_plane_moving_along_its_normal_finds_each_slab_read_ahead_and_reads_a_chunk_per_block() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, _) = volume(dir.path());
        let data = [raw];
        let states = [state("raw", LayerKind::Image, true)];
        let s = scene(&data, &states, &[], 1);
        for gather in [false, true] {
            let mut c = composer();
            c.set_gather(gather);
            // The xy panel (2 × 2 chunks of 8³) moving one voxel (4 nm) along z per frame
            // through the 16 voxels of the volume.
            let at = |z: u64| SliceView {
                center: WorldNm([z as f64 * 4.0 + 2.0, 32.0, 32.0]),
                ..view(0.0)
            };
            settle(&mut c, &s, at(0));
            let mut shown_missing = Vec::new();
            for z in 0..16 {
                c.begin_frame();
                let wanted = c.compose(&s, at(z), None);
                let shown = c.progress(0);
                if shown.loading > 0 || shown.coarser > 0 {
                    shown_missing.push(z);
                }
                c.request(wanted);
                assert!(c.cache().wait_idle(Duration::from_secs(10)));
            }
            // Every slab shown was read before its frame came. Four frames ahead at one
            // voxel per frame: each cell's chunk was read for slab 0 and the next slice 1
            // (at rest), then 2–7 (the first step), 8–11 (at z = 4) and 9–15 (at z = 8):
            // 5 reads in 16 frames.
            assert_eq!(shown_missing, Vec::<u64>::new(), "gather {gather}");
            assert_eq!(c.cache().stats().reads, 5 * 4, "gather {gather}");
            assert_eq!(c.cache().stats().chunks, 16 * 4, "gather {gather}");
            c.begin_frame();
            c.compose(&s, at(15), None);
            assert_eq!(
                c.value_at(Plane::Xy, 0, 13.0, 2.0),
                Some(PixelValue::Float(vec![130.0]))
            );
        }
    }

    #[test]
    fn a_plane_moving_fast_along_its_normal_is_drawn_from_a_coarser_level_until_it_rests() {
        let dir = tempfile::tempdir().unwrap();
        // Levels of 4, 8 and 16 nm voxels in chunks of 8³.
        let container = crate::render::fixtures::pyramid_volume(dir.path());
        let data = [open_layer(&container.join("raw")).unwrap()];
        let states = [state("raw", LayerKind::Image, true)];
        let s = scene(&data, &states, &[], 1);
        let at = |z_nm: f64| SliceView {
            plane: Plane::Xy,
            center: WorldNm([z_nm, 16.0, 16.0]),
            nm_per_px: 4.0,
            width_px: 8,
            height_px: 8,
            orientation: crate::render::orientation::Orientation::IDENTITY,
        };
        for gather in [false, true] {
            let mut c = composer();
            c.set_gather(gather);
            let mut level_at = |z_nm: f64| {
                c.begin_frame();
                let wanted = c.compose(&s, at(z_nm), None);
                c.request(wanted);
                assert!(c.cache().wait_idle(Duration::from_secs(10)));
                (c.progress(0).level, c.loading())
            };
            assert_eq!(level_at(10.0).0, Some(0), "gather {gather}");
            // One voxel per frame: its own level.
            assert_eq!(level_at(14.0).0, Some(0), "gather {gather}");
            // Two voxels per frame: level 1, one of its voxels per frame; loading until the
            // plane rests.
            assert_eq!(level_at(22.0), (Some(1), true), "gather {gather}");
            // Four: level 2.
            assert_eq!(level_at(38.0), (Some(2), true), "gather {gather}");
            // At rest: its own level again.
            assert_eq!(level_at(38.0).0, Some(0), "gather {gather}");
            // A jump of more than a chunk (32 nm) is not motion: its own level.
            assert_eq!(level_at(74.0).0, Some(0), "gather {gather}");
            // Back and forth along the normal, then at rest: drawn as when it never moved.
            level_at(70.0);
            level_at(74.0);
            settle(&mut c, &s, at(74.0));
            let moved = c.value_at(Plane::Xy, 0, 3.0, 2.0);
            let mut fresh = composer();
            fresh.set_gather(gather);
            settle(&mut fresh, &s, at(74.0));
            assert_eq!(
                moved,
                fresh.value_at(Plane::Xy, 0, 3.0, 2.0),
                "gather {gather}"
            );
            assert!(moved.is_some_and(|v| v != PixelValue::Loading));
        }
    }

    #[test]
    fn panning_by_whole_pixels_composes_only_the_exposed_strip() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, labels) = volume(dir.path());
        let data = [raw, labels];
        let states = [
            state("raw", LayerKind::Image, true),
            state("labels", LayerKind::Segmentation, true),
        ];
        let s = scene(&data, &states, &[], 1);
        let mut c = composer();
        // Load the whole volume first, so the pan finds every chunk ready.
        let mut wide = view(0.0);
        (wide.width_px, wide.height_px, wide.nm_per_px) = (32, 32, 4.0);
        settle(&mut c, &s, wide);
        settle(&mut c, &s, view(0.0));
        let before = c.stats();
        c.compose(&s, view(3.0), None);
        let after = c.stats();
        // Two layers × a 3 × 16 strip, one repack.
        assert_eq!(after.composed_px - before.composed_px, 2 * 3 * 16);
        assert_eq!(after.packs - before.packs, 1);
        let moved = c.upload(Plane::Xy).unwrap().textures.clone();
        let mut fresh = composer();
        settle(&mut fresh, &s, view(3.0));
        let full = fresh.upload(Plane::Xy).unwrap().textures.clone();
        assert_eq!(moved.status, full.status);
        assert_eq!(moved.floats, full.floats);
        assert_eq!(moved.labels, full.labels);
        // Pixel 12 now shows voxel 15 (value 150); pixels 13–15 lie outside the volume.
        let v = c.value_at(Plane::Xy, 0, 12.5, 1.0);
        assert_eq!(v, Some(PixelValue::Float(vec![150.0])));
        assert_eq!(
            c.value_at(Plane::Xy, 0, 14.5, 1.0),
            Some(PixelValue::Outside)
        );
    }

    #[test]
    fn the_revision_and_the_hovered_segment_decide_when_a_panel_is_packed_again() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, labels) = volume(dir.path());
        let data = [raw, labels];
        let mut states = vec![
            state("raw", LayerKind::Image, true),
            state("labels", LayerKind::Segmentation, true),
        ];
        let mut c = composer();
        {
            let s = scene(&data, &states, &[], 1);
            settle(&mut c, &s, view(0.0));
        }
        let version = c.upload(Plane::Xy).unwrap().version;
        let packs = c.stats().packs;
        let grey = |x: u32| f64::from(10 * x);
        let over = |below: f64, above: [u8; 3], a: f64| -> [u8; 3] {
            std::array::from_fn(|k| (below * (1.0 - a) + f64::from(above[k]) * a).round() as u8)
        };
        let p = pixel(&c, 4, 2);
        assert_eq!(p[..3], over(grey(4), segment_color(0, 1), 0.5));

        // Nothing changed: nothing is packed, the upload keeps its version.
        let s = scene(&data, &states, &[], 1);
        c.compose(&s, view(0.0), None);
        assert_eq!(
            (c.stats().packs, c.upload(Plane::Xy).unwrap().version),
            (packs, version)
        );
        // Hovering segment 1 highlights it (one pack); moving within it packs nothing.
        c.compose(&s, view(0.0), Some((4.5, 2.5)));
        c.compose(&s, view(0.0), Some((9.5, 6.5)));
        assert_eq!(c.stats().packs, packs + 1);
        assert!(c.upload(Plane::Xy).unwrap().version > version);
        // Onto segment 2: packed again; off the panel: again.
        c.compose(&s, view(0.0), Some((9.5, 12.5)));
        c.compose(&s, view(0.0), None);
        assert_eq!(c.stats().packs, packs + 3);

        // Hiding the labels under a new revision redraws plain grey.
        states[1].visible = false;
        let s = scene(&data, &states, &[], 2);
        c.compose(&s, view(0.0), None);
        let g = (10 * 4) as u8;
        assert_eq!(pixel(&c, 4, 2), [g, g, g, 255]);
    }

    #[test]
    fn clicks_pick_the_topmost_visible_segment_or_the_preferred_layer() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, labels) = volume(dir.path());
        let data = [raw, labels.clone(), labels];
        let states = [
            state("raw", LayerKind::Image, true),
            state("a", LayerKind::Segmentation, true),
            state("b", LayerKind::Segmentation, true),
        ];
        let s = scene(&data, &states, &[], 1);
        let mut c = composer();
        settle(&mut c, &s, view(0.0));
        assert_eq!(c.segment_at(&s, Plane::Xy, 3.5, 2.5, None), Some((2, 1)));
        assert_eq!(
            c.segment_at(&s, Plane::Xy, 3.5, 12.5, Some("a")),
            Some((1, 2))
        );
        // The image layer is never picked, whatever is preferred.
        assert_eq!(
            c.segment_at(&s, Plane::Xy, 3.5, 12.5, Some("raw")),
            Some((2, 2))
        );
        let mut hidden = states.clone();
        hidden[2].visible = false;
        let s = scene(&data, &hidden, &[], 2);
        assert_eq!(c.segment_at(&s, Plane::Xy, 3.5, 2.5, None), Some((1, 1)));
    }

    #[test]
    fn an_overlay_composes_its_hidden_layers_and_resolves_them_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, labels) = volume(dir.path());
        let data = [raw, labels.clone(), labels];
        let states = [
            state("raw", LayerKind::Image, true),
            state("truth", LayerKind::Segmentation, false),
            state("pred", LayerKind::Segmentation, false),
        ];
        let overlays = [ErrorOverlay {
            truth: "truth".into(),
            prediction: "pred".into(),
            visible: true,
            instances: false,
            threshold: 0.5,
            alpha: 0.5,
            mask: None,
        }];
        let s = scene(&data, &states, &overlays, 1);
        let mut c = composer();
        settle(&mut c, &s, view(0.0));
        assert!(c.slice(Plane::Xy, 1).is_some() && c.slice(Plane::Xy, 2).is_some());
        // Identical truth and prediction, both non-zero everywhere: every pixel is a true
        // positive, blended at α 0.5 over the raw grey.
        let tp = crate::render::state::overlay_colors::TRUE_POSITIVE;
        let got = pixel(&c, 4, 2);
        for k in 0..3 {
            let expected = 40.0 * 0.5 + f64::from(tp[k]) * 0.5;
            assert!(
                (f64::from(got[k]) - expected).abs() <= 1.0,
                "{got:?} vs {tp:?}"
            );
        }
        // Without a visible overlay the hidden layers are dropped from the panel.
        let mut off = overlays.clone();
        off[0].visible = false;
        let s = scene(&data, &states, &off, 2);
        settle(&mut c, &s, view(0.0));
        assert!(c.slice(Plane::Xy, 1).is_none());
    }

    #[test]
    fn pan_shifts_are_whole_pixels_within_half_a_panel() {
        let v = view(0.0);
        assert_eq!(pixel_shift(&v, &view(3.0)), Some((3, 0)));
        assert_eq!(pixel_shift(&v, &view(0.5)), None);
        assert_eq!(pixel_shift(&v, &view(8.0)), None);
        assert_eq!(pixel_shift(&v, &v), None);
        let strips = exposed_strips(&v, -3, 2);
        let rects: Vec<_> = strips
            .iter()
            .map(|(x, y, s)| (*x, *y, s.width_px, s.height_px))
            .collect();
        assert_eq!(rects, vec![(0, 0, 3, 16), (3, 14, 13, 2)]);
    }
}
