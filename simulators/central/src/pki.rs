//! The test PKI of the Trusted Traveler Program: a CA, central's server certificate, the
//! gate's client certificates (good, expired, revoked) and a rogue CA's certificates for
//! the failure cases. Every key is ECDSA P-256; private keys are PKCS#8 PEM, mode 0600.
//!
//! | file | what |
//! |---|---|
//! | `ca.pem`, `ca.key` | the TTP test CA (certificates and the CRL) |
//! | `central.pem`, `central.key` | central's server certificate, SAN `localhost` and `127.0.0.1` |
//! | `gate.pem`, `gate.key` | the gate's client certificate, CN = the gate id |
//! | `gate-expired.pem`, `gate-expired.key` | the same gate, validity wholly in the past |
//! | `gate-revoked.pem`, `gate-revoked.key` | the same gate, listed in `crl.pem` |
//! | `crl.pem` | the CA's CRL revoking `gate-revoked.pem` |
//! | `rogue-ca.pem` | another CA (its key is not kept) |
//! | `rogue-central.pem`, `rogue-central.key` | a server certificate from the rogue CA (central's `wrong-server-cert` fault) |
//! | `rogue-gate.pem`, `rogue-gate.key` | a client certificate from the rogue CA, CN = the gate id |
//!
//! [`generate`] writes them (`torii-sim pki init DIR`, `torii-central pki init DIR`);
//! it refuses to overwrite any of them unless forced. [`ensure`] keeps a complete set
//! made for the same gate and makes a new one otherwise.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SerialNumber,
};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The gate id the client certificates carry when none is given.
pub const DEFAULT_GATE_ID: &str = "NRT-T1-E01";

/// Every file [`generate`] writes.
pub const FILES: [&str; 18] = [
    "ca.pem",
    "ca.key",
    "central.pem",
    "central.key",
    "gate.pem",
    "gate.key",
    "gate-expired.pem",
    "gate-expired.key",
    "gate-revoked.pem",
    "gate-revoked.key",
    "crl.pem",
    "rogue-ca.pem",
    "rogue-central.pem",
    "rogue-central.key",
    "rogue-gate.pem",
    "rogue-gate.key",
    // Not certificates: what the set was made for (see `ensure`).
    "gate-id",
    "README",
];

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{0} exists (use --force to overwrite the test PKI)")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("the gate id must be 1 to 64 printable ASCII characters")]
    BadGateId,
}

/// The files of a test PKI in one directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Pki { dir: dir.into() }
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.file("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.file("ca.key")
    }
    pub fn central_cert(&self) -> PathBuf {
        self.file("central.pem")
    }
    pub fn central_key(&self) -> PathBuf {
        self.file("central.key")
    }
    pub fn gate_cert(&self) -> PathBuf {
        self.file("gate.pem")
    }
    pub fn gate_key(&self) -> PathBuf {
        self.file("gate.key")
    }
    pub fn crl(&self) -> PathBuf {
        self.file("crl.pem")
    }
    pub fn rogue_ca_cert(&self) -> PathBuf {
        self.file("rogue-ca.pem")
    }
    pub fn rogue_central_cert(&self) -> PathBuf {
        self.file("rogue-central.pem")
    }
    pub fn rogue_central_key(&self) -> PathBuf {
        self.file("rogue-central.key")
    }
    /// A client certificate and its key: `gate`, `gate-expired`, `gate-revoked`,
    /// `rogue-gate`.
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.file(&format!("{name}.pem")),
            self.file(&format!("{name}.key")),
        )
    }

    /// Whether every file is there.
    pub fn is_complete(&self) -> bool {
        FILES.iter().all(|name| self.file(name).is_file())
    }

    /// The gate id the set was made for.
    pub fn gate_id(&self) -> Option<String> {
        let id = std::fs::read_to_string(self.file("gate-id")).ok()?;
        Some(id.trim().to_owned())
    }
}

fn check_gate_id(gate_id: &str) -> Result<(), PkiError> {
    let ok = !gate_id.is_empty()
        && gate_id.len() <= 64
        && gate_id.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if ok { Ok(()) } else { Err(PkiError::BadGateId) }
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and without a leading zero octet.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    dn.push(DnType::OrganizationName, "torii test PKI");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params(common_name: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params.serial_number = Some(serial());
    params.key_identifier_method = KeyIdMethod::Sha256;
    params
}

struct Leaf {
    params: CertificateParams,
    key: KeyPair,
}

fn leaf(
    common_name: &str,
    server: bool,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Leaf, PkiError> {
    let mut params = if server {
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?
    } else {
        CertificateParams::default()
    };
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(serial());
    params.use_authority_key_identifier_extension = true;
    Ok(Leaf {
        params,
        key: KeyPair::generate()?,
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename; keys get mode 0600
/// from their creation on.
fn write(path: &Path, bytes: &[u8], secret: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 });
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    if secret {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Generates the test PKI into `dir` (created when missing) for the gate `gate_id`
/// (the client certificates' CN). Refuses when any of the files exists, unless `force`.
pub fn generate(dir: &Path, gate_id: &str, force: bool) -> Result<Pki, PkiError> {
    check_gate_id(gate_id)?;
    let pki = Pki::new(dir);
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if !force && let Some(existing) = FILES.iter().map(|f| pki.file(f)).find(|p| p.exists()) {
        return Err(PkiError::Exists(existing));
    }
    let now = OffsetDateTime::now_utc();
    let valid_from = now - Duration::days(1);
    let valid_until = now + Duration::days(825);

    let ca_key = KeyPair::generate()?;
    let ca_template = ca_params("TTP Test CA", now);
    let ca_cert = ca_template.self_signed(&ca_key)?;
    let ca = Issuer::new(ca_template, &ca_key);

    let rogue_key = KeyPair::generate()?;
    let rogue_template = ca_params("Rogue Test CA", now);
    let rogue_cert = rogue_template.self_signed(&rogue_key)?;
    let rogue = Issuer::new(rogue_template, &rogue_key);

    let mut files: Vec<(&str, String, bool)> = vec![
        ("ca.pem", ca_cert.pem(), false),
        ("ca.key", ca_key.serialize_pem(), true),
        ("rogue-ca.pem", rogue_cert.pem(), false),
    ];
    let issued = [
        (
            "central",
            "central.torii.test",
            true,
            &ca,
            valid_from,
            valid_until,
        ),
        ("gate", gate_id, false, &ca, valid_from, valid_until),
        (
            "gate-expired",
            gate_id,
            false,
            &ca,
            now - Duration::days(60),
            now - Duration::days(30),
        ),
        ("gate-revoked", gate_id, false, &ca, valid_from, valid_until),
        (
            "rogue-central",
            "central.torii.test",
            true,
            &rogue,
            valid_from,
            valid_until,
        ),
        (
            "rogue-gate",
            gate_id,
            false,
            &rogue,
            valid_from,
            valid_until,
        ),
    ];
    let mut revoked_serial = None;
    let names: [(&str, &str); 6] = [
        ("central.pem", "central.key"),
        ("gate.pem", "gate.key"),
        ("gate-expired.pem", "gate-expired.key"),
        ("gate-revoked.pem", "gate-revoked.key"),
        ("rogue-central.pem", "rogue-central.key"),
        ("rogue-gate.pem", "rogue-gate.key"),
    ];
    for ((what, cn, server, issuer, from, until), (cert_file, key_file)) in
        issued.into_iter().zip(names)
    {
        let leaf = leaf(cn, server, from, until)?;
        let cert = leaf.params.signed_by(&leaf.key, issuer)?;
        if what == "gate-revoked" {
            revoked_serial = leaf.params.serial_number.clone();
        }
        files.push((cert_file, cert.pem(), false));
        files.push((key_file, leaf.key.serialize_pem(), true));
    }
    let crl = CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(365),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: revoked_serial
            .into_iter()
            .map(|serial_number| RevokedCertParams {
                serial_number,
                revocation_time: now - Duration::minutes(5),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca)?;
    files.push(("crl.pem", crl.pem()?, false));
    files.push(("gate-id", format!("{gate_id}\n"), false));
    files.push(("README", readme(gate_id), false));
    for (file, contents, secret) in files {
        write(&pki.file(file), contents.as_bytes(), secret)?;
    }
    tracing::info!(dir = %dir.display(), gate = gate_id, "test PKI generated");
    Ok(pki)
}

fn readme(gate_id: &str) -> String {
    format!(
        "torii test PKI (generated; NOT for production) for gate {gate_id}\n\n\
         ca.pem/ca.key                   the TTP test CA\n\
         central.pem/central.key         central's server certificate (localhost, 127.0.0.1)\n\
         gate.pem/gate.key               the gate's client certificate (CN {gate_id})\n\
         gate-expired.pem/.key           expired client certificate\n\
         gate-revoked.pem/.key           client certificate revoked by crl.pem\n\
         crl.pem                         the CA's CRL\n\
         rogue-ca.pem                    another CA\n\
         rogue-central.pem/.key          server certificate from the rogue CA\n\
         rogue-gate.pem/.key             client certificate from the rogue CA\n"
    )
}

/// The test PKI in `dir` for `gate_id`: the one there when it is complete and was made
/// for this gate, else a new one (overwriting what is there).
pub fn ensure(dir: &Path, gate_id: &str) -> Result<Pki, PkiError> {
    let pki = Pki::new(dir);
    if pki.is_complete() && pki.gate_id().as_deref() == Some(gate_id) {
        return Ok(pki);
    }
    generate(dir, gate_id, true)
}

/// The subject CN of a DER certificate (the gate id of a gate's client certificate).
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn generate_writes_every_file_keys_private_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let pki = generate(dir.path(), "NRT-T1-E07", false).unwrap();
        assert!(pki.is_complete());
        for file in FILES.iter().filter(|f| f.ends_with(".key")) {
            let mode = std::fs::metadata(pki.file(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
        let gate = CertificateDer::from_pem_file(pki.gate_cert()).unwrap();
        assert_eq!(common_name(&gate).as_deref(), Some("NRT-T1-E07"));
        assert_eq!(pki.gate_id().as_deref(), Some("NRT-T1-E07"));
        let before = std::fs::read(pki.ca_cert()).unwrap();
        assert!(matches!(
            generate(dir.path(), "NRT-T1-E07", false),
            Err(PkiError::Exists(_))
        ));
        // ensure keeps a set made for the same gate, replaces one for another.
        ensure(dir.path(), "NRT-T1-E07").unwrap();
        assert_eq!(std::fs::read(pki.ca_cert()).unwrap(), before);
        ensure(dir.path(), "KIX-T1-X01").unwrap();
        assert_ne!(std::fs::read(pki.ca_cert()).unwrap(), before);
        let gate = CertificateDer::from_pem_file(pki.gate_cert()).unwrap();
        assert_eq!(common_name(&gate).as_deref(), Some("KIX-T1-X01"));
        assert!(matches!(
            generate(dir.path(), "", true),
            Err(PkiError::BadGateId)
        ));
    }
}
