//! The wgpu side of the cross-sections: pipelines running the slice shader specialised per
//! combination of layer kinds (`render::shader`, built once and cached), per-panel textures
//! and uniforms, drawing inside egui (a paint callback) or offscreen into an RGBA image
//! (screenshots without a window, benchmarks).

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui_wgpu;
use eframe::wgpu;

use super::colors::Colormap;
use super::gather::GatherPlan;
use super::gpu_gather::{GatherRenderer, GpuStorePublished, GpuStoreStats};
use super::shade::{GpuUniforms, PanelTextures};
use super::shader::ShaderKey;

/// Errors of the headless renderer.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter or device (no Vulkan/GL driver, not even a software one).
    #[error("no GPU renderer available: {0}")]
    NoDevice(String),
    /// Reading the rendered image back failed.
    #[error("cannot read the rendered image back: {0}")]
    Readback(String),
    /// A 3D view's volume cannot be drawn on this device.
    #[error("the 3D view: {0}")]
    Volume(String),
}

/// The pipelines (one per shader key, built on first use) and the colormap table, shared
/// by every panel.
pub struct SliceRenderer {
    pipelines: std::sync::Mutex<HashMap<ShaderKey, wgpu::RenderPipeline>>,
    pipeline_layout: wgpu::PipelineLayout,
    format: wgpu::TextureFormat,
    layout: wgpu::BindGroupLayout,
    lut_view: wgpu::TextureView,
}

/// One panel's GPU resources, reused while its size and layer counts stay the same.
pub struct PanelGpu {
    uniforms: wgpu::Buffer,
    /// The value and status textures drawn from (`sets[current]`); gathered panels that
    /// pan keep a second set to move the pixels into.
    sets: Vec<TextureSet>,
    current: usize,
    dims: [u32; 5],
    /// The pipeline for the last uniforms' key.
    pipeline: Option<(ShaderKey, wgpu::RenderPipeline)>,
    /// The id of the gathered contents the textures hold, and whether every chunk of
    /// them was in GPU memory.
    pub(crate) gathered: Option<(u64, bool)>,
}

/// A panel's value and status textures with the bind group that reads them.
struct TextureSet {
    bind_group: wgpu::BindGroup,
    floats: wgpu::Texture,
    labels: wgpu::Texture,
    status: wgpu::Texture,
}

fn texture_entry(
    binding: u32,
    sample_type: wgpu::TextureSampleType,
    dim: wgpu::TextureViewDimension,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type,
            view_dimension: dim,
            multisampled: false,
        },
        count: None,
    }
}

impl SliceRenderer {
    /// Builds the pipeline for render targets of `format`, and uploads the colormaps.
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue, format: wgpu::TextureFormat) -> Self {
        let arr = wgpu::TextureViewDimension::D2Array;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("segno slice bind group"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                texture_entry(1, wgpu::TextureSampleType::Float { filterable: false }, arr),
                texture_entry(2, wgpu::TextureSampleType::Uint, arr),
                texture_entry(3, wgpu::TextureSampleType::Uint, arr),
                texture_entry(
                    4,
                    wgpu::TextureSampleType::Float { filterable: false },
                    wgpu::TextureViewDimension::D2,
                ),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("segno slice pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let lut: Vec<u8> = Colormap::ALL
            .iter()
            .flat_map(|c| c.lut().into_iter().flatten())
            .collect();
        let lut_tex = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("segno colormaps"),
            size: wgpu::Extent3d {
                width: 256,
                height: Colormap::ALL.len() as u32,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        write_layers(
            queue,
            &lut_tex,
            &lut,
            256 * 4,
            256,
            Colormap::ALL.len() as u32,
            1,
        );
        let lut_view = lut_tex.create_view(&wgpu::TextureViewDescriptor::default());
        Self {
            pipelines: std::sync::Mutex::new(HashMap::new()),
            pipeline_layout,
            format,
            layout,
            lut_view,
        }
    }

    /// The pipeline drawing panels of `key`, built (shader compiled) the first time.
    pub fn pipeline(&self, device: &wgpu::Device, key: &ShaderKey) -> wgpu::RenderPipeline {
        let mut cache = self
            .pipelines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = cache.get(key) {
            return p.clone();
        }
        let started = std::time::Instant::now();
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("segno slice shader"),
            source: wgpu::ShaderSource::Wgsl(key.wgsl().into()),
        });
        let pipeline = fullscreen_pipeline(
            device,
            "segno slice pipeline",
            &self.pipeline_layout,
            &shader,
            "fs_main",
            &[Some(wgpu::ColorTargetState {
                format: self.format,
                blend: None,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        );
        tracing::debug!(
            layers = key.layers.len(),
            overlay = key.overlay.is_some(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "built a slice pipeline"
        );
        cache.insert(key.clone(), pipeline.clone());
        pipeline
    }

    /// How many specialised pipelines have been built.
    pub fn pipelines_built(&self) -> usize {
        self.pipelines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Uploads a panel's textures and uniforms into `panel` (re-created when its size or
    /// layer counts changed).
    pub fn upload(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        panel: &mut Option<PanelGpu>,
        uniforms: &GpuUniforms,
        tex: &PanelTextures,
    ) {
        let dims = [
            tex.width.max(1),
            tex.height.max(1),
            tex.float_layers.max(1),
            tex.label_layers.max(1),
            tex.status_layers.max(1),
        ];
        if panel.as_ref().is_none_or(|p| p.dims != dims) {
            *panel = Some(self.create_panel(device, dims));
        }
        let Some(p) = panel.as_mut() else { return };
        self.upload_uniforms(device, queue, p, uniforms);
        update_textures(queue, p, tex);
    }

    /// Uniforms only (the cross-hair moved, a colour changed, the textures did not), and
    /// the pipeline for their key.
    pub fn upload_uniforms(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        panel: &mut PanelGpu,
        uniforms: &GpuUniforms,
    ) {
        queue.write_buffer(&panel.uniforms, 0, bytemuck::bytes_of(uniforms));
        let key = ShaderKey::of(uniforms);
        if panel.pipeline.as_ref().is_none_or(|(k, _)| *k != key) {
            let pipeline = self.pipeline(device, &key);
            panel.pipeline = Some((key, pipeline));
        }
    }

    fn create_panel(&self, device: &wgpu::Device, dims: [u32; 5]) -> PanelGpu {
        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("segno slice uniforms"),
            size: std::mem::size_of::<GpuUniforms>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let set = self.create_set(device, dims, &uniforms);
        PanelGpu {
            uniforms,
            sets: vec![set],
            current: 0,
            dims,
            pipeline: None,
            gathered: None,
        }
    }

    fn create_set(
        &self,
        device: &wgpu::Device,
        dims: [u32; 5],
        uniforms: &wgpu::Buffer,
    ) -> TextureSet {
        let make = |label: &str, format: wgpu::TextureFormat, layers: u32| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d {
                    width: dims[0],
                    height: dims[1],
                    depth_or_array_layers: layers,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                // Written by uploads (slices composed on the CPU), by gather passes, and
                // copied between sets when a gathered panel pans.
                usage: wgpu::TextureUsages::TEXTURE_BINDING
                    | wgpu::TextureUsages::COPY_DST
                    | wgpu::TextureUsages::COPY_SRC
                    | wgpu::TextureUsages::RENDER_ATTACHMENT,
                view_formats: &[],
            })
        };
        let floats = make("segno floats", wgpu::TextureFormat::R32Float, dims[2]);
        let labels = make("segno labels", wgpu::TextureFormat::Rg32Uint, dims[3]);
        let status = make("segno status", wgpu::TextureFormat::R8Uint, dims[4]);
        let array_view = |t: &wgpu::Texture| {
            t.create_view(&wgpu::TextureViewDescriptor {
                dimension: Some(wgpu::TextureViewDimension::D2Array),
                ..Default::default()
            })
        };
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("segno slice bind group"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniforms.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&array_view(&floats)),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::TextureView(&array_view(&labels)),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::TextureView(&array_view(&status)),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: wgpu::BindingResource::TextureView(&self.lut_view),
                },
            ],
        });
        TextureSet {
            bind_group,
            floats,
            labels,
            status,
        }
    }

    /// Moves `panel`'s pixels by `shift` (pixel (x, y) afterwards is pixel (x + dx, y + dy)
    /// before) into its other texture set, which becomes the one drawn from; pixels that
    /// came into view hold whatever the set held before.
    pub fn shift_panel(
        &self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        panel: &mut PanelGpu,
        (dx, dy): (i64, i64),
    ) {
        if panel.sets.len() < 2 {
            let set = self.create_set(device, panel.dims, &panel.uniforms);
            panel.sets.push(set);
        }
        let (from, to) = (panel.current, 1 - panel.current);
        let [w, h, ..] = panel.dims;
        let (w, h) = (i64::from(w), i64::from(h));
        let (width, height) = (w - dx.abs(), h - dy.abs());
        if width > 0 && height > 0 {
            let src = (dx.max(0) as u32, dy.max(0) as u32);
            let dst = ((-dx).max(0) as u32, (-dy).max(0) as u32);
            let pick = |s: &TextureSet, i: usize| match i {
                0 => s.floats.clone(),
                1 => s.labels.clone(),
                _ => s.status.clone(),
            };
            // Not the last status layer: the overlay's flags are counted anew after the
            // layers are gathered (or, without compute shaders, written whole before this
            // copy runs: queue writes precede the frame's commands).
            let status = panel.dims[4].saturating_sub(1).max(1);
            for (i, layers) in [panel.dims[2], panel.dims[3], status]
                .into_iter()
                .enumerate()
            {
                let (a, b) = (pick(&panel.sets[from], i), pick(&panel.sets[to], i));
                encoder.copy_texture_to_texture(
                    wgpu::TexelCopyTextureInfo {
                        texture: &a,
                        mip_level: 0,
                        origin: wgpu::Origin3d {
                            x: src.0,
                            y: src.1,
                            z: 0,
                        },
                        aspect: wgpu::TextureAspect::All,
                    },
                    wgpu::TexelCopyTextureInfo {
                        texture: &b,
                        mip_level: 0,
                        origin: wgpu::Origin3d {
                            x: dst.0,
                            y: dst.1,
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
        }
        panel.current = to;
    }

    /// Makes `panel`'s resources for textures of `dims` (width, height, float, label and
    /// status layers) unless it has them, and uploads the uniforms.
    pub fn prepare_panel(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        panel: &mut Option<PanelGpu>,
        dims: [u32; 5],
        uniforms: &GpuUniforms,
    ) {
        let dims = dims.map(|d| d.max(1));
        if panel.as_ref().is_none_or(|p| p.dims != dims) {
            *panel = Some(self.create_panel(device, dims));
        }
        if let Some(p) = panel.as_mut() {
            self.upload_uniforms(device, queue, p, uniforms);
        }
    }

    /// Draws `panel` into the current viewport of `pass`.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, panel: &PanelGpu) {
        let Some((_, pipeline)) = panel.pipeline.as_ref() else {
            return;
        };
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &panel.sets[panel.current].bind_group, &[]);
        pass.draw(0..3, 0..1);
    }
}

impl PanelGpu {
    /// The textures a gather pass writes: the label or float values, and the statuses.
    pub fn gather_targets(&self, labels: bool) -> (&wgpu::Texture, &wgpu::Texture) {
        let set = &self.sets[self.current];
        (if labels { &set.labels } else { &set.floats }, &set.status)
    }

    /// Width, height, float, label and status layers of its textures.
    pub fn dims(&self) -> [u32; 5] {
        self.dims
    }

    /// Uploads the status layer `layer` (the overlay's split/merge flags, counted on the
    /// CPU where the device has no compute shaders) alone.
    pub fn write_status_layer(&self, queue: &wgpu::Queue, layer: u32, bytes: &[u8]) {
        let [w, h, ..] = self.dims;
        if bytes.len() < (w * h) as usize || layer >= self.dims[4] {
            return;
        }
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.sets[self.current].status,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: 0,
                    y: 0,
                    z: layer,
                },
                aspect: wgpu::TextureAspect::All,
            },
            &bytes[..(w * h) as usize],
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(w),
                rows_per_image: Some(h),
            },
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
        );
    }
}

/// A pipeline drawing one triangle over the viewport (`vs_main`) with fragment entry
/// `entry` of `module` into `targets`.
pub(crate) fn fullscreen_pipeline(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    entry: &str,
    targets: &[Option<wgpu::ColorTargetState>],
) -> wgpu::RenderPipeline {
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: Some(layout),
        vertex: wgpu::VertexState {
            module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            targets,
        }),
        multiview_mask: None,
        cache: None,
    })
}

fn write_layers(
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    bytes: &[u8],
    bytes_per_row: u32,
    width: u32,
    height: u32,
    layers: u32,
) {
    let needed = (bytes_per_row * height * layers) as usize;
    if bytes.len() < needed {
        return;
    }
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        &bytes[..needed],
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(bytes_per_row),
            rows_per_image: Some(height),
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: layers,
        },
    );
}

fn update_textures(queue: &wgpu::Queue, panel: &PanelGpu, tex: &PanelTextures) {
    let [w, h, nf, nl, ns] = panel.dims;
    let p = &panel.sets[panel.current];
    write_layers(
        queue,
        &p.floats,
        bytemuck::cast_slice(&tex.floats),
        w * 4,
        w,
        h,
        nf,
    );
    write_layers(
        queue,
        &p.labels,
        bytemuck::cast_slice(&tex.labels),
        w * 8,
        w,
        h,
        nl,
    );
    write_layers(queue, &p.status, &tex.status, w, w, h, ns);
}

/// A panel's contents for one frame: uniforms, and textures uploaded only when their
/// version differs from what the GPU holds (frames may be built without being drawn).
#[derive(Clone)]
pub struct PanelUpload {
    /// The uniforms.
    pub uniforms: GpuUniforms,
    /// The texture contents (only their size and layer counts when `gathered`).
    pub textures: Arc<PanelTextures>,
    /// The textures' contents are gathered from chunks on the GPU instead.
    pub gathered: Option<Arc<GatheredContent>>,
    /// Changes whenever the texture contents change.
    pub version: u64,
}

/// A panel's texture contents gathered from chunks on the GPU: the texture layer counts,
/// per drawn layer the plan gathered into its texture layers, and the overlay's flags.
#[derive(Clone)]
pub struct GatheredContent {
    /// Identifies these contents among the panel's (a new plan, a new id).
    pub id: u64,
    /// The contents these were planned after, and the pan in pixels since: a panel whose
    /// textures hold those moves them and draws only each layer's `dirty` rectangles.
    pub base: Option<(u64, (i64, i64))>,
    /// Width, height, float, label and status layers of its textures.
    pub dims: [u32; 5],
    /// The drawn layers.
    pub layers: Vec<GatherLayer>,
    /// Where the overlay's split/merge flags (the last status layer) are counted from,
    /// when it highlights them.
    pub flags: Option<super::gpu_split_merge::SplitMergeSource>,
}

/// One layer of gathered contents.
#[derive(Clone)]
pub struct GatherLayer {
    /// Its status layer (its index among the drawn layers).
    pub status_layer: usize,
    /// Its first value layer (float or label texture).
    pub texture: u32,
    /// Its plan.
    pub plan: Arc<GatherPlan>,
    /// Over the `base` contents moved: the cells (and rectangles of them) to draw; `None`
    /// draws every cell.
    pub dirty: Option<Vec<(usize, super::slice::PixelRect)>>,
}

impl GatherLayer {
    /// A layer drawn whole.
    pub fn whole(status_layer: usize, texture: u32, plan: Arc<GatherPlan>) -> Self {
        Self {
            status_layer,
            texture,
            plan,
            dirty: None,
        }
    }
}

/// What the egui renderer keeps between frames: the pipeline and every panel's resources.
pub struct ViewerResources {
    /// The shared pipeline.
    pub renderer: SliceRenderer,
    /// Gathers slices from chunks in GPU memory.
    pub gather: GatherRenderer,
    /// The 3D panel's ray caster.
    pub volume: super::gpu_volume::VolumeRenderer,
    /// The last frame whose panels were prepared (the chunk store starts a frame when it
    /// changes).
    pub frame: u64,
    /// Panel resources by panel id, with the texture version they hold.
    pub panels: HashMap<u64, (u64, Option<PanelGpu>)>,
}

/// Installs the viewer's pipelines in eframe's wgpu renderer (once, at start-up), with
/// `gpu_budget_bytes` of GPU memory for chunks.
pub fn install(render_state: &egui_wgpu::RenderState, gpu_budget_bytes: u64) {
    let renderer = SliceRenderer::new(
        &render_state.device,
        &render_state.queue,
        render_state.target_format,
    );
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(ViewerResources {
            renderer,
            gather: GatherRenderer::new(&render_state.device, gpu_budget_bytes),
            volume: super::gpu_volume::VolumeRenderer::new(
                &render_state.device,
                render_state.target_format,
            ),
            frame: 0,
            panels: HashMap::new(),
        });
}

/// The paint callback of one panel.
pub struct SliceCallback {
    /// The panel's id.
    pub panel: u64,
    /// What to upload this frame.
    pub upload: PanelUpload,
    /// The app's frame number (the GPU chunk store counts recency in frames).
    pub frame: u64,
    /// The GPU chunk store's budget (a setting).
    pub gpu_budget_bytes: u64,
    /// Where the GPU chunk store's counts are published for the app's statistics.
    pub gpu_stats: Arc<std::sync::Mutex<GpuStorePublished>>,
}

impl egui_wgpu::CallbackTrait for SliceCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(res) = resources.get_mut::<ViewerResources>() else {
            return Vec::new();
        };
        if res.frame != self.frame {
            res.frame = self.frame;
            res.gather.store.set_budget(self.gpu_budget_bytes);
            res.gather.store.begin_frame();
        }
        let (version, slot) = res.panels.entry(self.panel).or_insert((u64::MAX, None));
        let same = *version == self.upload.version;
        match (slot.as_mut(), &self.upload.gathered) {
            (Some(p), _) if same => {
                res.renderer
                    .upload_uniforms(device, queue, p, &self.upload.uniforms)
            }
            (_, Some(content)) => {
                res.gather.draw_content(
                    &res.renderer,
                    device,
                    queue,
                    encoder,
                    self.panel,
                    slot,
                    content,
                    &self.upload.uniforms,
                );
                *version = self.upload.version;
                if let Ok(mut s) = self.gpu_stats.lock() {
                    *s = GpuStorePublished {
                        stats: res.gather.store.stats(),
                        by_layer: res.gather.store.counts_by_layer(),
                    };
                }
            }
            (_, None) => {
                res.renderer.upload(
                    device,
                    queue,
                    slot,
                    &self.upload.uniforms,
                    &self.upload.textures,
                );
                *version = self.upload.version;
            }
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(res) = resources.get::<ViewerResources>() else {
            return;
        };
        if let Some((_, Some(p))) = res.panels.get(&self.panel) {
            res.renderer.draw(pass, p);
        }
    }
}

use eframe::egui;

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
        self.frame(width, height, read_back, &rects, |_| {
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
        let mut out = Vec::new();
        if read_back {
            out = target.read_back(&self.device, &self.queue, width, height)?;
        }
        let t3 = std::time::Instant::now();
        let ms = |a: std::time::Instant, b: std::time::Instant| (b - a).as_secs_f64() * 1e3;
        Ok((
            out,
            RenderTimes {
                upload_ms: ms(t0, t1),
                draw_ms: ms(t1, t2),
                readback_ms: ms(t2, t3),
            },
        ))
    }
}

/// A render pass into `view`, cleared to black first.
fn cleared_pass<'a>(
    encoder: &'a mut wgpu::CommandEncoder,
    view: &wgpu::TextureView,
    label: &str,
) -> wgpu::RenderPass<'a> {
    encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some(label),
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                store: wgpu::StoreOp::Store,
            },
        })],
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
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &self.buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(self.row),
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
        self.buffer.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback(format!("reading back: {e}")))?;
        rx.recv()
            .map_err(|e| GpuError::Readback(e.to_string()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let mapped = self
            .buffer
            .get_mapped_range(..)
            .map_err(|e| GpuError::Readback(format!("{e:?}")))?;
        let mut out = Vec::with_capacity((width * height * 4) as usize);
        for y in 0..height {
            let start = (y * self.row) as usize;
            out.extend_from_slice(&mapped[start..start + (width * 4) as usize]);
        }
        drop(mapped);
        self.buffer.unmap();
        Ok(out)
    }

    fn new(device: &wgpu::Device, width: u32, height: u32) -> Self {
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("segno offscreen"),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
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
