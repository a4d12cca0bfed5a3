//! The viewer on a known synthetic volume: cross-sections gathered from chunks of arrays
//! with different voxel sizes and offsets, the colours of every layer kind (CPU reference,
//! offscreen wgpu and the app through egui_kittest), streaming from coarse to fine, and
//! bad input shown in the layer instead of crashing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ndarray::ArrayD;
use segno::array::write::{self, ArraySpec, WriteMode};
use segno::array::{ArrayData, DataType};
use segno::geometry::{Coordinate, Roi};
use segno::gui::viewer::Viewer;
use segno::render::colors::{segment_color, Colormap};
use segno::render::layer::WorldNm;
use segno::render::shade;
use segno::render::slice::{status, PixelValue, Plane};
use segno::render::state::{overlay_colors, ErrorOverlay, LayerSettings, Layout};

fn roi(offset: [i64; 3], shape: [i64; 3]) -> Roi {
    Roi::new(Coordinate::from(offset), Coordinate::from(shape)).unwrap()
}

/// `v.zarr` with
/// - `raw`: uint8, 32³ voxels of 4 nm, two OME levels, value 8·x;
/// - `labels`: uint64, 16×16×8 voxels of 8 nm from x = 64 nm, id 7 for y < 64 nm, else 2⁴⁰ + 3;
/// - `pred`: float32, 2 channels, 32³ of 4 nm: channel 0 is 1 for x < 64 nm, channel 1 is 0.5.
fn volume(dir: &Path) -> PathBuf {
    let c = dir.join("v.zarr");
    let vs4 = Coordinate::from([4, 4, 4]);
    let mut spec = ArraySpec::new(DataType::U8, roi([0; 3], [128; 3]), vs4, None);
    spec.chunk_voxels = Some(vec![16, 16, 16]);
    let raw = write::create_image(&c, "raw", &spec, 2, WriteMode::CreateNew).unwrap();
    let a = ArrayD::from_shape_fn(vec![32, 32, 32], |i| (8 * i[2]) as u8);
    raw[0]
        .write(&roi([0; 3], [128; 3]), &ArrayData::U8(a))
        .unwrap();
    write::build_pyramid(&raw, false).unwrap();

    let mut spec = ArraySpec::new(
        DataType::U64,
        roi([0, 0, 64], [128, 128, 64]),
        Coordinate::from([8, 8, 8]),
        None,
    );
    spec.chunk_voxels = Some(vec![8, 8, 8]);
    let labels = write::create(&c, "labels", &spec, WriteMode::CreateNew).unwrap();
    let a = ArrayD::from_shape_fn(vec![16, 16, 8], |i| {
        if i[1] < 8 {
            7u64
        } else {
            (1u64 << 40) + 3
        }
    });
    labels
        .write(&roi([0, 0, 64], [128, 128, 64]), &ArrayData::U64(a))
        .unwrap();

    let mut spec = ArraySpec::new(DataType::F32, roi([0; 3], [128; 3]), vs4, Some(2));
    spec.chunk_voxels = Some(vec![16, 16, 16]);
    let pred = write::create(&c, "pred", &spec, WriteMode::CreateNew).unwrap();
    let a = ArrayD::from_shape_fn(vec![2, 32, 32, 32], |i| {
        if i[0] == 0 {
            if i[3] < 16 {
                1.0f32
            } else {
                0.0
            }
        } else {
            0.5
        }
    });
    pred.write(&roi([0; 3], [128; 3]), &ArrayData::F32(a))
        .unwrap();
    c
}

/// A viewer on `layers` of the volume at the centre, 2 nm per pixel (the 64-pixel panel
/// spans the 128 nm volume), with everything loaded.
fn viewer(c: &Path, layers: &[&str]) -> Viewer {
    let mut v = Viewer::new(64 << 20);
    for l in layers {
        v.add_layer(&c.join(l));
    }
    v.state.position_nm = WorldNm([66.0, 66.0, 66.0]);
    v.state.zoom_nm_per_px = 2.0;
    v.state.cross_hairs = false;
    settle(&mut v, Plane::Xy);
    v
}

fn settle(v: &mut Viewer, plane: Plane) {
    for _ in 0..50 {
        v.compose_panel(plane, [64, 64]);
        assert!(v.cache().wait_idle(Duration::from_secs(10)));
        v.compose_panel(plane, [64, 64]);
        if !v.loading() {
            return;
        }
    }
    panic!("the viewer never finished loading");
}

/// Makes the labels' chunk (1, 0, 0) of the volume at `c` garbage.
fn corrupt_label_chunk(c: &Path) {
    let chunk = ["s0/1.0.0", "s0/1/0/0", "1.0.0", "1/0/0"]
        .iter()
        .map(|k| c.join("labels").join(k))
        .find(|p| p.is_file())
        .unwrap();
    std::fs::write(&chunk, b"definitely not blosc").unwrap();
}

/// The raw value pixel column `x` shows at 2 nm per pixel from the centre (66 nm).
fn raw_value(x: u32) -> u32 {
    let world_nm = 2 * x + 3;
    8 * (world_nm / 4)
}

fn cpu_pixel(v: &Viewer, plane: Plane, x: u32, y: u32) -> [u8; 4] {
    let (u, t) = v.panel_upload(plane).unwrap();
    shade::shade(&u, &t, x, y)
}

fn close(a: [u8; 4], b: [u8; 3], tol: i32) -> bool {
    (0..3).all(|k| (i32::from(a[k]) - i32::from(b[k])).abs() <= tol)
}

fn overlay(truth: &str, prediction: &str, instances: bool, alpha: f32) -> ErrorOverlay {
    ErrorOverlay {
        truth: truth.into(),
        prediction: prediction.into(),
        visible: true,
        instances,
        threshold: 0.5,
        alpha,
        mask: None,
    }
}

/// The largest difference between two images' bytes.
fn max_difference(a: &[u8], b: &[u8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (i32::from(*x) - i32::from(*y)).abs())
        .max()
        .unwrap_or(0)
}

fn over(below: [f64; 3], above: [u8; 3], alpha: f64) -> [u8; 3] {
    std::array::from_fn(|k| (below[k] * (1.0 - alpha) + f64::from(above[k]) * alpha).round() as u8)
}

#[test]
fn image_segmentation_and_prediction_colours_at_known_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let mut v = viewer(&c, &["raw", "labels"]);
    // Pixel x shows world x = 2x + 3 nm: raw voxel floor((2x + 3) / 4), value 8 × that.
    for x in [0u32, 10, 20, 29] {
        let value = raw_value(x) as u8;
        assert_eq!(
            cpu_pixel(&v, Plane::Xy, x, 10),
            [value, value, value, 255],
            "x {x}"
        );
    }
    // From x = 31 (world 65 nm) the labels (voxel 8 nm, offset 64 nm) lie on top at α 0.5:
    // id 7 above y = 64 nm (pixel row 30.5), id 2⁴⁰+3 below, each in neuroglancer's colour.
    let raw_at = |x: u32| f64::from(raw_value(x));
    for (x, y, id) in [(40u32, 10u32, 7u64), (40, 50, (1 << 40) + 3), (62, 0, 7)] {
        let expected = over([raw_at(x); 3], segment_color(0, id), 0.5);
        let got = cpu_pixel(&v, Plane::Xy, x, y);
        assert!(
            close(got, expected, 1),
            "({x}, {y}): {got:?} vs {expected:?}"
        );
    }
    // The value under the cursor of every layer, outside the labels too.
    let values = v.values_at(Plane::Xy, 40.0, 50.0);
    assert_eq!(values[0], ("raw".to_string(), "160".to_string()));
    assert_eq!(
        values[1],
        ("labels".to_string(), ((1u64 << 40) + 3).to_string())
    );
    assert_eq!(v.values_at(Plane::Xy, 5.0, 5.0)[1].1, "outside");

    // Selecting id 7 and isolating it: the other id disappears, id 7 is drawn at 0.75.
    if let LayerSettings::Segmentation(s) = &mut v.state.layers[1].settings {
        s.selected = vec![7];
        s.isolate = true;
    }
    settle(&mut v, Plane::Xy);
    let expected = over([raw_at(40); 3], segment_color(0, 7), 0.75);
    assert!(close(cpu_pixel(&v, Plane::Xy, 40, 10), expected, 1));
    let plain = raw_at(40) as u8;
    assert_eq!(cpu_pixel(&v, Plane::Xy, 40, 50), [plain, plain, plain, 255]);

    // Colormaps: viridis over the raw range, and inverted grey.
    if let LayerSettings::Image(s) = &mut v.state.layers[0].settings {
        s.colormap = Colormap::Viridis;
    }
    v.state.layers[1].visible = false;
    settle(&mut v, Plane::Xy);
    assert_eq!(
        cpu_pixel(&v, Plane::Xy, 0, 0)[..3],
        Colormap::Viridis.rgb(0.0)
    );
    assert_eq!(
        cpu_pixel(&v, Plane::Xy, 20, 0)[..3],
        Colormap::Viridis.rgb(f64::from(raw_value(20)) / 255.0)
    );
    if let LayerSettings::Image(s) = &mut v.state.layers[0].settings {
        s.colormap = Colormap::Grey;
        s.invert = true;
    }
    settle(&mut v, Plane::Xy);
    assert_eq!(cpu_pixel(&v, Plane::Xy, 0, 0), [255, 255, 255, 255]);

    // A two-channel prediction: red for channel 0, green for channel 1, at opacity 0.6.
    let mut p = viewer(&c, &["pred"]);
    if let LayerSettings::Prediction(s) = &mut p.state.layers[0].settings {
        s.opacity = 1.0;
    }
    settle(&mut p, Plane::Xy);
    // x < 64 nm: channel 0 = 1 → red, channel 1 = 0.5 → half green.
    assert_eq!(cpu_pixel(&p, Plane::Xy, 5, 5), [255, 128, 0, 255]);
    assert_eq!(cpu_pixel(&p, Plane::Xy, 50, 5), [0, 128, 0, 255]);
    assert_eq!(
        p.values_at(Plane::Xy, 5.0, 5.0)[0].1,
        "[1, 0.5]".to_string()
    );
    // Threshold preview at 0.7: channel 0 is on where it is 1, channel 1 (0.5) is off, and
    // where no channel is on nothing is drawn.
    if let LayerSettings::Prediction(s) = &mut p.state.layers[0].settings {
        s.threshold = Some(0.7);
    }
    settle(&mut p, Plane::Xy);
    assert_eq!(cpu_pixel(&p, Plane::Xy, 5, 5), [255, 0, 0, 255]);
    assert_eq!(cpu_pixel(&p, Plane::Xy, 50, 5), [0, 0, 0, 255]);
    // At 0.4 both channels are on on the left, channel 1 alone on the right.
    if let LayerSettings::Prediction(s) = &mut p.state.layers[0].settings {
        s.threshold = Some(0.4);
    }
    settle(&mut p, Plane::Xy);
    assert_eq!(cpu_pixel(&p, Plane::Xy, 5, 5), [255, 255, 0, 255]);
    assert_eq!(cpu_pixel(&p, Plane::Xy, 50, 5), [0, 255, 0, 255]);
}

#[test]
fn the_error_overlay_colours_true_and_false_positives_and_negatives() {
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    // Truth: the labels (x ≥ 64 nm). Prediction: channel 0 of pred (x < 64 nm) — they
    // never overlap. Left of the truth's region nothing is judged (the prediction there is
    // no false positive: the truth is unknown); its edge is outlined; right is a false
    // negative.
    let mut v = viewer(&c, &["labels", "pred"]);
    v.state.layers[0].visible = false;
    v.state.layers[1].visible = false;
    v.state.overlays.push(overlay("labels", "pred", false, 1.0));
    settle(&mut v, Plane::Xy);
    let got = cpu_pixel(&v, Plane::Xy, 5, 5);
    assert!(close(got, [0, 0, 0], 0), "{got:?}");
    // Pixel 30 shows x = 63 nm, just outside; pixel 31 (65 nm) is inside.
    let got = cpu_pixel(&v, Plane::Xy, 30, 5);
    assert!(close(got, overlay_colors::REGION, 0), "{got:?}");
    assert!(close(
        cpu_pixel(&v, Plane::Xy, 50, 5),
        overlay_colors::FALSE_NEGATIVE,
        0
    ));
    // Truth against itself: all true positives, and instance mode finds no split or merge.
    let mut v = viewer(&c, &["labels", "labels"]);
    v.state
        .overlays
        .push(overlay("labels", "labels (2)", true, 1.0));
    v.state.layers[0].visible = false;
    v.state.layers[1].visible = false;
    settle(&mut v, Plane::Xy);
    assert!(close(
        cpu_pixel(&v, Plane::Xy, 50, 5),
        overlay_colors::TRUE_POSITIVE,
        0
    ));
    // Truth against the raw image read as labels (id 8·x voxel, one id per column): each
    // truth object is covered by many raw ids (split), and each raw column crosses both
    // truth objects (merge). Merges are drawn over splits.
    let mut v = viewer(&c, &["labels", "raw"]);
    v.state.layers[1].settings = LayerSettings::Segmentation(Default::default());
    v.state.overlays.push(overlay("labels", "raw", true, 1.0));
    v.state.layers[0].visible = false;
    v.state.layers[1].visible = false;
    settle(&mut v, Plane::Xy);
    let got = cpu_pixel(&v, Plane::Xy, 50, 5);
    assert!(close(got, overlay_colors::MERGE, 0), "{got:?}");
    let (_, t) = v.panel_upload(Plane::Xy).unwrap();
    let flags = &t.status[2 * 64 * 64..];
    assert_eq!(flags[5 * 64 + 50], 3, "split and merge");
    assert_eq!(flags[5 * 64 + 10], 0, "no truth there");
    // Left of the labels the truth is unknown: raw foreground there is not judged.
    assert!(!close(
        cpu_pixel(&v, Plane::Xy, 10, 5),
        overlay_colors::FALSE_POSITIVE,
        0
    ));
}

#[test]
fn arrays_with_other_voxel_sizes_and_offsets_align_in_world_space() {
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let mut v = viewer(&c, &["raw", "labels"]);
    v.state.layout = Layout::FourPanel;
    // On the yz plane (z right, y down) at x = 66 nm: raw voxel x 16 everywhere (value 128);
    // the labels start at x = 64 nm, so they cover the whole yz plane too.
    settle(&mut v, Plane::Yz);
    let values = v.values_at(Plane::Yz, 3.0, 60.0);
    assert_eq!(values[0].1, "128");
    assert_eq!(values[1].1, ((1u64 << 40) + 3).to_string());
    // Move to x = 62 nm: still raw voxel 15, and the labels are outside.
    v.state.position_nm.0[2] = 62.0;
    settle(&mut v, Plane::Yz);
    let values = v.values_at(Plane::Yz, 3.0, 60.0);
    assert_eq!(values[0].1, "120");
    assert_eq!(values[1].1, "outside");
}

#[test]
fn zoomed_out_views_read_the_coarse_level_first_and_refine() {
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let mut v = Viewer::new(64 << 20);
    v.add_layer(&c.join("raw"));
    v.state.zoom_nm_per_px = 8.0;
    v.state.position_nm = WorldNm([64.0, 64.0, 64.0]);
    // 8 nm per pixel picks level 1 (8 nm voxels): 16 pixels span the volume.
    let (_, t) = v.compose_panel(Plane::Xy, [16, 16]);
    assert!(t.status.iter().take(256).all(|s| *s == status::LOADING));
    v.cache().wait_idle(Duration::from_secs(10));
    v.compose_panel(Plane::Xy, [16, 16]);
    let p = v.panel_upload(Plane::Xy).unwrap().1;
    assert!(p.status.iter().take(256).all(|s| *s == status::DATA));
    // Level 1 averages pairs of raw voxels: pixel 3 covers voxels 6 and 7 → (48+56)/2 = 52.
    assert_eq!(v.values_at(Plane::Xy, 3.0, 3.0)[0].1, "52");
    assert!(
        v.layer_status(0).contains("showing s1"),
        "{}",
        v.layer_status(0)
    );
    // Zooming in to 4 nm per pixel: level 0; the coarse chunks stand in until it loads.
    v.state.zoom_nm_per_px = 4.0;
    let (_, t) = v.compose_panel(Plane::Xy, [32, 32]);
    let shown = t
        .status
        .iter()
        .take(32 * 32)
        .filter(|s| **s == status::DATA)
        .count();
    assert_eq!(shown, 32 * 32, "coarse stand-ins cover the view");
    v.cache().wait_idle(Duration::from_secs(10));
    v.compose_panel(Plane::Xy, [32, 32]);
    assert_eq!(v.values_at(Plane::Xy, 3.0, 3.0)[0].1, "24");
    assert!(!v.loading());
    // The cache never holds more than its budget once the view moved on.
    let small = segno::render::cache::ChunkCache::new(10_000, 1);
    drop(small);
}

#[test]
fn bad_input_is_shown_in_the_layer_and_the_viewer_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let mut v = Viewer::new(64 << 20);
    // Not an array at all.
    v.add_layer(&dir.path().join("nothing-here"));
    let s = v.layer_status(0);
    assert!(s.starts_with("error:") && s.contains("nothing-here"), "{s}");
    // An unsupported data type (complex numbers).
    let bad = c.join("complex");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join(".zarray"),
        r#"{"zarr_format":2,"shape":[4,4,4],"chunks":[4,4,4],"dtype":"<c8","compressor":null,"fill_value":0,"order":"C","filters":null}"#,
    )
    .unwrap();
    v.add_layer(&bad);
    let s = v.layer_status(1);
    assert!(s.starts_with("error:") && s.contains("complex"), "{s}");
    // A corrupt chunk: the labels' chunk (1, 0, 0) (z 64–128 nm, y 0–64 nm, x 64–128 nm)
    // becomes garbage.
    v.add_layer(&c.join("labels"));
    v.state.position_nm = WorldNm([66.0, 66.0, 66.0]);
    v.state.zoom_nm_per_px = 2.0;
    let chunk = ["s0/1.0.0", "s0/1/0/0"]
        .iter()
        .map(|k| c.join("labels").join(k))
        .find(|p| p.is_file())
        .unwrap();
    std::fs::write(&chunk, b"definitely not blosc").unwrap();
    settle(&mut v, Plane::Xy);
    let s = v.layer_status(2);
    assert!(
        s.starts_with("error: 1 chunk(s) failed") && s.contains("labels"),
        "{s}"
    );
    let (_, t) = v.panel_upload(Plane::Xy).unwrap();
    let n = 64 * 64;
    // Pixel (40, 10) is inside the corrupt chunk, (40, 50) below it.
    // Only the labels layer is drawn (the other two failed to open): status layer 0.
    let st = &t.status[..n];
    assert_eq!(st[10 * 64 + 40], status::FAILED);
    assert_eq!(st[50 * 64 + 40], status::DATA);
    // Failed pixels are hatched: two alternating colours, never the data.
    let (u, t) = v.panel_upload(Plane::Xy).unwrap();
    let a = shade::shade(&u, &t, 40, 10);
    let b = shade::shade(&u, &t, 42, 10);
    assert!(a[..3] == [255, 77, 77] || a[..3] == [64, 0, 0], "{a:?}");
    assert_ne!(a, b);
    assert_eq!(v.values_at(Plane::Xy, 40.0, 10.0)[2].1, "failed");
    // The array deleted while viewing: newly read chunks fail with a message.
    let mut v = Viewer::new(64 << 20);
    v.add_layer(&c.join("raw"));
    std::fs::remove_dir_all(c.join("raw")).unwrap();
    v.state.position_nm = WorldNm([66.0, 66.0, 66.0]);
    v.state.zoom_nm_per_px = 2.0;
    settle(&mut v, Plane::Xy);
    let s = v.layer_status(0);
    assert!(s.contains("gone") || s.contains("failed"), "{s}");
    assert_eq!(v.values_at(Plane::Xy, 10.0, 10.0)[0].1, "failed");
}

#[test]
fn the_gpu_draws_what_the_cpu_reference_computes() {
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let mut v = viewer(&c, &["raw", "labels", "pred"]);
    v.state.cross_hairs = true;
    v.state.overlays.push(overlay("labels", "pred", false, 0.3));
    if let LayerSettings::Segmentation(s) = &mut v.state.layers[1].settings {
        s.selected = vec![(1 << 40) + 3];
    }
    settle(&mut v, Plane::Xy);
    let (u, t) = v.panel_upload(Plane::Xy).unwrap();
    let gpu = segno::render::gpu::Headless::new().expect("a wgpu adapter (lavapipe in CI)");
    let image = gpu
        .render(64, 64, &[([0, 0, 64, 64], u, t.clone())])
        .unwrap();
    let cpu = shade::shade_all(&u, &t);
    let worst = max_difference(&image, &cpu);
    assert!(
        worst <= 1,
        "GPU and CPU differ by {worst} ({})",
        gpu.adapter
    );
    // Timed, without reading back: nothing comes out; the image kept between renders of
    // the same size is drawn again the same.
    let (none, times) = gpu
        .render_timed(64, 64, &[([0, 0, 64, 64], u, t.clone())], false)
        .unwrap();
    assert!(none.is_empty());
    assert!(
        times.draw_ms > 0.0 && times.readback_ms < times.draw_ms + 1.0,
        "{times:?}"
    );
    let again = gpu
        .render(64, 64, &[([0, 0, 64, 64], u, t.clone())])
        .unwrap();
    assert_eq!(again, image);
    // The cross-hairs: the vertical line at pixel 32 is y's colour (green), the
    // horizontal line x's (red).
    let px = |x: usize, y: usize| &image[(y * 64 + x) * 4..(y * 64 + x) * 4 + 3];
    assert_eq!(px(32, 5), [0, 200, 0]);
    assert_eq!(px(5, 32), [255, 40, 40]);
    // Hidden: value under cursor lists raw, labels and both prediction channels.
    assert_eq!(v.values_at(Plane::Xy, 40.0, 50.0).len(), 3);
    assert!(matches!(PixelValue::Label(1), PixelValue::Label(_)));
    // The threshold preview on the GPU equals the CPU reference too.
    if let LayerSettings::Prediction(s) = &mut v.state.layers[2].settings {
        s.threshold = Some(0.7);
    }
    settle(&mut v, Plane::Xy);
    let (u, t) = v.panel_upload(Plane::Xy).unwrap();
    let image = gpu
        .render(64, 64, &[([0, 0, 64, 64], u, t.clone())])
        .unwrap();
    let cpu = shade::shade_all(&u, &t);
    assert_ne!(image, {
        let (u0, t0) = (u, t.clone());
        let mut u0 = u0;
        u0.layers[2].opts[3] &= !8;
        shade::shade_all(&u0, &t0)
    });
    let worst = max_difference(&image, &cpu);
    assert!(worst <= 1, "thresholded: GPU and CPU differ by {worst}");
    // An overlay limited to a mask layer (raw: 0 in its first voxel column).
    v.state.overlays[0].mask = Some("raw".into());
    settle(&mut v, Plane::Xy);
    let (u, t) = v.panel_upload(Plane::Xy).unwrap();
    assert_eq!(u.overlay[3], 1.0, "the mask is layer 0");
    let image = gpu
        .render(64, 64, &[([0, 0, 64, 64], u, t.clone())])
        .unwrap();
    let worst = max_difference(&image, &shade::shade_all(&u, &t));
    assert!(worst <= 1, "masked: GPU and CPU differ by {worst}");
    // A computed layer's blocks still pending (the prediction's left half): thin grey
    // diagonal lines over the layers below, the same on the GPU.
    v.state.overlays.clear();
    settle(&mut v, Plane::Xy);
    let (mut u, t) = v.panel_upload(Plane::Xy).unwrap();
    let mut t = (*t).clone();
    let n = 64 * 64;
    let pred = u.layers[2].kind_tex[3] as usize;
    for y in 0..64 {
        for x in 0..32 {
            t.status[pred * n + y * 64 + x] = status::LOADING;
        }
    }
    u.layers[2].hover[3] = 1;
    let t = std::sync::Arc::new(t);
    let image = gpu
        .render(64, 64, &[([0, 0, 64, 64], u, t.clone())])
        .unwrap();
    let worst = max_difference(&image, &shade::shade_all(&u, &t));
    assert!(worst <= 1, "pending: GPU and CPU differ by {worst}");
    let mut below = u;
    below.layers[2].hover[2] = 0;
    let (on, off) = ((5, 3), (6, 3));
    assert_eq!((on.0 + on.1) % shade::PENDING_SPACING, 0);
    let lined = shade::shade(&u, &t, on.0, on.1);
    let under = shade::shade(&below, &t, on.0, on.1);
    for k in 0..3 {
        let expected = f32::from(under[k]) / 255.0 * 0.5 + 0.3;
        assert!(
            (f32::from(lined[k]) / 255.0 - expected).abs() < 1.5 / 255.0,
            "{lined:?} over {under:?}"
        );
    }
    // Between the lines, the layers below show as they are.
    assert_eq!(
        shade::shade(&u, &t, off.0, off.1),
        shade::shade(&below, &t, off.0, off.1)
    );
}

#[test]
fn a_view_that_keeps_moving_is_read_at_low_priority_and_a_single_jump_is_not() {
    use segno::render::cache::VIEW_MOVING_HOLD;
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let mut v = viewer(&c, &["raw"]);
    std::thread::sleep(VIEW_MOVING_HOLD);
    // One jump wants its chunks at full speed.
    v.state.position_nm.0[2] += 40.0;
    v.compose_panel(Plane::Xy, [64, 64]);
    assert!(!v.cache().view_moving());
    // Redrawing the same view is no motion either.
    v.compose_panel(Plane::Xy, [64, 64]);
    assert!(!v.cache().view_moving());
    // A second change soon after is: panning, zooming and rotating alike.
    v.state.position_nm.0[2] += 2.0;
    v.compose_panel(Plane::Xy, [64, 64]);
    assert!(v.cache().view_moving());
    v.state.zoom_nm_per_px *= 1.5;
    v.compose_panel(Plane::Xy, [64, 64]);
    assert!(v.cache().view_moving());
    // Once the view rests, readers at the app's priority take over.
    std::thread::sleep(VIEW_MOVING_HOLD + std::time::Duration::from_millis(20));
    v.compose_panel(Plane::Xy, [64, 64]);
    assert!(!v.cache().view_moving());
    assert!(v.cache().wait_idle(std::time::Duration::from_secs(10)));
    v.compose_panel(Plane::Xy, [64, 64]);
    assert!(!v.loading(), "the view at rest loaded");
}

#[test]
fn panning_by_whole_pixels_moves_the_slice_and_fills_in_the_new_strips() {
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let mut v = viewer(&c, &["raw", "labels", "pred"]);
    let completed = v.cache().stats().completed;
    // 3 pixels right and 2 up (2 nm per pixel): the incremental path.
    v.state.position_nm.0[2] += 6.0;
    v.state.position_nm.0[1] -= 4.0;
    let (_, moved) = v.compose_panel(Plane::Xy, [64, 64]);
    assert_eq!(
        v.cache().stats().completed,
        completed,
        "nothing new was read"
    );
    // A fresh viewer composing the same view from scratch draws the same.
    let mut fresh = viewer(&c, &["raw", "labels", "pred"]);
    fresh.state.position_nm = v.state.position_nm;
    settle(&mut fresh, Plane::Xy);
    let (_, full) = fresh.panel_upload(Plane::Xy).unwrap();
    assert_eq!(moved.status, full.status);
    assert_eq!(moved.floats, full.floats);
    assert_eq!(moved.labels, full.labels);
}

#[test]
fn the_view_exports_as_a_neuroglancer_state() {
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let mut v = viewer(&c, &["raw", "labels/s0"]);
    v.state.layers[1].settings =
        LayerSettings::Segmentation(segno::render::state::SegmentationSettings {
            selected: vec![7, (1 << 40) + 3],
            isolate: true,
            ..Default::default()
        });
    if let LayerSettings::Image(s) = &mut v.state.layers[0].settings {
        s.invert = true;
        s.colormap = Colormap::Jet;
    }
    v.state.layers[1].visible = false;
    let (state, url) = v.neuroglancer("http://127.0.0.1:9000/", dir.path());
    // 4 nm voxels: position in voxels (x, y, z), zoom 2 nm per pixel = 0.5 canonical voxels.
    assert_eq!(state["dimensions"]["x"], serde_json::json!([4e-9, "m"]));
    assert_eq!(state["position"], serde_json::json!([16.5, 16.5, 16.5]));
    assert_eq!(state["crossSectionScale"], serde_json::json!(0.5));
    assert_eq!(state["layout"], "4panel");
    let raw = &state["layers"][0];
    assert_eq!(raw["type"], "image");
    // The OME group places itself; the inverted range is reversed.
    assert_eq!(raw["source"], "zarr://http://127.0.0.1:9000/v.zarr/raw");
    assert_eq!(
        raw["shaderControls"]["normalized"]["range"],
        serde_json::json!([255.0, 0.0])
    );
    assert!(raw["shader"].as_str().unwrap().contains("colormapJet"));
    let labels = &state["layers"][1];
    assert_eq!(labels["type"], "segmentation");
    assert_eq!(
        labels["segments"],
        serde_json::json!(["7", "1099511627779"])
    );
    assert_eq!(labels["notSelectedAlpha"], serde_json::json!(0.0));
    assert_eq!(labels["visible"], false);
    // A plain array level carries its own transform: 8 nm voxels from x = 64 nm, i.e. a
    // translation of 16 global (4 nm) voxels in x.
    let t = &labels["source"]["transform"];
    assert_eq!(
        labels["source"]["url"],
        "zarr://http://127.0.0.1:9000/v.zarr/labels/s0"
    );
    assert_eq!(t["inputDimensions"]["d2"], serde_json::json!([8e-9, "m"]));
    assert_eq!(t["matrix"][0], serde_json::json!([0, 0, 1, 16.0]));
    assert!(url.starts_with("https://neuroglancer-demo.appspot.com/#!%7B"));
}

/// Counts (true positives, false positives, false negatives, judged pixels outside the
/// truth's region) of the overlay colours in a panel.
fn overlay_counts(v: &Viewer, inside: impl Fn(u32, u32) -> bool) -> (u64, u64, u64, u64) {
    let (mut tp, mut fp, mut fn_, mut outside) = (0, 0, 0, 0);
    for y in 0..64 {
        for x in 0..64 {
            let c = cpu_pixel(v, Plane::Xy, x, y);
            let class = [
                overlay_colors::TRUE_POSITIVE,
                overlay_colors::FALSE_POSITIVE,
                overlay_colors::FALSE_NEGATIVE,
            ]
            .iter()
            .position(|k| close(c, *k, 0));
            if let Some(k) = class {
                if !inside(x, y) {
                    outside += 1;
                }
                match k {
                    0 => tp += 1,
                    1 => fp += 1,
                    _ => fn_ += 1,
                }
            }
        }
    }
    (tp, fp, fn_, outside)
}

#[test]
fn the_error_overlay_judges_exactly_what_segno_evaluate_scores() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("e.zarr");
    let vs = Coordinate::from([4, 4, 4]);
    // A float prediction over 256² nm and a one-voxel-thick ground-truth crop inside it
    // (x 64–192 nm, y 32–224 nm, z 4–8 nm).
    let pred_roi = roi([0, 0, 0], [16, 256, 256]);
    let spec = ArraySpec::new(DataType::F32, pred_roi, vs, None);
    let p = ArrayD::from_shape_fn(vec![4, 64, 64], |i| {
        (i[2] as f32 / 5.0).sin() * (i[1] as f32 / 7.0).cos()
    });
    write::create(&c, "pred", &spec, WriteMode::CreateNew)
        .unwrap()
        .write(&pred_roi, &ArrayData::F32(p))
        .unwrap();
    let gt_roi = roi([4, 32, 64], [4, 192, 128]);
    let spec = ArraySpec::new(DataType::U64, gt_roi, vs, None);
    let g = ArrayD::from_shape_fn(vec![1, 48, 32], |i| {
        u64::from((i[1] / 6 + i[2] / 5) % 3 == 0) * (1 + (i[1] / 6) as u64)
    });
    write::create(&c, "gt", &spec, WriteMode::CreateNew)
        .unwrap()
        .write(&gt_roi, &ArrayData::U64(g))
        .unwrap();
    // The overlay at threshold 0.2, one pixel per voxel, on the crop's slice.
    let mut v = Viewer::new(64 << 20);
    v.add_layer(&c.join("gt"));
    v.add_layer(&c.join("pred"));
    v.state.layers[0].visible = false;
    v.state.layers[1].visible = false;
    let mut o = overlay("gt", "pred", false, 1.0);
    o.threshold = 0.2;
    v.state.overlays.push(o);
    v.state.position_nm = WorldNm([6.0, 128.0, 128.0]);
    v.state.zoom_nm_per_px = 4.0;
    v.state.cross_hairs = false;
    settle(&mut v, Plane::Xy);
    // Pixel (x, y) shows voxel (x, y): world 4·x + 2 nm.
    let inside = |x: u32, y: u32| (16..48).contains(&x) && (8..56).contains(&y);
    let (tp, fp, fn_, outside) = overlay_counts(&v, inside);
    assert_eq!(outside, 0, "nothing is judged outside the truth's region");
    assert!(tp > 0 && fp > 0 && fn_ > 0, "{tp} {fp} {fn_}");
    assert!(close(
        cpu_pixel(&v, Plane::Xy, 15, 30),
        overlay_colors::REGION,
        0
    ));
    // segno post-process at the same threshold, then segno evaluate on the pair.
    let segno = assert_cmd::cargo::cargo_bin("segno");
    let out = std::process::Command::new(&segno)
        .args([
            "post-process",
            "--threshold",
            "0.2",
            "--dataset",
            "seg",
            "--input",
        ])
        .arg(c.join("pred"))
        .arg("--output")
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(&segno)
        .args(["evaluate", "--json", "--output"])
        .arg(c.join("seg"))
        .arg("--gt")
        .arg(c.join("gt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let score = |name: &str| report["scores"][name].as_f64().unwrap();
    let (tp, fp, fn_) = (tp as f64, fp as f64, fn_ as f64);
    assert_eq!(score("precision"), tp / (tp + fp));
    assert_eq!(score("recall"), tp / (tp + fn_));
    assert_eq!(score("dice"), 2.0 * tp / (2.0 * tp + fp + fn_));
}

/// A tiny xorshift generator, for test data that is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() % 10_000) as f32 / 10_000.0
    }
}

/// Every combination of layer kinds and code-changing options the shader is specialised
/// for draws what the CPU reference computes, and options that are only values (ranges,
/// colours, seeds) reuse the same pipeline.
#[test]
fn every_specialised_shader_draws_what_the_cpu_reference_computes() {
    use shade::{GpuUniforms, PanelTextures};
    let (w, h) = (48u32, 40u32);
    let n = (w * h) as usize;
    let mut rng = Rng(0x5e9e_0017);
    let ids = [0u64, 1, 2, 3, (1 << 40) + 3, u64::MAX - 1];
    // Seven float layers, two label layers, five layer statuses and the split/merge flags.
    let floats: Vec<f32> = (0..7 * n).map(|_| rng.unit() * 200.0 - 20.0).collect();
    let labels: Vec<u32> = (0..2 * n)
        .flat_map(|_| {
            let id = ids[(rng.next() % ids.len() as u64) as usize];
            [id as u32, (id >> 32) as u32]
        })
        .collect();
    let mut stat = vec![status::DATA; 6 * n];
    for layer in 0..5 {
        for y in 0..h as usize {
            for x in 0..w as usize {
                let s = &mut stat[layer * n + y * w as usize + x];
                if x < 2 + layer {
                    *s = status::OUTSIDE;
                } else if (10..14).contains(&y) && x > 30 {
                    *s = status::LOADING;
                } else if y >= 34 && x > 40 {
                    *s = status::FAILED;
                }
            }
        }
    }
    for f in &mut stat[5 * n..] {
        *f = (rng.next() % 4) as u8;
    }
    let tex = std::sync::Arc::new(PanelTextures {
        width: w,
        height: h,
        floats,
        float_layers: 7,
        labels,
        label_layers: 2,
        status: stat,
        status_layers: 6,
    });
    use bytemuck::Zeroable;
    let base = || {
        let mut u = GpuUniforms::zeroed();
        u.origin_size = [0.0, 0.0, w as f32, h as f32];
        u.counts[0] = 5;
        // image (float 0), segmentation (labels 0), prediction (floats 1..5),
        // segmentation (labels 1), image (float 5).
        let layers = [(0, 0, 1), (1, 0, 1), (2, 1, 4), (1, 1, 1), (0, 5, 1)];
        for (i, (kind, t, ch)) in layers.into_iter().enumerate() {
            let l = &mut u.layers[i];
            l.kind_tex = [kind, t, ch, i as u32];
            l.hover[2] = 1;
            l.range = [0.0, 150.0, 0.6, 0.9];
            l.seg = [i as u32 * 17, 0, 0, 0.4f32.to_bits()];
            l.colors = [
                [1.0, 0.2, 0.0, 1.0],
                [0.0, 1.0, 0.3, 1.0],
                [0.1, 0.0, 1.0, 1.0],
                [0.5, 0.5, 0.5, 1.0],
            ];
        }
        u.selected[0] = [1, 0, 3, 1 << 8];
        u
    };
    let mut variants: Vec<(&str, GpuUniforms)> = Vec::new();
    variants.push(("plain", base()));
    let mut v = base();
    v.layers[0].opts = [2, 1, 0, 0]; // viridis-like table, inverted
    v.layers[1].opts = [0, 0, 1, 1 | 4]; // additive, hide zero, hover
    v.layers[1].hover[0] = 2;
    v.layers[1].seg[1..3].copy_from_slice(&[0, 2]);
    v.layers[2].kind_tex[2] = 1; // one channel through a colormap, pending
    v.layers[2].opts[0] = 3;
    v.layers[2].hover[3] = 1;
    v.cross = [10.5, 20.5, 1.0, 0.0];
    v.cross_h = [1.0, 0.0, 0.0, 1.0];
    v.cross_v = [0.0, 1.0, 0.0, 1.0];
    variants.push(("colormaps, hover, selection, pending", v));
    let mut v = base();
    v.layers[1].opts[3] = 2; // isolate
    v.layers[1].seg[1..3].copy_from_slice(&[1, 2]);
    v.layers[2].kind_tex[2] = 3; // three channels thresholded, additive
    v.layers[2].opts = [0, 0, 1, 8];
    v.layers[2].range[3] = 60.0;
    v.layers[4].hover[2] = 0; // hidden
    variants.push(("isolate, threshold, hidden", v));
    let mut v = base();
    v.counts[1..4].copy_from_slice(&[1, 1, 2]); // labels vs prediction floats
    v.overlay = [0.4, 50.0, 1.0, 4.0]; // instances, mask: segmentation 3
    v.layers[3].hover[2] = 0;
    variants.push(("overlay: instances, label mask", v));
    let mut v = base();
    v.counts[1..4].copy_from_slice(&[1, 4, 3]); // image truth vs labels
    v.overlay = [0.7, 90.0, 0.0, 1.0]; // voxels, mask: image 0
    variants.push(("overlay: float truth, float mask", v));
    let mut v = base();
    v.counts[0] = 0;
    variants.push(("no layer", v));
    let mut v = base();
    v.counts[0] = 1;
    v.layers[0].kind_tex = [2, 1, 4, 0]; // four channels alone
    v.layers[0].opts[2] = 1;
    variants.push(("four channels", v));
    let mut v = base();
    // Linear sampling: both axes magnified on the image (voxels of 1/0.3 by 1/0.45 pixels,
    // the grid off the panel's edge), only the horizontal one on the prediction.
    v.layers[0].sampling = [0.3, 1.7, 0.45, -2.2];
    v.layers[2].sampling = [0.25, 3.0, 0.0, 0.0];
    v.layers[4].sampling = [0.0, 0.0, 0.2, 0.6];
    variants.push(("linear sampling", v));

    let gpu = segno::render::gpu::Headless::new().expect("a wgpu adapter (lavapipe in CI)");
    for (name, u) in &variants {
        let image = gpu
            .render(w, h, &[([0, 0, w, h], *u, tex.clone())])
            .unwrap();
        let worst = max_difference(&image, &shade::shade_all(u, &tex));
        assert!(worst <= 1, "{name}: GPU and CPU differ by {worst}");
    }
    assert_eq!(gpu.pipelines_built(), variants.len());
    // Values only: new ranges, opacities, colours and seeds draw with the same pipelines.
    // (A range whose steps put no test value exactly between two colormap entries, where
    // float rounding may pick either.)
    for (name, u) in &variants {
        let mut u = *u;
        for l in &mut u.layers {
            l.range = [30.3, 61.7, 0.8, 0.5];
            l.seg[0] += 5;
            l.colors[0] = [0.3, 0.3, 1.0, 1.0];
        }
        let image = gpu.render(w, h, &[([0, 0, w, h], u, tex.clone())]).unwrap();
        let worst = max_difference(&image, &shade::shade_all(&u, &tex));
        assert!(
            worst <= 1,
            "{name} with new values: GPU and CPU differ by {worst}"
        );
    }
    assert_eq!(gpu.pipelines_built(), variants.len());
}

/// The layers' linear sampling mappings of `slices` on `view`: on odd rounds (so nearest
/// and linear alternate) those `linear_mapping` gives (zoomed in past a voxel per pixel;
/// never on rotated planes), which the image and prediction of
/// [`three_layers_with_a_failed_chunk`] use.
fn linear_on_odd_rounds(
    layers: &[(
        std::sync::Arc<segno::render::layer::LayerData>,
        LayerSettings,
    )],
    slices: &[segno::render::slice::LayerSlice],
    view: &segno::render::slice::SliceView,
    round: usize,
) -> Vec<Option<[f32; 4]>> {
    layers
        .iter()
        .zip(slices)
        .map(|((layer, _), slice)| {
            segno::render::slice::linear_mapping(layer, slice.level, view)
                .filter(|_| round % 2 == 1)
        })
        .collect()
}

/// A panel's layers: slices composed on the CPU, plans gathered on the GPU, and linear
/// sampling mappings.
type PanelLayers<'a> = (
    &'a [segno::render::slice::LayerSlice],
    &'a [std::sync::Arc<segno::render::gather::GatherPlan>],
    &'a [Option<[f32; 4]>],
);

/// Layers `layers` drawn from `slices` (and, on the GPU, gathered from `plans`) with the
/// error overlay `overlay` (its split/merge flags when it counts instances) and the
/// layers' `linear` sampling mappings (for those whose settings sample linearly): the panel
/// gathered on the GPU, composed and coloured on the GPU, and coloured by the CPU reference.
fn draw_both(
    gpu: &segno::render::gpu::Headless,
    (w, h): (u32, u32),
    layers: &[(
        std::sync::Arc<segno::render::layer::LayerData>,
        LayerSettings,
    )],
    (slices, plans, linear): PanelLayers<'_>,
    overlay: shade::DrawOverlay,
    cross: Option<([f32; 2], [u8; 3], [u8; 3])>,
    id: u64,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use segno::render::gpu::{GatherLayer, GatheredContent, GatheredPanel};
    use segno::render::gpu_split_merge::SplitMergeSource;
    use std::sync::Arc;
    let draw: Vec<shade::DrawLayer> = slices
        .iter()
        .zip(layers)
        .enumerate()
        .map(|(i, (s, (_, settings)))| shade::DrawLayer {
            slice: s,
            settings,
            visible: true,
            hover: None,
            pending: false,
            linear: linear.get(i).copied().flatten(),
        })
        .collect();
    let (u, t) = shade::pack(&draw, Some(overlay), [0.0, 0.0], cross);
    let t = Arc::new(t);
    let panel = GatheredPanel {
        rect: [0, 0, w, h],
        uniforms: u,
        content: Arc::new(GatheredContent {
            id,
            base: None,
            dims: [w, h, t.float_layers, t.label_layers, t.status_layers],
            layers: plans
                .iter()
                .enumerate()
                .map(|(i, p)| GatherLayer::whole(i, u.layers[i].kind_tex[1], p.clone()))
                .collect(),
            flags: overlay
                .instances
                .then(|| SplitMergeSource::of(&u, overlay.truth, overlay.prediction)),
        }),
    };
    let (gathered, _) = gpu.render_gathered(w, h, &[panel], true).unwrap();
    let composed = gpu.render(w, h, &[([0, 0, w, h], u, t.clone())]).unwrap();
    let reference = shade::shade_all(&u, &t);
    (gathered, composed, reference)
}

/// The raw, labels (segment 7 selected; one chunk corrupt) and prediction layers of the
/// test volume written into `dir`, with their drawing settings (the raw image and the
/// prediction sampled linearly when given a mapping).
fn three_layers_with_a_failed_chunk(
    dir: &std::path::Path,
) -> [(
    std::sync::Arc<segno::render::layer::LayerData>,
    LayerSettings,
); 3] {
    use segno::render::layer::open_layer;
    use segno::render::state::{ImageSettings, PredictionSettings, Sampling, SegmentationSettings};
    let c = volume(dir);
    corrupt_label_chunk(&c);
    [
        (
            open_layer(&c.join("raw")).unwrap(),
            LayerSettings::Image(ImageSettings {
                sampling: Sampling::Linear,
                ..ImageSettings::default()
            }),
        ),
        (
            open_layer(&c.join("labels")).unwrap(),
            LayerSettings::Segmentation(SegmentationSettings {
                selected: vec![7],
                ..SegmentationSettings::default()
            }),
        ),
        (
            open_layer(&c.join("pred")).unwrap(),
            LayerSettings::Prediction(PredictionSettings {
                sampling: Sampling::Linear,
                ..PredictionSettings::default()
            }),
        ),
    ]
}

/// Panels gathered from chunks on the GPU draw exactly what panels composed on the CPU
/// draw: on every plane, zoomed in and out (a coarse level chosen), while chunks arrive
/// (coarse levels standing in, pixels loading), with a failed chunk, the error overlay and
/// its split/merge flags.
#[test]
fn panels_gathered_on_the_gpu_equal_panels_composed_on_the_cpu() {
    use segno::render::cache::ChunkCache;
    use segno::render::gather;
    use segno::render::gpu::Headless;
    use segno::render::slice::{compose, SliceView};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let layers = three_layers_with_a_failed_chunk(dir.path());
    assert_eq!(layers[0].0.levels.len(), 2);
    let gpu = Headless::new().expect("a wgpu adapter (lavapipe in CI)");
    let (w, h) = (61u32, 47u32);
    let mut checked = 0;
    let mut linear_rounds = 0;
    let (mut coarser, mut loading, mut failed) = (0, 0, 0);
    for plane in Plane::ALL {
        for (nm_per_px, centre) in [
            (2.0, [66.0, 66.0, 66.0]),
            (1.3, [70.1, 20.7, 90.3]),
            (9.0, [64.0, 64.0, 64.0]),
        ] {
            let cache = ChunkCache::new(64 << 20, 2);
            let view = SliceView {
                plane,
                center: WorldNm(centre),
                nm_per_px,
                width_px: w,
                height_px: h,
                orientation: segno::render::orientation::Orientation::IDENTITY,
            };
            for round in 0..6 {
                let mut wanted = Vec::new();
                let mut slices = Vec::new();
                let mut plans = Vec::new();
                for (i, (layer, settings)) in layers.iter().enumerate() {
                    let (slice, wt) = compose(i as u64, layer, settings.kind(), &view, &cache);
                    let (plan, _) = gather::plan(i as u64, layer, settings.kind(), &view, &cache);
                    assert_eq!(plan.rasterize(), slice);
                    coarser += slice.coarser;
                    loading += slice.loading;
                    failed += slice
                        .status
                        .iter()
                        .filter(|s| **s == status::FAILED)
                        .count();
                    wanted.extend(wt.into_requests());
                    slices.push(slice);
                    plans.push(Arc::new(plan));
                }
                let linear = linear_on_odd_rounds(&layers, &slices, &view, round);
                linear_rounds += usize::from(linear.iter().any(Option::is_some));
                let overlay = shade::DrawOverlay {
                    truth: 1,
                    prediction: 2,
                    instances: round % 2 == 1,
                    threshold: 0.5,
                    alpha: 0.4,
                    mask: None,
                };
                let cross = Some(([30.5, 20.5], [255, 0, 0], [0, 255, 0]));
                let (gathered, composed, reference) = draw_both(
                    &gpu,
                    (w, h),
                    &layers,
                    (&slices, &plans, &linear),
                    overlay,
                    cross,
                    checked as u64 + 1,
                );
                assert!(
                    gathered == composed,
                    "{plane:?} at {nm_per_px} nm/px, round {round}: {} pixels differ",
                    gathered
                        .chunks(4)
                        .zip(composed.chunks(4))
                        .filter(|(a, b)| a != b)
                        .count()
                );
                let worst = max_difference(&gathered, &reference);
                assert!(worst <= 1, "GPU and CPU reference differ by {worst}");
                checked += 1;
                if wanted.is_empty() {
                    break;
                }
                // Chunks arrive a few at a time.
                wanted.truncate(3);
                cache.request(wanted);
                assert!(cache.wait_idle(Duration::from_secs(10)));
            }
        }
    }
    assert!(checked >= 20, "{checked}");
    assert!(
        linear_rounds >= 4,
        "{linear_rounds} rounds sampled linearly"
    );
    assert!(
        coarser > 0 && loading > 0 && failed > 0,
        "{coarser} {loading} {failed}"
    );
    let stats = gpu.gpu_store_stats();
    assert!(
        stats.chunks > 0 && stats.uploaded as usize >= stats.chunks,
        "{stats:?}"
    );
    assert!(stats.bytes <= stats.budget_bytes);
}

/// Rotated cross-sections (neuroglancer's `crossSectionOrientation`): the GPU draws what
/// the CPU composes from whole chunks, per pixel the nearest voxel of the finest loaded
/// level, on every plane, zoomed in and out, while chunks arrive, with a failed chunk and
/// the error overlay.
#[test]
fn rotated_planes_on_the_gpu_equal_the_cpu_reference() {
    use segno::render::cache::ChunkCache;
    use segno::render::gather;
    use segno::render::gpu::Headless;
    use segno::render::orientation::Orientation;
    use segno::render::slice::{compose, SliceView};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let layers = three_layers_with_a_failed_chunk(dir.path());
    let gpu = Headless::new().expect("a wgpu adapter (lavapipe in CI)");
    let (w, h) = (61u32, 47u32);
    // 30° about y, then 20° about x.
    let orientation = Orientation::IDENTITY
        .rotated([0.0, 1.0, 0.0], 30f64.to_radians())
        .rotated([0.0, 0.0, 1.0], 20f64.to_radians());
    let (mut checked, mut ambiguous, mut pixels) = (0, 0usize, 0usize);
    let mut linear_rounds = 0;
    let (mut coarser, mut loading, mut failed) = (0, 0, 0);
    for plane in Plane::ALL {
        for (nm_per_px, centre) in [(1.7, [66.3, 60.1, 70.4]), (9.0, [64.0, 64.0, 64.0])] {
            let cache = ChunkCache::new(64 << 20, 2);
            let view = SliceView {
                plane,
                center: WorldNm(centre),
                nm_per_px,
                width_px: w,
                height_px: h,
                orientation,
            };
            // The plane is rotated: its points move off the axis-aligned plane.
            let corner = view.world_at(0.5, 0.5);
            assert!((corner.0[plane.axes()[2]] - centre[plane.axes()[2]]).abs() > 1.0);
            assert!(view.depth_of(&corner).abs() < 1e-9);
            for round in 0..8 {
                let mut wanted = Vec::new();
                let mut slices = Vec::new();
                let mut plans = Vec::new();
                for (i, (layer, settings)) in layers.iter().enumerate() {
                    let (composed, wt) = compose(i as u64, layer, settings.kind(), &view, &cache);
                    let (plan, _) = gather::plan(i as u64, layer, settings.kind(), &view, &cache);
                    assert!(plan.oblique);
                    let slice = plan.rasterize();
                    // The plan samples in f32 per chunk, composing in f64 per pixel: only
                    // pixels whose centre lies on a voxel border may differ.
                    let differ = (0..h)
                        .flat_map(|y| (0..w).map(move |x| (x, y)))
                        .filter(|(x, y)| slice.value_at(*x, *y) != composed.value_at(*x, *y))
                        .count();
                    ambiguous += differ;
                    pixels += (w * h) as usize;
                    coarser += composed.coarser;
                    loading += composed.loading;
                    failed += composed
                        .status
                        .iter()
                        .filter(|s| **s == status::FAILED)
                        .count();
                    // The plan counts loading pixels from a sample, but knows exactly
                    // whether any pixel is.
                    let shown_loading = slice
                        .status
                        .iter()
                        .filter(|s| **s == status::LOADING)
                        .count();
                    assert_eq!(slice.loading > 0, shown_loading > 0);
                    wanted.extend(wt.into_requests());
                    slices.push(slice);
                    plans.push(Arc::new(plan));
                }
                let linear = linear_on_odd_rounds(&layers, &slices, &view, round);
                linear_rounds += usize::from(linear.iter().any(Option::is_some));
                let overlay = shade::DrawOverlay {
                    truth: 1,
                    prediction: 2,
                    instances: round % 2 == 1,
                    threshold: 0.5,
                    alpha: 0.4,
                    mask: None,
                };
                let (gathered, composed, reference) = draw_both(
                    &gpu,
                    (w, h),
                    &layers,
                    (&slices, &plans, &linear),
                    overlay,
                    None,
                    checked as u64 + 1,
                );
                assert!(max_difference(&gathered, &reference) <= 1);
                let differ = gathered
                    .chunks(4)
                    .zip(composed.chunks(4))
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(
                    differ, 0,
                    "{plane:?} at {nm_per_px} nm/px, round {round}: {differ} pixels differ"
                );
                checked += 1;
                if wanted.is_empty() {
                    break;
                }
                wanted.truncate(4);
                cache.request(wanted);
                assert!(cache.wait_idle(Duration::from_secs(10)));
            }
        }
    }
    assert!(checked >= 12, "{checked}");
    assert_eq!(linear_rounds, 0, "rotated planes sample the nearest voxel");
    assert!(
        coarser > 0 && loading > 0 && failed > 0,
        "{coarser} {loading} {failed}"
    );
    assert!(
        ambiguous * 1000 <= pixels,
        "{ambiguous} of {pixels} pixels differ between f32 and f64 sampling"
    );
    eprintln!("{ambiguous} of {pixels} pixels on voxel borders differ between f32 and f64");
}

/// The GPU chunk store keeps to its budget: chunks drawn in the same frame that do not fit
/// are refused (drawn as loading) and counted, and chunks of earlier frames are evicted,
/// least recently drawn first, to make room.
#[test]
fn the_gpu_chunk_store_never_exceeds_its_budget() {
    use segno::render::cache::ChunkCache;
    use segno::render::gather;
    use segno::render::gpu::{GatherLayer, GatheredContent, GatheredPanel, Headless};
    use segno::render::layer::{open_layer, LayerKind};
    use segno::render::slice::SliceView;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let raw = open_layer(&c.join("raw")).unwrap();
    let cache = ChunkCache::new(64 << 20, 2);
    let gpu = Headless::new().expect("a wgpu adapter (lavapipe in CI)");
    // A slab of one 16×16 chunk as float32: 1 KiB. Room for 3.
    gpu.set_gpu_budget(3 * 1024);
    let next_id = std::sync::atomic::AtomicU64::new(1);
    let render = |z: f64| {
        // 64×64 pixels of 2 nm over the xy plane: 2×2 chunks of the finest level.
        let view = SliceView {
            plane: Plane::Xy,
            center: WorldNm([z, 64.0, 64.0]),
            nm_per_px: 2.0,
            width_px: 64,
            height_px: 64,
            orientation: segno::render::orientation::Orientation::IDENTITY,
        };
        let plan = loop {
            let (plan, wanted) = gather::plan(1, &raw, LayerKind::Image, &view, &cache);
            if wanted.visible.is_empty() && wanted.coarse.is_empty() {
                break plan;
            }
            cache.request(wanted.into_requests());
            assert!(cache.wait_idle(Duration::from_secs(10)));
        };
        assert_eq!(plan.chunks().count(), 4);
        let mut u: shade::GpuUniforms = bytemuck::Zeroable::zeroed();
        u.counts[0] = 1;
        u.layers[0].kind_tex = [0, 0, 1, 0];
        u.layers[0].hover[2] = 1;
        u.layers[0].range = [0.0, 255.0, 1.0, 0.0];
        let panel = GatheredPanel {
            rect: [0, 0, 64, 64],
            uniforms: u,
            content: Arc::new(GatheredContent {
                id: next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                base: None,
                dims: [64, 64, 1, 1, 2],
                layers: vec![GatherLayer::whole(0, 0, Arc::new(plan))],
                flags: None,
            }),
        };
        gpu.render_gathered(64, 64, &[panel], true).unwrap();
        gpu.gpu_store_stats()
    };
    let first = render(10.0);
    assert_eq!(
        (first.chunks, first.uploaded, first.refused, first.evicted),
        (3, 3, 1, 0)
    );
    assert_eq!((first.bytes, first.budget_bytes), (3 * 1024, 3 * 1024));
    // The same view again: what is held is drawn, nothing new fits.
    let again = render(10.0);
    assert_eq!((again.uploaded, again.refused, again.evicted), (3, 2, 0));
    // Another plane: the earlier chunks make room, least recently drawn first.
    let other = render(70.0);
    assert_eq!(
        (other.chunks, other.uploaded, other.evicted, other.refused),
        (3, 6, 3, 3)
    );
    assert_eq!(other.bytes, 3 * 1024);
}

/// The test volume written into `dir` with raw, labels and prediction in the xy layout at
/// 1.3 nm per pixel, gathered on the GPU, and a headless renderer.
fn gathered_xy_viewer(dir: &Path) -> (Viewer, segno::render::gpu::Headless) {
    let c = volume(dir);
    let mut v = viewer(&c, &["raw", "labels", "pred"]);
    v.use_gpu(true, true);
    v.state.layout = Layout::Xy;
    v.state.zoom_nm_per_px = 1.3;
    let gpu = segno::render::gpu::Headless::new().expect("a wgpu adapter (lavapipe in CI)");
    (v, gpu)
}

/// A gathered panel that pans moves the pixels it holds on the GPU and draws only the
/// strips that came into view and the chunks that arrived, and shows exactly what a panel
/// drawn whole shows, overlay flags included.
#[test]
fn a_gathered_panel_that_pans_draws_only_what_changed_and_stays_exact() {
    use segno::render::gpu::GatheredPanel;
    let dir = tempfile::tempdir().unwrap();
    let (mut v, gpu) = gathered_xy_viewer(dir.path());
    v.state.overlays.push(overlay("labels", "pred", true, 0.4));
    let (w, h) = (64u32, 48u32);
    let (mut incremental, mut drawn_px, mut whole_px) = (0, 0u64, 0u64);
    for step in 0..14 {
        let (dx, dy) = [(3.0, 0.0), (0.0, -2.0), (-5.0, 4.0), (1.0, 1.0)][step % 4];
        v.state.position_nm.0[2] += dx * 1.3;
        v.state.position_nm.0[1] += dy * 1.3;
        let (u, content) = v.gather_panel(Plane::Xy, [w, h]).unwrap();
        if content.base.is_some() {
            incremental += 1;
            for l in &content.layers {
                let d = l.dirty.as_ref().unwrap();
                drawn_px += d
                    .iter()
                    .map(|(_, r)| u64::from(r.width * r.height))
                    .sum::<u64>();
                whole_px += u64::from(w * h);
            }
        }
        let panel = GatheredPanel {
            rect: [0, 0, w, h],
            uniforms: u,
            content,
        };
        assert_gathered_as_composed(&gpu, &v, panel, &format!("step {step}"));
        // Chunks arrive every third step.
        if step % 3 == 2 {
            assert!(v.cache().wait_idle(Duration::from_secs(10)));
        }
    }
    assert!(incremental >= 10, "{incremental} incremental frames");
    assert!(
        drawn_px * 3 < whole_px,
        "drew {drawn_px} of {whole_px} pixels"
    );
}

/// Asserts that `panel` of `v`'s xy panel, gathered on the GPU, shows exactly what its
/// CPU-composed slices show on the GPU, and within one grey level of the CPU reference.
fn assert_gathered_as_composed(
    gpu: &segno::render::gpu::Headless,
    v: &Viewer,
    panel: segno::render::gpu::GatheredPanel,
    what: &str,
) {
    let [_, _, w, h] = panel.rect;
    let (gathered, _) = gpu.render_gathered(w, h, &[panel], true).unwrap();
    let (u, t) = v.panel_upload(Plane::Xy).unwrap();
    let composed = gpu.render(w, h, &[([0, 0, w, h], u, t.clone())]).unwrap();
    assert!(
        gathered == composed,
        "{what}: {} pixels differ",
        gathered
            .chunks(4)
            .zip(composed.chunks(4))
            .filter(|(a, b)| a != b)
            .count()
    );
    assert!(max_difference(&gathered, &shade::shade_all(&u, &t)) <= 1);
}

/// A gathered panel keeps its colours: a frame in which nothing changed colours no pixel,
/// a pan moves the colours with the values and colours only the pixels that came into
/// view, chunks that arrived and the cross-hairs, and what is shown stays exactly what the
/// CPU composition shows.
#[test]
fn a_gathered_panel_colours_only_what_changed() {
    use segno::render::gpu::GatheredPanel;
    let dir = tempfile::tempdir().unwrap();
    let (mut v, gpu) = gathered_xy_viewer(dir.path());
    let (w, h) = (64u32, 48u32);
    let whole = u64::from(w * h);
    let draw = |v: &mut Viewer| {
        let (u, content) = v.gather_panel(Plane::Xy, [w, h]).unwrap();
        let before = gpu.gathered_coloured_px();
        let panel = GatheredPanel {
            rect: [0, 0, w, h],
            uniforms: u,
            content,
        };
        assert_gathered_as_composed(&gpu, v, panel, "");
        gpu.gathered_coloured_px() - before
    };
    // Loaded, then drawn again unchanged: nothing coloured.
    assert_eq!(draw(&mut v), whole);
    for _ in 0..20 {
        assert!(v.cache().wait_idle(Duration::from_secs(10)));
        draw(&mut v);
        if !v.loading() {
            break;
        }
    }
    assert!(!v.loading());
    assert_eq!(draw(&mut v), 0);
    // Pans by a few pixels (the chunks in view already read): the strip that came into
    // view and the cross-hairs' lines (3 pixels wide, before and after the pan: a large
    // share of so small a panel), less than half of it.
    let mut panned = 0;
    for (dx, dy) in [(3.0, 0.0), (0.0, -2.0), (-5.0, 4.0), (1.0, 1.0)] {
        v.state.position_nm.0[2] += dx * 1.3;
        v.state.position_nm.0[1] += dy * 1.3;
        let px = draw(&mut v);
        assert!(
            px > 0 && px < whole / 2,
            "panned ({dx}, {dy}): {px} of {whole} pixels"
        );
        panned += px;
        assert!(v.cache().wait_idle(Duration::from_secs(10)));
        draw(&mut v);
    }
    assert!(panned > 0);
    // A change of look (contrast) colours every pixel again.
    let before = gpu.gathered_coloured_px();
    if let segno::render::state::LayerSettings::Image(s) = &mut v.state.layers[0].settings {
        s.range = [10.0, 200.0];
    }
    let after = draw(&mut v);
    assert_eq!(after, whole, "{before}");
    // With the error overlay (it outlines regions by their neighbours) a pan colours
    // every pixel; an unchanged frame still none.
    v.state.overlays.push(overlay("labels", "pred", true, 0.4));
    for _ in 0..20 {
        draw(&mut v);
        assert!(v.cache().wait_idle(Duration::from_secs(10)));
        if !v.loading() {
            break;
        }
    }
    draw(&mut v);
    assert_eq!(draw(&mut v), 0);
    v.state.position_nm.0[2] += 2.0 * 1.3;
    assert!(v.cache().wait_idle(Duration::from_secs(10)));
    assert_eq!(draw(&mut v), whole);
}

/// The chunk statistics count each layer's chunks by state: once the view has loaded,
/// every chunk the cache holds is in memory or failed (the corrupt chunk's slabs), and
/// nothing is queued, loading or missing.
#[test]
fn chunk_statistics_count_each_layers_chunks_by_state() {
    use segno::gui::viewer::ChunkStatistics;
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    corrupt_label_chunk(&c);
    let mut v = Viewer::new(64 << 20);
    v.add_layer(&c.join("raw"));
    v.add_layer(&c.join("labels"));
    v.state.position_nm = WorldNm([66.0, 66.0, 66.0]);
    v.state.zoom_nm_per_px = 2.0;
    settle(&mut v, Plane::Xy);
    let rows = v.chunk_statistics();
    let names: Vec<&str> = rows.iter().map(|r| r.layer.as_str()).collect();
    assert_eq!(names, ["raw", "labels"]);
    let total: usize = rows.iter().map(|r| r.in_memory + r.failed).sum();
    assert_eq!(total, v.cache().stats().chunks);
    let labels: &ChunkStatistics = &rows[1];
    assert!(labels.failed >= 1 && rows[0].failed == 0, "{rows:?}");
    for r in &rows {
        assert_eq!(
            (r.queued, r.loading, r.missing, r.on_gpu),
            (0, 0, 0, 0),
            "{r:?}"
        );
        assert!(r.in_memory > 0 && r.in_memory_bytes > 0, "{r:?}");
    }
}

/// The 3D panel ray cast on the GPU draws what the CPU reference draws (the projection of
/// the image, the nearest segment, only the selected ones when some are, and the planes,
/// rotated too), and an unchanged view is not cast again.
#[test]
fn the_3d_panel_on_the_gpu_matches_the_cpu_reference() {
    use segno::render::colors::Colormap;
    use segno::render::gpu::Headless;
    use segno::render::orientation::Orientation;
    use segno::render::volume::{CoarseLabels, CoarseVolume, Orbit};
    use segno::render::volume_render::{render_cpu, ImageLook, LabelLook, VolumeDraw};
    use std::sync::Arc;

    // 12 × 20 × 24 voxels of 8 × 4 × 4 nm from (16, 0, 8) nm.
    let shape = [12usize, 20, 24];
    let n = shape.iter().product::<usize>();
    let at = |i: usize| {
        (
            i / (shape[1] * shape[2]),
            i / shape[2] % shape[1],
            i % shape[2],
        )
    };
    let image = CoarseVolume {
        values: (0..n)
            .map(|i| {
                let (z, y, x) = at(i);
                ((z * 7 + y * 3 + x * 5) % 50) as f32
            })
            .collect(),
        shape,
        voxel_size_nm: [8.0, 4.0, 4.0],
        offset_nm: [16.0, 0.0, 8.0],
    };
    let labels = CoarseLabels {
        values: (0..n)
            .map(|i| {
                let (z, y, x) = at(i);
                if (3..7).contains(&z) && (4..10).contains(&y) && (5..12).contains(&x) {
                    7u64
                } else if (6..10).contains(&z) && (12..18).contains(&y) && (14..20).contains(&x) {
                    (1u64 << 40) + 3
                } else {
                    0
                }
            })
            .collect(),
        shape,
        voxel_size_nm: [8.0, 4.0, 4.0],
        offset_nm: [16.0, 0.0, 8.0],
    };
    let (image, labels) = (Arc::new(image), Arc::new(labels));
    let gpu = Headless::new().expect("a wgpu adapter (lavapipe in CI)");
    let (w, h) = (90u32, 70u32);
    let rotated = Orientation::IDENTITY.rotated([0.0, 1.0, 0.0], 0.4);
    let mut casts = 0;
    for (orbit, selected, planes, colormap) in [
        ((35.0, 25.0), vec![], None, Colormap::Grey),
        (
            (35.0, 25.0),
            vec![(1u64 << 40) + 3],
            None,
            Colormap::Viridis,
        ),
        (
            (-60.0, 10.0),
            vec![],
            Some(Orientation::IDENTITY),
            Colormap::Grey,
        ),
        ((120.0, -30.0), vec![7], Some(rotated), Colormap::Magma),
    ] {
        let draw = VolumeDraw {
            orbit: Orbit {
                yaw_deg: orbit.0,
                pitch_deg: orbit.1,
            },
            centre_nm: [64.0, 40.0, 56.0],
            nm_per_px: 1.9,
            image: Some((
                Arc::clone(&image),
                ImageLook {
                    range: [0.0, 49.0],
                    colormap,
                    invert: false,
                },
            )),
            labels: Some((
                Arc::clone(&labels),
                LabelLook {
                    selected: selected.clone(),
                    color_seed: 3,
                    alpha: 0.5,
                },
            )),
            planes: planes.map(|o| ([60.0, 37.0, 50.0], o)),
        };
        let cpu = render_cpu(&draw, w, h);
        let (got, renders) = gpu.render_volume(&draw, w, h).unwrap();
        casts += 1;
        assert_eq!(renders, casts);
        let off = got
            .chunks(4)
            .zip(cpu.chunks(4))
            .filter(|(a, b)| (0..3).any(|k| (i32::from(a[k]) - i32::from(b[k])).abs() > 2))
            .count();
        eprintln!("{orbit:?}: {off} of {} pixels differ by more than 2", w * h);
        // Only pixels whose samples fall on a voxel border may differ.
        assert!(
            off * 200 <= (w * h) as usize,
            "{orbit:?} {selected:?}: {off} of {} pixels differ",
            w * h
        );
        // Something of everything is drawn: the image, and the segments unless hidden.
        let distinct: std::collections::HashSet<&[u8]> = cpu.chunks(4).collect();
        assert!(distinct.len() > 20, "{}", distinct.len());
        // The same view again is not cast again.
        let (again, renders) = gpu.render_volume(&draw, w, h).unwrap();
        assert_eq!(renders, casts);
        assert!(again == got);
        // Moved planes are drawn over the last cast, not cast again, and equal the CPU's.
        if let Some((p, o)) = draw.planes {
            let moved = VolumeDraw {
                planes: Some(([p[0] + 17.0, p[1] - 9.0, p[2]], o)),
                ..draw.clone()
            };
            let (got, renders) = gpu.render_volume(&moved, w, h).unwrap();
            assert_eq!(renders, casts);
            let cpu = render_cpu(&moved, w, h);
            let off = got
                .chunks(4)
                .zip(cpu.chunks(4))
                .filter(|(a, b)| (0..3).any(|k| (i32::from(a[k]) - i32::from(b[k])).abs() > 2))
                .count();
            assert!(
                off * 200 <= (w * h) as usize,
                "moved planes: {off} pixels differ"
            );
            assert_ne!(got, again);
        }
    }
}

/// A label slice of `w` × `h` pixels with ids `id(x, y)` and statuses `st(x, y)`.
fn label_slice(
    (w, h): (u32, u32),
    id: impl Fn(u32, u32) -> u64,
    st: impl Fn(u32, u32) -> u8,
) -> segno::render::slice::LayerSlice {
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    for y in 0..h {
        for x in 0..w {
            ids.push(id(x, y));
            statuses.push(st(x, y));
        }
    }
    segno::render::slice::LayerSlice {
        width: w,
        height: h,
        values: segno::render::slice::SliceValues::Labels(ids),
        status: statuses,
        level: 0,
        coarser: 0,
        loading: 0,
        errors: Vec::new(),
    }
}

#[test]
fn split_and_merge_flags_counted_on_the_gpu_equal_the_cpu_count() {
    use segno::render::gpu_split_merge::count_on;
    let gpu = segno::render::gpu::Headless::new().expect("a wgpu adapter (lavapipe in CI)");
    let size = (97, 61);
    let high = 1u64 << 32;
    // True objects: vertical bands 10 pixels wide; ids 5 and 5 + 2^32 share their low half,
    // as do 7 and 7 + 2^32, so only a 64-bit comparison tells them apart.
    let truth_id = |x: u32, _y: u32| match x / 10 {
        0 => 0,
        1 => 5,
        2 => 5 + high,
        3 => 7,
        4 => 7 + high,
        5 => u64::MAX - 1,
        b => 100 + u64::from(b),
    };
    // Predicted objects: horizontal bands 20 pixels high in the left half (each true band
    // there is split, and each predicted band merges several true ones), one id per true
    // band in the right half, except two true bands merged into one id there.
    let prediction_id = |x: u32, y: u32| {
        if x < 48 {
            1 + high * u64::from(y / 20)
        } else if x / 10 == 6 || x / 10 == 7 {
            9
        } else {
            truth_id(x, y) ^ 0xffff
        }
    };
    // Pixels without data in either layer count for nothing: a loading corner and an
    // outside row; a band whose other half is not loaded is not split.
    let truth_status = |x: u32, y: u32| {
        if x > 90 && y < 10 {
            status::LOADING
        } else {
            status::DATA
        }
    };
    let prediction_status = |x: u32, y: u32| match (x, y) {
        (_, 60) => status::OUTSIDE,
        (20..=29, 20..) => status::LOADING,
        _ => status::DATA,
    };
    let truth = label_slice(size, truth_id, truth_status);
    let prediction = label_slice(size, prediction_id, prediction_status);
    let cpu = shade::instance_flags(&truth, &prediction);
    let on_gpu = count_on(&gpu, &truth, &prediction).unwrap();
    assert_eq!(on_gpu.len(), cpu.len());
    let differ = on_gpu.iter().zip(&cpu).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "{differ} pixels' flags differ");
    let at = |x: u32, y: u32| cpu[(y * size.0 + x) as usize];
    // Band 1 (id 5) meets predicted ids 1, 1 + 2^32, 1 + 2·2^32: split, and those merge it
    // with band 2.
    assert_eq!(at(15, 5), 3);
    // Band 2 (5 + 2^32) is loaded only in its first 20 rows: one predicted id, not split,
    // but its predicted id also covers band 1: merged.
    assert_eq!(at(25, 5), 2);
    assert_eq!(at(25, 30), 0, "no data in the prediction");
    // Bands 6 and 7 are both predicted as 9 (merge) but each is whole (no split).
    assert_eq!(at(65, 30), 2);
    assert_eq!(at(75, 30), 2);
    // Band 8 is predicted as one id of its own: nothing.
    assert_eq!(at(85, 30), 0);
    // True background (id 0) is never split, but a merging predicted object is flagged
    // over it too.
    assert_eq!(at(3, 3), 2);
    assert_eq!(at(95, 50), 0);
    // Every pixel a different true id (no two share a slot's key): only merges.
    let many = label_slice(
        size,
        |x, y| u64::from(y * 97 + x + 1) * (high + 3),
        |_, _| status::DATA,
    );
    let blocks = label_slice(
        size,
        |x, y| u64::from(x / 4 + 1000 * (y / 4) + 1),
        |_, _| status::DATA,
    );
    let cpu = shade::instance_flags(&many, &blocks);
    assert_eq!(count_on(&gpu, &many, &blocks).unwrap(), cpu);
    // Every block merges several true ids but the 1-pixel one in the corner.
    let corner = cpu.len() - 1;
    assert!(cpu[..corner].iter().all(|f| *f == 2) && cpu[corner] == 0);
    let cpu = shade::instance_flags(&blocks, &many);
    assert_eq!(count_on(&gpu, &blocks, &many).unwrap(), cpu);
    assert!(cpu[..corner].iter().all(|f| *f == 1) && cpu[corner] == 0);
    // Identical segmentations: nothing flagged.
    assert!(count_on(&gpu, &blocks, &blocks)
        .unwrap()
        .iter()
        .all(|f| *f == 0));
}

/// Linear sampling zoomed in past a voxel per pixel: the raw values (8 × voxel index along
/// x) interpolate to a ramp between voxel centres; nearest shows steps; zoomed out it is
/// nearest; the choice is saved with the view.
#[test]
fn linear_sampling_shows_values_between_voxel_centres() {
    use segno::render::state::Sampling;
    let dir = tempfile::tempdir().unwrap();
    let c = volume(dir.path());
    let mut v = viewer(&c, &["raw"]);
    v.state.zoom_nm_per_px = 1.0;
    settle(&mut v, Plane::Xy);
    // Pixel x's centre is at world 66 − 32 + x + 0.5 nm, voxel position (34.5 + x) / 4.
    let nearest: Vec<u8> = (8..14)
        .map(|x| cpu_pixel(&v, Plane::Xy, x, 20)[0])
        .collect();
    assert_eq!(nearest, vec![80, 80, 88, 88, 88, 88]);
    if let LayerSettings::Image(s) = &mut v.state.layers[0].settings {
        s.sampling = Sampling::Linear;
    }
    settle(&mut v, Plane::Xy);
    // Between voxel centres the ramp 8 · (position − 0.5) = 65 + 2x.
    let linear: Vec<u8> = (8..14)
        .map(|x| cpu_pixel(&v, Plane::Xy, x, 20)[0])
        .collect();
    assert_eq!(linear, vec![81, 83, 85, 87, 89, 91]);
    // The GPU draws the same.
    let (u, t) = v.panel_upload(Plane::Xy).unwrap();
    let gpu = segno::render::gpu::Headless::new().expect("a wgpu adapter (lavapipe in CI)");
    let image = gpu
        .render(64, 64, &[([0, 0, 64, 64], u, t.clone())])
        .unwrap();
    assert!(max_difference(&image, &shade::shade_all(&u, &t)) <= 1);
    assert_eq!(image[(20 * 64 + 10) * 4], 85);
    // At 4 nm per pixel (one voxel per pixel) nothing is magnified: nearest.
    v.state.zoom_nm_per_px = 4.0;
    settle(&mut v, Plane::Xy);
    let x = 10;
    let world = 66.0 - 128.0 + 4.0 * (f64::from(x) + 0.5);
    let value = (8.0 * (world / 4.0).floor()) as u8;
    assert_eq!(cpu_pixel(&v, Plane::Xy, x, 20)[0], value);
    // Saved and read back with the view.
    let file = dir.path().join("view.json");
    v.state.save(&file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"sampling\": \"linear\""), "{text}");
    let back = segno::render::state::ViewState::load(&file).unwrap();
    assert_eq!(back.layers[0].settings, v.state.layers[0].settings);
}
