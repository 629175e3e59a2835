//! Thin layer over the `iso7816-tlv` crate.
//!
//! Two things the crate cannot express are added here, and only those:
//! * reading a BER-TLV *header* from a file prefix (to learn a file's length
//!   from its first bytes before the rest has been read), and
//! * a nesting-depth bound: the crate parses constructed objects recursively,
//!   so a hostile chip answer nesting thousands of constructed tags would
//!   overflow the stack. We walk the headers first with a fixed depth limit.

use iso7816_tlv::ber::{Tag, Tlv, Value};
use thiserror::Error;

/// Deeper than any LDS structure (DG2 nests 4 levels).
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TlvError {
    #[error("truncated TLV at offset {0}")]
    Truncated(usize),
    #[error("unsupported TLV length encoding at offset {0}")]
    BadLength(usize),
    #[error("TLV nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("malformed BER-TLV: {0}")]
    Malformed(String),
    #[error("expected tag {expected:X}, found {found:X}")]
    UnexpectedTag { expected: u32, found: u32 },
    #[error("{0} trailing byte(s) after the TLV object")]
    Trailing(usize),
    #[error("missing tag {0:X}")]
    Missing(u32),
}

/// A decoded header: tag (as the big-endian number of its bytes), whether it is
/// constructed, header size and value length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub tag: u32,
    pub constructed: bool,
    pub header_len: usize,
    pub value_len: usize,
}

impl Header {
    pub fn total_len(&self) -> usize {
        self.header_len.saturating_add(self.value_len)
    }
}

/// Reads the header at the start of `b` (definite lengths of up to 4 bytes, tags of up to 3 bytes).
pub fn header(b: &[u8]) -> Result<Header, TlvError> {
    let first = *b.first().ok_or(TlvError::Truncated(0))?;
    let mut i = 1usize;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        loop {
            let t = *b.get(i).ok_or(TlvError::Truncated(i))?;
            tag = (tag << 8) | u32::from(t);
            i += 1;
            if t & 0x80 == 0 {
                break;
            }
            if i >= 3 {
                return Err(TlvError::Malformed("tag longer than 3 bytes".into()));
            }
        }
    }
    let l = *b.get(i).ok_or(TlvError::Truncated(i))?;
    i += 1;
    let value_len = if l < 0x80 {
        usize::from(l)
    } else {
        let n = usize::from(l & 0x7F);
        if n == 0 || n > 4 {
            return Err(TlvError::BadLength(i - 1));
        }
        let mut v = 0usize;
        for _ in 0..n {
            v = (v << 8) | usize::from(*b.get(i).ok_or(TlvError::Truncated(i))?);
            i += 1;
        }
        v
    };
    Ok(Header {
        tag,
        constructed: first & 0x20 != 0,
        header_len: i,
        value_len,
    })
}

fn depth_ok(b: &[u8], depth: usize) -> Result<(), TlvError> {
    if depth > MAX_DEPTH {
        return Err(TlvError::TooDeep);
    }
    let mut off = 0usize;
    while off < b.len() {
        let rest = b.get(off..).unwrap_or_default();
        let h = header(rest)?;
        let end = h.total_len();
        let value = rest
            .get(h.header_len..end)
            .ok_or(TlvError::Truncated(off))?;
        if h.constructed {
            depth_ok(value, depth + 1)?;
        }
        off += end;
    }
    Ok(())
}

fn tag_num(t: &Tag) -> u32 {
    t.to_bytes()
        .iter()
        .fold(0u32, |a, &b| (a << 8) | u32::from(b))
}

/// Parses the first TLV object of `b` with the crate, after the depth check;
/// returns the object and the number of bytes it occupied.
pub fn parse_one(b: &[u8]) -> Result<(Tlv, usize), TlvError> {
    let h = header(b)?;
    let raw = b.get(..h.total_len()).ok_or(TlvError::Truncated(0))?;
    depth_ok(raw, 0)?;
    let (res, rest) = Tlv::parse(raw);
    let tlv = res.map_err(|e| TlvError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(TlvError::Malformed("inconsistent lengths".into()));
    }
    Ok((tlv, raw.len()))
}

/// Parses exactly one object with the expected tag; trailing bytes are an error.
pub fn parse_expect(b: &[u8], expected: u32) -> Result<Tlv, TlvError> {
    let (t, used) = parse_one(b)?;
    let found = tag_num(t.tag());
    if found != expected {
        return Err(TlvError::UnexpectedTag { expected, found });
    }
    if used != b.len() {
        return Err(TlvError::Trailing(b.len() - used));
    }
    Ok(t)
}

/// The number of a tag, e.g. 0x5F1F.
pub fn tag_of(t: &Tlv) -> u32 {
    tag_num(t.tag())
}

/// Children of a constructed object (empty for a primitive one).
pub fn children(t: &Tlv) -> &[Tlv] {
    match t.value() {
        Value::Constructed(v) => v,
        Value::Primitive(_) => &[],
    }
}

/// The first direct child with `tag`.
pub fn child(t: &Tlv, tag: u32) -> Option<&Tlv> {
    children(t).iter().find(|c| tag_of(c) == tag)
}

/// The bytes of a primitive object.
pub fn primitive(t: &Tlv) -> Option<&[u8]> {
    match t.value() {
        Value::Primitive(v) => Some(v),
        Value::Constructed(_) => None,
    }
}

/// Encodes a primitive object with the crate (tag given by number).
pub fn encode(tag: u32, value: &[u8]) -> Result<Vec<u8>, TlvError> {
    let t = Tag::try_from(tag).map_err(|e| TlvError::Malformed(e.to_string()))?;
    let tlv = Tlv::new(t, Value::Primitive(value.to_vec()))
        .map_err(|e| TlvError::Malformed(e.to_string()))?;
    Ok(tlv.to_vec())
}

/// Encodes a constructed object around already-encoded children.
pub fn encode_constructed(tag: u32, children_bytes: &[u8]) -> Result<Vec<u8>, TlvError> {
    let t = Tag::try_from(tag).map_err(|e| TlvError::Malformed(e.to_string()))?;
    let mut v = Value::Constructed(Vec::new());
    let mut off = 0;
    while off < children_bytes.len() {
        let (c, used) = parse_one(children_bytes.get(off..).unwrap_or_default())?;
        v.push(c).map_err(|e| TlvError::Malformed(e.to_string()))?;
        off += used;
    }
    let tlv = Tlv::new(t, v).map_err(|e| TlvError::Malformed(e.to_string()))?;
    Ok(tlv.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            header(&[0x60, 0x14]).unwrap(),
            Header {
                tag: 0x60,
                constructed: true,
                header_len: 2,
                value_len: 0x14
            }
        );
        assert_eq!(header(&[0x5F, 0x1F, 0x81, 0x80]).unwrap().value_len, 0x80);
        assert_eq!(
            header(&[0x7F, 0x61, 0x82, 0x01, 0x00]).unwrap().header_len,
            5
        );
        assert_eq!(header(&[0x75, 0x83, 1, 0, 0]).unwrap().value_len, 0x10000);
        assert!(header(&[0x75, 0x80]).is_err());
        assert!(header(&[0x75, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(header(&[0x5F]).is_err());
        assert!(header(&[]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion_blowup() {
        let mut b = vec![0x04, 0x00];
        for _ in 0..10_000 {
            let mut n = vec![0x30, 0x82];
            n.extend_from_slice(&(b.len() as u16).to_be_bytes());
            n.extend(b);
            b = n;
            if b.len() > 60_000 {
                break;
            }
        }
        assert_eq!(parse_one(&b).unwrap_err(), TlvError::TooDeep);
    }

    #[test]
    fn encode_parse_round_trip() {
        let inner = encode(0x5F1F, b"ABC").unwrap();
        let outer = encode_constructed(0x61, &inner).unwrap();
        let t = parse_expect(&outer, 0x61).unwrap();
        assert_eq!(primitive(child(&t, 0x5F1F).unwrap()).unwrap(), b"ABC");
        assert!(matches!(
            parse_expect(&outer, 0x60),
            Err(TlvError::UnexpectedTag { .. })
        ));
        let mut trailing = outer.clone();
        trailing.push(0);
        assert_eq!(parse_expect(&trailing, 0x61), Err(TlvError::Trailing(1)));
    }
}
