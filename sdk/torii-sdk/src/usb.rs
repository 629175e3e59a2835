//! USB vendor/product id tables: what a driver binds to.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UsbId {
    pub vendor_id: u16,
    pub product_id: u16,
}

impl UsbId {
    pub const fn new(vendor_id: u16, product_id: u16) -> Self {
        UsbId {
            vendor_id,
            product_id,
        }
    }
}

impl fmt::Display for UsbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor_id, self.product_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid USB id {0:?}: expected VVVV:PPPP in hexadecimal, e.g. 0c27:3bfa")]
pub struct UsbIdParseError(pub String);

impl FromStr for UsbId {
    type Err = UsbIdParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || UsbIdParseError(text.to_owned());
        let (vid, pid) = text.split_once(':').ok_or_else(err)?;
        if vid.len() != 4 || pid.len() != 4 {
            return Err(err());
        }
        Ok(UsbId {
            vendor_id: u16::from_str_radix(vid, 16).map_err(|_| err())?,
            product_id: u16::from_str_radix(pid, 16).map_err(|_| err())?,
        })
    }
}

/// Whether `id` is in `table`.
pub fn matches(table: &[UsbId], id: UsbId) -> bool {
    table.contains(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_ids() {
        let id: UsbId = "0c27:3BFA".parse().unwrap();
        assert_eq!(id, UsbId::new(0x0c27, 0x3bfa));
        assert_eq!(id.to_string(), "0c27:3bfa");
        for bad in ["", "0c27", "0c27:3bfa:1", "zzzz:0000", "c27:3bfa"] {
            assert!(bad.parse::<UsbId>().is_err(), "{bad}");
        }
    }
}
