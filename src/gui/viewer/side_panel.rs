//! The viewer's side panel: adding layers, layouts, saved views and the neuroglancer
//! export, each layer's drawing settings (with its histogram) and the error overlays.

use super::*;
use crate::render::state::Sampling;

impl Viewer {
    pub(super) fn side_panel(&mut self, ui: &mut egui::Ui, project_arrays: &[PathBuf]) {
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
        if let Some(project) = self.project.clone() {
            // Raw layers a network can predict: those read from storage.
            let raws: Vec<(String, PathBuf)> = self
                .state
                .layers
                .iter()
                .zip(&self.layers)
                .filter(|(_, l)| l.data.as_ref().is_ok_and(|d| !d.computed))
                .map(|(s, _)| (s.name.clone(), s.source.clone()))
                .collect();
            egui::CollapsingHeader::new("Add prediction…")
                .id_salt("add-prediction")
                .show(ui, |ui| {
                    let runs = self.project_runs.clone();
                    if let Some(source) = self.model_form.ui(ui, &project, &runs, &raws) {
                        self.add_model_layer(source);
                    }
                });
        }
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
        // The cross-sections' rotation (shift-drag, r / e) and a way back to the axes.
        if !self.state.orientation.is_identity() {
            ui.horizontal(|ui| {
                ui.label(format!(
                    "planes rotated {:.1}°",
                    self.state.orientation.angle_deg()
                ))
                .on_hover_text("shift-drag or r / e turn the cross-sections");
                if ui.button("Reset orientation").clicked() {
                    self.state.orientation = crate::render::orientation::Orientation::IDENTITY;
                }
            });
        }
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
        egui::CollapsingHeader::new("Chunk statistics").show(ui, |ui| {
            let rows = self.chunk_statistics();
            let cpu = self.cache().stats();
            let gpu = self.gathers_on_gpu().then(|| self.gpu_store_stats());
            super::statistics::ui(ui, &rows, &cpu, gpu.as_ref());
        });
        egui::CollapsingHeader::new("Neuroglancer").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label("data served at");
                ui.add(egui::TextEdit::singleline(&mut self.ng_base_url).desired_width(160.0));
            });
            let computed: Vec<String> = self
                .state
                .layers
                .iter()
                .filter(|l| l.model.is_some())
                .map(|l| l.name.clone())
                .collect();
            if !computed.is_empty() {
                ui.checkbox(
                    &mut self.ng_write_computed,
                    "write the computed blocks out (into the project's exports/)",
                )
                .on_hover_text(
                    "Layers computed here have no array neuroglancer could read: this writes the blocks computed so far, as they are, and the state shows them; blocks not computed stay empty",
                );
            }
            if ui
                .button("Copy URL and save state…")
                .on_hover_text("neuroglancer reads the arrays over HTTP: serve the project directory with neuroglancer's cors_webserver.py")
                .clicked()
            {
                let root = self
                    .serve_root
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/"));
                let exported = if self.ng_write_computed && !computed.is_empty() {
                    self.neuroglancer_with_computed(&self.ng_base_url, &root)
                } else {
                    let (state, url) = self.neuroglancer(&self.ng_base_url, &root);
                    Ok((state, url, Vec::new()))
                };
                let (state, url, written) = match exported {
                    Ok(e) => e,
                    Err(e) => {
                        self.message = Some(e);
                        return;
                    }
                };
                ui.ctx().copy_text(url);
                let mut note = format!(
                    "neuroglancer URL copied; serve {} at {} (cors_webserver.py -d {} -p 9000)",
                    root.display(),
                    self.ng_base_url,
                    root.display()
                );
                for (name, w) in &written {
                    note.push_str(&format!(
                        "; {name}: {} of {} blocks written to {}",
                        w.blocks_written,
                        w.blocks_total,
                        w.path.display()
                    ));
                }
                if written.is_empty() && !computed.is_empty() {
                    note.push_str(&format!(
                        "; left out, computed here with no array neuroglancer can read: {}",
                        computed.join(", ")
                    ));
                }
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
        let mut checkpoint = None;
        let mut segment = None;
        for i in 0..self.state.layers.len() {
            let status = self.layer_status(i);
            let checkpoints = self.model_checkpoint_choices(i);
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
            if let (Some(model), Some((iterations, shown))) = (&l.model, checkpoints) {
                if let Some(choice) =
                    model_layer::checkpoint_ui(ui, i, model.iteration, &iterations, shown)
                {
                    checkpoint = Some((i, choice));
                }
                if model.segmentation.is_none()
                    && shown.is_some()
                    && ui
                        .button("Add segmentation")
                        .on_hover_text(
                            "the run's post-processing of every block on screen, as a layer",
                        )
                        .clicked()
                {
                    segment = Some(i);
                }
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
            let hist = self.composer.histogram(i);
            settings_ui(ui, i, &mut l.settings, hist);
            ui.separator();
        }
        if let Some((i, iteration)) = checkpoint {
            self.set_model_iteration(i, iteration);
        }
        if let Some(i) = segment {
            self.add_segmentation_layer(i);
        }
        self.follow_latest_checkpoints();
        if let Some(i) = remove {
            self.state.layers.remove(i);
            let layer = self.layers.remove(i);
            for uid in std::iter::once(layer.uid).chain(layer.versions.iter().map(|v| v.uid())) {
                self.composer.forget_layer(uid);
                self.live.remove(&uid);
            }
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

    pub(super) fn overlay_ui(&mut self, ui: &mut egui::Ui) {
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
            sampling_ui(ui, ("sampling", i), &mut s.sampling);
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
            sampling_ui(ui, ("psampling", i), &mut s.sampling);
            opacity_blend_ui(ui, &mut s.opacity, &mut s.blend);
            threshold_ui(ui, s);
        }
    }
}

/// The threshold preview of a prediction layer: on or off, and the threshold within the
/// layer's range.
pub(super) fn threshold_ui(ui: &mut egui::Ui, s: &mut crate::render::state::PredictionSettings) {
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

/// Nearest or linear sampling of an image or prediction layer.
fn sampling_ui(ui: &mut egui::Ui, id: (&str, usize), sampling: &mut Sampling) {
    egui::ComboBox::new(id, "sampling")
        .selected_text(sampling.label())
        .show_ui(ui, |ui| {
            for m in Sampling::ALL {
                ui.selectable_value(sampling, m, m.label());
            }
        })
        .response
        .on_hover_text(
            "linear: zoomed in past one pixel per voxel on axis-aligned planes, values between \
             voxel centres are interpolated; rotated planes, the threshold preview and error \
             overlays always show the voxels themselves",
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    fn layer_names(v: &Viewer) -> Vec<String> {
        v.state.layers.iter().map(|l| l.name.clone()).collect()
    }

    /// A viewer in a 1000×800 harness that added the arrays `paths` of `container` with
    /// its Add button.
    fn viewer_with(container: &std::path::Path, paths: &[&str]) -> Harness<'static, Viewer> {
        let mut h = Harness::builder()
            .with_size(egui::Vec2::new(1000.0, 800.0))
            .build_ui_state(|ui, v: &mut Viewer| v.ui(ui, &[]), Viewer::new(16 << 20));
        h.run_steps(2);
        for (i, path) in paths.iter().enumerate() {
            h.state_mut().path_field = container.join(path).display().to_string();
            h.get_by_label("Add").click();
            h.run_steps(2);
            assert_eq!(h.state().state.layers.len(), i + 1);
        }
        h
    }

    #[test]
    fn the_side_panel_adds_hides_overlays_and_removes_layers() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::render::fixtures::small_volume(dir.path());
        let mut h = viewer_with(&c, &["raw", "labels", "labels"]);
        let names = layer_names(h.state());
        assert_eq!(names, ["raw", "labels", "labels (2)"]);
        // The first layer centres the view on its middle voxel's centre (voxels of 4 nm).
        assert_eq!(h.state().state.position_nm, WorldNm([34.0, 34.0, 34.0]));

        // Hiding a layer by its checkbox changes what the panels draw.
        let revision = h.state().revision;
        h.get_by_label("2").click();
        h.run_steps(2);
        assert!(!h.state().state.layers[1].visible);
        assert!(h.state().revision > revision);

        // An error overlay of the two label layers.
        h.state_mut().truth_pick = 1;
        h.state_mut().prediction_pick = 2;
        h.get_by_label("Add overlay").click();
        h.run_steps(2);
        let o = &h.state().state.overlays;
        assert_eq!(o.len(), 1);
        assert_eq!(
            (o[0].truth.as_str(), o[0].prediction.as_str()),
            ("labels", "labels (2)")
        );

        // Removing raw (the first layer's ×) keeps the overlay, whose layers remain.
        h.query_all_by_label("x").next().unwrap().click();
        h.run_steps(2);
        let names = layer_names(h.state());
        assert_eq!(names, ["labels", "labels (2)"]);
        assert_eq!(h.state().state.overlays.len(), 1);
    }

    #[test]
    fn an_image_layer_samples_linearly_when_chosen_in_its_settings() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::render::fixtures::small_volume(dir.path());
        let mut h = viewer_with(&c, &["raw"]);
        let sampling = |v: &Viewer| match &v.state.layers[0].settings {
            LayerSettings::Image(s) => s.sampling,
            other => panic!("not an image layer: {other:?}"),
        };
        assert_eq!(sampling(h.state()), Sampling::Nearest);
        let revision = h.state().revision;
        // Once the slice is loaded its histogram is drawn above the settings: wait for it,
        // so the click lands where the combo box is drawn.
        for _ in 0..20 {
            assert!(h
                .state()
                .cache()
                .wait_idle(std::time::Duration::from_secs(10)));
            h.run_steps(2);
        }
        h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "sampling")
            .click();
        h.run_steps(2);
        h.get_by_label("linear").click();
        h.run_steps(2);
        assert_eq!(sampling(h.state()), Sampling::Linear);
        assert!(h.state().revision > revision, "the panels are drawn anew");
    }
}
