//! Rendering of the volume viewer: the colour schemes layers are drawn with (segment
//! colours, image colormaps), shared by the GPU shaders and the CPU side (legends, the
//! expected colours of screenshots).

pub mod colors;
