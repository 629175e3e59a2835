//! A synthetic face photo (JPEG): a face-like drawing whose colours and proportions
//! derive from the traveler's id, slightly varied per capture.

use super::seeded_rng;
use jpeg_encoder::{ColorType, Encoder};
use rand::Rng;

pub const WIDTH: u16 = 240;
pub const HEIGHT: u16 = 320;

#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error("jpeg encoding failed: {0}")]
    Jpeg(#[from] jpeg_encoder::EncodingError),
}

struct Look {
    skin: [f64; 3],
    hair: [f64; 3],
    eyes: [f64; 3],
    background: [f64; 3],
    face_rx: f64,
    face_ry: f64,
    hair_line: f64,
    eye_gap: f64,
    mouth_width: f64,
}

fn look(seed_key: &str) -> Look {
    let mut rng = seeded_rng(&["face", seed_key]);
    let skin_tones = [
        [250.0, 220.0, 190.0],
        [235.0, 195.0, 160.0],
        [205.0, 160.0, 120.0],
        [160.0, 115.0, 80.0],
        [110.0, 75.0, 50.0],
    ];
    let hair_tones = [
        [30.0, 25.0, 20.0],
        [90.0, 60.0, 30.0],
        [200.0, 170.0, 100.0],
        [150.0, 150.0, 150.0],
        [120.0, 40.0, 20.0],
    ];
    let eye_tones = [
        [60.0, 40.0, 20.0],
        [40.0, 90.0, 160.0],
        [60.0, 120.0, 70.0],
        [30.0, 30.0, 30.0],
    ];
    let pick = |rng: &mut rand_chacha::ChaCha8Rng, list: &[[f64; 3]]| {
        list[rng.random_range(0..list.len())]
    };
    Look {
        skin: pick(&mut rng, &skin_tones),
        hair: pick(&mut rng, &hair_tones),
        eyes: pick(&mut rng, &eye_tones),
        background: [
            rng.random_range(170.0..230.0),
            rng.random_range(190.0..235.0),
            rng.random_range(200.0..245.0),
        ],
        face_rx: rng.random_range(62.0..78.0),
        face_ry: rng.random_range(88.0..104.0),
        hair_line: rng.random_range(0.35..0.6),
        eye_gap: rng.random_range(24.0..34.0),
        mouth_width: rng.random_range(18.0..30.0),
    }
}

/// Renders the face of `seed_key` (a traveler id) as a 240×320 JPEG. `capture` varies
/// lighting and position a little between captures (0 = the passport/enrolment photo).
pub fn face_jpeg(seed_key: &str, capture: u64) -> Result<Vec<u8>, FaceError> {
    let l = look(seed_key);
    let (dx, dy, light) = if capture == 0 {
        (0.0, 0.0, 1.0)
    } else {
        let mut rng = seeded_rng(&["face-capture", seed_key, &capture.to_string()]);
        (
            rng.random_range(-8.0..8.0),
            rng.random_range(-8.0..8.0),
            rng.random_range(0.85..1.1),
        )
    };
    let (w, h) = (usize::from(WIDTH), usize::from(HEIGHT));
    let (cx, cy) = (w as f64 / 2.0 + dx, h as f64 * 0.45 + dy);
    let mut pixels = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f64, y as f64);
            let shade = 1.0 - 0.25 * fy / h as f64;
            let mut c = l.background.map(|v| v * shade);
            // Shoulders.
            let sx = (fx - cx) / 110.0;
            let sy = (fy - (cy + l.face_ry + 80.0)) / 70.0;
            if sx * sx + sy * sy <= 1.0 {
                c = [60.0, 70.0, 90.0];
            }
            // Neck.
            if (fx - cx).abs() < 24.0 && fy > cy && fy < cy + l.face_ry + 30.0 {
                c = l.skin.map(|v| v * 0.9);
            }
            let ex = (fx - cx) / l.face_rx;
            let ey = (fy - cy) / l.face_ry;
            let r = ex * ex + ey * ey;
            // Hair behind and above the face.
            let hx = (fx - cx) / (l.face_rx + 10.0);
            let hy = (fy - (cy - 10.0)) / (l.face_ry + 12.0);
            if hx * hx + hy * hy <= 1.0 && fy < cy {
                c = l.hair;
            }
            if r <= 1.0 {
                c = l.skin.map(|v| v * (1.0 - 0.15 * r));
                if ey < -l.hair_line - 0.3 {
                    c = l.hair;
                }
                // Eyes.
                for side in [-1.0, 1.0] {
                    let ex2 = (fx - (cx + side * l.eye_gap)) / 11.0;
                    let ey2 = (fy - (cy - 12.0)) / 6.0;
                    let e = ex2 * ex2 + ey2 * ey2;
                    if e <= 1.0 {
                        c = [245.0, 245.0, 245.0];
                    }
                    if e <= 0.3 {
                        c = l.eyes;
                    }
                    // Eyebrows.
                    if (fy - (cy - 26.0)).abs() < 2.5 && (fx - (cx + side * l.eye_gap)).abs() < 13.0
                    {
                        c = l.hair.map(|v| v * 0.8);
                    }
                }
                // Nose.
                if (fx - cx).abs() < 3.0 && fy > cy - 5.0 && fy < cy + 22.0 {
                    c = l.skin.map(|v| v * 0.8);
                }
                // Mouth.
                let mx = (fx - cx) / l.mouth_width;
                let my = (fy - (cy + 45.0)) / 5.0;
                if mx * mx + my * my <= 1.0 {
                    c = [170.0, 70.0, 70.0];
                }
            }
            let i = (y * w + x) * 3;
            for k in 0..3 {
                pixels[i + k] = (c[k] * light).clamp(0.0, 255.0) as u8;
            }
        }
    }
    let mut out = Vec::new();
    Encoder::new(&mut out, 85).encode(&pixels, WIDTH, HEIGHT, ColorType::Rgb)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_are_jpegs_deterministic_and_per_traveler() {
        let a = face_jpeg("alice", 0).unwrap();
        assert_eq!(&a[..3], &[0xFF, 0xD8, 0xFF], "SOI");
        assert_eq!(&a[a.len() - 2..], &[0xFF, 0xD9], "EOI");
        assert_eq!(a, face_jpeg("alice", 0).unwrap());
        assert_ne!(a, face_jpeg("bruno", 0).unwrap());
        assert_ne!(
            face_jpeg("alice", 1).unwrap(),
            face_jpeg("alice", 2).unwrap()
        );
        // SOF0 carries 320 rows × 240 columns.
        let sof = a.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        assert_eq!(u16::from_be_bytes([a[sof + 5], a[sof + 6]]), HEIGHT);
        assert_eq!(u16::from_be_bytes([a[sof + 7], a[sof + 8]]), WIDTH);
    }
}
