//! The 3D panel on the GPU: the coarse volumes in 3D textures, ray cast by
//! `shaders/volume.wgsl` into a colour and depth image of the panel's size (at most
//! [`VOLUME_MAX_PX`] a side) only when the camera, the volumes or their looks changed; the
//! planes drawn over that when they moved; the result copied into the panel every frame
//! by `shaders/blit.wgsl`.

use eframe::wgpu;

use super::volume_render::{pack, VolumeDraw};

/// Longest side of the ray-cast image in pixels; larger panels scale it up.
pub const VOLUME_MAX_PX: u32 = 384;

/// The size of the 3D panel's image for a panel of `width` × `height` pixels: the same
/// shape, at most `cap` pixels a side.
pub fn image_size(width: f32, height: f32, cap: u32) -> (u32, u32) {
    let factor = (width.max(height) / cap as f32).max(1.0);
    (
        (width / factor).round().max(1.0) as u32,
        (height / factor).round().max(1.0) as u32,
    )
}

/// The ray caster, its cached image and the volumes it holds.
pub struct VolumeRenderer {
    raycast: wgpu::RenderPipeline,
    raycast_layout: wgpu::BindGroupLayout,
    planes: wgpu::RenderPipeline,
    planes_layout: wgpu::BindGroupLayout,
    blit: wgpu::RenderPipeline,
    blit_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    uniforms: wgpu::Buffer,
    image: Option<(usize, wgpu::Texture)>,
    labels: Option<(usize, wgpu::Texture)>,
    empty: [wgpu::Texture; 2],
    target: Option<Targets>,
    cast: Option<String>,
    drawn: Option<String>,
    max_3d: u32,
    /// Ray casts done (a view whose camera, volumes and looks did not change is not cast
    /// again).
    pub renders: u64,
    /// Images made (casts, and planes drawn over the last cast).
    pub composites: u64,
    /// Why a volume is not drawn (larger than the device's 3D textures), if one is not.
    pub error: Option<String>,
}

/// The images of one size: the cast colour and depth, and the result with its blit.
struct Targets {
    size: (u32, u32),
    color: wgpu::Texture,
    depth: wgpu::Texture,
    result: wgpu::Texture,
    blit: wgpu::BindGroup,
}

fn layout_entry(binding: u32, ty: wgpu::BindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty,
        count: None,
    }
}

fn texture_3d(device: &wgpu::Device, size: [u32; 3], format: wgpu::TextureFormat) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("segno volume"),
        size: wgpu::Extent3d {
            width: size[2],
            height: size[1],
            depth_or_array_layers: size[0],
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D3,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

impl VolumeRenderer {
    /// Pipelines for `device`, copying into targets of `format`.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let volume_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("segno volume shader"),
            source: wgpu::ShaderSource::Wgsl(
                concat!(
                    include_str!("../../shaders/colors.wgsl"),
                    "\n",
                    include_str!("../../shaders/volume.wgsl")
                )
                .into(),
            ),
        });
        let blit_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("segno blit shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/blit.wgsl").into()),
        });
        let texture = |binding, sample_type, view_dimension| {
            layout_entry(
                binding,
                wgpu::BindingType::Texture {
                    sample_type,
                    view_dimension,
                    multisampled: false,
                },
            )
        };
        let float = wgpu::TextureSampleType::Float { filterable: false };
        let (d2, d3) = (
            wgpu::TextureViewDimension::D2,
            wgpu::TextureViewDimension::D3,
        );
        // Uniforms and the two volumes; the planes pass also reads the cast images.
        let entries = [
            layout_entry(
                0,
                wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
            ),
            texture(1, float, d3),
            texture(2, wgpu::TextureSampleType::Uint, d3),
            texture(3, float, d2),
            texture(4, float, d2),
        ];
        let raycast_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("segno volume"),
            entries: &entries[..3],
        });
        let planes_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("segno volume planes"),
            entries: &entries,
        });
        let blit_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("segno blit"),
            entries: &[
                layout_entry(
                    0,
                    wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                ),
                layout_entry(
                    1,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                ),
            ],
        });
        let pipeline_layout = |layout: &wgpu::BindGroupLayout| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("segno volume"),
                bind_group_layouts: &[Some(layout)],
                immediate_size: 0,
            })
        };
        let target = |format| {
            [Some(wgpu::ColorTargetState {
                format,
                blend: None,
                write_mask: wgpu::ColorWrites::ALL,
            })]
        };
        let raycast = super::gpu::fullscreen_pipeline(
            device,
            "segno volume ray cast",
            &pipeline_layout(&raycast_layout),
            &volume_module,
            "fs_cast",
            &[
                target(wgpu::TextureFormat::Rgba8Unorm)[0].clone(),
                target(wgpu::TextureFormat::R32Float)[0].clone(),
            ],
        );
        let planes = super::gpu::fullscreen_pipeline(
            device,
            "segno volume planes",
            &pipeline_layout(&planes_layout),
            &volume_module,
            "fs_planes",
            &target(wgpu::TextureFormat::Rgba8Unorm),
        );
        let blit = super::gpu::fullscreen_pipeline(
            device,
            "segno volume blit",
            &pipeline_layout(&blit_layout),
            &blit_module,
            "fs_blit",
            &target(format),
        );
        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("segno volume uniforms"),
            size: std::mem::size_of::<super::volume_render::VolumeUniforms>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("segno volume blit"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        Self {
            raycast,
            raycast_layout,
            planes,
            planes_layout,
            blit,
            blit_layout,
            sampler,
            uniforms,
            image: None,
            labels: None,
            empty: [
                texture_3d(device, [1, 1, 1], wgpu::TextureFormat::R32Float),
                texture_3d(device, [1, 1, 1], wgpu::TextureFormat::Rg32Uint),
            ],
            target: None,
            cast: None,
            drawn: None,
            max_3d: device.limits().max_texture_dimension_3d,
            renders: 0,
            composites: 0,
            error: None,
        }
    }

    /// Uploads `bytes` of a volume of `shape` (z, y, x) as a 3D texture of `format`
    /// (`texel` bytes a voxel), or says why it does not fit.
    fn upload(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        shape: [usize; 3],
        bytes: &[u8],
        (format, texel): (wgpu::TextureFormat, u32),
    ) -> Result<wgpu::Texture, String> {
        let size = shape.map(|s| s as u32);
        if shape.iter().any(|s| *s == 0 || *s > self.max_3d as usize) {
            return Err(format!(
                "the 3D view's volume of {shape:?} voxels exceeds this GPU's 3D textures ({} a side)",
                self.max_3d
            ));
        }
        let texture = texture_3d(device, size, format);
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
                bytes_per_row: Some(size[2] * texel),
                rows_per_image: Some(size[1]),
            },
            wgpu::Extent3d {
                width: size[2],
                height: size[1],
                depth_or_array_layers: size[0],
            },
        );
        Ok(texture)
    }

    /// Makes the image of `draw` at `size` pixels (recording into `encoder`) unless it
    /// holds it already: a ray cast when the camera, volumes or looks changed, the planes
    /// over the last cast otherwise; returns whether it made one.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        draw: &VolumeDraw,
        size: (u32, u32),
    ) -> bool {
        let size = (size.0.max(1), size.1.max(1));
        if self.target.as_ref().is_none_or(|t| t.size != size) {
            let image = |label, format, sampled: wgpu::TextureUsages| {
                device.create_texture(&wgpu::TextureDescriptor {
                    label: Some(label),
                    size: wgpu::Extent3d {
                        width: size.0,
                        height: size.1,
                        depth_or_array_layers: 1,
                    },
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format,
                    usage: wgpu::TextureUsages::RENDER_ATTACHMENT | sampled,
                    view_formats: &[],
                })
            };
            let binding = wgpu::TextureUsages::TEXTURE_BINDING;
            let color = image(
                "segno volume cast",
                wgpu::TextureFormat::Rgba8Unorm,
                binding,
            );
            let depth = image("segno volume depth", wgpu::TextureFormat::R32Float, binding);
            let result = image(
                "segno volume image",
                wgpu::TextureFormat::Rgba8Unorm,
                binding,
            );
            let view = result.create_view(&wgpu::TextureViewDescriptor::default());
            let blit = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("segno volume blit"),
                layout: &self.blit_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Sampler(&self.sampler),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(&view),
                    },
                ],
            });
            self.target = Some(Targets {
                size,
                color,
                depth,
                result,
                blit,
            });
            self.cast = None;
            self.drawn = None;
        }
        let key = format!("{} {size:?}", draw.key());
        if self.drawn.as_deref() == Some(key.as_str()) {
            return false;
        }
        let cast_key = format!(
            "{} {size:?}",
            VolumeDraw {
                planes: None,
                ..draw.clone()
            }
            .key()
        );
        let image_key = draw
            .image
            .as_ref()
            .map(|(v, _)| std::sync::Arc::as_ptr(v) as usize);
        let labels_key = draw
            .labels
            .as_ref()
            .map(|(v, _)| std::sync::Arc::as_ptr(v) as usize);
        if image_key != self.image.as_ref().map(|(k, _)| *k)
            || labels_key != self.labels.as_ref().map(|(k, _)| *k)
        {
            self.error = None;
        }
        let wanted = [
            (
                image_key,
                draw.image
                    .as_ref()
                    .map(|(v, _)| (v.shape, bytemuck::cast_slice::<f32, u8>(&v.values))),
                (wgpu::TextureFormat::R32Float, 4),
            ),
            (
                labels_key,
                draw.labels
                    .as_ref()
                    .map(|(v, _)| (v.shape, bytemuck::cast_slice::<u64, u8>(&v.values))),
                (wgpu::TextureFormat::Rg32Uint, 8),
            ),
        ];
        for (i, (key, data, format)) in wanted.into_iter().enumerate() {
            let held = if i == 0 { &self.image } else { &self.labels };
            if key == held.as_ref().map(|(k, _)| *k) {
                continue;
            }
            let made = match (key, data) {
                (Some(k), Some((shape, bytes))) => {
                    match self.upload(device, queue, shape, bytes, format) {
                        Ok(t) => Some((k, t)),
                        Err(e) => {
                            self.error = Some(e);
                            None
                        }
                    }
                }
                _ => None,
            };
            if i == 0 {
                self.image = made;
            } else {
                self.labels = made;
            }
        }
        // A volume that did not fit is left out.
        let shown = VolumeDraw {
            image: draw.image.clone().filter(|_| self.image.is_some()),
            labels: draw.labels.clone().filter(|_| self.labels.is_some()),
            ..draw.clone()
        };
        let u = pack(&shown, size.0, size.1, [0.0, 0.0]);
        queue.write_buffer(&self.uniforms, 0, bytemuck::bytes_of(&u));
        let Some(t) = &self.target else {
            return false;
        };
        let view_of = |t: &wgpu::Texture| t.create_view(&wgpu::TextureViewDescriptor::default());
        let image_view = view_of(self.image.as_ref().map_or(&self.empty[0], |(_, t)| t));
        let labels_view = view_of(self.labels.as_ref().map_or(&self.empty[1], |(_, t)| t));
        let (color_view, depth_view) = (view_of(&t.color), view_of(&t.depth));
        let entry = |binding, view| wgpu::BindGroupEntry {
            binding,
            resource: wgpu::BindingResource::TextureView(view),
        };
        let attachment = |view| Some(super::gpu::cleared_attachment(view));
        let pass = |encoder: &mut wgpu::CommandEncoder,
                    label,
                    targets: &[Option<wgpu::RenderPassColorAttachment>],
                    pipeline: &wgpu::RenderPipeline,
                    bind_group: &wgpu::BindGroup| {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some(label),
                color_attachments: targets,
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            pass.draw(0..3, 0..1);
        };
        if self.cast.as_deref() != Some(cast_key.as_str()) {
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("segno volume"),
                layout: &self.raycast_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.uniforms.as_entire_binding(),
                    },
                    entry(1, &image_view),
                    entry(2, &labels_view),
                ],
            });
            pass(
                encoder,
                "segno volume ray cast",
                &[attachment(&color_view), attachment(&depth_view)],
                &self.raycast,
                &bind_group,
            );
            self.cast = Some(cast_key);
            self.renders += 1;
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("segno volume planes"),
            layout: &self.planes_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.uniforms.as_entire_binding(),
                },
                entry(1, &image_view),
                entry(2, &labels_view),
                entry(3, &color_view),
                entry(4, &depth_view),
            ],
        });
        let result_view = view_of(&t.result);
        pass(
            encoder,
            "segno volume planes",
            &[attachment(&result_view)],
            &self.planes,
            &bind_group,
        );
        self.drawn = Some(key);
        self.composites += 1;
        true
    }

    /// Copies the last image over the pass's viewport.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>) {
        if let Some(t) = &self.target {
            pass.set_pipeline(&self.blit);
            pass.set_bind_group(0, &t.blit, &[]);
            pass.draw(0..3, 0..1);
        }
    }
}
