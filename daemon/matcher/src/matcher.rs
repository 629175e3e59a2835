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
use std::f32::consts::TAU;
use std::fmt;

/// 500 dpi in pixels per centimetre: the frame every template is scaled to.
const PPCM_500DPI: f32 = 196.85;
/// More minutiae than this are dropped (lowest quality first): real plain impressions
/// have 30–80, and the cost of a comparison grows with the square.
pub const MAX_MINUTIAE: usize = 96;
// The pairing keeps one bit per minutia in a u128.
const _: () = assert!(MAX_MINUTIAE <= 128);
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

/// One edge between two minutiae: 16 bytes, everything the inner loop reads in one
/// cache line access.
#[derive(Clone, Copy)]
struct Edge {
    len: f32,
    /// Angle of the edge vector minus the `from` minutia's direction, [0, 2π).
    a_from: f32,
    /// Angle of the edge vector minus the `to` minutia's direction, [0, 2π).
    a_to: f32,
    from: u8,
    to: u8,
}

/// Coarse bins of `a_to` for the candidate side: a probe edge's `a_to` ± the tolerance
/// (plus a rounding margin) always lies within two neighbouring bins.
const TO_BINS: usize = 8;
const TO_BIN_WIDTH: f32 = TAU / TO_BINS as f32;
const TO_MARGIN: f32 = EDGE_ANGLE_TOL + 0.01;
const _: () = assert!(2.0 * TO_MARGIN < TO_BIN_WIDTH);

fn to_bin_of(a: f32) -> usize {
    ((a / TO_BIN_WIDTH) as usize).min(TO_BINS - 1)
}

/// The candidate list a probe edge scans: `a_from` bin, then the `a_to` bin where the
/// tolerance window starts.
fn near_index(a_from: f32, a_to: f32) -> usize {
    bin_of(a_from) * TO_BINS + to_bin_of(wrap(a_to - TO_MARGIN))
}

/// Edges grouped by `a_from` bin and sorted by length inside a bin (the probe side of
/// a comparison), and the same edges once more per (`a_from` bin, `a_to` bin) with
/// the neighbouring bins merged in and sorted by length (the candidate side): a probe
/// edge then scans one short window that holds every edge it can match (and the exact
/// tolerance test decides, so the lists only save time).
#[derive(Clone, Default)]
struct Edges {
    /// Edges of bin `b` are `list[bin_start[b]..bin_start[b + 1]]`.
    bin_start: [u32; ANGLE_BINS + 1],
    list: Vec<Edge>,
    /// List `i` (see [`near_index`]) is `near[near_start[i]..near_start[i + 1]]`: the
    /// edges of `a_from` bins `b − 1 ..= b + 1` and `a_to` bins `t ..= t + 1`.
    near_start: Vec<u32>,
    near: Vec<Edge>,
}

impl Edges {
    fn new(list: Vec<Edge>) -> Self {
        let mut edges = Edges {
            list,
            ..Edges::default()
        };
        for bin in 0..ANGLE_BINS {
            let count = edges
                .list
                .iter()
                .filter(|e| bin_of(e.a_from) == bin)
                .count();
            edges.bin_start[bin + 1] = edges.bin_start[bin] + count as u32;
        }
        edges.near_start.push(0);
        for bin in 0..ANGLE_BINS {
            for to_bin in 0..TO_BINS {
                let start = edges.near.len();
                for b in [bin + ANGLE_BINS - 1, bin, bin + 1] {
                    for e in edges.bin_start[b % ANGLE_BINS]..edges.bin_start[b % ANGLE_BINS + 1] {
                        let e = edges.list[e as usize];
                        let t = to_bin_of(e.a_to);
                        if t == to_bin || t == (to_bin + 1) % TO_BINS {
                            edges.near.push(e);
                        }
                    }
                }
                edges.near[start..].sort_by(|a, b| {
                    a.len
                        .total_cmp(&b.len)
                        .then((a.from, a.to).cmp(&(b.from, b.to)))
                });
                edges.near_start.push(edges.near.len() as u32);
            }
        }
        edges
    }

    fn bin(&self, b: usize) -> &[Edge] {
        let (start, end) = (self.bin_start[b] as usize, self.bin_start[b + 1] as usize);
        self.list.get(start..end).unwrap_or(&[])
    }

    fn near(&self, i: usize) -> &[Edge] {
        match (self.near_start.get(i), self.near_start.get(i + 1)) {
            (Some(&start), Some(&end)) => self.near.get(start as usize..end as usize),
            _ => None,
        }
        .unwrap_or(&[])
    }
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
    /// `x_index[b]` = the first point with x ≥ bbox[0] + b · x_step: a quick start for
    /// the "first point at or right of x" search of the pairing.
    x_index: Vec<u8>,
    x_step: f32,
}

impl fmt::Debug for PreparedTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Biometric data: the shape only.
        f.debug_struct("PreparedTemplate")
            .field("position", &self.position.code())
            .field("quality", &self.quality)
            .field("minutiae", &self.points.len())
            .field("edges", &self.edges.list.len())
            .finish()
    }
}

fn wrap(a: f32) -> f32 {
    // Fast path for what the matcher produces (one turn off at most): the same value
    // `rem_euclid` gives, without its `fmodf` call. On [2π, 4π) the subtraction is
    // exact (Sterbenz); on (−2π, 0) both add 2π once, rounded the same way.
    let w = if (0.0..TAU).contains(&a) {
        a
    } else if (TAU..2.0 * TAU).contains(&a) {
        a - TAU
    } else if a > -TAU && a < 0.0 {
        a + TAU
    } else {
        wrap_far(a)
    };
    if w >= TAU { 0.0 } else { w }
}

/// [`wrap`] for angles in [−2π, 4π] (a direction in [0, 2π) plus a rotation in
/// [−2π, 2π], which is what `atan2` differences give): selects instead of branches, the
/// same value (up to the sign of a zero).
#[inline]
fn wrap_turn(a: f32) -> f32 {
    let w = if a < 0.0 {
        a + TAU
    } else if a >= TAU {
        a - TAU
    } else {
        a
    };
    if w >= TAU { 0.0 } else { w }
}

/// Out of line so that the compiler does not evaluate it speculatively on the fast path
/// (an `frem` is a libm call).
#[cold]
#[inline(never)]
fn wrap_far(a: f32) -> f32 {
    a.rem_euclid(TAU)
}

/// `f32::hypot` as glibc computes it (the exact squares summed and rooted in double,
/// rounded once), inlined: the same bits without a libm call.
#[inline]
fn hypot(x: f32, y: f32) -> f32 {
    let (x, y) = (f64::from(x), f64::from(y));
    (x * x + y * y).sqrt() as f32
}

/// Smallest absolute difference of two angles in [0, 2π).
#[inline]
fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).abs();
    // = `if d > π { 2π − d } else { d }`, bit for bit (2π − d ≥ π ≥ d exactly when
    // d ≤ π), without a branch.
    d.min(TAU - d)
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
        let edges = Edges::new(
            raw.into_iter()
                .map(|(len, a_from, a_to, from, to)| Edge {
                    len,
                    a_from,
                    a_to,
                    from,
                    to,
                })
                .collect(),
        );
        let mut bbox = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for p in &points {
            bbox = [
                bbox[0].min(p.x),
                bbox[1].min(p.y),
                bbox[2].max(p.x),
                bbox[3].max(p.y),
            ];
        }
        // Steps of 8 px, or coarser so that a huge (hostile) image stays at 256 entries.
        let width = if points.is_empty() {
            0.0
        } else {
            bbox[2] - bbox[0]
        };
        let x_step = (width / 255.0).max(8.0);
        let buckets = (width / x_step) as usize + 2;
        let x_index = (0..buckets)
            .map(|b| {
                let x = bbox[0] + b as f32 * x_step;
                points.partition_point(|p| p.x < x) as u8
            })
            .collect();
        PreparedTemplate {
            position,
            quality,
            points,
            edges,
            bbox,
            x_index,
            x_step,
        }
    }

    /// The index of the first point with `x ≥ at` (points are sorted by x): exactly
    /// what `partition_point(|p| p.x < at)` returns, starting from the x index.
    fn first_at_or_right_of(&self, at: f32) -> usize {
        let n = self.points.len();
        let guess = if at > self.bbox[0] {
            let bucket = ((at - self.bbox[0]) / self.x_step) as usize;
            self.x_index
                .get(bucket)
                .map_or(n, |&i| usize::from(i).min(n))
        } else {
            0
        };
        let mut i = guess;
        while i < n && self.points[i].x < at {
            i += 1;
        }
        while i > 0 && self.points[i - 1].x >= at {
            i -= 1;
        }
        i
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
}

/// A candidate minutia with its pairing tolerance (and its square) for one alignment.
#[derive(Clone, Copy)]
struct Target {
    x: f32,
    y: f32,
    dir: f32,
    tol: f32,
    tol2: f32,
}

/// Reused buffers: a comparison allocates nothing once a thread has warmed up.
#[derive(Default)]
struct Scratch {
    votes: Vec<u16>,
    /// Edge pairs that agree, as `[pi, pj, ck, cl]` bytes.
    matches: Vec<u32>,
    roots: Vec<u64>,
    moved: Vec<Point>,
    /// Per candidate minutia: where it is and its tolerance under the current alignment.
    tolerance: Vec<Target>,
    candidates: Vec<u64>,
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
            dir: wrap_turn(p.dir + self.angle),
        }
    }
}

/// Compares two prepared templates; the raw similarity score is ≥ 0 (0 = nothing in
/// common), symmetric up to rounding. Never panics, whatever the templates contain.
pub fn compare(probe: &PreparedTemplate, candidate: &PreparedTemplate) -> f32 {
    if probe.points.len() < 2
        || candidate.points.len() < 2
        || probe.points.len() > MAX_MINUTIAE
        || candidate.points.len() > MAX_MINUTIAE
    {
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

    // Local structures: edge pairs within tolerance. Probe edges of one `a_from` bin
    // meet the candidate edges of that bin and its two neighbours. Both sides are
    // sorted by length inside a bin and the window [len − tol, len + tol] only moves
    // up with len, so a sliding lower bound replaces a binary search per edge.
    for pb in 0..ANGLE_BINS {
        let probe = p.edges.bin(pb);
        if probe.is_empty() {
            continue;
        }
        // One sliding lower bound per candidate list this bin's edges use.
        let mut lows = [0usize; TO_BINS];
        for pe in probe {
            let list = near_index(pe.a_from, pe.a_to);
            let cand = c.edges.near(list);
            let lo = &mut lows[list % TO_BINS];
            let tol = EDGE_LEN_TOL_BASE + EDGE_LEN_TOL_REL * pe.len;
            let (min, max) = (pe.len - tol, pe.len + tol);
            // `lo` = the first candidate edge not shorter than `min` (what a binary
            // search would find; the step back covers rounding making `min` dip).
            while *lo < cand.len() && cand[*lo].len < min {
                *lo += 1;
            }
            while *lo > 0 && cand[*lo - 1].len >= min {
                *lo -= 1;
            }
            for ce in &cand[*lo..] {
                if ce.len > max {
                    break;
                }
                // Both angles at once, no early exit: fewer mispredicted branches.
                if (angle_diff(pe.a_to, ce.a_to) <= EDGE_ANGLE_TOL)
                    & (angle_diff(pe.a_from, ce.a_from) <= EDGE_ANGLE_TOL)
                {
                    let v1 = usize::from(pe.from) * nc + usize::from(ce.from);
                    let v2 = usize::from(pe.to) * nc + usize::from(ce.to);
                    if let Some(v) = s.votes.get_mut(v1) {
                        *v = v.saturating_add(1);
                    }
                    if let Some(v) = s.votes.get_mut(v2) {
                        *v = v.saturating_add(1);
                    }
                    s.matches
                        .push(u32::from_be_bytes([pe.from, pe.to, ce.from, ce.to]));
                }
            }
        }
    }
    if s.matches.is_empty() {
        return 0.0;
    }
    // The best-supported edge pairs become roots; ties broken by indices so the result
    // does not depend on sort order. Key: (u16::MAX − support, pi, pj, ck, cl) in one
    // integer, smallest first.
    // The keys are unique (one per edge pair), so the top list does not depend on the
    // order the matches were found in.
    let mut top = [u64::MAX; ROOTS * 4];
    let mut top_len = 0usize;
    for &m in &s.matches {
        let [pi, pj, ck, cl] = m.to_be_bytes();
        let vote = |i: u8, k: u8| {
            s.votes
                .get(usize::from(i) * nc + usize::from(k))
                .copied()
                .unwrap_or(0)
        };
        let support = vote(pi, ck).saturating_add(vote(pj, cl));
        let key = (u64::from(u16::MAX - support) << 32) | u64::from(m);
        if top_len == top.len() && key >= top[top.len() - 1] {
            continue;
        }
        // Insertion into the short sorted list.
        let mut at = top_len.min(top.len() - 1);
        while at > 0 && top[at - 1] > key {
            top[at] = top[at - 1];
            at -= 1;
        }
        top[at] = key;
        top_len = (top_len + 1).min(top.len());
    }
    s.roots.clear();
    s.roots.extend_from_slice(&top[..top_len]);

    let mut best = 0.0f32;
    let mut tried: [Option<Rigid>; ROOTS] = [None; ROOTS];
    let mut tried_count = 0;
    for r in 0..s.roots.len() {
        if tried_count >= ROOTS {
            break;
        }
        let [pi, pj, ck, cl] = (s.roots[r] as u32).to_be_bytes();
        let root = EdgeMatch { pi, pj, ck, cl };
        let rigid = root_transform(p, c, root);
        // Roots that imply (almost) the same alignment add nothing but time.
        if tried[..tried_count].iter().flatten().any(|t| {
            angle_diff(wrap(t.angle), wrap(rigid.angle)) < 0.12
                && hypot(t.tx - rigid.tx, t.ty - rigid.ty) < 12.0
        }) {
            continue;
        }
        tried[tried_count] = Some(rigid);
        tried_count += 1;
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

/// A pairing candidate as one sortable integer: the cost's bits (a non-negative float's
/// bits order like the float), then the probe and candidate indices.
fn candidate_key(cost: f32, i: usize, k: usize) -> u64 {
    (u64::from(cost.to_bits()) << 16) | ((i as u64 & 0xff) << 8) | (k as u64 & 0xff)
}

fn from_candidate_key(key: u64) -> (f32, u8, u8) {
    (
        f32::from_bits((key >> 16) as u32),
        (key >> 8) as u8,
        key as u8,
    )
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
        let tol = PAIR_DIST_BASE + PAIR_DIST_REL * hypot(r.x - t.anchor.0, r.y - t.anchor.1);
        widest = widest.max(tol);
        s.tolerance.push(Target {
            x: r.x,
            y: r.y,
            dir: r.dir,
            tol,
            tol2: tol * tol,
        });
    }
    s.candidates.clear();
    for (i, q) in s.moved.iter().enumerate() {
        let first = c.first_at_or_right_of(q.x - widest);
        for (k, r) in s.tolerance.iter().enumerate().skip(first) {
            let (tol, tol2) = (r.tol, r.tol2);
            let dx = r.x - q.x;
            if dx > widest {
                break;
            }
            let dy = r.y - q.y;
            let d2 = dx * dx + dy * dy;
            if d2 > tol2 {
                continue;
            }
            let da = angle_diff(q.dir, r.dir);
            if da > PAIR_ANGLE_TOL {
                continue;
            }
            let cost = d2.sqrt() / tol + da / PAIR_ANGLE_TOL;
            s.candidates.push(candidate_key(cost, i, k));
        }
    }
    // The keys sort as (cost, probe index, candidate index) did.
    s.candidates.sort_unstable();
    // One bit per minutia (at most MAX_MINUTIAE ≤ 128 of them).
    let (mut probe_used, mut cand_used) = (0u128, 0u128);
    s.pairs.clear();
    let mut weight = 0.0f32;
    for &key in &s.candidates {
        let (cost, i, k) = from_candidate_key(key);
        let (ib, kb) = (1u128 << (i & 127), 1u128 << (k & 127));
        if probe_used & ib != 0 || cand_used & kb != 0 {
            continue;
        }
        probe_used |= ib;
        cand_used |= kb;
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
