//! The relay's own certificate: made on first start, kept in the data directory, reused after.
//! Clients pin its SHA-256 fingerprint (printed at start) unless the relay has a CA-issued certificate,
//! which [`load_files`] reads from PEM files (leaf certificate first, then its intermediates; PKCS#8 key).

use std::fs;
use std::io::Write;
use std::path::Path;

use tether_shared::tls::{Identity, TlsError};

const CERT_FILE: &str = "relay-cert.der";
const KEY_FILE: &str = "relay-key.der";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("data directory {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
}

/// Load a CA-issued (or any) certificate chain and key from PEM files; the whole chain is served.
pub fn load_files(cert: &Path, key: &Path) -> Result<Identity, CertError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let pem_err = |path: &Path| {
        let path = path.display().to_string();
        move |e: rustls::pki_types::pem::Error| CertError::Pem { path, message: e.to_string() }
    };
    let mut chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem_err(cert))?
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err(cert))?;
    if chain.is_empty() {
        return Err(CertError::Pem { path: cert.display().to_string(), message: "no certificate".into() });
    }
    let leaf = chain.remove(0);
    let key = PrivatePkcs8KeyDer::from_pem_file(key).map_err(pem_err(key))?;
    Ok(Identity::from_der(leaf, key.secret_pkcs8_der().to_vec()).with_intermediates(chain))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io { path: path.display().to_string(), source }
}

/// Load the certificate from `dir`, or make and store one.
pub fn load_or_create(dir: &Path) -> Result<Identity, CertError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if cert_path.exists() && key_path.exists() {
        let cert = fs::read(&cert_path).map_err(io_err(&cert_path))?;
        let key = fs::read(&key_path).map_err(io_err(&key_path))?;
        return Ok(Identity::from_der(cert, key));
    }
    let identity = Identity::generate(&["localhost", "tether-relay"])?;
    write_private(&key_path, identity.key_der())?;
    fs::write(&cert_path, identity.cert.as_ref()).map_err(io_err(&cert_path))?;
    Ok(identity)
}

/// Write a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_is_kept_across_restarts() {
        let dir = std::env::temp_dir().join(format!("tether-cert-test-{}", std::process::id()));
        let first = load_or_create(&dir).expect("create").fingerprint();
        let second = load_or_create(&dir).expect("load").fingerprint();
        assert_eq!(first, second);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_certificate_and_key_load_from_pem_files() {
        let dir = tempfile::tempdir().expect("dir");
        let made = rcgen::generate_simple_self_signed(vec!["relay.example.org".to_string()]).expect("cert");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let other = rcgen::generate_simple_self_signed(vec!["ca.example.org".to_string()]).expect("cert");
        fs::write(&cert, made.cert.pem() + &other.cert.pem()).expect("write");
        fs::write(&key, made.signing_key.serialize_pem()).expect("write");
        let identity = load_files(&cert, &key).expect("loads");
        assert_eq!(identity.fingerprint(), tether_shared::tls::Fingerprint::of(made.cert.der()));
        assert!(load_files(&key, &key).is_err(), "a key is not a certificate");
    }
}
