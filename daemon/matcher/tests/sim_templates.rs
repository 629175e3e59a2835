//! Templates produced by the gate simulator (`torii_sim::data::minutiae`) parse with
//! the strict ISO/IEC 19794-2 reader, round-trip, and compare without error.

use torii_matcher::iso19794_2::IsoRecord;
use torii_matcher::{PreparedTemplate, compare};
use torii_sdk::model::FingerPosition as SimPosition;
use torii_sim::data::minutiae::{Placement, encode_iso19794_2, impression, master};

#[test]
fn simulator_records_parse_strictly_and_round_trip() {
    for (who, pos) in [
        ("alice", SimPosition::RightIndex),
        ("bruno", SimPosition::LeftIndex),
    ] {
        let m = master(who, pos);
        let a = impression(&m, pos, Placement::Genuine, &[who, "1"]);
        let b = impression(&m, pos, Placement::Poor, &[who, "2"]);
        let bytes = encode_iso19794_2(&[a.clone(), b]);
        let rec = IsoRecord::parse(&bytes).unwrap();
        assert_eq!(rec.views.len(), 2);
        assert_eq!(rec.views[0].position.code() as u32, pos.code());
        assert_eq!(rec.views[1].view_number, 1);
        assert_eq!(rec.views[0].minutiae.len(), a.minutiae.len());
        assert_eq!(rec.geometry.x_resolution, 197);
        assert_eq!(rec.to_bytes().unwrap(), bytes);
        let t0 = PreparedTemplate::from_iso(&rec, 0).unwrap();
        let t1 = PreparedTemplate::from_iso(&rec, 1).unwrap();
        assert!(compare(&t0, &t1).is_finite());
        assert!(PreparedTemplate::from_iso(&rec, 2).is_err());
    }
}

/// The simulator's genuine impressions match and its impostors do not, read exactly as
/// ISO/IEC 19794-2 says (angles counter-clockwise on screen).
#[test]
fn simulator_genuine_pairs_match_and_impostors_do_not() {
    use torii_matcher::calibration::Threshold;
    let t = Threshold::for_fmr(1e-4).unwrap();
    let prep = |who: &str, key: &str| {
        let pos = SimPosition::RightIndex;
        let imp = impression(&master(who, pos), pos, Placement::Genuine, &[who, key]);
        let rec = IsoRecord::parse(&encode_iso19794_2(&[imp])).unwrap();
        PreparedTemplate::from_iso(&rec, 0).unwrap()
    };
    let people = ["alice", "bruno", "chen", "dara", "emeka", "fumiko"];
    for (i, a) in people.iter().enumerate() {
        let g = compare(&prep(a, "1"), &prep(a, "2"));
        eprintln!("{a} genuine {g}");
        assert!(t.accepts(g), "{a}: genuine score {g}");
        for b in &people[i + 1..] {
            let s = compare(&prep(a, "1"), &prep(b, "1"));
            assert!(!t.accepts(s), "{a} vs {b}: impostor score {s}");
        }
    }
}
