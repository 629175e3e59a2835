//! Realistic simulated data: MRZ, passport chip files, fingerprints, faces, the
//! registered user card and the registration QR code. Everything is deterministic:
//! randomness comes from [`seeded_rng`] keyed by traveler id, finger and counters.

pub mod card;
pub mod chip_fs;
pub mod face;
pub mod minutiae;
pub mod mrz;
pub mod qr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A ChaCha8 generator seeded from key parts (FNV-1a over the parts, separated so that
/// `["ab","c"]` and `["a","bc"]` differ).
pub fn seeded_rng(parts: &[&str]) -> ChaCha8Rng {
    let mut seed = [0u8; 32];
    for (lane, chunk) in seed.chunks_mut(8).enumerate() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (lane as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for part in parts {
            for b in part.bytes().chain(std::iter::once(0xFF)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01B3);
            }
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    ChaCha8Rng::from_seed(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn seeds_are_stable_and_separated() {
        let a: u64 = seeded_rng(&["ab", "c"]).random();
        assert_eq!(a, seeded_rng(&["ab", "c"]).random::<u64>());
        assert_ne!(a, seeded_rng(&["a", "bc"]).random::<u64>());
    }
}
