//! The 3D panel: the coarse volumes of the first visible image and segmentation layers
//! ray cast on the GPU (or on the CPU without one), the volume's box and the three planes
//! outlined over it; drag to orbit, wheel to zoom.

use super::*;
use crate::render::volume::{CoarseLabels, CoarseVolume};
use crate::render::volume_render::{ImageLook, LabelLook, VolumeDraw};
use eframe::wgpu;

/// Longest side of the image the CPU ray caster renders for the panel.
const CPU_VOLUME_MAX_PX: f32 = 192.0;

/// The 3D panel's camera for a panel of `panel` points: the orbit, the world point it
/// centres (the first layer's box centre), points per nm, and that box.
pub(super) struct Camera {
    pub orbit: Orbit,
    pub mid: [f64; 3],
    pub points_per_nm: f64,
    pub bounds: ([f64; 3], [f64; 3]),
}

/// The 3D panel's paint callback: ray casts `draw` at `size` pixels when it changed and
/// copies the image into the panel.
struct VolumeCallback {
    draw: VolumeDraw,
    size: (u32, u32),
}

impl egui_wgpu::CallbackTrait for VolumeCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(res) = resources.get_mut::<crate::render::gpu::ViewerResources>() {
            res.volume
                .prepare(device, queue, encoder, &self.draw, self.size);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(res) = resources.get::<crate::render::gpu::ViewerResources>() {
            res.volume.paint(pass);
        }
    }
}

impl Viewer {
    /// The layers the 3D panel draws: the first visible image or prediction layer and the
    /// first visible segmentation layer that opened (indices).
    pub(super) fn three_d_layers(&self) -> (Option<usize>, Option<usize>) {
        let first = |want: &dyn Fn(LayerKind) -> bool| {
            (0..self.layers.len()).find(|i| {
                let s = &self.state.layers[*i];
                s.visible && want(s.settings.kind()) && self.layer_data(*i).is_some()
            })
        };
        (
            first(&|k| k != LayerKind::Segmentation),
            first(&|k| k == LayerKind::Segmentation),
        )
    }

    /// The 3D panel's camera for a panel of `panel` points (`None` without an open layer).
    pub(super) fn three_d_camera(&self, panel: [f32; 2]) -> Option<Camera> {
        let d = (0..self.layers.len()).find_map(|i| self.layer_data(i))?;
        let (b, e) = d.levels[0].bounds_nm();
        let extent = (0..3).map(|a| e[a] - b[a]).fold(1e-9, f64::max);
        Some(Camera {
            orbit: Orbit {
                yaw_deg: self.state.orbit_deg[0],
                pitch_deg: self.state.orbit_deg[1],
            },
            mid: std::array::from_fn(|a| (b[a] + e[a]) / 2.0),
            points_per_nm: f64::from(panel[0].min(panel[1])) * 0.45 / extent
                * self.state.orbit_zoom,
            bounds: (b, e),
        })
    }

    /// What the 3D panel draws with `camera` at `nm_per_px` from the coarse volumes read.
    pub(super) fn volume_draw(
        &self,
        camera: &Camera,
        nm_per_px: f64,
        (image, labels): (Option<Arc<CoarseVolume>>, Option<Arc<CoarseLabels>>),
    ) -> VolumeDraw {
        let (ii, li) = self.three_d_layers();
        let image = image.zip(ii).map(|(v, i)| {
            let look = match &self.state.layers[i].settings {
                LayerSettings::Image(s) => ImageLook {
                    range: s.range,
                    colormap: s.colormap,
                    invert: s.invert,
                },
                LayerSettings::Prediction(s) => ImageLook {
                    range: s.range,
                    colormap: s.colormap,
                    invert: false,
                },
                LayerSettings::Segmentation(_) => ImageLook {
                    range: [0.0, 1.0],
                    colormap: Colormap::Grey,
                    invert: false,
                },
            };
            (v, look)
        });
        let labels = labels.zip(li).map(|(v, i)| {
            let look = match &self.state.layers[i].settings {
                LayerSettings::Segmentation(s) => LabelLook {
                    selected: s.selected.clone(),
                    color_seed: s.color_seed,
                    alpha: s.unselected_alpha,
                },
                _ => LabelLook {
                    selected: Vec::new(),
                    color_seed: 0,
                    alpha: 0.5,
                },
            };
            (v, look)
        });
        VolumeDraw {
            orbit: camera.orbit,
            centre_nm: camera.mid,
            nm_per_px,
            image,
            labels,
            planes: Some((self.state.position_nm.0, self.state.orientation)),
        }
    }

    /// What the 3D panel of `panel` pixels draws in an image of `image` pixels (the same
    /// shape), its volumes read now (for screenshots and benchmarks); `None` without an
    /// open layer, or the error reading a volume.
    pub fn three_d_draw_now(
        &self,
        panel: [u32; 2],
        image: [u32; 2],
    ) -> Option<Result<VolumeDraw, String>> {
        let camera = self.three_d_camera([panel[0] as f32, panel[1] as f32])?;
        let nm_per_px = f64::from(panel[0]) / f64::from(image[0].max(1)) / camera.points_per_nm;
        let (ii, li) = self.three_d_layers();
        let read = || -> Result<VolumeDraw, String> {
            let image = match ii.and_then(|i| self.layer_data(i)) {
                Some(d) => Some(Arc::new(crate::render::volume::read_coarse(d)?)),
                None => None,
            };
            let labels = match li.and_then(|i| self.layer_data(i)) {
                Some(d) => Some(Arc::new(crate::render::volume::read_coarse_labels(d)?)),
                None => None,
            };
            Ok(self.volume_draw(&camera, nm_per_px, (image, labels)))
        };
        Some(read())
    }

    /// The 3D panel's volumes once read (reading them off the UI thread when its layers
    /// changed).
    fn three_d_volumes(
        &mut self,
        ctx: &egui::Context,
    ) -> (Option<Arc<CoarseVolume>>, Option<Arc<CoarseLabels>>) {
        let (ii, li) = self.three_d_layers();
        let with_uid = |i: Option<usize>| {
            i.and_then(|i| {
                let l = self.layers.get(i)?;
                Some((Arc::clone(l.data.as_ref().ok()?), l.uid))
            })
        };
        let (image, labels) = (with_uid(ii), with_uid(li));
        let waker = ctx.clone();
        self.volume_job.volumes(
            image.as_ref().map(|(d, u)| (d, *u)),
            labels.as_ref().map(|(d, u)| (d, *u)),
            Arc::new(move || waker.request_repaint()),
        )
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
        if response.hovered() {
            // The wheel zooms the 3D view (about its centre).
            let wheels: Vec<f32> = ui.ctx().input(|i| {
                i.raw
                    .events
                    .iter()
                    .filter_map(|e| match e {
                        egui::Event::MouseWheel { delta, .. } => {
                            Some(if delta.y != 0.0 { delta.y } else { delta.x })
                        }
                        _ => None,
                    })
                    .filter(|d| *d != 0.0)
                    .collect()
            });
            for d in wheels {
                let factor = if d > 0.0 { 1.1 } else { 1.0 / 1.1 };
                self.state.orbit_zoom = (self.state.orbit_zoom * factor).clamp(0.1, 50.0);
            }
        }
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, egui::Color32::BLACK);
        let Some(camera) = self.three_d_camera([rect.width(), rect.height()]) else {
            return;
        };
        let volumes = self.three_d_volumes(ui.ctx());
        let ppp = ui.ctx().pixels_per_point();
        let (w_px, h_px) = (rect.width() * ppp, rect.height() * ppp);
        let cap = if self.uses_gpu() {
            crate::render::gpu_volume::VOLUME_MAX_PX as f32
        } else {
            CPU_VOLUME_MAX_PX
        };
        let size = crate::render::gpu_volume::image_size(w_px, h_px, cap as u32);
        // One image pixel spans this many points.
        let points_per_px = f64::from(rect.width()) / f64::from(size.0);
        let mut draw = self.volume_draw(&camera, points_per_px / camera.points_per_nm, volumes);
        // While the view moves, the planes drawn in 3D wait for it to settle (their
        // outlines below follow at once).
        if let Some(planes) = draw.planes {
            let (shown, wait) = self
                .three_d_planes
                .update(planes, std::time::Instant::now());
            draw.planes = Some(shown);
            if let Some(wait) = wait {
                ui.ctx().request_repaint_after(wait);
            }
        }
        if self.uses_gpu() {
            painter.add(egui_wgpu::Callback::new_paint_callback(
                rect,
                VolumeCallback { draw, size },
            ));
        } else {
            let waker = ui.ctx().clone();
            if let Some(img) = self.volume_job.render_cpu(
                &draw,
                (size.0 as usize, size.1 as usize),
                Arc::new(move || waker.request_repaint()),
            ) {
                let img =
                    egui::ColorImage::from_rgba_unmultiplied([img.width, img.height], &img.rgba);
                match &mut self.volume_texture {
                    Some(h) => h.set(img, egui::TextureOptions::LINEAR),
                    None => {
                        self.volume_texture = Some(ui.ctx().load_texture(
                            "segno-3d",
                            img,
                            egui::TextureOptions::LINEAR,
                        ))
                    }
                }
            }
            if let Some(h) = &self.volume_texture {
                painter.image(
                    h.id(),
                    rect,
                    egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                    egui::Color32::WHITE,
                );
            }
        }
        painter.text(
            rect.min + egui::vec2(6.0, 4.0),
            egui::Align2::LEFT_TOP,
            "3d",
            egui::FontId::proportional(13.0),
            egui::Color32::from_gray(230),
        );
        let too_many = self
            .three_d_layers()
            .1
            .and_then(|i| match &self.state.layers[i].settings {
                LayerSettings::Segmentation(s) => Some(s.selected.len()),
                _ => None,
            })
            .filter(|n| *n > crate::render::volume_render::MAX_SELECTED_3D)
            .map(|n| {
                format!(
                    "3D view: the first {} of {n} selected segments",
                    crate::render::volume_render::MAX_SELECTED_3D
                )
            });
        if let Some(m) = self.volume_job.error().map(str::to_string).or(too_many) {
            painter.text(
                rect.left_bottom() + egui::vec2(6.0, -4.0),
                egui::Align2::LEFT_BOTTOM,
                m,
                egui::FontId::proportional(12.0),
                ui.visuals().error_fg_color,
            );
        }
        self.outline_planes(&painter, rect, &camera);
    }

    /// Outlines the volume's box, the Apply section's regions and the three planes.
    fn outline_planes(&self, painter: &egui::Painter, rect: egui::Rect, camera: &Camera) {
        let (b, e) = camera.bounds;
        let (orbit, mid, scale) = (camera.orbit, camera.mid, camera.points_per_nm);
        let centre = rect.center();
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
                let cut = crate::render::oblique::plane_cut(
                    b,
                    e,
                    pos,
                    o.axis(axis),
                    o.axis((axis + 1) % 3),
                );
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
}
