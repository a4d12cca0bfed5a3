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
        let mut wanted = Vec::new();
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
    ) -> Vec<Request> {
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

    pub(super) fn overview_panel(&mut self, ui: &mut egui::Ui, rect: egui::Rect) {
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
        let waker = ctx.clone();
        let panel = [rect.width(), rect.height()];
        if let Some(mip) = self.mip.poll(
            &d,
            self.layers[i].uid,
            orbit,
            (panel, scale),
            settings,
            Arc::new(move || waker.request_repaint()),
        ) {
            let img = egui::ColorImage::from_rgba_unmultiplied([mip.width, mip.height], &mip.rgba);
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
        // The Apply section's job region and a region being drawn.
        let regions = [
            self.block_map.as_ref().map(|m| (m.begin_nm, m.end_nm)),
            self.region.as_ref().map(|d| (d.begin_nm, d.end_nm)),
        ];
        for (lo, hi) in regions.into_iter().flatten() {
            box_edges(lo, hi, egui::Color32::from_rgb(0, 210, 255));
        }
        let pos = self.state.position_nm.0;
        let o = self.state.orientation;
        for (axis, c) in AXIS_COLORS.iter().enumerate() {
            let color = egui::Color32::from_rgb(c[0], c[1], c[2]);
            if !o.is_identity() {
                // A rotated plane cuts the box in a polygon.
                let cut = plane_cut(b, e, pos, o.axis(axis), o.axis((axis + 1) % 3));
                let points: Vec<egui::Pos2> = cut.iter().map(|p| project(*p)).collect();
                painter.add(egui::Shape::closed_line(
                    points,
                    egui::Stroke::new(1.0, color),
                ));
                continue;
            }
            let mut lo = b;
            let mut hi = e;
            lo[axis] = pos[axis].clamp(b[axis], e[axis]);
            hi[axis] = lo[axis];
            box_edges(lo, hi, color);
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

/// The polygon (in order around it) where the plane through `point` with unit normal
/// `normal` cuts the box `lo`..`hi` (world z, y, x); `along` is a direction in the plane
/// the points are ordered from.
fn plane_cut(
    lo: [f64; 3],
    hi: [f64; 3],
    point: [f64; 3],
    normal: [f64; 3],
    along: [f64; 3],
) -> Vec<[f64; 3]> {
    let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let corner = |i: usize| -> [f64; 3] {
        std::array::from_fn(|a| if i >> a & 1 == 1 { hi[a] } else { lo[a] })
    };
    let depth = |p: [f64; 3]| dot(std::array::from_fn(|a| p[a] - point[a]), normal);
    let mut out: Vec<[f64; 3]> = Vec::new();
    for i in 0..8usize {
        for a in 0..3 {
            let j = i | 1 << a;
            if j == i {
                continue;
            }
            let (ci, cj) = (corner(i), corner(j));
            let (di, dj) = (depth(ci), depth(cj));
            if (di > 0.0 && dj > 0.0) || (di < 0.0 && dj < 0.0) || di == dj {
                continue;
            }
            let t = di / (di - dj);
            let p: [f64; 3] = std::array::from_fn(|b| ci[b] + t * (cj[b] - ci[b]));
            // A corner on the plane is reached from several edges.
            let scale = (0..3).map(|a| hi[a] - lo[a]).fold(1e-9, f64::max);
            if !out
                .iter()
                .any(|q| (0..3).all(|a| (p[a] - q[a]).abs() <= 1e-9 * scale))
            {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        return out;
    }
    let n = out.len() as f64;
    let mid: [f64; 3] = std::array::from_fn(|a| out.iter().map(|p| p[a]).sum::<f64>() / n);
    let other = [
        normal[1] * along[2] - normal[2] * along[1],
        normal[2] * along[0] - normal[0] * along[2],
        normal[0] * along[1] - normal[1] * along[0],
    ];
    let angle = |p: &[f64; 3]| {
        let d: [f64; 3] = std::array::from_fn(|a| p[a] - mid[a]);
        dot(d, other).atan2(dot(d, along))
    };
    out.sort_by(|p, q| angle(p).total_cmp(&angle(q)));
    out
}

#[cfg(test)]
mod cut_tests {
    #[test]
    fn a_tilted_plane_cuts_the_unit_box_in_an_ordered_polygon() {
        // The plane z = x through the box's centre cuts a rectangle.
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let cut = super::plane_cut([0.0; 3], [1.0; 3], [0.5; 3], [s, 0.0, -s], [0.0, 1.0, 0.0]);
        assert_eq!(cut.len(), 4);
        for p in &cut {
            assert!((p[0] - p[2]).abs() < 1e-12, "{p:?}");
        }
        // In order around the polygon: consecutive corners share an edge of length 1 or √2.
        for k in 0..4 {
            let (p, q) = (cut[k], cut[(k + 1) % 4]);
            let d = (0..3).map(|a| (p[a] - q[a]).powi(2)).sum::<f64>().sqrt();
            assert!(
                (d - 1.0).abs() < 1e-9 || (d - 2f64.sqrt()).abs() < 1e-9,
                "{d}"
            );
        }
    }
}
