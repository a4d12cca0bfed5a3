//! The wgpu side of the cross-sections: pipelines running the slice shader specialised per
//! combination of layer kinds (`render::shader`, built once and cached), per-panel textures
//! and uniforms, drawing inside egui (a paint callback) or offscreen into an RGBA image
//! (screenshots without a window, benchmarks: [`super::headless`]).

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui;
use eframe::egui_wgpu;
use eframe::wgpu;

use super::colors::Colormap;
use super::gather::GatherPlan;
use super::gpu_gather::{GatherRenderer, GpuStorePublished};
use super::shade::{GpuUniforms, PanelTextures};
use super::shader::ShaderKey;

mod colours;
use colours::Colours;
pub(crate) use colours::Recolour;

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
    blit_layout: wgpu::BindGroupLayout,
    blit_pipeline: wgpu::RenderPipeline,
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
    /// The uniforms as uploaded (with the origin at 0: the colours are drawn into a
    /// texture of the panel's own size) and the panel's origin on the screen.
    uploaded: Option<GpuUniforms>,
    origin: [f32; 2],
    /// The panel's colours, the uniforms they were drawn with and what changed since.
    colours: Option<Colours>,
    coloured_with: Option<GpuUniforms>,
    pub(crate) recolour: Recolour,
    /// Pixels coloured by the slice shader since the panel was made.
    pub coloured_px: u64,
}

/// A panel's value and status textures with the bind group that reads them.
struct TextureSet {
    bind_group: wgpu::BindGroup,
    floats: wgpu::Texture,
    labels: wgpu::Texture,
    status: wgpu::Texture,
}

/// A uniform buffer at `binding`, read by fragment shaders.
fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
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
                uniform_entry(0),
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
        let blit_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("segno panel colours bind group"),
            entries: &[
                uniform_entry(0),
                texture_entry(
                    1,
                    wgpu::TextureSampleType::Float { filterable: false },
                    wgpu::TextureViewDimension::D2,
                ),
            ],
        });
        let blit_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("segno panel colours pipeline layout"),
            bind_group_layouts: &[Some(&blit_layout)],
            immediate_size: 0,
        });
        let blit_shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("segno panel colours shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/panel_blit.wgsl").into()),
        });
        let blit_pipeline = fullscreen_pipeline(
            device,
            "segno panel colours pipeline",
            &blit_pipeline_layout,
            &blit_shader,
            "fs_main",
            &[Some(wgpu::ColorTargetState {
                format,
                blend: None,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        );
        Self {
            pipelines: std::sync::Mutex::new(HashMap::new()),
            pipeline_layout,
            format,
            layout,
            lut_view,
            blit_layout,
            blit_pipeline,
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
        p.recolour = Recolour::All;
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
        // The slice shader colours a texture of the panel's size; the panel's place on
        // the screen only matters for showing it.
        let mut local = *uniforms;
        local.origin_size[0] = 0.0;
        local.origin_size[1] = 0.0;
        if panel.uploaded != Some(local) {
            queue.write_buffer(&panel.uniforms, 0, bytemuck::bytes_of(&local));
            panel.uploaded = Some(local);
        }
        let origin = [uniforms.origin_size[0], uniforms.origin_size[1]];
        if let Some(c) = panel.colours.as_ref().filter(|_| panel.origin != origin) {
            c.write_origin(queue, origin);
        }
        panel.origin = origin;
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
            uploaded: None,
            origin: [0.0, 0.0],
            colours: None,
            coloured_with: None,
            recolour: Recolour::All,
            coloured_px: 0,
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
            colours::copy_shifted(encoder, (&a, &b), (w, h, layers), (dx, dy));
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

/// A colour attachment of `view`, cleared to black first.
pub(crate) fn cleared_attachment(view: &wgpu::TextureView) -> wgpu::RenderPassColorAttachment<'_> {
    wgpu::RenderPassColorAttachment {
        view,
        depth_slice: None,
        resolve_target: None,
        ops: wgpu::Operations {
            load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
            store: wgpu::StoreOp::Store,
        },
    }
}

/// A 2D texture of one layer and mip level: `width` × `height` texels of `format`.
pub(crate) fn texture_2d(
    device: &wgpu::Device,
    label: &str,
    (width, height): (u32, u32),
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage,
        view_formats: &[],
    })
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
        if let Some(p) = slot.as_mut() {
            res.renderer.colour(device, encoder, p);
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

pub use super::headless::{GatheredPanel, Headless, RenderTimes};
