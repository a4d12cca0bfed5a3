//! The error overlay's split/merge flags counted on the GPU (`shaders/split_merge.wgsl`)
//! from the two label layers a panel has gathered, instead of rasterising both layers on
//! the CPU. The flags equal [`super::shade::instance_flags`] of the same slices exactly.

use eframe::wgpu;
use eframe::wgpu::util::DeviceExt;

use super::gpu::PanelGpu;

/// Where a panel's split/merge flags come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitMergeSource {
    /// Counted from two label layers: the true ids' and the predicted ids' label texture
    /// layer and status layer.
    Labels {
        /// The ground truth's label layer and status layer.
        truth: [u32; 2],
        /// The prediction's label layer and status layer.
        prediction: [u32; 2],
    },
    /// One of the layers holds no label ids: no pixel is flagged.
    None,
}

impl SplitMergeSource {
    /// The source of the overlay between layers `truth` and `prediction` of a panel with
    /// `uniforms`: their label and status layers when both are drawn as label ids.
    pub fn of(uniforms: &super::shade::GpuUniforms, truth: usize, prediction: usize) -> Self {
        let labels = |i: usize| {
            let g = uniforms.layers.get(i)?;
            (g.kind_tex[0] == 1).then_some([g.kind_tex[1], g.kind_tex[3]])
        };
        match (labels(truth), labels(prediction)) {
            (Some(truth), Some(prediction)) => SplitMergeSource::Labels { truth, prediction },
            _ => SplitMergeSource::None,
        }
    }
}

/// Most slots per hash table: 2²⁴ distinct ids on one panel (a 64 MiB scratch buffer for
/// the two tables). A panel with more distinct ids leaves the ones beyond unflagged.
const MAX_SLOTS: u64 = 1 << 24;

/// The two compute pipelines and their scratch buffers (shared by all panels: passes of
/// one encoder run in order).
pub struct SplitMergeGpu {
    layout: wgpu::BindGroupLayout,
    count: wgpu::ComputePipeline,
    write: wgpu::ComputePipeline,
    tables: Option<(u64, wgpu::Buffer)>,
    output: Option<(u64, wgpu::Buffer)>,
}

fn entry(binding: u32, ty: wgpu::BindingType) -> wgpu::BindGroupLayoutEntry {
    super::gpu_gather::stage_entry(wgpu::ShaderStages::COMPUTE, binding, ty)
}

fn storage(binding: u32) -> wgpu::BindGroupLayoutEntry {
    entry(
        binding,
        wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: false },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
    )
}

fn uint_array(binding: u32) -> wgpu::BindGroupLayoutEntry {
    entry(
        binding,
        wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Uint,
            view_dimension: wgpu::TextureViewDimension::D2Array,
            multisampled: false,
        },
    )
}

/// A buffer of at least `bytes` in `slot`, made anew only when it is too small.
fn buffer_of<'a>(
    device: &wgpu::Device,
    slot: &'a mut Option<(u64, wgpu::Buffer)>,
    bytes: u64,
    label: &str,
    usage: wgpu::BufferUsages,
) -> &'a wgpu::Buffer {
    if slot.as_ref().is_none_or(|(have, _)| *have < bytes) {
        *slot = None;
    }
    &slot
        .get_or_insert_with(|| {
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            });
            (bytes, buffer)
        })
        .1
}

/// The split/merge flags' status layer of `panel` (its last), as a copy's end.
fn flags_layer(panel: &PanelGpu) -> wgpu::TexelCopyTextureInfo<'_> {
    wgpu::TexelCopyTextureInfo {
        texture: panel.gather_targets(false).1,
        mip_level: 0,
        origin: wgpu::Origin3d {
            x: 0,
            y: 0,
            z: panel.dims()[4] - 1,
        },
        aspect: wgpu::TextureAspect::All,
    }
}

impl SplitMergeGpu {
    /// Whether `device` runs the compute passes (not, for one, on OpenGL ES / WebGL 2
    /// limits): without them the flags are counted on the CPU.
    pub fn supported(device: &wgpu::Device) -> bool {
        let l = device.limits();
        l.max_storage_buffers_per_shader_stage >= 2
            && l.max_compute_invocations_per_workgroup >= 64
            && l.max_compute_workgroup_size_x >= 16
            && l.max_compute_workgroup_size_y >= 8
            && l.max_compute_workgroups_per_dimension > 0
    }

    /// The pipelines for `device` (which must be [`SplitMergeGpu::supported`]).
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("segno split/merge"),
            entries: &[
                entry(0, super::gpu_gather::uniform_buffer()),
                uint_array(1),
                uint_array(2),
                storage(3),
                storage(4),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("segno split/merge"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("segno split/merge shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/split_merge.wgsl").into()),
        });
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("segno split/merge"),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        Self {
            count: pipeline("count"),
            write: pipeline("write_flags"),
            layout,
            tables: None,
            output: None,
        }
    }

    /// Records into `encoder` the passes that write `panel`'s split/merge flags (its last
    /// status layer) from `source`, after whatever `encoder` already holds. Panels of
    /// more than 2²⁴ pixels with more than 2²⁴ distinct ids flag only the first ones met.
    pub fn record(
        &mut self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        panel: &PanelGpu,
        source: SplitMergeSource,
    ) {
        let [w, h, _, label_layers, status_layers] = panel.dims();
        let pixels = u64::from(w) * u64::from(h);
        let row_bytes = w.div_ceil(256) * 256;
        let out_bytes = u64::from(row_bytes) * u64::from(h);
        let output = buffer_of(
            device,
            &mut self.output,
            out_bytes,
            "segno split/merge flags",
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        );
        let (_, status_tex) = panel.gather_targets(false);
        let (labels_tex, _) = panel.gather_targets(true);
        let usable = |[label, status]: [u32; 2]| label < label_layers && status < status_layers;
        match source {
            SplitMergeSource::Labels { truth, prediction }
                if usable(truth) && usable(prediction) =>
            {
                let slots = pixels.next_power_of_two().clamp(1, MAX_SLOTS);
                let tables = buffer_of(
                    device,
                    &mut self.tables,
                    slots * 2 * 4,
                    "segno split/merge tables",
                    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                );
                encoder.clear_buffer(tables, 0, Some(slots * 2 * 4));
                let params: [u32; 8] = [
                    w,
                    h,
                    slots as u32,
                    row_bytes / 4,
                    truth[0],
                    prediction[0],
                    truth[1],
                    prediction[1],
                ];
                let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("segno split/merge params"),
                    contents: bytemuck::cast_slice(&params),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
                let array_view = |t: &wgpu::Texture| {
                    t.create_view(&wgpu::TextureViewDescriptor {
                        dimension: Some(wgpu::TextureViewDimension::D2Array),
                        ..Default::default()
                    })
                };
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("segno split/merge"),
                    layout: &self.layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: params.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::TextureView(&array_view(labels_tex)),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: wgpu::BindingResource::TextureView(&array_view(status_tex)),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: tables.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 4,
                            resource: output.as_entire_binding(),
                        },
                    ],
                });
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("segno split/merge count"),
                    timestamp_writes: None,
                });
                pass.set_bind_group(0, &bind_group, &[]);
                pass.set_pipeline(&self.count);
                pass.dispatch_workgroups(w.div_ceil(8), h.div_ceil(8), 1);
                drop(pass);
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("segno split/merge write"),
                    timestamp_writes: None,
                });
                pass.set_bind_group(0, &bind_group, &[]);
                pass.set_pipeline(&self.write);
                pass.dispatch_workgroups((row_bytes / 4).div_ceil(16), h.div_ceil(4), 1);
            }
            _ => encoder.clear_buffer(output, 0, Some(out_bytes)),
        }
        encoder.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: output,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(row_bytes),
                    rows_per_image: Some(h),
                },
            },
            flags_layer(panel),
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
        );
    }
}

/// The split/merge flags of `truth` and `prediction` (two label slices of one panel)
/// counted on `gpu` as the viewer counts them, read back (one byte per pixel, row-major):
/// for tests and benchmarks against [`super::shade::instance_flags`].
pub fn count_on(
    gpu: &super::gpu::Headless,
    truth: &super::slice::LayerSlice,
    prediction: &super::slice::LayerSlice,
) -> Result<Vec<u8>, super::gpu::GpuError> {
    use super::shade::{self, DrawLayer};
    use super::state::{LayerSettings, SegmentationSettings};
    let (device, queue) = (&gpu.device, &gpu.queue);
    if !SplitMergeGpu::supported(device) {
        return Err(super::gpu::GpuError::NoDevice(format!(
            "{} has no compute shaders",
            gpu.adapter
        )));
    }
    let settings = LayerSettings::Segmentation(SegmentationSettings::default());
    let draw = [truth, prediction].map(|slice| DrawLayer {
        slice,
        settings: &settings,
        visible: true,
        hover: None,
        pending: false,
        linear: None,
    });
    let (uniforms, textures) = shade::pack(&draw, None, [0.0, 0.0], None);
    let renderer = super::gpu::SliceRenderer::new(device, queue, wgpu::TextureFormat::Rgba8Unorm);
    let mut slot = None;
    renderer.upload(device, queue, &mut slot, &uniforms, &textures);
    let Some(panel) = slot else {
        return Err(super::gpu::GpuError::Readback("no panel was made".into()));
    };
    let mut counter = SplitMergeGpu::new(device);
    let mut encoder =
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    counter.record(
        device,
        &mut encoder,
        &panel,
        SplitMergeSource::of(&uniforms, 0, 1),
    );
    let [w, h, ..] = panel.dims();
    let row = w.div_ceil(256) * 256;
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("segno split/merge readback"),
        size: u64::from(row * h),
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    super::headless::copy_out(
        device,
        queue,
        encoder,
        flags_layer(&panel),
        (w, h, 1),
        (&buffer, row),
    )
}
