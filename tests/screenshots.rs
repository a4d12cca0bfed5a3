//! `segno gui --screenshot`: the real binary renders a view state of the demo data
//! offscreen, and under Xvfb in its own window; both images are compared with what is
//! expected (pixel colours from the CPU reference, and a stored image of the window).

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

mod common;

/// The 64³ demo data and a view of raw + cell labels in the 4-panel layout.
fn project() -> (tempfile::TempDir, PathBuf) {
    let dir = common::demo_data_project(64);
    let view = dir.path().join("view.json");
    std::fs::write(
        &view,
        r#"{"position_nm": [252.5, 252.5, 124.5], "zoom_nm_per_px": 1.5, "layout": "4panel",
            "layers": [
              {"name": "raw", "source": "data/synthetic.zarr/raw", "settings": {"type": "image"}},
              {"name": "cells", "source": "data/synthetic.zarr/labels/crop1/cells",
               "settings": {"type": "segmentation"}}]}"#,
    )
    .unwrap();
    (dir, view)
}

fn read_png(path: &Path) -> image::RgbaImage {
    image::open(path).unwrap().to_rgba8()
}

#[test]
fn a_headless_screenshot_shows_the_view_state() {
    let (dir, view) = project();
    let out = dir.path().join("shot.png");
    let output = Command::cargo_bin("segno")
        .unwrap()
        .args(["gui", "--headless", "--size", "400x300", "--view"])
        .arg(&view)
        .arg("--screenshot")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("wrote") && stdout.contains("400×300"),
        "{stdout}"
    );
    let img = read_png(&out);
    assert_eq!(img.dimensions(), (400, 300));
    // The same view composed in-process: the xy panel (199×149 at the top left) must
    // match the CPU reference shading pixel for pixel (within rounding).
    let mut viewer = segno::gui::viewer::Viewer::default();
    viewer.load_state(&view);
    let (u, t) = loop {
        let r = viewer.compose_panel(segno::render::slice::Plane::Xy, [199, 149]);
        viewer.cache().wait_idle(std::time::Duration::from_secs(30));
        if !viewer.loading() {
            break viewer.compose_panel(segno::render::slice::Plane::Xy, [199, 149]);
        }
        drop(r);
    };
    let mut worst = 0;
    for y in 0..t.height {
        for x in 0..t.width {
            let e = segno::render::shade::shade(&u, &t, x, y);
            let g = img.get_pixel(x, y).0;
            for k in 0..3 {
                worst = worst.max((i32::from(e[k]) - i32::from(g[k])).abs());
            }
        }
    }
    assert!(worst <= 1, "worst difference {worst}");
    // The 3D panel (bottom right, 199×149 at (201, 151)) is ray cast on the GPU as the
    // CPU reference casts it: the raw data's projection, the cells as surfaces and the
    // three planes; black where the rays miss.
    assert_eq!(img.get_pixel(399, 299).0, [0, 0, 0, 255]);
    let draw = viewer
        .three_d_draw_now([199, 149], [199, 149])
        .unwrap()
        .unwrap();
    assert!(draw.image.is_some() && draw.labels.is_some() && draw.planes.is_some());
    let cpu = segno::render::volume_render::render_cpu(&draw, 199, 149);
    let mut off = 0;
    for y in 0..149u32 {
        for x in 0..199u32 {
            let i = ((y * 199 + x) * 4) as usize;
            let g = img.get_pixel(201 + x, 151 + y).0;
            if (0..3).any(|k| (i32::from(cpu[i + k]) - i32::from(g[k])).abs() > 2) {
                off += 1;
            }
        }
    }
    assert!(
        off * 100 <= 199 * 149,
        "{off} pixels of the 3D panel differ"
    );
    let lit = cpu.chunks(4).filter(|p| p[..3] != [0, 0, 0]).count();
    assert!(lit * 4 > 199 * 149, "{lit}");
    // A bad view state is refused with its file and field.
    std::fs::write(
        &view,
        r#"{"position_nm": [0, 0, 0], "zoom_nm_per_px": 0, "layout": "xy", "layers": []}"#,
    )
    .unwrap();
    let output = Command::cargo_bin("segno")
        .unwrap()
        .args(["gui", "--headless", "--view"])
        .arg(&view)
        .arg("--screenshot")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("view.json") && stderr.contains("zoom_nm_per_px"),
        "{stderr}"
    );
}

/// The app's own window under Xvfb: its screenshot matches the stored image
/// (`tests/snapshots/viewer_window.png`; `UPDATE_SNAPSHOTS=1` rewrites it).
#[test]
fn the_app_window_under_xvfb_matches_the_stored_screenshot() {
    if Command::new("xvfb-run").arg("--help").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "xvfb-run is missing (scripts/setup.sh installs it)"
        );
        eprintln!("skipped: xvfb-run is not installed");
        return;
    }
    let (dir, view) = project();
    let out = dir.path().join("window.png");
    let bin = assert_cmd::cargo::cargo_bin("segno");
    let output = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(&bin)
        .args(["gui", "--size", "1000x640", "--view"])
        .arg(&view)
        .arg("--screenshot")
        .arg(&out)
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("from the app window"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got = read_png(&out);
    let expected_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/viewer_window.png");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
        std::fs::copy(&out, &expected_path).unwrap();
        return;
    }
    let expected = read_png(&expected_path);
    assert_eq!(got.dimensions(), expected.dimensions());
    let total = u64::from(got.width()) * u64::from(got.height());
    let off = got
        .pixels()
        .zip(expected.pixels())
        .filter(|(a, b)| (0..3).any(|k| (i32::from(a.0[k]) - i32::from(b.0[k])).abs() > 16))
        .count() as u64;
    assert!(
        off * 100 <= total,
        "{off} of {total} pixels differ by more than 16 (allowed 1%); see {}",
        out.display()
    );
    drop(dir);
}
