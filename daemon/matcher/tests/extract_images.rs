//! The built-in extractor on synthetic finger images with known minutiae
//! (`synth_image`): deterministic, and able to fail.

use torii_matcher::extract::{extract, extract_record};
use torii_matcher::iso19794_2::IsoRecord;
use torii_matcher::iso19794_4::FirRecord;
use torii_matcher::record::FingerPosition;
use torii_matcher::synth_image::{ImageFinger, ImageParams, matched_truth};
use torii_matcher::{PreparedTemplate, compare};

const SEED: u64 = 0x7E57;

fn found(e: &torii_matcher::extract::Extraction) -> Vec<(f32, f32, f32)> {
    e.minutiae.iter().map(|m| (m.x, m.y, m.direction)).collect()
}

#[test]
fn a_clean_image_gives_back_most_of_its_minutiae() {
    // Difficulty 0: the master pattern seen straight on, no noise or distortion.
    let p = ImageParams::with_difficulty(0.0);
    let (mut truth, mut extracted, mut matched) = (0, 0, 0);
    for id in 0..2 {
        let finger = ImageFinger::new(&p, SEED, id);
        let imp = finger.impression(&p, SEED, id, 0);
        let e = extract(&imp.image).unwrap();
        truth += imp.truth.len();
        extracted += e.minutiae.len();
        matched += matched_truth(&found(&e), &imp.truth, 10.0, 30.0);
    }
    assert!(truth >= 40, "truth {truth}");
    // Within 10 px and 30°: most truth minutiae found, most found ones true.
    let (recall, precision) = (
        matched as f32 / truth as f32,
        matched as f32 / extracted as f32,
    );
    assert!(recall >= 0.6, "recall {recall} ({matched}/{truth})");
    assert!(
        precision >= 0.7,
        "precision {precision} ({matched}/{extracted})"
    );
    // Directions are the 19794-2 convention: turning them half a turn loses the matches.
    let e = extract(
        &ImageFinger::new(&p, SEED, 0)
            .impression(&p, SEED, 0, 0)
            .image,
    )
    .unwrap();
    let flipped: Vec<_> = found(&e)
        .into_iter()
        .map(|(x, y, d)| (x, y, d + std::f32::consts::PI))
        .collect();
    let imp = ImageFinger::new(&p, SEED, 0).impression(&p, SEED, 0, 0);
    assert!(
        matched_truth(&flipped, &imp.truth, 10.0, 30.0) * 4
            < matched_truth(&found(&e), &imp.truth, 10.0, 30.0)
    );
}

#[test]
fn genuine_image_pairs_outscore_impostor_pairs() {
    let p = ImageParams::default();
    let templates: Vec<Vec<PreparedTemplate>> = (0..3)
        .map(|id| {
            let finger = ImageFinger::new(&p, SEED + 1, id);
            (0..2)
                .map(|n| {
                    let imp = finger.impression(&p, SEED + 1, id, n);
                    // The sensor's path: a 19794-4 record, extracted to a 19794-2 one.
                    let fir = FirRecord::from_gray(&imp.image, 2, 80).unwrap();
                    let fir = FirRecord::parse(&fir.to_bytes().unwrap()).unwrap();
                    let iso = extract_record(&fir, 0).unwrap();
                    let iso = IsoRecord::parse(&iso.to_bytes().unwrap()).unwrap();
                    assert_eq!(iso.views[0].position, FingerPosition::RIGHT_INDEX);
                    PreparedTemplate::from_iso(&iso, 0).unwrap()
                })
                .collect()
        })
        .collect();
    let genuine: Vec<f32> = templates.iter().map(|t| compare(&t[0], &t[1])).collect();
    let mut impostor = Vec::new();
    for a in 0..3 {
        for b in 0..3 {
            if a != b {
                impostor.push(compare(&templates[a][0], &templates[b][1]));
            }
        }
    }
    let worst_genuine = genuine.iter().copied().fold(f32::MAX, f32::min);
    let best_impostor = impostor.iter().copied().fold(0.0, f32::max);
    assert!(
        worst_genuine > 2.0 * best_impostor,
        "genuine {genuine:?} impostor {impostor:?}"
    );
}

#[test]
fn extraction_is_deterministic() {
    let p = ImageParams::default();
    let imp = ImageFinger::new(&p, SEED, 5).impression(&p, SEED, 5, 1);
    let a = extract(&imp.image)
        .unwrap()
        .to_iso(FingerPosition::LEFT_INDEX);
    let b = extract(&imp.image)
        .unwrap()
        .to_iso(FingerPosition::LEFT_INDEX);
    assert_eq!(a.to_bytes().unwrap(), b.to_bytes().unwrap());
}

#[test]
fn a_probe_comes_from_the_template_or_else_from_the_image() {
    use torii_matcher::extract::{ProbeError, probe_template};
    let p = ImageParams::default();
    let imp = ImageFinger::new(&p, SEED, 9).impression(&p, SEED, 9, 0);
    let fir = FirRecord::from_gray(&imp.image, 7, 80)
        .unwrap()
        .to_bytes()
        .unwrap();
    // A template wins: returned as is, the image is not even parsed.
    assert_eq!(&*probe_template(b"T", b"garbage", 7).unwrap(), b"T");
    let probe = probe_template(&[], &fir, 7).unwrap();
    let iso = IsoRecord::parse(&probe).unwrap();
    assert_eq!(iso.views[0].position, FingerPosition::LEFT_INDEX);
    assert!(iso.views[0].minutiae.len() >= 10);
    assert_eq!(probe_template(&[], &[], 7).unwrap_err(), ProbeError::Empty);
    assert_eq!(
        probe_template(&[], &fir, 2).unwrap_err(),
        ProbeError::NoImageFor(2)
    );
    assert!(matches!(
        probe_template(&[], b"FIR\0", 7).unwrap_err(),
        ProbeError::Record(_)
    ));
}
