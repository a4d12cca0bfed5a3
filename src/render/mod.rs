//! Rendering of the volume viewer: the colour schemes layers are drawn with (shared by the
//! GPU shaders and the CPU side, e.g. legends and screenshots' expected colours).

pub mod colors;
