//! Slices gathered on the GPU: decoded chunks live in GPU memory (one 3D texture each,
//! within a byte budget, the least recently drawn evicted first), and each layer of a
//! panel is drawn into the panel's value and status textures cell by cell from its
//! [`GatherPlan`]: per pixel, the voxel tables give the voxel inside the cell's chunk, so
//! the GPU samples exactly the voxels the CPU composition would. The panel's colouring
//! shader then reads those textures as it reads CPU-composed ones.

use std::collections::HashMap;

use eframe::wgpu;

use super::cache::{Chunk, ChunkKey};
use super::gather::{CellSource, GatherPlan};
use super::gather_wgsl::{gather_wgsl, oblique_wgsl};
use super::layer::ChunkValues;
use super::slice::{status, PixelRect};

/// The default GPU memory budget for chunks (1 GB).
pub const DEFAULT_GPU_CACHE_BYTES: u64 = 1 << 30;

/// Float channels a gather pass writes (the colouring shader reads at most four).
const MAX_CHANNELS: usize = 4;

/// What the GPU chunk store holds, as the renderer publishes it to the app each frame it
/// gathers: the totals and the chunks and bytes per layer id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuStorePublished {
    /// The totals.
    pub stats: GpuStoreStats,
    /// Chunks and bytes per layer id.
    pub by_layer: HashMap<u64, (usize, u64)>,
}

/// Counts of the GPU chunk store, for the statistics view and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GpuStoreStats {
    /// Chunks held in GPU memory.
    pub chunks: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The budget.
    pub budget_bytes: u64,
    /// Chunks uploaded since the store was made.
    pub uploaded: u64,
    /// Chunks evicted to make room.
    pub evicted: u64,
    /// Chunks not uploaded because the ones drawn in the same frame filled the budget
    /// (drawn as loading), or that a device cannot hold (too large a texture).
    pub refused: u64,
}

struct GpuChunk {
    bind_group: wgpu::BindGroup,
    _texture: wgpu::Texture,
    bytes: u64,
    last_frame: u64,
}

/// Decoded chunks in GPU memory, by cache key.
pub struct GpuChunkStore {
    chunks: HashMap<ChunkKey, GpuChunk>,
    budget_bytes: u64,
    bytes: u64,
    frame: u64,
    stats: GpuStoreStats,
}

impl GpuChunkStore {
    /// An empty store holding at most `budget_bytes`.
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            chunks: HashMap::new(),
            budget_bytes,
            bytes: 0,
            frame: 0,
            stats: GpuStoreStats::default(),
        }
    }

    /// Starts a frame: chunks drawn from now on are the ones evicted last.
    pub fn begin_frame(&mut self) {
        self.frame += 1;
    }

    /// Changes the budget; chunks beyond it go at the next upload.
    pub fn set_budget(&mut self, budget_bytes: u64) {
        self.budget_bytes = budget_bytes;
    }

    /// What the store holds and has done.
    pub fn stats(&self) -> GpuStoreStats {
        GpuStoreStats {
            chunks: self.chunks.len(),
            bytes: self.bytes,
            budget_bytes: self.budget_bytes,
            ..self.stats
        }
    }

    /// Chunks and bytes in GPU memory per layer id.
    pub fn counts_by_layer(&self) -> HashMap<u64, (usize, u64)> {
        let mut out: HashMap<u64, (usize, u64)> = HashMap::new();
        for (k, c) in &self.chunks {
            let e = out.entry(k.layer).or_default();
            e.0 += 1;
            e.1 += c.bytes;
        }
        out
    }

    /// Whether `key` is in GPU memory.
    pub fn contains(&self, key: &ChunkKey) -> bool {
        self.chunks.contains_key(key)
    }

    /// Drops every chunk of layer `uid` (removed or reopened).
    pub fn forget_layer(&mut self, uid: u64) {
        let bytes = &mut self.bytes;
        self.chunks.retain(|k, c| {
            let keep = k.layer != uid;
            if !keep {
                *bytes -= c.bytes;
            }
            keep
        });
    }

    /// Evicts chunks not drawn in this frame, least recently drawn first, until `need`
    /// more bytes fit; false when they cannot.
    fn make_room(&mut self, need: u64) -> bool {
        if self.bytes + need <= self.budget_bytes {
            return true;
        }
        let mut old: Vec<(u64, ChunkKey)> = self
            .chunks
            .iter()
            .filter(|(_, c)| c.last_frame < self.frame)
            .map(|(k, c)| (c.last_frame, *k))
            .collect();
        old.sort_by_key(|(f, k)| (*f, k.layer, k.level, k.index));
        for (_, k) in old {
            if self.bytes + need <= self.budget_bytes {
                break;
            }
            if let Some(c) = self.chunks.remove(&k) {
                self.bytes -= c.bytes;
                self.stats.evicted += 1;
            }
        }
        self.bytes + need <= self.budget_bytes
    }
}

/// The gather pipelines, the chunk store and each panel layer's voxel tables.
pub struct GatherRenderer {
    panel_layout: wgpu::BindGroupLayout,
    chunk_layouts: [wgpu::BindGroupLayout; 2],
    sample_layouts: [wgpu::PipelineLayout; 2],
    status_layout: wgpu::PipelineLayout,
    /// (labels, channels, panel axes, rotated) → (sampling pipeline, status-only pipeline).
    #[allow(clippy::type_complexity)]
    pipelines:
        HashMap<(bool, usize, [usize; 3], bool), (wgpu::RenderPipeline, wgpu::RenderPipeline)>,
    tables: HashMap<(u64, usize), LayerTables>,
    max_3d: u32,
    /// The split/merge counter (`None`: the device has no compute shaders).
    split_merge: Option<super::gpu_split_merge::SplitMergeGpu>,
    /// The chunks in GPU memory.
    pub store: GpuChunkStore,
}

/// One panel layer's voxel tables (a texture with a row per scale level), the affine
/// maps of a rotated plane's cells ([`CELLS_PER_ROW`] cells of [`CELL_WORDS`] words per
/// row) and uniforms.
struct LayerTables {
    size: (u32, u32, u32),
    cell_rows: u32,
    texture: wgpu::Texture,
    cells: wgpu::Texture,
    uniforms: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// A bind group layout entry of `ty` at `binding`, seen by `stages`.
pub(crate) fn stage_entry(
    stages: wgpu::ShaderStages,
    binding: u32,
    ty: wgpu::BindingType,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: stages,
        ty,
        count: None,
    }
}

/// A uniform buffer binding.
pub(crate) fn uniform_buffer() -> wgpu::BindingType {
    wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Uniform,
        has_dynamic_offset: false,
        min_binding_size: None,
    }
}

fn entry(binding: u32, ty: wgpu::BindingType) -> wgpu::BindGroupLayoutEntry {
    stage_entry(wgpu::ShaderStages::FRAGMENT, binding, ty)
}

fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    entry(binding, uniform_buffer())
}

fn texture_entry(
    binding: u32,
    sample_type: wgpu::TextureSampleType,
    view_dimension: wgpu::TextureViewDimension,
) -> wgpu::BindGroupLayoutEntry {
    entry(
        binding,
        wgpu::BindingType::Texture {
            sample_type,
            view_dimension,
            multisampled: false,
        },
    )
}

/// Cells of a rotated plane per row of the cell texture.
pub(crate) const CELLS_PER_ROW: u32 = 128;
/// Words per cell in the cell texture: origin, du, dv, size, then the same for the chosen
/// level (24 used).
pub(crate) const CELL_WORDS: u32 = 32;

/// The words of `plan`'s cells for the cell texture, in rows of [`CELLS_PER_ROW`].
fn cell_words(plan: &GatherPlan) -> Vec<u32> {
    let rows = (plan.cells.len() as u32).div_ceil(CELLS_PER_ROW).max(1);
    let mut out = vec![0u32; (rows * CELLS_PER_ROW * CELL_WORDS) as usize];
    for (i, c) in plan.cells.iter().enumerate() {
        let Some(a) = &c.affine else { continue };
        let w = &mut out[i * CELL_WORDS as usize..(i + 1) * CELL_WORDS as usize];
        let floats = [a.origin, a.du, a.dv];
        let clip = [a.clip_origin, a.clip_du, a.clip_dv];
        for (k, v) in floats.iter().chain([&[0.0f32; 3]]).enumerate() {
            for d in 0..3 {
                w[k * 3 + d] = v[d].to_bits();
            }
        }
        w[9..12].copy_from_slice(&a.size);
        for (k, v) in clip.iter().enumerate() {
            for d in 0..3 {
                w[12 + k * 3 + d] = v[d].to_bits();
            }
        }
        w[21..24].copy_from_slice(&a.clip_size);
    }
    out
}

/// A bind group of a uniform buffer (binding 0) and a texture (binding 1).
fn uniforms_and_texture(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    uniforms: &wgpu::Buffer,
    texture: &wgpu::Texture,
) -> wgpu::BindGroup {
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniforms.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: wgpu::BindingResource::TextureView(&view),
            },
        ],
    })
}

/// The split/merge flags of `content` from `source`, rasterised and counted on the CPU
/// (for devices without compute shaders).
fn counted_on_the_cpu(
    content: &super::gpu::GatheredContent,
    source: super::gpu_split_merge::SplitMergeSource,
) -> Vec<u8> {
    use super::gpu_split_merge::SplitMergeSource;
    let pixels = (content.dims[0] * content.dims[1]) as usize;
    let SplitMergeSource::Labels { truth, prediction } = source else {
        return vec![0; pixels];
    };
    let slice_of = |status_layer: u32| {
        content
            .layers
            .iter()
            .find(|l| l.status_layer == status_layer as usize)
            .map(|l| l.plan.rasterize())
    };
    match (slice_of(truth[1]), slice_of(prediction[1])) {
        (Some(t), Some(p)) => super::shade::instance_flags(&t, &p),
        _ => vec![0; pixels],
    }
}

impl GatherRenderer {
    /// Pipelines and layouts for `device`, with a chunk budget of `budget_bytes`.
    pub fn new(device: &wgpu::Device, budget_bytes: u64) -> Self {
        let uint = wgpu::TextureSampleType::Uint;
        let panel_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("segno gather panel"),
            entries: &[
                uniform_entry(0),
                texture_entry(1, uint, wgpu::TextureViewDimension::D2),
                texture_entry(2, uint, wgpu::TextureViewDimension::D2),
            ],
        });
        let chunk_layout = |sample_type| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("segno gather chunk"),
                entries: &[
                    uniform_entry(0),
                    texture_entry(1, sample_type, wgpu::TextureViewDimension::D3),
                ],
            })
        };
        let chunk_layouts = [
            chunk_layout(wgpu::TextureSampleType::Float { filterable: false }),
            chunk_layout(uint),
        ];
        let sample_layout = |chunk: &wgpu::BindGroupLayout| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("segno gather sample"),
                bind_group_layouts: &[Some(&panel_layout), Some(chunk)],
                immediate_size: 0,
            })
        };
        let sample_layouts = [
            sample_layout(&chunk_layouts[0]),
            sample_layout(&chunk_layouts[1]),
        ];
        let status_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("segno gather status"),
            bind_group_layouts: &[Some(&panel_layout)],
            immediate_size: 0,
        });
        Self {
            panel_layout,
            chunk_layouts,
            sample_layouts,
            status_layout,
            pipelines: HashMap::new(),
            tables: HashMap::new(),
            max_3d: device.limits().max_texture_dimension_3d,
            split_merge: super::gpu_split_merge::SplitMergeGpu::supported(device)
                .then(|| super::gpu_split_merge::SplitMergeGpu::new(device)),
            store: GpuChunkStore::new(budget_bytes),
        }
    }

    /// Whether every chunk of `plan` fits this device's 3D textures.
    pub fn fits(&self, plan: &GatherPlan) -> bool {
        plan.chunks().all(|(_, c)| match c.as_ref() {
            Chunk::Ready(v) => {
                let s = v.shape();
                let channels = match v {
                    ChunkValues::Float { channels, .. } => *channels,
                    ChunkValues::Labels { .. } => 1,
                };
                (s[0] * channels).max(s[1]).max(s[2]) <= self.max_3d as usize
            }
            Chunk::Failed(_) => true,
        })
    }

    fn pipelines(
        &mut self,
        device: &wgpu::Device,
        labels: bool,
        channels: usize,
        axes: [usize; 3],
        oblique: bool,
    ) -> (wgpu::RenderPipeline, wgpu::RenderPipeline) {
        if let Some(p) = self.pipelines.get(&(labels, channels, axes, oblique)) {
            return p.clone();
        }
        let text = if oblique {
            oblique_wgsl(labels, channels)
        } else {
            gather_wgsl(labels, channels, axes)
        };
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("segno gather shader"),
            source: wgpu::ShaderSource::Wgsl(text.into()),
        });
        let value_format = if labels {
            wgpu::TextureFormat::Rg32Uint
        } else {
            wgpu::TextureFormat::R32Float
        };
        let value_targets = if labels { 1 } else { channels };
        let make = |layout: &wgpu::PipelineLayout, entry: &str| {
            let mut targets: Vec<Option<wgpu::ColorTargetState>> = (0..value_targets)
                .map(|_| {
                    Some(wgpu::ColorTargetState {
                        format: value_format,
                        blend: None,
                        write_mask: wgpu::ColorWrites::ALL,
                    })
                })
                .collect();
            targets.push(Some(wgpu::ColorTargetState {
                format: wgpu::TextureFormat::R8Uint,
                blend: None,
                write_mask: wgpu::ColorWrites::ALL,
            }));
            super::gpu::fullscreen_pipeline(
                device,
                "segno gather pipeline",
                layout,
                &module,
                entry,
                &targets,
            )
        };
        let pair = (
            make(&self.sample_layouts[usize::from(labels)], "fs_sample"),
            make(&self.status_layout, "fs_status"),
        );
        self.pipelines
            .insert((labels, channels, axes, oblique), pair.clone());
        pair
    }

    /// Puts `chunk` in GPU memory under `key` (if it is not there) and marks it drawn in
    /// this frame; false when it does not fit.
    fn ensure_chunk(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        key: &ChunkKey,
        values: &ChunkValues,
    ) -> bool {
        let frame = self.store.frame;
        if let Some(c) = self.store.chunks.get_mut(key) {
            c.last_frame = frame;
            return true;
        }
        let s = values.shape();
        let (labels, channels, bytes, texel) = match values {
            ChunkValues::Float {
                values, channels, ..
            } => (false, *channels, bytemuck::cast_slice::<f32, u8>(values), 4),
            ChunkValues::Labels { values, .. } => {
                (true, 1, bytemuck::cast_slice::<u64, u8>(values), 8)
            }
        };
        let depth = (s[0] * channels) as u32;
        let fits_device = depth.max(s[1] as u32).max(s[2] as u32) <= self.max_3d;
        let need = bytes.len() as u64;
        if !fits_device || !self.store.make_room(need) || s.contains(&0) {
            self.store.stats.refused += 1;
            return false;
        }
        let size = wgpu::Extent3d {
            width: s[2] as u32,
            height: s[1] as u32,
            depth_or_array_layers: depth,
        };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("segno chunk"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D3,
            format: if labels {
                wgpu::TextureFormat::Rg32Uint
            } else {
                wgpu::TextureFormat::R32Float
            },
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytes,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(s[2] as u32 * texel),
                rows_per_image: Some(s[1] as u32),
            },
            size,
        );
        let info = [key.level as u32, s[0] as u32, 0, 0];
        let uniforms = wgpu::util::DeviceExt::create_buffer_init(
            device,
            &wgpu::util::BufferInitDescriptor {
                label: Some("segno chunk info"),
                contents: bytemuck::cast_slice(&info),
                usage: wgpu::BufferUsages::UNIFORM,
            },
        );
        let bind_group = uniforms_and_texture(
            device,
            "segno chunk",
            &self.chunk_layouts[usize::from(labels)],
            &uniforms,
            &texture,
        );
        self.store.bytes += need;
        self.store.stats.uploaded += 1;
        self.store.chunks.insert(
            *key,
            GpuChunk {
                bind_group,
                _texture: texture,
                bytes: need,
                last_frame: frame,
            },
        );
        true
    }

    /// Uploads layer `layer` of panel `panel`'s voxel tables (re-made when the panel's size
    /// or the layer's level count changed).
    fn upload_tables(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        panel: u64,
        layer: usize,
        plan: &GatherPlan,
    ) {
        let width = plan.width + plan.height + 1;
        let rows = ((plan.level + plan.voxel_tables.len()) as u32).max(1);
        let size = (plan.width, plan.height, rows);
        let cell_rows = if plan.oblique {
            (plan.cells.len() as u32).div_ceil(CELLS_PER_ROW).max(1)
        } else {
            1
        };
        let slot = self.tables.entry((panel, layer));
        let t = match slot {
            std::collections::hash_map::Entry::Occupied(o)
                if o.get().size == size && o.get().cell_rows >= cell_rows =>
            {
                o.into_mut()
            }
            other => {
                let texture_of = |label: &str, width: u32, height: u32| {
                    super::gpu::texture_2d(
                        device,
                        label,
                        (width, height),
                        wgpu::TextureFormat::R32Uint,
                        wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                    )
                };
                let texture = texture_of("segno voxel tables", width, rows);
                let cell_rows = cell_rows.next_power_of_two();
                let cells = texture_of("segno cell maps", CELLS_PER_ROW * CELL_WORDS, cell_rows);
                let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("segno gather panel"),
                    size: 48,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let views = [&texture, &cells]
                    .map(|t| t.create_view(&wgpu::TextureViewDescriptor::default()));
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("segno gather panel"),
                    layout: &self.panel_layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: uniforms.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::TextureView(&views[0]),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: wgpu::BindingResource::TextureView(&views[1]),
                        },
                    ],
                });
                let made = LayerTables {
                    size,
                    cell_rows,
                    texture,
                    cells,
                    uniforms,
                    bind_group,
                };
                match other {
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        o.insert(made);
                        o.into_mut()
                    }
                    std::collections::hash_map::Entry::Vacant(v) => v.insert(made),
                }
            }
        };
        if plan.oblique {
            let words = cell_words(plan);
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &t.cells,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                bytemuck::cast_slice(&words),
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(CELLS_PER_ROW * CELL_WORDS * 4),
                    rows_per_image: None,
                },
                wgpu::Extent3d {
                    width: CELLS_PER_ROW * CELL_WORDS,
                    height: cell_rows,
                    depth_or_array_layers: 1,
                },
            );
        }
        let a = plan.axes;
        let fill = if plan.labels {
            let id = plan.fill.max(0.0) as u64;
            [id as u32, (id >> 32) as u32]
        } else {
            [(plan.fill as f32).to_bits(), 0]
        };
        let u: [u32; 12] = [
            a[0] as u32,
            a[1] as u32,
            a[2] as u32,
            0,
            plan.width,
            plan.height,
            0,
            0,
            fill[0],
            fill[1],
            0,
            0,
        ];
        queue.write_buffer(&t.uniforms, 0, bytemuck::cast_slice(&u));
        if plan.voxel_tables.is_empty() {
            return;
        }
        // Row `plan.level + slot` holds that level's table and its normal position.
        let mut data = Vec::with_capacity((width * plan.voxel_tables.len() as u32) as usize);
        for (table, normal) in plan.voxel_tables.iter().zip(&plan.normals) {
            data.extend_from_slice(table);
            data.push(*normal);
        }
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &t.texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: 0,
                    y: plan.level as u32,
                    z: 0,
                },
                aspect: wgpu::TextureAspect::All,
            },
            bytemuck::cast_slice(&data),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(width * 4),
                rows_per_image: None,
            },
            wgpu::Extent3d {
                width,
                height: plan.voxel_tables.len() as u32,
                depth_or_array_layers: 1,
            },
        );
    }

    /// Draws the rectangles `items` (cell index, pixels) of `plan` (layer `layer` of panel
    /// `panel`) into the panel's textures: float layers from `texture` on (or label layer
    /// `texture`) and status layer `layer`. Returns whether every chunk drawn was in GPU
    /// memory (one that did not fit is drawn as loading).
    #[allow(clippy::too_many_arguments)]
    pub fn gather(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        panel: u64,
        targets: &super::gpu::PanelGpu,
        layer: usize,
        texture: u32,
        plan: &GatherPlan,
        items: &[(usize, PixelRect)],
    ) -> bool {
        if items.is_empty() {
            return true;
        }
        let channels = if plan.labels {
            1
        } else {
            plan.channels.clamp(1, MAX_CHANNELS)
        };
        let (sample, status_only) =
            self.pipelines(device, plan.labels, channels, plan.axes, plan.oblique);
        // Chunks first: one that does not fit is drawn as loading.
        let mut fits: HashMap<ChunkKey, bool> = HashMap::new();
        for (cell, _) in items {
            if let Some(CellSource::Chunk { key, chunk, .. }) =
                plan.cells.get(*cell).map(|c| &c.source)
            {
                if fits.contains_key(key) {
                    continue;
                }
                let ok = match chunk.as_ref() {
                    Chunk::Ready(v) => self.ensure_chunk(device, queue, key, v),
                    Chunk::Failed(_) => false,
                };
                fits.insert(*key, ok);
            }
        }
        self.upload_tables(device, queue, panel, layer, plan);
        let Some(tables) = self.tables.get(&(panel, layer)) else {
            return false;
        };
        let layer_view = |t: &wgpu::Texture, i: u32| {
            t.create_view(&wgpu::TextureViewDescriptor {
                dimension: Some(wgpu::TextureViewDimension::D2),
                base_array_layer: i,
                array_layer_count: Some(1),
                ..Default::default()
            })
        };
        let (values, status_tex) = targets.gather_targets(plan.labels);
        let mut views: Vec<wgpu::TextureView> = (0..channels as u32)
            .map(|c| layer_view(values, texture + c))
            .collect();
        views.push(layer_view(status_tex, layer as u32));
        // Every pixel drawn is drawn by a cell: what is not drawn keeps what it holds.
        let attachments: Vec<Option<wgpu::RenderPassColorAttachment>> = views
            .iter()
            .map(|view| {
                Some(wgpu::RenderPassColorAttachment {
                    view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Load,
                        store: wgpu::StoreOp::Store,
                    },
                })
            })
            .collect();
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("segno gather pass"),
            color_attachments: &attachments,
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_viewport(0.0, 0.0, plan.width as f32, plan.height as f32, 0.0, 1.0);
        pass.set_bind_group(0, &tables.bind_group, &[]);
        let mut complete = true;
        for (index, rect) in items {
            let Some(cell) = plan.cells.get(*index) else {
                continue;
            };
            // A rotated plane's cell passes its index to the shader (with the status in
            // the low two bits).
            let base = if plan.oblique {
                (*index as u32) << 2
            } else {
                0
            };
            let r = *rect;
            if r.width == 0
                || r.height == 0
                || r.x0 + r.width > plan.width
                || r.y0 + r.height > plan.height
            {
                continue;
            }
            pass.set_scissor_rect(r.x0, r.y0, r.width, r.height);
            let status_value = match &cell.source {
                CellSource::Chunk { key, .. } => match self.store.chunks.get(key) {
                    Some(c) if fits.get(key).copied().unwrap_or(false) => {
                        pass.set_pipeline(&sample);
                        pass.set_bind_group(1, &c.bind_group, &[]);
                        pass.draw(0..3, base..base + 1);
                        continue;
                    }
                    _ => {
                        complete = false;
                        status::LOADING
                    }
                },
                CellSource::Loading => status::LOADING,
                CellSource::Failed => status::FAILED,
                CellSource::Outside => status::OUTSIDE,
            };
            pass.set_pipeline(&status_only);
            let s = base + u32::from(status_value);
            pass.draw(0..3, s..s + 1);
        }
        complete
    }

    /// Makes panel `panel`'s textures for `content` (in `slot`), uploads `uniforms` and
    /// records the gather passes of its layers into `encoder`: none when the textures hold
    /// these contents already; only the dirty rectangles over the moved pixels when they
    /// hold the contents these were planned after (and every chunk of them was drawn);
    /// every cell otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn draw_content(
        &mut self,
        renderer: &super::gpu::SliceRenderer,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        panel: u64,
        slot: &mut Option<super::gpu::PanelGpu>,
        content: &super::gpu::GatheredContent,
        uniforms: &super::shade::GpuUniforms,
    ) {
        renderer.prepare_panel(device, queue, slot, content.dims, uniforms);
        let Some(gpu) = slot.as_mut() else { return };
        if gpu.gathered.map(|(id, _)| id) == Some(content.id) {
            return;
        }
        let moved = match (gpu.gathered, content.base) {
            (Some((held, true)), Some((base, shift))) if held == base => Some(shift),
            _ => None,
        };
        if let Some(shift) = moved.filter(|s| *s != (0, 0)) {
            renderer.shift_panel(device, encoder, gpu, shift);
        }
        // What of the colours to draw again: after a pan, the pixels gathered anew;
        // every pixel otherwise.
        let hatched = content.layers.iter().any(|l| {
            l.plan
                .cells
                .iter()
                .any(|c| matches!(c.source, CellSource::Failed))
        });
        let mut recolour = moved.map_or(super::gpu::Recolour::All, |shift| {
            super::gpu::Recolour::after_pan(shift, uniforms, hatched)
        });
        let mut complete = true;
        for l in &content.layers {
            let all: Vec<(usize, PixelRect)>;
            let items = match (&l.dirty, moved) {
                (Some(d), Some(_)) => {
                    if let super::gpu::Recolour::Moved { rects, .. } = &mut recolour {
                        rects.extend(d.iter().map(|(_, r)| *r));
                    }
                    d.as_slice()
                }
                _ => {
                    recolour = super::gpu::Recolour::All;
                    all = l
                        .plan
                        .cells
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (i, c.rect))
                        .collect();
                    &all
                }
            };
            complete &= self.gather(
                device,
                queue,
                encoder,
                panel,
                gpu,
                l.status_layer,
                l.texture,
                &l.plan,
                items,
            );
        }
        match (content.flags, self.split_merge.as_mut()) {
            (Some(source), Some(counter)) => counter.record(device, encoder, gpu, source),
            (Some(source), None) => {
                let flags = counted_on_the_cpu(content, source);
                gpu.write_status_layer(queue, content.dims[4] - 1, &flags);
            }
            (None, _) => {}
        }
        gpu.gathered = Some((content.id, complete));
        gpu.recolour =
            std::mem::replace(&mut gpu.recolour, super::gpu::Recolour::Nothing).then(recolour);
    }

    /// Drops the voxel tables of panel `panel` (closed or resized away).
    pub fn forget_panel(&mut self, panel: u64) {
        self.tables.retain(|(p, _), _| *p != panel);
    }
}
