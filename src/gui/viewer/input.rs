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
        let (rotate_r, rotate_e) = ui
            .ctx()
            .input(|i| (i.key_pressed(egui::Key::R), i.key_pressed(egui::Key::E)));
        // r / e turn the cross-sections about the normal of the panel under the pointer
        // (xy elsewhere), as neuroglancer's keys do.
        for (pressed, sign) in [(rotate_r, -1.0), (rotate_e, 1.0)] {
            if pressed {
                let plane = self.hover.map(|h| h.0).unwrap_or(Plane::Xy);
                let n = self.state.orientation.axis(plane.axes()[2]);
                self.state.orientation = self
                    .state
                    .orientation
                    .rotated(n, sign * ROTATE_KEY_DEG.to_radians());
            }
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
        let shift = ui.ctx().input(|i| i.modifiers.shift);
        let o = self.state.orientation;
        let [du, dv, dn] = [h, v, n].map(|a| o.axis(a));
        if !drawing && response.dragged_by(egui::PointerButton::Primary) {
            let d = response.drag_delta();
            if shift {
                // Shift-drag turns the cross-sections: right about the panel's vertical,
                // down about its horizontal.
                self.state.orientation = o
                    .rotated(dv, f64::from(d.x) * ROTATE_DRAG_DEG_PER_POINT.to_radians())
                    .rotated(du, -f64::from(d.y) * ROTATE_DRAG_DEG_PER_POINT.to_radians());
            } else if o.is_identity() {
                self.state.position_nm.0[h] -= f64::from(d.x) * zoom;
                self.state.position_nm.0[v] -= f64::from(d.y) * zoom;
            } else {
                for a in 0..3 {
                    self.state.position_nm.0[a] -=
                        (f64::from(d.x) * du[a] + f64::from(d.y) * dv[a]) * zoom;
                }
            }
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
                // Wheel up (content moves down) goes one slice back, as in neuroglancer.
                let sign = if d > 0.0 { -1.0 } else { 1.0 };
                let times = if m.shift { 10.0 } else { 1.0 };
                if o.is_identity() {
                    self.state.position_nm.0[n] += sign * self.normal_step(n) * times;
                } else {
                    // A rotated plane steps by the finest voxel along any axis.
                    let step = (0..3)
                        .map(|a| self.normal_step(a))
                        .fold(f64::INFINITY, f64::min);
                    for (p, d) in self.state.position_nm.0.iter_mut().zip(dn) {
                        *p += sign * step * times * d;
                    }
                }
            }
        }
        if factor != 1.0 {
            if let Some(pos) = response.hover_pos() {
                // Zoom about the cursor: the world point under it stays put.
                let before = world_at(pos, &self.state);
                self.state.zoom_nm_per_px = (zoom / factor).clamp(1e-3, 1e7);
                let after = world_at(pos, &self.state);
                for a in 0..3 {
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
    let dx = f64::from(pos.x - rect.center().x) * state.zoom_nm_per_px;
    let dy = f64::from(pos.y - rect.center().y) * state.zoom_nm_per_px;
    if state.orientation.is_identity() {
        p.0[h] += dx;
        p.0[v] += dy;
    } else {
        let (u, w) = (state.orientation.axis(h), state.orientation.axis(v));
        for a in 0..3 {
            p.0[a] += dx * u[a] + dy * w[a];
        }
    }
    p
}

/// Degrees the cross-sections turn per press of `r` or `e`.
pub(super) const ROTATE_KEY_DEG: f64 = 5.0;
/// Degrees the cross-sections turn per point of a shift-drag.
pub(super) const ROTATE_DRAG_DEG_PER_POINT: f64 = 0.5;

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

    /// A left click at `pos`, and two frames.
    fn click(h: &mut Harness<'static, Viewer>, pos: egui::Pos2) {
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
            click(&mut h, pos);
            match &h.state().state.layers[1].settings {
                LayerSettings::Segmentation(s) => assert_eq!(s.selected, expected),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn r_e_and_shift_drag_rotate_the_cross_sections_and_clicks_follow_the_rotation() {
        let (_dir, mut h) = harness();
        let rect = h.state().panel_rects[&Plane::Xy];
        let centre = rect.center();
        let zoom = h.state().state.zoom_nm_per_px;
        // e turns 5° about the xy panel's normal (z), r back.
        press(&mut h, egui::Key::E);
        let o = h.state().state.orientation;
        assert!((o.angle_deg() - 5.0).abs() < 1e-9, "{}", o.angle_deg());
        assert!(o.axis(0)[0] > 1.0 - 1e-12 && o.axis(2)[1] > 0.08);
        press(&mut h, egui::Key::R);
        assert!(h.state().state.orientation.angle_deg() < 1e-6);
        // 90° about z: the panel's right is world +y and its down is world −x.
        h.state_mut().state.orientation = crate::render::orientation::Orientation::IDENTITY
            .rotated([1.0, 0.0, 0.0], std::f64::consts::FRAC_PI_2);
        h.run_steps(2);
        let o = h.state().state.orientation;
        let right = o.axis(2);
        assert!(
            (right[1] - 1.0).abs() < 1e-9 && right[0].abs() < 1e-9,
            "{right:?}"
        );
        // The point 100 points left of the centre is now at world y = 34 − 100 × zoom
        // (segment 1), the one 100 points above at y = 34 (segment 2): a click on each.
        assert!(34.0 - 100.0 * zoom < 32.0);
        for (offset, id) in [
            (egui::vec2(-100.0, 0.0), 1u64),
            (egui::vec2(0.0, -100.0), 2),
        ] {
            let pos = centre + offset;
            let world = world_at(&h.state().state, Plane::Xy, rect, pos);
            assert!((world.0[1] - (34.0 + f64::from(offset.x) * zoom)).abs() < 1e-9);
            click(&mut h, pos);
            match &h.state().state.layers[1].settings {
                LayerSettings::Segmentation(s) => assert_eq!(s.selected, vec![id]),
                other => panic!("{other:?}"),
            }
            if let LayerSettings::Segmentation(s) = &mut h.state_mut().state.layers[1].settings {
                s.selected.clear();
            }
        }
        // The wheel steps along the rotated normal (still z here).
        let z = h.state().state.position_nm.0[0];
        h.event(egui::Event::PointerMoved(centre));
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Line,
            delta: egui::vec2(0.0, -1.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        h.run_steps(2);
        assert!((h.state().state.position_nm.0[0] - (z + 4.0)).abs() < 1e-9);
        h.state_mut().state.orientation = crate::render::orientation::Orientation::IDENTITY;
        // Shift-drag 20 points right turns the planes about the panel's vertical (y): x
        // tilts toward z by at most 10°.
        h.event(egui::Event::ModifiersChanged(egui::Modifiers::SHIFT));
        h.event(egui::Event::PointerMoved(centre));
        h.event(egui::Event::PointerButton {
            pos: centre,
            button: egui::PointerButton::Primary,
            pressed: true,
            modifiers: egui::Modifiers::SHIFT,
        });
        h.run_steps(1);
        for k in 1..=4 {
            h.event(egui::Event::PointerMoved(
                centre + egui::vec2(5.0 * k as f32, 0.0),
            ));
            h.run_steps(1);
        }
        h.event(egui::Event::PointerButton {
            pos: centre + egui::vec2(20.0, 0.0),
            button: egui::PointerButton::Primary,
            pressed: false,
            modifiers: egui::Modifiers::SHIFT,
        });
        h.event(egui::Event::ModifiersChanged(egui::Modifiers::NONE));
        h.run_steps(2);
        let o = h.state().state.orientation;
        let angle = o.angle_deg();
        assert!(angle > 4.0 && angle <= 10.0 + 1e-9, "{angle}");
        let x = o.axis(2);
        assert!(x[1].abs() < 1e-9 && x[0].abs() > 0.05, "{x:?}");
        // Dragging turned the planes; it did not pan.
        assert!((h.state().state.position_nm.0[2] - 34.0).abs() < 1e-9);
        // The rotation is saved with the view.
        let text = serde_json::to_string(&h.state().state).unwrap();
        assert!(text.contains("\"orientation\""), "{text}");
    }

    #[test]
    fn the_wheel_zooms_the_3d_panel_whose_image_shows_the_segments() {
        let (_dir, mut h) = harness();
        let (xz, yz) = (
            h.state().panel_rects[&Plane::Xz],
            h.state().panel_rects[&Plane::Yz],
        );
        let centre = egui::pos2(xz.center().x, yz.center().y);
        let zoom = h.state().state.zoom_nm_per_px;
        h.event(egui::Event::PointerMoved(centre));
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Line,
            delta: egui::vec2(0.0, 1.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        h.run_steps(2);
        assert!((h.state().state.orbit_zoom - 1.1).abs() < 1e-9);
        // The slices kept their zoom.
        assert_eq!(h.state().state.zoom_nm_per_px, zoom);
        // Without a GPU the panel is ray cast on a background thread, with both layers.
        for _ in 0..50 {
            h.run_steps(1);
            if !h.state().volume_job.busy() && h.state().volume_texture.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(h.state().volume_texture.is_some());
        let (image, labels) = h.state().three_d_layers();
        assert_eq!((image, labels), (Some(0), Some(1)));
    }
}
