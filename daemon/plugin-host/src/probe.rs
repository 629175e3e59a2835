//! Reads a driver's ABI tag and USB id table straight from its ELF file, before the
//! library is loaded: an incompatible driver is refused without any of its code running
//! (not even its ELF constructors). The idea comes from libcamera's module-info symbol.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSymbol};
use torii_sdk::abi::{self, torii_abi_tag};
use torii_sdk::model::DeviceClass;
use torii_sdk::usb::UsbId;

/// What the ELF file says about the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbiProbe {
    pub abi_major: u16,
    pub abi_minor: u16,
    pub class: DeviceClass,
    /// The USB devices the driver binds to (empty when it exports no table).
    pub usb_ids: Vec<UsbId>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("driver {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("driver {path}: not a shared library for this machine: {reason}")]
    NotElf { path: PathBuf, reason: String },
    #[error(
        "driver {path}: exports no `{}` symbol; not a torii driver, or built without the torii SDK",
        abi::ABI_TAG_SYMBOL
    )]
    NoTag { path: PathBuf },
    #[error("driver {path}: `{symbol}` is malformed: {reason}")]
    Malformed {
        path: PathBuf,
        symbol: &'static str,
        reason: String,
    },
    #[error(
        "driver {path} was built for torii driver ABI {driver_major}.{driver_minor}, but this host \
         speaks ABI {host_major}.{host_minor}; major versions must match: rebuild the driver \
         against the torii SDK {host_major}.x"
    )]
    Incompatible {
        path: PathBuf,
        driver_major: u16,
        driver_minor: u16,
        host_major: u16,
        host_minor: u16,
    },
    #[error("driver {path} declares unknown device class {class}")]
    UnknownClass { path: PathBuf, class: u32 },
}

/// Probes `path` without loading it.
pub fn probe(path: &Path) -> Result<AbiProbe, ProbeError> {
    let data = std::fs::read(path).map_err(|source| ProbeError::Read {
        path: path.into(),
        source,
    })?;
    probe_bytes(path, &data)
}

/// Probes the bytes of an ELF file (`path` only names it in errors).
pub fn probe_bytes(path: &Path, data: &[u8]) -> Result<AbiProbe, ProbeError> {
    let file = object::File::parse(data).map_err(|e| ProbeError::NotElf {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if file.format() != object::BinaryFormat::Elf {
        return Err(ProbeError::NotElf {
            path: path.into(),
            reason: format!("{:?} file", file.format()),
        });
    }
    if file.is_little_endian() != cfg!(target_endian = "little") {
        return Err(ProbeError::NotElf {
            path: path.into(),
            reason: "wrong byte order".into(),
        });
    }
    let tag_bytes = symbol_bytes(&file, path, abi::ABI_TAG_SYMBOL)?
        .ok_or_else(|| ProbeError::NoTag { path: path.into() })?;
    let tag = parse_tag(path, tag_bytes)?;
    if tag.abi_major != abi::TORII_ABI_MAJOR {
        return Err(ProbeError::Incompatible {
            path: path.into(),
            driver_major: tag.abi_major,
            driver_minor: tag.abi_minor,
            host_major: abi::TORII_ABI_MAJOR,
            host_minor: abi::TORII_ABI_MINOR,
        });
    }
    let class = DeviceClass::from_abi(tag.device_class).ok_or(ProbeError::UnknownClass {
        path: path.into(),
        class: tag.device_class,
    })?;
    let usb_ids = match symbol_bytes(&file, path, abi::USB_IDS_SYMBOL)? {
        Some(bytes) => parse_usb_ids(path, bytes)?,
        None => Vec::new(),
    };
    Ok(AbiProbe {
        abi_major: tag.abi_major,
        abi_minor: tag.abi_minor,
        class,
        usb_ids,
    })
}

/// The initialised bytes of an exported data symbol, if the file defines it.
fn symbol_bytes<'data>(
    file: &object::File<'data>,
    path: &Path,
    name: &'static str,
) -> Result<Option<&'data [u8]>, ProbeError> {
    let malformed = |reason: &str| ProbeError::Malformed {
        path: path.into(),
        symbol: name,
        reason: reason.into(),
    };
    // Exported symbols are in .dynsym; fall back to .symtab for unusual links.
    let symbol = file
        .dynamic_symbols()
        .chain(file.symbols())
        .find(|s| s.is_definition() && s.name() == Ok(name));
    let Some(symbol) = symbol else {
        return Ok(None);
    };
    let section_index = symbol
        .section_index()
        .ok_or_else(|| malformed("not in a section"))?;
    let section = file
        .section_by_index(section_index)
        .map_err(|e| malformed(&e.to_string()))?;
    let bytes = section
        .data_range(symbol.address(), symbol.size())
        .map_err(|e| malformed(&e.to_string()))?
        .ok_or_else(|| malformed("its bytes are not stored in the file (uninitialised data?)"))?;
    Ok(Some(bytes))
}

fn parse_tag(path: &Path, bytes: &[u8]) -> Result<torii_abi_tag, ProbeError> {
    let malformed = |reason: String| ProbeError::Malformed {
        path: path.into(),
        symbol: abi::ABI_TAG_SYMBOL,
        reason,
    };
    if bytes.len() < size_of::<torii_abi_tag>() {
        return Err(malformed(format!(
            "{} bytes, expected {}",
            bytes.len(),
            size_of::<torii_abi_tag>()
        )));
    }
    let u32_at =
        |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let u16_at = |at: usize| u16::from_ne_bytes([bytes[at], bytes[at + 1]]);
    let tag = torii_abi_tag {
        magic: u32_at(0),
        abi_major: u16_at(4),
        abi_minor: u16_at(6),
        device_class: u32_at(8),
        reserved: u32_at(12),
    };
    if tag.magic != abi::TORII_ABI_MAGIC {
        return Err(malformed(format!(
            "magic {:#010x}, expected {:#010x}",
            tag.magic,
            abi::TORII_ABI_MAGIC
        )));
    }
    Ok(tag)
}

fn parse_usb_ids(path: &Path, bytes: &[u8]) -> Result<Vec<UsbId>, ProbeError> {
    if !bytes.len().is_multiple_of(size_of::<abi::torii_usb_id>()) {
        return Err(ProbeError::Malformed {
            path: path.into(),
            symbol: abi::USB_IDS_SYMBOL,
            reason: format!("{} bytes is not a whole number of entries", bytes.len()),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|entry| {
            UsbId::new(
                u16::from_ne_bytes([entry[0], entry[1]]),
                u16::from_ne_bytes([entry[2], entry[3]]),
            )
        })
        .take_while(|id| *id != UsbId::new(0, 0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_the_path_named() {
        let path = Path::new("/drivers/libjunk.so");
        for data in [&b""[..], b"\x7fELF", b"not a driver at all", &[0u8; 64]] {
            let err = probe_bytes(path, data).unwrap_err();
            assert!(err.to_string().contains("/drivers/libjunk.so"), "{err}");
        }
    }

    #[test]
    fn an_executable_without_the_tag_is_not_a_driver() {
        let me = std::env::current_exe().unwrap();
        let err = probe(&me).unwrap_err();
        assert!(matches!(err, ProbeError::NoTag { .. }), "{err}");
    }
}
