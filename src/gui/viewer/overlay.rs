//! What the viewer draws over the data for the Apply section: a block job's blocks
//! coloured by their state (a block map that fills as workers finish), the job's region,
//! and a region the user draws with the mouse to apply a run to.

use super::*;
use crate::blockwise::ledger::BlockMark;

/// A block job drawn over the volume: its grid and each block's state.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockMap {
    /// The job's region begin (nm, z y x).
    pub begin_nm: [f64; 3],
    /// The job's region end (nm).
    pub end_nm: [f64; 3],
    /// The block size (nm).
    pub block_nm: [f64; 3],
    /// Each block's state in block order (x fastest), as the job's ledger lists them.
    pub marks: Arc<Vec<BlockMark>>,
}

/// One block cut by a cross-section: its extent along the panel's horizontal and vertical
/// axes (nm) and its state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockCut {
    /// `[begin, end)` along the horizontal axis.
    pub h_nm: [f64; 2],
    /// `[begin, end)` along the vertical axis.
    pub v_nm: [f64; 2],
    /// The block's state.
    pub mark: BlockMark,
}

impl BlockMap {
    /// The map of a job whose region begins at `offset_nm` with `shape_nm`, cut into
    /// blocks of `block_nm`, with the ledger's marks.
    pub fn new(
        offset_nm: &[i64],
        shape_nm: &[i64],
        block_nm: &[i64],
        marks: Vec<BlockMark>,
    ) -> Option<Self> {
        if offset_nm.len() != 3 || shape_nm.len() != 3 || block_nm.len() != 3 {
            return None;
        }
        let f = |v: &[i64]| [v[0] as f64, v[1] as f64, v[2] as f64];
        let begin = f(offset_nm);
        let shape = f(shape_nm);
        Some(Self {
            begin_nm: begin,
            end_nm: std::array::from_fn(|a| begin[a] + shape[a]),
            block_nm: f(block_nm),
            marks: Arc::new(marks),
        })
    }

    /// Blocks per axis.
    pub fn counts(&self) -> [u64; 3] {
        std::array::from_fn(|a| {
            ((self.end_nm[a] - self.begin_nm[a]) / self.block_nm[a].max(1e-9))
                .ceil()
                .max(1.0) as u64
        })
    }

    /// The blocks a cross-section `plane` through `position` cuts, those overlapping the
    /// visible `h_nm` × `v_nm` window only, clipped to the region.
    pub fn cut(
        &self,
        plane: Plane,
        position: &WorldNm,
        h_nm: [f64; 2],
        v_nm: [f64; 2],
    ) -> Vec<BlockCut> {
        let [h, v, n] = plane.axes();
        let counts = self.counts();
        let p = position.0[n];
        if p < self.begin_nm[n] || p >= self.end_nm[n] {
            return Vec::new();
        }
        let index_of = |axis: usize, x: f64| {
            (((x - self.begin_nm[axis]) / self.block_nm[axis])
                .floor()
                .max(0.0) as u64)
                .min(counts[axis] - 1)
        };
        let kn = index_of(n, p);
        let range = |axis: usize, w: [f64; 2]| {
            if w[1] <= self.begin_nm[axis] || w[0] >= self.end_nm[axis] {
                return 0..0;
            }
            index_of(axis, w[0])..index_of(axis, w[1]) + 1
        };
        let extent = |axis: usize, k: u64| {
            let b = self.begin_nm[axis] + k as f64 * self.block_nm[axis];
            [b, (b + self.block_nm[axis]).min(self.end_nm[axis])]
        };
        let mut out = Vec::new();
        for kh in range(h, h_nm) {
            for kv in range(v, v_nm) {
                let mut index = [0u64; 3];
                index[h] = kh;
                index[v] = kv;
                index[n] = kn;
                let k = (index[0] * counts[1] + index[1]) * counts[2] + index[2];
                out.push(BlockCut {
                    h_nm: extent(h, kh),
                    v_nm: extent(v, kv),
                    mark: self.marks.get(k as usize).copied().unwrap_or_default(),
                });
            }
        }
        out
    }
}

impl BlockMap {
    /// Where the rotated cross-section `view` cuts the blocks that are not pending: each
    /// one's polygon in panel pixels (pixel_of's coordinates) and its state; none for maps
    /// of more than [`MAX_ROTATED_BLOCKS`] blocks.
    pub fn cut_rotated(&self, view: &SliceView) -> Vec<(Vec<(f64, f64)>, BlockMark)> {
        let counts = self.counts();
        let total = counts.iter().product::<u64>();
        if total > MAX_ROTATED_BLOCKS {
            return Vec::new();
        }
        let [u, _, n] = view.directions();
        let (w, h) = (f64::from(view.width_px), f64::from(view.height_px));
        let mut out = Vec::new();
        for k in 0..total {
            let mark = self.marks.get(k as usize).copied().unwrap_or_default();
            if mark == BlockMark::Pending {
                continue;
            }
            let index = [
                k / (counts[1] * counts[2]),
                k / counts[2] % counts[1],
                k % counts[2],
            ];
            let lo: [f64; 3] =
                std::array::from_fn(|a| self.begin_nm[a] + index[a] as f64 * self.block_nm[a]);
            let hi: [f64; 3] =
                std::array::from_fn(|a| (lo[a] + self.block_nm[a]).min(self.end_nm[a]));
            let cut = crate::render::oblique::plane_cut(lo, hi, view.center.0, n, u);
            if cut.len() < 3 {
                continue;
            }
            let points: Vec<(f64, f64)> = cut.iter().map(|p| view.pixel_of(&WorldNm(*p))).collect();
            let inside = points.iter().any(|p| p.0 >= 0.0 && p.0 <= w)
                && points.iter().any(|p| p.1 >= 0.0 && p.1 <= h);
            if inside {
                out.push((points, mark));
            }
        }
        out
    }
}

/// Most blocks a block map may have to be drawn on rotated cross-sections.
pub const MAX_ROTATED_BLOCKS: u64 = 100_000;

/// The colour a block's state is drawn in (translucent).
pub fn mark_color(mark: BlockMark) -> egui::Color32 {
    match mark {
        BlockMark::Pending => egui::Color32::TRANSPARENT,
        BlockMark::Running => egui::Color32::from_rgba_unmultiplied(255, 200, 0, 70),
        BlockMark::Stalled => egui::Color32::from_rgba_unmultiplied(255, 120, 0, 90),
        BlockMark::Failed => egui::Color32::from_rgba_unmultiplied(230, 30, 30, 110),
        BlockMark::Done => egui::Color32::from_rgba_unmultiplied(40, 200, 90, 45),
    }
}

/// The colour regions are outlined in.
const REGION_COLOR: egui::Color32 = egui::Color32::from_rgb(0, 210, 255);

/// A region drawn in the viewer for the Apply section: drag in a cross-section to set
/// its extent along the panel's two axes (the third keeps its extent).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionDraft {
    /// Begin (nm, z y x).
    pub begin_nm: [f64; 3],
    /// End (nm).
    pub end_nm: [f64; 3],
    /// The voxel grid the region snaps to: offset and voxel size (nm), when known.
    pub grid: Option<([f64; 3], [f64; 3])>,
    /// Where the drag in progress started.
    drag_from: Option<WorldNm>,
    /// Set when the user takes the region (the app hands it to the Apply section).
    pub accepted: bool,
}

impl RegionDraft {
    /// A draft covering `begin_nm..end_nm`, snapping to `grid`.
    pub fn new(begin_nm: [f64; 3], end_nm: [f64; 3], grid: Option<([f64; 3], [f64; 3])>) -> Self {
        Self {
            begin_nm,
            end_nm,
            grid,
            drag_from: None,
            accepted: false,
        }
    }

    /// A draft from `--roi` text (`[z0:z1, y0:y1, x0:x1]`), or `None` when it does not parse.
    pub fn parse(text: &str, grid: Option<([f64; 3], [f64; 3])>) -> Option<Self> {
        let roi = crate::geometry::Roi::parse_slices(text).ok()?;
        if roi.dims() != 3 {
            return None;
        }
        let b = roi.begin();
        let e = roi.end();
        Some(Self::new(
            std::array::from_fn(|a| b[a] as f64),
            std::array::from_fn(|a| e[a] as f64),
            grid,
        ))
    }

    /// Sets the extent along `plane`'s two axes to the box between world points `a` and
    /// `b`, widened to whole voxels of the grid.
    pub fn span(&mut self, plane: Plane, a: &WorldNm, b: &WorldNm) {
        let [h, v, _] = plane.axes();
        for axis in [h, v] {
            let (lo, hi) = (a.0[axis].min(b.0[axis]), a.0[axis].max(b.0[axis]));
            let (lo, hi) = match self.grid {
                Some((offset, vs)) if vs[axis] > 0.0 => {
                    let lo = offset[axis] + ((lo - offset[axis]) / vs[axis]).floor() * vs[axis];
                    let hi = offset[axis] + ((hi - offset[axis]) / vs[axis]).ceil() * vs[axis];
                    (lo, hi.max(lo + vs[axis]))
                }
                _ => (lo.floor(), hi.ceil().max(lo.floor() + 1.0)),
            };
            self.begin_nm[axis] = lo;
            self.end_nm[axis] = hi;
        }
    }

    /// The region as `segno apply --roi` takes it: `[z0:z1, y0:y1, x0:x1]` in whole nm.
    pub fn roi_text(&self) -> String {
        let parts: Vec<String> = (0..3)
            .map(|a| format!("{}:{}", self.begin_nm[a].round(), self.end_nm[a].round()))
            .collect();
        format!("[{}]", parts.join(", "))
    }
}

impl Viewer {
    /// Draws the block map, the job's region and the drawn region over a cross-section.
    pub(super) fn draw_overlays(&self, painter: &egui::Painter, plane: Plane, rect: egui::Rect) {
        if !self.state.orientation.is_identity() {
            self.draw_overlays_rotated(painter, plane, rect);
            return;
        }
        let [h, v, n] = plane.axes();
        let zoom = self.state.zoom_nm_per_px;
        let centre = self.state.position_nm;
        let to_screen = |hx: f64, vy: f64| {
            egui::pos2(
                rect.center().x + ((hx - centre.0[h]) / zoom) as f32,
                rect.center().y + ((vy - centre.0[v]) / zoom) as f32,
            )
        };
        let window = |axis: usize, half_px: f32| {
            let half = f64::from(half_px) * zoom;
            [centre.0[axis] - half, centre.0[axis] + half]
        };
        let (wh, wv) = (
            window(h, rect.width() / 2.0),
            window(v, rect.height() / 2.0),
        );
        let outline = |b: &[f64; 3], e: &[f64; 3], stroke: egui::Stroke| {
            if centre.0[n] >= b[n] && centre.0[n] < e[n] {
                painter.rect_stroke(
                    egui::Rect::from_two_pos(to_screen(b[h], b[v]), to_screen(e[h], e[v])),
                    0.0,
                    stroke,
                    egui::StrokeKind::Middle,
                );
            }
        };
        if let Some(map) = &self.block_map {
            let cuts = map.cut(plane, &centre, wh, wv);
            // Blocks smaller than a few points are filled without their borders.
            let bordered = map.block_nm[h].min(map.block_nm[v]) / zoom >= 6.0;
            for c in &cuts {
                let r = egui::Rect::from_two_pos(
                    to_screen(c.h_nm[0], c.v_nm[0]),
                    to_screen(c.h_nm[1], c.v_nm[1]),
                );
                painter.rect_filled(r, 0.0, mark_color(c.mark));
                if bordered {
                    painter.rect_stroke(
                        r,
                        0.0,
                        egui::Stroke::new(0.5, egui::Color32::from_white_alpha(50)),
                        egui::StrokeKind::Inside,
                    );
                }
            }
            outline(
                &map.begin_nm,
                &map.end_nm,
                egui::Stroke::new(1.5, REGION_COLOR),
            );
        }
        if let Some(d) = &self.region {
            outline(&d.begin_nm, &d.end_nm, egui::Stroke::new(2.0, REGION_COLOR));
        }
    }

    /// [`Viewer::draw_overlays`] on a rotated cross-section: the polygons where it cuts
    /// the blocks and the regions.
    fn draw_overlays_rotated(&self, painter: &egui::Painter, plane: Plane, rect: egui::Rect) {
        let view = SliceView {
            plane,
            center: self.state.position_nm,
            nm_per_px: self.state.zoom_nm_per_px,
            width_px: rect.width().max(1.0) as u32,
            height_px: rect.height().max(1.0) as u32,
            orientation: self.state.orientation,
        };
        let to_screen = |(x, y): (f64, f64)| {
            rect.center()
                + egui::vec2(
                    (x - f64::from(view.width_px) / 2.0) as f32,
                    (y - f64::from(view.height_px) / 2.0) as f32,
                )
        };
        let [u, _, n] = view.directions();
        let outline = |b: [f64; 3], e: [f64; 3], stroke: egui::Stroke| {
            let cut = crate::render::oblique::plane_cut(b, e, view.center.0, n, u);
            if cut.len() >= 3 {
                let points = cut
                    .iter()
                    .map(|p| to_screen(view.pixel_of(&WorldNm(*p))))
                    .collect();
                painter.add(egui::Shape::closed_line(points, stroke));
            }
        };
        if let Some(map) = &self.block_map {
            let blocks = map.counts().iter().product::<u64>();
            if blocks > MAX_ROTATED_BLOCKS {
                painter.text(
                    rect.left_bottom() + egui::vec2(6.0, -4.0),
                    egui::Align2::LEFT_BOTTOM,
                    format!(
                        "{blocks} blocks: too many to draw on a rotated plane (at most {MAX_ROTATED_BLOCKS})"
                    ),
                    egui::FontId::proportional(12.0),
                    egui::Color32::from_rgb(255, 200, 0),
                );
            }
            for (points, mark) in map.cut_rotated(&view) {
                let points = points.into_iter().map(to_screen).collect();
                painter.add(egui::Shape::convex_polygon(
                    points,
                    mark_color(mark),
                    egui::Stroke::NONE,
                ));
            }
            outline(
                map.begin_nm,
                map.end_nm,
                egui::Stroke::new(1.5, REGION_COLOR),
            );
        }
        if let Some(d) = &self.region {
            outline(d.begin_nm, d.end_nm, egui::Stroke::new(2.0, REGION_COLOR));
        }
    }

    /// The bar above the panels while a region is being drawn: its extent, take it or
    /// give up.
    pub(super) fn region_bar(&mut self, ui: &mut egui::Ui) {
        let Some(text) = self
            .region
            .as_ref()
            .filter(|d| !d.accepted)
            .map(RegionDraft::roi_text)
        else {
            return;
        };
        let (mut take, mut cancel) = (false, false);
        ui.horizontal_wrapped(|ui| {
            ui.label(egui::RichText::new("Apply region").strong());
            take = ui.button("Use for Apply").clicked();
            cancel = ui.button("Cancel").clicked();
            ui.label(format!("{text} nm"));
            ui.label(
                egui::RichText::new(
                    "drag in a panel to set its two axes; the third keeps its extent",
                )
                .weak(),
            );
        });
        if cancel {
            self.region = None;
        } else if let (true, Some(d)) = (take, self.region.as_mut()) {
            d.accepted = true;
        }
    }

    /// Handles a drag in a cross-section while a region is being drawn; returns whether it
    /// did (the drag then does not pan).
    pub(super) fn draw_region(
        &mut self,
        plane: Plane,
        rect: egui::Rect,
        response: &egui::Response,
    ) -> bool {
        // Regions are boxes along the axes: drawn on axis-aligned planes only.
        if !self.state.orientation.is_identity() {
            return false;
        }
        let Some(d) = self.region.as_mut().filter(|d| !d.accepted) else {
            return false;
        };
        let world = |pos: egui::Pos2| super::input::world_at(&self.state, plane, rect, pos);
        let Some(pos) = response.interact_pointer_pos() else {
            return false;
        };
        if response.drag_started_by(egui::PointerButton::Primary) {
            d.drag_from = Some(world(pos));
        }
        if response.dragged_by(egui::PointerButton::Primary) {
            if let Some(from) = d.drag_from {
                d.span(plane, &from, &world(pos));
            }
            return true;
        }
        false
    }

    /// The region the user took for the Apply section, if any (taken once).
    pub fn take_region(&mut self) -> Option<String> {
        if self.region.as_ref().is_some_and(|d| d.accepted) {
            return self.region.take().map(|d| d.roi_text());
        }
        None
    }

    /// Starts drawing a region, from `roi` text when it parses, else covering the first
    /// layer (snapping to its finest voxel grid).
    pub fn start_region(&mut self, roi: &str) {
        let grid = self.layer_data(0).map(|d| {
            let l = &d.levels[0];
            (l.offset_nm, l.voxel_size_nm)
        });
        let bounds = self.layer_data(0).map(|d| d.levels[0].bounds_nm());
        self.region = RegionDraft::parse(roi, grid)
            .or_else(|| bounds.map(|(b, e)| RegionDraft::new(b, e, grid)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> BlockMap {
        // 3 × 2 × 2 blocks of 10 nm over [0, 25) × [0, 20) × [0, 20): the last z block is
        // cut at 25.
        let mut marks = vec![BlockMark::Pending; 12];
        marks[0] = BlockMark::Done;
        marks[5] = BlockMark::Running;
        marks[11] = BlockMark::Failed;
        BlockMap::new(&[0, 0, 0], &[25, 20, 20], &[10, 10, 10], marks).unwrap()
    }

    #[test]
    fn a_rotated_cross_section_cuts_the_blocks_it_crosses_in_polygons() {
        let m = map();
        // The xy panel at z = 12 turned 30° about z: still inside z block 1, whose
        // running block 5 (y 0..10, x 10..20) it cuts in a polygon around its centre.
        let view = SliceView {
            plane: Plane::Xy,
            center: WorldNm([12.0, 10.0, 10.0]),
            nm_per_px: 0.5,
            width_px: 80,
            height_px: 80,
            orientation: crate::render::orientation::Orientation::IDENTITY
                .rotated([1.0, 0.0, 0.0], 30f64.to_radians()),
        };
        let cuts = m.cut_rotated(&view);
        assert_eq!(cuts.len(), 1, "{cuts:?}");
        let (points, mark) = &cuts[0];
        assert_eq!(*mark, BlockMark::Running);
        assert_eq!(points.len(), 4);
        // The block's centre (z 12, y 5, x 15) lies inside the polygon's bounding box.
        let (cx, cy) = view.pixel_of(&WorldNm([12.0, 5.0, 15.0]));
        let (x0, x1) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (y0, y1) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
        assert!(
            x0 < cx && cx < x1 && y0 < cy && cy < y1,
            "{points:?} ({cx}, {cy})"
        );
        // Tilted out of the z = 10..20 layer, the plane also cuts the done block 0 (z 0).
        let tilted = SliceView {
            orientation: crate::render::orientation::Orientation::IDENTITY
                .rotated([0.0, 1.0, 0.0], -60f64.to_radians()),
            ..view
        };
        let marks: Vec<BlockMark> = m.cut_rotated(&tilted).into_iter().map(|c| c.1).collect();
        assert!(marks.contains(&BlockMark::Done), "{marks:?}");
    }

    #[test]
    fn a_cross_section_cuts_the_blocks_at_its_depth_with_their_states() {
        let m = map();
        assert_eq!(m.counts(), [3, 2, 2]);
        // xy at z = 12: blocks 4..8 (z index 1); block 5 is (z 1, y 0, x 1).
        let cuts = m.cut(
            Plane::Xy,
            &WorldNm([12.0, 0.0, 0.0]),
            [-100.0, 100.0],
            [-100.0, 100.0],
        );
        assert_eq!(cuts.len(), 4);
        let running: Vec<_> = cuts
            .iter()
            .filter(|c| c.mark == BlockMark::Running)
            .collect();
        assert_eq!(running.len(), 1);
        assert_eq!(
            (running[0].h_nm, running[0].v_nm),
            ([10.0, 20.0], [0.0, 10.0])
        );
        // xz at y = 15: the last z block is clipped to the region, and block 11 failed.
        let cuts = m.cut(
            Plane::Xz,
            &WorldNm([0.0, 15.0, 0.0]),
            [-100.0, 100.0],
            [-100.0, 100.0],
        );
        assert_eq!(cuts.len(), 6);
        let failed = cuts.iter().find(|c| c.mark == BlockMark::Failed).unwrap();
        assert_eq!((failed.h_nm, failed.v_nm), ([10.0, 20.0], [20.0, 25.0]));
        // Outside the region, or outside the visible window: nothing.
        assert!(m
            .cut(
                Plane::Xy,
                &WorldNm([30.0, 0.0, 0.0]),
                [-100.0, 100.0],
                [-100.0, 100.0]
            )
            .is_empty());
        let cuts = m.cut(Plane::Xy, &WorldNm([0.0, 0.0, 0.0]), [0.0, 5.0], [0.0, 5.0]);
        assert_eq!(cuts.len(), 1);
        assert_eq!(cuts[0].mark, BlockMark::Done);
    }

    #[test]
    fn a_drawn_region_snaps_outward_to_whole_voxels_and_reads_as_a_roi() {
        let grid = Some(([0.0, 2.0, 0.0], [8.0, 4.0, 4.0]));
        let mut d = RegionDraft::parse("[0:80, 2:42, 0:40]", grid).unwrap();
        // Dragged in xy from (x 5, y 7) to (x 1, y 30): y snaps to [6, 30), x to [0, 8).
        d.span(
            Plane::Xy,
            &WorldNm([20.0, 7.0, 5.0]),
            &WorldNm([20.0, 30.0, 1.0]),
        );
        assert_eq!(d.roi_text(), "[0:80, 6:30, 0:8]");
        // In xz: z and x change, y stays.
        d.span(
            Plane::Xz,
            &WorldNm([9.0, 0.0, 3.0]),
            &WorldNm([30.0, 0.0, 3.5]),
        );
        assert_eq!(d.roi_text(), "[8:32, 6:30, 0:4]");
        assert!(RegionDraft::parse("[0:8, 0:8]", None).is_none());
    }
}
