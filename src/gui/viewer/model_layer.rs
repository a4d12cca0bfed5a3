//! Layers computed by a network: "Add prediction…" puts a run's checkpoint over one of the
//! viewer's raw layers, and the layer's blocks are computed as the panels need them (on the
//! chunk cache's compute thread, never the interface's).

use super::*;
use crate::blockwise::live::LivePrediction;
use crate::ops::live::LiveSource;

/// The "Add prediction…" form: a run, a checkpoint and the raw layer to predict.
#[derive(Default)]
pub struct ModelForm {
    run: Option<String>,
    /// The run whose checkpoints are listed, and its checkpoint iterations (or why not).
    checkpoints: Option<(String, Result<Vec<u64>, String>)>,
    /// The run's best checkpoint by its validation scores, and what it rests on.
    best: Option<(u64, String)>,
    /// The chosen iteration; `None` is the latest.
    iteration: Option<u64>,
    raw: usize,
}

impl ModelForm {
    /// Draws the form for the project at `project` with runs `runs` over the raw layers
    /// `raws` (name, source); returns what to add when "Add" is clicked.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        project: &Path,
        runs: &[String],
        raws: &[(String, PathBuf)],
    ) -> Option<LiveSource> {
        if runs.is_empty() {
            ui.weak("no runs in this project");
            return None;
        }
        if raws.is_empty() {
            ui.weak("add a raw layer to predict first");
            return None;
        }
        if self.run.as_ref().is_none_or(|r| !runs.contains(r)) {
            self.run = runs.first().cloned();
        }
        let mut run = self.run.clone().unwrap_or_default();
        let l = ui.label("run");
        egui::ComboBox::from_id_salt("model-run")
            .selected_text(&run)
            .show_ui(ui, |ui| {
                for r in runs {
                    ui.selectable_value(&mut run, r.clone(), r);
                }
            })
            .response
            .labelled_by(l.id);
        if self.checkpoints.as_ref().is_none_or(|(r, _)| *r != run) {
            let listed = crate::ops::live::checkpoints(project, &run).map_err(|e| e.to_string());
            self.checkpoints = Some((run.clone(), listed));
            self.best = crate::ops::live::best_checkpoint(project, &run);
            self.iteration = None;
        }
        self.run = Some(run.clone());
        let iterations = match self.checkpoints.as_ref().map(|(_, c)| c) {
            Some(Ok(i)) if !i.is_empty() => i.clone(),
            Some(Ok(_)) => {
                ui.weak(format!("{run} has no checkpoint yet: train it first"));
                return None;
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
                return None;
            }
            None => return None,
        };
        let label = |i: Option<u64>| match i {
            Some(i) => format!("iteration {i}"),
            None => format!("latest ({})", iterations.last().copied().unwrap_or(0)),
        };
        let l = ui.label("checkpoint");
        egui::ComboBox::from_id_salt("model-checkpoint")
            .selected_text(label(self.iteration))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut self.iteration, None, label(None));
                if let Some((best, why)) = &self.best {
                    ui.selectable_value(
                        &mut self.iteration,
                        Some(*best),
                        format!("iteration {best}, {why}"),
                    );
                }
                for i in iterations.iter().rev() {
                    ui.selectable_value(&mut self.iteration, Some(*i), label(Some(*i)));
                }
            })
            .response
            .labelled_by(l.id);
        self.raw = self.raw.min(raws.len() - 1);
        let l = ui.label("over");
        egui::ComboBox::from_id_salt("model-raw")
            .selected_text(&raws[self.raw].0)
            .show_ui(ui, |ui| {
                for (i, (name, _)) in raws.iter().enumerate() {
                    ui.selectable_value(&mut self.raw, i, name);
                }
            })
            .response
            .labelled_by(l.id);
        ui.button("Add prediction").clicked().then(|| LiveSource {
            project: project.to_path_buf(),
            run,
            iteration: self.iteration,
            raw: raws[self.raw].1.clone(),
            segmentation: None,
        })
    }
}

impl Viewer {
    /// Adds a layer computed by the network `source` names. The network opens on a thread
    /// of its own (the layer says so meanwhile); a run, checkpoint or volume that does not
    /// fit still becomes a layer, showing why in its status line.
    pub fn add_model_layer(&mut self, source: LiveSource) {
        let name = self.unique_name(&pending_label(&source));
        // A segmentation's kind is known once it opens (labels or binary masks).
        let kind = if source.segmentation.is_some() {
            LayerKind::Segmentation
        } else {
            LayerKind::Prediction
        };
        self.push_model(LayerState {
            name,
            source: source.raw.clone(),
            visible: true,
            settings: LayerSettings::for_kind(kind),
            model: Some(source),
        });
    }

    /// Adds the segmentation of model layer `i`: its blocks post-processed with the
    /// parameters the run's validation chose for its checkpoint (else the task's first),
    /// as a layer of its own.
    pub fn add_segmentation_layer(&mut self, i: usize) {
        let Some(mut source) = self.state.layers.get(i).and_then(|l| l.model.clone()) else {
            return;
        };
        let Some(iteration) = self.live_prediction(i).map(|l| l.iteration()) else {
            return;
        };
        match crate::ops::live::default_segmentation(&source.project, &source.run, iteration) {
            Ok(parameters) => {
                source.iteration = Some(iteration);
                source.segmentation = Some(parameters);
                self.add_model_layer(source);
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// Pushes the model layer `state` describes and starts opening its network.
    pub(super) fn push_model(&mut self, state: LayerState) {
        let uid = self.next_uid;
        if let Some(source) = state.model.clone() {
            self.start_opening(uid, source);
        }
        self.push(state, Err(OPENING.to_string()));
    }

    /// Opens the network `source` names for the layer id `uid` on another thread.
    fn start_opening(&mut self, uid: u64, source: LiveSource) {
        // A prediction already open for the same run, checkpoint and volume is shared (a
        // segmentation of a model layer computes no block twice).
        let shared = self
            .state
            .layers
            .iter()
            .zip(&self.layers)
            .find_map(|(state, layer)| {
                let m = state.model.as_ref()?;
                let live = self.live.get(&layer.uid)?;
                let same = m.project == source.project
                    && m.run == source.run
                    && m.raw == source.raw
                    && source.iteration == Some(live.iteration());
                same.then(|| live.clone())
            });
        let (send, receive) = std::sync::mpsc::channel();
        let waker = self.composer.cache().waker();
        // Opened on the thread that computes its blocks (see `run_on_compute_thread`).
        self.composer
            .cache()
            .run_on_compute_thread(Box::new(move || {
                let _ = send.send(open_model(&source, shared));
                if let Some(w) = waker {
                    w();
                }
            }));
        self.opening.push((uid, receive));
    }

    /// Puts the networks that finished opening into their layers (named after the
    /// checkpoint they compute with); returns whether any did.
    pub(super) fn poll_models(&mut self) -> bool {
        let mut changed = false;
        let mut still = Vec::new();
        for (uid, receive) in std::mem::take(&mut self.opening) {
            match receive.try_recv() {
                Err(std::sync::mpsc::TryRecvError::Empty) => still.push((uid, receive)),
                result => {
                    let opened = result.unwrap_or_else(|_| {
                        Err("the thread opening the network stopped".to_string())
                    });
                    self.opened(uid, opened);
                    changed = true;
                }
            }
        }
        self.opening.extend(still);
        if changed {
            self.invalidate();
        }
        changed
    }

    /// Gives the layer with id `uid` (if it is still there) what opening its network gave.
    fn opened(&mut self, uid: u64, opened: Result<(Arc<LayerData>, Arc<LivePrediction>), String>) {
        let Some(i) = self.layers.iter().position(|l| l.uid == uid) else {
            return;
        };
        let label = match &opened {
            Ok((_, live)) => self.state.layers[i]
                .model
                .as_ref()
                .map(|m| m.label(live.iteration())),
            Err(_) => None,
        };
        // A segmentation is drawn as what it turned out to be.
        if let (Ok((data, _)), Some(state)) = (&opened, self.state.layers.get_mut(i)) {
            let segmentation = state
                .model
                .as_ref()
                .is_some_and(|m| m.segmentation.is_some());
            if segmentation && state.settings.kind() != data.default_kind {
                state.settings = LayerSettings::for_kind(data.default_kind);
            }
        }
        let layer = &mut self.layers[i];
        match opened {
            Ok((data, live)) => {
                layer.versions.retain(|v| v.uid != uid);
                layer.versions.push(ModelVersion {
                    iteration: live.iteration(),
                    uid,
                    data: data.clone(),
                });
                self.live.insert(uid, live);
                layer.data = Ok(data);
            }
            Err(e) => layer.data = Err(e),
        }
        if let Some(label) = label {
            self.rename_layer(i, &label);
        }
    }

    /// Blocks until every network being opened has opened (or failed), or `timeout`
    /// passes; true when none is left. For tests, benchmarks and headless use, never the
    /// interface's thread.
    pub fn wait_models(&mut self, timeout: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        loop {
            self.poll_models();
            if self.opening.is_empty() {
                return true;
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Whether layer `i`'s network is still opening.
    pub(super) fn model_opening(&self, i: usize) -> bool {
        self.layers
            .get(i)
            .is_some_and(|l| self.opening.iter().any(|(uid, _)| *uid == l.uid))
    }

    /// The live prediction of layer `i`, when it is a model layer that opened.
    pub fn live_prediction(&self, i: usize) -> Option<&Arc<LivePrediction>> {
        self.layers.get(i).and_then(|l| self.live.get(&l.uid))
    }

    /// The model layer's part of its status line: blocks computed, seconds per block and
    /// the device.
    pub(super) fn model_status(&self, i: usize) -> Option<String> {
        let live = self.live_prediction(i)?;
        let s = live.stats();
        let mut text = format!(" · computed {} of {} blocks", s.computed, live.grid().len());
        if s.computed > 0 {
            text.push_str(&format!(" · {:.2} s/block", s.secs_per_block()));
        }
        text.push_str(&format!(" on {}", live.device_label()));
        if s.in_flight > 0 {
            text.push_str(" · computing");
        }
        if s.failed > 0 {
            text.push_str(&format!(" · {} failed", s.failed));
        }
        Some(text)
    }
}

/// What a model layer holds while its network opens.
const OPENING: &str = "opening the network";

/// A model layer's name before its network has opened.
fn pending_label(source: &LiveSource) -> String {
    match source.iteration {
        Some(i) => source.label(i),
        None => format!("{} @ latest", source.run),
    }
}

/// Opens the live prediction `source` names as a layer (on the GPU when there is one),
/// computing with `shared` when it is the same prediction already open.
pub(super) fn open_model(
    source: &LiveSource,
    shared: Option<Arc<LivePrediction>>,
) -> Result<(Arc<LayerData>, Arc<LivePrediction>), String> {
    let live = match shared {
        Some(live) => live,
        None => crate::ops::live::open_live(source, "auto").map_err(|e| e.to_string())?,
    };
    let name = source.label(live.iteration());
    let layer: Box<dyn crate::array::ArraySource> = match &source.segmentation {
        Some(_) => Box::new(
            crate::ops::live::open_segmentation(source, live.clone()).map_err(|e| e.to_string())?,
        ),
        None => Box::new(live.clone()),
    };
    let data = crate::render::layer::computed_layer(&source.raw, &name, layer)
        .map_err(|e| e.to_string())?;
    Ok((data, live))
}

/// A checkpoint of a model layer computed before, kept so that going back to it shows what
/// it computed at once (its chunks stay in the cache under its layer id).
pub(super) struct ModelVersion {
    iteration: u64,
    uid: u64,
    data: Arc<LayerData>,
}

impl ModelVersion {
    /// The layer id its chunks are cached under.
    pub(super) fn uid(&self) -> u64 {
        self.uid
    }
}

/// Checkpoints a model layer keeps besides the one it shows.
const KEPT_VERSIONS: usize = 3;

/// How often the checkpoints of a run on show are listed again (new ones while it trains).
const CHECKPOINT_LIST_SECS: f64 = 2.0;

/// The checkpoint controls of model layer `i`: "latest" (following new checkpoints), a
/// slider over the stored `iterations` and buttons to step through them. `chosen` is the
/// layer's choice (`None` = latest), `shown` the iteration it computes with. Returns a new
/// choice.
pub(super) fn checkpoint_ui(
    ui: &mut egui::Ui,
    i: usize,
    chosen: Option<u64>,
    iterations: &[u64],
    shown: Option<u64>,
) -> Option<Option<u64>> {
    if iterations.is_empty() {
        return None;
    }
    let mut choice = None;
    let current = shown.or(chosen).unwrap_or(iterations[iterations.len() - 1]);
    let mut index = iterations
        .iter()
        .position(|&it| it >= current)
        .unwrap_or(iterations.len() - 1);
    ui.horizontal(|ui| {
        let mut latest = chosen.is_none();
        if ui
            .checkbox(&mut latest, "latest")
            .on_hover_text("follow the newest checkpoint as training writes them")
            .changed()
        {
            choice = Some(if latest { None } else { Some(current) });
        }
        ui.add_enabled_ui(!latest, |ui| {
            if ui
                .add_enabled(index > 0, egui::Button::new("<").small())
                .on_hover_text("the previous checkpoint")
                .clicked()
            {
                choice = Some(Some(iterations[index - 1]));
            }
            let before = index;
            let last = iterations.len() - 1;
            ui.add(
                egui::Slider::new(&mut index, 0..=last)
                    .custom_formatter(|v, _| {
                        iterations
                            .get(v as usize)
                            .map(|it| it.to_string())
                            .unwrap_or_default()
                    })
                    .text("checkpoint"),
            )
            .on_hover_text(format!(
                "model layer {}: the checkpoint it computes with",
                i + 1
            ));
            if index != before {
                choice = Some(Some(iterations[index]));
            }
            if ui
                .add_enabled(index < last, egui::Button::new(">").small())
                .on_hover_text("the next checkpoint")
                .clicked()
            {
                choice = Some(Some(iterations[index + 1]));
            }
        });
    });
    choice
}

impl Viewer {
    /// For model layer `i`: its run's checkpoint iterations (listed again every few
    /// seconds) and the iteration it computes with; `None` for other layers.
    pub(super) fn model_checkpoint_choices(&mut self, i: usize) -> Option<(Vec<u64>, Option<u64>)> {
        let model = self.state.layers.get(i)?.model.clone()?;
        let key = (model.project.clone(), model.run.clone());
        let fresh = self
            .checkpoint_lists
            .get(&key)
            .is_some_and(|(at, _)| at.elapsed().as_secs_f64() < CHECKPOINT_LIST_SECS);
        if !fresh {
            // Only the checkpoint directory is listed (on the interface's thread, every few
            // seconds); the run's configs are not read again.
            let listed = crate::store::layout::RunDir::new(&model.project, &model.run)
                .checkpoint_iterations();
            self.checkpoint_lists
                .insert(key.clone(), (std::time::Instant::now(), listed));
        }
        let iterations = self.checkpoint_lists.get(&key)?.1.clone();
        let shown = self.live_prediction(i).map(|l| l.iteration());
        Some((iterations, shown))
    }

    /// Points model layer `i` at checkpoint `iteration` (the latest stored when `None`),
    /// keeping its drawing settings; a checkpoint shown before comes back with what it
    /// computed. The layer is named after the checkpoint it shows.
    pub fn set_model_iteration(&mut self, i: usize, iteration: Option<u64>) {
        let Some(mut source) = self.state.layers.get(i).and_then(|l| l.model.clone()) else {
            return;
        };
        source.iteration = iteration;
        let wanted = match iteration {
            Some(it) => Some(it),
            None => {
                crate::store::layout::RunDir::new(&source.project, &source.run).latest_checkpoint()
            }
        };
        let Some(layer) = self.layers.get_mut(i) else {
            return;
        };
        // The checkpoint shown now is kept.
        if let (Ok(data), Some(live)) = (&layer.data, self.live.get(&layer.uid)) {
            let uid = layer.uid;
            layer.versions.retain(|v| v.uid != uid);
            layer.versions.push(ModelVersion {
                iteration: live.iteration(),
                uid,
                data: data.clone(),
            });
        }
        let kept = wanted.and_then(|it| layer.versions.iter().position(|v| v.iteration == it));
        let mut open = None;
        let label = match kept {
            Some(k) => {
                let v = layer.versions.remove(k);
                layer.uid = v.uid;
                layer.data = Ok(v.data.clone());
                layer.versions.push(v);
                source.label(layer.versions.last().map_or(0, |v| v.iteration))
            }
            None => {
                let uid = self.next_uid;
                self.next_uid += 1;
                layer.uid = uid;
                layer.data = Err(OPENING.to_string());
                open = Some(uid);
                pending_label(&source)
            }
        };
        if let Some(uid) = open {
            self.start_opening(uid, source.clone());
        }
        let Some(layer) = self.layers.get_mut(i) else {
            return;
        };
        // Only the most recently shown checkpoints stay.
        while layer.versions.len() > KEPT_VERSIONS + 1 {
            let old = layer.versions.remove(0);
            self.live.remove(&old.uid);
            self.composer.forget_layer(old.uid);
        }
        self.state.layers[i].model = Some(source);
        self.rename_layer(i, &label);
        self.invalidate();
    }

    /// Renames layer `i` to `base` (made unique), following the overlays and selection that
    /// name it.
    fn rename_layer(&mut self, i: usize, base: &str) {
        let old = self.state.layers[i].name.clone();
        if old == base {
            return;
        }
        let name = self.unique_name(base);
        for o in &mut self.state.overlays {
            for n in [&mut o.truth, &mut o.prediction] {
                if *n == old {
                    *n = name.clone();
                }
            }
        }
        if self.state.selected_layer.as_deref() == Some(old.as_str()) {
            self.state.selected_layer = Some(name.clone());
        }
        self.state.layers[i].name = name;
    }

    /// Model layers following the latest checkpoint move to a newer one when training
    /// writes it.
    pub(super) fn follow_latest_checkpoints(&mut self) {
        for i in 0..self.state.layers.len() {
            let following = self.state.layers[i]
                .model
                .as_ref()
                .is_some_and(|m| m.iteration.is_none());
            if !following {
                continue;
            }
            let Some((iterations, shown)) = self.model_checkpoint_choices(i) else {
                continue;
            };
            if let (Some(newest), Some(shown)) = (iterations.last(), shown) {
                if *newest != shown {
                    self.set_model_iteration(i, None);
                }
            }
        }
    }
}
