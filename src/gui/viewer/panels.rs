//! The viewer's central area: the cross-section panels painted from the composer's
//! uploads (on the GPU, or shaded on the CPU without it), their labels and scale bars, the
//! 3D overview and the status bar with the values under the cursor.

use super::*;

impl Viewer {
    pub(super) fn panels_ui(&mut self, ui: &mut egui::Ui) {
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
        self.note_changes();
        self.composer.begin_frame();
        let mut wanted = Wanted::default();
        for (plane, r) in panels.drain(..) {
            match plane {
                Some(p) => wanted.extend(self.slice_panel(ui, p, r)),
                None => self.overview_panel(ui, r),
            }
        }
        self.composer.request(wanted);
    }

    pub(super) fn slice_panel(
        &mut self,
        ui: &mut egui::Ui,
        plane: Plane,
        rect: egui::Rect,
    ) -> Wanted {
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
            orientation: self.state.orientation,
        };
        self.hover = response
            .hover_pos()
            .map(|p| {
                let l = (p - rect.min) * ppp;
                (plane, f64::from(l.x), f64::from(l.y))
            })
            .or(self.hover.filter(|h| h.0 != plane));
        let wanted = self.refresh_panel(view);
        let painter = ui.painter_at(rect);
        if let Some(upload) = self.composer.upload(plane) {
            let mut upload = upload.clone();
            // egui places the callback's viewport on whole physical pixels.
            upload.uniforms.origin_size[0] = (rect.min.x * ppp).round();
            upload.uniforms.origin_size[1] = (rect.min.y * ppp).round();
            let (u, t, version) = (upload.uniforms, upload.textures.clone(), upload.version);
            if self.gpu {
                let panel_id = match plane {
                    Plane::Xy => 1,
                    Plane::Xz => 2,
                    Plane::Yz => 3,
                };
                painter.add(egui_wgpu::Callback::new_paint_callback(
                    rect,
                    SliceCallback {
                        panel: panel_id,
                        upload,
                        frame: ui.ctx().cumulative_frame_nr(),
                        gpu_budget_bytes: self.gpu_budget_bytes,
                        gpu_stats: self.gpu_stats.clone(),
                    },
                ));
            } else {
                let shaded = self.cpu_textures.get(&plane).map(|(v, _)| *v);
                if shaded != Some(version) {
                    let rgba = shade::shade_all(&u, &t);
                    let image = egui::ColorImage::from_rgba_unmultiplied(
                        [t.width as usize, t.height as usize],
                        &rgba,
                    );
                    match self.cpu_textures.get_mut(&plane) {
                        Some((v, h)) => {
                            h.set(image, egui::TextureOptions::NEAREST);
                            *v = version;
                        }
                        None => {
                            let h = ui.ctx().load_texture(
                                format!("segno-panel-{}", plane.label()),
                                image,
                                egui::TextureOptions::NEAREST,
                            );
                            self.cpu_textures.insert(plane, (version, h));
                        }
                    }
                }
                if let Some((_, h)) = self.cpu_textures.get(&plane) {
                    painter.image(
                        h.id(),
                        rect,
                        egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                        egui::Color32::WHITE,
                    );
                }
            }
        }
        self.draw_overlays(&painter, plane, rect);
        self.decorations(&painter, plane, rect);
        wanted
    }

    pub(super) fn decorations(&self, painter: &egui::Painter, plane: Plane, rect: egui::Rect) {
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

    pub(super) fn status_bar(&self, ui: &mut egui::Ui) {
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
