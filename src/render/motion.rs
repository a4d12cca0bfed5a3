//! How the view moved between two frames of a panel: a pan by whole pixels in the plane
//! (what is drawn moves, only the exposed strips are drawn anew), or a step along the
//! plane's normal (drawn at a coarser level while it lasts, with the next slices read
//! ahead).

use std::sync::Arc;

use super::cache::Request;
use super::composer::Scene;
use super::layer::LayerData;
use super::slice::{self, SliceView};

/// The whole-pixel shift (dx, dy) from `old` to `new` when they differ only by panning
/// in the plane by less than half the panel size.
pub fn pixel_shift(old: &SliceView, new: &SliceView) -> Option<(i64, i64)> {
    if old.plane != new.plane
        || new.oblique()
        || old.orientation != new.orientation
        || old.nm_per_px != new.nm_per_px
        || old.width_px != new.width_px
        || old.height_px != new.height_px
    {
        return None;
    }
    let [h, v, n] = new.plane.axes();
    if old.center.0[n] != new.center.0[n] {
        return None;
    }
    let whole = |d: f64| {
        let r = d.round();
        ((d - r).abs() < 1e-6).then_some(r as i64)
    };
    let dx = whole((new.center.0[h] - old.center.0[h]) / new.nm_per_px)?;
    let dy = whole((new.center.0[v] - old.center.0[v]) / new.nm_per_px)?;
    let fits = dx.unsigned_abs() < u64::from(new.width_px) / 2
        && dy.unsigned_abs() < u64::from(new.height_px) / 2;
    (fits && (dx, dy) != (0, 0)).then_some((dx, dy))
}

/// The strips of `view` a pan by (dx, dy) pixels exposes: their top-left pixel and the
/// view of just that strip (same pixel grid).
pub fn exposed_strips(view: &SliceView, dx: i64, dy: i64) -> Vec<(u32, u32, SliceView)> {
    let (w, h) = (i64::from(view.width_px), i64::from(view.height_px));
    let mut rects = Vec::new();
    if dx > 0 {
        rects.push((w - dx, 0, dx, h));
    } else if dx < 0 {
        rects.push((0, 0, -dx, h));
    }
    // Rows exposed by dy, without the columns already covered.
    let (cx0, cw) = if dx > 0 {
        (0, w - dx)
    } else {
        (-dx.min(0), w + dx.min(0))
    };
    if dy > 0 && cw > 0 {
        rects.push((cx0, h - dy, cw, dy));
    } else if dy < 0 && cw > 0 {
        rects.push((cx0, 0, cw, -dy));
    }
    rects
        .into_iter()
        .map(|(x0, y0, sw, sh)| {
            let centre = view.world_at(x0 as f64 + sw as f64 / 2.0, y0 as f64 + sh as f64 / 2.0);
            (
                x0 as u32,
                y0 as u32,
                SliceView {
                    center: centre,
                    width_px: sw as u32,
                    height_px: sh as u32,
                    ..*view
                },
            )
        })
        .collect()
}

/// How far `view`'s plane moved along its normal since `old` (nm), when that is motion for
/// some used layer of `scene` rather than a jump (else 0), and whether some used layer is
/// then drawn at a coarser level than at rest.
pub(crate) fn moving_step(
    scene: &Scene<'_>,
    used: &[bool],
    old: Option<SliceView>,
    view: &SliceView,
) -> (f64, bool) {
    let Some(step) = old.and_then(|old| slice::normal_step_nm(&old, view)) else {
        return (0.0, false);
    };
    let layers: Vec<&Arc<LayerData>> = scene
        .layers
        .iter()
        .zip(used)
        .filter(|(_, u)| **u)
        .filter_map(|(l, _)| l.data)
        .collect();
    let (plane, nm_per_px) = (view.plane, view.nm_per_px);
    if !layers
        .iter()
        .any(|d| slice::is_motion(d, plane, nm_per_px, step))
    {
        return (0.0, false);
    }
    let coarser = layers.iter().any(|d| {
        slice::pick_level_moving(d, plane, nm_per_px, step)
            != slice::pick_level(d, plane, nm_per_px)
    });
    (step, coarser)
}

/// The slabs to read ahead of every used layer's plane in `view`, which moved `step_nm`
/// along its normal (see [`slice::read_ahead`]).
pub(crate) fn read_ahead(
    scene: &Scene<'_>,
    used: &[bool],
    view: &SliceView,
    step_nm: f64,
) -> Vec<Request> {
    scene
        .layers
        .iter()
        .zip(used)
        .filter(|(_, u)| **u)
        .filter_map(|(l, _)| {
            let d = l.data?;
            Some(slice::read_ahead(
                l.uid,
                d,
                l.state.settings.kind(),
                view,
                step_nm,
            ))
        })
        .flatten()
        .collect()
}
