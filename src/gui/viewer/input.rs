//! Mouse and keys in the viewer, with neuroglancer's bindings: dropped paths, layer
//! toggles and layouts, pan, zoom and scroll through the panels, and segment selection.

use super::*;

impl Viewer {
    pub(super) fn handle_drops(&mut self, ui: &egui::Ui) {
        for p in crate::gui::dropped_paths(ui.ctx()) {
            if p.extension().is_some_and(|e| e == "json") {
                self.load_state(&p);
            } else {
                self.add_layer(&p);
            }
        }
    }

    pub(super) fn keys(&mut self, ui: &egui::Ui) {
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

    pub(super) fn navigate(
        &mut self,
        ui: &egui::Ui,
        plane: Plane,
        rect: egui::Rect,
        response: &egui::Response,
    ) {
        let [h, v, n] = plane.axes();
        let zoom = self.state.zoom_nm_per_px;
        // While a region is drawn, dragging draws it instead of panning.
        let drawing = self.draw_region(plane, rect, response);
        if !drawing && response.dragged_by(egui::PointerButton::Primary) {
            let d = response.drag_delta();
            self.state.position_nm.0[h] -= f64::from(d.x) * zoom;
            self.state.position_nm.0[v] -= f64::from(d.y) * zoom;
        }
        let world_at = |pos: egui::Pos2, state: &ViewState| world_at(state, plane, rect, pos);
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
    pub(super) fn normal_step(&self, axis: usize) -> f64 {
        self.layers
            .iter()
            .filter_map(|l| l.data.as_ref().ok())
            .map(|d| d.levels[0].voxel_size_nm[axis])
            .fold(f64::INFINITY, f64::min)
            .min(1e9)
            .max(if self.layers.is_empty() { 1.0 } else { 0.0 })
    }

    /// A click on a segment toggles its selection in the chosen (or topmost) segmentation.
    pub(super) fn select_at(&mut self, plane: Plane, rect: egui::Rect, pos: egui::Pos2, ppp: f32) {
        let l = (pos - rect.min) * ppp;
        let target = {
            let scene = scene(&self.layers, &self.state, self.revision);
            self.composer.segment_at(
                &scene,
                plane,
                f64::from(l.x),
                f64::from(l.y),
                self.state.selected_layer.as_deref(),
            )
        };
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
}

/// The world point under screen position `pos` of the cross-section `plane` drawn in
/// `rect` with the view `state`.
pub(super) fn world_at(
    state: &ViewState,
    plane: Plane,
    rect: egui::Rect,
    pos: egui::Pos2,
) -> WorldNm {
    let [h, v, _] = plane.axes();
    let mut p = state.position_nm;
    p.0[h] += f64::from(pos.x - rect.center().x) * state.zoom_nm_per_px;
    p.0[v] += f64::from(pos.y - rect.center().y) * state.zoom_nm_per_px;
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::Harness;

    /// The viewer alone on the raw and labels of the small test volume, loaded.
    fn harness() -> (tempfile::TempDir, Harness<'static, Viewer>) {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::render::fixtures::small_volume(dir.path());
        let mut v = Viewer::new(16 << 20);
        v.add_layer(&c.join("raw"));
        v.add_layer(&c.join("labels"));
        let mut h = Harness::builder()
            .with_size(egui::Vec2::new(1000.0, 800.0))
            .build_ui_state(|ui, v: &mut Viewer| v.ui(ui, &[]), v);
        for _ in 0..20 {
            h.run_steps(2);
            assert!(h
                .state()
                .cache()
                .wait_idle(std::time::Duration::from_secs(10)));
            if !h.state().loading() {
                break;
            }
        }
        (dir, h)
    }

    fn press(h: &mut Harness<'static, Viewer>, key: egui::Key) {
        h.key_press(key);
        h.run_steps(2);
    }

    #[test]
    fn keys_toggle_layers_and_cycle_the_layout() {
        let (_dir, mut h) = harness();
        assert_eq!(h.state().state.layout, Layout::FourPanel);
        press(&mut h, egui::Key::Num2);
        assert!(h.state().state.layers[0].visible);
        assert!(!h.state().state.layers[1].visible);
        press(&mut h, egui::Key::Num2);
        assert!(h.state().state.layers[1].visible);
        press(&mut h, egui::Key::Space);
        assert_eq!(h.state().state.layout, Layout::FourPanel.next());
    }

    #[test]
    fn the_wheel_steps_one_voxel_and_a_click_selects_the_segment_under_it() {
        let (_dir, mut h) = harness();
        let rect = h.state().panel_rects[&Plane::Xy];
        let z = h.state().state.position_nm.0[0];
        let zoom = h.state().state.zoom_nm_per_px;
        // Wheel down over the xy panel: one 4 nm voxel deeper; up: back.
        let centre = rect.center();
        h.event(egui::Event::PointerMoved(centre));
        for (dy, expected) in [(-1.0, z + 4.0), (1.0, z)] {
            h.event(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Line,
                delta: egui::vec2(0.0, dy),
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Unknown,
                modifiers: egui::Modifiers::NONE,
            });
            h.run_steps(2);
            assert_eq!(h.state().state.position_nm.0[0], expected);
        }
        // 100 points above the centre lies world y = 34 − 100 × zoom nm, in segment 1
        // (y < 32 nm); a click selects it, a second click deselects it.
        let pos = centre - egui::vec2(0.0, 100.0);
        assert!(34.0 - 100.0 * zoom < 32.0);
        for expected in [vec![1u64], vec![]] {
            h.event(egui::Event::PointerMoved(pos));
            for pressed in [true, false] {
                h.event(egui::Event::PointerButton {
                    pos,
                    button: egui::PointerButton::Primary,
                    pressed,
                    modifiers: egui::Modifiers::NONE,
                });
            }
            h.run_steps(2);
            match &h.state().state.layers[1].settings {
                LayerSettings::Segmentation(s) => assert_eq!(s.selected, expected),
                other => panic!("{other:?}"),
            }
        }
    }
}
