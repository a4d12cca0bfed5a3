//! Starting the app: a window when there is a display, or a headless render of a view
//! for `segno gui --screenshot`, opened on a project and a saved view.

use super::run_views::open_path;
use super::*;

/// What `segno gui` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct GuiOptions {
    /// The project to open.
    pub project: Option<PathBuf>,
    /// A view state to show in the Viewer.
    pub view: Option<PathBuf>,
    /// Save a screenshot here once everything visible has loaded, then exit.
    pub screenshot: Option<PathBuf>,
    /// Window (or offscreen image) size in pixels.
    pub size: [u32; 2],
    /// Render the screenshot offscreen even when a display is available.
    pub headless: bool,
    /// The section to show first (the Viewer when a view or screenshot is asked for).
    pub section: Option<Section>,
}

/// Whether a display (X11 or Wayland) is available for a window.
pub fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The view `segno gui` starts with: the `--view` file, or else the project's raw array.
pub(super) fn initial_view(
    options: &GuiOptions,
) -> Result<Option<crate::render::state::ViewState>, GuiError> {
    if let Some(v) = &options.view {
        return crate::render::state::ViewState::load(v)
            .map(Some)
            .map_err(|e| GuiError::Start(e.to_string()));
    }
    Ok(None)
}

/// Opens the app window (wgpu renderer) as `options` say; with a screenshot path and no
/// display (or `headless`), renders the view offscreen instead. Returns a report line for
/// screenshots.
pub fn run(options: GuiOptions) -> Result<Option<String>, GuiError> {
    let view = initial_view(&options)?;
    let first_section = options.section;
    if let Some(out) = &options.screenshot {
        let viewer = first_section.is_none_or(|s| s == Section::Viewer);
        if !viewer && (options.headless || !has_display()) {
            return Err(GuiError::Start(format!(
                "a screenshot of the {} section needs a display: run it under \
                 `xvfb-run -a -s \"-screen 0 1280x800x24\"`",
                first_section.map_or("Viewer", Section::label)
            )));
        }
        if options.headless || !has_display() {
            let state = match view {
                Some(v) => v,
                None => default_view(options.project.as_deref())?,
            };
            return screenshot::headless_screenshot(state, options.size, out)
                .map(Some)
                .map_err(GuiError::Start);
        }
    }
    let size = options.size;
    // A screenshot starts from default settings in a storage of its own: it is taken at the
    // size asked for (not the last session's window), looks the same on every machine, and
    // leaves the user's remembered settings alone.
    let scratch = match &options.screenshot {
        Some(_) => Some(tempfile::tempdir().map_err(|e| GuiError::Start(e.to_string()))?),
        None => None,
    };
    let native = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_title("Segno")
            .with_inner_size([size[0] as f32, size[1] as f32]),
        persist_window: scratch.is_none(),
        persistence_path: scratch.as_ref().map(|d| d.path().join("app.ron")),
        ..Default::default()
    };
    let result = std::sync::Arc::new(std::sync::Mutex::new(None));
    let job_result = std::sync::Arc::clone(&result);
    let project = options.project.clone();
    let screenshot = options.screenshot.clone();
    eframe::run_native(
        "Segno",
        native,
        Box::new(move |cc| {
            let mut app = SegnoApp::from_creation(cc, project.as_deref());
            if let Some(v) = view {
                app.viewer.set_state(v);
                app.settings.section = Section::Viewer;
            }
            if let Some(s) = first_section {
                app.settings.section = s;
            }
            if let Some(path) = screenshot {
                app.settings.section = first_section.unwrap_or(Section::Viewer);
                app.screenshot = Some(ScreenshotJob {
                    path,
                    started: std::time::Instant::now(),
                    settled_frames: 0,
                    requested: false,
                    result: job_result,
                });
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| GuiError::Start(e.to_string()))?;
    let outcome = result.lock().ok().and_then(|mut r| r.take());
    match outcome {
        Some(Ok(line)) => Ok(Some(line)),
        Some(Err(e)) => Err(GuiError::Start(e)),
        None if options.screenshot.is_some() => Err(GuiError::Start(
            "the window closed before the screenshot was taken".into(),
        )),
        None => Ok(None),
    }
}

/// A view of the project's first array named like raw data (or its first array).
pub(super) fn default_view(
    project: Option<&Path>,
) -> Result<crate::render::state::ViewState, GuiError> {
    let Some(root) = project else {
        return Err(GuiError::Start(
            "--screenshot needs --view STATE.json or a project with arrays".into(),
        ));
    };
    let summary = ProjectSummary::load(root).map_err(GuiError::Start)?;
    let arrays: Vec<PathBuf> = summary
        .arrays
        .iter()
        .flat_map(|c| crate::render::layer::list_arrays(&root.join(c), 6))
        .collect();
    let pick = arrays
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "raw"))
        .or(arrays.first())
        .ok_or_else(|| GuiError::Start(format!("{}: no arrays to show", root.display())))?;
    let mut v = viewer::Viewer::default();
    v.add_layer(pick);
    Ok(v.state.clone())
}

/// The path of a config's `(container, dataset)` source, with a relative container read
/// from the project's root.
pub(super) fn project_array_path(root: &Path, (container, dataset): (String, String)) -> PathBuf {
    let c = PathBuf::from(&container);
    let c = if c.is_absolute() { c } else { root.join(c) };
    open_path(&c.join(&dataset))
}
