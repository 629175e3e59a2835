//! Lower-case hex for seals and chain links (not cryptography: just their spelling).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn value(c: u8, upper_too: bool) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' if upper_too => Some(c - b'A' + 10),
        _ => None,
    }
}

fn decode_32_with(text: &[u8], upper_too: bool) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *slot = value(pair[0], upper_too)? << 4 | value(pair[1], upper_too)?;
    }
    Some(out)
}

/// Exactly 64 lower-case hex digits: the only spelling the writer produces, so that
/// every byte of a seal is significant.
pub(crate) fn decode_32(text: &str) -> Option<[u8; 32]> {
    decode_32_with(text.as_bytes(), false)
}

/// 64 hex digits in either case (key files).
pub(crate) fn decode_32_any_case(text: &[u8]) -> Option<[u8; 32]> {
    decode_32_with(text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_lower_case_only() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        let text = encode(&bytes);
        assert_eq!(decode_32(&text), Some(bytes));
        assert_eq!(decode_32(&text.to_uppercase()), None);
        assert_eq!(
            decode_32_any_case(text.to_uppercase().as_bytes()),
            Some(bytes)
        );
        assert_eq!(decode_32(&text[1..]), None);
        assert_eq!(decode_32("é"), None);
    }
}
