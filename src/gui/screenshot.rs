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
use crate::render::volume::{mip_rgba, read_coarse, Orbit};

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
            draw_mip(viewer, &mut rgba, width, *r);
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

/// The 3D panel offscreen: the MIP of the first layer that opens, in its colormap.
fn draw_mip(viewer: &Viewer, rgba: &mut [u8], width: u32, r: [u32; 4]) {
    // The layers the viewer already opened (not opened again).
    let Some((layer, settings)) = (0..viewer.state.layers.len()).find_map(|i| {
        viewer
            .layer_data(i)
            .map(|d| (d, &viewer.state.layers[i].settings))
    }) else {
        return;
    };
    let Ok(volume) = read_coarse(layer) else {
        return;
    };
    let (b, e) = layer.levels[0].bounds_nm();
    let extent = (0..3).map(|a| e[a] - b[a]).fold(1e-9, f64::max);
    let scale = f64::from(r[2].min(r[3])) * 0.45 / extent;
    let orbit = Orbit {
        yaw_deg: viewer.state.orbit_deg[0],
        pitch_deg: viewer.state.orbit_deg[1],
    };
    let m = volume.mip(&orbit, r[2] as usize, r[3] as usize, 1.0 / scale);
    let colours = mip_rgba(&m, settings);
    for y in 0..r[3] {
        let src = (y * r[2] * 4) as usize;
        let dst = (((r[1] + y) * width + r[0]) * 4) as usize;
        let n = (r[2] * 4) as usize;
        rgba[dst..dst + n].copy_from_slice(&colours[src..src + n]);
    }
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
