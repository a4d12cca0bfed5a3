//! Screenshots of a view state: rendered offscreen with wgpu (no window needed; what tests,
//! docs and `segno bench viewer` use), or taken from the real app window once every chunk
//! on screen has loaded.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::render::gpu::Headless;
use crate::render::shade::{GpuUniforms, PanelTextures};
use crate::render::slice::Plane;
use crate::render::state::{Layout, ViewState};

use super::viewer::Viewer;

/// The panels of `layout` in a `width` × `height` image: the plane (`None` for 3D) and its
/// rectangle `[x, y, w, h]`, with 2-pixel gaps as in the app.
pub fn layout_rects(layout: Layout, width: u32, height: u32) -> Vec<(Option<Plane>, [u32; 4])> {
    let gap = 2;
    let w = width.saturating_sub(gap) / 2;
    let h = height.saturating_sub(gap) / 2;
    let cell = |c: u32, r: u32| [c * (w + gap), r * (h + gap), w, h];
    match layout {
        Layout::FourPanel => vec![
            (Some(Plane::Xy), cell(0, 0)),
            (Some(Plane::Xz), cell(1, 0)),
            (Some(Plane::Yz), cell(0, 1)),
            (None, cell(1, 1)),
        ],
        Layout::Xy => vec![(Some(Plane::Xy), [0, 0, width, height])],
        Layout::Xz => vec![(Some(Plane::Xz), [0, 0, width, height])],
        Layout::Yz => vec![(Some(Plane::Yz), [0, 0, width, height])],
        Layout::ThreeD => vec![(None, [0, 0, width, height])],
    }
}

/// A rendered view: RGBA pixels, row-major.
pub struct Rendered {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGBA bytes.
    pub rgba: Vec<u8>,
    /// The GPU adapter that drew it.
    pub adapter: String,
    /// Milliseconds until every visible chunk had loaded.
    pub load_ms: f64,
}

/// Renders `viewer`'s view into a `width` × `height` image offscreen, waiting at most
/// `timeout` for the visible chunks.
pub fn render_view(
    viewer: &mut Viewer,
    gpu: &Headless,
    width: u32,
    height: u32,
    timeout: Duration,
) -> Result<Rendered, String> {
    let start = Instant::now();
    let rects = layout_rects(viewer.state.layout, width, height);
    let mut panels: Vec<([u32; 4], GpuUniforms, Arc<PanelTextures>)>;
    loop {
        panels = Vec::new();
        for (plane, r) in &rects {
            if let Some(p) = plane {
                let (mut u, t) = viewer.compose_panel(*p, [r[2], r[3]]);
                u.origin_size[0] = r[0] as f32;
                u.origin_size[1] = r[1] as f32;
                panels.push((*r, u, t));
            }
        }
        if !viewer.loading() {
            break;
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "the visible chunks did not load within {} s",
                timeout.as_secs()
            ));
        }
        viewer.cache().wait_idle(Duration::from_millis(200));
    }
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut rgba = gpu
        .render(width, height, &panels)
        .map_err(|e| e.to_string())?;
    for (plane, r) in &rects {
        if plane.is_none() {
            draw_3d(viewer, gpu, &mut rgba, width, *r)?;
        }
    }
    Ok(Rendered {
        width,
        height,
        rgba,
        adapter: gpu.adapter.clone(),
        load_ms,
    })
}

/// The 3D panel offscreen, ray cast on the GPU into its rectangle `r` of the image.
fn draw_3d(
    viewer: &Viewer,
    gpu: &Headless,
    rgba: &mut [u8],
    width: u32,
    r: [u32; 4],
) -> Result<(), String> {
    let Some(draw) = viewer.three_d_draw_now([r[2], r[3]], [r[2], r[3]]) else {
        return Ok(());
    };
    let (colours, _) = gpu
        .render_volume(&draw?, r[2], r[3])
        .map_err(|e| e.to_string())?;
    for y in 0..r[3] {
        let src = (y * r[2] * 4) as usize;
        let dst = (((r[1] + y) * width + r[0]) * 4) as usize;
        let n = (r[2] * 4) as usize;
        rgba[dst..dst + n].copy_from_slice(&colours[src..src + n]);
    }
    Ok(())
}

/// Writes RGBA pixels as a PNG, atomically.
pub fn save_png(path: &Path, width: u32, height: u32, rgba: &[u8]) -> Result<(), String> {
    let mut bytes = Vec::new();
    let img = image::RgbaImage::from_raw(width, height, rgba.to_vec())
        .ok_or_else(|| format!("{}: the image has the wrong size", path.display()))?;
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| format!("{}: cannot encode the PNG: {e}", path.display()))?;
    crate::store::atomic::write_atomic(path, &bytes, true)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Renders `state` offscreen at `size` and saves it to `out` (PNG). Returns a one-line
/// report (adapter, load time).
pub fn headless_screenshot(state: ViewState, size: [u32; 2], out: &Path) -> Result<String, String> {
    let gpu = Headless::new().map_err(|e| e.to_string())?;
    let mut viewer = Viewer::default();
    viewer.set_state(state);
    for i in 0..viewer.state.layers.len() {
        let s = viewer.layer_status(i);
        if s.starts_with("error") {
            return Err(format!("layer {:?}: {s}", viewer.state.layers[i].name));
        }
    }
    let r = render_view(
        &mut viewer,
        &gpu,
        size[0],
        size[1],
        Duration::from_secs(120),
    )?;
    save_png(out, r.width, r.height, &r.rgba)?;
    Ok(format!(
        "wrote {} ({}×{}, {}, chunks loaded in {:.0} ms)",
        out.display(),
        r.width,
        r.height,
        r.adapter,
        r.load_ms
    ))
}
