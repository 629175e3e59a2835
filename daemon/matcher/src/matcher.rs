//! The built-in minutiae matcher.
//!
//! 1. **Preparation** (once per template, [`PreparedTemplate`]): minutiae are scaled to
//!    500 dpi, turned into a y-up frame (ISO/ANSI angles are counter-clockwise with y
//!    pointing down), and every minutia gets *edges* to its nearest neighbours. An edge
//!    is described by its length and by the angle of the edge seen from each end's
//!    minutia direction: invariant to rotation and translation. Edges are sorted by
//!    length so that a comparison finds compatible edges with a sliding window.
//! 2. **Local structures → candidate pairings**: every probe edge is compared with the
//!    candidate edges of similar length; an edge pair within the tolerances votes for
//!    the two minutia pairings it implies. A minutia pairing with many votes has a
//!    neighbourhood that agrees in both prints (the local structure matches), which
//!    missing or spurious neighbours only thin out instead of breaking.
//! 3. **Global consolidation**: the best-supported edge pairs (roots) each give a rigid
//!    alignment (rotation from the edge directions, translation from their midpoints).
//!    All minutiae are paired one-to-one under that alignment inside tolerance boxes
//!    that grow with the distance from the anchor (skin stretches more far from where
//!    the finger presses), the rigid transform is re-fitted by least squares on the
//!    pairs, and the pairing is redone. The best root wins.
//! 4. **Score**: the quality-of-fit-weighted pair count, squared, over the number of
//!    minutiae of each print inside the other's overlap region: partial prints are
//!    judged on what they share, not on what the sensor did not see.
//!
//! The raw score is not a probability; [`crate::calibration`] maps it to a false match
//! rate.

use crate::ansi378::AnsiRecord;
use crate::iso19794_2::IsoRecord;
use crate::record::{AngleUnit, FingerPosition, FingerView, ImageGeometry, RecordError};
use std::cell::RefCell;
use std::f32::consts::{PI, TAU};
use std::fmt;

/// 500 dpi in pixels per centimetre: the frame every template is scaled to.
const PPCM_500DPI: f32 = 196.85;
/// More minutiae than this are dropped (lowest quality first): real plain impressions
/// have 30–80, and the cost of a comparison grows with the square.
pub const MAX_MINUTIAE: usize = 96;
/// Neighbours per minutia that get an edge.
const NEIGHBOURS: usize = 6;
/// Longest edge (px at 500 dpi, ≈ 7 mm): longer ones distort too much to be local.
const MAX_EDGE: f32 = 150.0;
/// Shortest edge: two minutiae closer than this are usually one broken ridge.
const MIN_EDGE: f32 = 5.0;
/// Edge length tolerance: a base for position noise plus a share for skin stretch.
const EDGE_LEN_TOL_BASE: f32 = 6.0;
const EDGE_LEN_TOL_REL: f32 = 0.07;
/// Edge angle tolerance (each end), radians (≈ 22°).
const EDGE_ANGLE_TOL: f32 = 0.38;
/// Pairing tolerance box: distance base and growth per px from the anchor, angle.
const PAIR_DIST_BASE: f32 = 11.0;
const PAIR_DIST_REL: f32 = 0.06;
const PAIR_ANGLE_TOL: f32 = 0.52; // ≈ 30°
/// Roots tried in the consolidation.
const ROOTS: usize = 4;
/// The overlap counts are floored so that three minutiae matching in a tiny overlap
/// do not count as a perfect match.
const MIN_OVERLAP: f32 = 12.0;
/// Margin (px) around a print's bounding box that still counts as overlap.
const OVERLAP_MARGIN: f32 = 12.0;

/// Why a template cannot be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("the record has {views} finger view(s); view {index} was asked for")]
    NoSuchView { index: usize, views: usize },
}

#[derive(Clone, Copy)]
struct Point {
    x: f32,
    y: f32,
    /// Radians in [0, 2π), counter-clockwise in the y-up frame.
    dir: f32,
}

/// Bins of the `a_from` angle used to bucket edges: a probe edge only looks at the
/// candidate edges in its own bin and the two next to it (the bin width is above the
/// angle tolerance), which cuts the comparisons about fivefold.
const ANGLE_BINS: usize = 16;
const BIN_WIDTH: f32 = TAU / ANGLE_BINS as f32;

fn bin_of(a: f32) -> usize {
    ((a / BIN_WIDTH) as usize).min(ANGLE_BINS - 1)
}

/// Edges in struct-of-arrays form, grouped by `a_from` bin and sorted by length inside
/// a bin: the inner loop touches only the arrays it needs.
#[derive(Clone, Default)]
struct Edges {
    /// Edges of bin `b` are `bin_start[b]..bin_start[b + 1]`.
    bin_start: [u32; ANGLE_BINS + 1],
    len: Vec<f32>,
    /// Angle of the edge vector minus the `from` minutia's direction, [0, 2π).
    a_from: Vec<f32>,
    /// Angle of the edge vector minus the `to` minutia's direction, [0, 2π).
    a_to: Vec<f32>,
    from: Vec<u8>,
    to: Vec<u8>,
}

/// A template ready for fast 1:1 comparisons. Build it once per enrolled finger (and
/// once per probe) and compare it as often as needed.
#[derive(Clone)]
pub struct PreparedTemplate {
    position: FingerPosition,
    quality: u8,
    points: Vec<Point>,
    edges: Edges,
    /// min x, min y, max x, max y of the points.
    bbox: [f32; 4],
}

impl fmt::Debug for PreparedTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Biometric data: the shape only.
        f.debug_struct("PreparedTemplate")
            .field("position", &self.position.code())
            .field("quality", &self.quality)
            .field("minutiae", &self.points.len())
            .field("edges", &self.edges.len.len())
            .finish()
    }
}

fn wrap(a: f32) -> f32 {
    let w = a.rem_euclid(TAU);
    if w >= TAU { 0.0 } else { w }
}

/// Smallest absolute difference of two angles in [0, 2π).
#[inline]
fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).abs();
    if d > PI { TAU - d } else { d }
}

impl PreparedTemplate {
    /// Prepares one finger view of a parsed record.
    pub fn from_view(view: &FingerView, geometry: ImageGeometry, unit: AngleUnit) -> Self {
        let sx = PPCM_500DPI / f32::from(geometry.x_resolution.max(1));
        let sy = PPCM_500DPI / f32::from(geometry.y_resolution.max(1));
        let mut chosen: Vec<_> = view.minutiae.iter().collect();
        if chosen.len() > MAX_MINUTIAE {
            // Stable sort: equal qualities keep record order, so preparation is deterministic.
            chosen.sort_by_key(|m| std::cmp::Reverse(m.quality));
            chosen.truncate(MAX_MINUTIAE);
        }
        let points: Vec<Point> = chosen
            .iter()
            .map(|m| Point {
                x: f32::from(m.x) * sx,
                y: -f32::from(m.y) * sy,
                dir: wrap(m.angle_degrees(unit).to_radians()),
            })
            .collect();
        Self::from_points(view.position, view.quality, points)
    }

    /// Prepares view `index` of an ISO/IEC 19794-2 record.
    pub fn from_iso(record: &IsoRecord, index: usize) -> Result<Self, TemplateError> {
        let view = record.views.get(index).ok_or(TemplateError::NoSuchView {
            index,
            views: record.views.len(),
        })?;
        Ok(Self::from_view(view, record.geometry, AngleUnit::Iso))
    }

    /// Prepares view `index` of an ANSI/INCITS 378 record.
    pub fn from_ansi(record: &AnsiRecord, index: usize) -> Result<Self, TemplateError> {
        let view = record.views.get(index).ok_or(TemplateError::NoSuchView {
            index,
            views: record.views.len(),
        })?;
        Ok(Self::from_view(view, record.geometry, AngleUnit::Ansi))
    }

    /// Parses an ISO/IEC 19794-2 record and prepares its view `index`.
    pub fn from_iso_bytes(bytes: &[u8], index: usize) -> Result<Self, TemplateError> {
        Self::from_iso(&IsoRecord::parse(bytes)?, index)
    }

    fn from_points(position: FingerPosition, quality: u8, mut points: Vec<Point>) -> Self {
        // Sorted by x so that pairing can look at a window of x instead of every point.
        points.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
        let n = points.len();
        let mut raw: Vec<(f32, f32, f32, u8, u8)> = Vec::with_capacity(n * NEIGHBOURS);
        let mut near: Vec<(f32, usize)> = Vec::with_capacity(n);
        for (i, p) in points.iter().enumerate() {
            near.clear();
            for (j, q) in points.iter().enumerate() {
                let d = (q.x - p.x).hypot(q.y - p.y);
                if j != i && (MIN_EDGE..=MAX_EDGE).contains(&d) {
                    near.push((d, j));
                }
            }
            near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for &(d, j) in near.iter().take(NEIGHBOURS) {
                let q = points[j];
                let phi = (q.y - p.y).atan2(q.x - p.x);
                raw.push((d, wrap(phi - p.dir), wrap(phi - q.dir), i as u8, j as u8));
            }
        }
        raw.sort_by(|a, b| {
            bin_of(a.1)
                .cmp(&bin_of(b.1))
                .then(a.0.total_cmp(&b.0))
                .then((a.3, a.4).cmp(&(b.3, b.4)))
        });
        let mut edges = Edges::default();
        for bin in 0..ANGLE_BINS {
            edges.bin_start[bin + 1] =
                edges.bin_start[bin] + raw.iter().filter(|e| bin_of(e.1) == bin).count() as u32;
        }
        for (len, a_from, a_to, from, to) in raw {
            edges.len.push(len);
            edges.a_from.push(a_from);
            edges.a_to.push(a_to);
            edges.from.push(from);
            edges.to.push(to);
        }
        let mut bbox = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for p in &points {
            bbox = [
                bbox[0].min(p.x),
                bbox[1].min(p.y),
                bbox[2].max(p.x),
                bbox[3].max(p.y),
            ];
        }
        PreparedTemplate {
            position,
            quality,
            points,
            edges,
            bbox,
        }
    }

    pub fn position(&self) -> FingerPosition {
        self.position
    }

    /// The view's finger quality (0..=100) as the record states it.
    pub fn quality(&self) -> u8 {
        self.quality
    }

    pub fn minutiae_count(&self) -> usize {
        self.points.len()
    }
}

/// One edge pair that agrees: probe edge `pi → pj` matches candidate edge `ck → cl`.
#[derive(Clone, Copy)]
struct EdgeMatch {
    pi: u8,
    pj: u8,
    ck: u8,
    cl: u8,
    support: u16,
}

/// Reused buffers: a comparison allocates nothing once a thread has warmed up.
#[derive(Default)]
struct Scratch {
    votes: Vec<u16>,
    matches: Vec<EdgeMatch>,
    moved: Vec<Point>,
    tolerance: Vec<f32>,
    candidates: Vec<(f32, u8, u8)>,
    probe_used: Vec<bool>,
    cand_used: Vec<bool>,
    pairs: Vec<(u8, u8, f32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A rigid transform of the probe frame onto the candidate frame.
#[derive(Clone, Copy)]
struct Rigid {
    cos: f32,
    sin: f32,
    angle: f32,
    tx: f32,
    ty: f32,
    /// Point (candidate frame) from which the distortion allowance grows.
    anchor: (f32, f32),
}

impl Rigid {
    fn apply(&self, p: Point) -> Point {
        Point {
            x: self.cos * p.x - self.sin * p.y + self.tx,
            y: self.sin * p.x + self.cos * p.y + self.ty,
            dir: wrap(p.dir + self.angle),
        }
    }
}

/// Compares two prepared templates; the raw similarity score is ≥ 0 (0 = nothing in
/// common), symmetric up to rounding. Never panics, whatever the templates contain.
pub fn compare(probe: &PreparedTemplate, candidate: &PreparedTemplate) -> f32 {
    if probe.points.len() < 2 || candidate.points.len() < 2 {
        return 0.0;
    }
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => compare_with(probe, candidate, &mut s),
        // Only reachable if compare were re-entered on this thread; stay correct.
        Err(_) => compare_with(probe, candidate, &mut Scratch::default()),
    })
}

fn compare_with(p: &PreparedTemplate, c: &PreparedTemplate, s: &mut Scratch) -> f32 {
    let (np, nc) = (p.points.len(), c.points.len());
    s.votes.clear();
    s.votes.resize(np * nc, 0);
    s.matches.clear();

    // Local structures: edge pairs within tolerance. For each probe edge, the candidate
    // edges of the neighbouring `a_from` bins, found by binary search on length.
    let (pe, ce) = (&p.edges, &c.edges);
    for e in 0..pe.len.len() {
        let len = pe.len[e];
        let tol = EDGE_LEN_TOL_BASE + EDGE_LEN_TOL_REL * len;
        let (af, at) = (pe.a_from[e], pe.a_to[e]);
        let bin = bin_of(af);
        for b in [bin + ANGLE_BINS - 1, bin, bin + 1] {
            let b = b % ANGLE_BINS;
            let (start, end) = (ce.bin_start[b] as usize, ce.bin_start[b + 1] as usize);
            let lens = &ce.len[start..end];
            let mut k = start + lens.partition_point(|&l| l < len - tol);
            while k < end && ce.len[k] <= len + tol {
                if angle_diff(af, ce.a_from[k]) <= EDGE_ANGLE_TOL
                    && angle_diff(at, ce.a_to[k]) <= EDGE_ANGLE_TOL
                {
                    let (pi, pj) = (pe.from[e], pe.to[e]);
                    let (ck, cl) = (ce.from[k], ce.to[k]);
                    let v1 = usize::from(pi) * nc + usize::from(ck);
                    let v2 = usize::from(pj) * nc + usize::from(cl);
                    s.votes[v1] = s.votes[v1].saturating_add(1);
                    s.votes[v2] = s.votes[v2].saturating_add(1);
                    s.matches.push(EdgeMatch {
                        pi,
                        pj,
                        ck,
                        cl,
                        support: 0,
                    });
                }
                k += 1;
            }
        }
    }
    if s.matches.is_empty() {
        return 0.0;
    }
    for m in s.matches.iter_mut() {
        m.support = s.votes[usize::from(m.pi) * nc + usize::from(m.ck)]
            .saturating_add(s.votes[usize::from(m.pj) * nc + usize::from(m.cl)]);
    }
    // The best-supported edge pairs become roots; ties broken by indices so the result
    // does not depend on sort stability.
    let key = |m: &EdgeMatch| (std::cmp::Reverse(m.support), m.pi, m.pj, m.ck, m.cl);
    let take = s.matches.len().min(ROOTS * 4);
    if s.matches.len() > take {
        s.matches.select_nth_unstable_by_key(take - 1, key);
        s.matches.truncate(take);
    }
    s.matches.sort_unstable_by_key(key);

    let mut best = 0.0f32;
    let mut tried: Vec<Rigid> = Vec::with_capacity(ROOTS);
    let roots: Vec<EdgeMatch> = s.matches.clone();
    for root in roots {
        if tried.len() >= ROOTS {
            break;
        }
        let rigid = root_transform(p, c, root);
        // Roots that imply (almost) the same alignment add nothing but time.
        if tried.iter().any(|t| {
            angle_diff(wrap(t.angle), wrap(rigid.angle)) < 0.12
                && (t.tx - rigid.tx).hypot(t.ty - rigid.ty) < 12.0
        }) {
            continue;
        }
        tried.push(rigid);
        let first = pair_up(p, c, rigid, s);
        best = best.max(first);
        // Too few pairs to refit on: a chance alignment, not worth a second pass.
        if s.pairs.len() >= 4 {
            let refined = refit(p, c, &s.pairs, rigid);
            best = best.max(pair_up(p, c, refined, s));
        }
    }
    best
}

fn root_transform(p: &PreparedTemplate, c: &PreparedTemplate, m: EdgeMatch) -> Rigid {
    let (a, b) = (p.points[usize::from(m.pi)], p.points[usize::from(m.pj)]);
    let (k, l) = (c.points[usize::from(m.ck)], c.points[usize::from(m.cl)]);
    let angle = (l.y - k.y).atan2(l.x - k.x) - (b.y - a.y).atan2(b.x - a.x);
    let (sin, cos) = angle.sin_cos();
    let (mpx, mpy) = ((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
    let (mcx, mcy) = ((k.x + l.x) / 2.0, (k.y + l.y) / 2.0);
    Rigid {
        cos,
        sin,
        angle,
        tx: mcx - (cos * mpx - sin * mpy),
        ty: mcy - (sin * mpx + cos * mpy),
        anchor: (mcx, mcy),
    }
}

/// Least-squares rigid transform (2-D Procrustes without scale) on the pairs, anchored
/// at the pairs' centroid.
fn refit(p: &PreparedTemplate, c: &PreparedTemplate, pairs: &[(u8, u8, f32)], old: Rigid) -> Rigid {
    let n = pairs.len() as f32;
    let (mut px, mut py, mut cx, mut cy) = (0.0, 0.0, 0.0, 0.0);
    for &(i, k, _) in pairs {
        let (a, b) = (p.points[usize::from(i)], c.points[usize::from(k)]);
        px += a.x;
        py += a.y;
        cx += b.x;
        cy += b.y;
    }
    let (px, py, cx, cy) = (px / n, py / n, cx / n, cy / n);
    let (mut sxx, mut sxy) = (0.0f32, 0.0f32);
    for &(i, k, _) in pairs {
        let (a, b) = (p.points[usize::from(i)], c.points[usize::from(k)]);
        let (ax, ay, bx, by) = (a.x - px, a.y - py, b.x - cx, b.y - cy);
        sxx += ax * bx + ay * by;
        sxy += ax * by - ay * bx;
    }
    if sxx == 0.0 && sxy == 0.0 {
        return old;
    }
    let angle = sxy.atan2(sxx);
    let (sin, cos) = angle.sin_cos();
    Rigid {
        cos,
        sin,
        angle,
        tx: cx - (cos * px - sin * py),
        ty: cy - (sin * px + cos * py),
        anchor: (cx, cy),
    }
}

/// Pairs minutiae one-to-one under `t` (greedy by cost) into `s.pairs` and returns the
/// score of that pairing.
fn pair_up(p: &PreparedTemplate, c: &PreparedTemplate, t: Rigid, s: &mut Scratch) -> f32 {
    s.moved.clear();
    s.moved.extend(p.points.iter().map(|&q| t.apply(q)));
    // Tolerance per candidate minutia: grows with its distance from the anchor.
    s.tolerance.clear();
    let mut widest = 0.0f32;
    for r in &c.points {
        let tol = PAIR_DIST_BASE + PAIR_DIST_REL * (r.x - t.anchor.0).hypot(r.y - t.anchor.1);
        widest = widest.max(tol);
        s.tolerance.push(tol);
    }
    s.candidates.clear();
    for (i, q) in s.moved.iter().enumerate() {
        let first = c.points.partition_point(|r| r.x < q.x - widest);
        for (k, r) in c.points.iter().enumerate().skip(first) {
            let dx = r.x - q.x;
            if dx > widest {
                break;
            }
            let dy = r.y - q.y;
            let tol = s.tolerance[k];
            let d2 = dx * dx + dy * dy;
            if d2 > tol * tol {
                continue;
            }
            let da = angle_diff(q.dir, r.dir);
            if da > PAIR_ANGLE_TOL {
                continue;
            }
            let cost = d2.sqrt() / tol + da / PAIR_ANGLE_TOL;
            s.candidates.push((cost, i as u8, k as u8));
        }
    }
    s.candidates
        .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    s.probe_used.clear();
    s.probe_used.resize(p.points.len(), false);
    s.cand_used.clear();
    s.cand_used.resize(c.points.len(), false);
    s.pairs.clear();
    let mut weight = 0.0f32;
    for &(cost, i, k) in &s.candidates {
        let (iu, ku) = (usize::from(i), usize::from(k));
        if s.probe_used[iu] || s.cand_used[ku] {
            continue;
        }
        s.probe_used[iu] = true;
        s.cand_used[ku] = true;
        // cost is in [0, 2]: a perfect fit weighs 1, a pair at the box edge 0.5.
        weight += 1.0 - 0.25 * cost;
        s.pairs.push((i, k, cost));
    }
    if s.pairs.len() < 2 {
        return 0.0;
    }
    // Overlap: probe minutiae inside the candidate's box, candidate minutiae inside the
    // moved probe's box.
    let cb = c.bbox;
    let inside = |b: [f32; 4], x: f32, y: f32| {
        x >= b[0] - OVERLAP_MARGIN
            && x <= b[2] + OVERLAP_MARGIN
            && y >= b[1] - OVERLAP_MARGIN
            && y <= b[3] + OVERLAP_MARGIN
    };
    let mut pb = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    let mut probe_in = 0usize;
    for q in &s.moved {
        pb = [
            pb[0].min(q.x),
            pb[1].min(q.y),
            pb[2].max(q.x),
            pb[3].max(q.y),
        ];
        if inside(cb, q.x, q.y) {
            probe_in += 1;
        }
    }
    let cand_in = c.points.iter().filter(|r| inside(pb, r.x, r.y)).count();
    let denom = (probe_in as f32).max(MIN_OVERLAP) * (cand_in as f32).max(MIN_OVERLAP);
    100.0 * weight * weight / denom
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Minutia, MinutiaType};

    fn view(points: &[(f32, f32, f32)]) -> FingerView {
        FingerView::new(
            FingerPosition::RIGHT_INDEX,
            80,
            points
                .iter()
                .map(|&(x, y, a)| Minutia {
                    kind: MinutiaType::RidgeEnding,
                    x: x.round() as u16,
                    y: y.round() as u16,
                    angle_code: AngleUnit::Iso.code_for(a),
                    quality: 60,
                })
                .collect(),
        )
    }

    fn geometry() -> ImageGeometry {
        ImageGeometry {
            width: 800,
            height: 800,
            x_resolution: 197,
            y_resolution: 197,
        }
    }

    /// A fixed pseudo-random finger (no rand needed: a tiny LCG).
    fn finger(seed: u64, n: usize) -> Vec<(f32, f32, f32)> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32) / ((1u64 << 31) as f32)
        };
        (0..n)
            .map(|_| {
                (
                    250.0 + 300.0 * next(),
                    250.0 + 300.0 * next(),
                    360.0 * next(),
                )
            })
            .collect()
    }

    /// Rotates (counter-clockwise as seen on screen: ISO's convention) and shifts.
    fn moved(points: &[(f32, f32, f32)], deg: f32, dx: f32, dy: f32) -> Vec<(f32, f32, f32)> {
        let (s, c) = deg.to_radians().sin_cos();
        points
            .iter()
            .map(|&(x, y, a)| {
                let (rx, ry) = (x - 400.0, -(y - 400.0));
                let (ux, uy) = (c * rx - s * ry, s * rx + c * ry);
                (400.0 + ux + dx, 400.0 - uy + dy, a + deg)
            })
            .collect()
    }

    fn prep(points: &[(f32, f32, f32)]) -> PreparedTemplate {
        PreparedTemplate::from_view(&view(points), geometry(), AngleUnit::Iso)
    }

    #[test]
    fn identical_rotated_and_shifted_prints_match_impostors_do_not() {
        let a = finger(1, 40);
        let base = compare(&prep(&a), &prep(&a));
        let impostor = compare(&prep(&a), &prep(&finger(2, 40)));
        assert!(base > 50.0, "self score {base}");
        assert!(impostor < 15.0, "impostor {impostor}");
        for (deg, dx, dy) in [
            (0.0, 0.0, 0.0),
            (30.0, 20.0, -15.0),
            (-45.0, -40.0, 30.0),
            (90.0, 0.0, 0.0),
            (180.0, 5.0, 5.0),
        ] {
            let s = compare(&prep(&a), &prep(&moved(&a, deg, dx, dy)));
            assert!(s > 0.8 * base, "{deg}° ({dx},{dy}): {s} vs {base}");
        }
    }

    #[test]
    fn symmetric_enough_and_deterministic() {
        let (a, b) = (
            prep(&finger(3, 35)),
            prep(&moved(&finger(3, 35)[5..], 12.0, 10.0, 4.0)),
        );
        let (ab, ba) = (compare(&a, &b), compare(&b, &a));
        assert!((ab - ba).abs() < 0.2 * ab.max(ba), "{ab} vs {ba}");
        assert_eq!(ab, compare(&a, &b));
    }

    #[test]
    fn degenerate_templates_score_zero() {
        let empty = prep(&[]);
        let one = prep(&[(10.0, 10.0, 0.0)]);
        let a = prep(&finger(4, 30));
        for (x, y) in [(&empty, &a), (&a, &empty), (&one, &a), (&empty, &empty)] {
            assert_eq!(compare(x, y), 0.0);
        }
        // All minutiae on one spot: no edges, no panic.
        let stacked = prep(&[(100.0, 100.0, 0.0); 50]);
        assert_eq!(compare(&stacked, &stacked), 0.0);
    }

    #[test]
    fn resolution_is_normalised() {
        // The same finger captured at 1000 dpi: coordinates doubled.
        let a = finger(5, 40);
        let hi: Vec<_> = a.iter().map(|&(x, y, t)| (x * 2.0, y * 2.0, t)).collect();
        let g2 = ImageGeometry {
            width: 1600,
            height: 1600,
            x_resolution: 394,
            y_resolution: 394,
        };
        let h = PreparedTemplate::from_view(&view(&hi), g2, AngleUnit::Iso);
        let s = compare(&prep(&a), &h);
        assert!(s > 0.8 * compare(&prep(&a), &prep(&a)), "{s}");
    }

    #[test]
    fn debug_hides_minutiae() {
        let s = format!("{:?}", prep(&finger(6, 10)));
        assert!(
            s.starts_with("PreparedTemplate") && s.contains("minutiae: 10"),
            "{s}"
        );
    }

    #[test]
    fn too_many_minutiae_are_capped() {
        assert_eq!(prep(&finger(7, 200)).minutiae_count(), MAX_MINUTIAE);
    }
}
