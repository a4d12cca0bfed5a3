//! A panel's colours kept between frames: the slice shader colours a texture of the
//! panel's size, only where the values or the uniforms changed since (after a pan, the
//! colours move with the values), and `shaders/panel_blit.wgsl` shows it every frame.

use eframe::wgpu;

use super::{PanelGpu, SliceRenderer};
use crate::render::shade::GpuUniforms;
use crate::render::slice::PixelRect;

/// What of a panel's colours must be drawn again before it is shown.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Recolour {
    /// Nothing: the values and statuses are those last coloured.
    Nothing,
    /// Every pixel.
    All,
    /// The values moved by `shift` (as [`SliceRenderer::shift_panel`] moves them) and
    /// `rects` were drawn anew.
    Moved {
        /// Pixel (x, y) now shows what pixel (x + dx, y + dy) showed.
        shift: (i64, i64),
        /// The pixels gathered anew.
        rects: Vec<PixelRect>,
    },
}

impl Recolour {
    /// After the values moved by `shift`: their colours move too unless a pixel's colour
    /// depends on its place or its neighbours (see [`moves_with_its_values`]; `hatched`:
    /// a failed chunk's hatching is in view, at fixed pixels). The rectangles gathered
    /// anew are added to the result as they are drawn.
    pub(crate) fn after_pan(shift: (i64, i64), uniforms: &GpuUniforms, hatched: bool) -> Self {
        if hatched || !moves_with_its_values(uniforms) {
            Recolour::All
        } else {
            Recolour::Moved {
                shift,
                rects: Vec::new(),
            }
        }
    }

    /// This and then `next`.
    pub(crate) fn then(self, next: Recolour) -> Recolour {
        match (self, next) {
            (Recolour::Nothing, n) => n,
            (s, Recolour::Nothing) => s,
            _ => Recolour::All,
        }
    }
}

/// A panel's colours as last drawn by the slice shader: two textures, so that a pan moves
/// them from one into the other, each with the bind group that shows it.
pub(super) struct Colours {
    textures: [wgpu::Texture; 2],
    views: [wgpu::TextureView; 2],
    blit_groups: [wgpu::BindGroup; 2],
    origin: wgpu::Buffer,
    current: usize,
}

impl SliceRenderer {
    /// Shows `panel`'s colours (drawn by [`SliceRenderer::colour`]) in the current
    /// viewport of `pass`.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, panel: &PanelGpu) {
        let Some(c) = panel.colours.as_ref() else {
            return;
        };
        pass.set_pipeline(&self.blit_pipeline);
        pass.set_bind_group(0, &c.blit_groups[c.current], &[]);
        pass.draw(0..3, 0..1);
    }

    /// Draws with the slice shader what changed of `panel`'s colours since they were last
    /// drawn: nothing when neither its values nor its uniforms changed; after a pan, the
    /// colours moved along with the values and only the pixels gathered anew and the
    /// cross-hairs coloured; every pixel otherwise (and always where a pixel's colour may
    /// depend on its place or on its neighbours: hatched failed chunks, pending blocks,
    /// linear sampling, the error overlay).
    pub fn colour(
        &self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        panel: &mut PanelGpu,
    ) {
        let Some((_, pipeline)) = panel.pipeline.as_ref() else {
            return;
        };
        let Some(uniforms) = panel.uploaded else {
            return;
        };
        let [w, h, ..] = panel.dims;
        let full = PixelRect {
            x0: 0,
            y0: 0,
            width: w,
            height: h,
        };
        let recolour = std::mem::replace(&mut panel.recolour, Recolour::Nothing);
        let fresh = panel.colours.is_none() || panel.coloured_with != Some(uniforms);
        if panel.colours.is_none() {
            panel.colours = Some(self.create_colours(device, panel));
        }
        let Some(colours) = panel.colours.as_mut() else {
            return;
        };
        let rects = match recolour {
            _ if fresh => vec![full],
            Recolour::Nothing => return,
            Recolour::All => vec![full],
            Recolour::Moved { shift, rects } => {
                if shift != (0, 0) {
                    let (from, to) = (colours.current, 1 - colours.current);
                    copy_shifted(
                        encoder,
                        (&colours.textures[from], &colours.textures[to]),
                        (w, h, 1),
                        shift,
                    );
                    colours.current = to;
                }
                let mut rects = rects;
                rects.extend(cross_hair_rects(&uniforms, (w, h), shift));
                // The layers' rectangles are mostly the same ones.
                rects.sort_by_key(|r| (r.y0, r.x0, r.height, r.width));
                rects.dedup();
                rects
            }
        };
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("segno panel colours pass"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &colours.views[colours.current],
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Load,
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &panel.sets[panel.current].bind_group, &[]);
        for r in rects {
            let x1 = (r.x0 + r.width).min(w);
            let y1 = (r.y0 + r.height).min(h);
            if r.x0 >= x1 || r.y0 >= y1 {
                continue;
            }
            pass.set_scissor_rect(r.x0, r.y0, x1 - r.x0, y1 - r.y0);
            pass.draw(0..3, 0..1);
            panel.coloured_px += u64::from((x1 - r.x0) * (y1 - r.y0));
        }
        drop(pass);
        panel.coloured_with = Some(uniforms);
    }

    fn create_colours(&self, device: &wgpu::Device, panel: &PanelGpu) -> Colours {
        let [w, h, ..] = panel.dims;
        let make = || {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some("segno panel colours"),
                size: wgpu::Extent3d {
                    width: w,
                    height: h,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: self.format,
                usage: wgpu::TextureUsages::TEXTURE_BINDING
                    | wgpu::TextureUsages::RENDER_ATTACHMENT
                    | wgpu::TextureUsages::COPY_SRC
                    | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        };
        let textures = [make(), make()];
        let views =
            [0, 1].map(|i| textures[i].create_view(&wgpu::TextureViewDescriptor::default()));
        let origin = wgpu::util::DeviceExt::create_buffer_init(
            device,
            &wgpu::util::BufferInitDescriptor {
                label: Some("segno panel origin"),
                contents: bytemuck::cast_slice(&[panel.origin[0], panel.origin[1], 0.0, 0.0]),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            },
        );
        let blit_groups = [0, 1].map(|i| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("segno panel colours bind group"),
                layout: &self.blit_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: origin.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(&views[i]),
                    },
                ],
            })
        });
        Colours {
            textures,
            views,
            blit_groups,
            origin,
            current: 0,
        }
    }
}

impl Colours {
    /// Places the colours at `origin` (physical pixels) when shown.
    pub(super) fn write_origin(&self, queue: &wgpu::Queue, origin: [f32; 2]) {
        queue.write_buffer(
            &self.origin,
            0,
            bytemuck::cast_slice(&[origin[0], origin[1], 0.0, 0.0]),
        );
    }
}

/// Whether a pixel's colour depends only on its own values and statuses and the uniforms,
/// so that colours may move with the values when a panel pans: not with the error overlay
/// (it outlines regions by their neighbours), linear sampling (it reads neighbouring
/// pixels) or pending blocks (lines at fixed pixels).
fn moves_with_its_values(u: &GpuUniforms) -> bool {
    let layers = (u.counts[0] as usize).min(u.layers.len());
    u.counts[1] == 0
        && u.layers[..layers]
            .iter()
            .all(|l| l.sampling == [0.0; 4] && l.hover[3] == 0)
}

/// The cross-hairs' lines, where they are drawn and where the pan moved them to, with a
/// pixel to spare on each side.
fn cross_hair_rects(u: &GpuUniforms, (w, h): (u32, u32), (dx, dy): (i64, i64)) -> Vec<PixelRect> {
    if u.cross[2] != 1.0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (at, moved_by) in [(u.cross[0], dx), (u.cross[0], 0)] {
        let x = (at.floor() as i64 - moved_by - 1).clamp(0, i64::from(w)) as u32;
        out.push(PixelRect {
            x0: x,
            y0: 0,
            width: 3.min(w - x),
            height: h,
        });
    }
    for (at, moved_by) in [(u.cross[1], dy), (u.cross[1], 0)] {
        let y = (at.floor() as i64 - moved_by - 1).clamp(0, i64::from(h)) as u32;
        out.push(PixelRect {
            x0: 0,
            y0: y,
            width: w,
            height: 3.min(h - y),
        });
    }
    out
}

/// Copies the `layers` layers of texture `from` into `to` (both `w` × `h`) moved by
/// `shift`: pixel (x, y) of `to` is pixel (x + dx, y + dy) of `from`; pixels that came into
/// view keep what `to` held.
pub(super) fn copy_shifted(
    encoder: &mut wgpu::CommandEncoder,
    (from, to): (&wgpu::Texture, &wgpu::Texture),
    (w, h, layers): (u32, u32, u32),
    (dx, dy): (i64, i64),
) {
    let (width, height) = (i64::from(w) - dx.abs(), i64::from(h) - dy.abs());
    if width <= 0 || height <= 0 {
        return;
    }
    encoder.copy_texture_to_texture(
        wgpu::TexelCopyTextureInfo {
            texture: from,
            mip_level: 0,
            origin: wgpu::Origin3d {
                x: dx.max(0) as u32,
                y: dy.max(0) as u32,
                z: 0,
            },
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyTextureInfo {
            texture: to,
            mip_level: 0,
            origin: wgpu::Origin3d {
                x: (-dx).max(0) as u32,
                y: (-dy).max(0) as u32,
                z: 0,
            },
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::Extent3d {
            width: width as u32,
            height: height as u32,
            depth_or_array_layers: layers,
        },
    );
}
