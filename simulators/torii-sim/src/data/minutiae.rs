//! Synthetic fingerprints: a deterministic master minutiae set per (traveler, finger),
//! impressions that vary like real placements, and ISO/IEC 19794-2:2005 encoding.

use super::seeded_rng;
use rand::Rng;
use torii_sdk::model::FingerPosition;

/// Capture area at 500 dpi.
pub const WIDTH: u16 = 400;
pub const HEIGHT: u16 = 500;
/// 500 dpi in pixels per centimetre.
pub const RESOLUTION_PPCM: u16 = 197;
/// Capture equipment id written into records (12 bits; "torii-sim").
pub const EQUIPMENT_ID: u16 = 0x7A1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinutiaKind {
    Other = 0,
    RidgeEnding = 1,
    Bifurcation = 2,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Minutia {
    pub kind: MinutiaKind,
    pub x: f64,
    pub y: f64,
    /// Degrees, 0..360, counter-clockwise from the x axis.
    pub angle: f64,
    /// 0..=100.
    pub quality: u8,
}

/// How the finger was placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A normal placement of the finger.
    Genuine,
    /// Dry/injured/child finger or a bad placement: few minutiae, finger quality 5..=15.
    Poor,
}

/// One impression of a finger, ready to encode.
#[derive(Clone, Debug, PartialEq)]
pub struct Impression {
    pub position: FingerPosition,
    /// Finger quality 0..=100.
    pub quality: u8,
    pub minutiae: Vec<Minutia>,
}

/// The master (ground-truth) minutiae of `finger_key`'s `position`: 35–55 minutiae in
/// the 400×500 px area. `finger_key` is a traveler id (or any identity string).
pub fn master(finger_key: &str, position: FingerPosition) -> Vec<Minutia> {
    let mut rng = seeded_rng(&["master", finger_key, &position.code().to_string()]);
    let count = rng.random_range(35..=55);
    let (cx, cy) = (f64::from(WIDTH) / 2.0, f64::from(HEIGHT) / 2.0);
    let mut out: Vec<Minutia> = Vec::with_capacity(count);
    let mut attempts = 0;
    while out.len() < count && attempts < 10_000 {
        attempts += 1;
        // Inside an ellipse (the finger's contact area), away from the borders.
        let x = rng.random_range(40.0..f64::from(WIDTH) - 40.0);
        let y = rng.random_range(40.0..f64::from(HEIGHT) - 40.0);
        let (dx, dy) = ((x - cx) / (cx - 40.0), (y - cy) / (cy - 40.0));
        if dx * dx + dy * dy > 1.0 {
            continue;
        }
        if out.iter().any(|m| (m.x - x).hypot(m.y - y) < 12.0) {
            continue;
        }
        let kind = if rng.random_bool(0.55) {
            MinutiaKind::RidgeEnding
        } else {
            MinutiaKind::Bifurcation
        };
        // Ridge flow roughly circles a core near the centre, plus noise. Angles are
        // counter-clockwise from the x axis as seen on screen, where y points down
        // (ISO/IEC 19794-2), hence the negated y.
        let flow = (cy - y).atan2(x - cx).to_degrees() + 90.0;
        let angle = (flow + rng.random_range(-25.0..25.0)).rem_euclid(360.0);
        out.push(Minutia {
            kind,
            x,
            y,
            angle,
            quality: rng.random_range(50..=100),
        });
    }
    out
}

/// Where a master minutia lands when the finger is turned by a rotation (`(sin, cos)`,
/// positive = clockwise on screen: image coordinates have y pointing down) about the
/// capture area's centre, which then moves to `centre`: its position and its
/// counter-clockwise angle, which turns the other way (`angle - rotation`).
fn place(m: &Minutia, (sin, cos): (f64, f64), centre: (f64, f64)) -> (f64, f64, f64) {
    let (cx, cy) = (f64::from(WIDTH) / 2.0, f64::from(HEIGHT) / 2.0);
    let (rx, ry) = (m.x - cx, m.y - cy);
    let x = centre.0 + rx * cos - ry * sin;
    let y = centre.1 + rx * sin + ry * cos;
    let angle = (m.angle - sin.atan2(cos).to_degrees()).rem_euclid(360.0);
    (x, y, angle)
}

/// A fresh impression of a master set: rotated (±15°), translated (±20 px), jittered,
/// 10–20 % of minutiae lost and a few spurious ones added. `impression_key` makes each
/// impression different but reproducible.
pub fn impression(
    master: &[Minutia],
    position: FingerPosition,
    placement: Placement,
    impression_key: &[&str],
) -> Impression {
    let mut key = vec!["impression"];
    key.extend_from_slice(impression_key);
    let mut rng = seeded_rng(&key);
    let (poor, jitter_px, jitter_deg) = match placement {
        Placement::Genuine => (false, 3.0, 8.0),
        Placement::Poor => (true, 7.0, 18.0),
    };
    let rotation = rng.random_range(-15.0f64..15.0).to_radians();
    let (tx, ty) = (rng.random_range(-20.0..20.0), rng.random_range(-20.0..20.0));
    let drop_rate = if poor {
        rng.random_range(0.55..0.7)
    } else {
        rng.random_range(0.10..0.20)
    };
    let (cx, cy) = (f64::from(WIDTH) / 2.0, f64::from(HEIGHT) / 2.0);
    let (sin, cos) = rotation.sin_cos();
    let in_area = |x: f64, y: f64| {
        x >= 1.0 && y >= 1.0 && x < f64::from(WIDTH) - 1.0 && y < f64::from(HEIGHT) - 1.0
    };

    let mut minutiae = Vec::with_capacity(master.len() + 4);
    for m in master {
        if rng.random_bool(drop_rate) {
            continue;
        }
        let (x, y, angle) = place(m, (sin, cos), (cx + tx, cy + ty));
        let x = x + rng.random_range(-jitter_px..jitter_px);
        let y = y + rng.random_range(-jitter_px..jitter_px);
        if !in_area(x, y) {
            continue;
        }
        let angle = (angle + rng.random_range(-jitter_deg..jitter_deg)).rem_euclid(360.0);
        // Occasionally an ending reads as a bifurcation and vice versa.
        let kind = if rng.random_bool(0.05) {
            match m.kind {
                MinutiaKind::RidgeEnding => MinutiaKind::Bifurcation,
                _ => MinutiaKind::RidgeEnding,
            }
        } else {
            m.kind
        };
        let quality = if poor {
            rng.random_range(10..=40)
        } else {
            m.quality.saturating_sub(rng.random_range(0..15))
        };
        minutiae.push(Minutia {
            kind,
            x,
            y,
            angle,
            quality,
        });
    }
    let spurious = if poor {
        rng.random_range(2..=5)
    } else {
        rng.random_range(1..=4)
    };
    for _ in 0..spurious {
        minutiae.push(Minutia {
            kind: if rng.random_bool(0.5) {
                MinutiaKind::RidgeEnding
            } else {
                MinutiaKind::Bifurcation
            },
            x: rng.random_range(30.0..f64::from(WIDTH) - 30.0),
            y: rng.random_range(30.0..f64::from(HEIGHT) - 30.0),
            angle: rng.random_range(0.0..360.0),
            quality: rng.random_range(5..=40),
        });
    }
    minutiae.truncate(255);
    // A poor placement reads clearly below the usual capture quality thresholds
    // (torii-matcher retries below 20), so it fails deterministically.
    let quality = if poor {
        rng.random_range(5..=15)
    } else {
        rng.random_range(60..=95)
    };
    Impression {
        position,
        quality,
        minutiae,
    }
}

/// Encodes impressions as one ISO/IEC 19794-2:2005 finger minutiae record (one finger
/// view per impression).
///
/// Layout (big-endian): `"FMR\0"`, `" 20\0"`, 4-byte record length, 2-byte capture
/// equipment (4-bit certification flag 0 + 12-bit id), width, height, x and y resolution
/// (px/cm), number of views, a reserved byte; per view: finger position, view number
/// (high nibble) + impression type (low nibble, 0 = live-scan plain), finger quality,
/// minutiae count, 6 bytes per minutia (2-bit type + 14-bit x; 2 reserved bits + 14-bit
/// y; angle in 360/256° units; quality) and a 2-byte extended data block length (0).
pub fn encode_iso19794_2(views: &[Impression]) -> Vec<u8> {
    let views = &views[..views.len().min(255)];
    let body_len: usize = views
        .iter()
        .map(|v| 4 + 6 * v.minutiae.len().min(255) + 2)
        .sum();
    let total = 24 + body_len;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"FMR\0");
    out.extend_from_slice(b" 20\0");
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(EQUIPMENT_ID & 0x0FFF).to_be_bytes());
    out.extend_from_slice(&WIDTH.to_be_bytes());
    out.extend_from_slice(&HEIGHT.to_be_bytes());
    out.extend_from_slice(&RESOLUTION_PPCM.to_be_bytes());
    out.extend_from_slice(&RESOLUTION_PPCM.to_be_bytes());
    out.push(views.len() as u8);
    out.push(0);
    // Views of the same finger get increasing view numbers.
    let mut seen: Vec<FingerPosition> = Vec::new();
    for view in views {
        let view_number = seen.iter().filter(|p| **p == view.position).count() as u8;
        seen.push(view.position);
        out.push(view.position.code() as u8);
        out.push((view_number & 0x0F) << 4);
        out.push(view.quality.min(100));
        let minutiae = &view.minutiae[..view.minutiae.len().min(255)];
        out.push(minutiae.len() as u8);
        for m in minutiae {
            let x = (m.x.round().clamp(0.0, f64::from(WIDTH - 1)) as u16) & 0x3FFF;
            let y = (m.y.round().clamp(0.0, f64::from(HEIGHT - 1)) as u16) & 0x3FFF;
            out.extend_from_slice(&(((m.kind as u16) << 14) | x).to_be_bytes());
            out.extend_from_slice(&y.to_be_bytes());
            out.push(((m.angle.rem_euclid(360.0) * 256.0 / 360.0).round() as u32 % 256) as u8);
            out.push(m.quality.min(100));
        }
        out.extend_from_slice(&0u16.to_be_bytes());
    }
    debug_assert_eq!(out.len(), total);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    #[test]
    fn masters_are_deterministic_and_distinct() {
        let a = master("alice", FingerPosition::RightIndex);
        assert_eq!(a, master("alice", FingerPosition::RightIndex));
        assert!((35..=55).contains(&a.len()));
        assert_ne!(a, master("alice", FingerPosition::LeftIndex));
        assert_ne!(a, master("bruno", FingerPosition::RightIndex));
        for m in &a {
            assert!(m.x >= 0.0 && m.x < f64::from(WIDTH) && m.y >= 0.0 && m.y < f64::from(HEIGHT));
        }
    }

    #[test]
    fn impressions_differ_but_resemble_the_master() {
        let m = master("alice", FingerPosition::RightIndex);
        let i1 = impression(
            &m,
            FingerPosition::RightIndex,
            Placement::Genuine,
            &["alice", "1"],
        );
        let i2 = impression(
            &m,
            FingerPosition::RightIndex,
            Placement::Genuine,
            &["alice", "2"],
        );
        assert_ne!(i1, i2);
        assert_eq!(
            i1,
            impression(
                &m,
                FingerPosition::RightIndex,
                Placement::Genuine,
                &["alice", "1"]
            )
        );
        let kept = i1.minutiae.len() as f64;
        assert!(
            kept >= m.len() as f64 * 0.75 && kept <= m.len() as f64 + 4.0,
            "{kept} of {}",
            m.len()
        );
        assert!(i1.quality >= 60);
        let poor = impression(
            &m,
            FingerPosition::RightIndex,
            Placement::Poor,
            &["alice", "3"],
        );
        assert!(poor.quality <= 15);
        assert!(poor.minutiae.len() < i1.minutiae.len());
    }

    #[test]
    fn the_record_follows_iso_19794_2_2005() {
        let m = master("alice", FingerPosition::LeftIndex);
        let imp = impression(&m, FingerPosition::LeftIndex, Placement::Genuine, &["t"]);
        let rec = encode_iso19794_2(std::slice::from_ref(&imp));
        assert_eq!(&rec[0..4], b"FMR\0");
        assert_eq!(&rec[4..8], b" 20\0");
        assert_eq!(
            u32::from_be_bytes([rec[8], rec[9], rec[10], rec[11]]) as usize,
            rec.len()
        );
        assert_eq!(be16(&rec, 12) >> 12, 0, "certification flag");
        assert_eq!(be16(&rec, 12) & 0x0FFF, EQUIPMENT_ID);
        assert_eq!(be16(&rec, 14), 400);
        assert_eq!(be16(&rec, 16), 500);
        assert_eq!(be16(&rec, 18), 197);
        assert_eq!(be16(&rec, 20), 197);
        assert_eq!(rec[22], 1, "one view");
        assert_eq!(rec[23], 0, "reserved");
        assert_eq!(rec[24], 7, "left index");
        assert_eq!(rec[25], 0, "view 0, live-scan plain");
        assert_eq!(rec[26], imp.quality);
        let n = rec[27] as usize;
        assert_eq!(n, imp.minutiae.len());
        assert_eq!(rec.len(), 24 + 4 + 6 * n + 2);
        for (i, mi) in imp.minutiae.iter().enumerate() {
            let at = 28 + 6 * i;
            let w = be16(&rec, at);
            assert_eq!(w >> 14, mi.kind as u16);
            assert_eq!(w & 0x3FFF, mi.x.round() as u16);
            assert_eq!(be16(&rec, at + 2) >> 14, 0);
            assert_eq!(be16(&rec, at + 2) & 0x3FFF, mi.y.round() as u16);
            assert!(rec[at + 5] <= 100);
        }
        assert_eq!(be16(&rec, rec.len() - 2), 0, "no extended data");
    }

    /// ISO/IEC 19794-2: angles counter-clockwise from the x axis, with y pointing down.
    /// A finger turned 90° clockwise on screen: a minutia right of the centre pointing up
    /// (90°) ends up below the centre pointing right (0°).
    #[test]
    fn rotated_placements_keep_angles_counter_clockwise_on_screen() {
        let (cx, cy) = (f64::from(WIDTH) / 2.0, f64::from(HEIGHT) / 2.0);
        let m = Minutia {
            kind: MinutiaKind::RidgeEnding,
            x: cx + 100.0,
            y: cy,
            angle: 90.0,
            quality: 80,
        };
        let quarter = 90f64.to_radians();
        let (x, y, angle) = place(&m, quarter.sin_cos(), (cx, cy));
        assert!(
            (x - cx).abs() < 1e-9 && (y - (cy + 100.0)).abs() < 1e-9,
            "{x},{y}"
        );
        assert!(
            angle.abs() < 1e-9 || (angle - 360.0).abs() < 1e-9,
            "{angle}"
        );
        // And back: counter-clockwise on screen by 90°.
        let (x, y, angle) = place(&m, (-quarter).sin_cos(), (cx, cy));
        assert!(
            (x - cx).abs() < 1e-9 && (y - (cy - 100.0)).abs() < 1e-9,
            "{x},{y}"
        );
        assert!((angle - 180.0).abs() < 1e-9, "{angle}");
    }

    /// The master's ridge flow circles the core: each minutia's direction, read the ISO
    /// way (`(cos a, -sin a)` in image coordinates), is roughly tangent to the circle.
    #[test]
    fn master_directions_are_read_the_iso_way() {
        let (cx, cy) = (f64::from(WIDTH) / 2.0, f64::from(HEIGHT) / 2.0);
        for m in master("alice", FingerPosition::RightIndex) {
            let a = m.angle.to_radians();
            let (dx, dy) = (a.cos(), -a.sin());
            let (rx, ry) = (m.x - cx, m.y - cy);
            let r = rx.hypot(ry);
            if r < 1.0 {
                continue;
            }
            // |cos| of the angle between direction and radius: ≤ sin(25°) ≈ 0.42.
            let along_radius = (dx * rx + dy * ry).abs() / r;
            assert!(along_radius < 0.43, "{m:?}: {along_radius}");
        }
        // Each encoded angle byte is the angle in 360/256° units.
        let imp = impression(
            &master("alice", FingerPosition::RightIndex),
            FingerPosition::RightIndex,
            Placement::Genuine,
            &["iso"],
        );
        let rec = encode_iso19794_2(std::slice::from_ref(&imp));
        for (i, m) in imp.minutiae.iter().enumerate() {
            let code = rec[28 + 6 * i + 4];
            let expected = ((m.angle * 256.0 / 360.0).round() as u32 % 256) as u8;
            assert_eq!(code, expected);
        }
    }

    /// The real matcher (torii-matcher) reads the records literally: genuine pairs
    /// (enrolment template vs a live capture) of every default traveler match, and
    /// impostors do not, at the gate's threshold (FMR 1e-4).
    #[test]
    fn the_real_matcher_matches_genuine_impressions() {
        use torii_matcher::iso19794_2::IsoRecord;
        use torii_matcher::{PreparedTemplate, Threshold, compare};
        let threshold = Threshold::for_fmr(1e-4).unwrap();
        let template = |key: &str, pos: FingerPosition, imp_key: &[&str]| {
            let imp = impression(&master(key, pos), pos, Placement::Genuine, imp_key);
            let rec = IsoRecord::parse(&encode_iso19794_2(&[imp])).unwrap();
            PreparedTemplate::from_iso(&rec, 0).unwrap()
        };
        let people = ["alice", "bruno", "chen", "dana", "emil", "hugo", "ivy"];
        let fingers = [
            FingerPosition::RightIndex,
            FingerPosition::LeftIndex,
            FingerPosition::RightMiddle,
        ];
        for who in people {
            for pos in fingers {
                let code = pos.code().to_string();
                let enrolled = template(who, pos, &["enrolment", who, &code]);
                for capture in ["1", "2", "3"] {
                    let live = template(who, pos, &[who, &code, capture]);
                    let score = compare(&enrolled, &live);
                    assert!(
                        threshold.accepts(score),
                        "{who} {pos:?} #{capture}: genuine {score}"
                    );
                }
                let impostor_key = format!("impostor-of-{who}");
                let impostor = template(&impostor_key, pos, &[&impostor_key, &code, "1"]);
                let score = compare(&enrolled, &impostor);
                assert!(!threshold.accepts(score), "{who} {pos:?}: impostor {score}");
            }
        }
    }

    #[test]
    fn two_impressions_encode_differently() {
        let m = master("chen", FingerPosition::RightMiddle);
        let a = encode_iso19794_2(&[impression(
            &m,
            FingerPosition::RightMiddle,
            Placement::Genuine,
            &["a"],
        )]);
        let b = encode_iso19794_2(&[impression(
            &m,
            FingerPosition::RightMiddle,
            Placement::Genuine,
            &["b"],
        )]);
        assert_ne!(a, b);
    }
}
