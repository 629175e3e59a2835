//! Basic Access Control (ICAO 9303 Part 11, section 4.3 and Appendix D).
//!
//! Key seed from the MRZ information, K_enc/K_mac derivation, the mutual
//! authentication cryptograms, session keys and the initial send sequence counter.

use crate::apdu::{Command, Response, SW_OK};
use crate::crypto::{self, CryptoError};
use crate::sm::SecureMessaging;
use sha1::{Digest, Sha1};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BacError {
    #[error("GET CHALLENGE failed with status {0:04X}")]
    GetChallenge(u16),
    #[error("GET CHALLENGE returned {0} bytes, expected 8")]
    ChallengeLength(usize),
    #[error("EXTERNAL AUTHENTICATE refused with status {0:04X} (wrong MRZ or chip refused BAC)")]
    Refused(u16),
    #[error("EXTERNAL AUTHENTICATE response has {0} bytes, expected 40")]
    ResponseLength(usize),
    #[error("chip cryptogram MAC does not verify")]
    BadMac,
    #[error("chip cryptogram does not echo the terminal's nonces")]
    NonceMismatch,
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("transport: {0}")]
    Transport(String),
}

/// SHA-1 over the MRZ information, first 16 bytes (Part 11, 4.3.2.1).
pub fn key_seed(mrz_information: &str) -> [u8; 16] {
    let d = Sha1::digest(mrz_information.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// Sets odd parity on every byte of a DES key (the lowest bit is the parity bit).
pub fn adjust_parity(key: &mut [u8]) {
    for b in key.iter_mut() {
        let ones = (*b & 0xFE).count_ones();
        *b = (*b & 0xFE) | u8::from(ones % 2 == 0);
    }
}

/// Counter for the encryption key.
pub const KDF_ENC: u32 = 1;
/// Counter for the MAC key.
pub const KDF_MAC: u32 = 2;

/// Two-key 3DES key derivation (Part 11, 9.7.1): SHA-1(seed || counter), 16 bytes, parity adjusted.
pub fn derive_3des_key(seed: &[u8], counter: u32) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(seed);
    h.update(counter.to_be_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    adjust_parity(&mut out);
    out
}

/// The document basic access keys.
#[derive(Clone, PartialEq, Eq)]
pub struct BacKeys {
    pub k_enc: [u8; 16],
    pub k_mac: [u8; 16],
}

impl std::fmt::Debug for BacKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BacKeys(..)")
    }
}

impl BacKeys {
    pub fn from_mrz_information(info: &str) -> Self {
        let seed = key_seed(info);
        BacKeys {
            k_enc: derive_3des_key(&seed, KDF_ENC),
            k_mac: derive_3des_key(&seed, KDF_MAC),
        }
    }
}

/// MAC over a cryptogram: retail MAC of the padded ciphertext.
pub fn cryptogram_mac(k_mac: &[u8; 16], e: &[u8]) -> Result<[u8; 8], CryptoError> {
    crypto::retail_mac(k_mac, &crypto::pad(e, 8))
}

/// Terminal side: builds EXTERNAL AUTHENTICATE data E_IFD || M_IFD from S = RND.IFD || RND.IC || K.IFD.
pub fn terminal_cryptogram(
    keys: &BacKeys,
    rnd_ic: &[u8; 8],
    rnd_ifd: &[u8; 8],
    k_ifd: &[u8; 16],
) -> Result<[u8; 40], CryptoError> {
    let mut s = Vec::with_capacity(32);
    s.extend_from_slice(rnd_ifd);
    s.extend_from_slice(rnd_ic);
    s.extend_from_slice(k_ifd);
    let e = crypto::tdes_cbc_encrypt(&keys.k_enc, &[0; 8], &s)?;
    let m = cryptogram_mac(&keys.k_mac, &e)?;
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&e);
    out[32..].copy_from_slice(&m);
    Ok(out)
}

/// Terminal side: verifies the chip's E_IC || M_IC and returns K.IC.
/// R = RND.IC || RND.IFD || K.IC must echo both nonces.
pub fn check_chip_cryptogram(
    keys: &BacKeys,
    resp: &[u8],
    rnd_ic: &[u8; 8],
    rnd_ifd: &[u8; 8],
) -> Result<[u8; 16], BacError> {
    if resp.len() != 40 {
        return Err(BacError::ResponseLength(resp.len()));
    }
    let (e, m) = resp.split_at(32);
    let want = cryptogram_mac(&keys.k_mac, e)?;
    if !crypto::ct_eq(&want, m) {
        return Err(BacError::BadMac);
    }
    let r = crypto::tdes_cbc_decrypt(&keys.k_enc, &[0; 8], e)?;
    if r.get(..8) != Some(&rnd_ic[..]) || r.get(8..16) != Some(&rnd_ifd[..]) {
        return Err(BacError::NonceMismatch);
    }
    let mut k_ic = [0u8; 16];
    k_ic.copy_from_slice(r.get(16..32).ok_or(BacError::ResponseLength(resp.len()))?);
    Ok(k_ic)
}

/// Session keys from K.IFD xor K.IC (Part 11, 4.3.3.3 / 9.7.1).
pub fn session_keys(k_ifd: &[u8; 16], k_ic: &[u8; 16]) -> BacKeys {
    let mut seed = [0u8; 16];
    for (i, s) in seed.iter_mut().enumerate() {
        *s = k_ifd[i] ^ k_ic[i];
    }
    BacKeys {
        k_enc: derive_3des_key(&seed, KDF_ENC),
        k_mac: derive_3des_key(&seed, KDF_MAC),
    }
}

/// Initial SSC: the 4 least significant bytes of RND.IC, then of RND.IFD.
pub fn initial_ssc(rnd_ic: &[u8; 8], rnd_ifd: &[u8; 8]) -> [u8; 8] {
    let mut ssc = [0u8; 8];
    ssc[..4].copy_from_slice(&rnd_ic[4..]);
    ssc[4..].copy_from_slice(&rnd_ifd[4..]);
    ssc
}

/// Runs BAC over an unprotected exchange function and returns the SM session.
///
/// `exchange` sends one command APDU and returns the response; `random` fills
/// buffers with fresh randomness (RND.IFD, K.IFD): tests pass fixed values.
pub fn perform(
    keys: &BacKeys,
    exchange: &mut dyn FnMut(&Command) -> Result<Response, BacError>,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<SecureMessaging, BacError> {
    let r = exchange(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8))?;
    if r.sw != SW_OK {
        return Err(BacError::GetChallenge(r.sw));
    }
    let rnd_ic: [u8; 8] = r
        .data
        .as_slice()
        .try_into()
        .map_err(|_| BacError::ChallengeLength(r.data.len()))?;
    let mut rnd_ifd = [0u8; 8];
    let mut k_ifd = [0u8; 16];
    random(&mut rnd_ifd);
    random(&mut k_ifd);
    let data = terminal_cryptogram(keys, &rnd_ic, &rnd_ifd, &k_ifd)?;
    let r = exchange(
        &Command::new(0x00, 0x82, 0x00, 0x00)
            .with_data(data.to_vec())
            .with_le(40),
    )?;
    if r.sw != SW_OK {
        return Err(BacError::Refused(r.sw));
    }
    let k_ic = check_chip_cryptogram(keys, &r.data, &rnd_ic, &rnd_ifd)?;
    let ks = session_keys(&k_ifd, &k_ic);
    Ok(SecureMessaging::tdes(
        ks.k_enc,
        ks.k_mac,
        initial_ssc(&rnd_ic, &rnd_ifd),
    ))
}

#[cfg(test)]
mod tests {
    //! ICAO 9303 Part 11 Appendix D (D.2 and D.3), every intermediate value.
    use super::*;
    use crate::crypto::{from_hex, to_hex};

    fn h(s: &str) -> Vec<u8> {
        from_hex(s).unwrap()
    }
    fn a8(s: &str) -> [u8; 8] {
        h(s).try_into().unwrap()
    }
    fn a16(s: &str) -> [u8; 16] {
        h(s).try_into().unwrap()
    }

    const MRZ_INFO: &str = "L898902C<369080619406236";
    const RND_IC: &str = "4608F91988702212";
    const RND_IFD: &str = "781723860C06C226";
    const K_IFD: &str = "0B795240CB7049B01C19B33E32804F0B";
    const K_IC: &str = "0B4F80323EB3191CB04970CB4052790B";
    const E_IFD: &str = "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2";
    const M_IFD: &str = "5F1448EEA8AD90A7";
    const RESP_IC: &str =
        "46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449";

    #[test]
    fn d2_key_derivation() {
        let seed = key_seed(MRZ_INFO);
        assert_eq!(to_hex(&seed), "239AB9CB282DAF66231DC5A4DF6BFBAE");
        assert_eq!(
            to_hex(&derive_3des_key(&seed, KDF_ENC)),
            "AB94FDECF2674FDFB9B391F85D7F76F2"
        );
        assert_eq!(
            to_hex(&derive_3des_key(&seed, KDF_MAC)),
            "7962D9ECE03D1ACD4C76089DCE131543"
        );
    }

    #[test]
    fn d3_mutual_authentication_and_session_keys() {
        let keys = BacKeys::from_mrz_information(MRZ_INFO);
        let c = terminal_cryptogram(&keys, &a8(RND_IC), &a8(RND_IFD), &a16(K_IFD)).unwrap();
        assert_eq!(to_hex(&c[..32]), E_IFD);
        assert_eq!(to_hex(&c[32..]), M_IFD);
        let k_ic = check_chip_cryptogram(&keys, &h(RESP_IC), &a8(RND_IC), &a8(RND_IFD)).unwrap();
        assert_eq!(to_hex(&k_ic), K_IC);
        // Session key seed K.IFD xor K.IC.
        let seed: Vec<u8> = a16(K_IFD)
            .iter()
            .zip(a16(K_IC))
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(to_hex(&seed), "0036D272F5C350ACAC50C3F572D23600");
        let ks = session_keys(&a16(K_IFD), &k_ic);
        assert_eq!(to_hex(&ks.k_enc), "979EC13B1CBFE9DCD01AB0FED307EAE5");
        assert_eq!(to_hex(&ks.k_mac), "F1CB1F1FB5ADF208806B89DC579DC1F8");
        assert_eq!(
            to_hex(&initial_ssc(&a8(RND_IC), &a8(RND_IFD))),
            "887022120C06C226"
        );
    }

    #[test]
    fn chip_cryptogram_rejections() {
        let keys = BacKeys::from_mrz_information(MRZ_INFO);
        let mut bad = h(RESP_IC);
        bad[39] ^= 1;
        assert_eq!(
            check_chip_cryptogram(&keys, &bad, &a8(RND_IC), &a8(RND_IFD)),
            Err(BacError::BadMac)
        );
        assert_eq!(
            check_chip_cryptogram(&keys, &h(RESP_IC), &a8(RND_IFD), &a8(RND_IFD)),
            Err(BacError::NonceMismatch)
        );
        assert_eq!(
            check_chip_cryptogram(&keys, &[0; 3], &a8(RND_IC), &a8(RND_IFD)),
            Err(BacError::ResponseLength(3))
        );
    }

    #[test]
    fn perform_reproduces_the_appendix_d_transcript() {
        let keys = BacKeys::from_mrz_information(MRZ_INFO);
        let mut sent = Vec::new();
        let mut answers = vec![format!("{RESP_IC}9000"), format!("{RND_IC}9000")];
        let mut ex = |c: &Command| {
            sent.push(to_hex(&c.to_bytes().unwrap()));
            Ok(Response::parse(&h(&answers.pop().unwrap())).unwrap())
        };
        let mut randoms = vec![h(K_IFD), h(RND_IFD)];
        let mut rnd = |buf: &mut [u8]| buf.copy_from_slice(&randoms.pop().unwrap());
        let sm = perform(&keys, &mut ex, &mut rnd).unwrap();
        assert_eq!(to_hex(sm.ssc()), "887022120C06C226");
        assert_eq!(
            sent,
            vec![
                "0084000008".to_string(),
                format!("0082000028{E_IFD}{M_IFD}28")
            ]
        );
    }

    #[test]
    fn parity() {
        let mut k = h("AB94FCEDF2664EDFB9B291F85D7F77F2");
        adjust_parity(&mut k);
        assert_eq!(to_hex(&k), "AB94FDECF2674FDFB9B391F85D7F76F2");
    }
}
