//! Rendering of the volume viewer: the colour schemes layers are drawn with (segment
//! colours, image colormaps), the layers' arrays and the chunk cache that streams them,
//! cross-sections gathered from cached chunks and composed per panel, the saved view
//! state, and the wgpu pipeline that colours and blends the layers (with a CPU reference of
//! the same shading).

pub mod cache;
pub mod colors;
pub mod composer;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod gather;
mod gather_wgsl;
pub mod gpu;
pub mod gpu_gather;
pub mod gpu_split_merge;
pub mod gpu_volume;
pub mod headless;
pub mod layer;
pub mod motion;
pub mod neuroglancer;
pub mod oblique;
pub mod orientation;
pub mod shade;
pub mod shader;
pub mod slice;
pub mod state;
pub mod volume;
pub mod volume_render;
