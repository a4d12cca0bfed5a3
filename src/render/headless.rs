//! Rendering without a window: panels, gathered panels and the 3D panel drawn offscreen
//! into an image and read back, with the time each step took (for screenshots, tests and
//! benchmarks).

use std::sync::Arc;

use eframe::wgpu;

use super::gpu::{GatheredContent, GpuError, PanelGpu, SliceRenderer};
use super::gpu_gather::{GatherRenderer, GpuStoreStats};
use super::shade::{GpuUniforms, PanelTextures};

/// A wgpu device without a window (for screenshots and benchmarks).
pub struct Headless {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter's name and backend, for reports.
    pub adapter: String,
    renderer: SliceRenderer,
    /// Panel resources of the last render, with the textures they hold: unchanged
    /// textures are not uploaded again.
    panels: std::sync::Mutex<Vec<(Arc<PanelTextures>, Option<PanelGpu>)>>,
    /// The image rendered into and its readback buffer.
    target: std::sync::Mutex<Option<Target>>,
    /// The 3D panel's ray caster (made on first use).
    volume: std::sync::Mutex<Option<super::gpu_volume::VolumeRenderer>>,
    /// The gather renderer and the panel resources of gathered renders.
    #[allow(clippy::type_complexity)]
    gathered: std::sync::Mutex<(
        GatherRenderer,
        Vec<(Option<Arc<GatheredContent>>, Option<PanelGpu>)>,
    )>,
}

impl Headless {
    /// Opens the first adapter wgpu finds (lavapipe or llvmpipe when there is no GPU).
    pub fn new() -> Result<Headless, GpuError> {
        let instance = wgpu::Instance::default();
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoDevice(e.to_string()))?;
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("segno headless"),
            required_features: wgpu::Features::empty(),
            required_limits: wgpu::Limits {
                // Chunks live in 3D textures (see gpu_gather).
                max_texture_dimension_3d: adapter.limits().max_texture_dimension_3d,
                ..wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits())
            },
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoDevice(e.to_string()))?;
        let renderer = SliceRenderer::new(&device, &queue, wgpu::TextureFormat::Rgba8Unorm);
        let gather = GatherRenderer::new(&device, super::gpu_gather::DEFAULT_GPU_CACHE_BYTES);
        Ok(Headless {
            volume: std::sync::Mutex::new(None),
            gathered: std::sync::Mutex::new((gather, Vec::new())),
            device,
            queue,
            adapter: format!("{} ({:?})", info.name, info.backend),
            renderer,
            panels: std::sync::Mutex::new(Vec::new()),
            target: std::sync::Mutex::new(None),
        })
    }

    /// How many specialised slice pipelines this renderer has built.
    pub fn pipelines_built(&self) -> usize {
        self.renderer.pipelines_built()
    }

    /// Renders panels into a `width` × `height` RGBA image (row-major, 4 bytes a pixel);
    /// each panel is drawn in its rectangle `[x, y, w, h]` (pixels), the rest is black.
    pub fn render(
        &self,
        width: u32,
        height: u32,
        panels: &[([u32; 4], GpuUniforms, Arc<PanelTextures>)],
    ) -> Result<Vec<u8>, GpuError> {
        self.render_timed(width, height, panels, true)
            .map(|(pixels, _)| pixels)
    }

    /// Like [`Headless::render`], timing its three steps; without `read_back` the image is
    /// drawn but not copied out (an empty vector is returned).
    pub fn render_timed(
        &self,
        width: u32,
        height: u32,
        panels: &[([u32; 4], GpuUniforms, Arc<PanelTextures>)],
        read_back: bool,
    ) -> Result<(Vec<u8>, RenderTimes), GpuError> {
        let poisoned = || GpuError::Readback("a render panicked".into());
        let mut held = self.panels.lock().map_err(|_| poisoned())?;
        held.resize_with(panels.len(), || (Arc::new(PanelTextures::default()), None));
        let rects: Vec<[u32; 4]> = panels.iter().map(|(r, _, _)| *r).collect();
        self.frame(width, height, read_back, &rects, |encoder| {
            for ((_, u, t), (last, slot)) in panels.iter().zip(held.iter_mut()) {
                match slot {
                    Some(p) if Arc::ptr_eq(last, t) => {
                        self.renderer
                            .upload_uniforms(&self.device, &self.queue, p, u)
                    }
                    _ => {
                        self.renderer.upload(&self.device, &self.queue, slot, u, t);
                        *last = Arc::clone(t);
                    }
                }
                if let Some(p) = slot.as_mut() {
                    self.renderer.colour(&self.device, encoder, p);
                }
            }
            held.iter().map(|(_, p)| p.as_ref()).collect()
        })
    }

    /// Renders panels gathered from chunks on the GPU (see [`GatheredPanel`]), timing the
    /// steps as [`Headless::render_timed`] does: uploads are the chunks new to GPU memory,
    /// the voxel tables and the uniforms; drawing is the gather passes and the colouring.
    pub fn render_gathered(
        &self,
        width: u32,
        height: u32,
        panels: &[GatheredPanel],
        read_back: bool,
    ) -> Result<(Vec<u8>, RenderTimes), GpuError> {
        let poisoned = || GpuError::Readback("a render panicked".into());
        let mut guard = self.gathered.lock().map_err(|_| poisoned())?;
        let (gather, held) = &mut *guard;
        held.resize_with(panels.len(), || (None, None));
        gather.store.begin_frame();
        let rects: Vec<[u32; 4]> = panels.iter().map(|p| p.rect).collect();
        self.frame(width, height, read_back, &rects, |encoder| {
            for (i, (p, (last, slot))) in panels.iter().zip(held.iter_mut()).enumerate() {
                match slot {
                    // The same contents as last time: the textures hold them already.
                    Some(gpu) if last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &p.content)) => {
                        self.renderer
                            .upload_uniforms(&self.device, &self.queue, gpu, &p.uniforms);
                    }
                    _ => {
                        gather.draw_content(
                            &self.renderer,
                            &self.device,
                            &self.queue,
                            encoder,
                            i as u64,
                            slot,
                            &p.content,
                            &p.uniforms,
                        );
                        *last = Some(Arc::clone(&p.content));
                    }
                }
                if let Some(gpu) = slot.as_mut() {
                    self.renderer.colour(&self.device, encoder, gpu);
                }
            }
            held.iter().map(|(_, p)| p.as_ref()).collect()
        })
    }

    /// The 3D panel's image of `draw`, made at `width` × `height` pixels on the GPU (RGBA,
    /// row-major), with how many ray casts the renderer has done in all (a view whose
    /// camera, volumes and looks did not change is not cast again).
    pub fn render_volume(
        &self,
        draw: &super::volume_render::VolumeDraw,
        width: u32,
        height: u32,
    ) -> Result<(Vec<u8>, u64), GpuError> {
        let poisoned = || GpuError::Readback("a render panicked".into());
        let mut volume = self.volume.lock().map_err(|_| poisoned())?;
        let renderer = volume.get_or_insert_with(|| {
            super::gpu_volume::VolumeRenderer::new(&self.device, wgpu::TextureFormat::Rgba8Unorm)
        });
        let mut target = self.target.lock().map_err(|_| poisoned())?;
        if target.as_ref().is_none_or(|t| t.size != (width, height)) {
            *target = Some(Target::new(&self.device, width, height));
        }
        let Some(target) = target.as_ref() else {
            return Err(poisoned());
        };
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        renderer.prepare(
            &self.device,
            &self.queue,
            &mut encoder,
            draw,
            (width, height),
        );
        {
            let mut pass = cleared_pass(&mut encoder, &target.view, "segno offscreen 3D pass");
            renderer.paint(&mut pass);
        }
        self.queue.submit([encoder.finish()]);
        let pixels = target.read_back(&self.device, &self.queue, width, height)?;
        if let Some(e) = &renderer.error {
            return Err(GpuError::Volume(e.clone()));
        }
        Ok((pixels, renderer.renders))
    }

    /// What the GPU chunk store of [`Headless::render_gathered`] holds and did.
    pub fn gpu_store_stats(&self) -> GpuStoreStats {
        self.gathered
            .lock()
            .map(|g| g.0.store.stats())
            .unwrap_or_default()
    }

    /// Pixels the slice shader has coloured in the panels of [`Headless::render_gathered`]
    /// (a frame in which nothing changed colours none; a pan, the pixels that came into
    /// view).
    pub fn gathered_coloured_px(&self) -> u64 {
        self.gathered
            .lock()
            .map(|g| {
                g.1.iter()
                    .filter_map(|(_, p)| p.as_ref())
                    .map(|p| p.coloured_px)
                    .sum()
            })
            .unwrap_or_default()
    }

    /// Sets the byte budget of the GPU chunk store.
    pub fn set_gpu_budget(&self, budget_bytes: u64) {
        if let Ok(mut g) = self.gathered.lock() {
            g.0.store.set_budget(budget_bytes);
        }
    }

    /// One offscreen frame: `prepare` uploads and records what must run before the
    /// colouring pass (into the encoder it is given) and returns the panels to colour in
    /// `rects`; then the pass, and the read back.
    fn frame<'a>(
        &self,
        width: u32,
        height: u32,
        read_back: bool,
        rects: &[[u32; 4]],
        prepare: impl FnOnce(&mut wgpu::CommandEncoder) -> Vec<Option<&'a PanelGpu>>,
    ) -> Result<(Vec<u8>, RenderTimes), GpuError> {
        let poisoned = || GpuError::Readback("a render panicked".into());
        let t0 = std::time::Instant::now();
        let mut target = self.target.lock().map_err(|_| poisoned())?;
        if target.as_ref().is_none_or(|t| t.size != (width, height)) {
            *target = Some(Target::new(&self.device, width, height));
        }
        let Some(target) = target.as_ref() else {
            return Err(poisoned());
        };
        let wait = |what: &str| {
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map(|_| ())
                .map_err(|e| GpuError::Readback(format!("{what}: {e}")))
        };
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let gpus = prepare(&mut encoder);
        // Uploads reach the device with the first submission: time them alone.
        self.queue.submit(std::iter::empty());
        wait("uploading")?;
        let t1 = std::time::Instant::now();
        {
            let mut pass = cleared_pass(&mut encoder, &target.view, "segno offscreen pass");
            for (rect, gpu) in rects.iter().zip(&gpus) {
                let Some(gpu) = *gpu else { continue };
                let [x, y, w, h] = *rect;
                if w == 0 || h == 0 || x + w > width || y + h > height {
                    continue;
                }
                pass.set_viewport(x as f32, y as f32, w as f32, h as f32, 0.0, 1.0);
                pass.set_scissor_rect(x, y, w, h);
                self.renderer.draw(&mut pass, gpu);
            }
        }
        self.queue.submit([encoder.finish()]);
        wait("drawing")?;
        let t2 = std::time::Instant::now();
        let cpu2 = thread_cpu_ms();
        let mut out = Vec::new();
        if read_back {
            out = target.read_back(&self.device, &self.queue, width, height)?;
        }
        let t3 = std::time::Instant::now();
        let readback_cpu_ms = thread_cpu_ms() - cpu2;
        let ms = |a: std::time::Instant, b: std::time::Instant| (b - a).as_secs_f64() * 1e3;
        Ok((
            out,
            RenderTimes {
                upload_ms: ms(t0, t1),
                draw_ms: ms(t1, t2),
                readback_ms: ms(t2, t3),
                readback_cpu_ms,
            },
        ))
    }
}

/// Copies `width` × `height` texels of `size.2` bytes each from `from` into `buffer`
/// (rows `row` bytes apart, a multiple of 256) after the commands `encoder` holds, runs
/// them and returns the texels row by row without the padding.
pub(crate) fn copy_out(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    mut encoder: wgpu::CommandEncoder,
    from: wgpu::TexelCopyTextureInfo<'_>,
    (width, height, texel): (u32, u32, u32),
    (buffer, row): (&wgpu::Buffer, u32),
) -> Result<Vec<u8>, GpuError> {
    encoder.copy_texture_to_buffer(
        from,
        wgpu::TexelCopyBufferInfo {
            buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: Some(height),
            },
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
    queue.submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Readback(format!("reading back: {e}")))?;
    rx.recv()
        .map_err(|e| GpuError::Readback(e.to_string()))?
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let mapped = buffer
        .get_mapped_range(..)
        .map_err(|e| GpuError::Readback(format!("{e:?}")))?;
    let bytes = (width * texel) as usize;
    let mut out = Vec::with_capacity(bytes * height as usize);
    for y in 0..height {
        let start = (y * row) as usize;
        out.extend_from_slice(&mapped[start..start + bytes]);
    }
    drop(mapped);
    buffer.unmap();
    Ok(out)
}

/// A render pass into `view`, cleared to black first.
fn cleared_pass<'a>(
    encoder: &'a mut wgpu::CommandEncoder,
    view: &wgpu::TextureView,
    label: &str,
) -> wgpu::RenderPass<'a> {
    encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some(label),
        color_attachments: &[Some(super::gpu::cleared_attachment(view))],
        depth_stencil_attachment: None,
        timestamp_writes: None,
        occlusion_query_set: None,
        multiview_mask: None,
    })
}

/// A panel drawn from chunks on the GPU: its rectangle, uniforms (as
/// [`super::shade::pack_uniforms`] makes them) and gathered contents.
pub struct GatheredPanel {
    /// Where it is drawn: x, y, width, height in pixels.
    pub rect: [u32; 4],
    /// Its uniforms.
    pub uniforms: GpuUniforms,
    /// What is gathered into its textures.
    pub content: Arc<GatheredContent>,
}

/// Where [`Headless::render_timed`] spent its time, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RenderTimes {
    /// Uploading changed textures and uniforms (until the device has them).
    pub upload_ms: f64,
    /// Drawing the panels (until the device is done).
    pub draw_ms: f64,
    /// Copying the image back to memory.
    pub readback_ms: f64,
    /// CPU time the calling thread spent reading the image back (copying it out), ms.
    pub readback_cpu_ms: f64,
}

/// CPU time the calling thread has used, ms (0 where the system does not tell).
pub(crate) fn thread_cpu_ms() -> f64 {
    #[cfg(unix)]
    {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given; the clock id is a constant.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0 {
            return t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6;
        }
    }
    0.0
}

/// The offscreen image and the buffer it is read back through, kept between renders of
/// the same size.
struct Target {
    size: (u32, u32),
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    buffer: wgpu::Buffer,
    row: u32,
}

impl Target {
    /// Copies the image out, row by row without the padding.
    fn read_back(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        width: u32,
        height: u32,
    ) -> Result<Vec<u8>, GpuError> {
        let encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let image = wgpu::TexelCopyTextureInfo {
            texture: &self.texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        };
        copy_out(
            device,
            queue,
            encoder,
            image,
            (width, height, 4),
            (&self.buffer, self.row),
        )
    }

    fn new(device: &wgpu::Device, width: u32, height: u32) -> Self {
        let texture = super::gpu::texture_2d(
            device,
            "segno offscreen",
            (width, height),
            wgpu::TextureFormat::Rgba8Unorm,
            wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        );
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let row = (width * 4).div_ceil(256) * 256;
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("segno readback"),
            size: u64::from(row * height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        Self {
            size: (width, height),
            texture,
            view,
            buffer,
            row,
        }
    }
}
