//! Symmetric primitives used by BAC, PACE and secure messaging.
//!
//! Block ciphers, CBC and CMAC come from RustCrypto. Only two *constructions*
//! live here because no crate of this generation provides them: ISO/IEC 9797-1
//! padding method 2 and MAC algorithm 3 ("retail MAC"), which is plain DES-CBC
//! over single-DES blocks followed by one decrypt/encrypt with the two halves of
//! the key. Both are a handful of lines on top of `des::Des`.

use aes::{Aes128, Aes192, Aes256};
use cipher::block_padding::NoPadding;
use cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit,
};
use des::{Des, TdesEde2};
use thiserror::Error;

/// Errors of the symmetric layer. They carry no key or data bytes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    #[error("key length {0} is not supported by this cipher")]
    KeyLength(usize),
    #[error("data length {len} is not a multiple of the block size {block}")]
    NotBlockAligned { len: usize, block: usize },
    #[error("padding method 2 marker (0x80) not found")]
    BadPadding,
}

/// ISO/IEC 9797-1 padding method 2 (ISO 7816-4): 0x80 then zeros up to the block size.
/// Always adds at least one byte, as the standard requires.
pub fn pad(data: &[u8], block: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + block);
    out.extend_from_slice(data);
    out.push(0x80);
    while out.len() % block != 0 {
        out.push(0);
    }
    out
}

/// Removes padding method 2. Anything but zeros after the last 0x80 is an error.
pub fn unpad(data: &[u8]) -> Result<&[u8], CryptoError> {
    let pos = data
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(CryptoError::BadPadding)?;
    match data.get(pos) {
        Some(0x80) => Ok(data.get(..pos).unwrap_or_default()),
        _ => Err(CryptoError::BadPadding),
    }
}

fn check_aligned(len: usize, block: usize) -> Result<(), CryptoError> {
    if len.is_multiple_of(block) {
        Ok(())
    } else {
        Err(CryptoError::NotBlockAligned { len, block })
    }
}

/// Two-key 3DES-CBC encryption without padding (callers pad explicitly).
pub fn tdes_cbc_encrypt(key: &[u8; 16], iv: &[u8; 8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    check_aligned(data.len(), 8)?;
    let mut buf = data.to_vec();
    let len = buf.len();
    cbc::Encryptor::<TdesEde2>::new(&(*key).into(), &(*iv).into())
        .encrypt_padded::<NoPadding>(&mut buf, len)
        .map_err(|_| CryptoError::NotBlockAligned { len, block: 8 })?;
    Ok(buf)
}

/// Two-key 3DES-CBC decryption without padding removal.
pub fn tdes_cbc_decrypt(key: &[u8; 16], iv: &[u8; 8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    check_aligned(data.len(), 8)?;
    let mut buf = data.to_vec();
    cbc::Decryptor::<TdesEde2>::new(&(*key).into(), &(*iv).into())
        .decrypt_padded::<NoPadding>(&mut buf)
        .map_err(|_| CryptoError::NotBlockAligned {
            len: data.len(),
            block: 8,
        })?;
    Ok(buf)
}

/// ISO/IEC 9797-1 MAC algorithm 3 with DES (retail MAC), over data that is
/// already padded (ICAO pads explicitly, so the padding is visible in tests).
pub fn retail_mac(key: &[u8; 16], padded: &[u8]) -> Result<[u8; 8], CryptoError> {
    check_aligned(padded.len(), 8)?;
    let (k1, k2) = key.split_at(8);
    let ka = Des::new_from_slice(k1).map_err(|_| CryptoError::KeyLength(k1.len()))?;
    let kb = Des::new_from_slice(k2).map_err(|_| CryptoError::KeyLength(k2.len()))?;
    let mut state = [0u8; 8];
    for chunk in padded.chunks_exact(8) {
        for (s, d) in state.iter_mut().zip(chunk) {
            *s ^= d;
        }
        ka.encrypt_block((&mut state).into());
    }
    // Output transformation 3: decrypt with K2, encrypt with K1.
    kb.decrypt_block((&mut state).into());
    ka.encrypt_block((&mut state).into());
    Ok(state)
}

/// AES-CBC encryption without padding; the key length picks AES-128/192/256.
pub fn aes_cbc_encrypt(key: &[u8], iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    check_aligned(data.len(), 16)?;
    let mut buf = data.to_vec();
    let len = buf.len();
    let bad = |_| CryptoError::KeyLength(key.len());
    let res = match key.len() {
        16 => cbc::Encryptor::<Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded::<NoPadding>(&mut buf, len)
            .map(|_| ()),
        24 => cbc::Encryptor::<Aes192>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded::<NoPadding>(&mut buf, len)
            .map(|_| ()),
        32 => cbc::Encryptor::<Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded::<NoPadding>(&mut buf, len)
            .map(|_| ()),
        n => return Err(CryptoError::KeyLength(n)),
    };
    res.map_err(|_| CryptoError::NotBlockAligned { len, block: 16 })?;
    Ok(buf)
}

/// AES-CBC decryption without padding removal.
pub fn aes_cbc_decrypt(key: &[u8], iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    check_aligned(data.len(), 16)?;
    let mut buf = data.to_vec();
    let bad = |_| CryptoError::KeyLength(key.len());
    let res = match key.len() {
        16 => cbc::Decryptor::<Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded::<NoPadding>(&mut buf)
            .map(|_| ()),
        24 => cbc::Decryptor::<Aes192>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded::<NoPadding>(&mut buf)
            .map(|_| ()),
        32 => cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded::<NoPadding>(&mut buf)
            .map(|_| ()),
        n => return Err(CryptoError::KeyLength(n)),
    };
    res.map_err(|_| CryptoError::NotBlockAligned {
        len: data.len(),
        block: 16,
    })?;
    Ok(buf)
}

/// One AES block in ECB mode: the SM IV for AES is E(KSenc, SSC) (Part 11, 9.8.6.1).
pub fn aes_ecb_block(key: &[u8], block: &[u8; 16]) -> Result<[u8; 16], CryptoError> {
    let mut out = *block;
    match key.len() {
        16 => Aes128::new_from_slice(key)
            .map_err(|_| CryptoError::KeyLength(16))?
            .encrypt_block((&mut out).into()),
        24 => Aes192::new_from_slice(key)
            .map_err(|_| CryptoError::KeyLength(24))?
            .encrypt_block((&mut out).into()),
        32 => Aes256::new_from_slice(key)
            .map_err(|_| CryptoError::KeyLength(32))?
            .encrypt_block((&mut out).into()),
        n => return Err(CryptoError::KeyLength(n)),
    }
    Ok(out)
}

/// AES-CMAC truncated to 8 bytes, as ICAO secure messaging uses it.
pub fn aes_cmac8(key: &[u8], data: &[u8]) -> Result<[u8; 8], CryptoError> {
    use cmac::{Cmac, Mac};
    let full: Vec<u8> = match key.len() {
        16 => {
            let mut m = <Cmac<Aes128> as KeyInit>::new_from_slice(key)
                .map_err(|_| CryptoError::KeyLength(16))?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        24 => {
            let mut m = <Cmac<Aes192> as KeyInit>::new_from_slice(key)
                .map_err(|_| CryptoError::KeyLength(24))?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        32 => {
            let mut m = <Cmac<Aes256> as KeyInit>::new_from_slice(key)
                .map_err(|_| CryptoError::KeyLength(32))?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        n => return Err(CryptoError::KeyLength(n)),
    };
    let mut out = [0u8; 8];
    out.copy_from_slice(full.get(..8).ok_or(CryptoError::KeyLength(key.len()))?);
    Ok(out)
}

/// Comparison whose time does not depend on where the first difference is.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hex decoding for tests, vectors and tools (panics are impossible: bad input yields None).
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let clean: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !clean.len().is_multiple_of(2) {
        return None;
    }
    clean
        .chunks_exact(2)
        .map(|p| {
            let hi = (p.first()?).to_owned() as char;
            let lo = (p.get(1)?).to_owned() as char;
            Some((hi.to_digit(16)? * 16 + lo.to_digit(16)?) as u8)
        })
        .collect()
}

/// Upper-case hex, for tests and diagnostics of non-personal data.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        from_hex(s).unwrap()
    }

    #[test]
    fn padding_round_trip_and_errors() {
        assert_eq!(pad(&[], 8), h("8000000000000000"));
        assert_eq!(pad(&h("0102030405060708"), 8).len(), 16);
        assert_eq!(unpad(&h("0102800000")).unwrap(), &h("0102")[..]);
        assert_eq!(unpad(&h("0102")), Err(CryptoError::BadPadding));
        assert_eq!(unpad(&h("000000")), Err(CryptoError::BadPadding));
        assert_eq!(unpad(&[]), Err(CryptoError::BadPadding));
    }

    #[test]
    fn unaligned_input_is_an_error() {
        let k = [0u8; 16];
        assert!(tdes_cbc_encrypt(&k, &[0; 8], &[1, 2, 3]).is_err());
        assert!(retail_mac(&k, &[1]).is_err());
        assert!(aes_cbc_encrypt(&k, &[0; 16], &[1]).is_err());
        assert!(aes_cbc_encrypt(&[0; 5], &[0; 16], &[0; 16]).is_err());
    }

    #[test]
    fn aes_and_tdes_round_trip() {
        let data = [7u8; 32];
        for klen in [16, 24, 32] {
            let key = vec![3u8; klen];
            let c = aes_cbc_encrypt(&key, &[1; 16], &data).unwrap();
            assert_eq!(aes_cbc_decrypt(&key, &[1; 16], &c).unwrap(), data);
            assert_eq!(aes_cmac8(&key, &data).unwrap().len(), 8);
        }
        let k = [9u8; 16];
        let c = tdes_cbc_encrypt(&k, &[0; 8], &data).unwrap();
        assert_eq!(tdes_cbc_decrypt(&k, &[0; 8], &c).unwrap(), data);
    }

    #[test]
    fn aes_cmac_matches_rfc4493_example_2() {
        // RFC 4493 section 4, Example 2 (16-byte message), truncated to 8 bytes.
        let key = h("2b7e151628aed2a6abf7158809cf4f3c");
        let msg = h("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            aes_cmac8(&key, &msg).unwrap().to_vec(),
            h("070a16b46b4d4144")
        );
    }

    #[test]
    fn hex_helpers() {
        assert_eq!(from_hex("0aFF"), Some(vec![0x0a, 0xff]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(to_hex(&[0xab, 1]), "AB01");
        assert!(ct_eq(&[1, 2], &[1, 2]));
        assert!(!ct_eq(&[1, 2], &[1, 3]));
        assert!(!ct_eq(&[1], &[1, 3]));
    }
}
